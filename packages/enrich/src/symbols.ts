import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { type ElfInfo, fileOffsetToVaddr, readElf, symbolAt } from './elf.js';
import { EnrichError } from './errors.js';
import { LruCache } from './lru.js';

/** Segment flag "executable" (elf.h). */
const PF_X = 1;
const EM_X86_64 = 62;
const EM_AARCH64 = 183;

/**
 * Whether the instruction that ends right before a return address is a
 * call, from the up to 8 bytes that precede it in the file (`before`, the
 * last byte is the one just before the address). x86-64: `call rel32`
 * (E8) and `call r/m64` (FF /2, with its ModRM, SIB and displacement
 * lengths); arm64: `BL`, `BLR` and the pointer-authenticated `BLRA*`.
 * undefined for other machines, or when too few bytes were read.
 */
export function followsCall(machine: number, before: Uint8Array): boolean | undefined {
  const n = before.length;
  if (machine === EM_AARCH64) {
    if (n < 4) return undefined;
    const i =
      (before[n - 4]! | (before[n - 3]! << 8) | (before[n - 2]! << 16) | (before[n - 1]! << 24)) >>> 0;
    return (
      (i & 0xfc000000) >>> 0 === 0x94000000 || // BL imm26
      (i & 0xfffffc1f) >>> 0 === 0xd63f0000 || // BLR Xn
      (i & 0xfefff800) >>> 0 === 0xd63f0800 // BLRAA, BLRAB, BLRAAZ, BLRABZ
    );
  }
  if (machine !== EM_X86_64) return undefined;
  if (n >= 5 && before[n - 5] === 0xe8) return true;
  // FF /2 ending exactly at the return address: try each start.
  for (let len = 2; len <= 7 && len <= n; len++) {
    if (before[n - len] !== 0xff) continue;
    const modrm = before[n - len + 1]!;
    if (((modrm >> 3) & 7) !== 2) continue;
    const mod = modrm >> 6;
    const rm = modrm & 7;
    let size = 2;
    if (mod !== 3 && rm === 4) {
      size += 1; // SIB
      if (mod === 0 && len >= 3 && (before[n - len + 2]! & 7) === 5) size += 4; // SIB base without register: disp32
    }
    if (mod === 0 && rm === 5) size += 4; // RIP-relative disp32
    if (mod === 1) size += 1;
    if (mod === 2) size += 4;
    if (size === len) return true;
  }
  return false;
}

/** One symbolized user stack frame. */
export interface StackFrame {
  /** The runtime address as captured. */
  readonly address: bigint;
  /** Mapped file, as `/proc/<pid>/maps` names it (the path inside the process's mount namespace). */
  readonly module?: string;
  /**
   * Link-time (ELF virtual) address of the frame in `module`: what
   * `addr2line -e <module>` takes, stable across ASLR. When the file
   * could not be read, the file offset instead (`offsetKind: 'file'`).
   */
  readonly offset?: bigint;
  readonly offsetKind?: 'vaddr' | 'file';
  /**
   * File offset of the address in `module` (address - mapping start +
   * mapping offset): what the evidence schema calls a frame's `offset`.
   */
  readonly fileOffset?: bigint;
  /**
   * Whether the instruction just before the address is a call (what a
   * return address follows); undefined when the file could not be read or
   * its machine is not x86-64 or arm64. The innermost frame of a stack is
   * the interrupted instruction itself, not a return address.
   */
  readonly afterCall?: boolean;
  /**
   * Present when a mapping holds the address: true only when it is a
   * file mapping the process may execute (`x` in `/proc/<pid>/maps`) and,
   * when the file could be read, the offset lies in an executable (`PF_X`)
   * segment of it. A stack word that is not executable code of a file
   * cannot be a return address (a frame-pointer walk through code built
   * without frame pointers reads data words: pointers, and plaintext).
   */
  readonly executable?: boolean;
  /** Function name, when a symbol table covers the address. */
  readonly symbol?: string;
  /** Bytes from the start of `symbol`. */
  readonly symbolOffset?: number;
  /** GNU build id of `module` (hex). */
  readonly buildId?: string;
}

/** One line of `/proc/<pid>/maps`. */
export interface Mapping {
  readonly start: bigint;
  readonly end: bigint;
  readonly perms: string;
  readonly offset: bigint;
  /** `major:minor` in hex, as the kernel prints it. */
  readonly dev: string;
  readonly inode: bigint;
  readonly path: string;
}

/** Parse `/proc/<pid>/maps` text (proc(5)). */
export function parseMaps(text: string): Mapping[] {
  const out: Mapping[] = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) ([0-9a-f]+:[0-9a-f]+) (\d+)\s*(.*)$/.exec(line);
    if (!m) continue;
    out.push({
      start: BigInt(`0x${m[1]}`),
      end: BigInt(`0x${m[2]}`),
      perms: m[3]!,
      offset: BigInt(`0x${m[4]}`),
      dev: m[5]!,
      inode: BigInt(m[6]!),
      path: m[7] ?? '',
    });
  }
  return out;
}

/** Options of {@link SymbolResolver}. */
export interface SymbolResolverOptions {
  /** procfs mount; default `/proc`. */
  readonly procRoot?: string;
  /** ELF files kept parsed at most; default 256. */
  readonly maxModules?: number;
  /** Frames symbolized per call at most (the capture depth bound); default 64. */
  readonly maxDepth?: number;
}

/** Counters of a {@link SymbolResolver}. */
export interface SymbolResolverStats {
  modules: number;
  moduleHits: number;
  moduleLoads: number;
  moduleFailures: number;
}

/**
 * Symbolizes user stack addresses of a live process through
 * `/proc/<pid>/maps` and the mapped files' ELF `.symtab` (else `.dynsym`)
 * with this package's ELF reader. Files are read through
 * `/proc/<pid>/map_files/` (works for container files and deleted files;
 * needs CAP_SYS_ADMIN), else `/proc/<pid>/root/<path>`. Parsed files are
 * cached by (device, inode) and carry their build id. Frames that no symbol
 * covers keep module and offset.
 */
export class SymbolResolver {
  readonly #proc: string;
  readonly #maxDepth: number;
  readonly #modules: LruCache<string, ElfInfo | null>;
  /** followsCall results by (device, inode, file offset). */
  readonly #calls = new LruCache<string, boolean | null>(16_384);
  readonly stats: SymbolResolverStats = { modules: 0, moduleHits: 0, moduleLoads: 0, moduleFailures: 0 };

  constructor(options: SymbolResolverOptions = {}) {
    const { maxModules = 256, maxDepth = 64 } = options;
    if (!Number.isInteger(maxDepth) || maxDepth < 1) {
      throw new EnrichError(
        'INVALID_OPTION',
        `SymbolResolver maxDepth must be an integer >= 1, got ${String(maxDepth)}`,
      );
    }
    if (!Number.isInteger(maxModules) || maxModules < 1) {
      throw new EnrichError(
        'INVALID_OPTION',
        `SymbolResolver maxModules must be an integer >= 1, got ${String(maxModules)}`,
      );
    }
    this.#proc = options.procRoot ?? '/proc';
    this.#maxDepth = maxDepth;
    this.#modules = new LruCache(maxModules);
  }

  /**
   * Symbolize `addresses` (innermost first) for process `pid`; at most
   * `maxDepth` frames come back, in the same order.
   *
   * @throws EnrichError PROC_UNAVAILABLE when the process's maps cannot be read (exited, or not root).
   */
  resolve(pid: number, addresses: readonly bigint[]): StackFrame[] {
    if (!Number.isInteger(pid) || pid <= 0) {
      throw new EnrichError(
        'INVALID_OPTION',
        `SymbolResolver.resolve: pid must be a positive integer, got ${String(pid)}`,
      );
    }
    let maps: Mapping[];
    try {
      maps = parseMaps(readFileSync(`${this.#proc}/${pid}/maps`, 'utf8'));
    } catch (err) {
      throw new EnrichError(
        'PROC_UNAVAILABLE',
        `cannot read ${this.#proc}/${pid}/maps: ${(err as Error).message} (process exited?)`,
        {
          cause: err,
        },
      );
    }
    return addresses.slice(0, this.#maxDepth).map((a) => this.#frame(pid, maps, a));
  }

  #frame(pid: number, maps: readonly Mapping[], address: bigint): StackFrame {
    let lo = 0;
    let hi = maps.length - 1;
    let m: Mapping | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const x = maps[mid]!;
      if (address < x.start) hi = mid - 1;
      else if (address >= x.end) lo = mid + 1;
      else {
        m = x;
        break;
      }
    }
    if (m === undefined) return { address };
    if (m.inode === 0n || !m.path.startsWith('/')) {
      return m.path === '' ? { address, executable: false } : { address, module: m.path, executable: false };
    }
    const fileOffset = address - m.start + m.offset;
    const mappedX = m.perms[2] === 'x';
    const elf = this.#module(pid, m);
    if (elf === undefined) {
      return {
        address,
        module: m.path,
        offset: fileOffset,
        offsetKind: 'file',
        fileOffset,
        executable: mappedX,
      };
    }
    const at = Number(fileOffset);
    const inCode = elf.segments.some(
      (s) => (s.flags & PF_X) !== 0 && at >= s.offset && at < s.offset + s.filesz,
    );
    const vaddr = fileOffsetToVaddr(elf, at);
    const afterCall = inCode ? this.#afterCall(pid, m, elf, fileOffset) : undefined;
    const base = {
      address,
      module: m.path,
      ...(elf.buildId !== undefined && { buildId: elf.buildId }),
      fileOffset,
      executable: mappedX && inCode,
      ...(afterCall !== undefined && { afterCall }),
    };
    if (vaddr === undefined) return { ...base, offset: fileOffset, offsetKind: 'file' };
    const sym = symbolAt(elf, vaddr);
    return {
      ...base,
      offset: BigInt(vaddr),
      offsetKind: 'vaddr',
      ...(sym !== undefined && { symbol: sym.name, symbolOffset: sym.offset }),
    };
  }

  /** {@link followsCall} for the bytes before `fileOffset` in the mapped file (cached per file and offset). */
  #afterCall(pid: number, m: Mapping, elf: ElfInfo, fileOffset: bigint): boolean | undefined {
    const key = `${m.dev}:${m.inode}:${fileOffset}`;
    const cached = this.#calls.get(key);
    if (cached !== undefined) return cached ?? undefined;
    const want = fileOffset < 8n ? Number(fileOffset) : 8;
    const buf = Buffer.alloc(want);
    let got = -1;
    for (const file of this.#candidates(pid, m)) {
      try {
        const fd = openSync(file, 'r');
        try {
          got = readSync(fd, buf, 0, want, Number(fileOffset) - want);
        } finally {
          closeSync(fd);
        }
        break;
      } catch {}
    }
    const r = got === want ? followsCall(elf.machine, buf) : undefined;
    this.#calls.set(key, r ?? null);
    return r;
  }

  #candidates(pid: number, m: Mapping): string[] {
    const hex = (v: bigint) => v.toString(16);
    return [
      `${this.#proc}/${pid}/map_files/${hex(m.start)}-${hex(m.end)}`,
      `${this.#proc}/${pid}/root${m.path}`,
    ];
  }

  #module(pid: number, m: Mapping): ElfInfo | undefined {
    const key = `${m.dev}:${m.inode}`;
    const cached = this.#modules.get(key);
    if (cached !== undefined) {
      this.stats.moduleHits++;
      return cached ?? undefined;
    }
    for (const file of this.#candidates(pid, m)) {
      try {
        const elf = readElf(file);
        this.stats.moduleLoads++;
        this.#modules.set(key, elf);
        this.stats.modules = this.#modules.size;
        return elf;
      } catch (err) {
        if (err instanceof EnrichError && (err.code === 'ELF_INVALID' || err.code === 'ELF_UNSUPPORTED'))
          break;
      }
    }
    this.stats.moduleFailures++;
    this.#modules.set(key, null);
    return undefined;
  }
}
