import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_FIELDS, envName } from './config.js';
import type { Io } from './io.js';
import { main } from './main.js';

function capture(env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => out.push(t), err: (t) => err.push(t), env, isTTY: false };
  return { io, out: () => out.join(''), err: () => err.join('') };
}

describe('stella CLI dispatch', () => {
  it('prints the command list for --help', async () => {
    const c = capture();
    expect(await main(['--help'], c.io)).toBe(0);
    expect(c.out()).toContain('Usage: stella signals <command>');
    expect(c.out()).toContain('config');
  });

  it('rejects an unknown command with exit 2 and a hint, no stack', async () => {
    const c = capture();
    expect(await main(['signals', 'strat'], c.io)).toBe(2);
    expect(c.err()).toMatch(/^stella: unknown command 'signals strat'\n {2}hint: commands: /);
    expect(c.err()).not.toMatch(/\bat .*\.ts:\d+/);
  });

  it('rejects an unknown flag and names it', async () => {
    const c = capture();
    expect(await main(['signals', 'config', '--effective', '--bogus'], c.io)).toBe(2);
    expect(c.err()).toContain("Unknown option '--bogus'");
    expect(c.err()).toContain("hint: run 'stella signals config --help'");
  });

  it('shows examples and exit codes in command help', async () => {
    const c = capture();
    expect(await main(['signals', 'config', '--help'], c.io)).toBe(0);
    expect(c.out()).toContain('Examples:');
    expect(c.out()).toContain('Exit codes:');
  });

  it('prints the effective config with the source of each value', async () => {
    const c = capture({ STELLA_DEDUP_ENABLED: 'false' });
    expect(await main(['signals', 'config', '--effective', '--set', 'rotation.max_size_mb=3'], c.io)).toBe(0);
    expect(c.out()).toMatch(/signals\.rotation\.max_size_mb: 3\s+# flag \(--set rotation\.max_size_mb\)/);
    expect(c.out()).toMatch(/signals\.dedup\.enabled: false\s+# env \(STELLA_DEDUP_ENABLED\)/);
    expect(c.out()).toMatch(/signals\.ring_buffer\.size_mb: 8\s+# default/);
  });

  it('reports a bad --set with the key and the expected type', async () => {
    const c = capture();
    expect(await main(['signals', 'config', '--effective', '--set', 'dedup.max_entries=lots'], c.io)).toBe(2);
    expect(c.err()).toContain(
      'stella: --set dedup.max_entries: signals.dedup.max_entries must be an integer',
    );
  });
});

describe('stella: bad flag values get a clear error, exit 2 (issue 10)', () => {
  it('--duration -5s says the duration must be positive, not "argument is ambiguous"', async () => {
    const c = capture();
    expect(await main(['signals', 'start', '--duration', '-5s'], c.io)).toBe(2);
    expect(c.err()).toBe(
      "stella: --duration: '-5s' is negative; the duration must be positive\n  hint: use e.g. 30s, 5m, 2h or 1500ms\n",
    );
  });

  it('an option followed by another option says which one is missing its value', async () => {
    const c = capture();
    expect(await main(['signals', 'start', '-t', '-c', 'x.yaml'], c.io)).toBe(2);
    expect(c.err()).toMatch(/^stella: stella signals start: -t is missing its value\n {2}hint: /);
    expect(c.err()).not.toContain('ambiguous');
  });

  const numeric = CONFIG_FIELDS.filter((f) => (f.type as { kind: string }).kind === 'number');
  it.each(['0x10', '0o20', '0b10000', '1e1', '+16', '.5', ' 16', '016', 'Infinity'])(
    'every numeric key refuses %j in --set and in the environment: plain decimal only',
    async (text) => {
      expect(numeric.length).toBeGreaterThan(4);
      for (const f of numeric) {
        const c = capture();
        expect(
          await main(['signals', 'config', '--effective', '--set', `${f.key}=${text}`], c.io),
          f.key,
        ).toBe(2);
        expect(c.err()).toContain(`stella: --set ${f.key}: signals.${f.key} must be`);
        expect(c.err()).toContain('(plain decimal)');
        const e = capture({ [envName(f.key)]: text });
        expect(await main(['signals', 'config', '--effective'], e.io), envName(f.key)).toBe(2);
        expect(e.err()).toContain(`environment variable ${envName(f.key)}`);
      }
    },
  );

  it('a hex, octal or exponent number in stellaops.yaml names file, line, column and key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stella-main-'));
    for (const [key, text] of [
      ['rotation.max_size_mb', '0x10'],
      ['rotation.max_age_hours', '1e0'],
      ['ring_buffer.size_mb', '0o10'],
      ['dedup.max_entries', '65_536'],
      ['status_interval_seconds', '+60'],
    ] as const) {
      const [group, leaf] = key.includes('.') ? key.split('.') : [undefined, key];
      const yaml = group ? `signals:\n  ${group}:\n    ${leaf}: ${text}\n` : `signals:\n  ${leaf}: ${text}\n`;
      const file = join(dir, `${key}.yaml`);
      writeFileSync(file, yaml);
      const c = capture();
      expect(await main(['signals', 'config', '--effective', '--config', file], c.io), key).toBe(2);
      const line = group ? 3 : 2;
      const col = (group ? 7 : 5) + leaf!.length;
      expect(c.err()).toMatch(
        new RegExp(`^stella: ${file}:${line}:${col}: signals\\.${key.replace('.', '\\.')} must be`),
      );
      expect(c.err()).toContain('(plain decimal)');
    }
  });

  it('plain decimal numbers are still accepted', async () => {
    const c = capture({ STELLA_ROTATION_MAX_AGE_HOURS: '0.5' });
    expect(await main(['signals', 'config', '--effective', '--set', 'rotation.max_size_mb=16'], c.io)).toBe(
      0,
    );
    expect(c.out()).toMatch(/signals\.rotation\.max_size_mb: 16\s/);
    expect(c.out()).toMatch(/signals\.rotation\.max_age_hours: 0\.5\s/);
  });
});

describe('stella keygen and verify-chain: bad key paths say what and how to fix (issue 10)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stella-keys-'));
  const file = join(dir, 'plain');
  writeFileSync(file, 'x');

  it.each([
    [
      join(dir, 'no', 'such', 'k.pem'),
      `the directory ${join(dir, 'no', 'such')} does not exist`,
      'install -d -m 0750',
    ],
    ['/proc/k.pem', '/proc is on the proc pseudo filesystem', 'a directory on disk'],
    [join(file, 'k.pem'), `${file} is not a directory`, 'check the path'],
  ])('keygen --out %s: exit 2, names the directory, with a hint', async (out, what, hint) => {
    const c = capture();
    expect(await main(['signals', 'keygen', '--out', out], c.io)).toBe(2);
    expect(c.err()).toContain(`stella: keygen: --out ${out}: `);
    expect(c.err()).toContain(what);
    expect(c.err()).toContain(`hint: `);
    expect(c.err()).toContain(hint);
    expect(c.err()).not.toMatch(/ENOENT: no such file or directory, open/);
  });

  it.each([
    [dir, 'is a directory, not a regular file'],
    ['/dev/null', 'is a character device, not a regular file'],
    [join(dir, 'absent.pub.pem'), ': no such file'],
  ])('verify-chain --key %s: exit 2 with a hint, no raw errno text', async (key, what) => {
    const c = capture();
    expect(await main(['signals', 'verify-chain', dir, '--key', key], c.io)).toBe(2);
    expect(c.err()).toContain(`stella: --key ${key}`);
    expect(c.err()).toContain(what);
    expect(c.err()).toMatch(/\n {2}hint: \S/);
    expect(c.err()).not.toContain('EISDIR');
  });
});
