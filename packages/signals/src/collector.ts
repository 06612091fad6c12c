import { createHash } from 'node:crypto';
import {
  type EvidenceWriter,
  type FsyncPolicy,
  openChunkWriter,
  type SealedChunk,
  type Signer,
  type Witness,
  type WriterStatus,
} from '@stellaops/evidence-chain';
import { canonicalize, encodeRecord } from '@stellaops/ndjson';
import { EventEmitter } from 'eventemitter3';
import { type Collection, type CollectOptions, collect, type ProbeAccount } from './collect.js';
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
}

/** What `stella signals status` shows. */
export interface CollectorSnapshot {
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
  #recent: Array<[number, bigint]> = [];

  private constructor(dir: string, collection: Collection, writer: EvidenceWriter) {
    super();
    this.#dir = dir;
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
    const collection = collect(options.collect ?? {});
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
      const collector = new Collector(options.dir, collection, writer);
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
    try {
      for await (const rec of this.#collection) {
        const line = this.#collection.lineOf(rec) ?? encodeRecord(rec);
        await this.#append(line, {
          type: rec.type,
          wallNs: BigInt(rec.wall_ns),
          monoNs: BigInt(rec.mono_ns),
          seq: BigInt(rec.seq),
        });
        if (rec.type === 'collector_status') {
          this.#writer.updateStatus({ probes: rec.probes, wallNs: BigInt(rec.wall_ns) });
        }
      }
    } catch (e) {
      this.#lastError = (e as Error).message;
      this.emit('error', e as Error);
      await this.#collection.close();
      throw e;
    } finally {
      await this.#writer.close();
      await this.#status?.close();
    }
  }

  /**
   * Append one line; while the disk is full (the writer paused on ENOSPC,
   * nothing partial written), retry every second instead of giving up, and
   * say so once. Records keep queueing in memory meanwhile.
   */
  async #append(
    line: string,
    info: { type: string; wallNs: bigint; monoNs: bigint; seq: bigint },
  ): Promise<void> {
    for (let warned = false, tries = 0; ; tries++) {
      try {
        this.#writer.append(line, info);
        if (warned) this.emit('warning', 'disk space is back: writing resumed');
        return;
      } catch (e) {
        // Stopping with the disk still full: give up; the next start recovers the chunk.
        if ((e as { code?: string }).code !== 'DISK_FULL' || (this.#stopping && tries >= 5)) throw e;
        this.#lastError = (e as Error).message;
        if (!warned) this.emit('warning', `${(e as Error).message}; retrying every second`);
        warned = true;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
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
   * Stop: detach the probes, drain, write the final collector_status, seal
   * the last chunk and the end-of-stream statement. Resolves when done.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#collection.close();
    await this.done.catch(() => undefined);
  }
}

/**
 * `sha256:<hex>` of the RFC 8785 form of a filter configuration (bigints as
 * decimal strings): what every sealed statement records as the filters used.
 */
export function filterConfigDigest(config: unknown): string {
  const plain = JSON.parse(JSON.stringify(config, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
  return `sha256:${createHash('sha256').update(canonicalize(plain)).digest('hex')}`;
}
