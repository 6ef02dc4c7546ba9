import { MeshError } from '@a2a-mesh/protocol';
import type { Consumer, ConsumerMessages } from '@nats-io/jetstream';
import { BusUnavailableError, type LogEntry } from './bus.js';
import { type NatsContext, sleep, toBusError } from './natsContext.js';
import { NatsLogFollowerBase, type SeenLogs } from './natsFollowerBase.js';
import { entriesOf, offsetOf } from './natsLogFormat.js';

/** A follower whose consumer sent nothing, not even a heartbeat, for this long while connected starts a new one. */
const STALLED_AFTER_MS = 5_000;
/** How long one pull request of a follower waits on the server. */
const PULL_EXPIRES_MS = 120_000;

/** What a follower needs from the log store. */
export interface FollowedLogs extends SeenLogs {
  /** The log stream's name. */
  readonly stream: string;
  /** The stream sequence to start at so that `fromOffset` is not missed. */
  startSequence(log: string, subject: string, fromOffset: number): Promise<number>;
}

/**
 * Follows one log with an ordered consumer filtered on its subject. Yields contiguous offsets from
 * `fromOffset`, each entry of a batch message on its own; drops redeliveries, fails on a gap, ends
 * when the log is deleted. The ordered consumer
 * recreates itself after reconnects and server restarts, resuming after the last sequence it delivered.
 */
export class NatsFollower extends NatsLogFollowerBase<FollowedLogs> {
  readonly #subject: string;
  #consumer: Consumer | undefined;
  #messages: ConsumerMessages | undefined;

  constructor(
    ctx: NatsContext,
    logs: FollowedLogs,
    log: string,
    subject: string,
    fromOffset: number,
    onClose: () => void,
  ) {
    super(ctx, logs, log, fromOffset, onClose);
    this.#subject = subject;
  }

  protected stop(): void {
    this.#messages?.stop();
  }

  /** Creates the ordered consumer, retrying a few times: a cluster may place it on a member that just died. */
  async #createConsumer(startSeq: number): Promise<Consumer> {
    const { link, js } = this.ctx;
    for (let attempt = 0; ; attempt++) {
      try {
        return await link.run(() =>
          js.consumers.get(this.logs.stream, { filter_subjects: this.#subject, opt_start_seq: startSeq }),
        );
      } catch (err) {
        if (this.closed || attempt >= 4 || !(err instanceof BusUnavailableError) || !link.connected)
          throw err;
        await sleep(250 * 2 ** attempt);
      }
    }
  }

  protected async *entries(): AsyncGenerator<LogEntry> {
    try {
      if (this.closed) return;
      let startSeq = await this.logs.startSequence(this.log, this.#subject, this.fromOffset);
      let next = this.fromOffset;
      let lastSeq = 0;
      while (!this.closed) {
        const consumer = await this.#createConsumer(startSeq);
        this.#consumer = consumer;
        if (this.closed) return;
        // Short heartbeats: a consumer lost with its server is noticed within seconds. Long pulls:
        // nats-server 2.9 drops a pull request that expires as a message arrives without telling
        // the client, which then waits two missed heartbeats (2 s) before pulling again; the
        // fewer expiries, the rarer that stall. Kept under the ordered consumer's 5 min
        // inactivity threshold.
        const messages = await consumer.consume({
          max_messages: 256,
          expires: PULL_EXPIRES_MS,
          idle_heartbeat: 1_000,
        });
        this.#messages = messages;
        if (this.closed) {
          messages.stop();
          return;
        }
        // nats.js recreates an ordered consumer that is gone, but keeps waiting on one whose server is
        // down (its info request times out, and after a reconnect it stops watching heartbeats): when
        // neither a message nor a heartbeat came for a while although connected, start a new consumer
        // after the last message seen.
        let stalled = false;
        let lastActivity = Date.now();
        // While our reader holds an entry, nats.js stops pulling and the heartbeats stop with it.
        let reading = false;
        void (async () => {
          for await (const st of messages.status()) if (st.type === 'heartbeat') lastActivity = Date.now();
        })().catch(() => {});
        const watchdog = setInterval(() => {
          if (reading || !this.ctx.link.connected) lastActivity = Date.now();
          else if (Date.now() - lastActivity > STALLED_AFTER_MS) {
            stalled = true;
            messages.stop();
          }
        }, 1_000);
        watchdog.unref();
        try {
          for await (const m of messages) {
            lastActivity = Date.now();
            startSeq = m.seq + 1;
            if (m.seq <= lastSeq) continue;
            const first = offsetOf(m, this.log, m.seq);
            // The log was deleted (the consumer starts after any older marker).
            if (first === 0) return;
            const entries = entriesOf(m, this.log, m.seq);
            // Entries before `fromOffset` (the start sequence is a lower bound), or a duplicate.
            if (first + entries.length <= next) continue;
            if (first > next) {
              throw new MeshError(
                'protocol',
                `log ${this.log}: gap while following, expected offset ${next}, got ${first}`,
              );
            }
            lastSeq = m.seq;
            this.logs.seen(this.log, first, first + entries.length - 1, m.seq);
            reading = true;
            // A batch may start before `next` (the follower started inside it).
            for (let i = next - first; i < entries.length; i++) {
              next = first + i + 1;
              yield { offset: first + i, data: entries[i]! };
              if (this.closed) return;
            }
            reading = false;
            lastActivity = Date.now();
          }
        } finally {
          clearInterval(watchdog);
        }
        consumer.delete().catch(() => {});
        if (!stalled) return;
        this.ctx.logger.warn({ log: this.log, startSeq }, 'log follower stalled; recreating its consumer');
      }
    } catch (err) {
      throw toBusError(err);
    } finally {
      this.close();
      this.#consumer?.delete().catch(() => {});
    }
  }
}
