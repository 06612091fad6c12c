/**
 * Benchmark of @stellaops/reachability (run: `npm run bench -w @stellaops/reachability`).
 *
 * 1. analyze() over records given directly: a synthetic inventory of 2,000
 *    packages × 50 files on a usr-merged view (`/bin` → `usr/bin`, `/lib` →
 *    `usr/lib`), and 500,000 records of the image (file_open and exec, half
 *    naming a package file through a symlinked directory, half unowned), in
 *    records per second.
 * 2. inventoryFromImage() on the images named by REACH_BENCH_IMAGES
 *    (comma-separated manifest digests; skipped when unset) in the content
 *    store REACH_BENCH_STORE (default containerd's; an OCI layout directory
 *    works too, e.g. an unpacked `tools/reach-images` image.tar):
 *    layers decompressed, applied, databases parsed, executables digested.
 *
 * Prints one JSON summary line at the end.
 */
import { cpus, totalmem } from 'node:os';
import type { EvidenceRecord } from '@stellaops/ndjson';
import { analyze, type Inventory, inventoryFromImage } from '../src/index.js';

const IMAGE = `sha256:${'1'.repeat(64)}`;
const PACKAGES = 2000;
const FILES = 50;
const RECORDS = Number(process.env.REACH_BENCH_RECORDS ?? 500_000);

const inventory: Inventory = {
  source: { kind: 'rootfs', dir: '/bench' },
  symlinks: { '/bin': 'usr/bin', '/lib': 'usr/lib' },
  packages: Array.from({ length: PACKAGES }, (_, p) => ({
    ref: `pkg:deb/debian/p${p}@1`,
    name: `p${p}`,
    version: '1',
    ecosystem: 'deb' as const,
    files: Array.from({ length: FILES }, (_, f) =>
      f % 2 ? `/lib/x86_64-linux-gnu/p${p}-${f}.so.1` : `/usr/share/p${p}/f${f}`,
    ),
  })),
};

function* records(): Generator<EvidenceRecord> {
  const base = {
    schema_version: 1 as const,
    host_id: 'h',
    pid: 1,
    tid: 1,
    ppid: 0,
    uid: 0,
    gid: 0,
    comm: 'x',
    cgroup_id: '1',
  };
  const container = { id: 'c', image_manifest_digest: IMAGE, status: 'resolved' as const };
  for (let i = 0; i < RECORDS; i++) {
    const p = i % PACKAGES;
    const f = i % FILES;
    const owned = i % 2 === 0;
    const path = owned ? `/usr/lib/x86_64-linux-gnu/p${p}-${f | 1}.so.1` : `/tmp/unowned-${i % 5000}`;
    const env = {
      ...base,
      seq: String(i + 1),
      mono_ns: String(i),
      wall_ns: String(1_760_000_000_000_000_000n + BigInt(i)),
    };
    if (i % 10 === 0) {
      yield {
        ...env,
        type: 'process_exec',
        container,
        filename: path,
        argv: [path],
        argv_truncated: false,
        exe_dev: '1',
        exe_ino: '2',
      };
    } else {
      yield {
        ...env,
        type: 'file_open',
        container,
        path,
        path_resolution: 'absolute',
        path_truncated: false,
        flags: 0,
        mode: 0,
        dirfd: -100,
        ret: 3,
        syscall: 'openat',
      };
    }
  }
}

const summary: Record<string, unknown> = { cpus: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30) };
{
  const recs = [...records()];
  const t = performance.now();
  const r = await analyze({ imageDigest: IMAGE, inventory, records: recs });
  const ms = performance.now() - t;
  summary.analyze = {
    records: RECORDS,
    packages: PACKAGES,
    files: PACKAGES * FILES,
    ms: Math.round(ms),
    recordsPerSec: Math.round(RECORDS / (ms / 1000)),
    observed: r.summary.observed,
  };
  console.log(
    `analyze: ${RECORDS} records, ${PACKAGES * FILES} package files: ${ms.toFixed(0)} ms (${Math.round(RECORDS / (ms / 1000))} records/s), ${r.summary.observed} observed`,
  );
}
const images = (process.env.REACH_BENCH_IMAGES ?? '').split(',').filter(Boolean);
summary.images = [];
for (const d of images) {
  const t = performance.now();
  const inv = await inventoryFromImage({
    manifestDigest: d,
    ...(process.env.REACH_BENCH_STORE ? { contentStore: process.env.REACH_BENCH_STORE } : {}),
  });
  const ms = performance.now() - t;
  const files = inv.packages.reduce((n, p) => n + p.files.length, 0);
  (summary.images as unknown[]).push({
    digest: d,
    layers: inv.source.kind === 'image' ? inv.source.layers.length : 0,
    packages: inv.packages.length,
    files,
    ms: Math.round(ms),
  });
  console.log(
    `inventoryFromImage ${d.slice(0, 19)}: ${inv.packages.length} packages, ${files} files: ${ms.toFixed(0)} ms`,
  );
}
console.log(JSON.stringify(summary));
