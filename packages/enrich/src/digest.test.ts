import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileDigests } from './digest.js';
import { EnrichError } from './errors.js';

const sha256sum = (file: string) =>
  `sha256:${execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0]}`;
const p = (s: string) => Buffer.from(s);

describe('FileDigests', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'stella-digest-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('digests a file through the process root, as sha256sum does, and reads it once for the same (dev, ino, mtime, size)', async () => {
    const file = join(dir, 'lib.so.1');
    writeFileSync(file, Buffer.alloc(700_000, 7));
    const d = new FileDigests();
    const first = await d.request({ pid: process.pid, path: p(file) });
    expect(first).toEqual({ digest: sha256sum(file) });
    expect(await d.request({ pid: process.pid, path: p(file) })).toEqual(first);
    expect(d.stats).toMatchObject({ computed: 1, cacheHits: 1, bytesRead: 700_000 });
    // Another content (size and mtime change): read again, new digest.
    writeFileSync(file, 'changed');
    const second = await d.request({ pid: process.pid, path: p(file) });
    expect(second).toEqual({ digest: sha256sum(file) });
    expect(second).not.toEqual(first);
    expect(d.stats.computed).toBe(2);
  });

  // chroot(2) needs CAP_SYS_CHROOT.
  it.runIf(process.getuid?.() === 0)(
    "resolves an absolute symlink inside the process's root, not this process's",
    async () => {
      const root = join(dir, 'root');
      mkdirSync(join(root, 'lib'), { recursive: true });
      mkdirSync(join(root, 'bin'), { recursive: true });
      const busybox = execFileSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).trim();
      copyFileSync(busybox, join(root, 'bin', 'busybox'));
      chmodSync(join(root, 'bin', 'busybox'), 0o755);
      writeFileSync(join(root, 'lib', 'libreal.so.3'), 'inside the root');
      symlinkSync('/lib/libreal.so.3', join(root, 'lib', 'libreal.so'));
      const child = spawn('chroot', [root, '/bin/busybox', 'sleep', '30'], { stdio: 'ignore' });
      try {
        // The chroot is in place once /proc/<pid>/root points into it.
        for (let i = 0; i < 500; i++) {
          const r = spawnSync('readlink', [`/proc/${child.pid}/root`], { encoding: 'utf8' });
          if (r.stdout.trim() === root) break;
          await new Promise((r) => setTimeout(r, 10));
        }
        const d = new FileDigests();
        const r = await d.request({ pid: child.pid!, path: p('/lib/libreal.so') });
        expect(r).toEqual({ digest: sha256sum(join(root, 'lib', 'libreal.so.3')) });
        const missing = await d.request({ pid: child.pid!, path: p('/lib/libnone.so') });
        expect(missing).toEqual({ unavailable: 'not_found' });
      } finally {
        child.kill('SIGKILL');
      }
    },
  );

  it('refuses a file that is not the one the kernel ran, and says a gone process is gone', async () => {
    const file = join(dir, 'tool');
    writeFileSync(file, 'v1');
    const st = statSync(file, { bigint: true });
    const d = new FileDigests();
    const changed = await d.request({
      pid: process.pid,
      path: p(file),
      expect: { dev: st.dev, ino: st.ino + 1n },
    });
    expect(changed).toMatchObject({ unavailable: 'file_changed' });
    expect(
      await d.request({ pid: process.pid, path: p(file), expect: { dev: st.dev, ino: st.ino } }),
    ).toEqual({
      digest: sha256sum(file),
    });
    // An exec of the same (dev, ino) right after a verified read is answered without I/O.
    const before = { ...d.stats };
    expect(
      await d.request({ pid: 999_999_999, path: p(file), expect: { dev: st.dev, ino: st.ino } }),
    ).toEqual({
      digest: sha256sum(file),
    });
    expect(d.stats.cacheHits).toBe(before.cacheHits + 1);
    const gone = spawnSync('true');
    expect(await d.request({ pid: gone.pid!, path: p(file) })).toEqual({ unavailable: 'process_exited' });
    // With the kernel's identity, a parent's root may stand in for a gone process
    // (a fresh digester: nothing cached).
    const fresh = new FileDigests();
    expect(
      await fresh.request({
        pid: gone.pid!,
        path: p(file),
        expect: { dev: st.dev, ino: st.ino },
        fallbackPids: [process.pid],
      }),
    ).toEqual({ digest: sha256sum(file) });
    expect(fresh.stats).toMatchObject({ computed: 1, cacheHits: 0 });
    expect(await d.request({ pid: process.pid, path: p(dir) })).toEqual({ unavailable: 'not_regular' });
  });

  it('answers overloaded past maxQueued instead of queueing without bound, and refuses bad options', async () => {
    const file = join(dir, 'big');
    writeFileSync(file, Buffer.alloc(1 << 20));
    const d = new FileDigests({ concurrency: 1, maxQueued: 1 });
    const results = await Promise.all([1, 2, 3].map(() => d.request({ pid: process.pid, path: p(file) })));
    expect(results.map((r) => ('digest' in r ? 'digest' : r.unavailable))).toEqual([
      'digest',
      'digest',
      'overloaded',
    ]);
    expect(() => new FileDigests({ concurrency: 0 })).toThrow(EnrichError);
    expect(() => new FileDigests({ maxQueued: 1.5 })).toThrow(/maxQueued must be an integer >= 1, got 1.5/);
    const small = new FileDigests({ maxFileBytes: 1000 });
    expect(await small.request({ pid: process.pid, path: p(file) })).toMatchObject({
      unavailable: 'too_large',
    });
  });
});
