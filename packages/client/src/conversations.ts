import {
  type ConvDeliverParams,
  ConvDeliverParamsSchema,
  type ConvDeliverResult,
  ConvDeliverResultSchema,
  type ConvEndedParams,
  ConvEndedParamsSchema,
  compiledOnUse,
  type HandlerContext,
  MeshError,
  RpcError,
} from '@a2a-mesh/protocol';
import { type MessageLike, toMessage } from './messages.js';
import { asError } from './session.js';

/** `conversation/message` params, checked with a compiled parser. */
const convDeliveries = compiledOnUse(ConvDeliverParamsSchema);

/** What a conversation handler receives besides the turn. */
export interface ConversationContext {
  /** Aborted when the conversation ends or the session drops before the handler answers. */
  readonly signal: AbortSignal;
}

/** Answers one conversation turn with text or an A2A message. */
export type ConversationHandler = (
  turn: ConvDeliverParams,
  context: ConversationContext,
) => MessageLike | Promise<MessageLike>;

/**
 * The agent side of conversations: runs the handler for each `conversation/message` from the node,
 * and aborts running turns when their conversation ends.
 */
export class ConversationResponder {
  #handler: ConversationHandler | undefined;
  readonly #endedListeners = new Set<(params: ConvEndedParams) => void>();
  readonly #turns = new Map<string, Set<AbortController>>();

  /** Sets the handler (replacing any); returns a function that removes it. */
  setHandler(handler: ConversationHandler): () => void {
    this.#handler = handler;
    return () => {
      if (this.#handler === handler) this.#handler = undefined;
    };
  }

  /** Adds a listener for `conversation/ended`; returns a function that removes it. */
  onEnded(listener: (params: ConvEndedParams) => void): () => void {
    this.#endedListeners.add(listener);
    return () => this.#endedListeners.delete(listener);
  }

  /** Answers one `conversation/message`; failures become RpcErrors the node passes on. */
  async answer(
    params: unknown,
    ctx: HandlerContext,
    agentId: string | undefined,
  ): Promise<ConvDeliverResult> {
    const parsed = convDeliveries.safeParse(params);
    if (!parsed.success) {
      throw RpcError.of('InvalidParams', 'invalid conversation/message params', {
        detail: parsed.error.message,
      });
    }
    const handler = this.#handler;
    if (!handler) throw RpcError.of('AgentError', `agent ${agentId ?? ''} takes no conversations`);
    const turn = parsed.data;
    const ac = new AbortController();
    const onAbort = () => ac.abort(ctx.signal.reason);
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    const turns = this.#turns.get(turn.conversationId) ?? new Set<AbortController>();
    this.#turns.set(turn.conversationId, turns);
    turns.add(ac);
    try {
      const reply = await handler(turn, { signal: ac.signal });
      const result = { message: toMessage(reply, 'ROLE_AGENT') };
      const valid = ConvDeliverResultSchema.safeParse(result);
      if (!valid.success) {
        throw RpcError.of('AgentError', 'the handler returned an invalid message', {
          detail: valid.error.message,
        });
      }
      return result;
    } catch (error) {
      if (error instanceof RpcError) throw error;
      throw RpcError.of('AgentError', asError(error).message);
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
      turns.delete(ac);
      if (turns.size === 0) this.#turns.delete(turn.conversationId);
    }
  }

  /** Handles `conversation/ended`: aborts the conversation's running turns and tells the listeners. */
  ended(params: unknown): void {
    const parsed = ConvEndedParamsSchema.safeParse(params);
    if (!parsed.success) return;
    const turns = this.#turns.get(parsed.data.conversationId);
    if (turns) for (const ac of turns) ac.abort(new MeshError('aborted', 'conversation ended'));
    for (const listener of [...this.#endedListeners]) {
      try {
        listener(parsed.data);
      } catch {
        // A listener's failure is its own.
      }
    }
  }

  /** Aborts every running turn (the client is closing). */
  abortAll(reason: Error): void {
    for (const turns of this.#turns.values()) for (const ac of turns) ac.abort(reason);
  }
}
