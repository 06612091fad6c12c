/**
 * Verification speed of verifyChain (run: `npx tsx packages/evidence-chain/bench/verify.bench.ts`).
 *
 * Writes a chain of realistic records with the real writer and a real P-256
 * key: file_open with full container attribution (about 60 %), process_exec
 * with a 6-argument argv (1 in 100 with a non-UTF-8 byte string), net_connect, net_accept
 * with a user stack, and a collector_status every 10 000 records, all
 * encoded by @stellaops/ndjson; 32 MiB chunks, ending with a final status.
 * Then times verifyChain over it (every line decoded by the validating
 * decoder, every chunk hashed, every statement checked) several times and
 * prints MiB/s (wall clock, and per CPU-second of the process). Not a test: numbers depend on the machine and its load.
 *
 * Env: BENCH_MIB (default 256) size of the chain, BENCH_RUNS (default 3),
 * BENCH_DIR (default /var/tmp) where the chain is written (removed after).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { bytesField, type EvidenceRecord, encodeRecord } from '@stellaops/ndjson';
import { generateKeyPair, LocalKeySigner, openChunkWriter, verifyChain } from '../src/index.js';

const MiB = 1024 * 1024;
const HOST = 'bench-host-7f3a9c2e';
const IMAGE = `sha256:${'4f1b8a7c3e2d6b5a'.repeat(4)}`;
const CONTAINER = {
  id: '3f2b1c0d9e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c',
  runtime: 'containerd' as const,
  image_ref: `registry.example.com/team/api@${IMAGE}`,
  image_manifest_digest: IMAGE,
  k8s: {
    pod: 'api-7d9f8b6c5-x2x4z',
    namespace: 'payments',
    pod_uid: '0b7e3f5a-1c2d-4e5f-8a9b-0c1d2e3f4a5b',
    container: 'api',
  },
  status: 'resolved' as const,
};

function recordAt(seq: number, wall0: bigint): EvidenceRecord {
  const env = {
    schema_version: 1 as const,
    seq: String(seq),
    mono_ns: String(5_000_000_000 + seq * 1000),
    wall_ns: (wall0 + BigInt(seq) * 1000n).toString(),
    host_id: HOST,
  };
  const proc = {
    pid: 4000 + (seq % 50),
    tid: 4000 + (seq % 50),
    ppid: 1,
    uid: 1000,
    gid: 1000,
    comm: 'api-server',
    cgroup_id: '12884',
    container: CONTAINER,
  };
  if (seq % 10_000 === 9_999) {
    return {
      ...env,
      type: 'collector_status',
      window_start_wall_ns: wall0.toString(),
      window_end_wall_ns: env.wall_ns,
      probes: [
        {
          name: 'file_open',
          attached: true,
          attach_type: 'raw_tp',
          seen: String(seq),
          filtered: '0',
          deduplicated: '0',
          emitted: String(seq),
          lost: '0',
        },
      ],
    } as EvidenceRecord;
  }
  switch (seq % 10) {
    case 0:
    case 1:
      return {
        ...env,
        ...proc,
        type: 'process_exec',
        filename: '/usr/bin/python3.11',
        argv: [
          'python3',
          '-m',
          'gunicorn',
          '--bind',
          '0.0.0.0:8080',
          bytesField(Buffer.from([0x80, seq & 0xff])),
        ],
        argv_truncated: false,
        exe_dev: '66305',
        exe_ino: String(1_837_465 + (seq % 100)),
        ret: 0,
        container_path: '/usr/bin/python3.11',
      } as EvidenceRecord;
    case 2:
      return {
        ...env,
        ...proc,
        type: 'net_accept',
        fd: 6,
        ret: 9,
        family: 'inet',
        addr: '192.0.2.200',
        port: 40000 + (seq % 20000),
        syscall: 'accept4',
        stack: [
          {
            module: '/usr/lib/x86_64-linux-gnu/libc.so.6',
            offset: '0x11b0a0',
            symbol: 'accept4',
            build_id: 'c047672cae7964324658491e7dee26748ae5d2f8',
          },
          { module: '/usr/bin/python3.11', offset: '0x1d2c40' },
        ],
      } as EvidenceRecord;
    case 3:
      return {
        ...env,
        ...proc,
        type: 'net_connect',
        fd: 5,
        ret: 0,
        family: 'inet',
        addr: '10.12.4.7',
        port: 5432,
        syscall: 'connect',
      } as EvidenceRecord;
    default:
      return {
        ...env,
        ...proc,
        type: 'file_open',
        path: `/usr/lib/python3.11/site-packages/app/module_${seq % 997}.py`,
        path_resolution: 'absolute',
        path_truncated: false,
        flags: 524288,
        mode: 0,
        dirfd: -100,
        ret: 3,
        syscall: 'openat',
        container_path: `/app/module_${seq % 997}.py`,
      } as EvidenceRecord;
  }
}

const base = mkdtempSync(join(process.env.BENCH_DIR ?? '/var/tmp', 'stella-verify-bench-'));
try {
  const targetMiB = Number(process.env.BENCH_MIB ?? 256);
  const runs = Number(process.env.BENCH_RUNS ?? 3);
  const key = generateKeyPair(join(base, 'k.pem'), join(base, 'k.pub.pem'));
  const dir = join(base, 'chain');
  const w = await openChunkWriter({
    dir,
    signer: LocalKeySigner.fromPemFile(join(base, 'k.pem')),
    meta: {
      hostId: HOST,
      kernelRelease: release(),
      btfId: 'sha256:00',
      collectorVersion: 'bench',
      filterConfigDigest: 'sha256:00',
    },
    rotation: { maxSizeBytes: 32 * MiB },
  });
  const wall0 = BigInt(Date.now()) * 1_000_000n;
  let bytes = 0;
  let seq = 0;
  const types = new Map<string, number>();
  const append = (r: EvidenceRecord) => {
    const line = encodeRecord(r);
    bytes += Buffer.byteLength(line);
    types.set(r.type, (types.get(r.type) ?? 0) + 1);
    w.append(line, {
      type: r.type,
      wallNs: BigInt(r.wall_ns),
      monoNs: BigInt(r.mono_ns),
      seq: BigInt(r.seq),
    });
  };
  while (bytes < targetMiB * MiB) {
    append(recordAt(seq++, wall0));
    if ((seq & 0xfff) === 0) await new Promise((r) => setImmediate(r));
  }
  append({
    ...(recordAt(9_999, wall0) as object),
    seq: String(seq),
    mono_ns: String(5_000_000_000 + seq * 1000),
    wall_ns: (wall0 + BigInt(seq) * 1000n).toString(),
    final: true,
  } as EvidenceRecord);
  await w.close();
  const results: number[] = [];
  /** MiB per CPU-second of this process: much less disturbed by other load than the wall rate. */
  const perCpu: number[] = [];
  let chunks = 0;
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    const report = verifyChain(dir, { keys: [key.publicKeyPem], requireEnd: true, requireComplete: true });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(c0);
    perCpu.push(bytes / MiB / ((cpu.user + cpu.system) / 1e6));
    if (!report.ok) throw new Error(`bench chain does not verify: ${report.errors.slice(0, 3).join('; ')}`);
    chunks = report.summary.chunks;
    results.push(bytes / MiB / secs);
  }
  const machine = {
    node: process.version,
    kernel: release(),
    cpus: `${cpus().length} x ${cpus()[0]?.model ?? 'unknown'}`,
    memGiB: Math.round(totalmem() / 1024 ** 3),
    loadavg1: loadavg()[0]!.toFixed(2),
  };
  const summary = {
    machine,
    chainMiB: +(bytes / MiB).toFixed(1),
    records: seq + 1,
    avgRecordBytes: Math.round(bytes / (seq + 1)),
    chunks,
    types: Object.fromEntries(types),
    verifyMiBPerSec: results.map((x) => +x.toFixed(1)),
    verifyMiBPerCpuSec: perCpu.map((x) => +x.toFixed(1)),
  };
  console.log(JSON.stringify(summary));
} finally {
  rmSync(base, { recursive: true, force: true });
}
