/**
 * The product path at full speed, measured through the real CLI: `node
 * packages/cli/bin/stella.js signals start` (every record encoded, chunked,
 * signed) against an open storm of one process over 10k distinct files (the
 * static fsops workload of packages/probes), untraced and traced with dedup
 * on and off, interleaved in one run. Needs root and a built CLI
 * (`npx nx run @stellaops/cli:build`).
 *
 *   flock /tmp/bench.lock npm run bench:cli -w @stellaops/signals   (same as: npx tsx packages/signals/bench/cli-storm.bench.ts)
 *   BENCH_OPS=3000000 BENCH_ROUNDS=3 BENCH_MODES=untraced,every ...  (same, other sizes)
 *   BENCH_FILES=1 BENCH_PROCS=2 ...  (the same file, two storming processes at once)
 *
 * Per traced run it prints: workload ops/s and the ratio to the untraced run
 * of the same round, file_open records in the chain (read back from the
 * chunks) against opens made, the final collector_status of file_open
 * (seen, deduplicated, emitted, lost, balanced), the collector's idle RSS
 * after start-up, its peak RSS (VmHWM), its CPU while the storm ran and the
 * node heap flags it ran with (the CLI caps the heap itself unless
 * BENCH_STELLA_NODE_OPTIONS sets them: node flags for the collector only).
 * Only file_open and exec are on (the network and TLS probes do not see this
 * workload); the path allowlist keeps other activity on the machine out.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import {
  benchDir,
  buildFsops,
  cpuS,
  loadAverage,
  mem,
  mib,
  nodeFlags,
  type ProbeStatus,
  readChain,
  requireRootAndCli,
  sleep,
  startStella,
  verifyChain,
} from './cli-support.js';

const OPS = Number(process.env.BENCH_OPS ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1);
const DISTINCT = Number(process.env.BENCH_FILES ?? 10_000);
const MODES = (process.env.BENCH_MODES ?? 'untraced,dedup,every').split(',');
const VERIFY = process.env.BENCH_VERIFY !== '0';
/** Storming processes at once, each `OPS` opens over the same `DISTINCT` files. */
const PROCS = Number(process.env.BENCH_PROCS ?? 1);

requireRootAndCli('cli-storm');

const { work, data, key, pub } = benchDir('cli-storm', DISTINCT);
const fsops = buildFsops(work);

/** One storming process: `OPS` open+close over `DISTINCT` files; ops/s by its own clock. */
function stormOne(): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = spawn(fsops, ['storm', String(OPS), join(data, 'x'), String(DISTINCT)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    c.stdout.on('data', (b) => {
      out += b;
    });
    c.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`fsops exited ${code}`));
      const [n, ns] = out.trim().split(' ').map(Number);
      resolve(n! / (ns! / 1e9));
    });
  });
}

/** `PROCS` storming processes at once; their ops/s summed. */
async function storm(): Promise<number> {
  const rates = await Promise.all(Array.from({ length: PROCS }, stormOne));
  return rates.reduce((a, b) => a + b, 0);
}

interface Traced {
  opsPerSec: number;
  inChain: number;
  status: ProbeStatus;
  balanced: boolean;
  idleRssMiB: number;
  peakRssMiB: number;
  cpuCores: number;
  verified: string;
  flags: string;
}

async function traced(dedup: boolean, n: number): Promise<Traced> {
  const dir = join(work, `ev-${n}-${dedup ? 'dedup' : 'every'}`);
  const stella = await startStella(dir, key, [`dedup.enabled=${dedup}`, `filters.path_allowlist=${data}/**`]);
  const { pid } = stella;
  await sleep(2000);
  const idle = mem(pid).rss;
  const flags = nodeFlags(pid);
  let hwm = 0;
  const sampler = setInterval(() => {
    hwm = Math.max(hwm, mem(pid).hwm);
  }, 100);
  const c0 = cpuS(pid);
  const t0 = performance.now();
  const opsPerSec = await storm();
  const c1 = cpuS(pid);
  const wallS = (performance.now() - t0) / 1000;
  hwm = Math.max(hwm, mem(pid).hwm);
  stella.child.kill('SIGTERM');
  const code = await stella.exited;
  clearInterval(sampler);
  if (code !== 0) throw new Error(`stella exited ${code}: ${stella.log().slice(-2000)}`);
  // Read the chain back: file_open records of the workload, and the final status.
  const chain = readChain(dir);
  const verified = VERIFY ? verifyChain(dir, pub) : 'skipped';
  rmSync(dir, { recursive: true, force: true });
  return {
    opsPerSec,
    ...chain,
    idleRssMiB: mib(idle),
    peakRssMiB: mib(hwm),
    cpuCores: (c1 - c0) / wallS,
    verified,
    flags,
  };
}

console.log(
  `machine: ${cpus().length} CPU (${cpus()[0]?.model ?? '?'}), kernel ${release()}, Node ${process.version}; ` +
    `fsops storm ${OPS} open+close over ${DISTINCT} files in each of ${PROCS} process(es), ${ROUNDS} round(s); load average ${loadAverage()}`,
);
console.log(
  '| round | mode | workload ops/s | ratio | file_open in chain / opens | final status seen / dedup / emitted / lost | balanced | idle RSS | peak RSS | collector CPU (cores) | verify-chain | collector heap flags |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
try {
  for (let round = 1; round <= ROUNDS; round++) {
    let base = Number.NaN;
    for (const mode of MODES) {
      if (mode === 'untraced') {
        base = await storm();
        console.log(
          `| ${round} | untraced | ${Math.round(base).toLocaleString('en')} | 1.00x | - | - | - | - | - | - | - | - |`,
        );
        continue;
      }
      const t = await traced(mode === 'dedup', round);
      const s = t.status;
      console.log(
        `| ${round} | ${mode === 'dedup' ? 'dedup on' : 'every event'} | ${Math.round(t.opsPerSec).toLocaleString('en')} | ${(t.opsPerSec / base).toFixed(2)}x | ${t.inChain.toLocaleString('en')} / ${(OPS * PROCS).toLocaleString('en')} (${((t.inChain / (OPS * PROCS)) * 100).toFixed(1)} %) | ${s.seen} / ${s.deduplicated} / ${s.emitted} / ${s.lost} | ${t.balanced ? 'yes' : 'NO'} | ${t.idleRssMiB.toFixed(0)} MiB | ${t.peakRssMiB.toFixed(0)} MiB | ${t.cpuCores.toFixed(2)} | ${t.verified} | ${t.flags} |`,
      );
    }
  }
  console.log(`load average after: ${loadAverage()}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
