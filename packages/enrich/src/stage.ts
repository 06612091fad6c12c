import { EnrichError } from './errors.js';
import { releaseInOrder, type SettlingBatch } from './ordered.js';
import type { Resolution } from './tracker.js';

/** What the stage needs from a record: its bpf cgroup id and, when known, its pid. */
export interface EnrichableItem {
  readonly cgroupId: bigint;
  readonly pid?: number;
}

/** A record with its container resolution attached. */
export type Enriched<T> = T & { readonly enrichment: Resolution };

/** The resolver the stage drives; {@link ContainerTracker} implements it. */
export interface ContainerResolver {
  /** Cache-only answer, or undefined when not yet known. Must not block. */
  peek(cgroupId: bigint, pid?: number): Resolution | undefined;
  /** Full resolution; never rejects for runtime trouble (that is `unknown`). */
  resolveDetailed(cgroupId: bigint, pid?: number): Promise<Resolution>;
  /** The cgroup path without waiting, for records that go out `unknown`. */
  cgroupPathOf?(cgroupId: bigint, pid?: number): string | undefined;
  /**
   * True when the answer for this id depends on the process (the v2 root on
   * a hybrid host, where each process is resolved through its own v1 path):
   * the stage then resolves per (id, pid), never sharing one process's
   * answer with another. Absent: answers are per cgroup id.
   */
  perProcess?(cgroupId: bigint): boolean;
}

/** Options of {@link EnrichmentStage}. */
export interface EnrichmentStageOptions {
  /** Longest a record waits for its cgroup's first resolution; default 1000 ms. */
  readonly waitMs?: number;
  /**
   * Records held back at most; past it the oldest batch goes out with what
   * is known, and reading the source pauses until the consumer takes
   * batches (memory stays bounded when the consumer stalls). Default 65536.
   */
  readonly maxPendingItems?: number;
}

/** Counters of one stage. */
export interface EnrichmentStats {
  batches: number;
  items: number;
  resolved: number;
  host: number;
  unknown: number;
  /** Cgroup resolutions that had to wait for a runtime (first sight of a container). */
  waited: number;
  /** Cgroup resolutions whose wait ran out: their records went out `unknown`. */
  timedOut: number;
  /** Batches released early because `maxPendingItems` was reached. */
  forcedFlushes: number;
}

interface Entry {
  result?: Resolution;
  readonly done: Promise<void>;
}

interface PendingBatch<T> extends SettlingBatch {
  readonly items: readonly T[];
  /** Resolutions of this batch, by {@link EnrichmentStage.#key}. */
  readonly entries: Map<string, Entry>;
  settled: boolean;
  readonly ready: Promise<void>;
}

/**
 * The enrichment step between decode and encode: takes batches of records,
 * yields the same batches, in order, each record with its `enrichment`.
 *
 * The upstream is read continuously, never waiting on a runtime: a record
 * whose cgroup is not yet known waits (with the rest of its batch and the
 * batches behind it, to keep order) at most `waitMs` from the first time its
 * cgroup was seen, then goes out `unknown` with its cgroup path. Resolutions
 * that finish later serve the following records. A resolver that fails or
 * throws (closed under it) never ends the stream: the record goes out
 * `unknown` with the reason.
 */
export class EnrichmentStage {
  readonly #resolver: ContainerResolver;
  readonly #waitMs: number;
  readonly #maxPending: number;
  readonly #inflight = new Map<string, Entry>();
  readonly stats: EnrichmentStats = {
    batches: 0,
    items: 0,
    resolved: 0,
    host: 0,
    unknown: 0,
    waited: 0,
    timedOut: 0,
    forcedFlushes: 0,
  };

  constructor(resolver: ContainerResolver, options: EnrichmentStageOptions = {}) {
    const { waitMs = 1000, maxPendingItems = 65536 } = options;
    if (typeof waitMs !== 'number' || !Number.isFinite(waitMs) || waitMs < 0) {
      throw new EnrichError(
        'INVALID_OPTION',
        `EnrichmentStage waitMs must be a number of ms >= 0, got ${String(waitMs)}`,
      );
    }
    if (!Number.isInteger(maxPendingItems) || maxPendingItems < 1) {
      throw new EnrichError(
        'INVALID_OPTION',
        `EnrichmentStage maxPendingItems must be an integer >= 1, got ${String(maxPendingItems)}`,
      );
    }
    this.#resolver = resolver;
    this.#waitMs = waitMs;
    this.#maxPending = maxPendingItems;
  }

  /** Resolutions are shared per cgroup id, or per (id, pid) where the resolver answers per process. */
  #key(cgroupId: bigint, pid: number | undefined): string {
    let per = false;
    try {
      per = this.#resolver.perProcess?.(cgroupId) ?? false;
    } catch {
      per = false;
    }
    return per ? `${cgroupId}/${pid ?? ''}` : `${cgroupId}`;
  }

  #entry(key: string, cgroupId: bigint, pid: number | undefined): Entry {
    const running = this.#inflight.get(key);
    if (running) return running;
    this.stats.waited++;
    let timer: NodeJS.Timeout | undefined;
    const entry: { result?: Resolution; done: Promise<void> } = { done: Promise.resolve() };
    let started: Promise<Resolution>;
    try {
      started = this.#resolver.resolveDetailed(cgroupId, pid);
    } catch (err) {
      started = Promise.reject(err);
    }
    const resolution = started.then(
      (r) => {
        entry.result = r;
      },
      (err: unknown) => {
        entry.result = { status: 'unknown', reason: errorText(err) };
      },
    );
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        if (entry.result === undefined) this.stats.timedOut++;
        resolve();
      }, this.#waitMs);
    });
    entry.done = Promise.race([resolution, timeout]).finally(() => clearTimeout(timer));
    void resolution.finally(() => {
      clearTimeout(timer);
      if (this.#inflight.get(key) === entry) this.#inflight.delete(key);
    });
    this.#inflight.set(key, entry);
    return entry;
  }

  #prepare<T extends EnrichableItem>(items: readonly T[]): PendingBatch<T> {
    const entries = new Map<string, Entry>();
    for (const it of items) {
      const key = this.#key(it.cgroupId, it.pid);
      if (entries.has(key)) continue;
      if (this.#peek(it.cgroupId, it.pid) !== undefined) continue;
      entries.set(key, this.#entry(key, it.cgroupId, it.pid));
    }
    const batch: PendingBatch<T> = {
      items,
      size: items.length,
      entries,
      settled: entries.size === 0,
      ready: Promise.resolve(),
    };
    if (!batch.settled) {
      (batch as { ready: Promise<void> }).ready = Promise.all([...entries.values()].map((e) => e.done)).then(
        () => {
          batch.settled = true;
        },
      );
    }
    return batch;
  }

  /**
   * The resolver's cache-only answer. A resolver that throws (a tracker
   * closed while records were still in flight) never stops the pipeline:
   * the record goes out `unknown`, saying why.
   */
  #peek(cgroupId: bigint, pid: number | undefined): Resolution | undefined {
    try {
      return this.#resolver.peek(cgroupId, pid);
    } catch (err) {
      return { status: 'unknown', reason: `container attribution failed: ${errorText(err)}` };
    }
  }

  #pathOf(cgroupId: bigint, pid: number | undefined): string | undefined {
    try {
      return this.#resolver.cgroupPathOf?.(cgroupId, pid);
    } catch {
      return undefined;
    }
  }

  #attach<T extends EnrichableItem>(it: T, entries: Map<string, Entry>): Enriched<T> {
    let r = entries.get(this.#key(it.cgroupId, it.pid))?.result ?? this.#peek(it.cgroupId, it.pid);
    if (r === undefined) {
      const path = this.#pathOf(it.cgroupId, it.pid);
      const reason = `container runtime did not answer within ${this.#waitMs} ms`;
      r =
        path === undefined ? { status: 'unknown', reason } : { status: 'unknown', cgroupPath: path, reason };
    }
    this.stats[r.status]++;
    return { ...it, enrichment: r };
  }

  /**
   * Enrich a stream of batches. Order is kept; no record is dropped. Closing
   * the returned iterator (`return()`, `break`) closes the source.
   * A source error is rethrown after the batches read before it are out.
   */
  async *run<T extends EnrichableItem>(
    source: AsyncIterable<readonly T[]>,
  ): AsyncGenerator<Enriched<T>[], void, undefined> {
    const prepare = (items: readonly T[]) => this.#prepare(items);
    for await (const { batch, forced } of releaseInOrder(source, prepare, this.#maxPending)) {
      if (forced) this.stats.forcedFlushes++;
      this.stats.batches++;
      this.stats.items += batch.items.length;
      yield batch.items.map((x) => this.#attach(x, batch.entries));
    }
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
