import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { collectOptions } from './start.js';

describe('btf_custom_path: external kernel BTF', () => {
  it('unset: collect() relocates against the kernel BTF (no btfCustomPath)', () => {
    expect(collectOptions(loadConfig({})).btfCustomPath).toBeUndefined();
  });

  it('from the file, the environment or --set, it reaches collect() as btfCustomPath', () => {
    const dir = mkdtempSync(join(tmpdir(), 'stella-btf-'));
    const file = join(dir, 'stellaops.yaml');
    writeFileSync(file, 'signals:\n  btf_custom_path: /var/lib/btf/5.4.0-42-generic.btf\n');
    expect(collectOptions(loadConfig({ file })).btfCustomPath).toBe('/var/lib/btf/5.4.0-42-generic.btf');
    const env = loadConfig({ file, env: { STELLA_BTF_CUSTOM_PATH: '/srv/k.btf' } });
    expect(collectOptions(env).btfCustomPath).toBe('/srv/k.btf');
    const flag = loadConfig({ file, flags: [{ key: 'btf_custom_path', value: '/x.btf', flag: '--set' }] });
    expect(collectOptions(flag).btfCustomPath).toBe('/x.btf');
  });
});
