import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileDigests } from '@stellaops/enrich';
import { type ExecEvent, type FileOpenEvent, FileOpenView, KIND, LAYOUT } from '@stellaops/probes';
import { describe, expect, it } from 'vitest';
import { digestRequestOf, IdentityStage, isRuntimeSetup } from './identity.js';
import type { KernelEvent } from './records.js';

const header = {
  pid: process.pid,
  tid: process.pid,
  ppid: 1,
  uid: 0,
  gid: 0,
  comm: Buffer.from('sh'),
  cgroupId: 1n,
  monoNs: 1n,
};

function exec(over: Partial<ExecEvent> = {}): KernelEvent {
  return {
    source: 'fileexec',
    event: {
      ...header,
      kind: 'exec',
      filename: Buffer.from('/proc/self/exe'),
      filenameTruncated: false,
      argv: [Buffer.from('runc'), Buffer.from('init')],
      argc: 2,
      argvTruncated: false,
      exePath: Buffer.from('/usr/sbin/runc'),
      exePathTruncated: false,
      interpreterTruncated: false,
      exeDev: 1n,
      exeIno: 2n,
      oldPid: 1,
      ...over,
    },
  };
}

function open(path: string, over: Partial<FileOpenEvent> = {}): KernelEvent {
  return {
    source: 'fileexec',
    event: {
      ...header,
      kind: 'file_open',
      probe: 'file_open',
      syscall: 'openat',
      path: Buffer.from(path),
      flags: 0o2000000,
      mode: 0,
      dirfd: -100,
      ret: 3,
      resolution: 'absolute',
      truncated: false,
      pathFault: false,
      ...over,
    },
  };
}

describe('runtime set-up mark', () => {
  it("marks runc's init exec and its nsexec stages, not the entrypoint it execs", () => {
    expect(isRuntimeSetup(exec())).toBe(true);
    expect(isRuntimeSetup(exec({ argv: [Buffer.from('/usr/bin/runc'), Buffer.from('init')] }))).toBe(true);
    for (const comm of ['runc:[0:PARENT]', 'runc:[1:CHILD]', 'runc:[2:INIT]']) {
      expect(isRuntimeSetup(open('/proc/self/fd', { comm: Buffer.from(comm) })), comm).toBe(true);
    }
    // The entrypoint: exec'd by runc:[2:INIT], but the record's task name is the new program's.
    expect(
      isRuntimeSetup(exec({ comm: Buffer.from('sleep'), argv: [Buffer.from('sleep'), Buffer.from('1')] })),
    ).toBe(false);
    expect(isRuntimeSetup(exec({ argv: [Buffer.from('runc'), Buffer.from('run')] }))).toBe(false);
    expect(isRuntimeSetup(open('/etc/passwd', { comm: Buffer.from('runc') }))).toBe(false);
    // The stages' exits too: they are not processes of the image.
    const exit: KernelEvent = {
      source: 'fileexec',
      event: {
        ...header,
        comm: Buffer.from('runc:[1:CHILD]'),
        kind: 'exit',
        exitCode: 0,
        signal: 0,
        coreDumped: false,
        status: 0,
        startNs: 0n,
      },
    };
    expect(isRuntimeSetup(exit)).toBe(true);
  });
});

describe('runtime set-up mark through the stage', () => {
  it("marks what a runc init process does before nsexec names it (its loader's opens as `exe`), until it exits", async () => {
    const init = { pid: 4242, tid: 4242 };
    const other = { pid: 4343, tid: 4343, comm: Buffer.from('cat') };
    const events = [
      exec(init),
      open('/lib/x86_64-linux-gnu/libc.so.6', { ...init, comm: Buffer.from('exe') }),
      open('/etc/ld.so.cache', { ...init, comm: Buffer.from('runc') }),
      open('/etc/passwd', other),
      {
        source: 'fileexec',
        event: {
          ...header,
          ...init,
          comm: Buffer.from('runc:[0:PARENT]'),
          kind: 'exit',
          exitCode: 0,
          signal: 0,
          coreDumped: false,
          status: 0,
          startNs: 0n,
        },
      } as KernelEvent,
      // The pid used again by another program: not set-up any more.
      open('/etc/hosts', { ...init, comm: Buffer.from('sh') }),
    ];
    const stage = new IdentityStage(undefined);
    async function* one() {
      yield events;
    }
    for await (const _ of stage.run(one(), (b) => b)) {
      // consumed
    }
    const marks = events.map((k) => stage.identityOf(k)?.runtimeSetup === true);
    expect(marks).toEqual([true, true, true, false, true, false]);
  });
});

describe('which records get a digest', () => {
  it('every exec (with the kernel identity and the parent as a stand-in root), read-only opens of shared objects', () => {
    expect(digestRequestOf(exec())).toMatchObject({
      pid: process.pid,
      expect: { dev: 1n, ino: 2n },
      fallbackPids: [1],
    });
    expect(digestRequestOf(exec({ exePathTruncated: true }))).toBe('path_truncated');
    for (const lib of [
      '/lib/libc.so.6',
      '/usr/lib/ld-linux-x86-64.so.2',
      '/opt/libfoo.so',
      '/x/libpython3.11.so.1.0',
    ]) {
      expect(digestRequestOf(open(lib)), lib).toMatchObject({ pid: process.pid });
    }
    expect(digestRequestOf(open('/etc/ld.so.cache'))).toBeUndefined();
    expect(digestRequestOf(open('/lib/libc.so.6', { ret: -2 }))).toBeUndefined();
    expect(digestRequestOf(open('/lib/libc.so.6', { flags: 0o1 }))).toBeUndefined();
    expect(digestRequestOf(open('/lib/libc.so.6', { truncated: true }))).toBe('path_truncated');
  });
});

describe('file opens read in place from a ring batch', () => {
  const H = LAYOUT.stella_event_header.members;
  const F = LAYOUT.fe_file_open_event.members;
  /** A file_open ring record at offset 5 of a batch whose next record starts right after it. */
  function view(path: string, comm: string, ret = 3, flags = 0): KernelEvent {
    const b = Buffer.alloc(F.path[0] + path.length);
    b.writeUInt32LE(KIND.FILE_OPEN, H.kind[0]);
    b.writeUInt32LE(process.pid, H.pid[0]);
    Buffer.from(comm).copy(b, H.comm[0]);
    b.writeInt32LE(ret, F.ret[0]);
    b.writeUInt32LE(flags, F.flags[0]);
    b.writeUInt32LE(path.length, F.path_len[0]);
    b.writeUInt16LE(1, F.syscall[0]);
    Buffer.from(path).copy(b, F.path[0]);
    const batch = Buffer.concat([Buffer.from('.so.1'), b, Buffer.from('.so\0libc.so.6')]);
    return { source: 'fileexec', event: new FileOpenView(batch, 5, 5 + b.length) };
  }

  it('get the same set-up marks and digest requests as decoded ones', () => {
    const cases: Array<[string, string, number?, number?]> = [
      ['/lib/libc.so.6', 'sh'],
      ['/opt/libfoo.so', 'sh'],
      ['/lib/libc.so.6', 'sh', -2],
      ['/lib/libc.so.6', 'sh', 3, 1],
      ['/etc/ld.so.cache', 'sh'],
      ['/etc/passwd', 'sh'],
      ['/a.s', 'sh'],
      ['.so', 'sh'],
      ['', 'sh'],
      ['/proc/self/fd', 'runc:[2:INIT]'],
      ['/proc/self/fd', 'runc'],
      ['/proc/self/fd', ''],
    ];
    for (const [path, comm, ret, flags] of cases) {
      const k = view(path, comm, ret, flags);
      const decoded = open(path, { comm: Buffer.from(comm), ret: ret ?? 3, flags: flags ?? 0 });
      expect(isRuntimeSetup(k), `${comm} ${path}`).toBe(isRuntimeSetup(decoded));
      expect(digestRequestOf(k), `${comm} ${path}`).toEqual(digestRequestOf(decoded));
    }
    // The bytes around the record (another record's ".so") are not the path's.
    expect(digestRequestOf(view('/etc/passwd', 'sh'))).toBeUndefined();
    expect(isRuntimeSetup(view('/x', 'runc:[0:PARENT]'))).toBe(true);
  });
});

describe('IdentityStage', () => {
  it('keeps batches in order, gives digests, and lets a record go with `timeout` once waitMs has passed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stella-identity-'));
    try {
      const lib = join(dir, 'libx.so.1');
      writeFileSync(lib, 'library');
      // A digest source that never answers stands for a stuck disk.
      const stuck = { request: () => new Promise<never>(() => undefined) } as unknown as FileDigests;
      const events = [open(lib), open('/etc/hosts'), exec({ comm: Buffer.from('runc:[2:INIT]') })];
      async function* batches() {
        yield [events[0]!, events[1]!];
        yield [events[2]!];
      }
      const stage = new IdentityStage(new FileDigests());
      const out = [];
      for await (const b of stage.run(batches(), (b) => b)) out.push(b);
      expect(out.map((b) => b.length)).toEqual([2, 1]);
      expect(stage.identityOf(events[0]!)).toEqual({
        runtimeSetup: false,
        digest: { digest: `sha256:${execFileSync('sha256sum', [lib], { encoding: 'utf8' }).split(' ')[0]}` },
      });
      expect(stage.identityOf(events[1]!)).toBeUndefined();
      expect(stage.identityOf(events[2]!)?.runtimeSetup).toBe(true);

      const slow = new IdentityStage(stuck, { waitMs: 50 });
      const late = [];
      for await (const b of slow.run(batches(), (b) => b)) late.push(b);
      expect(late.map((b) => b.length)).toEqual([2, 1]);
      expect(slow.identityOf(events[0]!)).toEqual({
        runtimeSetup: false,
        digest: { unavailable: 'timeout' },
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
