import { describe, expect, it } from 'vitest';
import type { NativeRingHandle } from './binding.js';
import { makeRecordBatch, RingBufferReader, resolveRingOptions } from './ringbuf.js';

describe('RecordBatch', () => {
  const batch = makeRecordBatch(Buffer.from('aabbbc'), Uint32Array.from([0, 2, 5, 6]), 3);

  it('slices records by offsets, by index and by iteration', () => {
    expect(batch.record(1).toString()).toBe('bbb');
    expect([...batch].map((b) => b.toString())).toEqual(['aa', 'bbb', 'c']);
    expect(() => batch.record(3)).toThrow(RangeError);
    expect(() => batch.record(-1)).toThrow(RangeError);
  });

  it('rejects offsets that do not have count+1 entries', () => {
    expect(() => makeRecordBatch(Buffer.alloc(1), Uint32Array.from([0]), 1)).toThrow(RangeError);
  });
});

describe('resolveRingOptions', () => {
  it('defaults and bounds', () => {
    expect(resolveRingOptions(undefined)).toEqual({
      latencyMs: 10,
      maxBatchRecords: 8192,
      highWaterMark: 64,
    });
    expect(resolveRingOptions({ latencyMs: 1, maxBatchRecords: 1, highWaterMark: 1 })).toEqual({
      latencyMs: 1,
      maxBatchRecords: 1,
      highWaterMark: 1,
    });
    expect(() => resolveRingOptions({ latencyMs: 60_001 })).toThrow(
      /options.latencyMs must be an integer from 1 to 60000, got 60001/,
    );
    expect(() => resolveRingOptions(null)).toThrow(TypeError);
    expect(() => resolveRingOptions({ highWaterMark: 0 })).toThrow(RangeError);
  });
});

// The queue and pause logic in isolation, against a recording stand-in for
// the native ring (named as such: the kernel path is covered in test/ringbuf.test.ts).
describe('RingBufferReader queue (stand-in native ring)', () => {
  function standIn() {
    const calls: string[] = [];
    let push: ((d: Buffer, o: Uint32Array, n: number) => void) | undefined;
    const handle: NativeRingHandle = {
      pause: () => calls.push('pause'),
      resume: () => calls.push('resume'),
      close: () => calls.push('close'),
      drain: () => 0,
    };
    const reader = new RingBufferReader(
      'events',
      { latencyMs: 10, maxBatchRecords: 10, highWaterMark: 2 },
      (cb) => {
        push = cb;
        return handle;
      },
      () => calls.push('onClose'),
    );
    const emit = (s: string) => push!(Buffer.from(s), Uint32Array.from([0, s.length]), 1);
    return { calls, reader, emit };
  }

  it('pauses at the high-water mark and resumes when the consumer catches up', async () => {
    const { calls, reader, emit } = standIn();
    emit('a');
    expect(calls).toEqual([]);
    emit('b');
    expect(calls).toEqual(['pause']);
    expect(reader.paused).toBe(true);
    expect((await reader.read())?.data.toString()).toBe('a');
    expect(calls).toEqual(['pause', 'resume']);
    expect(reader.stats).toEqual({ batches: 2, records: 2, bytes: 2, paused: 1 });
  });

  it('a waiting read gets the next batch directly', async () => {
    const { reader, emit } = standIn();
    const p = reader.read();
    emit('x');
    expect((await p)?.data.toString()).toBe('x');
  });

  it('close resolves waiters with null, drops the queue, closes native once', async () => {
    const { calls, reader, emit } = standIn();
    emit('q');
    reader.close();
    reader.close();
    expect(await reader.read()).toBeNull();
    expect(calls).toEqual(['close', 'onClose']);
    emit('late'); // a batch racing the close is ignored
    expect(reader.stats.batches).toBe(1);
  });
});
