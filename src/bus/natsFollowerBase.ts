import type { LogEntry, LogFollower } from './bus.js';
import type { NatsContext } from './natsContext.js';

/** What every NATS log follower reports back to the log store. */
export interface SeenLogs {
  /** Records a message the follower saw: it holds offsets `first..last` and is at stream sequence `seq`. */
  seen(log: string, first: number, last: number, seq: number): void;
}

/**
 * What the NATS log followers share: the log and offset they follow from, iteration once, and a
 * close that runs once (telling the store, then stopping the follower's own feed).
 */
export abstract class NatsLogFollowerBase<L extends SeenLogs> implements LogFollower {
  #iterated = false;
  #closed = false;

  constructor(
    protected readonly ctx: NatsContext,
    protected readonly logs: L,
    protected readonly log: string,
    protected readonly fromOffset: number,
    private readonly onClose: () => void,
  ) {}

  protected get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.onClose();
    this.stop();
  }

  [Symbol.asyncIterator](): AsyncIterator<LogEntry> {
    if (this.#iterated) throw new Error('a log follower can be iterated once');
    this.#iterated = true;
    return this.entries();
  }

  /** Stops what feeds the follower (its consumer, its subscription). */
  protected abstract stop(): void;

  /** The entries, from `fromOffset` on. */
  protected abstract entries(): AsyncGenerator<LogEntry>;
}
