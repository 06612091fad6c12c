import { describe, expect, it } from 'vitest';
import { type ReleasedBatch, releaseInOrder, type SettlingBatch } from './ordered.js';

interface Held extends SettlingBatch {
  readonly id: string;
  settled: boolean;
  settle(): void;
}

/** A batch that settles when the test says so (or at once). */
function held(id: string, size: number, settled = false): Held {
  let settle = (): void => undefined;
  const b: Held = {
    id,
    size,
    settled,
    ready: Promise.resolve(),
    settle: () => settle(),
  };
  if (!settled) {
    (b as { ready: Promise<void> }).ready = new Promise<void>((r) => {
      settle = () => {
        b.settled = true;
        r();
      };
    });
  }
  return b;
}

const tick = () => new Promise<void>((r) => setImmediate(r));

async function* from<T>(values: readonly T[], error?: Error): AsyncGenerator<T> {
  for (const v of values) yield v;
  if (error) throw error;
}

describe('releaseInOrder', () => {
  it('keeps source order when a later batch settles first', async () => {
    const a = held('a', 1);
    const b = held('b', 1);
    const out = releaseInOrder(from([a, b]), (x) => x, 100);
    const first = out.next();
    await tick();
    b.settle();
    await tick();
    let got: string | undefined;
    void first.then((r) => {
      got = r.done ? undefined : r.value.batch.id;
    });
    await tick();
    expect(got).toBeUndefined(); // b is ready, but a is not: nothing goes out
    a.settle();
    expect((await first).value).toEqual({ batch: a, forced: false });
    expect((await out.next()).value).toEqual({ batch: b, forced: false });
    expect((await out.next()).done).toBe(true);
  });

  it('stops reading past maxPendingItems and forces the oldest batch out', async () => {
    const read: string[] = [];
    const batches = [held('a', 2), held('b', 2), held('c', 2), held('d', 2)];
    async function* source(): AsyncGenerator<Held> {
      for (const b of batches) {
        read.push(b.id);
        yield b;
      }
    }
    const out = releaseInOrder(source(), (x) => x, 3);
    // a and b hold 4 > 3 records: a goes out unsettled, which lets c in.
    expect((await out.next()).value).toEqual({ batch: batches[0], forced: true });
    for (let i = 0; i < 5; i++) await tick();
    // b and c hold 4 > 3 and the consumer does not pull: d stays upstream.
    expect(read).toEqual(['a', 'b', 'c']);
    batches[1]?.settle();
    expect((await out.next()).value).toEqual({ batch: batches[1], forced: false });
    for (let i = 0; i < 5; i++) await tick();
    expect(read).toEqual(['a', 'b', 'c', 'd']);
    batches[2]?.settle();
    batches[3]?.settle();
    expect(((await out.next()).value as ReleasedBatch<Held>).batch.id).toBe('c');
    expect(((await out.next()).value as ReleasedBatch<Held>).batch.id).toBe('d');
    expect((await out.next()).done).toBe(true);
  });

  it('rethrows a source error after the batches read before it', async () => {
    const boom = new Error('boom');
    const out = releaseInOrder(from([held('a', 1, true), held('b', 1, true)], boom), (x) => x, 100);
    const ids: string[] = [];
    await expect(
      (async () => {
        for await (const r of out) ids.push(r.batch.id);
      })(),
    ).rejects.toBe(boom);
    expect(ids).toEqual(['a', 'b']);
  });

  it('closes the source when the consumer stops early', async () => {
    let closed = false;
    async function* source(): AsyncGenerator<Held> {
      try {
        for (let i = 0; ; i++) yield held(String(i), 1, true);
      } finally {
        closed = true;
      }
    }
    for await (const r of releaseInOrder(source(), (x) => x, 4)) {
      expect(r.batch.id).toBe('0');
      break;
    }
    await tick();
    expect(closed).toBe(true);
  });
});
