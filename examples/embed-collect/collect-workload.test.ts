import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CollectorStatusRecord, EvidenceRecord } from '@stellaops/signals';
import { canRunBpf } from '@stellaops/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { collectWorkload, countByType, emittedByType } from './collect-workload.js';

const run = canRunBpf('examples/embed-collect on the real kernel');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The kernel's `seen` against the fates; in-band records add what was still in flight. */
function invariant(status: CollectorStatusRecord): void {
  for (const p of status.probes) {
    if (status.final) expect(p.in_flight, `${p.name}: in flight in a final status`).toBeUndefined();
    const sum =
      BigInt(p.filtered) +
      BigInt(p.deduplicated) +
      BigInt(p.emitted) +
      BigInt(p.lost) +
      BigInt(p.in_flight ?? 0);
    expect(BigInt(p.seen), `${p.name}: seen = filtered + deduplicated + emitted + lost + in_flight`).toBe(
      sum,
    );
  }
}

const text = (b: unknown) => (typeof b === 'string' ? b : JSON.stringify(b));

describe.runIf(run)('embedding collect(): one command in its own cgroup', () => {
  // Unique binaries and file: in-kernel dedup can never hide them behind an earlier identical fact.
  const dir = mkdtempSync(join(tmpdir(), 'stella-embed-'));
  dirs.push(dir);
  const input = join(dir, 'input.txt');
  writeFileSync(input, 'hello\n');
  const cat = join(dir, 'stella-example-cat');
  const tru = join(dir, 'stella-example-true');
  copyFileSync('/bin/cat', cat);
  copyFileSync('/bin/true', tru);
  chmodSync(cat, 0o755);
  chmodSync(tru, 0o755);

  it('reports what the command did, only that, gap-free and exactly accounted', async () => {
    const ev = await collectWorkload(
      '/bin/sh',
      ['-c', '"$1" "$2" > /dev/null; "$3"; exit 3', 'sh', cat, input, tru],
      { collect: { enrich: false, probes: { tls: false, libc_net: false, tcp_state: false } } },
    );
    expect(ev.exitCode).toBe(3);
    expect(ev.invalid).toEqual([]);

    // One stream: seq grows by exactly one, the final status is last.
    const first = BigInt(ev.records[0]!.seq);
    expect(ev.records.map((r) => BigInt(r.seq))).toEqual(ev.records.map((_, i) => first + BigInt(i)));
    expect(ev.final).toBe(ev.records.at(-1));
    invariant(ev.final);
    for (const s of ev.records.filter((r): r is CollectorStatusRecord => r.type === 'collector_status'))
      invariant(s);

    // The in-kernel cgroup filter: every record is from the command's cgroup.
    const events = ev.records.filter(
      (r): r is Exclude<EvidenceRecord, CollectorStatusRecord> => r.type !== 'collector_status',
    );
    expect(events.length).toBeGreaterThan(0);
    for (const r of events) expect(r.cgroup_id).toBe(ev.cgroupId.toString());

    // What it did: the shell became /bin/sh -c, forked cat (which opened the input) and true, exited 3.
    const catExec = events.find((r) => r.type === 'process_exec' && text(r.filename) === cat);
    expect(catExec, 'exec of the copied cat').toMatchObject({ ppid: ev.pid });
    const open = events.find((r) => r.type === 'file_open' && text(r.path) === input);
    expect(open, 'open of the input file').toMatchObject({ pid: catExec!.pid, path_resolution: 'absolute' });
    expect((open as { ret: number }).ret).toBeGreaterThanOrEqual(0);
    expect(events.find((r) => r.type === 'process_exec' && text(r.filename) === tru)).toMatchObject({
      ppid: ev.pid,
    });
    expect(events.find((r) => r.type === 'process_exit' && r.pid === ev.pid)).toMatchObject({ exit_code: 3 });

    // The final status says exactly how many records of each probe are in the stream.
    const counts = countByType(ev.records);
    for (const [type, emitted] of emittedByType(ev.final)) expect(counts.get(type) ?? 0n, type).toBe(emitted);
    expect(counts.get('file_open')).toBeGreaterThan(0n);
    expect(ev.final.probes.map((p) => p.name)).toEqual(['exec', 'exit', 'file_open', 'file_open_lsm']);
  }, 60_000);

  it('counts what a user-space filter dropped as filtered, never silently', async () => {
    const ev = await collectWorkload('/bin/sh', ['-c', '"$1" "$2" > /dev/null', 'sh', cat, input], {
      collect: {
        enrich: false,
        probes: { tls: false, libc_net: false, tcp_state: false },
        dedup: { enabled: false },
        // `*.log` is not a plain prefix glob: the kernel narrows to the directory, user space decides.
        filters: { pathAllowlist: [`${dir}/*.log`] },
      },
    });
    expect(ev.invalid).toEqual([]);
    const opens = ev.records.filter((r) => r.type === 'file_open');
    expect(opens.map((r) => text(r.path))).not.toContain(input);
    const fo = ev.final.probes.find((p) => p.name === 'file_open')!;
    expect(BigInt(fo.filtered)).toBeGreaterThan(0n);
    expect(BigInt(fo.emitted)).toBe(BigInt(opens.length));
    invariant(ev.final);
  }, 60_000);
});
