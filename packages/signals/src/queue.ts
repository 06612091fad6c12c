/**
 * An async FIFO with one consumer: producers push, the consumer awaits. It
 * holds only what is pushed and not yet taken (producers bound that; see
 * `Collection`'s pumps). end() lets the consumer drain what is queued, then finish; fail()
 * makes the consumer throw after draining.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  #items: T[] = [];
  #head = 0;
  #waiter: (() => void) | undefined;
  #ended = false;
  #error: unknown;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    if (this.#ended) return;
    this.#items.push(item);
    this.#wake();
  }

  end(): void {
    this.#ended = true;
    this.#wake();
  }

  fail(error: unknown): void {
    this.#error ??= error;
    this.end();
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    while (true) {
      if (this.#head < this.#items.length) {
        const item = this.#items[this.#head] as T;
        // Let go of a taken item at once: a consumed slot must not keep a
        // whole ring batch alive until the next compaction.
        (this.#items as Array<T | undefined>)[this.#head++] = undefined;
        if (this.#head >= 64 && this.#head * 2 > this.#items.length) {
          this.#items = this.#items.slice(this.#head);
          this.#head = 0;
        }
        yield item;
        continue;
      }
      if (this.#ended) {
        if (this.#error !== undefined) throw this.#error;
        return;
      }
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
      });
    }
  }
}
