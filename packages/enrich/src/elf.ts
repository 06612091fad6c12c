import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { EnrichError } from './errors.js';

/** A loadable segment (`PT_LOAD`): maps file offsets to virtual addresses. */
export interface ElfSegment {
  readonly offset: number;
  readonly vaddr: number;
  readonly filesz: number;
  readonly memsz: number;
  /** PF_X = 1, PF_W = 2, PF_R = 4. */
  readonly flags: number;
}

/** A function symbol from `.symtab` or `.dynsym`. */
export interface ElfSymbol {
  readonly name: string;
  /** Virtual address (st_value). */
  readonly value: number;
  readonly size: number;
}

/** The parts of an ELF object a symbolizer needs. */
export interface ElfInfo {
  readonly path: string;
  /** `ET_EXEC` (2) is loaded at its link addresses; `ET_DYN` (3, PIE and shared objects) is relocated. */
  readonly type: number;
  readonly machine: number;
  /** GNU build id (hex), from `.note.gnu.build-id` or a `PT_NOTE`. */
  readonly buildId?: string;
  readonly segments: readonly ElfSegment[];
  /** Function symbols, sorted by address, duplicates (same address) merged. */
  readonly symbols: readonly ElfSymbol[];
  /** Where the symbols came from. */
  readonly symbolSource: 'symtab' | 'dynsym' | 'none';
}

const SHT_SYMTAB = 2;
const SHT_NOTE = 7;
const SHT_DYNSYM = 11;
const PT_LOAD = 1;
const PT_NOTE = 4;
const STT_FUNC = 2;
const STT_GNU_IFUNC = 10;
const NT_GNU_BUILD_ID = 3;
/** Upper bound on one symbol/string table read, so a corrupt size cannot exhaust memory. */
const MAX_TABLE = 256 * 1024 * 1024;

class Reader {
  constructor(
    readonly path: string,
    readonly fd: number,
    readonly size: number,
  ) {}

  read(offset: number, length: number, what: string): Buffer {
    if (
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(length) ||
      offset < 0 ||
      length < 0 ||
      offset + length > this.size
    ) {
      throw new EnrichError(
        'ELF_INVALID',
        `${this.path}: ${what} at offset ${offset} length ${length} lies outside the file (${this.size} bytes); the file is truncated or not ELF`,
      );
    }
    if (length > MAX_TABLE)
      throw new EnrichError(
        'ELF_INVALID',
        `${this.path}: ${what} claims ${length} bytes, over the ${MAX_TABLE} limit`,
      );
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, buf, done, length - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    return buf;
  }
}

function u64(b: Buffer, off: number): number {
  const v = b.readBigUInt64LE(off);
  // Userspace addresses and file offsets fit in 53 bits; anything larger is corrupt for our purposes.
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

function parseNotes(b: Buffer): string | undefined {
  let i = 0;
  while (i + 12 <= b.length) {
    const namesz = b.readUInt32LE(i);
    const descsz = b.readUInt32LE(i + 4);
    const type = b.readUInt32LE(i + 8);
    const nameOff = i + 12;
    const descOff = nameOff + ((namesz + 3) & ~3);
    const next = descOff + ((descsz + 3) & ~3);
    if (next > b.length || descOff + descsz > b.length) return undefined;
    const name = b.toString('latin1', nameOff, nameOff + Math.max(0, namesz - 1));
    if (type === NT_GNU_BUILD_ID && name === 'GNU') return b.toString('hex', descOff, descOff + descsz);
    i = next;
  }
  return undefined;
}

function cstr(table: Buffer, off: number): string {
  if (off >= table.length) return '';
  const end = table.indexOf(0, off);
  return table.toString('utf8', off, end < 0 ? table.length : end);
}

/**
 * Read an ELF64 little-endian object's segments, build id and function
 * symbols (`.symtab` when present, else `.dynsym`). Reads only the headers
 * and tables it needs, with positioned reads.
 *
 * @throws EnrichError ELF_INVALID (not ELF, truncated, offsets out of range),
 *   ELF_UNSUPPORTED (32-bit or big-endian), PROC_UNAVAILABLE (cannot open).
 */
export function readElf(path: string): ElfInfo {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new EnrichError('PROC_UNAVAILABLE', `cannot open ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  try {
    const r = new Reader(path, fd, fstatSync(fd).size);
    if (r.size < 64)
      throw new EnrichError('ELF_INVALID', `${path}: ${r.size} bytes is too short for an ELF header`);
    const h = r.read(0, 64, 'ELF header');
    if (h.readUInt32BE(0) !== 0x7f454c46)
      throw new EnrichError('ELF_INVALID', `${path}: no ELF magic (not an ELF file)`);
    if (h[4] !== 2)
      throw new EnrichError('ELF_UNSUPPORTED', `${path}: ELF class ${h[4]} (only 64-bit ELF is supported)`);
    if (h[5] !== 1) throw new EnrichError('ELF_UNSUPPORTED', `${path}: big-endian ELF is not supported`);
    const type = h.readUInt16LE(16);
    const machine = h.readUInt16LE(18);
    const phoff = u64(h, 32);
    const shoff = u64(h, 40);
    const phentsize = h.readUInt16LE(54);
    const phnum = h.readUInt16LE(56);
    const shentsize = h.readUInt16LE(58);
    const shnum = h.readUInt16LE(60);

    const segments: ElfSegment[] = [];
    const noteRanges: [number, number][] = [];
    if (phnum > 0) {
      if (phentsize < 56)
        throw new EnrichError('ELF_INVALID', `${path}: program header size ${phentsize} < 56`);
      const ph = r.read(phoff, phentsize * phnum, 'program headers');
      for (let i = 0; i < phnum; i++) {
        const o = i * phentsize;
        const pType = ph.readUInt32LE(o);
        if (pType === PT_LOAD) {
          segments.push({
            flags: ph.readUInt32LE(o + 4),
            offset: u64(ph, o + 8),
            vaddr: u64(ph, o + 16),
            filesz: u64(ph, o + 32),
            memsz: u64(ph, o + 40),
          });
        } else if (pType === PT_NOTE) noteRanges.push([u64(ph, o + 8), u64(ph, o + 32)]);
      }
    }

    let buildId: string | undefined;
    let symtab: { off: number; size: number; entsize: number; link: number } | undefined;
    let dynsym: typeof symtab;
    const sections: { type: number; off: number; size: number; link: number; entsize: number }[] = [];
    if (shnum > 0 && shoff > 0) {
      if (shentsize < 64)
        throw new EnrichError('ELF_INVALID', `${path}: section header size ${shentsize} < 64`);
      const sh = r.read(shoff, shentsize * shnum, 'section headers');
      for (let i = 0; i < shnum; i++) {
        const o = i * shentsize;
        sections.push({
          type: sh.readUInt32LE(o + 4),
          off: u64(sh, o + 24),
          size: u64(sh, o + 32),
          link: sh.readUInt32LE(o + 40),
          entsize: u64(sh, o + 56),
        });
      }
      for (const s of sections) {
        if (s.type === SHT_SYMTAB) symtab = { off: s.off, size: s.size, entsize: s.entsize, link: s.link };
        else if (s.type === SHT_DYNSYM)
          dynsym = { off: s.off, size: s.size, entsize: s.entsize, link: s.link };
        else if (s.type === SHT_NOTE && buildId === undefined && s.size > 0 && s.size < 65536) {
          buildId = parseNotes(r.read(s.off, s.size, 'note section'));
        }
      }
    }
    for (const [off, size] of noteRanges) {
      if (buildId !== undefined) break;
      if (size > 0 && size < 65536) buildId = parseNotes(r.read(off, size, 'PT_NOTE segment'));
    }

    const table = symtab ?? dynsym;
    let symbols: ElfSymbol[] = [];
    if (table !== undefined) {
      const entsize = table.entsize || 24;
      if (entsize < 24) throw new EnrichError('ELF_INVALID', `${path}: symbol entry size ${entsize} < 24`);
      const strSec = sections[table.link];
      if (strSec === undefined)
        throw new EnrichError('ELF_INVALID', `${path}: symbol table links to missing section ${table.link}`);
      const syms = r.read(table.off, table.size, 'symbol table');
      const strs = r.read(strSec.off, strSec.size, 'string table');
      const n = Math.floor(table.size / entsize);
      for (let i = 0; i < n; i++) {
        const o = i * entsize;
        const kind = syms[o + 4]! & 0xf;
        if (kind !== STT_FUNC && kind !== STT_GNU_IFUNC) continue;
        const shndx = syms.readUInt16LE(o + 6);
        if (shndx === 0) continue; // undefined (imported) symbol
        const value = u64(syms, o + 8);
        if (value === 0) continue;
        symbols.push({ name: cstr(strs, syms.readUInt32LE(o)), value, size: u64(syms, o + 16) });
      }
      symbols.sort((a, b) => a.value - b.value || b.size - a.size);
      // Aliases share an address: keep the first (largest) one.
      symbols = symbols.filter((s, i) => i === 0 || symbols[i - 1]!.value !== s.value);
    }
    return {
      path,
      type,
      machine,
      ...(buildId !== undefined && { buildId }),
      segments,
      symbols,
      symbolSource: symtab ? 'symtab' : dynsym ? 'dynsym' : 'none',
    };
  } finally {
    closeSync(fd);
  }
}

/** File offset → virtual address through the PT_LOAD segments; undefined outside them. */
export function fileOffsetToVaddr(elf: ElfInfo, fileOffset: number): number | undefined {
  for (const s of elf.segments) {
    if (fileOffset >= s.offset && fileOffset < s.offset + Math.max(s.filesz, 1))
      return fileOffset - s.offset + s.vaddr;
  }
  return undefined;
}

/**
 * The function containing `vaddr`: the last symbol at or below it whose
 * size covers it (a size-0 symbol covers up to the next symbol).
 */
export function symbolAt(elf: ElfInfo, vaddr: number): { name: string; offset: number } | undefined {
  const syms = elf.symbols;
  let lo = 0;
  let hi = syms.length - 1;
  let best = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (syms[mid]!.value <= vaddr) {
      best = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  if (best < 0) return undefined;
  const s = syms[best]!;
  const next = syms[best + 1];
  const end = s.size > 0 ? s.value + s.size : next !== undefined ? next.value : s.value + 1;
  if (vaddr >= end) return undefined;
  return { name: s.name, offset: vaddr - s.value };
}
