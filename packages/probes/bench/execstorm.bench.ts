/**
 * Exec-storm benchmark of the exec probe: a busybox shell loop that forks
 * and execs `/bin/busybox true` N times, in a cgroup of its own, measured
 * untraced and traced (exec + exit, dedup off: every exec walks its file's
 * path and is recorded), interleaved round by round so machine noise hits
 * every mode alike. Execs per CPU-second of the workload's cgroup (the BPF
 * programs run in its context) is the number that holds under other load.
 *
 *   cd packages/probes && flock /tmp/bench.lock npx tsx bench/execstorm.bench.ts
 *   BENCH_ROUNDS=5 BENCH_EXECS=5000 ...     (defaults 3 and 3000)
 *   BENCH_OTHER_OBJECT=<fileexec.bpf.o>     adds a "traced, other object" mode (an older build, to compare)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { bpfUnavailableReason } from '@stellaops/testing';
import { openProbeSet, type ProbeSet } from '../src/index.js';
import { Collector, TestCgroup } from '../test/helpers/harness.js';

const why = bpfUnavailableReason();
if (why) {
  process.stderr.write(`execstorm bench needs BPF: ${why}\n`);
  process.exit(1);
}

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const EXECS = Number(process.env.BENCH_EXECS ?? 3000);
const other = process.env.BENCH_OTHER_OBJECT;
const busybox = execFileSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).trim();

type Mode = 'untraced' | 'traced' | 'traced, other object';
const modes: Mode[] = ['untraced', 'traced', ...(other ? (['traced, other object'] as const) : [])];

function cpuUsec(cg: TestCgroup): number {
  const line = readFileSync(join(cg.path, 'cpu.stat'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith('usage_usec'));
  return Number(line?.split(' ')[1] ?? 0);
}

async function sample(mode: Mode): Promise<{ perSec: number; perCpuSec: number; records: number }> {
  const cg = new TestCgroup('stella-execstorm');
  let set: ProbeSet | undefined;
  let col: Collector | undefined;
  try {
    if (mode !== 'untraced') {
      set = openProbeSet({
        probes: ['exec', 'exit'],
        filters: { cgroupIds: [cg.id] },
        dedup: { enabled: false },
        ...(mode === 'traced, other object' ? { objectPath: other } : {}),
      });
      col = new Collector(set);
    }
    const script = `echo $$ > ${cg.path}/cgroup.procs; exec ${busybox} sh -c 'i=0; while [ $i -lt ${EXECS} ]; do /bin/busybox true; i=$((i+1)); done'`;
    const cpu0 = cpuUsec(cg);
    const t0 = process.hrtime.bigint();
    const r = spawnSync('sh', ['-c', script], { stdio: 'inherit' });
    const ns = Number(process.hrtime.bigint() - t0);
    if (r.status !== 0) throw new Error(`workload exited ${r.status}`);
    const cpu = cpuUsec(cg) - cpu0;
    if (col) {
      const deadline = Date.now() + 10_000;
      while (col.events.filter((e) => e.kind === 'exec').length < EXECS && Date.now() < deadline) {
        await new Promise((res) => setTimeout(res, 20));
      }
    }
    return {
      perSec: EXECS / (ns / 1e9),
      perCpuSec: EXECS / (cpu / 1e6),
      records: col ? col.events.filter((e) => e.kind === 'exec').length : 0,
    };
  } finally {
    await set?.close();
    await col?.done;
    cg.remove();
  }
}

const results = new Map<Mode, { perSec: number[]; perCpuSec: number[]; records: number[] }>(
  modes.map((m) => [m, { perSec: [], perCpuSec: [], records: [] }]),
);
for (let round = 0; round < ROUNDS; round++) {
  for (const m of modes) {
    const s = await sample(m);
    const r = results.get(m)!;
    r.perSec.push(s.perSec);
    r.perCpuSec.push(s.perCpuSec);
    r.records.push(s.records);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const base = results.get('untraced')!;
console.log(
  `load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}; ${ROUNDS} rounds x ${EXECS} execs`,
);
console.log('| mode | execs/s (median) | execs per CPU-second | vs untraced (CPU) | exec records |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const m of modes) {
  const r = results.get(m)!;
  const ratio = median(r.perCpuSec) / median(base.perCpuSec);
  console.log(
    `| ${m} | ${median(r.perSec).toFixed(0)} | ${median(r.perCpuSec).toFixed(0)} | ${(ratio * 100).toFixed(1)} % | ${median(r.records)} |`,
  );
}
