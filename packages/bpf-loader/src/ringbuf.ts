import type { NativeRingHandle } from './binding.js';
import { optional, requireInt, requireOptions } from './validate.js';

/** How a ring buffer is drained. */
export interface RingBufferOptions {
  /** Drain the ring at least this often, in ms (1..60000; default 10). The bound on delivery latency when producers submit with BPF_RB_NO_WAKEUP. */
  latencyMs?: number;
  /** Records per batch, at most (1..1048576; default 8192). */
  maxBatchRecords?: number;
  /** Batches queued in JS before draining pauses (1..65536; default 64). While paused the kernel ring fills and producers' reserves fail (counted BPF-side). */
  highWaterMark?: number;
}

/** Records drained from the ring in one go, copied out of the ring into one Buffer. */
export interface RecordBatch {
  readonly count: number;
  readonly data: Buffer;
  /** count+1 entries: record i is data.subarray(offsets[i], offsets[i+1]). */
  readonly offsets: Uint32Array;
  record(i: number): Buffer;
  [Symbol.iterator](): IterableIterator<Buffer>;
}

/** Reader counters. `paused` counts the times draining paused for backpressure. */
export interface RingBufferStats {
  batches: number;
  records: number;
  bytes: number;
  paused: number;
}

class Batch implements RecordBatch {
  readonly count: number;
  readonly data: Buffer;
  readonly offsets: Uint32Array;

  constructor(data: Buffer, offsets: Uint32Array, count: number) {
    this.data = data;
    this.offsets = offsets;
    this.count = count;
  }

  record(i: number): Buffer {
    if (!Number.isInteger(i) || i < 0 || i >= this.count) {
      throw new RangeError(`record index must be an integer from 0 to ${this.count - 1}, got ${i}`);
    }
    return this.data.subarray(this.offsets[i]!, this.offsets[i + 1]!);
  }

  *[Symbol.iterator](): IterableIterator<Buffer> {
    for (let i = 0; i < this.count; i++) yield this.data.subarray(this.offsets[i]!, this.offsets[i + 1]!);
  }
}

/** Builds a batch from raw parts; exported for decoders' tests. */
export function makeRecordBatch(data: Buffer, offsets: Uint32Array, count: number): RecordBatch {
  if (offsets.length !== count + 1) throw new RangeError(`offsets must have count+1 = ${count + 1} entries`);
  return new Batch(data, offsets, count);
}

export interface RingOptionsResolved {
  latencyMs: number;
  maxBatchRecords: number;
  highWaterMark: number;
}

export function resolveRingOptions(opts: unknown): RingOptionsResolved {
  const o = requireOptions(opts, 'ring buffer options', ['latencyMs', 'maxBatchRecords', 'highWaterMark']);
  return {
    latencyMs: optional(o, 'latencyMs', (v, w) => requireInt(v, w, 1, 60_000), 'options') ?? 10,
    maxBatchRecords:
      optional(o, 'maxBatchRecords', (v, w) => requireInt(v, w, 1, 1 << 20), 'options') ?? 8192,
    highWaterMark: optional(o, 'highWaterMark', (v, w) => requireInt(v, w, 1, 65_536), 'options') ?? 64,
  };
}

type Opener = (onBatch: (data: Buffer, offsets: Uint32Array, count: number) => void) => NativeRingHandle;

/**
 * Reads a BPF ring buffer map as an async iterator of batches. The native
 * side drains on a timer (latencyMs), on epoll readiness and, while batches
 * come back full, on every event-loop turn; each batch is one JS call.
 *
 * Contract: close() resolves a pending read() with null; read() after
 * close() returns null; close() twice is harmless; the iterator's return()
 * and Symbol.asyncDispose close the reader. An open reader keeps the event
 * loop alive, like a socket.
 */
export class RingBufferReader implements AsyncIterable<RecordBatch>, AsyncDisposable {
  /** The map this reader drains. */
  readonly mapName: string;
  readonly #native: NativeRingHandle;
  readonly #queue: RecordBatch[] = [];
  readonly #waiters: Array<(b: RecordBatch | null) => void> = [];
  readonly #hwm: number;
  readonly #onClose: (r: RingBufferReader) => void;
  #paused = false;
  #closed = false;
  readonly #stats: RingBufferStats = { batches: 0, records: 0, bytes: 0, paused: 0 };

  /** @internal Use BpfObject.ringBuffer(). */
  constructor(
    mapName: string,
    opts: RingOptionsResolved,
    open: Opener,
    onClose: (r: RingBufferReader) => void,
  ) {
    this.mapName = mapName;
    this.#hwm = opts.highWaterMark;
    this.#onClose = onClose;
    this.#native = open((data, offsets, count) => this.#push(new Batch(data, offsets, count)));
  }

  #push(batch: RecordBatch): void {
    if (this.#closed) return;
    this.#stats.batches++;
    this.#stats.records += batch.count;
    this.#stats.bytes += batch.data.length;
    const waiter = this.#waiters.shift();
    if (waiter) {
      waiter(batch);
      return;
    }
    this.#queue.push(batch);
    if (!this.#paused && this.#queue.length >= this.#hwm) {
      this.#paused = true;
      this.#stats.paused++;
      this.#native.pause();
    }
  }

  /** True once closed (by close(), the iterator's return(), dispose, or closing the object). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Counters since open. */
  get stats(): Readonly<RingBufferStats> {
    return { ...this.#stats };
  }

  /** True while draining is paused because highWaterMark batches wait in JS. */
  get paused(): boolean {
    return this.#paused;
  }

  /** The next batch, or null once the reader is closed. */
  read(): Promise<RecordBatch | null> {
    const batch = this.#queue.shift();
    if (batch !== undefined) {
      if (this.#paused && this.#queue.length < this.#hwm) {
        this.#paused = false;
        this.#native.resume();
      }
      return Promise.resolve(batch);
    }
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** A batch already queued, without waiting; undefined when none is (or the reader is closed). */
  tryRead(): RecordBatch | undefined {
    if (this.#closed || this.#queue.length === 0) return undefined;
    const batch = this.#queue.shift()!;
    if (this.#paused && this.#queue.length < this.#hwm) {
      this.#paused = false;
      this.#native.resume();
    }
    return batch;
  }

  /** Drains the ring now, synchronously, into the queue; returns the records drained. */
  drainNow(): number {
    if (this.#closed) return 0;
    return this.#native.drain();
  }

  /** Each record of each batch, in ring order. Ending the loop early closes the reader. */
  async *records(): AsyncIterableIterator<Buffer> {
    try {
      for (;;) {
        const batch = await this.read();
        if (batch === null) return;
        yield* batch;
      }
    } finally {
      this.close();
    }
  }

  /** Stops draining, frees the ring, resolves pending reads with null. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.length = 0;
    this.#native.close();
    for (const w of this.#waiters.splice(0)) w(null);
    this.#onClose(this);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<RecordBatch> {
    const iterator: AsyncIterableIterator<RecordBatch> = {
      next: async () => {
        const batch = await this.read();
        return batch === null ? { done: true, value: undefined } : { done: false, value: batch };
      },
      return: async () => {
        this.close();
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}
