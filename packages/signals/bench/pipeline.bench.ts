/**
 * End-to-end pipeline benchmark: kernel → collect() (decode, filters,
 * enrichment, record mapping, encoding) → Collector (chunks, signing) on
 * disk. A child process opens BENCH_FILES distinct files BENCH_ROUNDS times
 * with dedup off, so every open is a record. Prints records/s that reached
 * the chain, lost records (counted by the kernel and the pipeline), the
 * collector's CPU, records per collector CPU-second (what one collector
 * core drains, the target; wall-clock rates are bounded by the
 * workload) and peak RSS. Needs root.
 *
 * BENCH_CPU_PROF=<dir> writes a V8 CPU profile of each run there, started
 * after the probes are loaded (`node --cpu-prof` cannot be used: its
 * SIGPROF ticks interrupt the BPF verifier, which then fails with EAGAIN).
 *
 * The workload is the static `fsops storm` of packages/probes (C, about
 * 5x faster than Python; needs `cc`), or Python with BENCH_WORKLOAD=python
 * (the workload of the first rows in docs/performance.md).
 *
 *   npm run bench -w @stellaops/signals
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyPair, LocalKeySigner } from '@stellaops/evidence-chain';
import { Collector } from '../src/collector.js';

const FILES = Number(process.env.BENCH_FILES ?? 20_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const WORKLOAD = process.env.BENCH_WORKLOAD ?? 'fsops';
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');

const work = mkdtempSync(join(tmpdir(), 'stella-pipe-'));
const data = join(work, 'files');
mkdirSync(data);
for (let i = 0; i < FILES; i++) writeFileSync(join(data, `f${i}`), '');
generateKeyPair(join(work, 'k.pem'), join(work, 'k.pub.pem'));
const fsops = join(work, 'fsops');
if (WORKLOAD === 'fsops') {
  execFileSync('cc', ['-O2', '-static', '-o', fsops, join(ROOT, 'packages/probes/test/helpers/fsops.c')]);
}

async function run(enrich: boolean): Promise<void> {
  const dir = join(work, `evidence-${enrich ? 'enrich' : 'plain'}`);
  const collector = await Collector.start({
    dir,
    signer: LocalKeySigner.fromPemFile(join(work, 'k.pem')),
    collect: {
      probes: { exec: false, tcp_state: false, libc_net: false, tls: false },
      filters: { pathAllowlist: [`${data}/**`] },
      dedup: { enabled: false },
      statusIntervalMs: 60_000,
      ...(process.env.BENCH_QUEUE ? { maxQueuedRecords: Number(process.env.BENCH_QUEUE) } : {}),
      ...(enrich ? {} : { enrich: false as const }),
    },
    rotation: { maxSizeBytes: 64 * 1024 * 1024 },
    statusSocket: false,
  });
  const profDir = process.env.BENCH_CPU_PROF;
  const session = profDir ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  let peakRss = 0;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 50);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  // The workload runs in a child so the collector's event loop stays free.
  const py = `import os\nfor _ in range(${ROUNDS}):\n  for i in range(${FILES}):\n    os.close(os.open('${data}/f%d' % i, os.O_RDONLY))`;
  const child =
    WORKLOAD === 'fsops'
      ? spawn(fsops, ['storm', String(FILES * ROUNDS), join(data, 'f'), String(FILES)], { stdio: 'ignore' })
      : spawn('python3', ['-c', py], { stdio: 'inherit' });
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error('workload failed');
  const workloadS = (performance.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 300));
  await collector.stop();
  const wallS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sampler);
  if (session && profDir) {
    const { profile } = await session.post('Profiler.stop');
    mkdirSync(profDir, { recursive: true });
    writeFileSync(
      join(profDir, `pipeline-${enrich ? 'enrich' : 'plain'}-${Date.now()}.cpuprofile`),
      JSON.stringify(profile),
    );
    session.disconnect();
  }
  const fo = collector.status().probes.find((p) => p.name === 'file_open');
  const opens = FILES * ROUNDS;
  const emitted = Number(fo?.emitted ?? 0);
  console.log(
    [
      `enrichment ${enrich ? 'on ' : 'off'}`,
      `opens ${opens}`,
      `records written ${emitted}`,
      `lost ${fo?.lost ?? '?'}`,
      `filtered ${fo?.filtered ?? '?'}`,
      `workload ${(opens / workloadS).toFixed(0)} opens/s`,
      `pipeline ${(emitted / wallS).toFixed(0)} records/s`,
      `collector CPU ${((cpu.user + cpu.system) / 1e6 / wallS).toFixed(2)} cores`,
      `${(emitted / ((cpu.user + cpu.system) / 1e6)).toFixed(0)} records per collector CPU-second`,
      `peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB`,
    ].join(' | '),
  );
}

console.log(
  `${cpus().length} CPUs (${cpus()[0]?.model}), Node ${process.version}, ${FILES} files x ${ROUNDS} rounds (${WORKLOAD}), dedup off, load average ${loadavg()[0]!.toFixed(2)}`,
);
try {
  // BENCH_ENRICH: which runs, "off,on" by default.
  for (const mode of (process.env.BENCH_ENRICH ?? 'off,on').split(',')) await run(mode === 'on');
} finally {
  rmSync(work, { recursive: true, force: true });
}
