/**
 * An unbounded push queue read as an async iterable by one consumer. `end()` finishes the iteration
 * after queued items are read; `fail(error)` makes the next read throw. Browser-safe.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  #items: T[] = [];
  #head = 0;
  #waiter: ((r: IteratorResult<T>) => void) | undefined;
  #failWaiter: ((e: Error) => void) | undefined;
  #ended = false;
  #error: Error | undefined;
  readonly #onReturn: (() => void) | undefined;

  /** `onReturn` runs once when the consumer stops early (break/return) or `end()` is called. */
  constructor(onReturn?: () => void) {
    this.#onReturn = onReturn;
  }

  /** Items queued and not yet read. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  get ended(): boolean {
    return this.#ended;
  }

  push(item: T): void {
    if (this.#ended) return;
    const w = this.#waiter;
    if (w) {
      this.#waiter = undefined;
      this.#failWaiter = undefined;
      w({ value: item, done: false });
      return;
    }
    this.#items.push(item);
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#onReturn?.();
    const w = this.#waiter;
    if (w && this.size === 0) {
      this.#waiter = undefined;
      this.#failWaiter = undefined;
      w({ value: undefined, done: true });
    }
  }

  fail(error: Error): void {
    if (this.#ended) return;
    const reject = this.#failWaiter;
    this.#waiter = undefined;
    this.#failWaiter = undefined;
    // A reader already waiting gets the error now; otherwise the next read does.
    if (reject) reject(error);
    else this.#error = error;
    this.end();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.size > 0) {
      const value = this.#items[this.#head++] as T;
      if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
        this.#items = this.#items.slice(this.#head);
        this.#head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.#error) {
      const e = this.#error;
      this.#error = undefined;
      return Promise.reject(e);
    }
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.#waiter = resolve;
      this.#failWaiter = reject;
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.next(),
      return: () => {
        this.end();
        this.#items = [];
        this.#head = 0;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
