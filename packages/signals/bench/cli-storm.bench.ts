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
 *
 * Per traced run it prints: workload ops/s and the ratio to the untraced run
 * of the same round, file_open records in the chain (read back from the
 * chunks) against opens made, the final collector_status of file_open
 * (seen, deduplicated, emitted, lost, balanced), the collector's idle RSS
 * after start-up, its peak RSS (VmHWM) and its CPU while the storm ran.
 * Only file_open and exec are on (the network and TLS probes do not see this
 * workload); the path allowlist keeps other activity on the machine out.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyPair } from '@stellaops/evidence-chain';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const STELLA = join(ROOT, 'packages/cli/bin/stella.js');
const OPS = Number(process.env.BENCH_OPS ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1);
const DISTINCT = Number(process.env.BENCH_FILES ?? 10_000);
const MODES = (process.env.BENCH_MODES ?? 'untraced,dedup,every').split(',');
const VERIFY = process.env.BENCH_VERIFY !== '0';

if (process.getuid?.() !== 0) {
  process.stderr.write('cli-storm bench needs root (it runs stella signals start)\n');
  process.exit(1);
}
if (!existsSync(join(ROOT, 'packages/cli/dist/bin.js'))) {
  process.stderr.write('build the CLI first: npx nx run @stellaops/cli:build\n');
  process.exit(1);
}

const work = mkdtempSync(join(tmpdir(), 'stella-cli-storm-'));
const data = join(work, 'f');
mkdirSync(data);
for (let i = 0; i < DISTINCT; i++) writeFileSync(join(data, `x${i}`), '');
const fsops = join(work, 'fsops');
execFileSync('cc', ['-O2', '-static', '-o', fsops, join(ROOT, 'packages/probes/test/helpers/fsops.c')]);
const key = join(work, 'key.pem');
generateKeyPair(key, join(work, 'key.pub.pem'));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One storm: `OPS` open+close over `DISTINCT` files; ops/s by the workload's own clock. */
function storm(): Promise<number> {
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

/** VmRSS / VmHWM of a process, bytes (0 once it is gone). */
function mem(pid: number): { rss: number; hwm: number } {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? 0) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return { rss: 0, hwm: 0 };
  }
}

/** utime+stime of a process, seconds. */
function cpuS(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

interface Traced {
  opsPerSec: number;
  inChain: number;
  status: { seen: number; filtered: number; deduplicated: number; emitted: number; lost: number };
  balanced: boolean;
  idleRssMiB: number;
  peakRssMiB: number;
  cpuCores: number;
  verified: string;
}

async function traced(dedup: boolean, n: number): Promise<Traced> {
  const dir = join(work, `ev-${n}-${dedup ? 'dedup' : 'every'}`);
  const child: ChildProcess = spawn(
    process.execPath,
    [
      STELLA,
      'signals',
      'start',
      '--target',
      dir,
      '--key',
      key,
      '--set',
      `dedup.enabled=${dedup}`,
      '--set',
      `filters.path_allowlist=${data}/**`,
      '--set',
      'probes.tcp_state=false',
      '--set',
      'probes.libc_net=false',
      '--set',
      'probes.tls=false',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, STELLA_CONFIG: '' } },
  );
  let log = '';
  child.stderr!.on('data', (b) => {
    log += b;
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  const pid = child.pid!;
  for (let i = 0; i < 600 && !log.includes('collector started'); i++) {
    if (child.exitCode !== null) throw new Error(`stella exited ${child.exitCode}: ${log}`);
    await sleep(100);
  }
  if (!log.includes('collector started')) throw new Error(`stella did not start: ${log}`);
  await sleep(2000);
  const idle = mem(pid).rss;
  let hwm = 0;
  const sampler = setInterval(() => {
    const m = mem(pid);
    hwm = Math.max(hwm, m.hwm);
  }, 100);
  const c0 = cpuS(pid);
  const t0 = performance.now();
  const opsPerSec = await storm();
  const c1 = cpuS(pid);
  const wallS = (performance.now() - t0) / 1000;
  hwm = Math.max(hwm, mem(pid).hwm);
  child.kill('SIGTERM');
  const code = await exited;
  clearInterval(sampler);
  if (code !== 0) throw new Error(`stella exited ${code}: ${log.slice(-2000)}`);
  // Read the chain back: file_open records of the workload, and the final status.
  let inChain = 0;
  let final: { probes: Array<Record<string, string>> } | undefined;
  for (const f of readdirSync(dir)
    .filter((x) => x.endsWith('.ndjson'))
    .sort()) {
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      if (line.startsWith('{') && line.includes('"type":"file_open"')) inChain++;
      else if (line.includes('"final":true')) final = JSON.parse(line);
    }
  }
  const fo = final?.probes.find((p) => p.name === 'file_open') ?? {};
  const num = (k: string) => Number(fo[k] ?? Number.NaN);
  const status = {
    seen: num('seen'),
    filtered: num('filtered'),
    deduplicated: num('deduplicated'),
    emitted: num('emitted'),
    lost: num('lost'),
  };
  const balanced = (final?.probes ?? []).every(
    (p) =>
      BigInt(p.seen!) ===
      BigInt(p.filtered!) + BigInt(p.deduplicated!) + BigInt(p.emitted!) + BigInt(p.lost!),
  );
  let verified = 'skipped';
  if (VERIFY) {
    try {
      execFileSync(
        process.execPath,
        [STELLA, 'signals', 'verify-chain', dir, '--key', join(work, 'key.pub.pem')],
        {
          stdio: 'ignore',
        },
      );
      verified = 'ok';
    } catch (e) {
      verified = `FAILED (exit ${(e as { status?: number }).status})`;
    }
  }
  rmSync(dir, { recursive: true, force: true });
  return {
    opsPerSec,
    inChain,
    status,
    balanced,
    idleRssMiB: idle / 2 ** 20,
    peakRssMiB: hwm / 2 ** 20,
    cpuCores: (c1 - c0) / wallS,
    verified,
  };
}

console.log(
  `machine: ${cpus().length} CPU (${cpus()[0]?.model ?? '?'}), kernel ${release()}, Node ${process.version}; ` +
    `fsops storm ${OPS} open+close over ${DISTINCT} files, ${ROUNDS} round(s); load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
);
console.log(
  '| round | mode | workload ops/s | ratio | file_open in chain / opens | final status seen / dedup / emitted / lost | balanced | idle RSS | peak RSS | collector CPU (cores) | verify-chain |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
try {
  for (let round = 1; round <= ROUNDS; round++) {
    let base = Number.NaN;
    for (const mode of MODES) {
      if (mode === 'untraced') {
        base = await storm();
        console.log(
          `| ${round} | untraced | ${Math.round(base).toLocaleString('en')} | 1.00x | - | - | - | - | - | - | - |`,
        );
        continue;
      }
      const t = await traced(mode === 'dedup', round);
      const s = t.status;
      console.log(
        `| ${round} | ${mode === 'dedup' ? 'dedup on' : 'every event'} | ${Math.round(t.opsPerSec).toLocaleString('en')} | ${(t.opsPerSec / base).toFixed(2)}x | ${t.inChain.toLocaleString('en')} / ${OPS.toLocaleString('en')} (${((t.inChain / OPS) * 100).toFixed(1)} %) | ${s.seen} / ${s.deduplicated} / ${s.emitted} / ${s.lost} | ${t.balanced ? 'yes' : 'NO'} | ${t.idleRssMiB.toFixed(0)} MiB | ${t.peakRssMiB.toFixed(0)} MiB | ${t.cpuCores.toFixed(2)} | ${t.verified} |`,
      );
    }
  }
  console.log(
    `load average after: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
