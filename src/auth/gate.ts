import {
  type AgentCard,
  CloseCode,
  type FrameConnection,
  type HandlerContext,
  type JsonRpcErrorObject,
  RpcError,
} from '@a2a-mesh/protocol';
import type { Logger } from 'pino';
import type { AuditLog, AuditTransport } from '../audit/auditLog.js';
import { MeteredConnection } from '../limits/meteredConnection.js';
import type { QuotaOptions } from '../limits/quotas.js';
import { quotaExceeded } from '../limits/quotas.js';
import type { RateLimiter, SessionMeter } from '../limits/rateLimiter.js';
import { AllowedCallersSchema } from '../policy/callerRules.js';
import type { CallGuard } from '../rpc/dispatcher.js';
import type { Session } from '../sessions/session.js';
import { newId } from '../util/ids.js';
import { AuthError } from './authError.js';
import type { Authenticator } from './authenticator.js';
import { bearerToken } from './bearer.js';
import type { Principal } from './principal.js';

/** What the gate needs. */
export interface SecurityGateOptions {
  authenticator: Authenticator;
  audit: AuditLog;
  /** Undefined: no rate limits. */
  limiter: RateLimiter | undefined;
  quotas: QuotaOptions;
  /** Close sessions that have not completed `mesh/hello` after this long (0: never). */
  helloTimeoutMs: number;
  /** A session is closed this long after its credential's expiry (the verifier's clock skew). */
  expiryGraceMs: number;
  logger: Logger;
}

/** The outcome of checking a credential presented at a transport (e.g. an upgrade's `Authorization`). */
export type TransportAuth =
  | { type: 'none' }
  | { type: 'ok'; principal: Principal }
  | { type: 'failed'; error: AuthError };

/** An HTTP request's caller: the agent its bearer credential names, or why it is refused. */
export type HttpAuth =
  | { ok: true; principal: Principal | undefined }
  | { ok: false; status: number; error: JsonRpcErrorObject; headers: Record<string, string> };

/** A hello's claims, as the gate reads them. */
export interface HelloClaims {
  agentId?: string | undefined;
  token?: string | undefined;
  card?: AgentCard | undefined;
}

interface Guarded {
  meter: SessionMeter | undefined;
  transport: AuditTransport;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Where sessions meet the security modules: credentials at the transport and in `mesh/hello`, the agent
 * id bound from the credential, per-session rate meters, connection quotas, credential expiry, and the
 * audit records of all of it. Services ask the AccessPolicy; this gate decides who a session is.
 */
export class SecurityGate implements CallGuard {
  readonly #o: SecurityGateOptions;
  readonly #sessions = new WeakMap<Session, Guarded>();

  constructor(options: SecurityGateOptions) {
    this.#o = options;
  }

  get authenticator(): Authenticator {
    return this.#o.authenticator;
  }

  get audit(): AuditLog {
    return this.#o.audit;
  }

  /** 0 when a new connection from `ip` is admitted, else the ms to wait (HTTP 429 with Retry-After). */
  admitConnection(ip: string): number {
    const waitMs = this.#o.limiter?.admitConnection(ip) ?? 0;
    if (waitMs > 0)
      this.#o.audit.record({ event: 'connection_refused', remoteAddress: ip, reason: 'rate_limited' });
    return waitMs;
  }

  /** Checks an `Authorization` header presented at a transport; `none` when absent or auth is off. */
  async checkHeader(header: string | string[] | undefined): Promise<TransportAuth> {
    if (!this.#o.authenticator.required) return { type: 'none' };
    try {
      const token = bearerToken(header);
      if (token === undefined) return { type: 'none' };
      return { type: 'ok', principal: await this.#o.authenticator.authenticate(token) };
    } catch (error) {
      if (error instanceof AuthError) return { type: 'failed', error };
      throw error;
    }
  }

  /**
   * Authenticates a one-off HTTP request (the A2A gateway) by its `Authorization: Bearer` header:
   * 401 (with `WWW-Authenticate`) when missing or refused, 503 when keys cannot be fetched, 429 when the
   * address keeps failing or the agent exceeds its request rate. `principal` is undefined with auth off.
   */
  async checkHttp(header: string | string[] | undefined, remoteAddress: string): Promise<HttpAuth> {
    if (!this.#o.authenticator.required) return { ok: true, principal: undefined };
    let principal: Principal;
    try {
      principal = await this.#o.authenticator.authenticate(bearerToken(header));
    } catch (error) {
      if (!(error instanceof AuthError)) throw error;
      this.authFailed(error, 'a2a', remoteAddress);
      if (error.retryable) {
        return refusal(
          503,
          'Unavailable',
          'credentials cannot be checked now',
          { detail: error.failure },
          {
            'retry-after': '1',
          },
        );
      }
      // Failures spend the address's connection allowance: guessing is slow.
      const waitMs = this.#o.limiter?.admitConnection(remoteAddress) ?? 0;
      if (waitMs > 0) {
        return refusal(
          429,
          'RateLimited',
          'too many failed attempts',
          {
            retryAfterMs: waitMs,
          },
          { 'retry-after': String(Math.ceil(waitMs / 1000)) },
        );
      }
      const challenge = `Bearer realm="a2a-mesh", error="${error.failure === 'missing' ? 'invalid_request' : 'invalid_token'}"`;
      return refusal(
        401,
        'Unauthenticated',
        error.message,
        { detail: error.failure },
        { 'www-authenticate': challenge },
      );
    }
    const limiter = this.#o.limiter;
    if (limiter && principal.agentId !== undefined) {
      const waitMs = limiter.buckets(`agent:${principal.agentId}`, Date.now()).requests.take(1);
      if (waitMs > 0) {
        return refusal(
          429,
          'RateLimited',
          'too many requests; retry later',
          { retryAfterMs: waitMs, limit: 'requests' },
          {
            'retry-after': String(Math.ceil(waitMs / 1000)),
          },
        );
      }
    }
    return { ok: true, principal };
  }

  /** Records a refused credential (never the credential). */
  authFailed(error: AuthError, transport: AuditTransport, remoteAddress: string): void {
    this.#o.audit.record({ event: 'auth_failed', transport, remoteAddress, failure: error.failure });
  }

  /** Wraps a new connection in a rate meter (when limits are on). Call `opened` with its session next. */
  meter(
    conn: FrameConnection,
    ip: string,
    onAbuse: () => void,
  ): { conn: FrameConnection; meter?: SessionMeter } {
    const limiter = this.#o.limiter;
    if (!limiter) return { conn };
    const meter = limiter.meter(ip);
    return { conn: new MeteredConnection(conn, meter, onAbuse), meter };
  }

  /** A session opened: remember its meter and principal, and give it `helloTimeoutMs` to say hello. */
  opened(session: Session, meter: SessionMeter | undefined, principal: Principal | undefined): void {
    const transport = session.options.transport;
    const guarded: Guarded = { meter, transport, timer: undefined };
    session.principal = principal;
    const ms = this.#o.helloTimeoutMs;
    if (ms > 0 && this.#o.authenticator.required) {
      guarded.timer = setTimeout(() => {
        if (session.agentId !== undefined || session.closed) return;
        this.#o.audit.record({
          event: 'auth_failed',
          transport,
          remoteAddress: session.options.remoteAddress,
          failure: 'missing',
        });
        session.close(CloseCode.Unauthenticated, 'no mesh/hello with a credential in time');
      }, ms);
      guarded.timer.unref();
    }
    this.#sessions.set(session, guarded);
  }

  /** Closes a session whose meter says it kept flooding (4029). */
  abuse(session: Session): void {
    if (session.closed) return;
    const g = this.#sessions.get(session);
    const limit = g?.meter?.abusive ?? 'bytes';
    this.#o.audit.record({
      event: 'rate_limit_close',
      ...(session.agentId === undefined ? {} : { agentId: session.agentId }),
      remoteAddress: session.options.remoteAddress,
      limit,
    });
    session.close(CloseCode.RateLimited, `rate limited (${limit})`);
  }

  /** CallGuard: every request takes from the session's rate buckets first. */
  admit(session: Session, _method: string, _ctx: HandlerContext): void {
    if (!this.#o.limiter) return;
    const meter = this.#sessions.get(session)?.meter;
    if (!meter) return;
    try {
      meter.request();
    } catch (error) {
      if (meter.abusive) closeSoon(() => this.abuse(session));
      throw error;
    }
  }

  /**
   * The agent id for a `mesh/hello`: authenticates the hello's `token` unless the transport already did,
   * and binds the id the credential names (a hello naming another id is refused with 4003). With auth
   * `none` the hello names the id (or gets a random one). `connections` counts the agent's open sessions
   * here, excluding one this hello replaces. Throws RpcError; on auth failures the session closes (4001).
   */
  async hello(session: Session, p: HelloClaims, connections: (agentId: string) => number): Promise<string> {
    const remoteAddress = session.options.remoteAddress;
    const transport = session.options.transport;
    let principal = session.principal;
    if (principal === undefined) {
      try {
        principal = await this.#o.authenticator.authenticate(p.token);
      } catch (error) {
        if (!(error instanceof AuthError)) throw error;
        this.authFailed(error, transport, remoteAddress);
        if (error.retryable) {
          throw RpcError.of('Unavailable', 'credentials cannot be checked now; retry', {
            detail: error.failure,
          });
        }
        closeSoon(() => session.close(CloseCode.Unauthenticated, `unauthenticated: ${error.failure}`));
        throw RpcError.of('Unauthenticated', error.message, { detail: error.failure });
      }
    }
    const bound = principal.agentId;
    if (bound !== undefined && p.agentId !== undefined && p.agentId !== bound) {
      this.#o.audit.record({ event: 'identity_mismatch', agentId: bound, claimed: p.agentId, remoteAddress });
      closeSoon(() => session.close(CloseCode.Forbidden, 'agent id does not match the credential'));
      throw RpcError.of('Forbidden', `the credential names agent ${bound}, not ${p.agentId}`, {
        rule: 'identity',
        agentId: bound,
      });
    }
    const agentId = bound ?? p.agentId ?? `agent-${newId(12)}`;
    const max = this.#o.quotas.maxConnectionsPerAgent;
    if (connections(agentId) >= max) {
      this.#o.audit.record({ event: 'quota_exceeded', agentId, quota: 'connections_per_agent', limit: max });
      throw quotaExceeded(
        'connections_per_agent',
        max,
        `agent ${agentId} has ${max} sessions on this node already`,
      );
    }
    const rules = (p.card as { allowedCallers?: unknown } | undefined)?.allowedCallers;
    if (rules !== undefined) {
      const parsed = AllowedCallersSchema.safeParse(rules);
      if (!parsed.success) {
        const issues = parsed.error.issues
          .slice(0, 10)
          .map((i) => ({ path: ['card', 'allowedCallers', ...i.path].join('.'), message: i.message }));
        throw RpcError.of('InvalidParams', 'invalid params: card.allowedCallers', { issues });
      }
    }
    session.principal = principal;
    return agentId;
  }

  /** `mesh/hello` succeeded: bill the session to its agent, stop the hello timer, arm the expiry. */
  bound(session: Session): void {
    const g = this.#sessions.get(session);
    const agentId = session.agentId!;
    const principal = session.principal;
    if (g) {
      g.meter?.bind(agentId);
      if (g.timer) clearTimeout(g.timer);
      g.timer = undefined;
    }
    if (!principal || principal.method === 'none') return;
    this.#o.audit.record({
      event: 'authenticated',
      agentId,
      method: principal.method,
      transport: session.options.transport,
      remoteAddress: session.options.remoteAddress,
      sessionId: session.id,
    });
    if (principal.expiresAt !== undefined && g) {
      // A session lives no longer than its credential; the client reconnects with a fresh one.
      const ms = Math.min(Math.max(0, principal.expiresAt + this.#o.expiryGraceMs - Date.now()), 2 ** 31 - 1);
      g.timer = setTimeout(() => {
        this.#o.audit.record({ event: 'credential_expired', agentId, sessionId: session.id });
        session.close(CloseCode.Unauthenticated, 'credential expired');
      }, ms);
      g.timer.unref();
    }
  }

  /** Forgets a closed session's timers. */
  closed(session: Session): void {
    const g = this.#sessions.get(session);
    if (g?.timer) clearTimeout(g.timer);
    this.#sessions.delete(session);
  }
}

function refusal(
  status: number,
  name: 'Unauthenticated' | 'Unavailable' | 'RateLimited',
  message: string,
  extra: Record<string, unknown>,
  headers: Record<string, string>,
): HttpAuth {
  return { ok: false, status, error: RpcError.of(name, message, extra).toWire(), headers };
}

/** Runs `fn` once the current response has gone out (errors do not run `afterResponse` callbacks). */
function closeSoon(fn: () => void): void {
  setTimeout(fn, 0).unref();
}
