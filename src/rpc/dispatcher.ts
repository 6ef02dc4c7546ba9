import {
  type HandlerContext,
  type MethodName,
  type MethodResult,
  Methods,
  methodParser,
  RpcError,
} from '@a2a-mesh/protocol';
import type { z } from 'zod';
import { ANONYMOUS, type Principal } from '../auth/principal.js';
import type { Session } from '../sessions/session.js';

/** What a method handler gets besides its params. */
export interface CallContext extends HandlerContext {
  readonly session: Session;
  /** The agent id bound by `mesh/hello`. */
  readonly agentId: string;
  /** Who the session's credential says it is (anonymous when authentication is off). */
  readonly principal: Principal;
}

/** Decides, before anything else, whether a call is admitted (rate limits); throws an RpcError if not. */
export interface CallGuard {
  admit(session: Session, method: string, ctx: HandlerContext): void;
}

/** A handler for `M`, receiving params already validated by the method's schema. */
export type MethodHandler<M extends MethodName> = (
  params: z.output<(typeof Methods)[M]['params']>,
  ctx: CallContext,
) => Promise<MethodResult<M>> | MethodResult<M>;

type AnyHandler = (params: unknown, ctx: CallContext) => unknown;

/** Routes JSON-RPC requests to handlers after validating params with the protocol's zod schemas. */
export class Dispatcher {
  readonly #handlers = new Map<string, AnyHandler>();

  /** `guard` sees every call first, known method or not. */
  constructor(readonly guard?: CallGuard) {}

  register<M extends MethodName>(method: M, handler: MethodHandler<M>): void {
    this.#handlers.set(method, handler as AnyHandler);
  }

  has(method: string): boolean {
    return this.#handlers.has(method);
  }

  /** Validates and runs one call. Errors: -32601 unknown method, -32602 with `data.issues[].path`. */
  async dispatch(session: Session, method: string, params: unknown, ctx: HandlerContext): Promise<unknown> {
    this.guard?.admit(session, method, ctx);
    const handler = this.#handlers.get(method);
    if (!handler || !Object.hasOwn(Methods, method)) {
      throw RpcError.of('MethodNotFound', `method not found: ${method.slice(0, 128)}`);
    }
    if (session.agentId === undefined && method !== 'mesh/hello') {
      throw RpcError.of('HelloRequired', 'call mesh/hello first');
    }
    const parsed = methodParser(method as MethodName, 'params').safeParse(params);
    if (!parsed.success) {
      const issues = parsed.error.issues
        .slice(0, 10)
        .map((i) => ({ path: i.path.join('.'), message: i.message }));
      const first = issues[0];
      throw RpcError.of(
        'InvalidParams',
        `invalid params${first ? `: ${first.path || '(root)'}: ${first.message}` : ''}`,
        {
          issues,
        },
      );
    }
    return handler(parsed.data, {
      id: ctx.id,
      // A getter, so a handler that never reads the signal costs no AbortController (see RpcPeer).
      get signal() {
        return ctx.signal;
      },
      afterResponse: (fn) => ctx.afterResponse(fn),
      session,
      agentId: session.agentId ?? '',
      principal: session.principal ?? ANONYMOUS,
    });
  }
}
