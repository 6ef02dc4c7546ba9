import { type Json, RpcError } from '@a2a-mesh/protocol';
import type { Logger } from 'pino';
import type { Bus, Registration } from '../bus/bus.js';
import { quotaExceeded } from '../limits/quotas.js';
import type { AccessPolicy } from '../policy/accessPolicy.js';
import type { CallContext, Dispatcher } from '../rpc/dispatcher.js';
import type { Session } from '../sessions/session.js';
import { pack, unpack } from '../util/binary.js';
import { newId } from '../util/ids.js';
import { busError } from './busErrors.js';

interface TopicPayload {
  from: string;
  at: number;
  data: Json;
}

interface PatternSub {
  registration: Promise<Registration>;
  /** session → its subscription ids on this pattern. */
  sessions: Map<Session, Set<string>>;
}

/**
 * `topics/*`: one bus subscription per (node, pattern), fanned out to local subscribers.
 * At most once: a message published while a subscriber is disconnected is not replayed.
 */
export class TopicService {
  readonly #patterns = new Map<string, PatternSub>();

  constructor(
    readonly bus: Bus,
    readonly maxSubscriptions: number,
    readonly log: Logger,
    readonly policy: AccessPolicy,
  ) {}

  register(d: Dispatcher): void {
    d.register('topics/subscribe', (p, ctx) => this.subscribe(p.pattern, ctx));
    d.register('topics/unsubscribe', (p, ctx) => this.unsubscribe(p.subscriptionId, ctx.session));
    d.register('topics/publish', (p, ctx) => this.publish(p.topic, p.data, ctx));
  }

  async subscribe(pattern: string, ctx: CallContext): Promise<{ subscriptionId: string }> {
    const { session } = ctx;
    this.policy.checkSubscribe(ctx.principal, ctx.agentId, pattern);
    if (session.subscriptions.size >= this.maxSubscriptions) {
      const limit = this.maxSubscriptions;
      this.policy.audit.record({
        event: 'quota_exceeded',
        agentId: ctx.agentId,
        quota: 'subscriptions_per_session',
        limit,
      });
      throw quotaExceeded('subscriptions_per_session', limit, `at most ${limit} subscriptions per session`);
    }
    const subscriptionId = newId(12);
    let sub = this.#patterns.get(pattern);
    if (!sub) {
      const created: PatternSub = {
        sessions: new Map(),
        registration: this.bus.subscribe(pattern, (m) => this.#deliver(created, m.topic, m.data)),
      };
      sub = created;
      this.#patterns.set(pattern, sub);
      sub.registration.catch(() => this.#patterns.delete(pattern));
    }
    try {
      await sub.registration;
    } catch (error) {
      throw busError(error);
    }
    if (session.closed) throw RpcError.of('Unavailable', 'session closed');
    const ids = sub.sessions.get(session) ?? new Set();
    ids.add(subscriptionId);
    sub.sessions.set(session, ids);
    session.subscriptions.set(subscriptionId, pattern);
    return { subscriptionId };
  }

  async unsubscribe(subscriptionId: string, session: Session): Promise<Record<string, never>> {
    const pattern = session.subscriptions.get(subscriptionId);
    if (pattern === undefined) {
      throw RpcError.of('SubscriptionNotFound', `no subscription ${subscriptionId} on this session`, {
        subscriptionId,
      });
    }
    session.subscriptions.delete(subscriptionId);
    const sub = this.#patterns.get(pattern);
    const ids = sub?.sessions.get(session);
    ids?.delete(subscriptionId);
    if (sub && ids && ids.size === 0) sub.sessions.delete(session);
    if (sub && sub.sessions.size === 0) {
      this.#patterns.delete(pattern);
      await (await sub.registration).close();
    }
    return {};
  }

  async publish(topic: string, data: Json, ctx: CallContext): Promise<Record<string, never>> {
    this.policy.checkPublish(ctx.principal, ctx.agentId, topic);
    try {
      await this.bus.publish(topic, pack({ from: ctx.agentId, at: Date.now(), data } satisfies TopicPayload));
    } catch (error) {
      throw busError(error);
    }
    return {};
  }

  #deliver(sub: PatternSub, topic: string, bytes: Uint8Array): void {
    let payload: TopicPayload;
    try {
      payload = unpack<TopicPayload>(bytes);
    } catch (error) {
      this.log.warn({ err: error, topic }, 'undecodable topic message dropped');
      return;
    }
    for (const [session, ids] of sub.sessions) {
      for (const subscriptionId of ids) {
        session.notify('topics/message', {
          subscriptionId,
          topic,
          from: payload.from,
          data: payload.data,
          at: payload.at,
        });
      }
    }
  }

  /** Drops every subscription of a closed session. */
  async sessionClosed(session: Session): Promise<void> {
    for (const id of [...session.subscriptions.keys()]) await this.unsubscribe(id, session).catch(() => {});
  }

  async close(): Promise<void> {
    const subs = [...this.#patterns.values()];
    this.#patterns.clear();
    await Promise.all(subs.map(async (s) => (await s.registration.catch(() => undefined))?.close()));
  }
}
