import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { CliError } from '../errors.js';
import { collectOptions } from './start.js';

describe('stacks.* keys: user stacks per probe family', () => {
  it('default: connect/accept stacks on, TLS stacks off', () => {
    expect(collectOptions(loadConfig({})).userStacks).toEqual({ libc_net: true, tls: false });
  });

  it('file < env < --set, each family on its own', () => {
    const dir = mkdtempSync(join(tmpdir(), 'stella-stacks-'));
    const file = join(dir, 'stellaops.yaml');
    writeFileSync(file, 'signals:\n  stacks:\n    tls: true\n    libc_net: true\n');
    expect(collectOptions(loadConfig({ file })).userStacks).toEqual({ libc_net: true, tls: true });
    const cfg = loadConfig({
      file,
      env: { STELLA_STACKS_LIBC_NET: 'false' },
      flags: [{ key: 'stacks.tls', value: 'false', flag: '--set' }],
    });
    expect(collectOptions(cfg).userStacks).toEqual({ libc_net: false, tls: false });
    expect(cfg.settings.get('stacks.libc_net')?.origin).toBe('STELLA_STACKS_LIBC_NET');
  });

  it('refuses a value that is not a boolean, naming the key', () => {
    let err: unknown;
    try {
      loadConfig({ flags: [{ key: 'stacks.tls', value: 'sometimes', flag: '--set' }] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).message).toContain('stacks.tls');
  });
});
