/**
 * Just enough ELF64 (little-endian) to find exported functions: the dynamic
 * symbol table and the file offsets uprobes attach at. Reads only the
 * headers and the two sections it needs, so a 100 MB static binary costs a
 * few reads.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { ProbesError } from '../errors.js';

/** A file that is not an ELF64 little-endian object this reader understands. */
export class ElfError extends ProbesError {
  readonly path: string;
  constructor(path: string, message: string) {
    super('DECODE', `${path}: ${message}`, {
      hint: 'pass a 64-bit little-endian ELF shared library or executable',
    });
    this.path = path;
  }
}

/** A defined function symbol. */
export interface ElfFunction {
  /** Virtual address (st_value). */
  readonly address: bigint;
  /** Offset in the file: what a uprobe attaches at. */
  readonly fileOffset: number;
  readonly size: number;
}

const SHT_DYNSYM = 11;
const STT_FUNC = 2;
const PT_LOAD = 1;

function readAt(fd: number, pos: number, len: number, path: string): Buffer {
  const b = Buffer.alloc(len);
  const n = readSync(fd, b, 0, len, pos);
  if (n !== len) throw new ElfError(path, `truncated: wanted ${len} bytes at ${pos}, got ${n}`);
  return b;
}

/**
 * Defined, exported function symbols of the .dynsym table, by name, with
 * their uprobe file offsets. `wanted` limits the result (and the work).
 * Throws ElfError for a file that is not ELF64 LE or is truncated.
 */
export function dynamicFunctions(path: string, wanted?: ReadonlySet<string>): Map<string, ElfFunction> {
  const fd = openSync(path, 'r');
  try {
    const steps = parseDynsym(path, fstatSync(fd).size, wanted);
    let step = steps.next();
    while (!step.done) {
      const q = step.value;
      step = steps.next(q === SLICE ? undefined : readAt(fd, q.pos, q.len, path));
    }
    return step.value;
  } finally {
    closeSync(fd);
  }
}

/**
 * {@link dynamicFunctions} without holding the event loop: reads through
 * the thread pool and lets the loop run about every millisecond while it
 * walks the symbols (a static Node.js exports ~100k of them).
 */
export async function dynamicFunctionsAsync(
  path: string,
  wanted?: ReadonlySet<string>,
): Promise<Map<string, ElfFunction>> {
  const fh = await open(path, 'r');
  try {
    const steps = parseDynsym(path, (await fh.stat()).size, wanted);
    let slice = performance.now();
    let step = steps.next();
    while (!step.done) {
      const q = step.value;
      if (q === SLICE) {
        if (performance.now() - slice >= 1) {
          await new Promise<void>((r) => setImmediate(r));
          slice = performance.now();
        }
        step = steps.next(undefined);
        continue;
      }
      const b = Buffer.alloc(q.len);
      const { bytesRead } = await fh.read(b, 0, q.len, q.pos);
      if (bytesRead !== q.len)
        throw new ElfError(path, `truncated: wanted ${q.len} bytes at ${q.pos}, got ${bytesRead}`);
      step = steps.next(b);
    }
    return step.value;
  } finally {
    await fh.close();
  }
}

/** A read the parser needs, or SLICE: a point where a caller may yield. */
type ElfStep = { pos: number; len: number } | typeof SLICE;
const SLICE = Symbol('slice');
/** Symbols walked between two SLICE points. */
const SYMBOLS_PER_SLICE = 2048;

/** The parse of dynamicFunctions, as a generator of reads, so one walk serves the sync and async readers. */
function* parseDynsym(
  path: string,
  size: number,
  wanted: ReadonlySet<string> | undefined,
): Generator<ElfStep, Map<string, ElfFunction>, Buffer | undefined> {
  const need = function* (pos: number, len: number): Generator<ElfStep, Buffer, Buffer | undefined> {
    const b = yield { pos, len };
    if (!b) throw new ElfError(path, `no data read at ${pos}`);
    return b;
  };
  if (size < 64) throw new ElfError(path, 'too short to be ELF');
  const eh = yield* need(0, 64);
  if (eh.readUInt32BE(0) !== 0x7f454c46) throw new ElfError(path, 'no ELF magic');
  if (eh[4] !== 2 || eh[5] !== 1) throw new ElfError(path, 'not ELF64 little-endian');
  const phoff = Number(eh.readBigUInt64LE(32));
  const shoff = Number(eh.readBigUInt64LE(40));
  const phentsize = eh.readUInt16LE(54);
  const phnum = eh.readUInt16LE(56);
  const shentsize = eh.readUInt16LE(58);
  const shnum = eh.readUInt16LE(60);
  if (shoff === 0 || shnum === 0) return new Map();
  if (shoff + shnum * shentsize > size || phoff + phnum * phentsize > size) {
    throw new ElfError(path, 'section or program headers past end of file');
  }
  const ph = yield* need(phoff, phnum * phentsize);
  const loads: Array<{ vaddr: bigint; memsz: bigint; offset: bigint }> = [];
  for (let i = 0; i < phnum; i++) {
    const o = i * phentsize;
    if (ph.readUInt32LE(o) !== PT_LOAD) continue;
    loads.push({
      offset: ph.readBigUInt64LE(o + 8),
      vaddr: ph.readBigUInt64LE(o + 16),
      memsz: ph.readBigUInt64LE(o + 40),
    });
  }
  const sh = yield* need(shoff, shnum * shentsize);
  const wantedNames = wanted && [...wanted].map((name) => ({ name, bytes: Buffer.from(name, 'latin1') }));
  const out = new Map<string, ElfFunction>();
  for (let i = 0; i < shnum; i++) {
    const o = i * shentsize;
    if (sh.readUInt32LE(o + 4) !== SHT_DYNSYM) continue;
    const symOff = Number(sh.readBigUInt64LE(o + 24));
    const symSize = Number(sh.readBigUInt64LE(o + 32));
    const link = sh.readUInt32LE(o + 40);
    const entsize = Number(sh.readBigUInt64LE(o + 56)) || 24;
    if (link >= shnum) throw new ElfError(path, `.dynsym links to section ${link} of ${shnum}`);
    const so = link * shentsize;
    const strOff = Number(sh.readBigUInt64LE(so + 24));
    const strSize = Number(sh.readBigUInt64LE(so + 32));
    if (symOff + symSize > size || strOff + strSize > size)
      throw new ElfError(path, '.dynsym past end of file');
    const syms = yield* need(symOff, symSize);
    const strs = yield* need(strOff, strSize);
    for (let s = 0; s + entsize <= symSize; s += entsize) {
      if ((s / entsize) % SYMBOLS_PER_SLICE === SYMBOLS_PER_SLICE - 1) yield SLICE;
      const info = syms[s + 4] ?? 0;
      const type = info & 0xf;
      const shndx = syms.readUInt16LE(s + 6);
      // IFUNC symbols are resolvers, not the implementation: probing them would be wrong.
      if (type !== STT_FUNC || shndx === 0) continue;
      const nameOff = syms.readUInt32LE(s);
      let name: string | undefined;
      if (wantedNames) {
        // A static binary exports ~100k names: compare bytes in place, build only the wanted strings.
        name = wantedNames.find(
          (w) =>
            strs[nameOff + w.bytes.length] === 0 &&
            strs.compare(w.bytes, 0, w.bytes.length, nameOff, nameOff + w.bytes.length) === 0,
        )?.name;
        if (name === undefined) continue;
      } else {
        const end = strs.indexOf(0, nameOff);
        name = strs.toString('latin1', nameOff, end < 0 ? strSize : end);
      }
      const address = syms.readBigUInt64LE(s + 8);
      const seg = loads.find((l) => address >= l.vaddr && address < l.vaddr + l.memsz);
      if (!seg) continue;
      if (!out.has(name)) {
        out.set(name, {
          address,
          fileOffset: Number(address - seg.vaddr + seg.offset),
          size: Number(syms.readBigUInt64LE(s + 16)),
        });
      }
    }
  }
  return out;
}
