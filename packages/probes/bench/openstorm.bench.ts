/**
 * Open-storm benchmark of the file-open probe: the workload (a static C loop
 * of open+close, test/helpers/fsops.c) measured untraced and traced in one
 * run, interleaved round by round so machine noise hits every mode alike.
 *
 *   npm run bench -w @stellaops/probes            (root; ~1-2 minutes)
 *   BENCH_ROUNDS=5 BENCH_OPS=300000 npm run bench -w @stellaops/probes
 *
 * Modes: untraced; "hook only" (an empty tp_btf/sys_exit program: the floor
 * any syscall-tracepoint probe pays, here for comparison); traced with dedup
 * (default options); traced with every event (dedup off). Tracing is limited to the workload's cgroup, so other
 * activity on the machine is filtered in the kernel and does not pollute the
 * numbers. Prints a Markdown table for docs/performance.md.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BpfObject } from '@stellaops/bpf-loader';
import { bpfUnavailableReason } from '@stellaops/testing';
import { openProbeSet, type ProbeSetOptions } from '../src/index.js';
import { buildFsops, runInCgroup, TestCgroup } from '../test/helpers/harness.js';

const why = bpfUnavailableReason();
if (why) {
  process.stderr.write(`openstorm bench needs BPF: ${why}\n`);
  process.exit(1);
}

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const OPS = Number(process.env.BENCH_OPS ?? 200_000);
const DISTINCT = 10_000;

type Mode = 'untraced' | 'hook only' | 'dedup' | 'every';
const MODES: Mode[] = ['untraced', 'hook only', 'dedup', 'every'];
interface Workload {
  name: string;
  procs: number;
  distinct: number;
}
interface Sample {
  opsPerSec: number;
  /** Opens per CPU-second of the workload (BPF programs run in its context): immune to other load. */
  opsPerCpuSec: number;
  records: number;
  recordsPerSec: number;
  lost: bigint;
  emitted: bigint;
  seenInCgroup: bigint;
  cpuPct: number;
}

const workloads: Workload[] = [
  { name: 'same file', procs: 1, distinct: 1 },
  { name: 'same file', procs: 2, distinct: 1 },
  { name: '10k files', procs: 1, distinct: DISTINCT },
  { name: '10k files', procs: 2, distinct: DISTINCT },
];

const bin = buildFsops();
const dir = realpathSync(mkdtempSync(join(tmpdir(), 'stella-openstorm-')));
mkdirSync(join(dir, 'f'));
for (let i = 0; i < DISTINCT; i++) writeFileSync(join(dir, 'f', `x${i}`), '');
const cg = new TestCgroup('stella-openstorm');

// The floor: an empty program on the same hook the file-open probe uses.
const bpfDir = new URL('../bpf/', import.meta.url).pathname;
writeFileSync(
  join(dir, 'empty.bpf.c'),
  '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n#include <bpf/bpf_tracing.h>\n' +
    'char LICENSE[] SEC("license") = "GPL";\n' +
    'SEC("tp_btf/sys_exit") int BPF_PROG(empty_exit, struct pt_regs *regs, long ret) { return 0; }\n',
);
execFileSync('clang', [
  '-O2',
  '-g',
  '-target',
  'bpf',
  `-I${bpfDir}`,
  '-c',
  join(dir, 'empty.bpf.c'),
  '-o',
  join(dir, 'empty.bpf.o'),
]);

async function once(w: Workload, mode: Mode): Promise<Sample> {
  const prefix = w.distinct === 1 ? join(dir, 'f', 'x0') : join(dir, 'f', 'x');
  const args = Array.from({ length: w.procs }, () => ['storm', String(OPS), prefix, String(w.distinct)]);
  if (mode === 'untraced' || mode === 'hook only') {
    const obj = mode === 'hook only' ? BpfObject.open(join(dir, 'empty.bpf.o')) : undefined;
    obj?.load();
    obj?.attach('empty_exit');
    const res = await runInCgroup(bin, cg, args);
    obj?.close();
    return { ...rate(res), records: 0, recordsPerSec: 0, lost: 0n, emitted: 0n, seenInCgroup: 0n, cpuPct: 0 };
  }
  const opts: ProbeSetOptions = {
    probes: ['file_open'],
    filters: { cgroupIds: [cg.id] },
    dedup: { enabled: mode === 'dedup' },
  };
  const set = openProbeSet(opts);
  let records = 0;
  const drain = (async () => {
    for await (const batch of set) records += batch.length;
  })();
  const before = set.counters().get('file_open')!;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const res = await runInCgroup(bin, cg, args);
  // Let the drain catch up with everything emitted, then stop.
  const deadline = Date.now() + 5000;
  let k = set.counters().get('file_open')!;
  while (BigInt(records) < k.emitted - before.emitted && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
    k = set.counters().get('file_open')!;
  }
  const wallNs = Number(process.hrtime.bigint() - t0);
  const cpu = process.cpuUsage(cpu0);
  await set.close();
  await drain;
  return {
    ...rate(res),
    records,
    recordsPerSec: records / (wallNs / 1e9),
    lost: k.lost - before.lost,
    emitted: k.emitted - before.emitted,
    seenInCgroup: k.seen - before.seen - (k.filtered - before.filtered),
    cpuPct: ((cpu.user + cpu.system) / 1000 / (wallNs / 1e6)) * 100,
  };
}

function rate(res: Array<{ out: string; status: number | null }>): {
  opsPerSec: number;
  opsPerCpuSec: number;
} {
  let total = 0;
  let ops = 0;
  let cpuNs = 0;
  for (const r of res) {
    if (r.status !== 0) throw new Error(`workload failed with status ${r.status}`);
    const [n, ns, cpu] = r.out.split(' ').map(Number);
    total += n! / (ns! / 1e9);
    ops += n!;
    cpuNs += cpu!;
  }
  return { opsPerSec: total, opsPerCpuSec: ops / (cpuNs / 1e9) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const results = new Map<string, Sample[]>();
for (let round = 0; round < ROUNDS; round++) {
  for (const w of workloads) {
    for (const mode of MODES) {
      const key = `${w.name}|${w.procs}|${mode}`;
      const s = await once(w, mode);
      results.set(key, [...(results.get(key) ?? []), s]);
      process.stderr.write(
        `round ${round + 1}/${ROUNDS} ${w.name} x${w.procs} ${mode}: ${Math.round(s.opsPerSec)} ops/s, lost ${s.lost}\n`,
      );
    }
  }
}

const lines: string[] = [];
lines.push(
  `machine: ${cpus().length} CPU (${cpus()[0]?.model ?? '?'}), kernel ${process.platform} ${(await import('node:os')).release()}, ${ROUNDS} rounds x ${OPS} opens per process, medians`,
);
lines.push('');
lines.push(
  '| workload | procs | mode | workload ops/s (wall) | ratio | opens per CPU-s | ratio (CPU) | records/s into JS | emitted | lost (% of opens) | collector CPU |',
);
lines.push('|---|---|---|---|---|---|---|---|---|---|---|');
for (const w of workloads) {
  const base = median(results.get(`${w.name}|${w.procs}|untraced`)!.map((s) => s.opsPerSec));
  const baseCpu = median(results.get(`${w.name}|${w.procs}|untraced`)!.map((s) => s.opsPerCpuSec));
  for (const mode of MODES) {
    const ss = results.get(`${w.name}|${w.procs}|${mode}`)!;
    const ops = median(ss.map((s) => s.opsPerSec));
    const opsCpu = median(ss.map((s) => s.opsPerCpuSec));
    const lost = ss.reduce((a, s) => a + s.lost, 0n);
    const seen = ss.reduce((a, s) => a + s.seenInCgroup, 0n);
    const emitted = median(ss.map((s) => Number(s.emitted)));
    const lostPct = seen > 0n ? (Number(lost) / Number(seen)) * 100 : 0;
    lines.push(
      `| ${w.name} | ${w.procs} | ${mode} | ${Math.round(ops).toLocaleString('en')} | ${(ops / base).toFixed(2)}x | ${Math.round(
        opsCpu,
      ).toLocaleString('en')} | ${(opsCpu / baseCpu).toFixed(2)}x | ${
        mode === 'untraced' || mode === 'hook only'
          ? '-'
          : Math.round(median(ss.map((s) => s.recordsPerSec))).toLocaleString('en')
      } | ${mode === 'untraced' || mode === 'hook only' ? '-' : emitted.toLocaleString('en')} | ${mode === 'untraced' || mode === 'hook only' ? '-' : `${lost} (${lostPct.toFixed(3)}%)`} | ${
        mode === 'untraced' || mode === 'hook only' ? '-' : `${median(ss.map((s) => s.cpuPct)).toFixed(1)}%`
      } |`,
    );
  }
}
process.stdout.write(`${lines.join('\n')}\n`);

cg.remove();
rmSync(dir, { recursive: true, force: true });
rmSync(dirname(bin), { recursive: true, force: true });
