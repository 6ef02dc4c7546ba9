import {
  ConvDeliverResultSchema,
  type ConvHistoryResult,
  type Json,
  type Message,
  type MessageInput,
  RpcError,
  withFields,
} from '@a2a-mesh/protocol';
import type { Logger } from 'pino';
import type { Bus, KvBucket } from '../bus/bus.js';
import type { AccessPolicy } from '../policy/accessPolicy.js';
import type { CallContext, Dispatcher } from '../rpc/dispatcher.js';
import type { AgentRegistry } from '../sessions/agentRegistry.js';
import { pack, unpack } from '../util/binary.js';
import { newId } from '../util/ids.js';
import { busError } from './busErrors.js';
import type { DirectoryService } from './directory.js';

interface ConvMeta {
  initiator: string;
  agentId: string;
  createdAt: number;
  ended: boolean;
  metadata?: Record<string, Json>;
}

/** Bus log of a conversation's turns. */
export function conversationLog(id: string): string {
  return `conv.${id}`;
}

/**
 * `conversation/*`: stateful two-party conversations. A conversation is an A2A context (`contextId` =
 * conversationId); each turn is delivered to the target agent as a `conversation/message` request.
 */
export class ConversationService {
  readonly #roundRobin = new Map<string, number>();

  private constructor(
    readonly bus: Bus,
    readonly meta: KvBucket,
    readonly directory: DirectoryService,
    readonly agents: AgentRegistry,
    readonly turnTimeoutMs: number,
    readonly log: Logger,
    readonly policy: AccessPolicy,
  ) {}

  static async create(
    bus: Bus,
    directory: DirectoryService,
    agents: AgentRegistry,
    turnTimeoutMs: number,
    log: Logger,
    policy: AccessPolicy,
  ): Promise<ConversationService> {
    return new ConversationService(
      bus,
      await bus.kv('conversations'),
      directory,
      agents,
      turnTimeoutMs,
      log,
      policy,
    );
  }

  register(d: Dispatcher): void {
    d.register('conversation/start', (p, ctx) => this.start(p, ctx));
    d.register('conversation/continue', (p, ctx) => this.continue(p.conversationId, p.message, ctx));
    d.register('conversation/end', (p, ctx) => this.end(p.conversationId, ctx));
    d.register('conversation/history', (p, ctx) => this.history(p.conversationId, ctx));
  }

  async start(
    p: {
      to: { agentId: string } | { skill: string };
      message: MessageInput;
      metadata?: Record<string, Json> | undefined;
    },
    ctx: CallContext,
  ): Promise<{ conversationId: string; agentId: string; reply: Message }> {
    const target = 'agentId' in p.to ? p.to.agentId : await this.#pickBySkill(p.to.skill, ctx);
    if (target === ctx.agentId)
      throw RpcError.of('InvalidParams', 'an agent cannot start a conversation with itself');
    if ('agentId' in p.to) {
      const entry = await this.directory.get(target);
      this.policy.checkCall(ctx.principal, ctx.agentId, target, entry.card, 'conversation/start');
    }
    const conversationId = newId();
    const meta: ConvMeta = { initiator: ctx.agentId, agentId: target, createdAt: Date.now(), ended: false };
    if (p.metadata) meta.metadata = p.metadata;
    try {
      await this.meta.put(conversationId, pack(meta));
    } catch (error) {
      throw busError(error);
    }
    const reply = await this.#turn(conversationId, meta, p.message, ctx);
    this.log.info({ conversationId, from: ctx.agentId, to: target }, 'conversation started');
    return { conversationId, agentId: target, reply };
  }

  async continue(
    conversationId: string,
    message: MessageInput,
    ctx: CallContext,
  ): Promise<{ reply: Message }> {
    const meta = await this.#meta(conversationId);
    this.policy.checkContinue(meta, ctx.agentId, conversationId);
    if (meta.ended)
      throw RpcError.of('ConversationEnded', `conversation ${conversationId} has ended`, { conversationId });
    return { reply: await this.#turn(conversationId, meta, message, ctx) };
  }

  async end(conversationId: string, ctx: CallContext): Promise<Record<string, never>> {
    const entry = await this.meta.get(conversationId).catch((e: unknown) => {
      throw busError(e);
    });
    if (!entry) throw notFound(conversationId);
    const meta = unpack<ConvMeta>(entry.value);
    this.policy.checkParticipant(meta, ctx.agentId, conversationId, 'conversation/end');
    if (meta.ended) return {};
    try {
      await this.meta.update(conversationId, pack({ ...meta, ended: true }), entry.revision);
    } catch (error) {
      throw busError(error);
    }
    const other = meta.initiator === ctx.agentId ? meta.agentId : meta.initiator;
    void this.agents.notify(other, 'conversation/ended', { conversationId, by: ctx.agentId });
    return {};
  }

  async history(conversationId: string, ctx: CallContext): Promise<ConvHistoryResult> {
    const meta = await this.#meta(conversationId);
    this.policy.checkParticipant(meta, ctx.agentId, conversationId, 'conversation/history');
    try {
      const entries = await this.bus.read(conversationLog(conversationId), 1, 10_000);
      return {
        conversationId,
        initiator: meta.initiator,
        agentId: meta.agentId,
        ended: meta.ended,
        messages: entries.map((e) => unpack<Message>(e.data)),
      };
    } catch (error) {
      throw busError(error);
    }
  }

  async #turn(
    conversationId: string,
    meta: ConvMeta,
    input: MessageInput,
    ctx: CallContext,
  ): Promise<Message> {
    const message = toMessage(input, 'ROLE_USER', conversationId);
    const params: Record<string, unknown> = { conversationId, from: ctx.agentId, message };
    if (meta.metadata) params.metadata = meta.metadata;
    const raw = await this.agents.call(meta.agentId, 'conversation/message', params, {
      timeoutMs: this.turnTimeoutMs,
      signal: ctx.signal,
    });
    const parsed = ConvDeliverResultSchema.safeParse(raw);
    if (!parsed.success) {
      throw RpcError.of('InvalidAgentResponse', `agent ${meta.agentId} answered with an invalid message`, {
        agentId: meta.agentId,
        issues: parsed.error.issues.slice(0, 5).map((i) => ({ path: i.path.join('.'), message: i.message })),
      });
    }
    const reply = toMessage(parsed.data.message, 'ROLE_AGENT', conversationId);
    try {
      const log = conversationLog(conversationId);
      await this.bus.append(log, pack(message));
      await this.bus.append(log, pack(reply));
    } catch (error) {
      throw busError(error);
    }
    return reply;
  }

  /** An online agent with `skill` that accepts calls from the caller (its card's `allowedCallers`). */
  async #pickBySkill(skill: string, ctx: CallContext): Promise<string> {
    const found = await this.directory.discover({ skill, online: true });
    const candidates = found
      .filter((a) => a.agentId !== ctx.agentId && this.policy.mayCall(ctx.principal, ctx.agentId, a.card))
      .map((a) => a.agentId)
      .sort();
    if (candidates.length === 0) {
      throw RpcError.of('AgentNotFound', `no online agent offers skill ${skill}`, { skill });
    }
    const n = this.#roundRobin.get(skill) ?? Math.floor(Math.random() * candidates.length);
    this.#roundRobin.set(skill, n + 1);
    return candidates[n % candidates.length]!;
  }

  async #meta(conversationId: string): Promise<ConvMeta> {
    let entry: Awaited<ReturnType<KvBucket['get']>>;
    try {
      entry = await this.meta.get(conversationId);
    } catch (error) {
      throw busError(error);
    }
    if (!entry) throw notFound(conversationId);
    return unpack<ConvMeta>(entry.value);
  }
}

/** Completes a sender's message: `messageId`, `role` and `contextId` filled in. */
export function toMessage(input: MessageInput, role: Message['role'], contextId: string): Message {
  return withFields(input, {
    messageId: input.messageId ?? crypto.randomUUID(),
    role: input.role ?? role,
    contextId,
  });
}

function notFound(id: string): RpcError {
  return RpcError.of('ConversationNotFound', `conversation ${id} does not exist`, { conversationId: id });
}
