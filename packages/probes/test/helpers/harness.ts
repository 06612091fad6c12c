import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProbeEvent, ProbeSet } from '@stellaops/probes';

const source = fileURLToPath(new URL('./fsops.c', import.meta.url));

/** Compiles the static workload helper into a fresh temp dir; returns its path. */
export function buildFsops(): string {
  const dir = mkdtempSync(join(tmpdir(), 'stella-probes-fsops-'));
  const bin = join(dir, 'fsops');
  execFileSync('cc', ['-O2', '-static', '-Wall', '-o', bin, source], { stdio: 'inherit' });
  return bin;
}

/** Drains a ProbeSet in the background into `events`. */
export class Collector {
  readonly events: ProbeEvent[] = [];
  readonly done: Promise<void>;
  error: unknown;

  constructor(readonly set: ProbeSet) {
    this.done = (async () => {
      try {
        for await (const batch of set) for (const e of batch) this.events.push(e);
      } catch (e) {
        this.error = e;
      }
    })();
  }

  of(pid: number): ProbeEvent[] {
    return this.events.filter((e) => e.pid === pid);
  }

  /** Resolves with the matching events once `pred` holds for them, or rejects after timeoutMs. */
  async waitFor<T extends ProbeEvent>(
    filter: (e: ProbeEvent) => e is T,
    until: (matches: T[]) => boolean,
    timeoutMs = 3000,
  ): Promise<T[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.error) throw this.error;
      const m = this.events.filter(filter);
      if (until(m)) return m;
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs} ms; ${m.length} matching events so far`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async close(): Promise<void> {
    await this.set.close();
    await this.done;
  }
}

/** Runs the helper to completion; returns its pid and trimmed stdout. */
export function run(
  bin: string,
  args: string[],
  opts: { cwd?: string } = {},
): { pid: number; out: string; status: number | null } {
  const r = spawnSync(bin, args, { encoding: 'utf8', ...opts });
  if (r.error) throw r.error;
  return { pid: r.pid ?? -1, out: r.stdout.trim(), status: r.status };
}

/** A cgroup v2 directory of its own, for placing test processes; id = inode. */
export class TestCgroup {
  readonly path: string;
  readonly id: bigint;

  /** A cgroup directory under `parent`. */
  static inside(parent: TestCgroup, name: string): TestCgroup {
    return new TestCgroup(name, parent.path);
  }

  constructor(name: string, under?: string) {
    if (under !== undefined) {
      this.path = join(under, name);
      mkdirSync(this.path);
      this.id = statSync(this.path, { bigint: true }).ino;
      return;
    }
    const root = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup'].find((p) => {
      try {
        return statSync(join(p, 'cgroup.procs')).isFile() && statSync(join(p, 'cgroup.controllers')).isFile();
      } catch {
        return false;
      }
    });
    if (!root) throw new Error('no cgroup v2 hierarchy at /sys/fs/cgroup/unified or /sys/fs/cgroup');
    this.path = join(root, `${name}-${process.pid}-${Date.now()}`);
    mkdirSync(this.path);
    this.id = statSync(this.path, { bigint: true }).ino;
  }

  add(pid: number): void {
    writeFileSync(join(this.path, 'cgroup.procs'), String(pid));
  }

  remove(): void {
    try {
      rmdirSync(this.path);
    } catch {
      // still populated by a process that did not exit: leave it for inspection
    }
  }
}

/**
 * Starts helper processes that wait for a byte on stdin (-w), moves them into
 * the cgroup, releases them together and resolves with their pids and outputs.
 */
export async function runInCgroup(
  bin: string,
  cg: TestCgroup,
  argsList: string[][],
): Promise<Array<{ pid: number; out: string; status: number | null }>> {
  const children = argsList.map((args) =>
    spawn(bin, ['-w', ...args], { stdio: ['pipe', 'pipe', 'inherit'] }),
  );
  const outs = children.map((c) => {
    let s = '';
    c.stdout!.on('data', (d: Buffer) => {
      s += d.toString();
    });
    return new Promise<{ pid: number; out: string; status: number | null }>((resolve, reject) => {
      c.on('error', reject);
      c.on('close', (status) => resolve({ pid: c.pid!, out: s.trim(), status }));
    });
  });
  for (const c of children) cg.add(c.pid!);
  for (const c of children) c.stdin!.end('g');
  return Promise.all(outs);
}
