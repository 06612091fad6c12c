/**
 * What the CLI benchmarks share: running `stella signals start` as a user
 * would (the committed bin, so it applies its own default heap cap unless
 * BENCH_STELLA_NODE_OPTIONS sets them), reading a process's memory and CPU from /proc,
 * and reading a sealed chain back.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyPair } from '@stellaops/evidence-chain';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const STELLA = join(ROOT, 'packages/cli/bin/stella.js');

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const mib = (bytes: number) => bytes / 2 ** 20;

/** The 1, 5 and 15 minute load averages, as printed with every bench's numbers. */
export const loadAverage = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

/**
 * A temporary directory for one bench run: `files` empty files `x0..` in
 * `data` for the workload to open, and a signing key pair.
 */
export function benchDir(
  name: string,
  files: number,
): { work: string; data: string; key: string; pub: string } {
  const work = mkdtempSync(join(tmpdir(), `stella-${name}-`));
  const data = join(work, 'f');
  mkdirSync(data);
  for (let i = 0; i < files; i++) writeFileSync(join(data, `x${i}`), '');
  const key = join(work, 'key.pem');
  const pub = join(work, 'key.pub.pem');
  generateKeyPair(key, pub);
  return { work, data, key, pub };
}

/** Exit unless this runs as root with a built CLI. */
export function requireRootAndCli(bench: string): void {
  if (process.getuid?.() !== 0) {
    process.stderr.write(`${bench} bench needs root (it runs stella signals start)\n`);
    process.exit(1);
  }
  if (!existsSync(join(ROOT, 'packages/cli/dist/bin.js'))) {
    process.stderr.write('build the CLI first: npx nx run @stellaops/cli:build\n');
    process.exit(1);
  }
}

/** Compile the static fsops workload of packages/probes into `dir`; its path. */
export function buildFsops(dir: string): string {
  const out = join(dir, 'fsops');
  execFileSync('cc', ['-O2', '-static', '-o', out, join(ROOT, 'packages/probes/test/helpers/fsops.c')]);
  return out;
}

/** VmRSS, VmHWM, RssAnon and RssFile of a process, bytes (0 once it is gone). */
export function mem(pid: number): { rss: number; hwm: number; anon: number; file: number } {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? 0) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM'), anon: kb('RssAnon'), file: kb('RssFile') };
  } catch {
    return { rss: 0, hwm: 0, anon: 0, file: 0 };
  }
}

/** utime+stime of a process, seconds. */
export function cpuS(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** The heap flags a running process has, from its arguments (the CLI's re-exec) and NODE_OPTIONS. */
export function nodeFlags(pid: number): string {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    const opts = env.find((e) => e.startsWith('NODE_OPTIONS='))?.slice('NODE_OPTIONS='.length) ?? '';
    return [...argv, ...opts.split(/\s+/)].filter((a) => a.startsWith('--max')).join(' ') || '(none)';
  } catch {
    return '?';
  }
}

/** A started collector: its process, its log so far, and its exit. */
export interface RunningStella {
  child: ChildProcess;
  pid: number;
  log(): string;
  exited: Promise<number | null>;
}

/**
 * `stella signals start` into `dir` with `--key` and `--set`s, file_open and
 * exec only unless `allProbes` (the network and TLS probes see nothing of a
 * file workload); resolves once it logged "collector started".
 */
export async function startStella(
  dir: string,
  key: string,
  sets: string[],
  allProbes = false,
): Promise<RunningStella> {
  const args = ['signals', 'start', '--target', dir, '--key', key];
  const fileOnly = allProbes ? [] : ['probes.tcp_state=false', 'probes.libc_net=false', 'probes.tls=false'];
  for (const s of [...sets, ...fileOnly]) args.push('--set', s);
  // BENCH_STELLA_NODE_OPTIONS: node flags for the collector only (not this process).
  const nodeOptions = process.env.BENCH_STELLA_NODE_OPTIONS;
  const child = spawn(process.execPath, [STELLA, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, STELLA_CONFIG: '', ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}) },
  });
  let log = '';
  child.stderr!.on('data', (b) => {
    log += b;
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  for (let i = 0; i < 600 && !log.includes('collector started'); i++) {
    if (child.exitCode !== null) throw new Error(`stella exited ${child.exitCode}: ${log}`);
    await sleep(100);
  }
  if (!log.includes('collector started')) throw new Error(`stella did not start: ${log}`);
  return { child, pid: child.pid!, log: () => log, exited };
}

/** Final collector_status of a chain, one probe's counters. */
export interface ProbeStatus {
  seen: number;
  filtered: number;
  deduplicated: number;
  emitted: number;
  lost: number;
}

/**
 * Read a sealed chain back: file_open records in it, the final status of
 * file_open, and whether every probe's final status balances
 * (seen = filtered + deduplicated + emitted + lost).
 */
export function readChain(dir: string): { inChain: number; status: ProbeStatus; balanced: boolean } {
  // Bytes, not one string per chunk: a 100 MiB chunk as a string (and its
  // lines) would take more heap than the collector under test.
  const type = Buffer.from('"type":"file_open"');
  const fin = Buffer.from('"final":true');
  let inChain = 0;
  let final: { probes: Array<Record<string, string>> } | undefined;
  for (const f of readdirSync(dir)
    .filter((x) => x.endsWith('.ndjson'))
    .sort()) {
    const buf = readFileSync(join(dir, f));
    for (let i = buf.indexOf(type); i >= 0; i = buf.indexOf(type, i + type.length)) inChain++;
    const at = buf.lastIndexOf(fin);
    if (at >= 0) {
      const end = buf.indexOf(10, at);
      final = JSON.parse(buf.subarray(buf.lastIndexOf(10, at) + 1, end < 0 ? buf.length : end).toString());
    }
  }
  const fo = final?.probes.find((p) => p.name === 'file_open') ?? {};
  const num = (k: string) => Number(fo[k] ?? Number.NaN);
  const balanced =
    final?.probes.every(
      (p) =>
        BigInt(p.seen!) ===
        BigInt(p.filtered!) + BigInt(p.deduplicated!) + BigInt(p.emitted!) + BigInt(p.lost!),
    ) === true;
  return {
    inChain,
    status: {
      seen: num('seen'),
      filtered: num('filtered'),
      deduplicated: num('deduplicated'),
      emitted: num('emitted'),
      lost: num('lost'),
    },
    balanced,
  };
}

/** `verify-chain` over `dir` with `pub`: "ok" or why not. */
export function verifyChain(dir: string, pub: string): string {
  try {
    execFileSync(process.execPath, [STELLA, 'signals', 'verify-chain', dir, '--key', pub], {
      stdio: 'ignore',
    });
    return 'ok';
  } catch (e) {
    return `FAILED (exit ${(e as { status?: number }).status})`;
  }
}

/**
 * Read a sealed chain back, every record type (each line parsed: for the
 * smaller chains of the network benches): records per `type`, the final
 * status of every probe by name, and whether they all balance.
 */
export function readChainTypes(dir: string): {
  types: Map<string, number>;
  probes: Map<string, ProbeStatus>;
  balanced: boolean;
} {
  const types = new Map<string, number>();
  let final: { probes: Array<Record<string, string>> } | undefined;
  for (const f of readdirSync(dir)
    .filter((x) => x.endsWith('.ndjson'))
    .sort()) {
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      if (!line) continue;
      const r = JSON.parse(line) as { type: string; final?: boolean; probes?: Array<Record<string, string>> };
      types.set(r.type, (types.get(r.type) ?? 0) + 1);
      if (r.type === 'collector_status' && r.final === true) final = r as typeof final;
    }
  }
  const probes = new Map<string, ProbeStatus>();
  for (const p of final?.probes ?? []) {
    const num = (k: string) => Number(p[k] ?? Number.NaN);
    probes.set(String(p.name), {
      seen: num('seen'),
      filtered: num('filtered'),
      deduplicated: num('deduplicated'),
      emitted: num('emitted'),
      lost: num('lost'),
    });
  }
  const balanced =
    final !== undefined &&
    [...probes.values()].every((s) => s.seen === s.filtered + s.deduplicated + s.emitted + s.lost);
  return { types, probes, balanced };
}
