/**
 * Finds the libc and OpenSSL files processes actually map, on the host and
 * inside containers (whose files are reachable at /proc/<pid>/root/<path>),
 * and executables that carry OpenSSL statically and export SSL_* (Node.js).
 * One target per distinct file, keyed by device and inode, so each file is
 * probed once however many processes map it.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename } from 'node:path';
import { performance } from 'node:perf_hooks';
import { dynamicFunctions, dynamicFunctionsAsync } from './elf.js';

/** What a target file provides. */
export type LibraryKind = 'libc' | 'libssl' | 'ssl-static';

/** A file to attach uprobes to. */
export interface LibraryTarget {
  readonly kind: LibraryKind;
  /** `<dev>:<inode>` as /proc/<pid>/maps shows them (or from stat for executables). */
  readonly key: string;
  /** Path that opens this very file from this process's mount namespace. */
  readonly path: string;
  /** Path as the mapping process sees it. */
  readonly mappedPath: string;
  /** A process that mapped it when found. */
  readonly pid: number;
}

/** One file-backed mapping of /proc/<pid>/maps. */
export interface MapsEntry {
  readonly dev: string;
  readonly inode: string;
  readonly path: string;
}

/**
 * File-backed mappings of a /proc/<pid>/maps text (each file once). Paths
 * the kernel marks " (deleted)" are skipped: the file is gone from the tree.
 */
export function parseMaps(text: string): MapsEntry[] {
  const out = new Map<string, MapsEntry>();
  for (const line of text.split('\n')) {
    // addr perms offset dev inode path
    const m = /^\S+\s+\S+\s+\S+\s+([0-9a-f]+:[0-9a-f]+)\s+(\d+)\s+(\/.*)$/.exec(line);
    if (!m?.[1] || !m[2] || !m[3] || m[2] === '0') continue;
    if (m[3].endsWith(' (deleted)')) continue;
    const key = `${m[1]}:${m[2]}`;
    if (!out.has(key)) out.set(key, { dev: m[1], inode: m[2], path: m[3] });
  }
  return [...out.values()];
}

/** Which library a mapped path is, by its file name; undefined for anything else. */
export function classifyLibrary(path: string): 'libc' | 'libssl' | undefined {
  const name = basename(path);
  if (name === 'libc.so.6' || /^libc-2\.\d+\.so$/.test(name)) return 'libc';
  if (name === 'libssl.so.3' || name === 'libssl.so.1.1') return 'libssl';
  return undefined;
}

/** SSL symbols an executable must export to be treated as statically linked OpenSSL. */
export const STATIC_SSL_REQUIRED: ReadonlySet<string> = new Set(['SSL_read', 'SSL_write']);

/** Options of {@link LibraryScanner}. */
export interface ScannerOptions {
  /** procfs mount (default '/proc'). */
  procRoot?: string;
  /** Look for executables exporting SSL_read/SSL_write (default true). */
  staticSsl?: boolean;
}

/** Options of {@link LibraryScanner.scanAsync}. */
export interface AsyncScanOptions {
  /**
   * Longest stretch of synchronous work, in ms, before the scan lets the
   * event loop run (default 1). One process is never split, so a stall is at
   * most this plus one process's maps.
   */
  sliceMs?: number;
  /**
   * Scan processes even when their start time and virtual size are what the
   * last scan saw (default false; true for pids named on purpose, such as
   * exec hints).
   */
  force?: boolean;
  /** Stops the scan between two processes (it then returns what it found so far). */
  signal?: AbortSignal;
}

/** Lets the event loop run timers and I/O callbacks before the scan goes on. */
const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Scans processes for probe targets; remembers negative results per executable. */
export class LibraryScanner {
  readonly #proc: string;
  readonly #staticSsl: boolean;
  readonly #exeVerdict = new Map<string, boolean>();
  readonly #ownMntNs: string | undefined;
  /** Per pid: start time and virtual size at its last scan (see {@link LibraryScanner.scanAsync}). */
  readonly #lastSeen = new Map<number, string>();

  constructor(opts: ScannerOptions = {}) {
    this.#proc = opts.procRoot ?? '/proc';
    this.#staticSsl = opts.staticSsl ?? true;
    this.#ownMntNs = readLink(`${this.#proc}/self/ns/mnt`);
  }

  /** Targets of the given processes (default: every process), one per file. */
  scan(pids?: readonly number[]): LibraryTarget[] {
    const found = new Map<string, LibraryTarget>();
    const list = pids ?? listPids(this.#proc);
    for (const pid of list) {
      for (const t of this.scanPid(pid)) if (!found.has(t.key)) found.set(t.key, t);
    }
    return [...found.values()];
  }

  /**
   * Like {@link LibraryScanner.scan}, without holding the event loop: the
   * process list is read asynchronously and the scan yields (setImmediate)
   * whenever its synchronous work since the last yield passed `sliceMs`.
   * Incremental: a process whose start time and virtual size (fields 22 and
   * 23 of /proc/<pid>/stat, one small read) are unchanged since it was last
   * scanned is skipped, because mapping a library (exec, dlopen) grows the
   * address space; `force` scans every listed process anyway. Never throws
   * for a process that exits mid-scan.
   */
  async scanAsync(pids?: readonly number[], opts: AsyncScanOptions = {}): Promise<LibraryTarget[]> {
    const sliceMs = opts.sliceMs ?? 1;
    const found = new Map<string, LibraryTarget>();
    const list = pids ?? (await listPidsAsync(this.#proc));
    if (!pids) {
      // Forget exited processes, so the memo stays as big as the process table.
      const alive = new Set(list);
      for (const pid of this.#lastSeen.keys()) if (!alive.has(pid)) this.#lastSeen.delete(pid);
    }
    let sliceStart = performance.now();
    for (const pid of list) {
      if (opts.signal?.aborted) break;
      if (performance.now() - sliceStart >= sliceMs) {
        await yieldToLoop();
        sliceStart = performance.now();
      }
      const identity = this.#identity(pid);
      if (identity === undefined) {
        this.#lastSeen.delete(pid);
        continue; // exited
      }
      if (!opts.force && this.#lastSeen.get(pid) === identity) continue;
      this.#lastSeen.set(pid, identity);
      for (const t of await this.#scanPidAsync(pid)) if (!found.has(t.key)) found.set(t.key, t);
    }
    return [...found.values()];
  }

  /** `<starttime>:<vsize>` of a process, undefined when it is gone. */
  #identity(pid: number): string | undefined {
    let stat: string;
    try {
      stat = readFileSync(`${this.#proc}/${pid}/stat`, 'latin1');
    } catch {
      return undefined;
    }
    // The command name (field 2) may hold spaces and ')': fields are counted after its last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return `${rest[19]}:${rest[20]}`;
  }

  /** Targets of one process; empty when it is gone or unreadable. */
  scanPid(pid: number): LibraryTarget[] {
    const found = this.#mappedTargets(pid);
    if (!found) return [];
    const exe = found.needExe ? this.#exe(pid) : undefined;
    if (exe) {
      let verdict = this.#exeVerdict.get(exe.key);
      if (verdict === undefined) {
        verdict = exportsSsl(() => dynamicFunctions(exe.path, STATIC_SSL_REQUIRED));
        this.#exeVerdict.set(exe.key, verdict);
      }
      if (verdict) found.out.push(this.#staticTarget(pid, found.sameNs, exe));
    }
    return found.out;
  }

  /** {@link LibraryScanner.scanPid}, reading a new executable's symbols without holding the event loop. */
  async #scanPidAsync(pid: number): Promise<LibraryTarget[]> {
    const found = this.#mappedTargets(pid);
    if (!found) return [];
    const exe = found.needExe ? this.#exe(pid) : undefined;
    if (exe) {
      let verdict = this.#exeVerdict.get(exe.key);
      if (verdict === undefined) {
        let syms: Map<string, unknown> | undefined;
        try {
          syms = await dynamicFunctionsAsync(exe.path, STATIC_SSL_REQUIRED);
        } catch {
          syms = undefined;
        }
        verdict = exportsSsl(() => syms ?? new Map());
        this.#exeVerdict.set(exe.key, verdict);
      }
      if (verdict) found.out.push(this.#staticTarget(pid, found.sameNs, exe));
    }
    return found.out;
  }

  /** libc/libssl files a process maps; undefined when it is gone or unreadable. */
  #mappedTargets(pid: number): { out: LibraryTarget[]; sameNs: boolean; needExe: boolean } | undefined {
    const out: LibraryTarget[] = [];
    let maps: string;
    try {
      maps = readFileSync(`${this.#proc}/${pid}/maps`, 'utf8');
    } catch {
      return undefined; // exited, or a kernel thread
    }
    const sameNs = readLink(`${this.#proc}/${pid}/ns/mnt`) === this.#ownMntNs;
    let hasSsl = false;
    for (const e of parseMaps(maps)) {
      const kind = classifyLibrary(e.path);
      if (!kind) continue;
      if (kind === 'libssl') hasSsl = true;
      const path = sameNs ? e.path : `${this.#proc}/${pid}/root${e.path}`;
      const key = fileKey(path);
      // Gone, or replaced on disk since it was mapped: the mapped inode is not reachable by path.
      if (!key?.endsWith(`:${e.inode}`)) continue;
      out.push({ kind, key, path, mappedPath: e.path, pid });
    }
    return { out, sameNs, needExe: this.#staticSsl && !hasSsl };
  }

  /** The executable of a process: its key and where it links to, or undefined. */
  #exe(pid: number): { path: string; key: string; target: string | undefined } | undefined {
    const path = `${this.#proc}/${pid}/exe`;
    const key = fileKey(path);
    return key ? { path, key, target: readLink(path) } : undefined;
  }

  #staticTarget(
    pid: number,
    sameNs: boolean,
    exe: { path: string; key: string; target: string | undefined },
  ) {
    const { path: exePath, key, target } = exe;
    const mapped = target ?? exePath;
    const viaRoot = target ? (sameNs ? target : `${this.#proc}/${pid}/root${target}`) : exePath;
    let path = exePath;
    try {
      const a = statSync(viaRoot, { bigint: true });
      const b = statSync(exePath, { bigint: true });
      if (a.ino === b.ino && a.dev === b.dev) path = viaRoot;
    } catch {
      // keep /proc/<pid>/exe: the binary may be deleted or unreachable by path
    }
    return { kind: 'ssl-static' as const, key, path, mappedPath: mapped, pid };
  }
}

/** Whether an executable's exported functions (from read) include SSL_read and SSL_write; false when unreadable. */
function exportsSsl(read: () => ReadonlyMap<string, unknown>): boolean {
  try {
    const syms = read();
    return [...STATIC_SSL_REQUIRED].every((s) => syms.has(s));
  } catch {
    return false; // not ELF64 LE (scripts run through an interpreter are seen as the interpreter)
  }
}

function readLink(p: string): string | undefined {
  try {
    return readlinkSync(p);
  } catch {
    return undefined;
  }
}

/**
 * `<major>:<minor>:<inode>` of a file (following links), the identity uprobes
 * attach to; undefined when it cannot be stat'ed. Every target is keyed this
 * way, so one file found through several paths is probed once.
 */
export function fileKey(path: string): string | undefined {
  try {
    const st = statSync(path, { bigint: true });
    // glibc's dev_t encoding (major 12+ bits, minor 20 bits split around it).
    const major = ((st.dev >> 8n) & 0xfffn) | ((st.dev >> 32n) & ~0xfffn);
    const minor = (st.dev & 0xffn) | ((st.dev >> 12n) & ~0xffn);
    return `${major}:${minor}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/** Standard library directories searched for host libraries at start. */
export const HOST_LIBRARY_DIRS: readonly string[] = [
  '/lib/x86_64-linux-gnu',
  '/usr/lib/x86_64-linux-gnu',
  '/lib/aarch64-linux-gnu',
  '/usr/lib/aarch64-linux-gnu',
  '/lib64',
  '/usr/lib64',
  '/lib',
  '/usr/lib',
];

/**
 * libc and libssl files installed on the host in the standard directories,
 * one per file: probing them at start covers short-lived processes that
 * start before the first scan could see them map the library.
 */
export function hostLibraries(dirs: readonly string[] = HOST_LIBRARY_DIRS): LibraryTarget[] {
  const out = new Map<string, LibraryTarget>();
  for (const dir of dirs) {
    for (const name of ['libc.so.6', 'libssl.so.3', 'libssl.so.1.1']) {
      const path = `${dir}/${name}`;
      const key = fileKey(path);
      const kind = classifyLibrary(path);
      if (!key || !kind || out.has(key)) continue;
      out.set(key, { kind, key, path, mappedPath: path, pid: 0 });
    }
  }
  return [...out.values()];
}

function listPids(proc: string): number[] {
  return numericNames(readdirSync(proc));
}

async function listPidsAsync(proc: string): Promise<number[]> {
  return numericNames(await readdir(proc));
}

function numericNames(names: readonly string[]): number[] {
  const out: number[] = [];
  for (const name of names) {
    if (/^\d+$/.test(name)) out.push(Number(name));
  }
  return out;
}
