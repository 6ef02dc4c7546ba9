import { MeshError } from '@a2a-mesh/protocol';
import type { Msg, Subscription } from '@nats-io/transport-node';
import { BusUnavailableError, type LogEntry } from './bus.js';
import { type NatsContext, toBusError } from './natsContext.js';
import { NatsLogFollowerBase, type SeenLogs } from './natsFollowerBase.js';
import { entriesOf, offsetOf } from './natsLogFormat.js';

/** With nothing arriving for this long, the follower reads the log in case it missed a message. */
const IDLE_CHECK_MS = 5_000;
/** Entries read per page while catching up. */
const PAGE = 256;

/** The header JetStream's republish puts the stored message's stream sequence in. */
const SEQUENCE_HEADER = 'Nats-Sequence';

/** What a tail follower needs from the log store. */
export interface TailedLogs extends SeenLogs {
  /** Entries `fromOffset..` of `log`, at most `limit`, fewer only at its end. */
  read(log: string, fromOffset: number, limit: number): Promise<LogEntry[]>;
}

/** The republish subject of a log's subject: the stream republishes every stored message there. */
export function tailSubject(prefix: string, logSubject: string): string {
  return `${prefix}.tail.${logSubject.slice(prefix.length + 1)}`;
}

/**
 * Follows one log without a JetStream consumer: a core subscription on the log's republish subject
 * (the stream republishes each message once stored; a rejected append is never seen there), plus
 * reads of the log itself for what came before the subscription and for anything missed (a gap in
 * the offsets, a reconnect, or nothing for `IDLE_CHECK_MS`). Yields contiguous offsets from
 * `fromOffset`, drops duplicates; ends when the log is deleted or on `close()`.
 *
 * A consumer per follower costs the server a stream info, a consumer create and delete and their
 * advisories; a blocking A2A SendMessage follows its task's log once per request, so on NATS that
 * was the largest part of the server's work per message.
 */
export class NatsTailFollower extends NatsLogFollowerBase<TailedLogs> {
  readonly #inbox: Msg[] = [];
  readonly #sub: Subscription;
  /** The log was empty when the follower was made: nothing before the subscription to read. */
  readonly #empty: boolean;
  #wake: (() => void) | undefined;

  constructor(
    ctx: NatsContext,
    logs: TailedLogs,
    log: string,
    tail: string,
    fromOffset: number,
    onClose: () => void,
    empty = false,
  ) {
    super(ctx, logs, log, fromOffset, onClose);
    this.#empty = empty;
    // Subscribed at once: whatever is stored after this connection's next write is republished to
    // us, even before iteration starts (a caller may follow, then send what makes others append).
    this.#sub = ctx.nc.subscribe(tail, {
      callback: (err, m) => {
        if (err) return;
        this.#inbox.push(m);
        this.#wake?.();
      },
    });
  }

  protected stop(): void {
    this.#sub.unsubscribe();
    this.#wake?.();
  }

  /** The next republished message, or undefined after `timeoutMs` (or once closed). */
  #nextMessage(timeoutMs: number): Promise<Msg | undefined> {
    const m = this.#inbox.shift();
    if (m || this.closed) return Promise.resolve(m);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve(undefined);
      }, timeoutMs);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve(this.#inbox.shift());
      };
    });
  }

  protected async *entries(): AsyncGenerator<LogEntry> {
    let next = this.fromOffset;
    // Reads what the log holds from `next` on and yields it (one page at a time until its end).
    const self = this;
    async function* catchUp(): AsyncGenerator<LogEntry> {
      for (;;) {
        const page = await self.logs.read(self.log, next, PAGE);
        for (const e of page) {
          if (e.offset !== next) {
            throw new MeshError(
              'protocol',
              `log ${self.log}: gap while reading, expected ${next}, got ${e.offset}`,
            );
          }
          next++;
          yield e;
          if (self.closed) return;
        }
        if (page.length < PAGE) return;
      }
    }
    const link = this.ctx.link;
    let reconnects = link.reconnects;
    try {
      if (this.closed) return;
      // The subscription came first: whatever was stored before it is read here, the rest arrives.
      if (!this.#empty) yield* catchUp();
      while (!this.closed) {
        const m = await this.#nextMessage(IDLE_CHECK_MS);
        if (this.closed) return;
        // Back from a reconnect, messages republished meanwhile were lost: read them.
        const reconnected = link.reconnects !== reconnects;
        reconnects = link.reconnects;
        if (!m || reconnected) {
          if (link.connected) {
            try {
              yield* catchUp();
            } catch (err) {
              // The connection dropped during the read: the next reconnect or idle check reads again.
              if (!(err instanceof BusUnavailableError)) throw err;
            }
          }
          if (!m) continue;
        }
        const seq = Number(m.headers?.get(SEQUENCE_HEADER));
        if (!Number.isSafeInteger(seq) || seq < 1) continue;
        const first = offsetOf(m, this.log, seq);
        // The log was deleted.
        if (first === 0) return;
        const entries = entriesOf(m, this.log, seq);
        if (first + entries.length <= next) continue;
        // Missed messages between: read up to here from the log (which includes this one).
        if (first > next) {
          yield* catchUp();
          continue;
        }
        this.logs.seen(this.log, first, first + entries.length - 1, seq);
        for (let i = next - first; i < entries.length; i++) {
          next = first + i + 1;
          yield { offset: first + i, data: entries[i]! };
          if (this.closed) return;
        }
      }
    } catch (err) {
      throw toBusError(err);
    } finally {
      this.close();
    }
  }
}
