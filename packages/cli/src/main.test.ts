import { chmodSync, existsSync, mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canRunBpf } from '@stellaops/testing';
import { describe, expect, it } from 'vitest';
import { CONFIG_FIELDS, envName } from './config.js';
import type { Io } from './io.js';
import { main } from './main.js';

/** No stellaops.yaml here: tests never read the machine's /etc/stellaops/stellaops.yaml. */
const NO_DEFAULT_CONFIG = join(mkdtempSync(join(tmpdir(), 'stella-nodefault-')), 'stellaops.yaml');

function capture(env: NodeJS.ProcessEnv = {}, more: Partial<Io> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    env,
    isTTY: false,
    defaultConfigPath: NO_DEFAULT_CONFIG,
    ...more,
  };
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
    ['/proc/k.pem', '/proc is on the proc pseudo filesystem', 'a directory on disk'],
    ['/proc/no/such/k.pem', '/proc is on the proc pseudo filesystem', 'a directory on disk'],
    ['/sys/kernel/no-such/k.pem', '/sys/kernel is on the sysfs pseudo filesystem', 'a directory on disk'],
    [join(file, 'k.pem'), `${file} is not a directory`, 'check the path'],
    [join(file, 'sub', 'k.pem'), `a component of ${join(file, 'sub')} is a file`, 'check the path'],
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

describe('stella: configuration where users look, keygen makes its directory (issue 14)', () => {
  /** A default location of our own, standing in for /etc/stellaops/stellaops.yaml. */
  function defaultLocation(text?: string): string {
    const path = join(mkdtempSync(join(tmpdir(), 'stella-etc-')), 'stellaops', 'stellaops.yaml');
    if (text !== undefined) {
      mkdirSync(join(path, '..'));
      writeFileSync(path, text);
    }
    return path;
  }
  const yaml = (mb: number) => `signals:\n  rotation:\n    max_size_mb: ${mb}\n`;

  it('config --effective reads stellaops.yaml at the default location without --config and says so', async () => {
    const etc = defaultLocation(yaml(7));
    const c = capture({}, { defaultConfigPath: etc });
    expect(await main(['signals', 'config', '--effective'], c.io)).toBe(0);
    expect(c.out()).toContain(`# config file: ${etc} (default location)\n`);
    expect(c.out()).toMatch(
      new RegExp(`signals\\.rotation\\.max_size_mb: 7\\s+# file \\(${etc.replace(/\./g, '\\.')}:3\\)`),
    );
    const j = capture({}, { defaultConfigPath: etc });
    expect(await main(['signals', 'config', '--effective', '--json'], j.io)).toBe(0);
    const parsed = JSON.parse(j.out());
    expect(parsed.config_file).toEqual({ path: etc, via: 'default location' });
    expect(parsed.signals['rotation.max_size_mb'].value).toBe(7);
  });

  it('no file at the default location: defaults, and the printout says none was read', async () => {
    const etc = defaultLocation();
    const c = capture({}, { defaultConfigPath: etc });
    expect(await main(['signals', 'config', '--effective'], c.io)).toBe(0);
    expect(c.out()).toContain(`# config file: none: defaults (no ${etc})\n`);
    expect(c.out()).toMatch(/signals\.rotation\.max_size_mb: 100\s+# default/);
    const j = capture({}, { defaultConfigPath: etc });
    expect(await main(['signals', 'config', '--effective', '--json'], j.io)).toBe(0);
    expect(JSON.parse(j.out()).config_file).toBeNull();
  });

  it('--config > STELLA_CONFIG > the default location', async () => {
    const etc = defaultLocation(yaml(7));
    const fromEnv = defaultLocation(yaml(8));
    const fromFlag = defaultLocation(yaml(9));
    const e = capture({ STELLA_CONFIG: fromEnv }, { defaultConfigPath: etc });
    expect(await main(['signals', 'config', '--effective'], e.io)).toBe(0);
    expect(e.out()).toContain(`# config file: ${fromEnv} (STELLA_CONFIG)\n`);
    expect(e.out()).toMatch(/signals\.rotation\.max_size_mb: 8\s/);
    const f = capture({ STELLA_CONFIG: fromEnv }, { defaultConfigPath: etc });
    expect(await main(['signals', 'config', '--effective', '--config', fromFlag], f.io)).toBe(0);
    expect(f.out()).toContain(`# config file: ${fromFlag} (--config)\n`);
    expect(f.out()).toMatch(/signals\.rotation\.max_size_mb: 9\s/);
  });

  it('a file named by STELLA_CONFIG or --config must exist: exit 2 naming it and what named it', async () => {
    const etc = defaultLocation(yaml(7));
    const absent = join(tmpdir(), 'stella-absent-dir', 'stellaops.yaml');
    const e = capture({ STELLA_CONFIG: absent }, { defaultConfigPath: etc });
    expect(await main(['signals', 'config', '--effective'], e.io)).toBe(2);
    expect(e.err()).toBe(
      `stella: cannot read config file ${absent} (named by STELLA_CONFIG): no such file\n  hint: fix STELLA_CONFIG, or unset it to read ${etc} if it exists\n`,
    );
    const f = capture({}, { defaultConfigPath: etc });
    expect(await main(['signals', 'config', '--effective', '--config', absent], f.io)).toBe(2);
    expect(f.err()).toContain(`stella: cannot read config file ${absent} (named by --config): no such file`);
  });

  it('a default location that exists but cannot be read is an error, not silently skipped', async () => {
    const etc = defaultLocation();
    mkdirSync(etc, { recursive: true }); // a directory where the file should be
    const c = capture({}, { defaultConfigPath: etc });
    expect(await main(['signals', 'config', '--effective'], c.io)).toBe(2);
    expect(c.err()).toContain(`stella: cannot read config file ${etc} (default location): EISDIR`);
    expect(c.err()).toContain('hint: ');
  });

  it('start says which config file it read before acting on it (JSON on a pipe, text on a terminal)', async () => {
    const etc = defaultLocation('signals:\n  enabled: false\n');
    const target = mkdtempSync(join(tmpdir(), 'stella-ev-'));
    const c = capture({}, { defaultConfigPath: etc });
    // enabled: false comes from the default file only: refusing to start proves it was read.
    expect(await main(['signals', 'start', '--target', target], c.io)).toBe(2);
    expect(c.err()).toContain('stella: signals.enabled is false: nothing to start');
    const first = JSON.parse(c.err().split('\n')[0]!);
    expect(first).toMatchObject({ level: 'info', msg: 'config', config_file: etc, via: 'default location' });
    const t = capture({}, { defaultConfigPath: etc, errIsTTY: true });
    expect(await main(['signals', 'start', '--target', target], t.io)).toBe(2);
    expect(t.err()).toMatch(
      new RegExp(`^stella: config file: ${etc.replace(/\./g, '\\.')} \\(default location\\)\n`),
    );
    const n = capture({}, { defaultConfigPath: defaultLocation(), errIsTTY: true });
    expect(await main(['signals', 'start', '--target', target, '--set', 'enabled=false'], n.io)).toBe(2);
    expect(n.err()).toMatch(/^stella: config file: none: defaults \(no \S+stellaops\.yaml\)\n/);
  });

  it('keygen --out creates the missing directories 0700 and leaves existing ones alone', async () => {
    const base = mkdtempSync(join(tmpdir(), 'stella-keygen-'));
    chmodSync(base, 0o751);
    const out = join(base, 'etc', 'stellaops', 'signals-key.pem');
    const c = capture();
    expect(await main(['signals', 'keygen', '--out', out], c.io)).toBe(0);
    expect(c.out()).toContain(`created directory ${join(base, 'etc')} (0700)\n`);
    expect(c.out()).toContain(`created directory ${join(base, 'etc', 'stellaops')} (0700)\n`);
    expect(statSync(join(base, 'etc')).mode & 0o7777).toBe(0o700);
    expect(statSync(join(base, 'etc', 'stellaops')).mode & 0o7777).toBe(0o700);
    expect(statSync(base).mode & 0o7777).toBe(0o751);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(existsSync(join(base, 'etc', 'stellaops', 'signals-key.pub.pem'))).toBe(true);
    // A second key beside it: the directory exists now, nothing is created or chmodded.
    chmodSync(join(base, 'etc', 'stellaops'), 0o750);
    const again = capture();
    expect(
      await main(['signals', 'keygen', '--out', join(base, 'etc', 'stellaops', 'k2.pem')], again.io),
    ).toBe(0);
    expect(again.out()).not.toContain('created directory');
    expect(statSync(join(base, 'etc', 'stellaops')).mode & 0o7777).toBe(0o750);
  });

  it('keygen: the missing directories are 0700 even under a umask that would take bits away', async () => {
    const base = mkdtempSync(join(tmpdir(), 'stella-keygen-umask-'));
    const old = process.umask(0o277);
    try {
      const c = capture();
      expect(await main(['signals', 'keygen', '--out', join(base, 'keys', 'k.pem')], c.io)).toBe(0);
    } finally {
      process.umask(old);
    }
    expect(statSync(join(base, 'keys')).mode & 0o7777).toBe(0o700);
  });
});

describe.runIf(canRunBpf('stella signals start in-process, status line'))(
  'stella start: the live status line follows stderr, where it is written (issue 14)',
  () => {
    async function run(tty: { isTTY: boolean; errIsTTY: boolean }) {
      const base = mkdtempSync(join(tmpdir(), 'stella-tty-'));
      const key = join(base, 'k.pem');
      expect(await main(['signals', 'keygen', '--out', key], capture().io)).toBe(0);
      const c = capture({}, tty);
      const argv = ['signals', 'start', '--target', join(base, 'ev'), '--key', key, '--duration', '1s'];
      expect(await main(argv, c.io), c.err()).toBe(0);
      return c.err();
    }

    it('stdout piped, stderr a terminal: human status line on stderr', async () => {
      const err = await run({ isTTY: false, errIsTTY: true });
      expect(err).toContain('stella: collecting into ');
      expect(err).toContain('\r\x1b[K');
      expect(err).toMatch(/stella: stopped; \d+ chunks sealed in /);
      expect(err).not.toContain('"level":');
    }, 60_000);

    it('stdout a terminal, stderr piped: JSON log lines, no terminal control codes', async () => {
      const err = await run({ isTTY: true, errIsTTY: false });
      expect(err).not.toContain('\x1b[');
      const lines = err
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines.map((l) => l.msg)).toEqual(
        expect.arrayContaining(['collector started', 'collector stopped']),
      );
    }, 60_000);
  },
);

describe('stella: outside audit follow-ups (issue 10)', () => {
  it('verify-chain on a missing directory: exit 2 as its help says, a clear message and a hint', async () => {
    const base = mkdtempSync(join(tmpdir(), 'stella-nodir-'));
    const key = join(base, 'k.pem');
    expect(await main(['signals', 'keygen', '--out', key], capture().io)).toBe(0);
    const dir = join(base, 'nonexist');
    const c = capture();
    expect(await main(['signals', 'verify-chain', dir, '--key', join(base, 'k.pub.pem')], c.io)).toBe(2);
    expect(c.err()).toContain(
      `stella: evidence directory ${dir}: no such directory\n  hint: give the directory`,
    );
    expect(c.err()).not.toContain('scandir');
    const help = capture();
    await main(['signals', 'verify-chain', '--help'], help.io);
    expect(help.out()).toMatch(/\n\s+2\s+bad flags, unreadable key, or a directory that does not exist/);
  });

  it('--set with an unknown key says where to find the valid keys', async () => {
    const c = capture();
    expect(await main(['signals', 'config', '--effective', '--set', 'nosuch.key=1'], c.io)).toBe(2);
    expect(c.err()).toContain("stella: --set nosuch.key: unknown config key 'nosuch.key'");
    expect(c.err()).toContain('\n  hint: every key, its default and meaning: stella signals config --keys');
  });

  it.runIf(canRunBpf('stella signals start --key with a public key'))(
    'start --key PUBLIC.pem says it is a public key and names the private one, whatever its mode',
    async () => {
      const base = mkdtempSync(join(tmpdir(), 'stella-pubkey-'));
      const key = join(base, 'k.pem');
      expect(await main(['signals', 'keygen', '--out', key], capture().io)).toBe(0);
      const pub = join(base, 'k.pub.pem');
      for (const mode of [0o644, 0o600]) {
        chmodSync(pub, mode);
        const c = capture();
        const argv = ['signals', 'start', '--target', join(base, 'ev'), '--key', pub, '--duration', '1s'];
        expect(await main(argv, c.io)).toBe(2);
        expect(c.err()).toContain(`${pub} is a public key; signing needs the private key`);
        expect(c.err()).toContain(
          `hint: give the private key: the .pem that stella signals keygen wrote next to it (${key})`,
        );
        expect(c.err()).not.toContain('chmod 600');
        expect(c.err()).not.toContain('ERR_OSSL');
      }
      expect(existsSync(join(base, 'ev'))).toBe(false);
    },
  );
});
