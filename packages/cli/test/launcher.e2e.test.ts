import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { COLLECTOR_HEAP_FLAGS } from '../src/heap-cap.js';

// The `stella` command as npm links it: bin/stella.js, then the built CLI.
const pkg = fileURLToPath(new URL('..', import.meta.url));
const launcher = join(pkg, 'bin/stella.js');
const dir = mkdtempSync(join(tmpdir(), 'stella-launcher-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Runs `stella <args>` with a preload that logs, for each process image (an
 * execve starts a new one under the same pid), its node flags and which of
 * the CLI's built files it loaded.
 */
function images(args: string[]): { pid: number; execArgv: string[]; loaded: string[] }[] {
  const log = join(dir, `${args.join('-')}.log`);
  const preload = join(dir, 'log-modules.mjs');
  writeFileSync(
    preload,
    `import { appendFileSync } from 'node:fs';
import { registerHooks } from 'node:module';
const loaded = [];
registerHooks({ load(url, context, next) { if (url.includes('/cli/dist/')) loaded.push(url.split('/').pop()); return next(url, context); } });
process.on('exit', () => appendFileSync(${JSON.stringify(log)}, JSON.stringify({ pid: process.pid, execArgv: process.execArgv, loaded }) + '\\n'));
const execve = process.execve;
process.execve = (...a) => { process.emit('exit'); return execve.apply(process, a); };
`,
  );
  const r = spawnSync(process.execPath, [launcher, ...args], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: `--import=${preload}` },
    timeout: 60_000,
  });
  expect(r.status, r.stderr).toBe(0);
  return readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

describe('the stella launcher', () => {
  it('re-executes `signals start` with the heap cap before the CLI loads: the CLI loads once, capped', () => {
    const [first, second, ...more] = images(['signals', 'start', '--help']);
    expect(more).toEqual([]);
    // One process (execve keeps the pid): first image without the flags, only the small check loaded.
    expect(second?.pid).toBe(first?.pid);
    expect(first?.loaded).toEqual(['heap-cap.js']);
    expect(second?.execArgv).toEqual(expect.arrayContaining([...COLLECTOR_HEAP_FLAGS]));
    expect(second?.loaded).toContain('bin.js');
  });

  it('leaves other commands in one image without the flags', () => {
    const [only, ...more] = images(['signals', 'status', '--help']);
    expect(more).toEqual([]);
    expect(only?.execArgv.filter((a: string) => a.startsWith('--max'))).toEqual([]);
    expect(only?.loaded).toContain('bin.js');
  });
});
