import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gate } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CgroupResolver, defaultCgroupRoot, parseProcCgroup } from './cgroup.js';

describe('parseProcCgroup', () => {
  it('splits the v2 line from v1 hierarchies', () => {
    const pc = parseProcCgroup('9:name=systemd:/a\n4:memory:/b\n2:cpu,cpuacct:/c\n0::/d/e\n');
    expect(pc.v2).toBe('/d/e');
    expect(pc.v1.get('name=systemd')).toBe('/a');
    expect(pc.v1.get('cpuacct')).toBe('/c');
  });
  it('has no v2 path on a v1-only host', () => {
    expect(parseProcCgroup('1:cpu:/x\n').v2).toBeUndefined();
  });
});

const root = defaultCgroupRoot();
const reason = process.getuid?.() !== 0 ? 'needs root to create cgroups' : undefined;

describe.runIf(gate('cgroup v2 resolution (real cgroupfs)', reason))(
  'CgroupResolver on the real cgroup tree',
  () => {
    const name = `stella-enrich-test-${process.pid}`;
    const dir = join(root, name, 'inner');
    let child: ReturnType<typeof spawn>;
    let ino: bigint;

    beforeAll(async () => {
      mkdirSync(dir, { recursive: true });
      child = spawn('sleep', ['60'], { stdio: 'ignore' });
      await new Promise((r) => child.once('spawn', r));
      writeFileSync(join(dir, 'cgroup.procs'), String(child.pid));
      ino = statSync(dir, { bigint: true }).ino;
    });

    afterAll(async () => {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      rmdirSync(dir);
      rmdirSync(join(root, name));
    });

    it("maps a pid's cgroup id to its path synchronously, checking the inode", () => {
      const r = new CgroupResolver({ cgroupRoot: root });
      expect(r.lookup(ino, child.pid)).toEqual({ path: `/${name}/inner`, hierarchy: 'v2' });
      // The wrong id for this pid is not trusted.
      expect(r.lookup(ino + 1000000n, child.pid)).toBeUndefined();
    });

    it('finds an id without a pid by scanning the tree, starting scans at most once per interval', async () => {
      const r = new CgroupResolver({ cgroupRoot: root, scanIntervalMs: 300 });
      expect(r.lookup(ino)).toBeUndefined();
      // Before the first scan starts: the second may start no earlier than 300 ms after it,
      // however long the first one took (a lower bound that holds on a loaded machine).
      const t0 = performance.now();
      expect(await r.resolve(ino)).toEqual({ path: `/${name}/inner`, hierarchy: 'v2' });
      expect(r.scans).toBe(1);
      // Unknown ids: each call needs a scan newer than itself; concurrent calls share it.
      const misses = await Promise.all([1, 2, 3, 4, 5].map((i) => r.resolve(123456789000n + BigInt(i))));
      expect(misses).toEqual([undefined, undefined, undefined, undefined, undefined]);
      expect(r.scans).toBe(2);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(300); // waited for its turn
      expect(r.idOf(`/${name}/inner`)).toBe(ino);
    });

    it('sees a cgroup created right after a scan', async () => {
      const r = new CgroupResolver({ cgroupRoot: root, scanIntervalMs: 200 });
      await r.resolve(987654321n); // a scan just ran
      const fresh = join(root, name, `fresh-${Date.now()}`);
      mkdirSync(fresh);
      try {
        const id = statSync(fresh, { bigint: true }).ino;
        expect((await r.resolve(id))?.path).toBe(`/${name}/${fresh.split('/').pop()}`);
      } finally {
        rmdirSync(fresh);
      }
    });

    it('falls back to the v1 path for a process that is in no v2 cgroup', async (ctx) => {
      const r = new CgroupResolver({ cgroupRoot: root });
      // Needs a hybrid host (v1 pids hierarchy) and a runner in the v2 root, so the child inherits no v2 cgroup.
      if (r.procCgroups(process.pid)?.v2 !== '/' || !existsSync('/sys/fs/cgroup/pids')) {
        process.stderr.write(
          '[skip] v1 fallback: not a hybrid host with this runner in the v2 root cgroup\n',
        );
        return ctx.skip();
      }
      const v1dir = join('/sys/fs/cgroup/pids', name);
      mkdirSync(v1dir, { recursive: true });
      const other = spawn('sleep', ['60'], { stdio: 'ignore' });
      try {
        await new Promise((res) => other.once('spawn', res));
        writeFileSync(join(v1dir, 'cgroup.procs'), String(other.pid));
        expect(r.lookup(r.rootId, other.pid)).toEqual({ path: `/${name}`, hierarchy: 'v1' });
      } finally {
        other.kill('SIGKILL');
        await new Promise((res) => other.once('exit', res));
        rmdirSync(v1dir);
      }
    });
  },
);
