import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CollectorStatusRecord, EvidenceRecord } from '@stellaops/ndjson';
import { canRunBpf, commandUnavailableReason, gate } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect } from '../src/collect.js';

// The accounting checked against counts the workload reports itself: a static
// C program in a cgroup of its own opens one file N times, and the collector
// traces only that cgroup (in-kernel filter). Every other open on the machine
// is `filtered`; the workload's N opens must each be deduplicated, emitted or
// lost, and the kernel's own `seen` must exceed `filtered` by exactly N.

const run =
  canRunBpf('collect() accounting on the real kernel') &&
  gate('collect() accounting on the real kernel', commandUnavailableReason('cc'));

const N = 5000;
const NO_OTHER_PROBES = { exec: false, tcp_state: false, libc_net: false, tls: false } as const;
/** A file_open probe's record: where BPF LSM or fentry attaches, file_open_lsm's carry syscall "lsm". */
const isSyscallOpen = (r: EvidenceRecord): r is Extract<EvidenceRecord, { type: 'file_open' }> =>
  r.type === 'file_open' && r.syscall !== 'lsm';

function cgroupRoot(): string {
  for (const p of ['/sys/fs/cgroup/unified', '/sys/fs/cgroup']) {
    try {
      if (statSync(join(p, 'cgroup.procs')).isFile() && statSync(join(p, 'cgroup.controllers')).isFile())
        return p;
    } catch {
      // not this one
    }
  }
  throw new Error('no cgroup v2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified');
}

/** Runs the storm in a fresh cgroup (joined before its first open); resolves with its own open count. */
async function storm(bin: string, cgDir: string, path: string): Promise<{ pid: number; opens: number }> {
  const child = spawn(bin, [path, String(N)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const done = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  writeFileSync(join(cgDir, 'cgroup.procs'), String(child.pid));
  child.stdin!.end('g');
  expect(await done).toBe(0);
  return { pid: child.pid!, opens: Number(out.trim()) };
}

describe.runIf(run)('collect(): the counters balance against what the workload did', () => {
  let bin: string;
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'stella-accounting-'));
    bin = join(dir, 'open-storm');
    const src = fileURLToPath(new URL('./helpers/open-storm.c', import.meta.url));
    execFileSync('cc', ['-O2', '-static', '-Wall', '-o', bin, src], { stdio: 'inherit' });
    writeFileSync(join(dir, 'target'), 'x');
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const dedup of [false, true]) {
    it(`a storm of N opens in one cgroup (dedup ${dedup ? 'on' : 'off'}): kernel seen - filtered = N = deduplicated + emitted + lost`, async () => {
      const cgDir = join(cgroupRoot(), `stella-accounting-${process.pid}-${Date.now()}`);
      mkdirSync(cgDir);
      const cgroupId = statSync(cgDir, { bigint: true }).ino;
      const target = join(dir, 'target');
      try {
        const c = collect({
          enrich: false,
          statusIntervalMs: 60_000,
          probes: NO_OTHER_PROBES,
          filters: { cgroupIds: [cgroupId] },
          dedup: { enabled: dedup },
        });
        await c.ready;
        // Nobody reads the collection yet: the workload's records wait in the
        // ring and the queue, where the account must show them in flight.
        const w = await storm(bin, cgDir, target);
        expect(w.opens).toBe(N);
        const running = c.accounts().find((a) => a.name === 'file_open')!;
        const k = running.stages.kernel;
        // Only the workload's opens get past the cgroup filter, and each has its fate.
        expect(k.deduplicated + k.emitted + k.lost).toBe(BigInt(N));
        expect(running.emitted).toBe(0n);
        // The kernel saw them all (other processes' opens may be mid-program: >=).
        expect(running.seen - running.filtered).toBeGreaterThanOrEqual(BigInt(N));
        expect(running.inFlight).toBeGreaterThanOrEqual(k.emitted);
        expect(running.seen).toBe(
          running.filtered + running.deduplicated + running.emitted + running.lost + running.inFlight,
        );

        const records: EvidenceRecord[] = [];
        const warnings: string[] = [];
        c.on('warning', (m) => warnings.push(m));
        const consumer = (async () => {
          for await (const r of c) records.push(r);
        })();
        const deadline = Date.now() + 10_000;
        while (records.filter(isSyscallOpen).length < Number(k.emitted) && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 20));
        await c.close();
        await consumer;

        const final = records.at(-1) as CollectorStatusRecord;
        expect(final.final).toBe(true);
        const fo = final.probes.find((p) => p.name === 'file_open')!;
        const [seen, filtered, deduplicated, emitted, lost] = [
          fo.seen,
          fo.filtered,
          fo.deduplicated,
          fo.emitted,
          fo.lost,
        ].map(BigInt) as [bigint, bigint, bigint, bigint, bigint];
        // Read after the probes were detached: exact, nothing in flight.
        expect(fo.in_flight).toBeUndefined();
        expect(seen - filtered).toBe(BigInt(N));
        expect(deduplicated + emitted + lost).toBe(BigInt(N));
        expect(seen).toBe(filtered + deduplicated + emitted + lost);
        const inStream = records.filter((r) => isSyscallOpen(r) && r.pid === w.pid);
        expect(BigInt(inStream.length)).toBe(emitted);
        expect(inStream.every((r) => r.type === 'file_open' && r.path === target)).toBe(true);
        if (dedup) {
          expect(emitted + lost).toBeGreaterThanOrEqual(1n);
          expect(deduplicated).toBeGreaterThanOrEqual(BigInt(N - 1) - lost);
        } else {
          expect(deduplicated).toBe(0n);
        }
        expect(warnings.filter((m) => m.includes('do not add up'))).toEqual([]);
      } finally {
        try {
          rmdirSync(cgDir);
        } catch {
          // a process still in it: leave it for inspection
        }
      }
    }, 60_000);
  }
});
