import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type ElfInfo, fileOffsetToVaddr, readElf, symbolAt } from './elf.js';

const dir = mkdtempSync(join(tmpdir(), 'stella-elf-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, bytes: Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

function header(cls: number, data: number): Buffer {
  const h = Buffer.alloc(64);
  h.writeUInt32BE(0x7f454c46, 0);
  h[4] = cls;
  h[5] = data;
  h[6] = 1;
  return h;
}

describe('readElf on malformed and unsupported input', () => {
  it('rejects 32-bit and big-endian ELF as ELF_UNSUPPORTED', () => {
    expect(() => readElf(file('elf32', header(1, 1)))).toThrow(
      expect.objectContaining({ code: 'ELF_UNSUPPORTED' }),
    );
    expect(() => readElf(file('elfbe', header(2, 2)))).toThrow(
      expect.objectContaining({ code: 'ELF_UNSUPPORTED' }),
    );
  });

  it('rejects section headers that point past the end of the file', () => {
    const h = header(2, 1);
    h.writeBigUInt64LE(4096n, 40); // e_shoff beyond the 64-byte file
    h.writeUInt16LE(64, 58);
    h.writeUInt16LE(3, 60);
    expect(() => readElf(file('shoff', h))).toThrow(
      expect.objectContaining({ code: 'ELF_INVALID', message: expect.stringContaining('section headers') }),
    );
  });

  it('rejects a short file and a missing file with distinct codes', () => {
    expect(() => readElf(file('short', Buffer.from([0x7f, 0x45])))).toThrow(
      expect.objectContaining({ code: 'ELF_INVALID' }),
    );
    expect(() => readElf(join(dir, 'absent'))).toThrow(expect.objectContaining({ code: 'PROC_UNAVAILABLE' }));
  });
});

describe('address arithmetic', () => {
  const elf: ElfInfo = {
    path: '/x',
    type: 3,
    machine: 62,
    segments: [
      { offset: 0, vaddr: 0, filesz: 0x1000, memsz: 0x1000, flags: 4 },
      { offset: 0x1000, vaddr: 0x401000, filesz: 0x2000, memsz: 0x2000, flags: 5 },
    ],
    symbols: [
      { name: 'a', value: 0x401000, size: 0x10 },
      { name: 'b', value: 0x401100, size: 0 },
      { name: 'c', value: 0x401200, size: 0x20 },
    ],
    symbolSource: 'symtab',
  };

  it('maps file offsets through PT_LOAD segments', () => {
    expect(fileOffsetToVaddr(elf, 0x1010)).toBe(0x401010);
    expect(fileOffsetToVaddr(elf, 0x5000)).toBeUndefined();
  });

  it('finds the covering symbol; a gap after a sized symbol has none; size 0 covers to the next', () => {
    expect(symbolAt(elf, 0x401004)).toEqual({ name: 'a', offset: 4 });
    expect(symbolAt(elf, 0x401050)).toBeUndefined();
    expect(symbolAt(elf, 0x4011f0)).toEqual({ name: 'b', offset: 0xf0 });
    expect(symbolAt(elf, 0x40121f)).toEqual({ name: 'c', offset: 0x1f });
    expect(symbolAt(elf, 0x401220)).toBeUndefined();
    expect(symbolAt(elf, 0x400000)).toBeUndefined();
  });
});
