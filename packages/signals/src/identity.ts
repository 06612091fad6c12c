import {
  type DigestFailure,
  type DigestRequest,
  type DigestResult,
  type FileDigests,
  releaseInOrder,
  type SettlingBatch,
} from '@stellaops/enrich';
import { FileOpenView, LAYOUT } from '@stellaops/probes';
import { CollectError } from './errors.js';
import type { KernelEvent } from './records.js';

/**
 * Exec identity of a record: whether the container runtime's own set-up
 * produced it, and the content digest of the executed file or mapped
 * shared object (or why there is none). Digests are requested when a batch
 * arrives and waited for at most `waitMs`, like container attribution.
 */

/** Why a record has no digest: {@link DigestFailure}, or what this stage knows before asking. */
export type DigestUnavailable = DigestFailure | 'timeout' | 'path_truncated';

/** What the identity stage adds to a record. */
export interface RecordIdentity {
  /** Produced by the container runtime's set-up (`runc init` and its nsexec stages). */
  readonly runtimeSetup: boolean;
  /** For exec records and shared-object opens: the digest, or why there is none. */
  readonly digest?: { readonly digest: string } | { readonly unavailable: DigestUnavailable };
}

/** runc's nsexec names its stages so (libcontainer/nsenter/nsexec.c). */
const RUNC_STAGE = /^runc:\[[0-2]:(?:PARENT|CHILD|INIT)\]$/;
/** A shared object's file name: `libc.so.6`, `ld-linux-x86-64.so.2`, `libfoo.so`. */
const SHARED_OBJECT = /\.so(?:\.[0-9]+)*$/;
/** What every shared object's path holds: a path without it needs no string (most opens). */
const DOT_SO = Buffer.from('.so');
const R = 0x72; // every runc stage name starts with "r"
/** Offset of the task name in a ring record (read in place from a {@link FileOpenView}). */
const COMM_AT = LAYOUT.stella_event_header.members.comm[0];

/** First byte of the task name (0 when empty), without a view of it. */
function commFirst(e: Extract<KernelEvent, { source: 'fileexec' }>['event']): number | undefined {
  return e instanceof FileOpenView ? e.data[e.start + COMM_AT] : e.comm[0];
}

/**
 * Whether a file open's path holds ".so" (every shared object's does: most
 * opens need no string), read in place from a {@link FileOpenView}.
 */
function mayBeSharedObject(e: { path: Buffer }): boolean {
  if (!(e instanceof FileOpenView)) return e.path.indexOf(DOT_SO) >= 0;
  const d = e.data;
  const end = e.end;
  for (let i = end - e.pathLength; i + 2 < end; i++) {
    if (d[i] === 0x2e && d[i + 1] === 0x73 && d[i + 2] === 0x6f) return true;
  }
  return false;
}

function basename(b: Buffer): string {
  const i = b.lastIndexOf(0x2f);
  return b.subarray(i + 1).toString('latin1');
}

/**
 * True when the container runtime produced this event while setting a
 * container up, before the image's entrypoint runs: runc's `runc init`
 * exec (argv `runc init`, through /proc/self/exe or its memfd copy) and
 * anything its nsexec stages (`runc:[0:PARENT]`, `runc:[1:CHILD]`,
 * `runc:[2:INIT]`) do. The entrypoint's own exec is the image's: its task
 * name is already the new program's. A process can name itself like a runc
 * stage, so this marks records, it never drops them.
 */
export function isRuntimeSetup(k: KernelEvent): boolean {
  if (k.source !== 'fileexec') return false;
  const e = k.event;
  if (commFirst(e) === R && RUNC_STAGE.test(e.comm.toString('latin1'))) return true;
  if (e.kind !== 'exec') return false;
  const [argv0, argv1] = e.argv;
  return (
    argv1 !== undefined &&
    argv1.toString('latin1') === 'init' &&
    argv0 !== undefined &&
    basename(argv0) === 'runc'
  );
}

/**
 * The digest an event needs: its executed file (checked against the
 * kernel's device and inode; the parent's root may stand in once the
 * process is gone), or a shared object it opened read-only to map; a
 * reason when the path cannot name the file; undefined for other events.
 */
export function digestRequestOf(k: KernelEvent): DigestRequest | DigestUnavailable | undefined {
  if (k.source !== 'fileexec') return undefined;
  const e = k.event;
  if (e.kind === 'exec') {
    if (e.exePathTruncated) return 'path_truncated';
    return { pid: e.pid, path: e.exePath, expect: { dev: e.exeDev, ino: e.exeIno }, fallbackPids: [e.ppid] };
  }
  if (e.kind !== 'file_open' || e.ret < 0 || (e.flags & 3) !== 0) return undefined;
  if (!mayBeSharedObject(e) || !SHARED_OBJECT.test(basename(e.path))) return undefined;
  if (e.truncated || e.pathFault) return 'path_truncated';
  if (e.resolution === 'unresolved') return 'not_found';
  return { pid: e.pid, path: e.path };
}

/** Options of {@link IdentityStage}. */
export interface IdentityStageOptions {
  /** Longest a batch waits for its digests, ms (default 1000); later they go out with `timeout`. */
  readonly waitMs?: number;
  /** Records held back at most before the oldest batch goes out as it is (default 65536). */
  readonly maxPendingItems?: number;
}

interface Pending<B> extends SettlingBatch {
  readonly batch: B;
  readonly size: number;
  /** Resolves once every digest is in, or the wait is over. */
  readonly ready: Promise<void>;
  settled: boolean;
}

/**
 * The step that gives records their {@link RecordIdentity}: reads batches
 * as they come (so digests start while the processes still live), passes
 * them on unchanged and in order once their digests are in or `waitMs` has
 * passed; {@link IdentityStage.identityOf} then answers for each event (a
 * digest that lands after the wait still serves a record built later).
 * Closing the returned iterator closes the source.
 */
export class IdentityStage {
  readonly #digests: FileDigests | undefined;
  readonly #waitMs: number;
  readonly #maxPending: number;
  readonly #identities = new WeakMap<KernelEvent, RecordIdentity>();
  /**
   * Processes between their `runc init` exec and their next exec (or exit):
   * what they do before nsexec names them (the dynamic loader's opens of
   * runc's host libraries, under the task name `runc` or `exe`) is set-up too.
   */
  readonly #setupPids = new Set<number>();

  /** `digests` undefined: only the runtime set-up mark, no digests. */
  constructor(digests: FileDigests | undefined, options: IdentityStageOptions = {}) {
    const { waitMs = 1000, maxPendingItems = 65536 } = options;
    if (typeof waitMs !== 'number' || !Number.isFinite(waitMs) || waitMs < 0) {
      throw new CollectError('USAGE', `digests.waitMs must be a number of ms >= 0, got ${String(waitMs)}`, {
        hint: 'pass how long a record may wait for its file digest, e.g. { waitMs: 1000 }',
      });
    }
    this.#digests = digests;
    this.#waitMs = waitMs;
    this.#maxPending = maxPendingItems;
  }

  /** The identity of an event that went through {@link run}; undefined when it has nothing to add. */
  identityOf(k: KernelEvent): RecordIdentity | undefined {
    return this.#identities.get(k);
  }

  /** {@link isRuntimeSetup}, plus the records of a `runc init` process until it execs the entrypoint or exits. */
  #setupMark(k: KernelEvent): boolean {
    if (k.source !== 'fileexec') return false;
    const e = k.event;
    const own = isRuntimeSetup(k);
    if (e.kind === 'exec') {
      if (own) {
        // Bounded: a pid whose exit was never seen does not stay forever.
        if (this.#setupPids.size >= 4096) this.#setupPids.delete(this.#setupPids.values().next().value!);
        this.#setupPids.add(e.pid);
      } else this.#setupPids.delete(e.pid);
      return own;
    }
    const inSetup = this.#setupPids.size > 0 && this.#setupPids.has(e.pid);
    if (e.kind === 'exit') this.#setupPids.delete(e.pid);
    return own || inSetup;
  }

  #prepare<B>(batch: B, events: readonly KernelEvent[]): Pending<B> {
    const waits: Promise<void>[] = [];
    for (const k of events) {
      const runtimeSetup = this.#setupMark(k);
      const want = this.#digests ? digestRequestOf(k) : undefined;
      if (want === undefined) {
        if (runtimeSetup) this.#identities.set(k, { runtimeSetup });
      } else if (typeof want === 'string') {
        this.#identities.set(k, { runtimeSetup, digest: { unavailable: want } });
      } else {
        this.#identities.set(k, { runtimeSetup, digest: { unavailable: 'timeout' } });
        waits.push(
          (this.#digests as FileDigests).request(want).then((r: DigestResult) => {
            this.#identities.set(k, {
              runtimeSetup,
              digest: 'digest' in r ? { digest: r.digest } : { unavailable: r.unavailable },
            });
          }),
        );
      }
    }
    const p: Pending<B> = {
      batch,
      size: events.length,
      ready: Promise.resolve(),
      settled: waits.length === 0,
    };
    if (!p.settled) {
      let timer: NodeJS.Timeout | undefined;
      (p as { ready: Promise<void> }).ready = Promise.race([
        Promise.all(waits).then(() => undefined),
        new Promise<void>((r) => {
          timer = setTimeout(r, this.#waitMs);
        }),
      ]).finally(() => {
        clearTimeout(timer);
        p.settled = true;
      });
    }
    return p;
  }

  /**
   * Pass a stream of batches on, in order, each once its events' digests
   * are in (or the wait is over). `eventsOf` names a batch's events. A
   * source error is rethrown after the batches read before it.
   */
  async *run<B>(
    source: AsyncIterable<B>,
    eventsOf: (batch: B) => readonly KernelEvent[],
  ): AsyncGenerator<B, void, undefined> {
    const prepare = (batch: B) => this.#prepare(batch, eventsOf(batch));
    for await (const { batch } of releaseInOrder(source, prepare, this.#maxPending)) yield batch.batch;
  }
}
