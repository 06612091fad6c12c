import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_FIELDS, envName, loadConfig } from './config.js';
import { CliError } from './errors.js';

const dir = mkdtempSync(join(tmpdir(), 'stella-config-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function failure(fn: () => unknown): CliError {
  try {
    fn();
  } catch (e) {
    if (e instanceof CliError) return e;
    throw e;
  }
  throw new Error('expected a CliError');
}

// The spec's example file, verbatim.
const SPEC_EXAMPLE = `# stellaops.yaml
signals:
  enabled: true
  output_directory: /var/lib/stellaops/evidence
  rotation:
    max_size_mb: 100
    max_age_hours: 1
  signing:
    enabled: true
    key_id: fulcio  # or KMS key reference
    submit_to_rekor: true
  filters:
    target_containers: []  # Empty = all containers
    path_allowlist:
      - /etc/**
      - /var/lib/**
    path_denylist:
      - /proc/**
      - /sys/**
`;

describe('loadConfig', () => {
  it('accepts the spec example file exactly as written', () => {
    const cfg = loadConfig({ file: file('spec.yaml', SPEC_EXAMPLE) });
    expect(cfg.get('signing.key_id')).toBe('fulcio');
    expect(cfg.get('signing.submit_to_rekor')).toBe(true);
    expect(cfg.get('filters.path_allowlist')).toEqual(['/etc/**', '/var/lib/**']);
    expect(cfg.settings.get('rotation.max_size_mb')).toMatchObject({
      source: 'file',
      origin: expect.stringMatching(/:6$/),
    });
  });

  it('applies defaults < file < env < flags', () => {
    const f = file(
      'prec.yaml',
      'signals:\n  rotation:\n    max_size_mb: 5\n  dedup:\n    max_entries: 2048\n',
    );
    const cfg = loadConfig({
      file: f,
      env: { STELLA_ROTATION_MAX_SIZE_MB: '7', STELLA_DEDUP_ENABLED: 'false' },
      flags: [{ key: 'rotation.max_size_mb', value: '9', flag: '--set' }],
    });
    expect(cfg.get('rotation.max_size_mb')).toBe(9);
    expect(cfg.settings.get('rotation.max_size_mb')?.source).toBe('flag');
    expect(cfg.get('dedup.enabled')).toBe(false);
    expect(cfg.get('dedup.max_entries')).toBe(2048);
    expect(cfg.get('ring_buffer.size_mb')).toBe(8);
    expect(cfg.settings.get('ring_buffer.size_mb')?.source).toBe('default');
  });

  it('names the file, line and key of a mistyped key, with a suggestion', () => {
    const f = file('typo.yaml', 'signals:\n  rotation:\n    max_size_mb: 5\n    max_age_hour: 2\n');
    const e = failure(() => loadConfig({ file: f }));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message).toBe(
      `${f}:4:5: unknown key 'signals.rotation.max_age_hour' (did you mean 'max_age_hours'?)`,
    );
    expect(e.exitCode).toBe(2);
  });

  it('names the line of a value of the wrong type', () => {
    const f = file('type.yaml', 'signals:\n  ring_buffer:\n    size_mb: 3\n');
    const e = failure(() => loadConfig({ file: f }));
    expect(e.message).toBe(
      `${f}:3:14: signals.ring_buffer.size_mb must be an integer from 1 to 1024, a power of two, got 3`,
    );
  });

  it('reports YAML syntax errors with their position', () => {
    const f = file('syntax.yaml', 'signals:\n  enabled: [true\n');
    const e = failure(() => loadConfig({ file: f }));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message).toMatch(new RegExp(`^${f}:\\d+:\\d+: not valid YAML`));
  });

  it('rejects keys outside signals:', () => {
    const e = failure(() => loadConfig({ file: file('top.yaml', 'signal:\n  enabled: true\n') }));
    expect(e.message).toContain("unknown top-level key 'signal' (did you mean 'signals'?)");
  });

  it('names the environment variable that holds a bad value', () => {
    const e = failure(() => loadConfig({ env: { STELLA_SIGNING_ENABLED: 'yes please' } }));
    expect(e.message).toBe(
      'environment variable STELLA_SIGNING_ENABLED: must be true or false, got "yes please"',
    );
  });

  it('says when the file does not exist', () => {
    const e = failure(() => loadConfig({ file: join(dir, 'absent.yaml') }));
    expect(e.code).toBe('CONFIG_NOT_FOUND');
    expect(e.message).toContain('no such file');
  });

  it('treats an empty file as all defaults', () => {
    const cfg = loadConfig({ file: file('empty.yaml', '') });
    expect([...cfg.settings.values()].every((s) => s.source === 'default')).toBe(true);
  });

  it('gives every key one STELLA_ environment name', () => {
    const names = CONFIG_FIELDS.map((f) => envName(f.key));
    expect(new Set(names).size).toBe(names.length);
    expect(envName('rotation.max_size_mb')).toBe('STELLA_ROTATION_MAX_SIZE_MB');
  });
});
