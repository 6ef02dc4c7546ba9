import { AsyncQueue, type RequestOptions, type TopicMessage } from '@a2a-mesh/protocol';

/** What a subscription needs from its client. */
export interface TopicHost {
  unsubscribe(subscription: TopicSubscription, options?: RequestOptions): Promise<void>;
}

/**
 * A live topic subscription: an async iterable of messages matching `pattern` (at-most-once: what is
 * published while the client is reconnecting is not replayed). Survives reconnects; breaking out of
 * the iteration unsubscribes.
 */
export class TopicSubscription implements AsyncIterable<TopicMessage> {
  /** The NATS-style pattern (`*` one token, trailing `>` the rest). */
  readonly pattern: string;
  readonly #id: string;
  readonly #host: TopicHost;
  readonly #maxBuffered: number;
  readonly #queue: AsyncQueue<TopicMessage>;
  #serverId: string;
  #dropped = 0;
  #closed = false;

  constructor(pattern: string, subscriptionId: string, host: TopicHost, maxBuffered: number) {
    this.pattern = pattern;
    this.#id = subscriptionId;
    this.#serverId = subscriptionId;
    this.#host = host;
    this.#maxBuffered = maxBuffered;
    this.#queue = new AsyncQueue<TopicMessage>(() => {
      if (!this.#closed) void this.#host.unsubscribe(this).catch(() => {});
    });
  }

  /** Stable id of this subscription (the node's first id for it); every message carries it. */
  get id(): string {
    return this.#id;
  }

  /** The node's id for it in the current session (changes on reconnect). */
  get serverId(): string {
    return this.#serverId;
  }

  /** Messages dropped because more than `maxBuffered` were waiting to be read. */
  get dropped(): number {
    return this.#dropped;
  }

  /** True once unsubscribed or the client closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Stops the subscription and ends the iteration (messages already queued are still read). */
  unsubscribe(options?: RequestOptions): Promise<void> {
    return this.#host.unsubscribe(this, options);
  }

  [Symbol.asyncIterator](): AsyncIterator<TopicMessage> {
    return this.#queue[Symbol.asyncIterator]();
  }

  /** @internal Queues a message from the node. */
  deliver(message: TopicMessage): void {
    if (this.#closed) return;
    if (this.#queue.size >= this.#maxBuffered) {
      this.#dropped++;
      return;
    }
    this.#queue.push(
      message.subscriptionId === this.#id ? message : { ...message, subscriptionId: this.#id },
    );
  }

  /** @internal The node gave the subscription a new id after a reconnect. */
  rebind(serverId: string): void {
    this.#serverId = serverId;
  }

  /** @internal Ends the subscription locally; with `error`, the iteration throws it after queued messages. */
  finish(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    if (error) this.#queue.fail(error);
    else this.#queue.end();
  }
}

/** Messages kept while a subscribe result is on its way to its caller, at most. */
const UNROUTED_LIMIT = 1_000;

/**
 * Routes `topics/message` notifications to subscriptions by the node's current subscription id.
 * A message can arrive right behind a subscribe result, before the caller has the id: while a
 * subscribe is in flight such messages are held, then routed when it completes.
 */
export class TopicRouter {
  readonly #subs = new Set<TopicSubscription>();
  readonly #byServerId = new Map<string, TopicSubscription>();
  #inFlight = 0;
  #unrouted: TopicMessage[] = [];

  /** Every open subscription. */
  all(): TopicSubscription[] {
    return [...this.#subs];
  }

  add(sub: TopicSubscription): void {
    this.#subs.add(sub);
    this.#byServerId.set(sub.serverId, sub);
  }

  remove(sub: TopicSubscription): void {
    this.#subs.delete(sub);
    if (this.#byServerId.get(sub.serverId) === sub) this.#byServerId.delete(sub.serverId);
  }

  /** The node gave `sub` a new id. */
  rebind(sub: TopicSubscription, serverId: string): void {
    if (this.#byServerId.get(sub.serverId) === sub) this.#byServerId.delete(sub.serverId);
    sub.rebind(serverId);
    this.#byServerId.set(serverId, sub);
  }

  /** Marks a subscribe call in flight; call the returned function once it has settled (and been added). */
  begin(): () => void {
    this.#inFlight++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#inFlight--;
      const waiting = this.#unrouted;
      this.#unrouted = [];
      for (const message of waiting) this.route(message);
    };
  }

  route(message: TopicMessage): void {
    const sub = this.#byServerId.get(message.subscriptionId);
    if (sub) sub.deliver(message);
    else if (this.#inFlight > 0 && this.#unrouted.length < UNROUTED_LIMIT) this.#unrouted.push(message);
  }

  /** Ends every subscription (the client is closing). */
  finishAll(error?: Error): void {
    for (const sub of this.#subs) sub.finish(error);
    this.#subs.clear();
    this.#byServerId.clear();
    this.#unrouted = [];
  }
}
