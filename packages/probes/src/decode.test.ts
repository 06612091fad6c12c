import { describe, expect, it } from 'vitest';
import { decodeEvent, FileOpenView, viewEvent } from './decode.js';
import { DecodeError } from './errors.js';
import { EXEC_BASE, EXIT_SIZE, FE_EXEC_INTERP, FILE_OPEN_BASE, KIND, LAYOUT } from './layout.js';

const H = LAYOUT.stella_event_header.members;
const F = LAYOUT.fe_file_open_event.members;
const E = LAYOUT.fe_exec_event.members;
const X = LAYOUT.fe_exit_event.members;

function header(buf: Buffer, kind: number): void {
  buf.writeBigUInt64LE(123456789012345n, H.mono_ns[0]);
  buf.writeBigUInt64LE(0xffff_0000_0000_0001n, H.cgroup_id[0]);
  buf.writeUInt32LE(kind, H.kind[0]);
  buf.writeUInt32LE(4242, H.pid[0]);
  buf.writeUInt32LE(4243, H.tid[0]);
  buf.writeUInt32LE(1, H.ppid[0]);
  buf.writeUInt32LE(1000, H.uid[0]);
  buf.writeUInt32LE(1001, H.gid[0]);
  Buffer.from('python3\0garbage!').copy(buf, H.comm[0]);
}

function fileOpen(
  path: Buffer,
  extra: Partial<Record<'ret' | 'flags' | 'dirfd' | 'res' | 'sc' | 'pf', number>> = {},
  kind: number = KIND.FILE_OPEN,
): Buffer {
  const b = Buffer.alloc(FILE_OPEN_BASE + path.length);
  header(b, kind);
  b.writeInt32LE(extra.ret ?? -2, F.ret[0]);
  b.writeUInt32LE(extra.flags ?? 0o2000101, F.flags[0]);
  b.writeUInt32LE(0o644, F.mode[0]);
  b.writeInt32LE(extra.dirfd ?? -100, F.dirfd[0]);
  b.writeUInt32LE(path.length, F.path_len[0]);
  b.writeUInt16LE(extra.sc ?? 2, F.syscall[0]);
  b.writeUInt8(extra.res ?? 1, F.resolution[0]);
  b.writeUInt8(extra.pf ?? 0, F.path_flags[0]);
  path.copy(b, FILE_OPEN_BASE);
  return b;
}

function exec(filename: string, argv: Buffer, flags = 0, exePath = filename, interp?: string): Buffer {
  const fn = Buffer.from(filename);
  const xp = Buffer.from(exePath);
  const ip = Buffer.from(interp ?? '');
  const b = Buffer.alloc(EXEC_BASE + fn.length + argv.length + xp.length + ip.length);
  header(b, KIND.EXEC);
  b.writeBigUInt64LE(260131n, E.exe_ino[0]);
  b.writeBigUInt64LE(65024n, E.exe_dev[0]);
  b.writeUInt32LE(fn.length, E.filename_len[0]);
  b.writeUInt32LE(argv.length, E.argv_len[0]);
  b.writeUInt32LE(3, E.argc[0]);
  b.writeUInt32LE(flags | (interp === undefined ? 0 : FE_EXEC_INTERP), E.exec_flags[0]);
  b.writeUInt32LE(4250, E.old_pid[0]);
  b.writeUInt32LE(xp.length, E.exe_path_len[0]);
  b.writeUInt32LE(ip.length, E.interp_len[0]);
  fn.copy(b, EXEC_BASE);
  argv.copy(b, EXEC_BASE + fn.length);
  xp.copy(b, EXEC_BASE + fn.length + argv.length);
  ip.copy(b, EXEC_BASE + fn.length + argv.length + xp.length);
  return b;
}

function exit(status: number): Buffer {
  const b = Buffer.alloc(EXIT_SIZE);
  header(b, KIND.EXIT);
  b.writeInt32LE(status, X.exit_status[0]);
  b.writeBigUInt64LE(99n, X.start_ns[0]);
  return b;
}

function decodeErr(r: Buffer): DecodeError {
  try {
    decodeEvent(r);
  } catch (e) {
    expect(e).toBeInstanceOf(DecodeError);
    return e as DecodeError;
  }
  throw new Error('decodeEvent accepted a bad record');
}

describe('decodeEvent', () => {
  it('decodes a file_open record with the common header, keeping non-UTF-8 path bytes raw', () => {
    const path = Buffer.from([0x2f, 0x74, 0xff, 0xfe, 0x0a, 0x61]); // "/t\xff\xfe\na"
    const ev = decodeEvent(fileOpen(path, { ret: -2, res: 1, pf: 1 }));
    expect(ev).toMatchObject({
      kind: 'file_open',
      probe: 'file_open',
      pid: 4242,
      tid: 4243,
      ppid: 1,
      uid: 1000,
      gid: 1001,
      cgroupId: 0xffff_0000_0000_0001n,
      monoNs: 123456789012345n,
      syscall: 'openat',
      flags: 0o2000101,
      mode: 0o644,
      dirfd: -100,
      ret: -2,
      resolution: 'cwd',
      truncated: true,
      pathFault: false,
    });
    if (ev.kind !== 'file_open') throw new Error('kind');
    expect(ev.path.equals(path)).toBe(true);
    expect(ev.comm.toString('latin1')).toBe('python3');
  });

  it('decodes LSM opens as file_open events of probe file_open_lsm', () => {
    const ev = decodeEvent(
      fileOpen(Buffer.from('/etc/ld.so.cache'), { sc: 6, res: 4, ret: 0 }, KIND.FILE_OPEN_LSM),
    );
    expect(ev).toMatchObject({ kind: 'file_open', probe: 'file_open_lsm', syscall: 'lsm', resolution: 'fd' });
  });

  it('copies byte strings out of the record, so a reused ring buffer cannot change them', () => {
    const rec = fileOpen(Buffer.from('/etc/passwd'));
    const ev = decodeEvent(rec);
    rec.fill(0x41);
    if (ev.kind !== 'file_open') throw new Error('kind');
    expect(ev.path.toString()).toBe('/etc/passwd');
    expect(ev.comm.toString()).toBe('python3');
  });

  it('rejects a file_open record whose length disagrees with path_len', () => {
    const rec = fileOpen(Buffer.from('/etc/passwd'));
    const e = decodeErr(rec.subarray(0, rec.length - 1));
    expect(e.code).toBe('DECODE');
    expect(e.kind).toBe(KIND.FILE_OPEN);
    expect(e.length).toBe(rec.length - 1);
    expect(e.expected).toBe(rec.length);
    expect(e.message).toMatch(/path_len 11/);
    expect(decodeErr(Buffer.concat([rec, Buffer.alloc(1)])).expected).toBe(rec.length);
  });

  it('rejects records shorter than the header, or of an unknown kind, or unknown enum values', () => {
    expect(decodeErr(Buffer.alloc(10)).expected).toBe(LAYOUT.stella_event_header.size);
    const unknown = exit(0);
    unknown.writeUInt32LE(77, H.kind[0]);
    expect(decodeErr(unknown).kind).toBe(77);
    expect(decodeErr(fileOpen(Buffer.from('/x'), { sc: 99 })).message).toMatch(/unknown syscall 99/);
    expect(decodeErr(fileOpen(Buffer.from('/x'), { res: 9 })).message).toMatch(/unknown resolution 9/);
    expect(decodeErr(fileOpen(Buffer.alloc(0)).subarray(0, FILE_OPEN_BASE - 4)).expected).toBe(
      FILE_OPEN_BASE,
    );
  });

  it('decodes exec records: filename, NUL-separated argv, a cut-off last argument, exe identity', () => {
    const ev = decodeEvent(exec('/usr/bin/env', Buffer.from('env\0-i\0FOO=ba'), 2));
    expect(ev.kind).toBe('exec');
    if (ev.kind !== 'exec') throw new Error('kind');
    expect(ev.filename.toString()).toBe('/usr/bin/env');
    expect(ev.argv.map(String)).toEqual(['env', '-i', 'FOO=ba']);
    expect(ev.argc).toBe(3);
    expect(ev.argvTruncated).toBe(true);
    expect(ev.filenameTruncated).toBe(false);
    expect(ev.exeDev).toBe(65024n);
    expect(ev.exeIno).toBe(260131n);
    expect(ev.oldPid).toBe(4250);
    const empty = decodeEvent(exec('/bin/true', Buffer.alloc(0)));
    expect(empty.kind === 'exec' && empty.argv).toEqual([]);
    const rec = exec('/bin/true', Buffer.from('true\0'));
    expect(decodeErr(rec.subarray(0, rec.length - 2)).expected).toBe(rec.length);
  });

  it('decodes the resolved executable path and, for a script, its interpreter', () => {
    const applet = decodeEvent(exec('/proc/self/exe', Buffer.from('ls\0-l\0'), 0, '/bin/busybox'));
    if (applet.kind !== 'exec') throw new Error('kind');
    expect(applet.exePath.toString()).toBe('/bin/busybox');
    expect(applet.argv.map(String)).toEqual(['ls', '-l']);
    expect(applet.interpreter).toBeUndefined();
    const script = decodeEvent(
      exec('/tmp/run.sh', Buffer.from('/bin/sh\0/tmp/run.sh\0'), 0, '/usr/bin/dash', '/bin/sh'),
    );
    if (script.kind !== 'exec') throw new Error('kind');
    expect(script.filename.toString()).toBe('/tmp/run.sh');
    expect(script.exePath.toString()).toBe('/usr/bin/dash');
    expect(script.interpreter?.toString()).toBe('/bin/sh');
    expect(script.interpreterTruncated).toBe(false);
    // The interpreter's length is part of the record's: a short record is refused.
    const rec = exec('/tmp/run.sh', Buffer.alloc(0), 0, '/usr/bin/dash', '/bin/sh');
    expect(decodeErr(rec.subarray(0, rec.length - 1)).expected).toBe(rec.length);
  });

  it('decodes exit statuses as wait(2) does', () => {
    expect(decodeEvent(exit(3 << 8))).toMatchObject({
      kind: 'exit',
      exitCode: 3,
      signal: 0,
      coreDumped: false,
      startNs: 99n,
    });
    expect(decodeEvent(exit(9))).toMatchObject({ exitCode: 0, signal: 9, coreDumped: false });
    expect(decodeEvent(exit(0x80 | 11))).toMatchObject({ exitCode: 0, signal: 11, coreDumped: true });
    expect(decodeErr(Buffer.concat([exit(0), Buffer.alloc(8)])).expected).toBe(EXIT_SIZE);
  });
});

describe('viewEvent', () => {
  /** Every member a FileOpenEvent has, read through the getters. */
  const plain = (e: object) =>
    Object.fromEntries(
      [
        'kind',
        'probe',
        'pid',
        'tid',
        'ppid',
        'uid',
        'gid',
        'comm',
        'cgroupId',
        'monoNs',
        'syscall',
        'path',
        'flags',
        'mode',
        'dirfd',
        'ret',
        'resolution',
        'truncated',
        'pathFault',
      ].map((k) => [k, (e as Record<string, unknown>)[k]]),
    );

  it('reads a file open in place with the same members decodeEvent gives', () => {
    for (const [rec, kind] of [
      [fileOpen(Buffer.from([0x2f, 0x74, 0xff, 0x0a]), { ret: 7, res: 2, pf: 3 }), 'file_open'],
      [fileOpen(Buffer.from('/etc/ld.so.cache'), { sc: 6, res: 4, ret: 0 }, KIND.FILE_OPEN_LSM), 'lsm'],
    ] as const) {
      // The record in the middle of a larger batch buffer, as the ring hands it over.
      const batch = Buffer.concat([Buffer.alloc(24, 0xaa), rec, Buffer.alloc(8, 0xbb)]);
      const view = viewEvent(batch, 24, 24 + rec.length);
      expect(view, kind).toBeInstanceOf(FileOpenView);
      expect(plain(view)).toEqual(plain(decodeEvent(rec)));
      const v = view as FileOpenView;
      expect([v.cgroupHi, v.cgroupLo]).toEqual([0xffff0000, 1]);
      expect(v.pathLength).toBe(rec.length - FILE_OPEN_BASE);
    }
  });

  it('decodes other kinds as decodeEvent does, and rejects what decodeEvent rejects', () => {
    const x = exit(9);
    expect(viewEvent(x, 0, x.length)).toEqual(decodeEvent(x));
    const rec = fileOpen(Buffer.from('/etc/passwd'));
    expect(() => viewEvent(rec, 0, rec.length - 1)).toThrow(/path_len 11/);
    const bad = fileOpen(Buffer.from('/x'), { sc: 99 });
    expect(() => viewEvent(bad, 0, bad.length)).toThrow(DecodeError);
  });
});
