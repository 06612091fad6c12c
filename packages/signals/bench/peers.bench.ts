/**
 * The peers of issue 11 in the same run as the product: the open storm of
 * cli-storm.bench.ts (the static `fsops storm`, open+close over 10k distinct
 * files, one process) untraced and under `bpftrace` (one printf line per
 * openat of the storm), libbpf-tools `opensnoop` and, unless left out,
 * `stella signals start` every event, interleaved per round.
 *
 *   flock /tmp/bench.lock npm run bench:peers -w @stellaops/signals   (same as: npx tsx packages/signals/bench/peers.bench.ts)
 *   BENCH_OPS=1000000 BENCH_ROUNDS=3 BENCH_FILES=10000 BENCH_MODES=untraced,bpftrace,opensnoop,stella ...
 *
 * Both peers are filtered in the kernel to the storm's pid and write their
 * lines to a file (not to this process: reading a pipe here would take a
 * core's share from the workload on a 2-core machine). The storm waits at a
 * gate (a shell that opens a canary file in a loop, then execs fsops under
 * the same pid) until the tool's output shows the canary, so a tool is
 * attached before the storm starts without changing how it buffers its
 * output. After the storm the tool runs until its output stops growing
 * (it drained what the kernel kept), then gets SIGINT.
 *
 * Per run it prints: workload ops/s and the ratio to the same round's
 * untraced run, records the tool printed for the storm (lines with the
 * storm's path prefix; for stella, file_open records in the chain) against
 * opens made, the losses the tool reported itself ("Lost N events"; for
 * stella, the final collector_status), and the tool's CPU (utime+stime, in
 * cores) while the storm ran. BPF program time is not in it: it runs in the
 * workload's context and shows up as the workload's slowdown. Then the
 * median of each mode over the rounds. The bench installs nothing: a
 * missing tool prints the apt-get command and its column is skipped.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { delimiter, join } from 'node:path';
import {
  benchDir,
  buildFsops,
  cpuS,
  loadAverage,
  ROOT,
  readChain,
  sleep,
  startStella,
} from './cli-support.js';

const OPS = Number(process.env.BENCH_OPS ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const DISTINCT = Number(process.env.BENCH_FILES ?? 10_000);
const MODES = (process.env.BENCH_MODES ?? 'untraced,bpftrace,opensnoop,stella').split(',');
const TRACEFS = '/sys/kernel/tracing';
const OPENSNOOP = process.env.BENCH_OPENSNOOP;

/** A binary on PATH (plus the sbin directories root has), or undefined. */
function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  return dirs.map((d) => join(d, name)).find((p) => existsSync(p));
}

/** A peer: how to start it on one pid, writing its lines to `out`. */
interface Peer {
  bin: string | undefined;
  /** What to do when `bin` is missing. */
  missing: string;
  args(pid: number, out: string): string[];
  /** Whether the tool writes `out` itself (`-o`) rather than through its stdout. */
  writesOut: boolean;
}

const PEERS: Record<string, Peer> = {
  bpftrace: {
    bin: which('bpftrace'),
    missing: 'install it with: apt-get install -y bpftrace',
    writesOut: true,
    args: (pid, out) => [
      '-o',
      out,
      '-e',
      `tracepoint:syscalls:sys_enter_openat /pid == ${pid}/ { printf("%d %s %s\\n", pid, comm, str(args->filename)); }`,
    ],
  },
  opensnoop: {
    // Debian's libbpf-tools installs it as /usr/sbin/opensnoop (bcc's Python one is opensnoop-bpfcc);
    // BENCH_OPENSNOOP names another build.
    bin: OPENSNOOP ? (existsSync(OPENSNOOP) ? OPENSNOOP : undefined) : which('opensnoop'),
    missing: OPENSNOOP
      ? `BENCH_OPENSNOOP=${OPENSNOOP} does not exist: fix or unset it`
      : 'install it with: apt-get install -y libbpf-tools',
    writesOut: false,
    args: (pid) => ['-p', String(pid)],
  },
};

/** One run's numbers. */
interface Run {
  opsPerSec: number;
  records: number;
  lost: string;
  cpuCores: number;
}

/** Occurrences of `needle` in `buf`. */
function count(buf: Buffer, needle: string): number {
  const n = Buffer.from(needle);
  let c = 0;
  for (let i = buf.indexOf(n); i >= 0; i = buf.indexOf(n, i + n.length)) c++;
  return c;
}

/** The sum of a tool's own "Lost N events" reports in its output or stderr. */
function reportedLost(buf: Buffer): number {
  const word = Buffer.from('Lost ');
  let sum = 0;
  for (let i = buf.indexOf(word); i >= 0; i = buf.indexOf(word, i + word.length)) {
    const m = /^Lost (\d+) events/.exec(buf.toString('latin1', i, i + 40));
    if (m) sum += Number(m[1]);
  }
  return sum;
}

let runs = 0;

/**
 * The storm behind a gate: a shell that opens `canary` in a loop until
 * `go` exists, then execs fsops with the same pid (so a pid filter set now
 * holds for the storm). Resolves with the workload's own ops/s.
 */
function gatedStorm(fsops: string, prefix: string, go: string, canary: string) {
  const c = spawn(
    'sh',
    [
      '-c',
      'while [ ! -e "$1" ]; do : < "$2"; done; shift 2; exec "$@"',
      'gate',
      go,
      canary,
      fsops,
      'storm',
      String(OPS),
      prefix,
      String(DISTINCT),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  c.stdout.on('data', (b) => {
    out += b;
  });
  const opsPerSec = new Promise<number>((resolve, reject) => {
    c.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`fsops exited ${code}`));
      const [n, ns] = out.trim().split(' ').map(Number);
      resolve(n! / (ns! / 1e9));
    });
  });
  return { pid: c.pid!, opsPerSec, open: () => writeFileSync(go, '') };
}

async function waitFor(what: string, ok: () => boolean, tool?: ChildProcess): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (ok()) return;
    if (tool && tool.exitCode !== null) throw new Error(`${what}: the tool exited ${tool.exitCode}`);
    await sleep(50);
  }
  throw new Error(`${what}: gave up after 30 s`);
}

async function untraced(work: string, fsops: string, prefix: string): Promise<number> {
  const go = join(work, `go-${++runs}`);
  writeFileSync(go, '');
  return gatedStorm(fsops, prefix, go, go).opsPerSec;
}

async function underPeer(peer: Peer, work: string, fsops: string, prefix: string): Promise<Run> {
  const n = ++runs;
  const go = join(work, `go-${n}`);
  const canary = join(work, 'canary');
  const out = join(work, `out-${n}.txt`);
  writeFileSync(canary, '');
  writeFileSync(out, '');
  const storm = gatedStorm(fsops, prefix, go, canary);
  const fd = peer.writesOut ? 'ignore' : openSync(out, 'w');
  const stderr: Buffer[] = [];
  const tool = spawn(peer.bin!, peer.args(storm.pid, out), { stdio: ['ignore', fd, 'pipe'] });
  if (typeof fd === 'number') closeSync(fd);
  tool.stderr!.on('data', (b: Buffer) => stderr.push(b));
  const exited = new Promise<void>((r) => tool.once('exit', () => r()));
  try {
    await waitFor(`${peer.bin} attaching`, () => readFileSync(out).includes(canary), tool);
  } catch (e) {
    storm.open();
    tool.kill('SIGKILL');
    throw new Error(`${(e as Error).message}\n${Buffer.concat(stderr).toString().slice(-2000)}`);
  }
  const c0 = cpuS(tool.pid!);
  const t0 = performance.now();
  storm.open();
  const opsPerSec = await storm.opsPerSec;
  const cpuCores = (cpuS(tool.pid!) - c0) / ((performance.now() - t0) / 1000);
  // Let the tool print what the kernel kept: until neither its output nor
  // its CPU time has grown for 0.5 s (a descheduled tool writes nothing).
  let last = '';
  let still = 0;
  await waitFor(`${peer.bin} draining`, () => {
    const now = `${statSync(out).size} ${cpuS(tool.pid!)}`;
    still = now === last ? still + 1 : 0;
    last = now;
    return still >= 10 || tool.exitCode !== null;
  });
  tool.kill('SIGINT');
  const killer = setTimeout(() => tool.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(killer);
  const buf = readFileSync(out);
  rmSync(out);
  const lost = reportedLost(Buffer.concat(stderr)) + reportedLost(buf);
  return { opsPerSec, records: count(buf, prefix), lost: lost.toLocaleString('en'), cpuCores };
}

async function underStella(
  work: string,
  fsops: string,
  data: string,
  prefix: string,
  key: string,
): Promise<Run> {
  const n = ++runs;
  const dir = join(work, `chain-${n}`);
  const go = join(work, `go-${n}`);
  writeFileSync(go, '');
  const stella = await startStella(dir, key, ['dedup.enabled=false', `filters.path_allowlist=${data}/**`]);
  await sleep(2000);
  const c0 = cpuS(stella.pid);
  const t0 = performance.now();
  const opsPerSec = await gatedStorm(fsops, prefix, go, go).opsPerSec;
  const cpuCores = (cpuS(stella.pid) - c0) / ((performance.now() - t0) / 1000);
  stella.child.kill('SIGTERM');
  const code = await stella.exited;
  if (code !== 0) throw new Error(`stella exited ${code}: ${stella.log().slice(-2000)}`);
  const chain = readChain(dir);
  rmSync(dir, { recursive: true, force: true });
  const s = chain.status;
  return {
    opsPerSec,
    records: chain.inChain,
    lost: `${s.lost.toLocaleString('en')} (final status, balanced: ${chain.balanced ? 'yes' : 'NO'})`,
    cpuCores,
  };
}

const median = (xs: number[]) => {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

if (process.getuid?.() !== 0) {
  process.stderr.write('peers bench needs root (bpftrace, opensnoop and stella load BPF programs)\n');
  process.exit(1);
}
const cliBuilt = existsSync(join(ROOT, 'packages/cli/dist/bin.js'));
const modes = MODES.filter((m) => {
  if (m === 'untraced') return true;
  if (m === 'stella') {
    if (!cliBuilt)
      console.log(
        'stella: the CLI is not built, its column is skipped; build it with: npx nx run @stellaops/cli:build',
      );
    return cliBuilt;
  }
  const peer = PEERS[m];
  if (!peer) {
    process.stderr.write(`BENCH_MODES: unknown mode '${m}' (known: untraced, bpftrace, opensnoop, stella)\n`);
    process.exit(1);
  }
  if (!peer.bin) console.log(`${m} is missing, its column is skipped; ${peer.missing}`);
  return peer.bin !== undefined;
});
if (!existsSync(join(TRACEFS, 'events')) && modes.some((m) => m in PEERS)) {
  execFileSync('mount', ['-t', 'tracefs', 'tracefs', TRACEFS], { stdio: 'inherit' });
  console.log(`mounted tracefs at ${TRACEFS} (bpftrace's tracepoints need it)`);
}

const { work, data, key } = benchDir('peers', DISTINCT);
const fsops = buildFsops(work);
const prefix = join(data, 'x');

console.log(
  `machine: ${cpus().length} CPU (${cpus()[0]?.model ?? '?'}), kernel ${release()}, Node ${process.version}; ` +
    `fsops storm ${OPS} open+close over ${DISTINCT} files, ${ROUNDS} round(s), modes ${modes.join(',')}; ` +
    `load average ${loadAverage()}`,
);
console.log(
  '| round | mode | workload ops/s | ratio | records for the storm / opens | lost (tool-reported) | tool CPU (cores) |',
);
console.log('|---|---|---|---|---|---|---|');
const results = new Map<string, Array<Run & { ratio: number }>>();
try {
  for (let round = 1; round <= ROUNDS; round++) {
    let base = Number.NaN;
    for (const mode of modes) {
      let r: Run;
      if (mode === 'untraced') {
        base = await untraced(work, fsops, prefix);
        r = { opsPerSec: base, records: Number.NaN, lost: '-', cpuCores: Number.NaN };
      } else if (mode === 'stella') {
        r = await underStella(work, fsops, data, prefix, key);
      } else {
        r = await underPeer(PEERS[mode]!, work, fsops, prefix);
      }
      const ratio = r.opsPerSec / base;
      results.set(mode, [...(results.get(mode) ?? []), { ...r, ratio }]);
      const kept = Number.isNaN(r.records)
        ? '-'
        : `${r.records.toLocaleString('en')} / ${OPS.toLocaleString('en')} (${((r.records / OPS) * 100).toFixed(1)} %)`;
      const cpu = Number.isNaN(r.cpuCores) ? '-' : r.cpuCores.toFixed(2);
      console.log(
        `| ${round} | ${mode} | ${Math.round(r.opsPerSec).toLocaleString('en')} | ${ratio.toFixed(2)}x | ${kept} | ${r.lost} | ${cpu} |`,
      );
    }
  }
  console.log(`\nmedians over ${ROUNDS} round(s); load average after: ${loadAverage()}`);
  console.log('| mode | workload ops/s | ratio | records kept | tool CPU (cores) |');
  console.log('|---|---|---|---|---|');
  for (const [mode, rs] of results) {
    const kept = median(rs.map((r) => (r.records / OPS) * 100));
    const cpu = median(rs.map((r) => r.cpuCores));
    console.log(
      `| ${mode} | ${Math.round(median(rs.map((r) => r.opsPerSec))).toLocaleString('en')} | ${median(rs.map((r) => r.ratio)).toFixed(2)}x | ${Number.isNaN(kept) ? '-' : `${kept.toFixed(1)} %`} | ${Number.isNaN(cpu) ? '-' : cpu.toFixed(2)} |`,
    );
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
