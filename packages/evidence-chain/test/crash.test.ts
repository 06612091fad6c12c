/**
 * Crash matrix: a real child process writes and seals at full speed and is
 * killed with SIGKILL at 110 random moments (during start-up and recovery,
 * mid-line, mid-rotation, mid-sign). After each kill the chain must verify
 * and every line whose append returned before the kill must be on disk; the
 * next child recovers the unfinished chunk and continues the chain.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../src/index.js';
import { keyPair, tmp } from './support/fixtures.js';

const KILLS = 110;
const CHUNK_BYTES = 16 * 1024;
const fixture = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

let t: ReturnType<typeof tmp>;
let key: ReturnType<typeof keyPair>;
beforeAll(() => {
  t = tmp('stella-crash-');
  key = keyPair(t.path);
});
afterAll(() => t.cleanup());

interface Child {
  proc: ChildProcess;
  acked: number;
  ready: Promise<void>;
  exited: Promise<number | null>;
  out: string[];
}

function startChild(dir: string, run: number, limit?: number): Child {
  const mode = run % 2 === 0 ? 'single' : 'batch';
  const args = ['--import', 'tsx', fixture, dir, key.privatePath, String(run), String(CHUNK_BYTES), mode];
  if (limit !== undefined) args.push(String(limit));
  const proc = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  const c: Child = { proc, acked: -1, ready: Promise.resolve(), exited: Promise.resolve(null), out: [] };
  let buf = '';
  let onReady: () => void = () => {};
  c.ready = new Promise((r) => {
    onReady = r;
  });
  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (d: string) => {
    buf += d;
    let nl = buf.indexOf('\n');
    while (nl >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.startsWith('ack ')) c.acked = Number(line.slice(4));
      else {
        c.out.push(line);
        if (line.startsWith('ready')) onReady();
      }
      nl = buf.indexOf('\n');
    }
  });
  const err: string[] = [];
  proc.stderr!.on('data', (d) => err.push(String(d)));
  c.exited = new Promise((r) =>
    proc.on('exit', (code) => {
      c.out.push(...err);
      r(code);
    }),
  );
  return c;
}

/** Every complete line in every chunk file, keyed `run:seq`, with duplicates counted. */
function linesOnDisk(dir: string): { keys: Set<string>; dupes: number } {
  const keys = new Set<string>();
  let dupes = 0;
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.ndjson'))) {
    const data = readFileSync(join(dir, f), 'utf8');
    const complete = data.slice(0, data.lastIndexOf('\n') + 1);
    for (const l of complete.split('\n')) {
      if (!l) continue;
      const r = JSON.parse(l) as { comm: string; seq: string };
      const k = `${r.comm}:${r.seq}`;
      if (keys.has(k)) dupes++;
      keys.add(k);
    }
  }
  return { keys, dupes };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('crash matrix (real child processes, SIGKILL)', () => {
  it(
    `recovers from ${KILLS} kills at random moments without losing an acknowledged line`,
    async () => {
      const dir = join(t.path, 'evidence');
      mkdirSync(dir, { mode: 0o750 });
      const acked: number[] = [];
      let killedBeforeReady = 0;
      for (let run = 0; run < KILLS; run++) {
        const c = startChild(dir, run);
        if (run % 4 === 0) {
          // Anywhere from process start: start-up, lock takeover, recovery of the previous run.
          await Promise.race([sleep(Math.floor(Math.random() * 700)), c.exited]);
        } else {
          await Promise.race([c.ready, c.exited]);
          await sleep(Math.floor(Math.random() * 120));
        }
        if (c.acked < 0) killedBeforeReady++;
        c.proc.kill('SIGKILL');
        const code = await c.exited;
        expect(code, `child ${run} exited by itself: ${c.out.join('\n')}`).toBeNull();
        acked[run] = c.acked;

        const report = verifyChain(dir, { keys: [key.publicKeyPem] });
        expect(report.errors, `after kill ${run}`).toEqual([]);
        const { keys: onDisk, dupes } = linesOnDisk(dir);
        expect(dupes, `duplicate lines after kill ${run}`).toBe(0);
        for (let r = 0; r <= run; r++) {
          for (let s = 0; s <= acked[r]!; s++) {
            if (!onDisk.has(`run${r}:${s}`)) {
              throw new Error(`after kill ${run}: line run${r}:${s} was acknowledged but is not on disk`);
            }
          }
        }
      }
      // A last child recovers and stops cleanly: the whole chain verifies as closed.
      const last = startChild(dir, KILLS, 200);
      const code = await last.exited;
      expect(code, last.out.join('\n')).toBe(0);
      const report = verifyChain(dir, { keys: [key.publicKeyPem], requireEnd: true });
      expect(report.errors).toEqual([]);
      expect(report.summary.closed).toBe(true);
      const { keys: onDisk } = linesOnDisk(dir);
      for (let r = 0; r < KILLS; r++) {
        for (let s = 0; s <= acked[r]!; s++) expect(onDisk.has(`run${r}:${s}`)).toBe(true);
      }
      // Sanity: the matrix really hit writers mid-stream and the recovery path ran.
      const recovered = report.chunks.filter((c) => c.recovered).length;
      const partials = report.chunks.filter((c) =>
        c.checks.some((x) => x.name === 'partial' && !x.skipped),
      ).length;
      const crashEnds = report.streams.filter((s) => s.end === 'crash_recovery').length;
      expect(recovered).toBeGreaterThan(KILLS / 2);
      expect(crashEnds).toBeGreaterThan(KILLS / 2);
      expect(acked.filter((a) => a > 0).length).toBeGreaterThan(KILLS / 2);
      process.stdout.write(
        `[crash matrix] ${KILLS} kills (${killedBeforeReady} before the first ack), ${report.chunks.length} chunks, ${recovered} recovered, ${partials} with a torn last line kept, ${report.summary.records} records\n`,
      );
    },
    15 * 60_000,
  );
});
