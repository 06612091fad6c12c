import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { probeFeature } from '@stellaops/bpf-loader';
import type { ExecEvent, ExitEvent, FileOpenEvent, ProbeEvent, ProbeSet } from '@stellaops/probes';
import { openProbeSet } from '@stellaops/probes';
import { canRunBpf, commandUnavailableReason, gate } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFsops, Collector, run, runInCgroup, TestCgroup } from './helpers/harness.js';

// Real kernel: the probes attached to this machine, a static C helper doing
// exactly the syscalls under test, events picked out by the helper's pid.

const O_WRONLY = 0o1;
const O_CREAT = 0o100;
const O_TRUNC = 0o1000;
const O_CLOEXEC = 0o2000000;
const AT_FDCWD = -100;

const runs =
  canRunBpf('probes file/exec kernel tests') &&
  gate('probes file/exec kernel tests', commandUnavailableReason('cc'));

/** Records of the syscall-based file_open probe (not file_open_lsm, which reports the same opens where it attaches). */
const isOpen =
  (pid: number) =>
  (e: ProbeEvent): e is FileOpenEvent =>
    e.kind === 'file_open' && e.probe === 'file_open' && e.pid === pid;
const isLsmOpen =
  (pid: number) =>
  (e: ProbeEvent): e is FileOpenEvent =>
    e.kind === 'file_open' && e.probe === 'file_open_lsm' && e.pid === pid;
const isExec =
  (pid: number) =>
  (e: ProbeEvent): e is ExecEvent =>
    e.kind === 'exec' && e.pid === pid;
const isExit =
  (pid: number) =>
  (e: ProbeEvent): e is ExitEvent =>
    e.kind === 'exit' && e.pid === pid;
const atLeast = (n: number) => (m: unknown[]) => m.length >= n;

describe.runIf(runs)('file and exec probes on the running kernel', () => {
  let bin: string;
  let dir: string; // realpath: the kernel reports resolved paths, /tmp may be a symlink elsewhere
  let col: Collector;

  beforeAll(() => {
    bin = buildFsops();
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'stella-probes-')));
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'target.txt'), 'x');
    col = new Collector(openProbeSet({ dedup: { enabled: false } }));
  });

  afterAll(async () => {
    await col?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (bin) rmSync(dirname(bin), { recursive: true, force: true });
  });

  it('reports how each probe is attached, and why the optional LSM probe is not', () => {
    const byName = new Map(col.set.status.map((s) => [s.name, s]));
    expect([...byName.keys()]).toEqual(['exec', 'exit', 'file_open', 'file_open_lsm']);
    for (const n of ['exec', 'exit', 'file_open']) {
      expect(byName.get(n)).toMatchObject({ attached: true });
      expect(['tp_btf', 'raw_tp']).toContain(byName.get(n)!.attachType);
    }
    const lsm = byName.get('file_open_lsm')!;
    if (!lsm.attached) expect(lsm.reason).toMatch(/^not attached: \S/);
    else expect(['lsm', 'fentry']).toContain(lsm.attachType);
    // Before 5.11 the programs read the task without bpf_get_current_task_btf, and say so.
    const [major = 0, minor = 0] = release().split('.').map(Number);
    const pre511 = major < 5 || (major === 5 && minor < 11);
    for (const n of ['exec', 'exit', 'file_open']) {
      if (pre511) expect(byName.get(n)!.reason).toMatch(/bpf_get_current_task_btf needs Linux 5\.11/);
      else expect(byName.get(n)!.reason ?? '').not.toMatch(/bpf_get_current_task/);
    }
  });

  it('file_open_lsm attaches wherever the kernel offers BPF LSM or fentry, with the hook it took', (ctx) => {
    const offered = (['lsm', 'fentry'] as const).filter((f) => probeFeature(f).supported);
    const lsm = col.set.status.find((s) => s.name === 'file_open_lsm')!;
    if (offered.length === 0) {
      process.stderr.write(
        `[skip] file_open_lsm must attach: this kernel offers neither hook (${lsm.reason})\n`,
      );
      return ctx.skip();
    }
    expect(lsm, lsm.reason).toMatchObject({ attached: true });
    expect(offered).toContain(lsm.attachType);
    // The best hook the kernel offers, or the reason the better one was refused.
    if (lsm.attachType !== offered[0])
      expect(lsm.reason).toMatch(new RegExp(`^${offered[0]} program failed: `));
  });

  it('open(2) of an absolute path: pid, ppid, path, flags, fd', async () => {
    const target = join(dir, 'sub', 'target.txt');
    const r = run(bin, ['open', target]);
    const [ev] = await col.waitFor(isOpen(r.pid), (m) => m.some((e) => e.path.toString() === target));
    const e = col.events.filter(isOpen(r.pid)).find((x) => x.path.toString() === target)!;
    expect(ev).toBeDefined();
    expect(e).toMatchObject({
      syscall: 'open',
      pid: r.pid,
      tid: r.pid,
      ppid: process.pid,
      uid: process.getuid!(),
      gid: process.getgid!(),
      flags: 0,
      dirfd: AT_FDCWD,
      ret: Number(r.out),
      resolution: 'absolute',
      truncated: false,
    });
    expect(e.comm.toString()).toBe('fsops');
    expect(e.cgroupId).toBeGreaterThan(0n);
    expect(e.monoNs).toBeGreaterThan(0n);
  });

  it('where the BPF LSM hook attaches (lsm=...,bpf), an open is also seen from lsm/file_open with the file and its flags', async (ctx) => {
    const lsm = col.set.status.find((s) => s.name === 'file_open_lsm')!;
    if (!lsm.attached) {
      process.stderr.write(`[skip] file_open_lsm records: ${lsm.reason}\n`);
      return ctx.skip();
    }
    const target = join(dir, 'sub', 'target.txt');
    const r = run(bin, ['open', target]);
    const m = await col.waitFor(isLsmOpen(r.pid), (x) => x.some((e) => e.path.toString() === target));
    const e = m.find((x) => x.path.toString() === target)!;
    expect(e).toMatchObject({
      syscall: 'lsm',
      pid: r.pid,
      ppid: process.pid,
      resolution: 'fd',
      truncated: false,
    });
    expect(e.flags & 3).toBe(0); // O_RDONLY, as fsops opened it
  });

  it('a relative path after chdir is resolved against the working directory', async () => {
    const r = run(bin, ['rel', join(dir, 'sub'), 'target.txt']);
    const m = await col.waitFor(isOpen(r.pid), (x) => x.some((e) => e.resolution === 'cwd'));
    const e = m.find((x) => x.resolution === 'cwd')!;
    expect(e.path.toString()).toBe(join(dir, 'sub', 'target.txt'));
    expect(e).toMatchObject({ syscall: 'openat', dirfd: AT_FDCWD, ret: Number(r.out), flags: 0 });
  });

  it('openat with a directory fd is resolved against that directory', async () => {
    const r = run(bin, ['dirfd', dir, 'sub/target.txt']);
    const [dfd, fd] = r.out.split(' ').map(Number);
    const m = await col.waitFor(isOpen(r.pid), (x) => x.some((e) => e.resolution === 'dirfd'));
    const e = m.find((x) => x.resolution === 'dirfd')!;
    expect(e).toMatchObject({ syscall: 'openat', dirfd: dfd, ret: fd, flags: 0 });
    expect(e.path.toString()).toBe(join(dir, 'sub/target.txt'));
    // The directory open itself, absolute, with O_DIRECTORY.
    expect(m.some((x) => x.path.toString() === dir && x.ret === dfd && x.resolution === 'absolute')).toBe(
      true,
    );
  });

  it('openat2 reports its open_how flags and resolves against dirfd', async () => {
    const r = run(bin, ['openat2', join(dir, 'sub'), 'target.txt']);
    const [dfd, fd] = r.out.split(' ').map(Number);
    const m = await col.waitFor(isOpen(r.pid), (x) => x.some((e) => e.syscall === 'openat2'));
    const e = m.find((x) => x.syscall === 'openat2')!;
    expect(e).toMatchObject({ dirfd: dfd, ret: fd, flags: O_CLOEXEC, resolution: 'dirfd' });
    expect(e.path.toString()).toBe(join(dir, 'sub', 'target.txt'));
  });

  it('creat(2) is an open with O_CREAT|O_WRONLY|O_TRUNC and its mode', async () => {
    const target = join(dir, 'created.txt');
    const r = run(bin, ['creat', target]);
    const [e] = await col
      .waitFor(isOpen(r.pid), (m) => m.some((x) => x.syscall === 'creat'))
      .then((m) => m.filter((x) => x.syscall === 'creat'));
    expect(e).toMatchObject({ flags: O_CREAT | O_WRONLY | O_TRUNC, mode: 0o640, ret: Number(r.out) });
    expect(e!.path.toString()).toBe(target);
    expect(statSync(target).isFile()).toBe(true);
  });

  it('a failing open carries -errno (ENOENT)', async () => {
    const target = join(dir, 'does-not-exist');
    const r = run(bin, ['openat', target]);
    expect(r.out).toBe('-2');
    const m = await col.waitFor(isOpen(r.pid), (x) => x.some((e) => e.path.toString() === target));
    expect(m.find((e) => e.path.toString() === target)).toMatchObject({ ret: -2, flags: O_CLOEXEC });
  });

  it('open_by_handle_at: the path comes from the opened file itself', async () => {
    const r = run(bin, ['handle', join(dir, 'sub'), 'target.txt']);
    expect(r.status).toBe(0);
    const [mfd, fd] = r.out.split(' ').map(Number);
    expect(fd).toBeGreaterThanOrEqual(0);
    const m = await col.waitFor(isOpen(r.pid), (x) => x.some((e) => e.syscall === 'open_by_handle_at'));
    const e = m.find((x) => x.syscall === 'open_by_handle_at')!;
    expect(e).toMatchObject({ resolution: 'fd', ret: fd, dirfd: mfd, flags: 0, truncated: false });
    expect(e.path.toString()).toBe(join(dir, 'sub', 'target.txt'));
  });

  it('path bytes that are not UTF-8 arrive exactly as the kernel has them', async () => {
    const name = Buffer.concat([Buffer.from(`${dir}/bin-`), Buffer.from([0xff, 0xfe, 0x0a, 0x80])]);
    writeFileSync(name, 'x');
    // Node passes string arguments as UTF-8: let printf(1) produce the raw bytes.
    const r = run('/bin/sh', [
      '-c',
      'exec "$0" openat "$(printf "$1")"',
      bin,
      `${dir}/bin-\\377\\376\\n\\200`,
    ]);
    expect(Number(r.out)).toBeGreaterThanOrEqual(0);
    const m = await col.waitFor(isOpen(r.pid), (x) => x.some((e) => e.path.equals(name)));
    expect(m.find((e) => e.path.equals(name))).toMatchObject({ resolution: 'absolute', ret: Number(r.out) });
  });

  it('argv longer than 4096 bytes is kept up to the limit and flagged; argc stays exact', async () => {
    const args = Array.from({ length: 100 }, (_, i) => `arg${i}-${'x'.repeat(60)}`);
    const r = run(bin, ['execve', bin, 'fsops', 'exit', '0', ...args]);
    expect(r.status).toBe(0);
    const m = await col.waitFor(isExec(r.pid), (x) => x.some((e) => e.argc === 103));
    const e = m.find((x) => x.argc === 103)!;
    expect(e.argvTruncated).toBe(true);
    expect(e.argv.slice(0, 3).map(String)).toEqual(['fsops', 'exit', '0']);
    expect(e.argv.reduce((n, a) => n + a.length + 1, 0)).toBeLessThanOrEqual(4096 + 1);
    expect(e.argv.length).toBeLessThan(103);
    expect(args[e.argv.length - 4]!.startsWith(e.argv[e.argv.length - 1]!.toString())).toBe(true);
  });

  it('a path longer than PATH_MAX is reported truncated, never silently cut', async () => {
    const long = `${dir}/${'a'.repeat(250)}/`.repeat(20); // > 4096 bytes
    const r = run(bin, ['openat', long]);
    expect(r.out).toBe('-36'); // ENAMETOOLONG
    const [e] = await col.waitFor(isOpen(r.pid), (m) => m.some((x) => x.ret === -36));
    expect(e).toMatchObject({ truncated: true, resolution: 'absolute' });
    expect(e!.path.length).toBe(4096);
    expect(long.startsWith(e!.path.toString())).toBe(true);
  });

  it('a working directory deeper than the walk limit is flagged truncated, keeping the innermost part', async () => {
    let deep = join(dir, 'deep');
    for (let i = 0; i < 70; i++) deep = join(deep, `d${i}`);
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(deep, 'leaf'), '');
    const r = run(bin, ['rel', deep, 'leaf']);
    const m = await col.waitFor(isOpen(r.pid), (x) => x.some((e) => e.resolution === 'cwd'));
    const e = m.find((x) => x.resolution === 'cwd')!;
    expect(e.truncated).toBe(true);
    expect(e.path.toString().endsWith('/d68/d69/leaf')).toBe(true);
    expect(join(deep, 'leaf').endsWith(e.path.toString())).toBe(true);
  });

  it('execve: filename, argv, exe device and inode, same pid, parent', async () => {
    const r = run(bin, ['execve', bin, 'fsops', 'exit', '0']);
    expect(r.status).toBe(0);
    const st = statSync(bin, { bigint: true });
    // Two execs in this pid: node's spawn of the helper, then the helper's own execve.
    const m = await col.waitFor(isExec(r.pid), atLeast(2));
    const e = m.find((x) => x.argv.map(String).join(' ') === 'fsops exit 0')!;
    expect(e).toBeDefined();
    expect(e).toMatchObject({
      pid: r.pid,
      ppid: process.pid,
      argc: 3,
      argvTruncated: false,
      exeIno: st.ino,
      exeDev: st.dev,
    });
    expect(e.filename.toString()).toBe(bin);
  });

  it('execveat: the kernel names the file through the directory fd', async () => {
    const binDir = join(bin, '..');
    const r = run(bin, ['execveat', binDir, 'fsops', 'fsops', 'exit', '0']);
    expect(r.status).toBe(0);
    const st = statSync(bin, { bigint: true });
    const m = await col.waitFor(isExec(r.pid), atLeast(2));
    const e = m.find((x) => x.argv.map(String).join(' ') === 'fsops exit 0')!;
    expect(e).toMatchObject({ exeIno: st.ino, exeDev: st.dev, argc: 3 });
    expect(e.filename.toString()).toMatch(/^\/dev\/fd\/\d+\/fsops$/);
  });

  it('a process that exits in under a millisecond is seen exec-to-exit with its code', async () => {
    const r = run(bin, ['exit', '7']);
    expect(r.status).toBe(7);
    const [x] = await col.waitFor(isExit(r.pid), atLeast(1));
    const [ex] = await col.waitFor(isExec(r.pid), atLeast(1));
    expect(x).toMatchObject({ exitCode: 7, signal: 0, ppid: process.pid });
    expect(x!.monoNs - ex!.monoNs).toBeLessThan(50_000_000n);
    expect(x!.startNs).toBeLessThanOrEqual(ex!.monoNs);
  });

  it('a process killed by a signal reports the signal', async () => {
    const r = run('/bin/sh', ['-c', 'kill -9 $$']);
    expect(r.status).toBeNull();
    const [x] = await col.waitFor(isExit(r.pid), atLeast(1));
    expect(x).toMatchObject({ signal: 9, exitCode: 0 });
  });

  it('close: counters() then throws CLOSED, a second close is harmless, iteration ends', async () => {
    const set = openProbeSet({ probes: ['exit'] });
    expect(set.counters().get('exit')).toMatchObject({ lost: 0n });
    await set.close();
    await set.close();
    expect(() => set.counters()).toThrow(expect.objectContaining({ code: 'CLOSED' }));
    const batches: unknown[] = [];
    for await (const b of set) batches.push(b);
    expect(batches).toEqual([]);
  });

  it('breaking out of for-await and `await using` both detach the programs', async () => {
    const a = openProbeSet({ probes: ['exit'] });
    const pending = (async () => {
      for await (const _ of a) break;
    })();
    run(bin, ['exit', '0']);
    await pending;
    expect(() => a.counters()).toThrow(expect.objectContaining({ code: 'CLOSED' }));
    let b: ProbeSet | undefined;
    {
      await using s = openProbeSet({ probes: ['exit'] });
      b = s;
    }
    expect(() => b!.counters()).toThrow(expect.objectContaining({ code: 'CLOSED' }));
  });

  it('the raw_tp variant (where tp_btf is missing) reports the same open, exec and exit', async () => {
    await withSet(
      { attach: 'raw_tp', probes: ['file_open', 'exec', 'exit'], dedup: { enabled: false } },
      async (c, s) => {
        expect(s.status.map((x) => [x.name, x.attached, x.attachType])).toEqual([
          ['exec', true, 'raw_tp'],
          ['exit', true, 'raw_tp'],
          ['file_open', true, 'raw_tp'],
        ]);
        const target = join(dir, 'sub', 'target.txt');
        const r = run(bin, ['rel', join(dir, 'sub'), 'target.txt']);
        const m = await c.waitFor(isOpen(r.pid), (x) => x.some((e) => e.resolution === 'cwd'));
        expect(m.find((e) => e.resolution === 'cwd')).toMatchObject({
          ret: Number(r.out),
          flags: 0,
          dirfd: AT_FDCWD,
        });
        expect(m.find((e) => e.resolution === 'cwd')!.path.toString()).toBe(target);
        await c.waitFor(isExec(r.pid), atLeast(1));
        const [x] = await c.waitFor(isExit(r.pid), atLeast(1));
        expect(x).toMatchObject({ exitCode: 0, signal: 0 });
      },
    );
  });

  it('the pre-5.11 task path (no bpf_get_current_task_btf), forced: same parent pid, and each probe says so', async () => {
    await withSet(
      { taskAccess: 'core', probes: ['file_open', 'exec', 'exit'], dedup: { enabled: false } },
      async (c, s) => {
        for (const st of s.status) {
          expect(st.attached).toBe(true);
          expect(st.reason).toMatch(/task read with bpf_get_current_task \+ CO-RE \(forced/);
        }
        const target = join(dir, 'sub', 'target.txt');
        const r = run(bin, ['open', target]);
        const m = await c.waitFor(isOpen(r.pid), (x) => x.some((e) => e.path.toString() === target));
        expect(m.find((e) => e.path.toString() === target)).toMatchObject({ pid: r.pid, ppid: process.pid });
        const [ex] = await c.waitFor(isExec(r.pid), atLeast(1));
        expect(ex).toMatchObject({ pid: r.pid, ppid: process.pid });
        const [x] = await c.waitFor(isExit(r.pid), atLeast(1));
        expect(x).toMatchObject({ ppid: process.pid, exitCode: 0 });
      },
    );
  });

  it('a probe the kernel refuses to attach is reported not attached; the others run', async () => {
    const obj = join(dir, 'partial.bpf.o');
    const bpfDir = fileURLToPath(new URL('../bpf', import.meta.url));
    const src = fileURLToPath(new URL('./fixtures/partial.bpf.c', import.meta.url));
    execFileSync('clang', [
      '-O2',
      '-g',
      '-target',
      'bpf',
      `-D__TARGET_ARCH_${process.arch === 'arm64' ? 'arm64' : 'x86'}`,
      `-I${bpfDir}`,
      '-c',
      src,
      '-o',
      obj,
    ]);
    const s = openProbeSet({ objectPath: obj, attach: 'raw_tp', probes: ['file_open', 'exec', 'exit'] });
    try {
      const byName = new Map(s.status.map((x) => [x.name, x]));
      expect(byName.get('file_open')).toMatchObject({ attached: true, attachType: 'raw_tp' });
      expect(byName.get('exec')).toMatchObject({ attached: true, attachType: 'raw_tp' });
      expect(byName.get('exit')!.attached).toBe(false);
      expect(byName.get('exit')!.reason).toMatch(/^not attached: ATTACH: .*fe_exit_proc_raw/);
    } finally {
      await s.close();
    }
  });

  it('does not report the collector itself (excludePids defaults to its own pid)', async () => {
    writeFileSync(join(dir, 'self.txt'), 'me');
    await new Promise((r) => setTimeout(r, 100));
    expect(col.events.filter((e) => e.pid === process.pid)).toEqual([]);
  });
});

/** Opens a ProbeSet for one test, collecting in the background. */
async function withSet(
  opts: Parameters<typeof openProbeSet>[0],
  body: (c: Collector, s: ProbeSet) => Promise<void>,
) {
  const c = new Collector(openProbeSet(opts));
  try {
    await body(c, c.set);
  } finally {
    await c.close();
  }
}

describe.runIf(runs)('in-kernel filters, dedup and exact accounting', () => {
  let bin: string;
  let dir: string;

  beforeAll(() => {
    bin = buildFsops();
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'stella-probes-f-')));
    for (const d of ['allowed', 'other']) mkdirSync(join(dir, d));
    for (const f of ['allowed/a', 'allowed/secret', 'other/b']) writeFileSync(join(dir, f), f);
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (bin) rmSync(dirname(bin), { recursive: true, force: true });
  });

  it('cgroup allow-list: only processes in the listed cgroup are reported; the rest are counted filtered', async () => {
    const cg = new TestCgroup('stella-probes-allow');
    try {
      await withSet(
        { probes: ['file_open', 'exec', 'exit'], filters: { cgroupIds: [cg.id] }, dedup: { enabled: false } },
        async (c, s) => {
          const target = join(dir, 'other', 'b');
          const [inside] = await runInCgroup(bin, cg, [['openat', target]]);
          const outside = run(bin, ['openat', target]);
          const m = await c.waitFor(isOpen(inside!.pid), atLeast(1));
          expect(m.map((e) => e.path.toString())).toEqual([target]);
          expect(m[0]!.cgroupId).toBe(cg.id);
          const x = await c.waitFor(isExit(inside!.pid), atLeast(1));
          expect(x[0]!.cgroupId).toBe(cg.id);
          await new Promise((r) => setTimeout(r, 100));
          expect(c.of(outside.pid)).toEqual([]);
          expect(c.events.every((e) => e.cgroupId === cg.id)).toBe(true);
          expect(s.counters().get('file_open')!.filtered).toBeGreaterThan(0n);
        },
      );
    } finally {
      cg.remove();
    }
  });

  it('cgroup allow-list: a listed parent cgroup admits processes in its child cgroups', async () => {
    const parent = new TestCgroup('stella-probes-parent');
    const child = TestCgroup.inside(parent, 'child');
    try {
      await withSet(
        { probes: ['file_open'], filters: { cgroupIds: [parent.id] }, dedup: { enabled: false } },
        async (c) => {
          const target = join(dir, 'other', 'b');
          const [inside] = await runInCgroup(bin, child, [['openat', target]]);
          const m = await c.waitFor(isOpen(inside!.pid), atLeast(1));
          expect(m[0]!.cgroupId).toBe(child.id);
          expect(m[0]!.path.toString()).toBe(target);
        },
      );
    } finally {
      child.remove();
      parent.remove();
    }
  });

  it('path prefixes: allow-list with a longer deny inside it', async () => {
    await withSet(
      {
        probes: ['file_open'],
        filters: {
          pathAllowPrefixes: [join(dir, 'allowed/')],
          pathDenyPrefixes: [join(dir, 'allowed/secret')],
        },
        dedup: { enabled: false },
      },
      async (c) => {
        const pids = ['allowed/a', 'allowed/secret', 'other/b'].map(
          (f) => run(bin, ['openat', join(dir, f)]).pid,
        );
        // Relative opens are filtered on their resolved path too.
        const rel = run(bin, ['rel', join(dir, 'allowed'), 'a']);
        await c.waitFor(isOpen(rel.pid), atLeast(1));
        await c.waitFor(isOpen(pids[0]!), atLeast(1));
        await new Promise((r) => setTimeout(r, 100));
        expect(c.of(pids[0]!).map((e) => (e as FileOpenEvent).path.toString())).toEqual([
          join(dir, 'allowed/a'),
        ]);
        expect(c.of(pids[1]!)).toEqual([]);
        expect(c.of(pids[2]!)).toEqual([]);
        expect(c.of(rel.pid)).toMatchObject([{ resolution: 'cwd' }]);
        // Nothing outside the allowed prefix got through, from any process on the machine.
        for (const e of c.events as FileOpenEvent[])
          expect(e.path.toString().startsWith(join(dir, 'allowed/'))).toBe(true);
      },
    );
  });

  it('dedup: a repeated fact is sent once; another flags class or a failure is a new fact', async () => {
    const target = join(dir, 'allowed', 'a');
    await withSet({ probes: ['file_open'], filters: { pathAllowPrefixes: [dir] } }, async (c, s) => {
      const before = s.counters().get('file_open')!;
      const storm = run(bin, ['storm', '50', target, '1']);
      const wr = run(bin, ['openat-wr', target]);
      const missing = run(bin, ['openat', join(dir, 'nope')]);
      await c.waitFor(isOpen(missing.pid), atLeast(1));
      await new Promise((r) => setTimeout(r, 50));
      const forTarget = (c.events as FileOpenEvent[]).filter((e) => e.path.toString() === target);
      // One read-only open (from the storm), one write-only open.
      expect(forTarget.map((e) => [e.pid, e.flags & 3])).toEqual([
        [storm.pid, 0],
        [wr.pid, O_WRONLY],
      ]);
      const after = s.counters().get('file_open')!;
      expect(after.deduplicated - before.deduplicated).toBeGreaterThanOrEqual(49n);
      const d = s.dedupStats();
      expect(d.enabled).toBe(true);
      expect(d.inserts).toBeGreaterThanOrEqual(3n);
      expect(d.live).toBeGreaterThanOrEqual(3);
    });
  });

  it('dedup table: evictions are counted and an evicted fact is reported again', async () => {
    const target = join(dir, 'other', 'b');
    await withSet(
      { probes: ['file_open'], filters: { pathAllowPrefixes: [dir] }, dedup: { maxEntries: 16 } },
      async (c, s) => {
        // The kernel's LRU is approximate per CPU (a key inserted on another CPU can sit in
        // that CPU's local list, out of reach of eviction): keep the three runs on one CPU.
        const onCpu0 = (args: string[]) => run('taskset', ['-c', '0', bin, ...args]);
        const first = onCpu0(['openat', target]);
        await c.waitFor(isOpen(first.pid), atLeast(1));
        // 200 distinct (missing) paths push the first fact out of a 16-entry LRU.
        onCpu0(['storm', '200', join(dir, 'missing-'), '200']);
        const again = onCpu0(['openat', target]);
        const d = s.dedupStats();
        await c.waitFor(isOpen(again.pid), atLeast(1)).catch((e) => {
          throw new Error(
            `${e.message}; dedup ${JSON.stringify(d, (_, v) => (typeof v === 'bigint' ? String(v) : v))}`,
          );
        });
        expect(d.live).toBeLessThanOrEqual(16);
        // The 200 storm paths and the first open were each inserted (or, when the LRU had
        // no free node, sent without being remembered); at most 16 remain.
        expect(d.inserts + d.failures).toBeGreaterThanOrEqual(201n);
        expect(d.evictions).toBeGreaterThanOrEqual(d.inserts - 16n);
      },
    );
  });

  it('storm: seen >= filtered + deduplicated + emitted + lost while running; emitted = records received; every open accounted', async () => {
    const cg = new TestCgroup('stella-probes-storm');
    const N = 30000;
    try {
      await withSet(
        {
          probes: ['file_open'],
          filters: { cgroupIds: [cg.id] },
          dedup: { enabled: false },
          ringBufferBytes: 16384, // small on purpose: some records must be lost
          drainLatencyMs: 50,
        },
        async (c, s) => {
          const results = await runInCgroup(bin, cg, [
            ['storm', String(N), join(dir, 'storm-a-'), '1000'],
            ['storm', String(N), join(dir, 'storm-b-'), '1000'],
          ]);
          expect(results.map((r) => r.status)).toEqual([0, 0]);
          // Drain: everything emitted must arrive in JS.
          const deadline = Date.now() + 5000;
          let k = s.counters().get('file_open')!;
          while (BigInt(c.events.length) !== k.emitted && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 50));
            k = s.counters().get('file_open')!;
          }
          // Read while attached: other processes' opens may be inside a program (seen, no fate
          // yet), never the reverse. The exact final balance: test/accounting.kernel.test.ts.
          expect(k.seen).toBeGreaterThanOrEqual(k.filtered + k.deduplicated + k.emitted + k.lost);
          expect(BigInt(c.events.length)).toBe(k.emitted);
          expect(k.lost).toBeGreaterThan(0n);
          expect(k.deduplicated).toBe(0n);
          // In the cgroup there were exactly 2N opens (the static helper opens nothing else).
          expect(k.emitted + k.lost).toBe(BigInt(2 * N));
          const pids = new Set(results.map((r) => r.pid));
          expect(c.events.every((e) => pids.has(e.pid))).toBe(true);
        },
      );
    } finally {
      cg.remove();
    }
  });
});

describe.runIf(runs && gate('exec identity tests', commandUnavailableReason('busybox')))(
  'exec identity: the file the kernel runs, not the name it was given',
  () => {
    let col: Collector;
    let dir: string;

    beforeAll(() => {
      dir = realpathSync(mkdtempSync(join(tmpdir(), 'stella-exec-identity-')));
      col = new Collector(openProbeSet({ probes: ['exec', 'exit'], dedup: { enabled: false } }));
    });

    afterAll(async () => {
      await col?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('a busybox applet started through /proc/self/exe and a symlink resolves to the busybox file', async () => {
      const busybox = realpathSync(
        execFileSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).trim(),
      );
      symlinkSync(busybox, join(dir, 'ls'));
      // busybox sh runs a background applet as execve("/proc/self/exe", ["sleep", "0"]).
      const r = run(busybox, ['sh', '-c', `${join(dir, 'ls')} / >/dev/null; sleep 0 & wait`]);
      expect(r.status).toBe(0);
      const st = statSync(busybox, { bigint: true });
      const children = (e: ProbeEvent): e is ExecEvent => e.kind === 'exec' && e.ppid === r.pid;
      const named = (m: ExecEvent[], f: string) => m.find((e) => e.filename.toString() === f);
      const m = await col.waitFor(
        children,
        (x) => named(x, '/proc/self/exe') !== undefined && named(x, join(dir, 'ls')) !== undefined,
        15_000,
      );
      const viaSelf = named(m, '/proc/self/exe')!;
      expect(viaSelf.argv.map(String)).toEqual(['sleep', '0']);
      expect(viaSelf.exePath.toString()).toBe(busybox);
      expect(viaSelf).toMatchObject({ exeIno: st.ino, exeDev: st.dev, exePathTruncated: false });
      expect(viaSelf.interpreter).toBeUndefined();
      const viaLink = named(m, join(dir, 'ls'))!;
      expect(viaLink.exePath.toString()).toBe(busybox);
    });

    it('a #! script: filename is the script, the interpreter as named, exePath the interpreter binary', async () => {
      const script = join(dir, 'run.sh');
      writeFileSync(script, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
      const r = run(script, []);
      expect(r.status).toBe(0);
      const m = await col.waitFor(
        isExec(r.pid),
        (x) => x.some((e) => e.filename.toString() === script),
        15_000,
      );
      const e = m.find((x) => x.filename.toString() === script)!;
      expect(e.interpreter?.toString()).toBe('/bin/sh');
      expect(e.exePath.toString()).toBe(realpathSync('/bin/sh'));
      expect(e.exeIno).toBe(statSync('/bin/sh', { bigint: true }).ino);
    });
  },
);
