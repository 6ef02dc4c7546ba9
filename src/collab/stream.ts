import type { Codec, SharedFrame } from '@a2a-mesh/protocol';
import type { FannedEvent } from './events.js';

/** Where a member stream writes: one agent session. */
export interface StreamSink {
  readonly codec: Codec;
  readonly closed: boolean;
  /** Writes one frame that other sinks get too; the sink closes itself on send-queue overflow. */
  sendShared(frame: SharedFrame): void;
}

/** Reads events `from..to` (inclusive) for gap filling, from memory or the bus. */
export type RangeReader = (from: number, to: number) => Promise<FannedEvent[]>;

/** Counters a stream reports into (metrics). */
export interface StreamCounters {
  duplicatesDropped: number;
  gapsRecovered: number;
  /** Event frames written to sessions. */
  eventsSent: number;
}

/**
 * One (session, collaboration) outgoing stream. Delivers offsets strictly in order from `next`:
 * a duplicate is dropped, a gap is filled from the log before anything later is sent.
 */
export class MemberStream {
  #next: number;
  #filling = false;
  #held: FannedEvent[] = [];
  #closed = false;

  constructor(
    readonly sink: StreamSink,
    readonly agentId: string,
    next: number,
    readonly readRange: RangeReader,
    readonly head: () => number,
    readonly counters: StreamCounters,
    readonly onError: (error: unknown) => void,
  ) {
    this.#next = next;
  }

  /** The next offset this stream will send. */
  get next(): number {
    return this.#next;
  }

  get closed(): boolean {
    return this.#closed || this.sink.closed;
  }

  close(): void {
    this.#closed = true;
    this.#held = [];
  }

  /** Offers a live event; sends it now, drops it as a duplicate, or holds it while a gap is filled. */
  deliver(ev: FannedEvent): void {
    if (this.closed) return;
    if (this.#filling) {
      this.#held.push(ev);
      return;
    }
    if (ev.offset < this.#next) {
      this.counters.duplicatesDropped++;
      return;
    }
    if (ev.offset > this.#next) {
      this.#held.push(ev);
      this.counters.gapsRecovered++;
      void this.catchUp();
      return;
    }
    this.#send(ev);
  }

  /** Sends everything from `next` up to the replica's head, then whatever was held meanwhile. */
  async catchUp(): Promise<void> {
    if (this.#filling || this.closed) return;
    this.#filling = true;
    try {
      while (!this.closed && this.#next <= this.head()) {
        const to = Math.min(this.head(), this.#next + 499);
        const events = await this.readRange(this.#next, to);
        const before = this.#next;
        for (const ev of events) {
          if (this.closed) return;
          if (ev.offset === this.#next) this.#send(ev);
        }
        if (this.#next === before) throw new Error(`log has no event at offset ${before}`);
      }
    } catch (error) {
      this.onError(error);
      return;
    } finally {
      this.#filling = false;
    }
    const held = this.#held;
    this.#held = [];
    held.sort((a, b) => a.offset - b.offset);
    for (const ev of held) this.deliver(ev);
  }

  #send(ev: FannedEvent): void {
    this.#next = ev.offset + 1;
    this.counters.eventsSent++;
    this.sink.sendShared(ev.frame(this.sink.codec));
    // Nothing after the end, or after this agent left or was removed, reaches it: whatever the timing
    // of the join that attached this stream.
    if (endsStream(ev, this.agentId)) this.close();
  }
}

function endsStream(ev: FannedEvent, agentId: string): boolean {
  const { type, data } = ev.event;
  if (type === 'ended') return true;
  if (type !== 'left') return false;
  const d = data as { agentId?: unknown; reason?: unknown };
  return d.agentId === agentId && (d.reason === 'removed' || d.reason === 'leave');
}
