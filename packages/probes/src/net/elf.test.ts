import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dynamicFunctions, dynamicFunctionsAsync, ElfError } from './elf.js';

const libc = '/lib/x86_64-linux-gnu/libc.so.6';

/** File offset of a symbol as binutils computes it: value - PT_LOAD vaddr + offset. */
function readelfOffset(file: string, symbol: string): number {
  const syms = execFileSync('readelf', ['--dyn-syms', '-W', file], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  const re = new RegExp(` ${symbol}(@@?\\S+)?$`);
  const line = syms.split('\n').find((l) => re.test(l.trim()) && l.includes('FUNC'));
  if (!line) throw new Error(`${symbol} not in ${file}`);
  const value = BigInt(`0x${line.trim().split(/\s+/)[1]}`);
  const ph = execFileSync('readelf', ['-l', '-W', file], { encoding: 'utf8' });
  for (const l of ph.split('\n')) {
    const f = l.trim().split(/\s+/);
    if (f[0] !== 'LOAD') continue;
    const off = BigInt(f[1] ?? '0');
    const vaddr = BigInt(f[2] ?? '0');
    const memsz = BigInt(f[5] ?? '0');
    if (value >= vaddr && value < vaddr + memsz) return Number(value - vaddr + off);
  }
  throw new Error('no segment');
}

describe('dynamicFunctions', () => {
  it.runIf(process.arch === 'x64')('finds libc connect/accept4 at the offsets readelf gives', () => {
    const f = dynamicFunctions(libc, new Set(['connect', 'accept', 'accept4', 'no_such_fn']));
    expect([...f.keys()].sort()).toEqual(['accept', 'accept4', 'connect']);
    expect(f.get('connect')?.fileOffset).toBe(readelfOffset(libc, 'connect'));
    expect(f.get('accept4')?.fileOffset).toBe(readelfOffset(libc, 'accept4'));
  });
  it('finds SSL_read in the Node binary that links OpenSSL statically', () => {
    const node = process.execPath;
    const f = dynamicFunctions(node, new Set(['SSL_read', 'SSL_write', 'SSL_ctrl']));
    expect(f.size).toBe(3);
    expect(f.get('SSL_read')?.fileOffset).toBe(readelfOffset(node, 'SSL_read'));
  });
  it('the async reader finds the same functions at the same offsets, all of them when none is named', async () => {
    for (const [file, wanted] of [
      [libc, new Set(['connect', 'accept4', 'no_such_fn'])],
      [process.execPath, new Set(['SSL_read', 'SSL_write', 'SSL_do_handshake'])],
      [libc, undefined],
    ] as const) {
      const a = await dynamicFunctionsAsync(file, wanted);
      expect(a.size).toBeGreaterThan(wanted ? 1 : 1000);
      expect(a).toEqual(dynamicFunctions(file, wanted));
    }
    const p = join(tmpdir(), `not-elf-async-${process.pid}`);
    writeFileSync(p, 'x'.repeat(100));
    await expect(dynamicFunctionsAsync(p)).rejects.toThrow(/no ELF magic/);
  });
  it('throws ElfError for a file that is not ELF', () => {
    const p = join(tmpdir(), `not-elf-${process.pid}`);
    writeFileSync(p, 'x'.repeat(100));
    expect(() => dynamicFunctions(p)).toThrow(ElfError);
    expect(() => dynamicFunctions(p)).toThrow(/no ELF magic/);
  });
});
