import { MeshError, type RequestOptions } from '@a2a-mesh/protocol';

/** Options for the rest of a call that must finish by `deadline` (ms since the epoch). */
export function remaining(deadline: number, signal: AbortSignal | undefined, what: string): RequestOptions {
  const timeoutMs = deadline - Date.now();
  if (timeoutMs <= 0) throw new MeshError('timeout', `${what} timed out`);
  return signal ? { timeoutMs, signal } : { timeoutMs };
}

/**
 * Settles like `promise`, unless `timeoutMs` passes or `signal` aborts first: then rejects with
 * MeshError `timeout` / `aborted` and calls `onGiveUp` with that error.
 */
export function bounded<T>(
  promise: Promise<T>,
  options: RequestOptions,
  what: string,
  onGiveUp?: (error: Error) => void,
): Promise<T> {
  const { signal, timeoutMs } = options;
  if (!signal && timeoutMs === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const giveUp = (error: Error) => {
      cleanup();
      onGiveUp?.(error);
      reject(error);
    };
    const onAbort = () => giveUp(new MeshError('aborted', `${what} aborted`, { cause: signal?.reason }));
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(
            () => giveUp(new MeshError('timeout', `${what} timed out after ${timeoutMs} ms`)),
            timeoutMs,
          );
    const cleanup = () => {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        cleanup();
        resolve(value);
      },
      (error: unknown) => {
        cleanup();
        reject(error);
      },
    );
  });
}
