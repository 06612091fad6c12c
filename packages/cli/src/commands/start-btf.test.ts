import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { canRunBpf } from '@stellaops/testing';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import type { Io } from '../io.js';
import { main } from '../main.js';
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

describe.runIf(canRunBpf('stella signals start with a bad btf_custom_path'))(
  'stella signals start: a btf_custom_path that is not BTF is a config mistake (exit 2)',
  () => {
    const base = mkdtempSync(join(tmpdir(), 'stella-badbtf-'));
    const key = join(base, 'k.pem');
    const kernelBtf = '/sys/kernel/btf/vmlinux';

    async function start(btf: string): Promise<{ code: number; err: string }> {
      const err: string[] = [];
      const io: Io = {
        out: () => {},
        err: (t) => err.push(t),
        env: {},
        isTTY: false,
        defaultConfigPath: join(base, 'none.yaml'),
      };
      if (!existsSync(key))
        expect(await main(['signals', 'keygen', '--out', key], { ...io, err: () => {} })).toBe(0);
      const cfg = join(base, `c-${basename(btf)}.yaml`);
      writeFileSync(
        cfg,
        `signals:\n  btf_custom_path: ${btf}\n  output_directory: ${join(base, 'ev')}\n  signing:\n    key_path: ${key}\n`,
      );
      const code = await main(['signals', 'start', '--config', cfg, '--duration', '3s'], io);
      return { code, err: err.join('') };
    }

    const cases: Array<[string, Buffer, RegExp]> = [
      ['empty', Buffer.alloc(0), /the file is empty/],
      ['random', Buffer.alloc(3000, 0x5a), /not BTF/],
    ];
    if (existsSync(kernelBtf))
      cases.push(['truncated', readFileSync(kernelBtf).subarray(0, 3000), /truncated/]);

    it.each(cases)(
      '%s file: names signals.btf_custom_path, the file and what is wrong, hint once',
      async (name, bytes, what) => {
        const btf = join(base, `${name}.btf`);
        writeFileSync(btf, bytes);
        const r = await start(btf);
        expect(r.code, r.err).toBe(2);
        const line = r.err.split('\n').find((l) => l.startsWith('stella: '));
        expect(line).toContain(`stella: signals.btf_custom_path ${btf}: `);
        expect(line).toMatch(what);
        expect(line).not.toMatch(/bpf_object__load|verifier/);
        expect(r.err).toMatch(/\n {2}hint: .*BTFHub/);
        expect(line).not.toContain('BTFHub');
      },
      60_000,
    );

    it('a missing file names the config key, not the API option, hint once', async () => {
      const btf = join(base, 'missing.btf');
      const r = await start(btf);
      expect(r.code, r.err).toBe(2);
      expect(r.err).toContain(`stella: signals.btf_custom_path ${btf}: no such file\n`);
      expect(r.err).not.toContain('btfCustomPath');
      expect(r.err.match(/BTFHub/g)).toHaveLength(1);
    }, 60_000);
  },
);
