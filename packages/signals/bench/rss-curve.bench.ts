/**
 * Memory of `stella signals start` over time under a steady load (issue 11:
 * flat over a 10-minute steady load): the collector runs as a user would
 * start it (its own default heap cap unless BENCH_STELLA_NODE_OPTIONS sets
 * one) while this process opens files at a fixed rate; its RSS is sampled
 * every `BENCH_SAMPLE_S` seconds. Collectors for every mode in BENCH_MODES run at
 * the same time and see the same opens. Needs root and a built CLI.
 *
 *   flock /tmp/bench.lock npx tsx packages/signals/bench/rss-curve.bench.ts
 *   BENCH_SECONDS=600 BENCH_RATE=2000 BENCH_SAMPLE_S=10 BENCH_FILES=10000 BENCH_MODES=dedup,every ...
 *
 * Prints a row per sample (seconds, opens so far, RSS of each collector),
 * then per collector: idle RSS after start-up, first / min / max / last
 * sample, the least-squares slope over the samples after the first minute
 * (MiB per 10 minutes), peak RSS (VmHWM), and at the stop its exit code, the
 * final file_open status (seen / dedup / emitted / lost), whether every
 * probe's final status balances, and verify-chain.
 */
import { closeSync, openSync, rmSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import {
  benchDir,
  loadAverage,
  mem,
  mib,
  nodeFlags,
  type RunningStella,
  readChain,
  requireRootAndCli,
  sleep,
  startStella,
  verifyChain,
} from './cli-support.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 600);
const RATE = Number(process.env.BENCH_RATE ?? 2000);
const SAMPLE_S = Number(process.env.BENCH_SAMPLE_S ?? 10);
const DISTINCT = Number(process.env.BENCH_FILES ?? 10_000);
const MODES = (process.env.BENCH_MODES ?? 'dedup').split(',') as Array<'dedup' | 'every'>;
const VERIFY = process.env.BENCH_VERIFY !== '0';

requireRootAndCli('rss-curve');

const { work, data, key, pub } = benchDir('rss-curve', DISTINCT);

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

interface Curve {
  mode: 'dedup' | 'every';
  dir: string;
  stella: RunningStella;
  idle: number;
  flags: string;
  t: number[];
  rss: number[];
}

console.log(
  `machine: ${cpus().length} CPU (${cpus()[0]?.model ?? '?'}), kernel ${release()}, Node ${process.version}; ` +
    `${RATE} opens/s over ${DISTINCT} files for ${SECONDS} s, RSS every ${SAMPLE_S} s, collectors: ${MODES.join(', ')}; ` +
    `load average ${loadAverage()}`,
);
const curves: Curve[] = [];
try {
  for (const mode of MODES) {
    const dir = join(work, `ev-${mode}`);
    const stella = await startStella(dir, key, [
      `dedup.enabled=${mode === 'dedup'}`,
      `filters.path_allowlist=${data}/**`,
    ]);
    curves.push({ mode, dir, stella, idle: 0, flags: nodeFlags(stella.pid), t: [], rss: [] });
  }
  await sleep(2000);
  for (const c of curves) c.idle = mem(c.stella.pid).rss;
  console.log(`| s | opens | ${curves.map((c) => `RSS ${c.mode} (MiB)`).join(' | ')} |`);
  console.log(`|---|---|${curves.map(() => '---|').join('')}`);

  // The load: open+close at RATE per second, paced by elapsed time so a slow
  // tick catches up instead of lowering the rate.
  let opens = 0;
  const t0 = performance.now();
  let nextSample = 0;
  while (true) {
    const s = (performance.now() - t0) / 1000;
    if (s >= nextSample) {
      for (const c of curves) {
        c.t.push(nextSample);
        c.rss.push(mib(mem(c.stella.pid).rss));
      }
      console.log(
        `| ${nextSample} | ${opens.toLocaleString('en')} | ${curves.map((c) => c.rss.at(-1)!.toFixed(1)).join(' | ')} |`,
      );
      nextSample += SAMPLE_S;
    }
    if (s >= SECONDS) break;
    const due = Math.min(Math.floor(s * RATE), opens + RATE);
    for (; opens < due; opens++) closeSync(openSync(join(data, `x${opens % DISTINCT}`), 'r'));
    for (const c of curves)
      if (c.stella.child.exitCode !== null) throw new Error(`stella (${c.mode}) exited during the load`);
    await sleep(50);
  }

  console.log(
    '\n| collector | heap flags | idle RSS | first / min / max / last sample | slope after 60 s | peak RSS (VmHWM) | exit | final file_open seen / dedup / emitted / lost | balanced | verify-chain |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const c of curves) {
    const hwm = mib(mem(c.stella.pid).hwm);
    c.stella.child.kill('SIGTERM');
    const code = await c.stella.exited;
    const chain = readChain(c.dir);
    const st = chain.status;
    const late = c.t.map((t, i) => [t, c.rss[i]!] as const).filter(([t]) => t >= 60);
    const perTenMin =
      slope(
        late.map(([t]) => t),
        late.map(([, r]) => r),
      ) * 600;
    const f = (x: number) => x.toFixed(1);
    console.log(
      `| ${c.mode === 'dedup' ? 'dedup on' : 'every event'} | ${c.flags} | ${f(mib(c.idle))} MiB | ${f(c.rss[0]!)} / ${f(Math.min(...c.rss))} / ${f(Math.max(...c.rss))} / ${f(c.rss.at(-1)!)} MiB | ${perTenMin >= 0 ? '+' : ''}${perTenMin.toFixed(1)} MiB per 10 min | ${f(hwm)} MiB | ${code} | ${st.seen} / ${st.deduplicated} / ${st.emitted} / ${st.lost} | ${chain.balanced ? 'yes' : 'NO'} | ${VERIFY ? verifyChain(c.dir, pub) : 'skipped'} |`,
    );
  }
  console.log(`opens made: ${opens.toLocaleString('en')}; load average after: ${loadAverage()}`);
} finally {
  for (const c of curves) if (c.stella.child.exitCode === null) c.stella.child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}
