import { mkdtempSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { queryStatus, STATUS_SOCKET, serveStatus } from './status-socket.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'stella-status-'));

describe('status socket', () => {
  it('answers with the current snapshot, bigints as decimal strings, on a 0600 socket', async () => {
    const dir = tmp();
    let n = 0n;
    const srv = await serveStatus(dir, () => {
      n += 1n;
      return { seen: n };
    });
    expect(statSync(join(dir, STATUS_SOCKET)).mode & 0o777).toBe(0o600);
    expect(await queryStatus(dir)).toEqual({ seen: '1' });
    expect(await queryStatus(dir)).toEqual({ seen: '2' });
    await srv.close();
  });

  it('says no collector is running when the directory has no socket', async () => {
    await expect(queryStatus(tmp())).rejects.toMatchObject({
      code: 'NOT_RUNNING',
      message: /does not exist/,
    });
  });

  it('refuses a second collector on the same directory', async () => {
    const dir = tmp();
    const srv = await serveStatus(dir, () => ({}));
    await expect(serveStatus(dir, () => ({}))).rejects.toMatchObject({ code: 'ALREADY_RUNNING' });
    await srv.close();
  });

  it('replaces a stale socket left by a crashed collector', async () => {
    const dir = tmp();
    const path = join(dir, STATUS_SOCKET);
    // A listener that is closed without unlinking leaves a dead socket file.
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(path, () => r()));
    await new Promise<void>((r) => {
      // biome-ignore lint/suspicious/noExplicitAny: reach the handle to close without unlink
      (dead as any)._handle.close(() => r());
    });
    await expect(queryStatus(dir)).rejects.toMatchObject({ code: 'NOT_RUNNING', message: /stale socket/ });
    const srv = await serveStatus(dir, () => ({ ok: true }));
    expect(await queryStatus(dir)).toEqual({ ok: true });
    await srv.close();
  });
});
