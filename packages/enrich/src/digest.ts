import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, lstat, open, readlink } from 'node:fs/promises';
import { EnrichError } from './errors.js';
import { LruCache } from './lru.js';

/**
 * Content digests (sha256) of executed files and shared objects, read
 * through the process's own root (`/proc/<pid>/root`) off the hot path: a
 * bounded queue, a few reads at a time, results cached by (dev, ino, mtime,
 * size) so a binary run a thousand times is read once. Callers never wait
 * on the disk: {@link FileDigests.request} returns a promise at once, and a
 * full queue answers `overloaded` instead of growing.
 */

/** Why a digest could not be made; the record carries it instead of the digest. */
export type DigestFailure =
  | 'process_exited'
  | 'file_changed'
  | 'not_found'
  | 'unreadable'
  | 'not_regular'
  | 'too_large'
  | 'overloaded';

/** The outcome of one request: `sha256:<hex>`, or why there is none. */
export type DigestResult =
  | { readonly digest: string }
  | { readonly unavailable: DigestFailure; readonly detail?: string };

/** One file to digest. */
export interface DigestRequest {
  /** The process that ran or opened the file: its root is where `path` is looked up. */
  readonly pid: number;
  /** Path from that process's root (absolute). Raw bytes, as the kernel gave them. */
  readonly path: Buffer;
  /**
   * Device and inode the kernel reported for the file (exec records), as
   * stat(2) st_dev/st_ino. When given, the file read must be that file, and
   * the roots of `fallbackPids` may be tried once `pid` is gone (a parent
   * in the same container still sees the same root).
   */
  readonly expect?: { readonly dev: bigint; readonly ino: bigint };
  /** Other processes whose root may hold the file; only used with `expect`. */
  readonly fallbackPids?: readonly number[];
}

/** Options of {@link FileDigests}. */
export interface FileDigestsOptions {
  /** Cached digests kept, by (dev, ino, mtime, size); default 8192. */
  readonly maxEntries?: number;
  /** Files read at the same time; default 2. */
  readonly concurrency?: number;
  /** Requests waiting for a reader at most; past it requests answer `overloaded`. Default 4096. */
  readonly maxQueued?: number;
  /** Largest file digested, bytes; default 512 MiB (`too_large` above). */
  readonly maxFileBytes?: number;
  /** procfs mount; default /proc. */
  readonly procRoot?: string;
}

/** Counters of a {@link FileDigests}. */
export interface FileDigestStats {
  requests: number;
  /** Answered from the cache after an open and fstat, without reading the file. */
  cacheHits: number;
  /** Files read and hashed. */
  computed: number;
  bytesRead: number;
  overloaded: number;
  failed: number;
}

/**
 * How long a verified digest of an executed file answers for the same
 * (dev, ino) without touching the disk: an exec storm of one binary costs
 * no I/O. A file being executed cannot be written (ETXTBSY), so within this
 * window its content changes only between runs of it.
 */
const RECENT_EXEC_MS = 2000;
const MAX_SYMLINKS = 40; // MAXSYMLINKS, include/linux/namei.h
const CHUNK = 256 * 1024;

function positiveInt(name: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new EnrichError('INVALID_OPTION', `FileDigests ${name} must be an integer >= 1, got ${String(v)}`);
  }
  return v;
}

interface Job {
  readonly req: DigestRequest;
  readonly resolve: (r: DigestResult) => void;
}

/** Not the wanted file under this root: try the next, or report `failure`. */
class Miss {
  constructor(
    readonly failure: DigestFailure,
    readonly detail?: string,
  ) {}
}

/**
 * The sha256 of files as processes see them. See the module comment for
 * the contract; every method is safe to call after {@link close} (requests
 * then answer `unreadable` with the detail "closed").
 */
export class FileDigests {
  readonly #cache: LruCache<string, string>;
  /** Digests of executed files by kernel (dev, ino), for {@link RECENT_EXEC_MS}. */
  readonly #recentExec = new LruCache<string, string>(4096);
  readonly #concurrency: number;
  readonly #maxQueued: number;
  readonly #maxFileBytes: number;
  readonly #proc: string;
  readonly #queue: Job[] = [];
  /** Digests being computed, by cache key: a second request for the same file waits for the first. */
  readonly #running = new Map<string, Promise<string>>();
  #active = 0;
  #closed = false;
  readonly stats: FileDigestStats = {
    requests: 0,
    cacheHits: 0,
    computed: 0,
    bytesRead: 0,
    overloaded: 0,
    failed: 0,
  };

  constructor(options: FileDigestsOptions = {}) {
    this.#cache = new LruCache(positiveInt('maxEntries', options.maxEntries, 8192));
    this.#concurrency = positiveInt('concurrency', options.concurrency, 2);
    this.#maxQueued = positiveInt('maxQueued', options.maxQueued, 4096);
    this.#maxFileBytes = positiveInt('maxFileBytes', options.maxFileBytes, 512 * 1024 * 1024);
    this.#proc = options.procRoot ?? '/proc';
  }

  /**
   * Queue one file. Returns at once; the promise never rejects. Requests
   * are served in order, `concurrency` at a time.
   */
  request(req: DigestRequest): Promise<DigestResult> {
    this.stats.requests++;
    if (this.#closed) return Promise.resolve({ unavailable: 'unreadable', detail: 'closed' });
    if (req.expect) {
      const recent = this.#recentExec.get(`${req.expect.dev}:${req.expect.ino}`);
      if (recent !== undefined) {
        this.stats.cacheHits++;
        return Promise.resolve({ digest: recent });
      }
    }
    if (this.#queue.length >= this.#maxQueued) {
      this.stats.overloaded++;
      return Promise.resolve({ unavailable: 'overloaded' });
    }
    return new Promise<DigestResult>((resolve) => {
      this.#queue.push({ req, resolve });
      this.#next();
    });
  }

  /** Stop: queued requests answer `unreadable` ("closed"); reads in progress finish. Idempotent. */
  close(): void {
    this.#closed = true;
    for (const j of this.#queue.splice(0)) j.resolve({ unavailable: 'unreadable', detail: 'closed' });
  }

  #next(): void {
    while (this.#active < this.#concurrency && this.#queue.length > 0) {
      const job = this.#queue.shift() as Job;
      this.#active++;
      void this.#serve(job.req).then((r) => {
        this.#active--;
        if ('unavailable' in r) this.stats.failed++;
        job.resolve(r);
        this.#next();
      });
    }
  }

  async #serve(req: DigestRequest): Promise<DigestResult> {
    if (req.path.length === 0 || req.path[0] !== 0x2f) {
      return { unavailable: 'not_found', detail: 'not an absolute path' };
    }
    const pids = [req.pid, ...(req.expect ? (req.fallbackPids ?? []) : [])];
    let miss: Miss | undefined;
    for (const pid of pids) {
      try {
        return await this.#digestUnder(`${this.#proc}/${pid}/root`, req);
      } catch (e) {
        const m = e instanceof Miss ? e : new Miss('unreadable', (e as Error).message);
        // The first root's verdict stands unless a fallback does better;
        // a gone process is the least informative.
        if (miss === undefined || miss.failure === 'process_exited') miss = m;
      }
    }
    return miss?.detail === undefined
      ? { unavailable: miss?.failure ?? 'unreadable' }
      : { unavailable: miss.failure, detail: miss.detail };
  }

  async #digestUnder(root: string, req: DigestRequest): Promise<DigestResult> {
    const file = await this.#resolveIn(root, req.path);
    let fh: FileHandle;
    try {
      fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (e) {
      throw missOf(e);
    }
    try {
      const st = await fh.stat({ bigint: true });
      if (!st.isFile()) throw new Miss('not_regular');
      if (req.expect && (st.dev !== req.expect.dev || st.ino !== req.expect.ino)) {
        throw new Miss(
          'file_changed',
          `device ${st.dev} inode ${st.ino}, the kernel ran ${req.expect.dev}:${req.expect.ino}`,
        );
      }
      if (st.size > BigInt(this.#maxFileBytes)) throw new Miss('too_large', `${st.size} bytes`);
      const key = `${st.dev}:${st.ino}:${st.mtimeNs}:${st.size}`;
      const cached = this.#cache.get(key);
      if (cached !== undefined) {
        this.stats.cacheHits++;
        if (req.expect) this.#recentExec.set(`${st.dev}:${st.ino}`, cached, Date.now() + RECENT_EXEC_MS);
        return { digest: cached };
      }
      let running = this.#running.get(key);
      if (!running) {
        running = this.#hash(fh).finally(() => this.#running.delete(key));
        this.#running.set(key, running);
      }
      const digest = await running;
      this.#cache.set(key, digest);
      if (req.expect) this.#recentExec.set(`${st.dev}:${st.ino}`, digest, Date.now() + RECENT_EXEC_MS);
      return { digest };
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  async #hash(fh: FileHandle): Promise<string> {
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(CHUNK);
    let pos = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    this.stats.computed++;
    this.stats.bytesRead += pos;
    return `sha256:${h.digest('hex')}`;
  }

  /**
   * `path` under `root` with every symlink resolved inside that root, as
   * the process would resolve it: a plain open of `/proc/<pid>/root/<path>`
   * would resolve an absolute symlink target (`/lib/x.so -> /usr/lib/x.so`)
   * against this process's root instead, and read the host's file.
   */
  async #resolveIn(root: string, path: Buffer): Promise<Buffer> {
    await this.#rootAlive(root);
    try {
      const pending = splitPath(path.toString('latin1'));
      const done: string[] = [];
      let hops = 0;
      while (pending.length > 0) {
        const part = pending.shift() as string;
        if (part === '.') continue;
        if (part === '..') {
          done.pop();
          continue;
        }
        done.push(part);
        const here = fsPath(root, done);
        if (!(await lstat(here)).isSymbolicLink()) continue;
        if (++hops > MAX_SYMLINKS) throw new Miss('not_found', 'too many symbolic links');
        const target = (await readlink(here, { encoding: 'buffer' })).toString('latin1');
        done.pop();
        if (target.startsWith('/')) done.length = 0;
        pending.unshift(...splitPath(target));
      }
      return fsPath(root, done);
    } catch (e) {
      const miss = e instanceof Miss ? e : missOf(e);
      // A process that exits mid-walk (its root goes first) is gone, not a missing file.
      if (miss.failure === 'not_found') await this.#rootAlive(root);
      throw miss;
    }
  }

  /** Throws `process_exited` when `root` (/proc/<pid>/root) no longer leads anywhere. */
  async #rootAlive(root: string): Promise<void> {
    try {
      await readlink(root);
    } catch {
      throw new Miss('process_exited');
    }
  }
}

function splitPath(p: string): string[] {
  return p.split('/').filter((x) => x.length > 0);
}

/** Components are latin1 strings (one char per byte), so any byte string round-trips to the path bytes. */
function fsPath(root: string, parts: readonly string[]): Buffer {
  return Buffer.from(`${root}/${parts.join('/')}`, 'latin1');
}

function missOf(e: unknown): Miss {
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return new Miss('not_found');
    case 'ELOOP':
      return new Miss('not_found', 'symbolic link where a file was expected');
    case 'ESRCH':
      return new Miss('process_exited');
    default:
      return new Miss('unreadable', err.code ?? err.message);
  }
}
