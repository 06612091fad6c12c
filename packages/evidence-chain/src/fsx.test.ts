import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tmp } from '../test/support/fixtures.js';
import { EvidenceChainError } from './errors.js';
import { ensureEvidenceDir } from './fsx.js';
import { LocalKeySigner } from './signer.js';

let t: ReturnType<typeof tmp>;
beforeEach(() => {
  t = tmp();
});
afterEach(() => t.cleanup());

function refusal(fn: () => unknown): EvidenceChainError {
  try {
    fn();
  } catch (e) {
    if (e instanceof EvidenceChainError) return e;
    throw e;
  }
  throw new Error('expected an EvidenceChainError');
}

const isRoot = process.getuid?.() === 0;
const tsx = fileURLToPath(new URL('../../../node_modules/tsx/dist/loader.mjs', import.meta.url));

describe('ensureEvidenceDir: an output directory nobody else can swap, fill or lose', () => {
  it('creates missing components 0750 and reports it created them', () => {
    const dir = join(t.path, 'a', 'b');
    expect(ensureEvidenceDir(dir)).toEqual({ created: true, warnings: [] });
    expect(statSync(dir).mode & 0o777).toBe(0o750);
  });

  it('returns an error for /proc/self/newdir instead of spinning (in a child: a spin would hang this worker)', () => {
    const fsx = fileURLToPath(new URL('./fsx.ts', import.meta.url));
    const code = `import('${fsx}').then((m) => { try { m.ensureEvidenceDir('/proc/self/newdir'); } catch (e) { console.log(e.code + ' ' + e.message); } })`;
    const r = spawnSync(process.execPath, ['--import', tsx, '-e', code], {
      encoding: 'utf8',
      timeout: 15_000,
    });
    expect(r.status).toBe(0); // null: killed by the timeout, still spinning
    expect(r.stdout).toContain(
      'UNSUPPORTED_FILESYSTEM output directory /proc/self/newdir is on a proc pseudo filesystem',
    );
  }, 30_000);

  it('refuses pseudo filesystems', () => {
    for (const [dir, kind] of [
      ['/proc', 'proc'],
      ['/sys/kernel/stella-x', 'sysfs'],
    ] as const) {
      const e = refusal(() => ensureEvidenceDir(dir));
      expect(e.code, dir).toBe('UNSUPPORTED_FILESYSTEM');
      expect(e.message).toContain(`is on a ${kind} pseudo filesystem`);
      expect(e.hint).toMatch(/directory on disk/);
    }
  });

  it('names the file in the way (ENOTDIR) and creates nothing', () => {
    const file = join(t.path, 'f');
    writeFileSync(file, '');
    const e = refusal(() => ensureEvidenceDir(join(file, 'x', 'y')));
    expect(e.code).toBe('NOT_A_DIRECTORY');
    expect(e.message).toContain(`${file} is not a directory`);
  });

  it('never chmods an existing directory: group/world-writable is refused, 0755 warned, 0700 kept', () => {
    const open = join(t.path, 'open');
    mkdirSync(open);
    chmodSync(open, 0o770);
    expect(refusal(() => ensureEvidenceDir(open)).code).toBe('UNSAFE_DIRECTORY');
    expect(statSync(open).mode & 0o777).toBe(0o770);
    const readable = join(t.path, 'readable');
    mkdirSync(readable);
    chmodSync(readable, 0o755);
    const r = ensureEvidenceDir(readable);
    expect(r.created).toBe(false);
    expect(r.warnings.join('\n')).toContain('has mode 755: every user can list the evidence file names');
    expect(statSync(readable).mode & 0o777).toBe(0o755);
    const narrow = join(t.path, 'narrow');
    mkdirSync(narrow);
    chmodSync(narrow, 0o700);
    expect(ensureEvidenceDir(narrow)).toEqual({ created: false, warnings: [] });
    expect(statSync(narrow).mode & 0o777).toBe(0o700);
  });

  it('refuses a world-writable parent without the sticky bit before creating anything; accepts it with the bit', () => {
    const parent = join(t.path, 'parent');
    mkdirSync(parent);
    chmodSync(parent, 0o777);
    const e = refusal(() => ensureEvidenceDir(join(parent, 'ev', 'x')));
    expect(e.code).toBe('UNSAFE_DIRECTORY');
    expect(e.message).toContain(`${parent}, a parent of output directory`);
    expect(existsSync(join(parent, 'ev'))).toBe(false);
    chmodSync(parent, 0o1777);
    expect(ensureEvidenceDir(join(parent, 'ev')).created).toBe(true);
  });

  it.runIf(isRoot)('refuses a directory owned by another user', () => {
    const dir = join(t.path, 'theirs');
    mkdirSync(dir, { mode: 0o700 });
    chownSync(dir, 65534, 65534);
    const e = refusal(() => ensureEvidenceDir(dir));
    expect(e.code).toBe('UNSAFE_DIRECTORY');
    expect(e.message).toContain('is owned by uid 65534');
    expect(e.hint).toBe(`chown 0 ${dir}, or choose a directory owned by uid 0`);
  });
});

describe('LocalKeySigner.fromPemFile: a key is a regular file', () => {
  it('refuses a directory and /dev/null by kind, with no chmod advice for a device', () => {
    const d = refusal(() => LocalKeySigner.fromPemFile(t.path));
    expect(d.code).toBe('KEY_ERROR');
    expect(d.message).toBe(`private key ${t.path} is a directory, not a regular file`);
    const n = refusal(() => LocalKeySigner.fromPemFile('/dev/null'));
    expect(n.message).toBe('private key /dev/null is a character device, not a regular file');
    expect(n.hint).not.toContain('chmod');
  });
});
