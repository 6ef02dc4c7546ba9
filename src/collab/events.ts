import { type Codec, type CollabEvent, notification, SharedFrame } from '@a2a-mesh/protocol';
import type { LogRecord } from './fold.js';

/** One event as fanned out: the wire object plus its notification frame, encoded once per codec. */
export class FannedEvent {
  readonly offset: number;
  readonly event: CollabEvent;
  #json: SharedFrame | undefined;
  #msgpack: SharedFrame | undefined;

  constructor(collaborationId: string, epoch: string, offset: number, record: LogRecord) {
    this.offset = offset;
    this.event = {
      collaborationId,
      epoch,
      offset,
      type: record.type,
      from: record.from,
      at: record.at,
      data: record.data,
    };
  }

  /** The `collaboration/event` notification frame for `codec`; the same frame for every member. */
  frame(codec: Codec): SharedFrame {
    if (codec.name === 'json') {
      this.#json ??= new SharedFrame(codec.encode(notification('collaboration/event', this.event)));
      return this.#json;
    }
    this.#msgpack ??= new SharedFrame(codec.encode(notification('collaboration/event', this.event)));
    return this.#msgpack;
  }
}

/** A fixed-size ring of the most recent events, for replays that need not touch the bus. */
export class EventRing {
  readonly #items: (FannedEvent | undefined)[];
  #last = 0;

  constructor(readonly capacity: number) {
    this.#items = new Array(capacity);
  }

  push(ev: FannedEvent): void {
    this.#items[ev.offset % this.capacity] = ev;
    this.#last = ev.offset;
  }

  /** The event at `offset` if it is still in the ring. */
  get(offset: number): FannedEvent | undefined {
    if (offset > this.#last || offset <= this.#last - this.capacity) return undefined;
    const ev = this.#items[offset % this.capacity];
    return ev?.offset === offset ? ev : undefined;
  }
}
