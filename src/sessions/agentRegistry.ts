import { type JsonRpcErrorObject, MeshError, type RequestOptions, RpcError } from '@a2a-mesh/protocol';
import type { Logger } from 'pino';
import type { Bus, Registration } from '../bus/bus.js';
import { busError } from '../services/busErrors.js';
import { pack, unpack } from '../util/binary.js';
import type { Session } from './session.js';

/** A call routed to an agent across the bus. */
interface RoutedCall {
  method: string;
  params: unknown;
  /** True for a notification: no result expected. */
  notify?: boolean;
  /** Node-internal state for the serving node, handed to its attachment handlers before the call is relayed. */
  attach?: unknown;
}

type RoutedReply = { result: unknown } | { error: JsonRpcErrorObject };

interface LocalAgent {
  sessions: Session[];
  registration: Promise<Registration>;
}

/**
 * The agents connected to this node, and calls to any agent on the mesh: a node serves each of its
 * agents on the bus (`mesh.agent.<id>.rpc` on NATS) and relays routed calls to the agent's newest session.
 */
export class AgentRegistry {
  readonly #agents = new Map<string, LocalAgent>();
  readonly #onAttach = new Set<(attachment: unknown) => void>();

  constructor(
    readonly bus: Bus,
    readonly log: Logger,
  ) {}

  /** Adds a session that completed `mesh/hello`; the agent's first session registers it on the bus. */
  async add(session: Session): Promise<void> {
    const agentId = session.agentId!;
    let agent = this.#agents.get(agentId);
    if (!agent) {
      const created: LocalAgent = {
        sessions: [],
        registration: this.bus.serveAgent(agentId, (data, signal) => this.#serve(agentId, data, signal)),
      };
      agent = created;
      this.#agents.set(agentId, agent);
      agent.registration.catch(() => {
        if (this.#agents.get(agentId) === created) this.#agents.delete(agentId);
      });
    }
    agent.sessions.push(session);
    try {
      await agent.registration;
    } catch (error) {
      throw busError(error);
    }
  }

  /** Removes a closed session; returns true when it was the agent's last one on this node. */
  remove(session: Session): boolean {
    const agentId = session.agentId;
    if (agentId === undefined) return false;
    const agent = this.#agents.get(agentId);
    if (!agent) return false;
    agent.sessions = agent.sessions.filter((s) => s !== session);
    if (agent.sessions.length > 0) return false;
    this.#agents.delete(agentId);
    void agent.registration.then((r) => r.close()).catch(() => {});
    return true;
  }

  /** Local sessions of an agent, oldest first. */
  sessionsOf(agentId: string): readonly Session[] {
    return this.#agents.get(agentId)?.sessions ?? [];
  }

  /** Every local session. */
  *allSessions(): IterableIterator<Session> {
    for (const a of this.#agents.values()) yield* a.sessions;
  }

  /** Number of distinct agents connected here. */
  get agentCount(): number {
    return this.#agents.size;
  }

  /**
   * Receives what callers on other nodes attach to the calls they route to this node's agents (see
   * `call`), before each such call is relayed to the agent.
   */
  onAttachment(handler: (attachment: unknown) => void): void {
    this.#onAttach.add(handler);
  }

  /**
   * Calls `method` on `agentId`, wherever it is connected. Rejects with RpcError (AgentUnreachable, ...).
   * An agent with a session on this node is called on it directly (what the bus would route back here),
   * without encoding the call for the bus. `attach` is asked only when the call goes to another node:
   * what it returns travels with the call to that node's `onAttachment` handlers.
   */
  async call(
    agentId: string,
    method: string,
    params: unknown,
    options: RequestOptions = {},
    attach?: () => unknown,
  ): Promise<unknown> {
    let reply: RoutedReply;
    if (this.#agents.get(agentId)?.sessions.some((s) => !s.closed)) {
      reply = await this.#relay(agentId, { method, params }, options);
    } else {
      try {
        const call: RoutedCall = { method, params };
        const attachment = attach?.();
        if (attachment !== undefined) call.attach = attachment;
        const bytes = await this.bus.requestAgent(agentId, pack(call), options);
        reply = unpack<RoutedReply>(bytes);
      } catch (error) {
        if (error instanceof MeshError && error.code === 'timeout') {
          throw RpcError.of('Timeout', `agent ${agentId} did not answer ${method} in time`, { agentId });
        }
        throw busError(error);
      }
    }
    if ('error' in reply) throw RpcError.fromWire(reply.error);
    return reply.result;
  }

  /** Sends a notification to every session of `agentId` on whichever node serves it; best effort. */
  async notify(agentId: string, method: string, params: unknown): Promise<void> {
    await this.bus
      .requestAgent(agentId, pack({ method, params, notify: true } satisfies RoutedCall), { timeoutMs: 5000 })
      .catch((error: unknown) =>
        this.log.debug({ err: error, agentId, method }, 'notification not delivered'),
      );
  }

  async #serve(agentId: string, data: Uint8Array, signal: AbortSignal): Promise<Uint8Array> {
    const call = unpack<RoutedCall>(data);
    if (call.attach !== undefined) {
      for (const handler of this.#onAttach) {
        try {
          handler(call.attach);
        } catch (error) {
          this.log.warn({ err: error, agentId, method: call.method }, 'attachment refused');
        }
      }
    }
    return pack(await this.#relay(agentId, call, { signal }));
  }

  /** Hands a call to the agent's newest local session (a notification to all of them); never throws. */
  async #relay(agentId: string, call: RoutedCall, options: RequestOptions): Promise<RoutedReply> {
    const sessions = this.sessionsOf(agentId).filter((s) => !s.closed);
    try {
      if (call.notify) {
        for (const s of sessions) s.notify(call.method, call.params);
        return { result: null };
      }
      const session = sessions.at(-1);
      if (!session) throw RpcError.of('AgentUnreachable', `agent ${agentId} just disconnected`, { agentId });
      // An agent that takes this request as a notification answers nothing: sent is taken.
      if (session.takesAsNotification.has(call.method)) {
        session.notify(call.method, call.params);
        return { result: {} };
      }
      return { result: await session.request(call.method, call.params, options) };
    } catch (error) {
      let wire: RpcError;
      if (error instanceof RpcError) {
        // The agent's own error keeps its code; it is marked as coming from the agent.
        wire =
          error.code === -32065 || error.code === -32075
            ? error
            : RpcError.of('AgentError', error.message, {
                agentId,
                agentCode: error.code,
                agentData: error.data,
              });
      } else if (error instanceof MeshError && error.code === 'timeout') {
        wire = RpcError.of('Timeout', `agent ${agentId} did not answer ${call.method} in time`, { agentId });
      } else {
        wire = RpcError.of('AgentUnreachable', `agent ${agentId} was lost during the call`, { agentId });
      }
      return { error: wire.toWire() };
    }
  }
}
