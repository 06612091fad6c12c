/**
 * A bounded map that forgets its least recently used entry first, with an
 * optional per-entry expiry. Insertion order of a JS Map is the recency order:
 * a hit deletes and re-inserts the key.
 */
export class LruCache<K, V> {
  readonly #max: number;
  readonly #map = new Map<K, { value: V; expiresAt: number }>();
  #evictions = 0;

  /** @param maxEntries at least 1; older entries are evicted past it. */
  constructor(maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(`LruCache maxEntries must be an integer >= 1, got ${String(maxEntries)}`);
    }
    this.#max = maxEntries;
  }

  /** The value, refreshed as most recent; undefined when absent or expired at `now`. */
  get(key: K, now = Date.now()): V | undefined {
    const e = this.#map.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt <= now) {
      this.#map.delete(key);
      return undefined;
    }
    this.#map.delete(key);
    this.#map.set(key, e);
    return e.value;
  }

  /** The value without touching recency or expiry. */
  peek(key: K): V | undefined {
    return this.#map.get(key)?.value;
  }

  /** Store `value`; it expires at `expiresAt` (ms since epoch), never by default. */
  set(key: K, value: V, expiresAt = Number.POSITIVE_INFINITY): void {
    this.#map.delete(key);
    this.#map.set(key, { value, expiresAt });
    while (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next();
      if (oldest.done) break;
      this.#map.delete(oldest.value);
      this.#evictions++;
    }
  }

  /** Give an existing entry an expiry (e.g. container exited: keep it for late records). */
  expire(key: K, expiresAt: number): void {
    const e = this.#map.get(key);
    if (e !== undefined) e.expiresAt = Math.min(e.expiresAt, expiresAt);
  }

  /** Remove an entry; true when it was present. */
  delete(key: K): boolean {
    return this.#map.delete(key);
  }

  /** Entries in recency order, oldest first (expired ones included until touched). */
  *entries(): IterableIterator<[K, V]> {
    for (const [k, e] of this.#map) yield [k, e.value];
  }

  /** Entries held now (expired ones included until touched). */
  get size(): number {
    return this.#map.size;
  }

  /** How many entries were dropped to stay within `maxEntries`. */
  get evictions(): number {
    return this.#evictions;
  }

  /** Remove every entry. */
  clear(): void {
    this.#map.clear();
  }
}
