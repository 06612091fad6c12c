import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { classifyLibrary, fileKey, LibraryScanner, parseMaps } from './discovery.js';

describe('parseMaps', () => {
  it('keeps file-backed mappings once, skips anonymous and deleted ones', () => {
    const text = [
      '55d0-55d1 r--p 00000000 fe:01 1234 /usr/bin/curl',
      '7f00-7f01 r-xp 00028000 fe:01 5678 /usr/lib/x86_64-linux-gnu/libc.so.6',
      '7f01-7f02 r--p 00195000 fe:01 5678 /usr/lib/x86_64-linux-gnu/libc.so.6',
      '7f02-7f03 rw-p 00000000 00:00 0 ',
      '7f03-7f04 r-xp 00000000 00:05 99 /tmp/old lib.so (deleted)',
      '7ffd-7ffe rw-p 00000000 00:00 0                          [stack]',
      '7f05-7f06 r-xp 00000000 08:02 77 /opt/with space/libssl.so.3',
    ].join('\n');
    expect(parseMaps(text)).toEqual([
      { dev: 'fe:01', inode: '1234', path: '/usr/bin/curl' },
      { dev: 'fe:01', inode: '5678', path: '/usr/lib/x86_64-linux-gnu/libc.so.6' },
      { dev: '08:02', inode: '77', path: '/opt/with space/libssl.so.3' },
    ]);
  });
});

describe('classifyLibrary', () => {
  it.each([
    ['/lib/x86_64-linux-gnu/libc.so.6', 'libc'],
    ['/lib/libc-2.31.so', 'libc'],
    ['/usr/lib/libssl.so.3', 'libssl'],
    ['/usr/lib/libssl.so.1.1', 'libssl'],
    ['/usr/lib/libssl3.so', undefined],
    ['/usr/lib/libcrypto.so.3', undefined],
    ['/usr/lib/libc.so.6.bak', undefined],
  ])('%s', (p, kind) => expect(classifyLibrary(p)).toBe(kind));
});

describe('LibraryScanner', () => {
  it('finds the libc this process maps, keyed by its device and inode', () => {
    const targets = new LibraryScanner().scanPid(process.pid);
    const libc = targets.find((t) => t.kind === 'libc');
    expect(libc).toBeDefined();
    expect(libc?.key).toBe(fileKey(libc?.path ?? ''));
    expect(libc?.pid).toBe(process.pid);
  });
  it('recognizes this Node binary as statically linked OpenSSL', async () => {
    const targets = new LibraryScanner().scanPid(process.pid);
    const ssl = targets.find((t) => t.kind === 'ssl-static');
    expect(ssl?.key).toBe(fileKey(process.execPath));
    // The background scan reads the executable's symbols asynchronously, to the same verdict.
    const later = await new LibraryScanner().scanAsync([process.pid], { force: true });
    expect(later.find((t) => t.kind === 'ssl-static')).toEqual(ssl);
  });
  it('returns nothing for a pid that does not exist', () => {
    expect(new LibraryScanner().scanPid(0x7ffffff0)).toEqual([]);
  });
  it('one target per file across processes', () => {
    const all = new LibraryScanner({ staticSsl: false }).scan();
    const keys = all.map((t) => t.key);
    expect(new Set(keys).size).toBe(keys.length);
  });
  it('scanAsync skips a process unchanged since its last scan, and scans it again when forced', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const pid = child.pid ?? 0;
      const scanner = new LibraryScanner({ staticSsl: false });
      // Until its loader has mapped libc, the child is still changing.
      let first: Awaited<ReturnType<LibraryScanner['scanAsync']>> = [];
      for (let i = 0; i < 200 && !first.some((t) => t.kind === 'libc'); i++) {
        await new Promise((r) => setTimeout(r, 10));
        first = await scanner.scanAsync([pid], { force: true });
      }
      expect(first.find((t) => t.kind === 'libc')?.pid).toBe(pid);
      expect(await scanner.scanAsync([pid])).toEqual([]);
      expect((await scanner.scanAsync([pid], { force: true })).map((t) => t.key)).toEqual(
        first.map((t) => t.key),
      );
    } finally {
      child.kill('SIGKILL');
    }
  });
  it('scanAsync of every process finds what the synchronous scan finds', async () => {
    const scanner = new LibraryScanner({ staticSsl: false });
    const keys = (await scanner.scanAsync()).map((t) => t.key).sort();
    expect(keys).toEqual(expect.arrayContaining(scanner.scan([process.pid]).map((t) => t.key)));
    expect(new Set(keys).size).toBe(keys.length);
  });
});
