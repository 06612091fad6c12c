import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBtfFile } from './btf-file.js';
import { BpfError } from './errors.js';

const KERNEL_BTF = '/sys/kernel/btf/vmlinux';
const hasKernelBtf = existsSync(KERNEL_BTF);

function refusal(path: string): BpfError {
  try {
    requireBtfFile(path);
  } catch (e) {
    expect(e).toBeInstanceOf(BpfError);
    return e as BpfError;
  }
  throw new Error(`expected ${path} to be refused, it was accepted`);
}

/** A 24-byte little-endian BTF header followed by `types` and `strings`. */
function rawBtf(types: Buffer, strings: Buffer): Buffer {
  const h = Buffer.alloc(24);
  h.writeUInt16LE(0xeb9f, 0);
  h.writeUInt8(1, 2);
  h.writeUInt32LE(24, 4);
  h.writeUInt32LE(0, 8);
  h.writeUInt32LE(types.length, 12);
  h.writeUInt32LE(types.length, 16);
  h.writeUInt32LE(strings.length, 20);
  return Buffer.concat([h, types, strings]);
}

/** A 64-bit little-endian ELF file with a section named `name` holding `body` (as `pahole -J` leaves a vmlinux). */
function elfWith(name: string, body: Buffer): Buffer {
  const names = Buffer.from(`\0.shstrtab\0${name}\0`, 'latin1');
  const namesAt = 64;
  const bodyAt = namesAt + names.length;
  const shoff = bodyAt + body.length;
  const eh = Buffer.alloc(64);
  eh.writeUInt32BE(0x7f454c46, 0);
  eh[4] = 2; // ELFCLASS64
  eh[5] = 1; // ELFDATA2LSB
  eh[6] = 1;
  eh.writeBigUInt64LE(BigInt(shoff), 0x28);
  eh.writeUInt16LE(64, 0x3a);
  eh.writeUInt16LE(3, 0x3c);
  eh.writeUInt16LE(1, 0x3e);
  const sh = Buffer.alloc(3 * 64);
  const section = (i: number, nameAt: number, offset: number, size: number) => {
    sh.writeUInt32LE(nameAt, i * 64);
    sh.writeBigUInt64LE(BigInt(offset), i * 64 + 0x18);
    sh.writeBigUInt64LE(BigInt(size), i * 64 + 0x20);
  };
  section(1, 1, namesAt, names.length);
  section(2, 11, bodyAt, body.length);
  return Buffer.concat([eh, names, body, sh]);
}

describe('btfCustomPath is checked before libbpf sees it', () => {
  let dir: string;
  const file = (name: string, bytes: Buffer) => {
    const p = join(dir, name);
    writeFileSync(p, bytes);
    return p;
  };
  const sound = rawBtf(Buffer.alloc(16, 1), Buffer.from('\0int\0', 'latin1'));

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'stella-btf-check-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('an empty file is BTF_INVALID, naming the file, and the hint says where BTF for this kernel comes from', () => {
    const p = file('empty.btf', Buffer.alloc(0));
    const e = refusal(p);
    expect(e.code).toBe('BTF_INVALID');
    expect(e.operation).toBe('btf_custom_path');
    expect(e.message).toMatch(new RegExp(`^btfCustomPath ${p}: the file is empty`));
    expect(e.hint).toMatch(/BTFHub/);
    expect(e.hint).toMatch(/pahole --btf_encode_detached/);
  });

  it('random bytes are BTF_INVALID: not BTF, with the magic found', () => {
    const bytes = Buffer.alloc(3000, 0x5a);
    const e = refusal(file('random.btf', bytes));
    expect(e.code).toBe('BTF_INVALID');
    expect(e.message).toContain('not BTF (magic 0x5a5a');
  });

  it('BTF in the other byte order, or of another version, is refused', () => {
    const swapped = Buffer.from(sound);
    swapped.writeUInt16BE(0xeb9f, 0);
    expect(refusal(file('be.btf', swapped)).message).toContain('other byte order');
    const v2 = Buffer.from(sound);
    v2.writeUInt8(2, 2);
    expect(refusal(file('v2.btf', v2)).message).toContain('BTF version 2');
  });

  it('a header whose sections are empty or run past the end is refused', () => {
    const noStrings = rawBtf(Buffer.alloc(16, 1), Buffer.alloc(0));
    expect(refusal(file('nostr.btf', noStrings)).message).toContain('string section is empty');
    const shortHdr = Buffer.from(sound);
    shortHdr.writeUInt32LE(12, 4);
    expect(refusal(file('hdr.btf', shortHdr)).message).toContain('header length 12');
  });

  it.runIf(hasKernelBtf)('the first 3000 bytes of the kernel BTF are refused as truncated', () => {
    const p = join(dir, 'truncated.btf');
    writeFileSync(p, readFileSync(KERNEL_BTF).subarray(0, 3000));
    const e = refusal(p);
    expect(e.code).toBe('BTF_INVALID');
    expect(e.message).toMatch(/section ends at byte \d+, past the end of the file \(3000 bytes\): truncated/);
  });

  it.runIf(hasKernelBtf)('a full copy of the kernel BTF is accepted', () => {
    const p = join(dir, 'vmlinux.btf');
    copyFileSync(KERNEL_BTF, p);
    expect(() => requireBtfFile(p)).not.toThrow();
  });

  it('a sound raw BTF file, and an ELF file with a sound .BTF section, are accepted', () => {
    expect(() => requireBtfFile(file('sound.btf', sound))).not.toThrow();
    expect(() => requireBtfFile(file('vmlinux.elf', elfWith('.BTF', sound)))).not.toThrow();
  });

  it('an ELF file without .BTF, or with a truncated one, is BTF_INVALID', () => {
    const noBtf = refusal(file('nobtf.elf', elfWith('.text', sound)));
    expect(noBtf.code).toBe('BTF_INVALID');
    expect(noBtf.message).toContain('an ELF file without a .BTF section');
    const cut = refusal(file('cut.elf', elfWith('.BTF', sound.subarray(0, 30))));
    expect(cut.message).toContain('its .BTF section:');
  });

  it('a missing file or a directory is OPEN, naming the file', () => {
    const missing = refusal(join(dir, 'nope.btf'));
    expect(missing.code).toBe('OPEN');
    expect(missing.operation).toBe('btf_custom_path');
    expect(missing.message).toContain(`${join(dir, 'nope.btf')}: no such file`);
    expect(refusal('nope.btf').message).toContain(
      `nope.btf: no such file (a relative path, from ${process.cwd()})`,
    );
    const sub = join(dir, 'sub');
    mkdirSync(sub);
    expect(refusal(sub).message).toContain(`${sub}: not a regular file`);
  });
});
