import { AsyncQueue, type HelloResult } from '@a2a-mesh/protocol';

/**
 * The client's connection status, a tagged union: `connecting` (first connect), `connected` (a session
 * is up; `hello` is its mesh/hello result), `reconnecting` (waiting `delayMs` before attempt number
 * `attempt`, counted from 1; `error` says why the last one ended), `closed` (for good; `error` unless
 * closed by `close()`).
 */
export type ClientStatus =
  | { type: 'connecting' }
  | { type: 'connected'; hello: HelloResult }
  | { type: 'reconnecting'; attempt: number; delayMs: number; error?: Error }
  | { type: 'closed'; error?: Error };

/** Fans status changes out to every `status()` iterator; each starts with the current status. */
export class StatusHub {
  #current: ClientStatus | undefined;
  readonly #queues = new Set<AsyncQueue<ClientStatus>>();

  /** The latest status, undefined before `connect()`. */
  get current(): ClientStatus | undefined {
    return this.#current;
  }

  set(status: ClientStatus): void {
    if (this.#current?.type === 'closed') return;
    this.#current = status;
    for (const queue of this.#queues) {
      queue.push(status);
      if (status.type === 'closed') queue.end();
    }
    if (status.type === 'closed') this.#queues.clear();
  }

  iterate(): AsyncIterable<ClientStatus> {
    const queue: AsyncQueue<ClientStatus> = new AsyncQueue(() => this.#queues.delete(queue));
    if (this.#current) queue.push(this.#current);
    if (this.#current?.type === 'closed') queue.end();
    else this.#queues.add(queue);
    return queue;
  }
}
