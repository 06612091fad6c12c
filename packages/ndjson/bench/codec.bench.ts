/**
 * Codec throughput on one core (one Node thread), typical file_open records,
 * side by side with json-canonicalize and JSON.stringify in the same run.
 *
 *   npm run bench -w @stellaops/ndjson
 *
 * Prints records per CPU-second and per wall-clock second for each operation
 * (medians of 5 interleaved rounds of >= 0.4 s each, after a warm-up pass),
 * and checks the targets of the issue against records per CPU-second (one
 * core's work; wall-clock rates on a shared machine measure the other load).
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { canonicalize as jcs } from 'json-canonicalize';
import { decodeLine, decodeStream, encodeRecord, type FileOpenRecord, validateRecord } from '../src/index.js';

const N = 20_000;
const ROUNDS = 5;
const MIN_ROUND_NS = 400_000_000n;

const paths = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/usr/lib/x86_64-linux-gnu/libssl.so.3',
  '/app/node_modules/express/lib/router/index.js',
  '/proc/self/status',
  '/var/lib/app/data/cache/7f/3a/9c2e.json',
  '/tmp/upload-0b7e3f5a.part',
];

/** Typical file_open records: a Kubernetes container, absolute paths, varying pids, times and fds. */
function typical(i: number): FileOpenRecord {
  const mono = 5_000_000_000n + BigInt(i) * 1_337n;
  return {
    schema_version: 1,
    type: 'file_open',
    seq: String(1_000_000 + i),
    mono_ns: mono.toString(),
    wall_ns: (1_764_100_000_000_000_000n + mono).toString(),
    host_id: 'host-7f3a9c2e',
    pid: 4000 + (i % 97),
    tid: 4000 + (i % 113),
    ppid: 3999,
    uid: 1000,
    gid: 1000,
    comm: i % 3 === 0 ? 'node' : 'api-server',
    cgroup_id: String(12_884 + (i % 5)),
    container: {
      id: '3f2b1c0d9e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c',
      runtime: 'containerd',
      image_ref: 'registry.example.com/team/api:1.42.0',
      image_manifest_digest: 'sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
      image_config_digest: 'sha256:4f1b8a7c3e2d6b5a9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928',
      k8s: { pod: 'api-7d9f8b6c5-x2x4z', namespace: 'payments', container: 'api' },
      status: 'resolved',
    },
    path: paths[i % paths.length]!,
    path_resolution: 'absolute',
    path_truncated: false,
    flags: 524288,
    mode: 0,
    dirfd: -100,
    ret: 3 + (i % 60),
    syscall: 'openat',
  };
}

let sink = 0;

interface Op {
  readonly name: string;
  readonly run: () => void | Promise<void>;
  /** records per wall-clock second, per round */
  readonly wall: number[];
  /** records per CPU-second of this process (user + system, GC threads included), per round */
  readonly cpu: number[];
}

const op = (name: string, run: () => void | Promise<void>): Op => ({ name, run, wall: [], cpu: [] });
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/**
 * Times every operation in interleaved rounds (A B C … A B C …) so that load
 * from other processes on a shared machine hits all of them alike. Reports
 * records per wall-clock second and per CPU-second of this process; the
 * latter is what one core does and is far less disturbed by other processes
 * taking the CPU away. Returns the medians per CPU-second.
 */
async function measureAll(count: number, ops: Op[]): Promise<Map<string, number>> {
  for (const o of ops) await o.run(); // warm-up (JIT)
  for (let round = 0; round < ROUNDS; round++) {
    for (const o of ops) {
      let passes = 0;
      const start = process.hrtime.bigint();
      const cpuStart = cpuSeconds();
      let elapsed = 0n;
      do {
        await o.run();
        passes++;
        elapsed = process.hrtime.bigint() - start;
      } while (elapsed < MIN_ROUND_NS);
      o.wall.push((passes * count) / (Number(elapsed) / 1e9));
      o.cpu.push((passes * count) / (cpuSeconds() - cpuStart));
    }
  }
  const out = new Map<string, number>();
  console.log(
    `${'operation'.padEnd(46)} ${'records/CPU-s'.padStart(13)} ${'records/s wall'.padStart(15)}  (wall min, max)`,
  );
  for (const o of ops) {
    const perCpu = median(o.cpu);
    out.set(o.name, perCpu);
    const w = [...o.wall].sort((x, y) => x - y);
    console.log(
      `${o.name.padEnd(46)} ${fmt(perCpu).padStart(13)} ${fmt(median(o.wall)).padStart(15)}  (${fmt(w[0]!)}, ${fmt(w.at(-1)!)})`,
    );
  }
  return out;
}

async function main(): Promise<void> {
  const cpu = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  console.log(
    `@stellaops/ndjson codec benchmark: node ${process.version}, ${availableParallelism()} CPUs (${cpu}), one thread, load average ${loadavg()[0]!.toFixed(2)}`,
  );

  const records = Array.from({ length: N }, (_, i) => typical(i));
  const lines = records.map(encodeRecord);
  const avg = Math.round(lines.reduce((n, l) => n + Buffer.byteLength(l), 0) / N);
  console.log(`${N} typical file_open records, ${avg} bytes per line on average\n`);

  // Sanity: the encoders agree where they must.
  for (let i = 0; i < 100; i++) {
    if (lines[i] !== `${jcs(records[i])}\n`) throw new Error('encodeRecord differs from json-canonicalize');
  }

  // As the collector runs: the enricher attaches one deep-frozen container object per cgroup.
  const shared = new Map<string, FileOpenRecord['container']>();
  const sharedRecords = records.map((r) => {
    let c = shared.get(r.cgroup_id);
    if (!c) {
      c = Object.freeze({ ...r.container, k8s: Object.freeze({ ...r.container!.k8s }) });
      shared.set(r.cgroup_id, c);
    }
    return { ...r, container: c };
  });
  const hostRecords = records.map(({ container: _, ...r }) => r as FileOpenRecord);
  const stream = Buffer.from(lines.join(''), 'utf8');
  // Lines as a reader gets them (flat strings decoded from bytes), not the encoder's string ropes.
  const readLines = lines.map((l) => Buffer.from(l, 'utf8').toString('utf8'));
  const chunks: Buffer[] = [];
  for (let o = 0; o < stream.length; o += 65536) chunks.push(stream.subarray(o, o + 65536));

  const ENC = 'encodeRecord';
  const ENC_SHARED = 'encodeRecord, shared frozen container';
  const JCS = 'json-canonicalize + "\\n"';
  const STR = 'JSON.stringify + "\\n" (not canonical)';
  const ENC_HOST = 'encodeRecord, host process (no container)';
  const STR_HOST = 'JSON.stringify, host process (no container)';
  const DEC = 'decodeLine (parse, validate, canonical check)';
  const PARSE = 'JSON.parse only (no checks)';
  const STREAM = 'decodeStream (64 KiB chunks, seq checked)';
  const r = await measureAll(N, [
    op(ENC, () => {
      for (const x of records) sink += encodeRecord(x).length;
    }),
    op(ENC_SHARED, () => {
      for (const x of sharedRecords) sink += encodeRecord(x).length;
    }),
    op(JCS, () => {
      for (const x of records) sink += `${jcs(x)}\n`.length;
    }),
    op(STR, () => {
      for (const x of records) sink += `${JSON.stringify(x)}\n`.length;
    }),
    op(ENC_HOST, () => {
      for (const x of hostRecords) sink += encodeRecord(x).length;
    }),
    op(STR_HOST, () => {
      for (const x of hostRecords) sink += `${JSON.stringify(x)}\n`.length;
    }),
    op(DEC, () => {
      for (const l of readLines) sink += decodeLine(l).seq.length;
    }),
    op(PARSE, () => {
      for (const l of readLines) sink += (JSON.parse(l) as FileOpenRecord).seq.length;
    }),
    op(STREAM, async () => {
      for await (const x of decodeStream(chunks)) if (x.ok) sink += x.record.seq.length;
    }),
    op('validateRecord only (generic interpreter)', () => {
      for (const x of records) sink += validateRecord(x).length;
    }),
  ]);
  const get = (k: string) => r.get(k)!;
  const ratio = (a: string, b: string) => `${(get(a) / get(b)).toFixed(2)}x`;

  console.log('');
  console.log(`encodeRecord vs json-canonicalize: ${ratio(ENC, JCS)}; vs JSON.stringify: ${ratio(ENC, STR)}`);
  console.log(`encodeRecord, shared frozen container vs json-canonicalize: ${ratio(ENC_SHARED, JCS)}`);
  console.log(`encodeRecord vs JSON.stringify, host process: ${ratio(ENC_HOST, STR_HOST)}`);
  console.log(`decodeLine vs JSON.parse alone: ${ratio(DEC, PARSE)}`);
  const ok = (b: boolean) => (b ? 'met' : 'NOT met');
  console.log(
    `target encode >= 1,000,000 records per CPU-s: ${ok(get(ENC) >= 1e6)} (own container objects), ${ok(get(ENC_SHARED) >= 1e6)} (shared frozen)`,
  );
  console.log(
    `target encode >= 4x json-canonicalize: ${ok(get(ENC) >= 4 * get(JCS))} (own), ${ok(get(ENC_SHARED) >= 4 * get(JCS))} (shared frozen)`,
  );
  console.log(
    `target decode+validate >= 500,000 records per CPU-s: ${ok(get(DEC) >= 5e5)} (decodeLine), ${ok(get(STREAM) >= 5e5)} (decodeStream)`,
  );
  if (sink === 42) console.log('');
}

await main();
