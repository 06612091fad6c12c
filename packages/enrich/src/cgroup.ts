import { existsSync, readFileSync, statSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EnrichError } from './errors.js';
import { LruCache } from './lru.js';

/** Where a cgroup id points. */
export interface CgroupLocation {
  /** Path relative to the hierarchy root, starting with `/`. */
  readonly path: string;
  /**
   * `v2` when `path` is the cgroup v2 directory whose inode is the id;
   * `v1` when the process sits only in v1 hierarchies (its v2 id is the root,
   * 1) and the path came from its v1 line of `/proc/<pid>/cgroup`.
   */
  readonly hierarchy: 'v2' | 'v1';
}

/** Options of {@link CgroupResolver}. */
export interface CgroupResolverOptions {
  /** cgroup v2 mount; default: `/sys/fs/cgroup` when unified, else `/sys/fs/cgroup/unified` (hybrid). */
  readonly cgroupRoot?: string;
  /** procfs mount; default `/proc`. */
  readonly procRoot?: string;
  /** Minimum time between the starts of two full scans of the v2 tree; default 500 ms. */
  readonly scanIntervalMs?: number;
  /** Cache bound; default 16384 ids. */
  readonly maxEntries?: number;
  /** Upper bound on directories one scan visits; default 200000. */
  readonly maxScanDirs?: number;
}

/** The cgroup v2 mount of this machine: pure v2 at /sys/fs/cgroup, hybrid at /sys/fs/cgroup/unified. */
export function defaultCgroupRoot(): string {
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) return '/sys/fs/cgroup';
  if (existsSync('/sys/fs/cgroup/unified/cgroup.controllers')) return '/sys/fs/cgroup/unified';
  return '/sys/fs/cgroup';
}

/** Parsed `/proc/<pid>/cgroup`: the v2 path (`0::` line) and each v1 hierarchy's path. */
export interface ProcCgroups {
  readonly v2?: string;
  readonly v1: ReadonlyMap<string, string>;
}

/** Parse the text of `/proc/<pid>/cgroup` (see cgroups(7), "/proc/[pid]/cgroup"). */
export function parseProcCgroup(text: string): ProcCgroups {
  let v2: string | undefined;
  const v1 = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.length === 0) continue;
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const id = line.slice(0, first);
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    if (id === '0' && controllers === '') v2 = path;
    else for (const c of controllers.split(',')) v1.set(c, path);
  }
  return v2 === undefined ? { v1 } : { v2, v1 };
}

// The v1 hierarchies a runtime is most likely to have placed a process in, best first.
const V1_PREFERENCE = ['name=systemd', 'pids', 'memory', 'cpu', 'devices', 'freezer'];

/**
 * Maps the bpf cgroup id (`bpf_get_current_cgroup_id()`, the inode of the
 * process's cgroup v2 directory) to that directory's path.
 *
 * Order: cache → the pid's own `/proc/<pid>/cgroup` (checked by inode, so a
 * process that moved does not mislead) → a rate-limited scan of the v2 tree
 * (Node has no `open_by_handle_at`, the kernel's direct way). A process only
 * in v1 hierarchies (podman's conmon) has the root's id; its v1 path is used.
 */
export class CgroupResolver {
  readonly root: string;
  readonly #proc: string;
  readonly #scanIntervalMs: number;
  readonly #maxScanDirs: number;
  readonly #cache: LruCache<bigint, string>;
  #lastScanStart = Number.NEGATIVE_INFINITY;
  #scanning: Promise<void> | undefined;
  #rootId: bigint | undefined;
  /** Number of full tree scans done (exposed for tests and stats). */
  scans = 0;

  constructor(options: CgroupResolverOptions = {}) {
    const { scanIntervalMs = 500, maxEntries = 16384, maxScanDirs = 200_000 } = options;
    if (!Number.isFinite(scanIntervalMs) || scanIntervalMs < 0) {
      throw new EnrichError(
        'INVALID_OPTION',
        `cgroup scanIntervalMs must be a number >= 0, got ${scanIntervalMs}`,
      );
    }
    this.root = options.cgroupRoot ?? defaultCgroupRoot();
    this.#proc = options.procRoot ?? '/proc';
    this.#scanIntervalMs = scanIntervalMs;
    this.#maxScanDirs = maxScanDirs;
    this.#cache = new LruCache(maxEntries);
  }

  /** Inode of the v2 root directory (1 on Linux): the id of a process in no v2 child cgroup. */
  get rootId(): bigint {
    this.#rootId ??= statSync(this.root, { bigint: true }).ino;
    return this.#rootId;
  }

  /** The cgroup id of a v2 path (`/h5test/c1`), or undefined if no such directory. */
  idOf(path: string): bigint | undefined {
    try {
      return statSync(join(this.root, path), { bigint: true }).ino;
    } catch {
      return undefined;
    }
  }

  /** Read and parse `/proc/<pid>/cgroup`; undefined when the process is gone. */
  procCgroups(pid: number): ProcCgroups | undefined {
    try {
      return parseProcCgroup(readFileSync(`${this.#proc}/${pid}/cgroup`, 'utf8'));
    } catch {
      return undefined;
    }
  }

  /**
   * Synchronous lookup: cache, then the pid's own cgroup file. Never scans.
   * Undefined when neither knows the id.
   */
  lookup(cgroupId: bigint, pid?: number): CgroupLocation | undefined {
    const cached = this.#cache.get(cgroupId);
    if (cached !== undefined) return { path: cached, hierarchy: 'v2' };
    const pc = pid === undefined ? undefined : this.procCgroups(pid);
    if (pc === undefined) {
      // The v2 root is always known. A process there that is gone (or no pid)
      // cannot be checked for v1-only placement: it is taken as the root.
      return cgroupId === this.rootId ? { path: '/', hierarchy: 'v2' } : undefined;
    }
    if (pc.v2 !== undefined && pc.v2 !== '/') {
      const ino = this.idOf(pc.v2);
      if (ino === cgroupId) {
        this.#cache.set(cgroupId, pc.v2);
        return { path: pc.v2, hierarchy: 'v2' };
      }
    }
    if (cgroupId === this.rootId) {
      for (const c of V1_PREFERENCE) {
        const p = pc.v1.get(c);
        if (p !== undefined && p !== '/') return { path: p, hierarchy: 'v1' };
      }
      return { path: '/', hierarchy: 'v2' };
    }
    return undefined;
  }

  /**
   * Like {@link lookup}, then a scan of the v2 tree that started after this
   * call (so a cgroup made just now is seen). Scans start at most once per
   * `scanIntervalMs`: a call may wait up to that long for its turn, and
   * concurrent calls share one scan.
   */
  async resolve(cgroupId: bigint, pid?: number): Promise<CgroupLocation | undefined> {
    const quick = this.lookup(cgroupId, pid);
    if (quick !== undefined) return quick;
    await this.#scanSince(performance.now());
    const path = this.#cache.get(cgroupId);
    return path === undefined ? undefined : { path, hierarchy: 'v2' };
  }

  /** Scan the whole v2 tree into the cache now (or as soon as the scan interval allows). */
  scan(): Promise<void> {
    return this.#scanSince(performance.now());
  }

  /** Remember a path for an id (the tracker does this for containers it lists). */
  remember(cgroupId: bigint, path: string): void {
    this.#cache.set(cgroupId, path);
  }

  get cacheSize(): number {
    return this.#cache.size;
  }

  /** Resolves once a scan that started at or after `t` has finished. */
  async #scanSince(t: number): Promise<void> {
    for (;;) {
      if (this.#scanning) {
        const started = this.#lastScanStart;
        await this.#scanning;
        if (started >= t) return;
        continue;
      }
      if (this.#lastScanStart >= t) return;
      const wait = this.#lastScanStart + this.#scanIntervalMs - performance.now();
      if (wait > 0) {
        await new Promise((r) => setTimeout(r, wait));
        continue; // another caller may have started the scan meanwhile
      }
      this.#lastScanStart = performance.now();
      this.#scanning = this.#walk().finally(() => {
        this.#scanning = undefined;
      });
    }
  }

  async #walk(): Promise<void> {
    this.scans++;
    const queue: string[] = ['/'];
    let visited = 0;
    while (queue.length > 0 && visited < this.#maxScanDirs) {
      const rel = queue.pop()!;
      visited++;
      let entries: import('node:fs').Dirent[];
      try {
        entries = await readdir(join(this.root, rel), { withFileTypes: true });
      } catch {
        continue; // removed while scanning
      }
      for (const e of entries) {
        if (!e.isDirectory()) continue;
        const child = rel === '/' ? `/${e.name}` : `${rel}/${e.name}`;
        try {
          const st = await stat(join(this.root, child), { bigint: true });
          this.#cache.set(st.ino, child);
        } catch {
          continue;
        }
        queue.push(child);
      }
    }
  }
}
