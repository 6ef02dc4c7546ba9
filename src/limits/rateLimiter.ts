import { RpcError } from '@a2a-mesh/protocol';
import { TokenBucket } from './tokenBucket.js';

/**
 * Token-bucket rates. Per agent (summed over its sessions on this node) once `mesh/hello` bound it;
 * per remote IP before that. Rates per second, bursts in requests or bytes.
 */
export interface RateLimitOptions {
  /** Requests per second per agent (default 200). */
  agentRequestsPerSec: number;
  /** Request burst per agent (default 2 × the rate). */
  agentRequestBurst: number;
  /** Inbound bytes per second per agent (default 4 MiB). */
  agentBytesPerSec: number;
  /** Inbound byte burst per agent (default 8 MiB; at least two of the largest frames). */
  agentBytesBurst: number;
  /** Requests per second per IP before authentication (default 10). */
  ipRequestsPerSec: number;
  /** Request burst per IP before authentication (default 20). */
  ipRequestBurst: number;
  /** Inbound bytes per second per IP before authentication (default 1 MiB). */
  ipBytesPerSec: number;
  /** Inbound byte burst per IP before authentication (default 2 MiB). */
  ipBytesBurst: number;
  /** New connections (WebSocket upgrades, HTTP session hellos) per second per IP (default 20). */
  ipConnectionsPerSec: number;
  /** New-connection burst per IP (default 50). */
  ipConnectionBurst: number;
  /**
   * Refused requests a session may collect before it is closed with 4029; they are forgiven at a tenth
   * of this per second (default 50). A session whose byte debt exceeds its byte burst is closed too.
   */
  abuseRefusals: number;
}

/** The defaults of `RateLimitOptions`, given the largest frame (bursts must let one through). */
export function rateLimitDefaults(
  maxMessageBytes: number,
  given: Partial<RateLimitOptions> = {},
): RateLimitOptions {
  const agentRequestsPerSec = given.agentRequestsPerSec ?? 200;
  const agentBytesPerSec = given.agentBytesPerSec ?? 4 * 1024 * 1024;
  const ipRequestsPerSec = given.ipRequestsPerSec ?? 10;
  const ipBytesPerSec = given.ipBytesPerSec ?? 1024 * 1024;
  const ipConnectionsPerSec = given.ipConnectionsPerSec ?? 20;
  return {
    agentRequestsPerSec,
    agentRequestBurst: given.agentRequestBurst ?? 2 * agentRequestsPerSec,
    agentBytesPerSec,
    agentBytesBurst: given.agentBytesBurst ?? Math.max(2 * agentBytesPerSec, 2 * maxMessageBytes),
    ipRequestsPerSec,
    ipRequestBurst: given.ipRequestBurst ?? 2 * ipRequestsPerSec,
    ipBytesPerSec,
    ipBytesBurst: given.ipBytesBurst ?? Math.max(2 * ipBytesPerSec, maxMessageBytes),
    ipConnectionsPerSec,
    ipConnectionBurst: given.ipConnectionBurst ?? Math.max(50, 2 * ipConnectionsPerSec),
    abuseRefusals: given.abuseRefusals ?? 50,
  };
}

interface Buckets {
  requests: TokenBucket;
  bytes: TokenBucket;
}

/** Which limit a refusal or close is about. */
export type LimitKind = 'requests' | 'bytes';

/** The node's rate limiter: buckets by agent and by IP, and a meter per session. */
export class RateLimiter {
  readonly #buckets = new Map<string, Buckets>();
  readonly #connections = new Map<string, TokenBucket>();
  readonly #sweeper: NodeJS.Timeout;

  constructor(readonly options: RateLimitOptions) {
    // Full buckets hold nothing a new one would not: drop them so idle keys cost no memory.
    this.#sweeper = setInterval(() => this.sweep(), 30_000);
    this.#sweeper.unref();
  }

  /** Admits a new connection from `ip`: 0, or the ms to wait (answer 429 / refuse). */
  admitConnection(ip: string, now = Date.now()): number {
    let b = this.#connections.get(ip);
    if (!b) {
      b = new TokenBucket(this.options.ipConnectionBurst, this.options.ipConnectionsPerSec, now);
      this.#connections.set(ip, b);
    }
    return b.take(1, now);
  }

  /** A meter for one session from `ip`; bind it to the agent after `mesh/hello`. */
  meter(ip: string): SessionMeter {
    return new SessionMeter(this, ip);
  }

  /** @internal The buckets of `key` (`agent:<id>` or `ip:<addr>`). */
  buckets(key: string, now: number): Buckets {
    let b = this.#buckets.get(key);
    if (!b) {
      const o = this.options;
      const agent = key.startsWith('agent:');
      b = {
        requests: agent
          ? new TokenBucket(o.agentRequestBurst, o.agentRequestsPerSec, now)
          : new TokenBucket(o.ipRequestBurst, o.ipRequestsPerSec, now),
        bytes: agent
          ? new TokenBucket(o.agentBytesBurst, o.agentBytesPerSec, now)
          : new TokenBucket(o.ipBytesBurst, o.ipBytesPerSec, now),
      };
      this.#buckets.set(key, b);
    }
    return b;
  }

  /** Forgets buckets that are full again. */
  sweep(now = Date.now()): void {
    for (const [key, b] of this.#buckets)
      if (b.requests.full(now) && b.bytes.full(now)) this.#buckets.delete(key);
    for (const [ip, b] of this.#connections) if (b.full(now)) this.#connections.delete(ip);
  }

  /** Number of keys with state (for tests and metrics). */
  get size(): number {
    return this.#buckets.size + this.#connections.size;
  }

  close(): void {
    clearInterval(this.#sweeper);
  }
}

/**
 * One session's view of the limits: frames are charged to the byte bucket as they arrive, requests
 * take from the request bucket and are refused while either is empty (RateLimited, `retryAfterMs`).
 * Persistent abuse makes `abusive` true: the node then closes the session with 4029.
 */
export class SessionMeter {
  #key: string;
  #agentId: string | undefined;
  readonly #strikes: TokenBucket;
  #abusive: LimitKind | undefined;

  constructor(
    readonly limiter: RateLimiter,
    readonly ip: string,
  ) {
    this.#key = `ip:${ip}`;
    const n = limiter.options.abuseRefusals;
    this.#strikes = new TokenBucket(n, n / 10);
  }

  /** Bills the session's traffic to `agentId` from now on (after `mesh/hello`). */
  bind(agentId: string): void {
    this.#agentId = agentId;
    this.#key = `agent:${agentId}`;
  }

  get agentId(): string | undefined {
    return this.#agentId;
  }

  /** Why the session must be closed with 4029, once it must. */
  get abusive(): LimitKind | undefined {
    return this.#abusive;
  }

  /** Charges an inbound frame; false when the byte debt is beyond the burst (close with 4029). */
  frame(bytes: number, now = Date.now()): boolean {
    const b = this.limiter.buckets(this.#key, now).bytes;
    b.charge(bytes, now);
    if (b.tokens(now) < -b.capacity) {
      this.#abusive = 'bytes';
      return false;
    }
    return true;
  }

  /** Admits one request or throws RpcError RateLimited with `data.retryAfterMs` and `data.limit`. */
  request(now = Date.now()): void {
    const b = this.limiter.buckets(this.#key, now);
    const debtMs = b.bytes.debtMs(now);
    const waitMs = debtMs > 0 ? debtMs : b.requests.take(1, now);
    if (waitMs === 0) return;
    const limit: LimitKind = debtMs > 0 ? 'bytes' : 'requests';
    if (this.#strikes.take(1, now) > 0) this.#abusive ??= limit;
    throw RpcError.of('RateLimited', `too many ${limit === 'bytes' ? 'bytes' : 'requests'}; retry later`, {
      retryAfterMs: Number.isFinite(waitMs) ? waitMs : 60_000,
      limit,
    });
  }
}
