/**
 * The record path of one file open on one core, without the kernel: ring
 * records (as bpf/fileexec.bpf.c writes them, back to back in one batch
 * buffer) to canonical lines, by the generic path (decode → toRecord →
 * encodeRecord → UTF-8 into the batch buffer) and by the fused encoder
 * (straight from the ring bytes into the batch buffer). Prints CPU-ns and
 * records per CPU-second of each (medians of 5 interleaved rounds).
 *
 *   npx tsx packages/signals/bench/fused.bench.ts
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { encodeRecord, u64Halves } from '@stellaops/ndjson';
import { decodeEvent, type FileOpenView, KIND, LAYOUT, viewEvent } from '@stellaops/probes';
import { FUSED_FILE_OPEN, type FusedEnv } from '../src/fused.js';
import { toRecord } from '../src/records.js';

const N = 20_000;
const ROUNDS = 5;
const H = LAYOUT.stella_event_header.members;
const F = LAYOUT.fe_file_open_event.members;

const parts: Buffer[] = [];
const offs = [0];
for (let i = 0; i < N; i++) {
  const path = Buffer.from(`/var/lib/app/data/cache/7f/3a/f${i}.json`);
  const b = Buffer.alloc(F.path[0] + path.length);
  b.writeBigUInt64LE(5_000_000_000n + BigInt(i) * 1337n, H.mono_ns[0]);
  b.writeBigUInt64LE(12884n + BigInt(i % 5), H.cgroup_id[0]);
  b.writeUInt32LE(KIND.FILE_OPEN, H.kind[0]);
  b.writeUInt32LE(4000 + (i % 97), H.pid[0]);
  b.writeUInt32LE(4000 + (i % 113), H.tid[0]);
  b.writeUInt32LE(3999, H.ppid[0]);
  b.writeUInt32LE(1000, H.uid[0]);
  b.writeUInt32LE(1000, H.gid[0]);
  b.write(i % 3 === 0 ? 'node' : 'api-server', H.comm[0]);
  b.writeInt32LE(3 + (i % 60), F.ret[0]);
  b.writeUInt32LE(524288, F.flags[0]);
  b.writeInt32LE(-100, F.dirfd[0]);
  b.writeUInt32LE(path.length, F.path_len[0]);
  b.writeUInt16LE(2, F.syscall[0]);
  path.copy(b, F.path[0]);
  parts.push(b);
  offs.push(offs.at(-1)! + b.length);
}
const data = Buffer.concat(parts);
const container = Object.freeze({
  id: '3f2b1c0d9e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c',
  runtime: 'containerd',
  image_ref: 'registry.example.com/team/api:1.42.0',
  image_manifest_digest: 'sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
  image_config_digest: 'sha256:4f1b8a7c3e2d6b5a9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928',
  status: 'resolved' as const,
});
const OFFSET = 1_764_100_000_000_000_000n;
const out = Buffer.allocUnsafe(N * 1024);

function generic(): number {
  let p = 0;
  for (let i = 0; i < N; i++) {
    const e = decodeEvent(data.subarray(offs[i], offs[i + 1]));
    const rec = toRecord(
      { source: 'fileexec', event: e },
      { seq: BigInt(i), wallNs: e.monoNs + OFFSET, hostId: 'host-7f3a9c2e', container },
    )!;
    p += out.write(encodeRecord(rec), p);
  }
  return p;
}

const [offHi, offLo] = u64Halves(OFFSET);
const env: FusedEnv = {
  seqHi: 0,
  seqLo: 0,
  offHi,
  offLo,
  host: FUSED_FILE_OPEN.fragment('host_id', 'host-7f3a9c2e'),
  container: FUSED_FILE_OPEN.fragment('container', container),
};

function fused(): number {
  let p = 0;
  for (let i = 0; i < N; i++) {
    const v = viewEvent(data, offs[i]!, offs[i + 1]!) as FileOpenView;
    env.seqLo = i;
    p = FUSED_FILE_OPEN.write(v.data, v.start, env, out, p);
  }
  return p;
}

const cpuNs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const ops = { 'generic (decode, toRecord, encodeRecord)': generic, 'fused (ring bytes to line)': fused };
// The two agree (the property test in src/fused.test.ts holds it on generated records).
if (out.subarray(0, generic()).toString() !== out.subarray(0, fused()).toString()) {
  throw new Error('fused and generic lines differ');
}
const results = new Map<string, number[]>(Object.keys(ops).map((k) => [k, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, run] of Object.entries(ops)) {
    const c0 = cpuNs();
    let passes = 0;
    do {
      run();
      passes++;
    } while (cpuNs() - c0 < 300e6);
    results.get(name)!.push((cpuNs() - c0) / (passes * N));
  }
}
const cpu = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
console.log(
  `file_open ring record → line, ${N} records with a container, ${cpu}, Node ${process.version}, load average ${loadavg()[0]!.toFixed(2)}`,
);
for (const [name, xs] of results) {
  const ns = median(xs);
  console.log(
    `${name.padEnd(42)} ${ns.toFixed(0).padStart(6)} CPU-ns/record ${Math.round(1e9 / ns)
      .toLocaleString('en-US')
      .padStart(12)} records/CPU-s`,
  );
}
