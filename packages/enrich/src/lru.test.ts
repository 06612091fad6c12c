import { describe, expect, it } from 'vitest';
import { LruCache } from './lru.js';

describe('LruCache', () => {
  it('evicts the least recently used entry past maxEntries', () => {
    const c = new LruCache<string, number>(2);
    c.set('a', 1);
    c.set('b', 2);
    expect(c.get('a')).toBe(1); // a is now most recent
    c.set('c', 3);
    expect(c.get('b')).toBeUndefined();
    expect(c.get('a')).toBe(1);
    expect(c.get('c')).toBe(3);
    expect(c.evictions).toBe(1);
    expect(c.size).toBe(2);
  });

  it('forgets an entry at its expiry and expire() only shortens', () => {
    const c = new LruCache<string, number>(4);
    c.set('a', 1, 1000);
    expect(c.get('a', 999)).toBe(1);
    expect(c.get('a', 1000)).toBeUndefined();
    c.set('b', 2);
    c.expire('b', 50);
    c.expire('b', 5000);
    expect(c.get('b', 49)).toBe(2);
    expect(c.get('b', 50)).toBeUndefined();
  });

  it('rejects a bound below 1', () => {
    expect(() => new LruCache(0)).toThrow(RangeError);
  });
});
