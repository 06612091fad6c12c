/**
 * Where the idle RSS of `stella signals start` goes: the collector is
 * started as a user would start it (its own default heap cap unless
 * BENCH_STELLA_NODE_OPTIONS sets one), left alone for BENCH_IDLE_S seconds,
 * and its /proc/<pid>/smaps summed by mapping: the node binary (file-backed,
 * shared with every node process), the BPF ring buffers (their data pages
 * are mapped twice, so an 8 MiB ring shows as up to 16 MiB), malloc's heap
 * and thread arenas plus V8's heap (anonymous), and the rest. Needs root and
 * a built CLI.
 *
 *   flock /tmp/bench.lock npx tsx packages/signals/bench/idle-rss.bench.ts
 *   BENCH_CONFIGS=file,all BENCH_IDLE_S=10 BENCH_REPS=3 ...
 *
 * Configs: `file` is file_open and exec with a path allow-list nothing on
 * the machine matches (the collector sees no workload); `all` is every
 * default probe and no filter (it sees the machine's own activity).
 */
import { readFileSync, rmSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import {
  benchDir,
  loadAverage,
  mib,
  nodeFlags,
  requireRootAndCli,
  sleep,
  startStella,
} from './cli-support.js';

const CONFIGS = (process.env.BENCH_CONFIGS ?? 'file,all').split(',');
const IDLE_S = Number(process.env.BENCH_IDLE_S ?? 10);
const REPS = Number(process.env.BENCH_REPS ?? 3);

requireRootAndCli('idle-rss');

const { work, key } = benchDir('idle-rss', 0);

/** RSS of a process summed by what is mapped, bytes. */
function breakdown(pid: number): Record<'total' | 'node' | 'ring' | 'malloc' | 'anon' | 'other', number> {
  const out = { total: 0, node: 0, ring: 0, malloc: 0, anon: 0, other: 0 };
  let kind: keyof typeof out = 'other';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const name = head[1]!;
      kind =
        name === process.execPath || name.endsWith('/bin/node')
          ? 'node'
          : name.includes('bpf-map')
            ? 'ring'
            : name === '[heap]'
              ? 'malloc'
              : name === ''
                ? 'anon'
                : 'other';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) {
      out[kind] += Number(rss[1]) * 1024;
      out.total += Number(rss[1]) * 1024;
    }
  }
  return out;
}

console.log(
  `machine: ${cpus().length} CPU (${cpus()[0]?.model ?? '?'}), kernel ${release()}, Node ${process.version}; ` +
    `idle ${IDLE_S} s after start-up, ${REPS} rep(s); load average ${loadAverage()}`,
);
console.log(
  '| config | rep | heap flags | RSS | node binary (file) | BPF rings | malloc [heap] | anonymous (V8 heap, arenas) | other |',
);
console.log('|---|---|---|---|---|---|---|---|---|');
try {
  for (const config of CONFIGS) {
    for (let rep = 1; rep <= REPS; rep++) {
      const dir = join(work, `ev-${config}-${rep}`);
      const sets = config === 'all' ? [] : [`filters.path_allowlist=${join(work, 'nothing')}/**`];
      const stella = await startStella(dir, key, sets, config === 'all');
      await sleep(IDLE_S * 1000);
      const b = breakdown(stella.pid);
      const flags = nodeFlags(stella.pid);
      stella.child.kill('SIGTERM');
      const code = await stella.exited;
      if (code !== 0) throw new Error(`stella exited ${code}: ${stella.log().slice(-2000)}`);
      const f = (x: number) => `${mib(x).toFixed(1)} MiB`;
      console.log(
        `| ${config} | ${rep} | ${flags} | ${f(b.total)} | ${f(b.node)} | ${f(b.ring)} | ${f(b.malloc)} | ${f(b.anon)} | ${f(b.other)} |`,
      );
      rmSync(dir, { recursive: true, force: true });
    }
  }
  console.log(`load average after: ${loadAverage()}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
