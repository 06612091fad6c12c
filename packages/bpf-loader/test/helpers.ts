import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RecordBatch, RingBufferReader } from '@stellaops/bpf-loader';
import { scaled } from '@stellaops/testing';

export const fixturesDir = fileURLToPath(new URL('./fixtures/', import.meta.url));
export const fixture = (name: string) => `${fixturesDir}build/${name}`;
export const targetBin = fixture('target');
export const addonPath = fileURLToPath(new URL('../build/Release/stella_bpf.node', import.meta.url));

/** Builds the fixtures (incremental make); throws with the fix when the addon is missing. */
export function ensureFixtures(): void {
  execFileSync('make', ['-s', '-C', fixturesDir], { stdio: 'inherit' });
  if (!existsSync(addonPath)) {
    throw new Error(
      `native addon missing at ${addonPath}: run npm run build:native -w @stellaops/bpf-loader`,
    );
  }
}

/** Layout of struct fixture_event (test/fixtures/fixture.h). */
export const EVENT_SIZE = 32;
export const KIND = { TICK: 1, EXEC: 2, SYSCALL: 3, TRACEPOINT: 4, FLOOD: 5 } as const;

export interface FixtureEvent {
  pid: number;
  kind: number;
  seq: bigint;
  magic: bigint;
  aux: bigint;
}

export function decodeEvent(rec: Buffer): FixtureEvent {
  if (rec.length !== EVENT_SIZE) throw new Error(`record is ${rec.length} bytes, expected ${EVENT_SIZE}`);
  return {
    pid: rec.readUInt32LE(0),
    kind: rec.readUInt32LE(4),
    seq: rec.readBigUInt64LE(8),
    magic: rec.readBigUInt64LE(16),
    aux: rec.readBigUInt64LE(24),
  };
}

/** A workload process of test/fixtures/target.c, stopped until go(). */
export interface Target {
  child: ChildProcessWithoutNullStreams;
  pid: number;
  go(): void;
  exited: Promise<number | null>;
}

export async function startTarget(mode: 'tick' | 'getppid' | 'exec', n = 0): Promise<Target> {
  const child = spawn(targetBin, [mode, String(n)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`target exited early with ${code}`)));
  });
  return {
    child,
    pid: child.pid!,
    go: () => child.stdin.end('go\n'),
    exited,
  };
}

/**
 * Reads batches until `done` says so (checked after each batch and on each
 * idle tick) or the deadline passes.
 */
export async function readUntil(
  reader: RingBufferReader,
  done: () => boolean,
  onBatch: (b: RecordBatch) => void,
  timeoutMs = 10_000,
): Promise<void> {
  // Stretched in kernel VMs (TCG): 20000 uprobe traps take minutes there.
  const deadline = Date.now() + scaled(timeoutMs);
  // One read in flight at a time: a read abandoned to the idle timer would
  // swallow the batch it later resolves with.
  let pending: Promise<RecordBatch | null> | undefined;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${scaled(timeoutMs)} ms`);
    pending ??= reader.read();
    const b = await Promise.race([pending, new Promise<'idle'>((r) => setTimeout(() => r('idle'), 50))]);
    if (b === 'idle') continue;
    pending = undefined;
    if (b === null) return;
    onBatch(b);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Sum of a per-CPU u64 slot. */
export function sumPerCpu(parts: Buffer[]): bigint {
  return parts.reduce((acc, b) => acc + b.readBigUInt64LE(0), 0n);
}

/**
 * Everything the ring holds once producers are done: waits quietMs, drains
 * synchronously until empty, and returns the queued batches' records.
 */
export async function drainAll(reader: RingBufferReader, quietMs = 30): Promise<Buffer[]> {
  await sleep(quietMs);
  const out: Buffer[] = [];
  for (;;) {
    for (let b = reader.tryRead(); b !== undefined; b = reader.tryRead()) out.push(...b);
    if (reader.drainNow() === 0) return out;
  }
}
