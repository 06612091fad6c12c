/**
 * Helpers of the network/TLS kernel tests: one running NetProbes per test
 * file collecting every event and raw record, real peers as child processes
 * (this test process is excluded from tracing by the runtime).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { scaled } from '@stellaops/testing';
import { type NetEvent, type NetProbeOptions, type NetProbes, openNetProbes } from '../src/net/index.js';

/** Debian's python: its _ssl links the system libssl.so.3 dynamically. */
export const PYTHON = '/usr/bin/python3';

export interface Collector {
  probes: NetProbes;
  events: NetEvent[];
  raw: Buffer[];
  stop(): Promise<void>;
}

/** Start probes and drain them into arrays in the background. */
export function collect(opts: NetProbeOptions = {}): Collector {
  const raw: Buffer[] = [];
  const events: NetEvent[] = [];
  const probes = openNetProbes({
    dedup: false,
    rescanIntervalMs: 0,
    ...opts,
    onRawRecord: (r) => raw.push(Buffer.from(r)),
  });
  const done = (async () => {
    for await (const batch of probes) events.push(...batch);
  })();
  return {
    probes,
    events,
    raw,
    async stop() {
      await probes.close();
      await done;
    },
  };
}

/** Poll until pred finds matching events (returns them) or time out with a description of what was seen. */
export async function waitFor<T extends NetEvent>(
  c: Collector,
  what: string,
  pred: (e: NetEvent) => e is T,
  count = 1,
  timeoutMs = 5000,
): Promise<T[]> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const hits = c.events.filter(pred);
    if (hits.length >= count) return hits;
    if (Date.now() > end) {
      const seen = c.events.slice(-20).map((e) => `${e.type}:${e.header.pid}:${e.header.comm}`);
      throw new Error(`timed out waiting for ${count} x ${what}; last events: ${seen.join(', ')}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A TCP port nothing listens on right now (bound then released). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Run a child to completion; resolves with its pid and output. */
export function run(
  cmd: string,
  args: string[],
  input?: string,
): Promise<{ pid: number; code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ pid: child.pid ?? 0, code: code ?? -1, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

/** A started child and what it printed until it was ready. */
export interface Started {
  child: ChildProcess;
  pid: number;
  out: string;
}

/** Start a long-running child and wait until its output matches `ready`. */
export function start(
  cmd: string,
  args: string[],
  ready: RegExp | undefined,
  opts: { cwd?: string } = {},
): Promise<Started> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${cmd} did not get ready: ${out}`)), scaled(10_000));
    const check = (d: Buffer) => {
      out += d.toString();
      if (ready?.test(out)) {
        clearTimeout(timer);
        resolve({ child, pid: child.pid ?? 0, out });
      }
    };
    child.stdout?.on('data', check);
    child.stderr?.on('data', check);
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`${cmd} exited (${code}) before ready: ${out}`)));
    if (!ready) {
      clearTimeout(timer);
      resolve({ child, pid: child.pid ?? 0, out });
    }
  });
}

/** Wait until a TCP listener accepts on host:port. */
export async function waitListening(host: string, port: number, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      execFileSync(
        PYTHON,
        ['-c', `import socket; socket.create_connection((${JSON.stringify(host)}, ${port}), 1).close()`],
        {
          stdio: 'ignore',
        },
      );
      return;
    } catch {
      if (Date.now() > end) throw new Error(`nothing listens on ${host}:${port}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Kill a started child (by its own pid) if it still runs. */
export function stopChild(s: Started | undefined): void {
  if (s && s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
}
