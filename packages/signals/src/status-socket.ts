import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';

/** File name of the control socket inside the output directory. */
export const STATUS_SOCKET = 'collector.sock';

/** Thrown when no collector answers, or another one already owns the directory. */
export class StatusSocketError extends Error {
  constructor(
    readonly code: 'NOT_RUNNING' | 'ALREADY_RUNNING' | 'PROTOCOL',
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = this.constructor.name;
  }
}

/**
 * Serve the collector's status as one JSON line per connection on
 * `<dir>/collector.sock` (mode 0600: status reveals what is traced).
 * Refuses to start when a live collector already answers there; removes a
 * stale socket left by a crash.
 */
export async function serveStatus(dir: string, snapshot: () => unknown): Promise<{ close(): Promise<void> }> {
  const path = join(dir, STATUS_SOCKET);
  if (await isAlive(path)) {
    throw new StatusSocketError(
      'ALREADY_RUNNING',
      `a collector is already running on ${dir}`,
      'stop it first (stella signals status shows its pid), or use another --target',
    );
  }
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // absent: nothing to clean
  }
  const server: Server = createServer((sock) => {
    sock.on('error', () => sock.destroy());
    let body: string;
    try {
      body = JSON.stringify(snapshot(), (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
    } catch (e) {
      body = JSON.stringify({ error: String(e) });
    }
    sock.end(`${body}\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        try {
          unlinkSync(path);
        } catch {
          // already gone
        }
      }),
  };
}

async function isAlive(path: string): Promise<boolean> {
  try {
    await queryStatusAt(path, 1000);
    return true;
  } catch {
    return false;
  }
}

function queryStatusAt(path: string, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(
        new StatusSocketError(
          'NOT_RUNNING',
          `the collector on ${path} did not answer in ${timeoutMs} ms`,
          'it may be hung: check its log, and its pid with: fuser ' + path,
        ),
      );
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      buf += d;
    });
    sock.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buf));
      } catch {
        reject(new StatusSocketError('PROTOCOL', `unreadable status from ${path}`));
      }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const stale = e.code === 'ECONNREFUSED';
      reject(
        new StatusSocketError(
          'NOT_RUNNING',
          stale
            ? `no collector is running on ${path} (stale socket from an earlier run)`
            : e.code === 'ENOENT'
              ? `no collector is running: ${path} does not exist`
              : `cannot reach the collector on ${path}: ${e.code ?? e.message}`,
          e.code === 'EACCES'
            ? 'the socket is 0600: run as the collector user (root)'
            : 'start one with: stella signals start --target DIR',
        ),
      );
    });
  });
}

/**
 * Ask the collector running on `dir` for its status. During a stop the
 * answer says `state: "stopping"`; it can come a few seconds late, because
 * detaching the TLS uprobes holds the collector's event loop (about 2 s
 * with the default probes), hence the 10 s default wait.
 * @throws StatusSocketError('NOT_RUNNING') when none answers.
 */
export function queryStatus(dir: string, timeoutMs = 10_000): Promise<unknown> {
  return queryStatusAt(join(dir, STATUS_SOCKET), timeoutMs);
}
