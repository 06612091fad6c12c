import { createHash } from 'node:crypto';
import {
  type AppendInfo,
  type EvidenceWriter,
  type FsyncPolicy,
  openChunkWriter,
  type SealedChunk,
  type Signer,
  type Witness,
  type WriterStatus,
} from '@stellaops/evidence-chain';
import { type CollectorStatusRecord, canonicalize, type EvidenceRecord } from '@stellaops/ndjson';
import { EventEmitter } from 'eventemitter3';
import {
  type Collection,
  type CollectionState,
  type CollectOptions,
  collect,
  type EvidenceBatch,
  type ProbeAccount,
} from './collect.js';
import { CollectError } from './errors.js';
import { serveStatus } from './status-socket.js';
import { VERSION } from './version.js';

/** Options of {@link Collector.start}. */
export interface CollectorOptions {
  /** Output directory: chunks, bundles, the spool and the status socket. */
  dir: string;
  /** What to collect (probes, filters, dedup, ring, enrichment). */
  collect?: CollectOptions;
  /** Seals every chunk. */
  signer: Signer;
  /** Rotation limits; spec defaults 100 MB and 1 h. */
  rotation?: { maxSizeBytes?: number; maxAgeMs?: number };
  fsync?: FsyncPolicy;
  /** Transparency logs / timestamp authorities, submitted after sealing. */
  witnesses?: Witness[];
  /**
   * The filter configuration as the operator wrote it; its canonical digest
   * goes into every statement so a verifier knows what was (not) looked for.
   */
  filterConfig?: unknown;
  /** Serve `stella signals status` on `<dir>/collector.sock` (default true). */
  statusSocket?: boolean;
  /**
   * The whole stop, ms (default 20000, inside Kubernetes' default 30 s grace
   * period): drain (at most `collect.drainTimeoutMs`, default 5000), final
   * status, seal of the last chunk and the end-of-stream statement, witness
   * submissions (at most 5000), detach. See {@link STOP_BUDGET_MS}.
   */
  stopTimeoutMs?: number;
}

/** Default budget of a whole stop, ms (docs/operator-runbook.md, "Stopping"). */
export const STOP_BUDGET_MS = 20_000;

/** What `stella signals status` shows. */
export interface CollectorSnapshot {
  /** `running`, or `stopping` from the stop request until everything is sealed. */
  state: CollectionState;
  pid: number;
  version: string;
  startedAt: string;
  uptimeSeconds: number;
  dir: string;
  records: string;
  recordsPerSecond: number;
  probes: ProbeAccount[];
  writer: WriterStatus;
  containers: {
    tracked: number;
    runtimes: Array<{ runtime: string; socket: string; listed: boolean; error?: string }>;
  };
  lastError: string | null;
}

/** Events of a running {@link Collector}. */
export interface CollectorEvents {
  sealed: [SealedChunk];
  drop: [{ probe: string; newlyLost: bigint; totalLost: bigint }];
  warning: [string];
  error: [Error];
}

/**
 * The long-running collector: `collect()` → canonical NDJSON → signed,
 * hash-chained chunks in `dir`, with a status socket. This is what
 * `stella signals start` runs.
 */
export class Collector extends EventEmitter<CollectorEvents> {
  /** Settles when the collector has stopped (after stop(), or on a fatal error). */
  readonly done: Promise<void>;

  #collection: Collection;
  #writer: EvidenceWriter;
  #status: { close(): Promise<void> } | undefined;
  #started = Date.now();
  #dir: string;
  #lastError: string | null = null;
  #stopping = false;
  /** #run is over: sealed (or given up) and detached. */
  #finished = false;
  #stopDeadline = Number.POSITIVE_INFINITY;
  #stopBudgetMs: number;
  #fast = false;
  /** Wakes an append that waits for disk space (a stop does not wait a full second). */
  #wakeAppend: (() => void) | undefined;
  /** The disk stayed full during the stop: what is left is counted, not written. */
  #unwritable: Error | undefined;
  #recent: Array<[number, bigint]> = [];

  private constructor(dir: string, collection: Collection, writer: EvidenceWriter, stopBudgetMs: number) {
    super();
    this.#dir = dir;
    this.#stopBudgetMs = stopBudgetMs;
    this.#collection = collection;
    this.#writer = writer;
    writer.on('sealed', (s) => this.emit('sealed', s));
    writer.on('error', (e) => {
      this.#lastError = e.message;
      this.emit('warning', e.message);
    });
    writer.on('paused', (e) => {
      this.#lastError = e.message;
      this.emit('warning', `writing paused: ${e.message}`);
    });
    collection.on('drop', (d) => this.emit('drop', d));
    collection.on('warning', (w) => this.emit('warning', w));
    this.done = this.#run();
  }

  /**
   * Attach the probes, recover and open the chain in `dir`, and start
   * writing. Rejects (with nothing left running) when the probes cannot
   * attach, the directory is unusable, or another collector owns it.
   */
  static async start(options: CollectorOptions): Promise<Collector> {
    const budget = options.stopTimeoutMs ?? STOP_BUDGET_MS;
    if (!(Number.isFinite(budget) && budget >= 1000)) {
      throw new CollectError('USAGE', `stopTimeoutMs must be at least 1000 ms (got ${String(budget)})`, {
        hint: 'the stop budget covers drain, final status, seal and detach; keep it under the grace period',
      });
    }
    const collection = collect({
      ...options.collect,
      // The drain is part of the stop budget: at most a quarter of it.
      drainTimeoutMs: Math.min(options.collect?.drainTimeoutMs ?? 5000, Math.floor(budget / 4)),
    });
    await collection.ready;
    let writer: EvidenceWriter | undefined;
    let status: { close(): Promise<void> } | undefined;
    try {
      writer = await openChunkWriter({
        dir: options.dir,
        signer: options.signer,
        ...(options.rotation ? { rotation: options.rotation } : {}),
        ...(options.fsync ? { fsync: options.fsync } : {}),
        ...(options.witnesses ? { witnesses: options.witnesses } : {}),
        meta: {
          hostId: collection.host.hostId,
          kernelRelease: collection.host.kernelRelease,
          btfId: collection.host.btfId ?? 'none',
          collectorVersion: `@stellaops/signals@${VERSION}`,
          filterConfigDigest: filterConfigDigest(options.filterConfig ?? options.collect?.filters ?? {}),
        },
      });
      const collector = new Collector(
        options.dir,
        collection,
        writer,
        options.stopTimeoutMs ?? STOP_BUDGET_MS,
      );
      if (options.statusSocket !== false) {
        status = await serveStatus(options.dir, () => collector.status());
        collector.#status = status;
      }
      return collector;
    } catch (e) {
      await collection.close();
      await writer?.close().catch(() => undefined);
      await status?.close();
      throw e;
    }
  }

  async #run(): Promise<void> {
    let failure: { error: Error } | undefined;
    try {
      // Each batch is on disk (or counted) before the next is asked for: its bytes need no copy.
      for await (const batch of this.#collection.batches({ reuse: true })) {
        const types = batch.types;
        for (let i = 0; i < types.length; i++) {
          if (types[i] === 'collector_status') {
            const rec = batch.recordAt(i) as CollectorStatusRecord;
            // The end-of-stream statement carries the latest totals even when
            // the disk is too full for the line itself.
            this.#writer.updateStatus({ probes: rec.probes, wallNs: BigInt(rec.wall_ns) });
          }
        }
        if (this.#unwritable) {
          this.#collection.discardBatch(batch);
          continue;
        }
        // Synchronous unless the disk is full (then it waits and retries).
        const waiting = this.#appendBatch(batch);
        if (waiting) await waiting;
      }
    } catch (e) {
      failure = { error: e as Error };
      this.#lastError = (e as Error).message;
      this.emit('error', e as Error);
      await this.#collection.close({ fast: true });
    }
    try {
      const left = Math.max(1000, this.#stopDeadline - Date.now());
      await this.#writer.close({
        reason: failure ? 'error' : this.#unwritable ? 'disk_full' : 'stop',
        // Seals first; witnesses get what is left (at most 5 s), the rest
        // stay in the spool for the next run.
        sealTimeoutMs: Number.isFinite(left) ? left : 30_000,
        witnessTimeoutMs: this.#fast ? 0 : Math.min(5000, Number.isFinite(left) ? left / 4 : 5000),
      });
    } catch (e) {
      if (failure) throw failure.error;
      if ((e as { code?: string }).code === 'DISK_FULL' || this.#unwritable) {
        throw new CollectError('DISK_FULL', `stopped with the disk full: ${(e as Error).message}`, {
          cause: e,
          hint: `free space on the filesystem of ${this.#dir}; the next start seals what is left as recovered`,
        });
      }
      throw e;
    } finally {
      this.#finished = true;
      await this.#status?.close();
    }
    if (failure) throw failure.error;
    if (this.#unwritable) {
      throw new CollectError(
        'DISK_FULL',
        `stopped with the disk full: the records still in flight and the final status line could not be written (the end-of-stream statement, reason disk_full, carries the final counts, those records as lost); the chunks on disk of ${this.#dir} are sealed`,
        {
          cause: this.#unwritable,
          hint: `free space on the filesystem of ${this.#dir} before the next start`,
        },
      );
    }
  }

  /**
   * Append a batch with one write and one hash update (per chunk it lands
   * in). While the disk is full (the writer paused on ENOSPC, nothing
   * partial written) retry every second from the first line not written,
   * and say so once; the returned promise settles when the batch is on disk.
   * Meanwhile the record loop waits and the backlog stays bounded upstream
   * (the pipeline stops reading the rings, the kernel counts what it cannot
   * hold as lost). A stop ends the wait: a stop on a still-full disk gives
   * up at once, counts the rest of the batch as lost and remembers why.
   */
  #appendBatch(batch: EvidenceBatch): Promise<void> | undefined {
    let from = 0;
    const attempt = (): boolean => {
      try {
        this.#writeLines(batch, from);
        return true;
      } catch (e) {
        if ((e as { code?: string }).code !== 'DISK_FULL') throw e;
        from += (e as { written?: number }).written ?? 0;
        if (this.#stopping) {
          // Stopping with the disk still full: write nothing more, count the
          // rest as lost (so the final status adds up), and seal what is on
          // disk within the budget with the reserve kept for it.
          this.#unwritable = e as Error;
          this.#collection.discardBatch(batch, from);
          return true;
        }
        this.#lastError = (e as Error).message;
        return false;
      }
    };
    if (attempt()) return undefined;
    return (async () => {
      this.emit('warning', `${this.#lastError}; retrying every second`);
      for (;;) {
        await new Promise<void>((r) => {
          const t = setTimeout(r, 1000);
          this.#wakeAppend = () => {
            clearTimeout(t);
            r();
          };
        });
        this.#wakeAppend = undefined;
        if (attempt()) {
          if (!this.#unwritable) this.emit('warning', 'disk space is back: writing resumed');
          return;
        }
      }
    })();
  }

  /** Lines `from`.. of a batch (already back to back in its bytes) into the writer in one call. */
  #writeLines(batch: EvidenceBatch, from: number): void {
    const { data, ends, types } = batch;
    const count = ends.length - from;
    if (count <= 0) return;
    const base = from === 0 ? 0 : ends[from - 1]!;
    this.#writer.appendBatch({
      data: data.subarray(base, ends[ends.length - 1]!),
      count,
      ends: base === 0 ? ends : ends.slice(from).map((e) => e - base),
      types: from === 0 ? types : types.slice(from),
      info: (i) => appendInfo(batch.recordAt(from + i)),
    });
  }

  /** What opening the directory recovered from a previous run that did not stop cleanly. */
  get recovery(): EvidenceWriter['recovery'] {
    return this.#writer.recovery;
  }

  /** A snapshot for status displays and the status socket. */
  status(): CollectorSnapshot {
    const now = Date.now();
    const records = this.#collection.records;
    this.#recent.push([now, records]);
    while (this.#recent.length > 2 && now - this.#recent[0]![0] > 10_000) this.#recent.shift();
    const [t0, r0] = this.#recent[0]!;
    const tracker = this.#collection.tracker;
    return {
      // Stopping until everything is sealed, not just until the records are out.
      state: this.#finished
        ? 'stopped'
        : this.#stopping || this.#collection.state === 'stopped'
          ? 'stopping'
          : this.#collection.state,
      pid: process.pid,
      version: VERSION,
      startedAt: new Date(this.#started).toISOString(),
      uptimeSeconds: Math.round((now - this.#started) / 1000),
      dir: this.#dir,
      records: records.toString(),
      recordsPerSecond: now > t0 ? Math.round((Number(records - r0) * 1000) / (now - t0)) : 0,
      probes: this.#collection.accounts(),
      writer: this.#writer.status(),
      containers: {
        tracked: tracker?.stats().containers ?? 0,
        runtimes: (tracker?.status() ?? []).map((r) => ({
          runtime: r.runtime,
          socket: r.socket,
          listed: r.listed,
          ...(r.error ? { error: r.error } : {}),
        })),
      },
      lastError: this.#lastError,
    };
  }

  /**
   * Stop: drain, write the final collector_status, seal the last chunk and
   * the end-of-stream statement, detach; all within `stopTimeoutMs`.
   * Resolves when done; rejects (after sealing what it could) when the
   * collection died of an error or the disk stayed full (CollectError
   * `DISK_FULL`). Calling it again with `{ fast: true }` during a stop (a
   * second signal) skips what is left of the drain and the witness wait,
   * but still seals.
   */
  async stop(options: { fast?: boolean } = {}): Promise<void> {
    if (!this.#stopping) {
      this.#stopping = true;
      this.#stopDeadline = Date.now() + this.#stopBudgetMs;
    }
    if (options.fast) this.#fast = true;
    this.#wakeAppend?.();
    // The pipeline gets 60 % of the budget; the seals and witnesses the rest.
    const deadline = this.#stopDeadline - Math.round(this.#stopBudgetMs * 0.4);
    await this.#collection.close(options.fast ? { fast: true } : { deadline });
    await this.done;
  }
}

/** What the writer records of a record (read at chunk edges only). */
function appendInfo(rec: EvidenceRecord): AppendInfo {
  return { type: rec.type, wallNs: BigInt(rec.wall_ns), monoNs: BigInt(rec.mono_ns), seq: BigInt(rec.seq) };
}

/**
 * `sha256:<hex>` of the RFC 8785 form of a filter configuration (bigints as
 * decimal strings): what every sealed statement records as the filters used.
 */
export function filterConfigDigest(config: unknown): string {
  const plain = JSON.parse(JSON.stringify(config, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
  return `sha256:${createHash('sha256').update(canonicalize(plain)).digest('hex')}`;
}
