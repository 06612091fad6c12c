/**
 * Finds the libc and OpenSSL files processes actually map, on the host and
 * inside containers (whose files are reachable at /proc/<pid>/root/<path>),
 * and executables that carry OpenSSL statically and export SSL_* (Node.js).
 * One target per distinct file, keyed by device and inode, so each file is
 * probed once however many processes map it.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { dynamicFunctions } from './elf.js';

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

/** Scans processes for probe targets; remembers negative results per executable. */
export class LibraryScanner {
  readonly #proc: string;
  readonly #staticSsl: boolean;
  readonly #exeVerdict = new Map<string, boolean>();
  readonly #ownMntNs: string | undefined;

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

  /** Targets of one process; empty when it is gone or unreadable. */
  scanPid(pid: number): LibraryTarget[] {
    const out: LibraryTarget[] = [];
    let maps: string;
    try {
      maps = readFileSync(`${this.#proc}/${pid}/maps`, 'utf8');
    } catch {
      return out; // exited, or a kernel thread
    }
    const sameNs = readLink(`${this.#proc}/${pid}/ns/mnt`) === this.#ownMntNs;
    let hasSsl = false;
    for (const e of parseMaps(maps)) {
      const kind = classifyLibrary(e.path);
      if (!kind) continue;
      if (kind === 'libssl') hasSsl = true;
      const path = sameNs ? e.path : `${this.#proc}/${pid}/root${e.path}`;
      if (!sameInode(path, e.inode)) continue; // replaced on disk since it was mapped
      out.push({ kind, key: `${e.dev}:${e.inode}`, path, mappedPath: e.path, pid });
    }
    if (this.#staticSsl && !hasSsl) {
      const t = this.#staticTarget(pid, sameNs);
      if (t) out.push(t);
    }
    return out;
  }

  #staticTarget(pid: number, sameNs: boolean): LibraryTarget | undefined {
    const exe = `${this.#proc}/${pid}/exe`;
    let key: string;
    let target: string | undefined;
    try {
      const st = statSync(exe, { bigint: true });
      key = `exe:${st.dev}:${st.ino}`;
      target = readLink(exe);
    } catch {
      return undefined;
    }
    let verdict = this.#exeVerdict.get(key);
    if (verdict === undefined) {
      try {
        const syms = dynamicFunctions(exe, STATIC_SSL_REQUIRED);
        verdict = [...STATIC_SSL_REQUIRED].every((s) => syms.has(s));
      } catch {
        verdict = false; // not ELF64 LE (scripts run through an interpreter are seen as the interpreter)
      }
      this.#exeVerdict.set(key, verdict);
    }
    if (!verdict) return undefined;
    const mapped = target ?? exe;
    const viaRoot = target ? (sameNs ? target : `${this.#proc}/${pid}/root${target}`) : exe;
    let path = exe;
    try {
      const a = statSync(viaRoot, { bigint: true });
      const b = statSync(exe, { bigint: true });
      if (a.ino === b.ino && a.dev === b.dev) path = viaRoot;
    } catch {
      // keep /proc/<pid>/exe: the binary may be deleted or unreachable by path
    }
    return { kind: 'ssl-static', key, path, mappedPath: mapped, pid };
  }
}

function readLink(p: string): string | undefined {
  try {
    return readlinkSync(p);
  } catch {
    return undefined;
  }
}

function sameInode(path: string, inode: string): boolean {
  try {
    return statSync(path, { bigint: true }).ino === BigInt(inode);
  } catch {
    return false;
  }
}

function listPids(proc: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync(proc)) {
    if (/^\d+$/.test(name)) out.push(Number(name));
  }
  return out;
}
