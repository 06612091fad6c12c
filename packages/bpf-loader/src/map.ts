import type { NativeMapInfo, NativeObjectHandle } from './binding.js';
import { BpfError } from './errors.js';
import { requireBuffer, requireString } from './validate.js';

/** How an update treats an existing key. */
export type MapUpdateFlag = 'any' | 'noexist' | 'exist';

const FLAGS: Record<MapUpdateFlag, number> = { any: 0, noexist: 1, exist: 2 };

const EINVAL = 22;
const ENOTSUPP = 524;
const EOPNOTSUPP = 95;

/** Static description of a map, as in the object file (after any resize). */
export interface MapInfo {
  readonly name: string;
  /** libbpf's name for the type: 'hash', 'array', 'percpu_array', 'ringbuf', … */
  readonly type: string;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
}

/**
 * A loaded map, with Buffer keys and values. Per-CPU maps take and return
 * `numPossibleCpus() * roundup(valueSize, 8)` bytes per value
 * ({@link BpfMap.valueBytes}). Throws BpfError 'MAP' (or 'CLOSED').
 */
export interface BpfMap extends MapInfo {
  /** Bytes of one value as lookup returns it and update takes it. */
  readonly valueBytes: number;
  readonly perCpu: boolean;
  /** The value at key, or undefined when the key is absent. */
  lookup(key: Buffer): Buffer | undefined;
  update(key: Buffer, value: Buffer, flags?: MapUpdateFlag): void;
  /** True when the key existed. */
  delete(key: Buffer): boolean;
  keys(): IterableIterator<Buffer>;
  entries(): IterableIterator<[Buffer, Buffer]>;
  /** Every entry, read in kernel batches (falls back to iteration where the map type has no batch ops). */
  lookupBatch(): Array<[Buffer, Buffer]>;
  /** Writes entries in one kernel call per batch; returns how many were written. */
  updateBatch(entries: ReadonlyArray<readonly [Buffer, Buffer]>, flags?: MapUpdateFlag): number;
  /** Deletes keys in one kernel call; returns how many were deleted. Every key must exist. */
  deleteBatch(keys: readonly Buffer[]): number;
  /** Splits a per-CPU value into one Buffer per CPU, each valueSize bytes. */
  perCpuValues(value: Buffer): Buffer[];
}

function isPerCpu(type: string): boolean {
  return type.startsWith('percpu_') || type.startsWith('lru_percpu_');
}

function noBatchSupport(err: unknown): boolean {
  return (
    err instanceof BpfError && (err.errno === EINVAL || err.errno === ENOTSUPP || err.errno === EOPNOTSUPP)
  );
}

export class BpfMapImpl implements BpfMap {
  readonly name: string;
  readonly type: string;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly valueBytes: number;
  readonly perCpu: boolean;
  readonly #handle: () => NativeObjectHandle;

  constructor(info: NativeMapInfo, cpus: number, handle: () => NativeObjectHandle) {
    this.name = info.name;
    this.type = info.type;
    this.keySize = info.keySize;
    this.valueSize = info.valueSize;
    this.maxEntries = info.maxEntries;
    this.perCpu = isPerCpu(info.type);
    this.valueBytes = this.perCpu ? Math.ceil(info.valueSize / 8) * 8 * cpus : info.valueSize;
    this.#handle = handle;
  }

  #key(key: unknown): Buffer {
    return requireBuffer(key, `key for map '${this.name}'`, this.keySize);
  }

  #value(value: unknown): Buffer {
    return requireBuffer(value, `value for map '${this.name}'`, this.valueBytes);
  }

  #flags(flags: unknown): number {
    if (flags === undefined) return 0;
    const f = typeof flags === 'string' ? FLAGS[flags as MapUpdateFlag] : undefined;
    if (f === undefined) {
      throw new TypeError(`flags must be 'any', 'noexist' or 'exist', got ${JSON.stringify(flags)}`);
    }
    return f;
  }

  lookup(key: Buffer): Buffer | undefined {
    return this.#handle().mapLookup(this.name, this.#key(key));
  }

  update(key: Buffer, value: Buffer, flags?: MapUpdateFlag): void {
    this.#handle().mapUpdate(this.name, this.#key(key), this.#value(value), this.#flags(flags));
  }

  delete(key: Buffer): boolean {
    return this.#handle().mapDelete(this.name, this.#key(key));
  }

  *keys(): IterableIterator<Buffer> {
    let cur: Buffer | null = null;
    for (;;) {
      const next: Buffer | null = this.#handle().mapNextKey(this.name, cur);
      if (next === null) return;
      yield next;
      cur = next;
    }
  }

  *entries(): IterableIterator<[Buffer, Buffer]> {
    for (const key of this.keys()) {
      const value = this.lookup(key);
      // A key deleted between get_next_key and lookup (by the BPF side) is skipped.
      if (value !== undefined) yield [key, value];
    }
  }

  lookupBatch(): Array<[Buffer, Buffer]> {
    let raw: { keys: Buffer; values: Buffer; count: number };
    try {
      raw = this.#handle().mapLookupBatch(this.name);
    } catch (err) {
      if (noBatchSupport(err)) return [...this.entries()];
      throw err;
    }
    const out: Array<[Buffer, Buffer]> = [];
    for (let i = 0; i < raw.count; i++) {
      out.push([
        raw.keys.subarray(i * this.keySize, (i + 1) * this.keySize),
        raw.values.subarray(i * this.valueBytes, (i + 1) * this.valueBytes),
      ]);
    }
    return out;
  }

  updateBatch(entries: ReadonlyArray<readonly [Buffer, Buffer]>, flags?: MapUpdateFlag): number {
    if (!Array.isArray(entries)) throw new TypeError('entries must be an array of [key, value] pairs');
    if (entries.length === 0) return 0;
    const f = this.#flags(flags);
    const keys = Buffer.alloc(entries.length * this.keySize);
    const values = Buffer.alloc(entries.length * this.valueBytes);
    entries.forEach((pair, i) => {
      if (!Array.isArray(pair) || pair.length !== 2)
        throw new TypeError(`entries[${i}] must be a [key, value] pair`);
      this.#key(pair[0]).copy(keys, i * this.keySize);
      this.#value(pair[1]).copy(values, i * this.valueBytes);
    });
    return this.#handle().mapUpdateBatch(this.name, keys, values, entries.length, f);
  }

  deleteBatch(keys: readonly Buffer[]): number {
    if (!Array.isArray(keys)) throw new TypeError('keys must be an array of Buffers');
    if (keys.length === 0) return 0;
    const buf = Buffer.alloc(keys.length * this.keySize);
    keys.forEach((k, i) => {
      this.#key(k).copy(buf, i * this.keySize);
    });
    return this.#handle().mapDeleteBatch(this.name, buf, keys.length);
  }

  perCpuValues(value: Buffer): Buffer[] {
    if (!this.perCpu) throw new TypeError(`map '${this.name}' (${this.type}) is not per-CPU`);
    this.#value(value);
    const stride = Math.ceil(this.valueSize / 8) * 8;
    const out: Buffer[] = [];
    for (let off = 0; off < value.length; off += stride) out.push(value.subarray(off, off + this.valueSize));
    return out;
  }
}

export function checkMapName(name: unknown): string {
  return requireString(name, 'map name');
}
