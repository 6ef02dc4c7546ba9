import type { AsyncQueue } from '@a2a-mesh/protocol';

/**
 * Iterates `queue` to its end, then throws `failure()` once if there is one. Streams end their queue
 * and keep the error here rather than calling `AsyncQueue.fail`, which ends an already waiting read
 * normally instead of rejecting it.
 */
export function endWithFailure<T>(
  queue: AsyncQueue<T>,
  failure: () => Error | undefined,
): AsyncIterableIterator<T> {
  const inner = queue[Symbol.asyncIterator]();
  let settled = false;
  const iterator: AsyncIterableIterator<T> = {
    async next() {
      const result = await inner.next();
      if (result.done && !settled) {
        settled = true;
        const error = failure();
        if (error) throw error;
      }
      return result;
    },
    return() {
      settled = true;
      return inner.return?.() ?? Promise.resolve({ value: undefined, done: true });
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
