/**
 * In-order release of batches that settle out of order, with bounded
 * read-ahead: the machinery shared by the enrichment stage and the exec
 * identity stage (each batch starts lookups when it is read, and goes out,
 * in order, once they are in or its wait is over).
 */

/** A batch as {@link releaseInOrder} holds it, made by its `prepare`. */
export interface SettlingBatch {
  /** Records it counts against `maxPendingItems`. */
  readonly size: number;
  /** True once the batch may go out; read each time the head is checked. */
  readonly settled: boolean;
  /** Resolves when the batch has settled (`settled` already true then); a rejection ends the stream with it. */
  readonly ready: Promise<void>;
}

/** A batch released by {@link releaseInOrder}. */
export interface ReleasedBatch<P> {
  readonly batch: P;
  /** True when it went out unsettled because `maxPendingItems` was reached. */
  readonly forced: boolean;
}

const ignore = () => undefined;

/**
 * Read `source` continuously, `prepare` each value as it comes (so its
 * lookups start at once), and yield the prepared batches in source order,
 * each once it has settled. While more than `maxPendingItems` records are
 * held, reading pauses until the consumer takes batches, and an unsettled
 * oldest batch goes out as it is (`forced`). A source error (or a throw of
 * `prepare`) is rethrown after the batches read before it. Closing the
 * returned iterator (`return()`, `break`) stops reading and closes the source.
 */
export async function* releaseInOrder<S, P extends SettlingBatch>(
  source: AsyncIterable<S>,
  prepare: (value: S) => P,
  maxPendingItems: number,
): AsyncGenerator<ReleasedBatch<P>, void, undefined> {
  const it = source[Symbol.asyncIterator]();
  const queue: P[] = [];
  let pendingItems = 0;
  let done = false;
  let stopped = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  let resume: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const pump = (async () => {
    try {
      while (!stopped) {
        const r = await it.next();
        if (r.done || stopped) break;
        const p = prepare(r.value);
        queue.push(p);
        pendingItems += p.size;
        notify();
        // Bounded read-ahead: while `maxPendingItems` records wait for a
        // consumer that does not pull (a full disk downstream), stop
        // reading, so the backlog stays upstream (where the producer can
        // count it) instead of growing here.
        while (pendingItems > maxPendingItems && !stopped) {
          await new Promise<void>((r) => {
            resume = r;
          });
        }
      }
    } catch (error) {
      failure = { error };
    } finally {
      done = true;
      notify();
    }
  })();
  try {
    for (;;) {
      const head = queue[0];
      if (head === undefined) {
        if (done) break;
        await new Promise<void>((r) => {
          wake = r;
        });
        continue;
      }
      let forced = false;
      if (!head.settled) {
        if (pendingItems <= maxPendingItems) {
          await Promise.race([
            head.ready,
            new Promise<void>((r) => {
              wake = r;
            }),
          ]);
          continue;
        }
        forced = true;
      }
      queue.shift();
      pendingItems -= head.size;
      const go = resume;
      resume = undefined;
      go?.();
      yield { batch: head, forced };
    }
    if (failure !== undefined) throw failure.error;
  } finally {
    stopped = true;
    resume?.();
    if (!done) void Promise.resolve(it.return?.()).catch(ignore);
    void pump;
  }
}
