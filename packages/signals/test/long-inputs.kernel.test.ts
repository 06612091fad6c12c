/**
 * Inputs longer than schema v1 can hold are evidence, not losses: an open
 * through a deep directory and an exec with a huge argv each give one
 * record, cut to the schema's limits and flagged, and nothing is counted
 * lost.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CollectorStatusRecord, type EvidenceRecord, validateRecord } from '@stellaops/ndjson';
import { canRunBpf } from '@stellaops/testing';
import { describe, expect, it } from 'vitest';
import { type CollectOptions, collect } from '../src/collect.js';

/** The cgroup v2 root. */
function cgroupRoot(): string {
  for (const p of ['/sys/fs/cgroup/unified', '/sys/fs/cgroup']) {
    try {
      if (statSync(join(p, 'cgroup.procs')).isFile() && statSync(join(p, 'cgroup.controllers')).isFile())
        return p;
    } catch {}
  }
  throw new Error('no cgroup v2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified');
}

/**
 * A cgroup of its own for the workload: the collection traces only it (an
 * in-kernel filter), so the final counters are the workload's alone, not
 * those of whatever else runs on the machine.
 */
function makeCgroup(): {
  dir: string;
  id: bigint;
  run(cmd: string, args: string[]): ReturnType<typeof spawnSync>;
} {
  const dir = join(cgroupRoot(), `stella-long-${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(dir);
  return {
    dir,
    id: statSync(dir, { bigint: true }).ino,
    // The shell joins the cgroup, then becomes the command: its exec and opens happen inside.
    run: (cmd, args) =>
      spawnSync('/bin/sh', ['-c', `echo $$ > ${dir}/cgroup.procs && exec "$@"`, 'sh', cmd, ...args], {
        encoding: 'utf8',
      }),
  };
}

/** Run `work` under a collection; returns its records once the collection is closed. */
async function collected(options: CollectOptions, work: () => void): Promise<EvidenceRecord[]> {
  const c = collect({ enrich: false, statusIntervalMs: 60_000, ...options });
  await c.ready;
  const records: EvidenceRecord[] = [];
  const consumer = (async () => {
    for await (const r of c) records.push(r);
  })();
  try {
    work();
  } finally {
    await c.close();
    await consumer;
  }
  for (const r of records) expect(validateRecord(r), JSON.stringify(r).slice(0, 300)).toEqual([]);
  return records;
}

function finalStatus(records: EvidenceRecord[]): CollectorStatusRecord {
  const last = records.at(-1);
  expect(last?.type).toBe('collector_status');
  return last as CollectorStatusRecord;
}

describe.runIf(canRunBpf('long paths and argv through collect()'))('long inputs (kernel)', () => {
  it('an openat through a dirfd of a 3800-byte directory with a 481-byte relative path: one file_open, cut, path_truncated, nothing lost', async () => {
    const top = mkdtempSync(join(tmpdir(), 'stella-long-'));
    const cg = makeCgroup();
    try {
      let deep = top;
      while (deep.length < 3800) deep = join(deep, 'd'.repeat(Math.min(250, 3800 - deep.length - 1)));
      mkdirSync(deep, { recursive: true });
      const name = `target-${randomBytes(4).toString('hex')}.txt`;
      writeFileSync(join(deep, name), 'x');
      // "./" repeated (and one more "/" if odd) up to 481 bytes, ending in the file's name: a real file.
      const k = 481 - name.length;
      const rel = `${'./'.repeat(Math.floor(k / 2))}${k % 2 ? '/' : ''}${name}`;
      expect(rel.length).toBe(481);
      let pid = 0;
      const records = await collected(
        {
          probes: { file_open: true, exec: false, tcp_state: false, libc_net: false, tls: false },
          filters: { cgroupIds: [cg.id], pathAllowlist: [`${top}/**`] },
        },
        () => {
          const script = `
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
f = os.open(sys.argv[2], os.O_RDONLY, dir_fd=fd)
assert os.read(f, 1) == b'x'
print(os.getpid())
`;
          const r = cg.run('/usr/bin/python3', ['-c', script, deep, rel]);
          expect(r.status, String(r.stderr)).toBe(0);
          pid = Number(String(r.stdout).trim());
        },
      );
      const opens = records.filter(
        (r) => r.type === 'file_open' && r.pid === pid && r.path_resolution === 'dirfd',
      );
      expect(opens).toHaveLength(1);
      const open = opens[0] as Extract<EvidenceRecord, { type: 'file_open' }>;
      const full = `${deep}/${rel}`;
      expect(Buffer.byteLength(open.path as string)).toBe(4096);
      expect(full.startsWith(open.path as string)).toBe(true);
      expect(open).toMatchObject({
        path_truncated: true,
        dirfd: expect.any(Number),
        ret: expect.any(Number),
      });
      expect(open.ret).toBeGreaterThanOrEqual(0);
      const status = finalStatus(records).probes.filter((p) => p.name.startsWith('file_open'));
      expect(status.length).toBeGreaterThan(0);
      for (const p of status) expect(p.lost, p.name).toBe('0');
    } finally {
      rmSync(top, { recursive: true, force: true });
      rmdirSync(cg.dir);
    }
  });

  it('an exec with 1500 arguments: one process_exec with the first 1024, argv_truncated, nothing lost', async () => {
    const tag = `stella-argv-${randomBytes(6).toString('hex')}`;
    const args = [tag, ...Array.from({ length: 1499 }, (_, i) => String(i % 10))];
    const cg = makeCgroup();
    let records: EvidenceRecord[];
    try {
      records = await collected(
        {
          probes: { file_open: false, exec: true, tcp_state: false, libc_net: false, tls: false },
          filters: { cgroupIds: [cg.id] },
        },
        () => {
          const r = cg.run('/bin/true', args);
          expect(r.status, String(r.stderr)).toBe(0);
        },
      );
    } finally {
      rmdirSync(cg.dir);
    }
    const execs = records.filter(
      (r) => r.type === 'process_exec' && Array.isArray(r.argv) && r.argv[1] === tag,
    ) as Extract<EvidenceRecord, { type: 'process_exec' }>[];
    expect(execs).toHaveLength(1);
    expect(execs[0]!.argv).toEqual(['/bin/true', ...args].slice(0, 1024));
    expect(execs[0]!.argv_truncated).toBe(true);
    const exec = finalStatus(records).probes.find((p) => p.name === 'exec');
    expect(exec?.lost).toBe('0');
  });
});
