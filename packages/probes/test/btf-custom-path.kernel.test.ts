import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BpfError } from '@stellaops/bpf-loader';
import type { FileOpenEvent, ProbeEvent } from '@stellaops/probes';
import { openProbeSet } from '@stellaops/probes';
import { canRunBpf, gate, scaled } from '@stellaops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Collector } from './helpers/harness.js';

// External kernel BTF (libbpf's btf_custom_path), as on kernels built without
// CONFIG_DEBUG_INFO_BTF: the probes' CO-RE relocations are resolved against a
// file. Here that file is a copy of this kernel's own BTF, so the records must
// be exactly those of a normal load; a file that is not BTF must fail the load,
// which shows the file is what libbpf relocated against.

const KERNEL_BTF = '/sys/kernel/btf/vmlinux';
const runs =
  canRunBpf('btfCustomPath kernel tests') &&
  gate('btfCustomPath kernel tests', existsSync(KERNEL_BTF) ? undefined : `no ${KERNEL_BTF} to copy`);

function loadError(fn: () => unknown): BpfError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(BpfError);
    return e as BpfError;
  }
  throw new Error('expected a BpfError, nothing was thrown');
}

describe.runIf(runs)('probes with an external kernel BTF file (btfCustomPath)', () => {
  let dir: string;
  let btf: string;

  beforeAll(() => {
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'stella-btf-')));
    btf = join(dir, 'vmlinux.btf');
    copyFileSync(KERNEL_BTF, btf);
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('loads against a copy of the kernel BTF and records an open with its path', async () => {
    const target = join(dir, 'target.txt');
    writeFileSync(target, 'x');
    const col = new Collector(
      openProbeSet({ probes: ['file_open', 'exec', 'exit'], btfCustomPath: btf, dedup: { enabled: false } }),
    );
    try {
      for (const s of col.set.status) expect(s).toMatchObject({ attached: true });
      const r = spawnSync('cat', [target], { encoding: 'utf8' });
      expect(r.stdout).toBe('x');
      const pid = r.pid ?? -1;
      const m = await col.waitFor(
        (e: ProbeEvent): e is FileOpenEvent => e.kind === 'file_open' && e.pid === pid,
        (x) => x.some((e) => e.path.toString() === target),
        scaled(10_000),
      );
      expect(m.find((e) => e.path.toString() === target)).toMatchObject({
        ppid: process.pid,
        truncated: false,
      });
    } finally {
      await col.close();
    }
  });

  it('a file that is not BTF is refused at open (BTF_INVALID), naming it', () => {
    const junk = join(dir, 'junk.btf');
    writeFileSync(junk, Buffer.alloc(4096, 0x5a));
    const e = loadError(() => openProbeSet({ probes: ['file_open'], btfCustomPath: junk }));
    expect(e.code).toBe('BTF_INVALID');
    expect(e.message).toContain(junk);
  });

  it('BTF with a sound header but junk types fails the load (LOAD), so the file is what libbpf relocates against', () => {
    const junk = join(dir, 'junk-types.btf');
    const h = Buffer.alloc(24);
    h.writeUInt16LE(0xeb9f, 0);
    h.writeUInt8(1, 2);
    h.writeUInt32LE(24, 4);
    h.writeUInt32LE(4096, 12); // type_off 0, type_len 4096
    h.writeUInt32LE(4096, 16); // str_off 4096
    h.writeUInt32LE(16, 20); // str_len 16
    writeFileSync(junk, Buffer.concat([h, Buffer.alloc(4096 + 16, 0x5a)]));
    const e = loadError(() => openProbeSet({ probes: ['file_open'], btfCustomPath: junk }));
    expect(e.code).toBe('LOAD');
  });

  it('a missing file is refused at open, naming it and where BTF files come from', () => {
    const missing = join(dir, 'nope.btf');
    const e = loadError(() => openProbeSet({ probes: ['file_open'], btfCustomPath: missing }));
    expect(e.code).toBe('OPEN');
    expect(e.message).toContain(missing);
    expect(e.hint).toMatch(/BTFHub/);
  });
});
