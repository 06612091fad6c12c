/**
 * Benchmark of @stellaops/evidence-chain (run: `npm run bench -w packages/evidence-chain`).
 *
 * 1. Sustained write throughput with rotation: records appended through
 *    EvidenceWriter.append (one at a time) and appendMany (batches of 256)
 *    with 32 MiB chunks (so several seals happen during
 *    the run), fsync policy `interval` (the default), a real P-256 key.
 * 2. Time to seal a 100 MB chunk: `rotate()` from the call to the bundle on
 *    disk (fsync of the chunk, sha256 already incremental, statement, ECDSA
 *    signature, atomic bundle write), under the `interval` and `seal` policies.
 * 3. Offline verification time of that 100 MB chunk (verifyChain).
 *
 * Writes to a temporary directory under $BENCH_DIR (default /var/tmp) and
 * removes it. Prints one JSON summary line at the end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import {
  type FsyncPolicy,
  generateKeyPair,
  LocalKeySigner,
  openChunkWriter,
  verifyChain,
} from '../src/index.js';

const MB = 1024 * 1024;
const base = mkdtempSync(join(process.env.BENCH_DIR ?? '/var/tmp', 'stella-chain-bench-'));
const meta = {
  hostId: 'bench-host',
  kernelRelease: release(),
  btfId: 'sha256:00',
  collectorVersion: 'bench',
  filterConfigDigest: 'sha256:00',
};

/** A canonical (JCS key order), schema v1 valid file_open record of ~590 bytes (verifyChain decodes every line). */
function line(seq: number, wall: bigint, mono: bigint): string {
  return `{"cgroup_id":"4242","comm":"python3","container":{"id":"3f2b1c0d9e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c","image_manifest_digest":"sha256:4f1b8a7c3e2d6b5a4f1b8a7c3e2d6b5a4f1b8a7c3e2d6b5a4f1b8a7c3e2d6b5a","runtime":"containerd","status":"resolved"},"dirfd":-100,"flags":524288,"gid":0,"host_id":"bench-host","mode":0,"mono_ns":"${mono}","path":"/usr/lib/python3.11/site-packages/x${seq % 997}.py","path_resolution":"absolute","path_truncated":false,"pid":4242,"ppid":1,"ret":3,"schema_version":1,"seq":"${seq}","syscall":"openat","tid":4242,"type":"file_open","uid":0,"wall_ns":"${wall}"}\n`;
}

async function throughput(records: number, batch: number) {
  const dir = join(base, `throughput-${batch}`);
  const key = generateKeyPair(join(base, `k${batch}.pem`), join(base, `k${batch}.pub`));
  const signer = LocalKeySigner.fromPemFile(join(base, `k${batch}.pem`));
  const w = await openChunkWriter({ dir, signer, meta, rotation: { maxSizeBytes: 32 * MB } });
  let sealed = 0;
  w.on('sealed', () => sealed++);
  let bytes = 0;
  const wall0 = BigInt(Date.now()) * 1_000_000n;
  const t0 = process.hrtime.bigint();
  let pending: { line: string; info: { type: string; wallNs: bigint; monoNs: bigint; seq: bigint } }[] = [];
  for (let i = 0; i < records; i++) {
    const mono = process.hrtime.bigint();
    const l = line(i, wall0 + BigInt(i), mono);
    bytes += l.length;
    const info = { type: 'file_open', wallNs: wall0 + BigInt(i), monoNs: mono, seq: BigInt(i) };
    if (batch === 1) {
      w.append(l, info);
    } else {
      pending.push({ line: l, info });
      if (pending.length === batch) {
        w.appendMany(pending);
        pending = [];
      }
    }
    if ((i & 0xfff) === 0) await new Promise((r) => setImmediate(r)); // let seals progress, as a collector's event loop would
  }
  if (pending.length > 0) w.appendMany(pending);
  await w.close();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const v0 = process.hrtime.bigint();
  const report = verifyChain(dir, { keys: [key.publicKeyPem], requireEnd: true });
  const verifySecs = Number(process.hrtime.bigint() - v0) / 1e9;
  if (!report.ok) throw new Error(`bench chain does not verify: ${report.errors.slice(0, 3).join('; ')}`);
  rmSync(dir, { recursive: true, force: true });
  return {
    batch,
    records,
    mb: bytes / MB,
    seconds: secs,
    recordsPerSec: records / secs,
    mbPerSec: bytes / MB / secs,
    chunksSealed: sealed,
    verifySeconds: verifySecs,
  };
}

async function sealBig(policy: FsyncPolicy, targetBytes: number) {
  const dir = join(base, `seal-${policy.mode}`);
  const keyPath = join(base, `k-${policy.mode}.pem`);
  const key = generateKeyPair(keyPath, `${keyPath}.pub`);
  const w = await openChunkWriter({
    dir,
    signer: LocalKeySigner.fromPemFile(keyPath),
    meta,
    fsync: policy,
    rotation: { maxSizeBytes: 2 * targetBytes },
  });
  const wall0 = BigInt(Date.now()) * 1_000_000n;
  let bytes = 0;
  let i = 0;
  while (bytes < targetBytes) {
    const mono = process.hrtime.bigint();
    const l = line(i, wall0 + BigInt(i), mono);
    bytes += l.length;
    w.append(l, { type: 'file_open', wallNs: wall0 + BigInt(i), monoNs: mono, seq: BigInt(i) });
    i++;
    if ((i & 0xfff) === 0) await new Promise((r) => setImmediate(r));
  }
  let sealMs = 0;
  w.once('sealed', (s) => {
    sealMs = s.sealMs;
  });
  const t0 = process.hrtime.bigint();
  await w.rotate();
  const rotateMs = Number(process.hrtime.bigint() - t0) / 1e6;
  await w.close();
  const v0 = process.hrtime.bigint();
  const report = verifyChain(dir, { keys: [key.publicKeyPem], requireEnd: true });
  const verifyMs = Number(process.hrtime.bigint() - v0) / 1e6;
  if (!report.ok) throw new Error(`sealed chunk does not verify: ${report.errors.slice(0, 3).join('; ')}`);
  rmSync(dir, { recursive: true, force: true });
  return { policy: policy.mode, chunkMB: bytes / MB, records: i, rotateMs, sealMs, verifyMs };
}

try {
  const machine = {
    node: process.version,
    kernel: release(),
    cpus: `${cpus().length} x ${cpus()[0]?.model ?? 'unknown'}`,
    memGiB: Math.round(totalmem() / 1024 ** 3),
  };
  console.log('machine', machine);
  const n = Number(process.env.BENCH_RECORDS ?? 800_000);
  const tp = await throughput(n, 1);
  console.log('throughput, append', tp);
  const tpBatch = await throughput(n, 256);
  console.log('throughput, appendMany(256)', tpBatch);
  const sealInterval = await sealBig({ mode: 'interval', intervalMs: 1000 }, 100 * MB);
  console.log('seal 100 MiB (fsync interval)', sealInterval);
  const sealOnly = await sealBig({ mode: 'seal' }, 100 * MB);
  console.log('seal 100 MiB (fsync seal)', sealOnly);
  console.log(JSON.stringify({ machine, throughput: [tp, tpBatch], seal: [sealInterval, sealOnly] }));
} finally {
  rmSync(base, { recursive: true, force: true });
}
