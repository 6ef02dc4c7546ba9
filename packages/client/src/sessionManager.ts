import {
  CloseCode,
  type Connector,
  type FrameConnection,
  type HandlerContext,
  type HelloParams,
  type HelloResult,
  isRetryableClose,
  MeshError,
  type RequestOptions,
} from '@a2a-mesh/protocol';
import { type BackoffPolicy, backoffDelay } from './backoff.js';
import { bounded } from './deadline.js';
import { ABNORMAL_CLOSE, asError, isFinal, Session } from './session.js';
import { type ClientStatus, StatusHub } from './status.js';

/** How long shutdown waits for each socket's closing handshake, in ms. */
const SESSION_CLOSE_WAIT_MS = 1_000;

/** What the session manager needs from the client. */
export interface SessionManagerOptions {
  /** One connector per node; the first is tried first, reconnects rotate. */
  connectors: readonly Connector[];
  /** Reconnect policy; undefined: never reconnect. */
  policy: BackoffPolicy | undefined;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  maxMessageBytes: number;
  /** Idle ping interval in ms; undefined: the node's heartbeatMs; false: none. */
  heartbeatMs: number | false | undefined;
  /** `mesh/hello` params other than agentId and resume. */
  hello: Omit<HelloParams, 'agentId' | 'resume'>;
  agentId: string | undefined;
  /** Re-joins and re-subscribes on a new session before it goes live; throwing fails the attempt. */
  restore(session: Session, signal: AbortSignal): Promise<void>;
  onRequest(method: string, params: unknown, ctx: HandlerContext): Promise<unknown>;
  onNotification(session: Session, method: string, params: unknown): void;
  /** Called once when the manager closes for good (error unless closed on purpose). */
  onClosed(error: Error | undefined): void;
}

type Waiter = { resolve(session: Session): void; reject(error: Error): void };

/**
 * Keeps one live session: connects, says hello (with `resume`), lets the client restore its streams,
 * reconnects with full-jitter backoff through the connectors, and shuts down once.
 */
export class SessionManager {
  readonly #o: SessionManagerOptions;
  readonly #status = new StatusHub();
  readonly #shutdownSignal = new AbortController();
  readonly #sessions = new Set<Session>();
  readonly #readyWaiters = new Set<Waiter>();
  #urlIndex = 0;
  #phase: 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed' = 'idle';
  #agentId: string | undefined;
  #hello: HelloResult | undefined;
  #live: Session | undefined;
  #attempt: AbortController | undefined;
  #connecting: Promise<HelloResult> | undefined;
  #closing: Promise<void> | undefined;
  /** Set synchronously when shutdown starts (before #closing is assigned). */
  #stopping = false;
  #terminalError: Error | undefined;
  readonly #closed: Promise<void | Error>;
  #resolveClosed!: (value: void | Error) => void;

  constructor(options: SessionManagerOptions) {
    this.#o = options;
    this.#agentId = options.agentId;
    this.#closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  get agentId(): string | undefined {
    return this.#agentId;
  }

  get hello(): HelloResult | undefined {
    return this.#hello;
  }

  /** The live session, if one is up and restored. */
  get live(): Session | undefined {
    const s = this.#live;
    return s?.ready && !s.closed ? s : undefined;
  }

  /** True once shutdown has started. */
  get stopping(): boolean {
    return this.#stopping;
  }

  status(): AsyncIterable<ClientStatus> {
    return this.#status.iterate();
  }

  closed(): Promise<void | Error> {
    return this.#closed;
  }

  /** First connect (once): each connector in turn; on total failure (or abort/timeout) the manager closes. */
  connect(options: RequestOptions = {}): Promise<HelloResult> {
    if (this.#stopping) return Promise.reject(this.closedError());
    this.#connecting ??= this.#firstConnect();
    return bounded(this.#connecting, options, 'connect', (error) => void this.shutdown(error));
  }

  /** A session to send on: the live one, or the next one (waiting until `deadline`, ms since the epoch). */
  ready(deadline: number, signal: AbortSignal | undefined, what: string): Promise<Session> {
    const live = this.live;
    if (live) return Promise.resolve(live);
    if (this.#stopping) return Promise.reject(this.closedError());
    if (this.#phase === 'idle')
      return Promise.reject(new MeshError('closed', `${what}: call connect() first`));
    let waiter!: Waiter;
    const next = new Promise<Session>((resolve, reject) => {
      waiter = { resolve, reject };
    });
    this.#readyWaiters.add(waiter);
    const timeoutMs = Math.max(0, deadline - Date.now());
    return bounded(
      next,
      signal ? { signal, timeoutMs } : { timeoutMs },
      `${what} (waiting for a connection)`,
      () => this.#readyWaiters.delete(waiter),
    );
  }

  /** Closes a session from this side and handles it as lost at once (not waiting for the handshake). */
  drop(session: Session, reason: string): void {
    session.close(CloseCode.Normal, reason);
    this.#onClose(session, ABNORMAL_CLOSE, reason);
  }

  /** Shuts down once: stops reconnecting, closes every session, then reports `closed`. */
  shutdown(error?: Error): Promise<void> {
    this.#stopping = true;
    this.#closing ??= this.#doClose(error);
    return this.#closing;
  }

  /** The error calls fail with once the manager is closed. */
  closedError(): MeshError {
    const cause = this.#terminalError;
    const message = cause ? `client closed: ${cause.message}` : 'client is closed';
    return new MeshError('closed', message, cause ? { cause } : undefined);
  }

  async #firstConnect(): Promise<HelloResult> {
    this.#phase = 'connecting';
    this.#status.set({ type: 'connecting' });
    let lastError: unknown;
    for (let i = 0; i < this.#o.connectors.length && !this.#stopping; i++) {
      this.#urlIndex = i;
      try {
        await this.#open();
        return this.#hello!;
      } catch (error) {
        lastError = error;
        if (isFinal(error)) break;
      }
    }
    const error = this.#stopping ? this.closedError() : asError(lastError);
    await this.shutdown(error);
    throw error;
  }

  /** Opens a connection with the current connector, says hello and restores; the session is then live. */
  async #open(): Promise<void> {
    const attempt = new AbortController();
    this.#attempt = attempt;
    const timeoutMs = this.#o.connectTimeoutMs;
    const timer = setTimeout(
      () => attempt.abort(new MeshError('timeout', `connect timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    let session: Session | undefined;
    try {
      const conn = await this.#o.connectors[this.#urlIndex]!(attempt.signal);
      if (attempt.signal.aborted || this.#stopping) {
        conn.close(CloseCode.Normal, 'client closed');
        throw asError(attempt.signal.reason ?? this.closedError());
      }
      session = this.#attach(conn);
      const resume = this.#hello?.sessionId;
      const hello = await session.request(
        'mesh/hello',
        {
          ...this.#o.hello,
          ...(this.#agentId === undefined ? {} : { agentId: this.#agentId }),
          ...(resume === undefined ? {} : { resume }),
        },
        { signal: attempt.signal, timeoutMs },
      );
      session.hello = hello;
      this.#hello = hello;
      this.#agentId = hello.agentId;
      await this.#o.restore(session, attempt.signal);
      if (session.closed) throw session.closeError();
      if (this.#stopping) throw this.closedError();
      this.#goLive(session);
    } catch (error) {
      if (session && !session.closed) this.drop(session, 'connect failed');
      // A final close code during the attempt outranks whatever the pending call failed with.
      if (session?.closeInfo && !isRetryableClose(session.closeInfo.code)) throw session.closeError();
      throw error;
    } finally {
      clearTimeout(timer);
      if (this.#attempt === attempt) this.#attempt = undefined;
    }
  }

  #attach(conn: FrameConnection): Session {
    const session = new Session(conn, {
      onRequest: this.#o.onRequest,
      onNotification: this.#o.onNotification,
      onClose: (s, code, reason) => this.#onClose(s, code, reason),
      requestTimeoutMs: this.#o.requestTimeoutMs,
      maxMessageBytes: this.#o.maxMessageBytes,
    });
    this.#sessions.add(session);
    return session;
  }

  #goLive(session: Session): void {
    session.ready = true;
    this.#live = session;
    this.#phase = 'connected';
    this.#status.set({ type: 'connected', hello: session.hello! });
    for (const waiter of this.#readyWaiters) waiter.resolve(session);
    this.#readyWaiters.clear();
    const configured = this.#o.heartbeatMs;
    const intervalMs = configured === false ? 0 : (configured ?? session.hello?.heartbeatMs ?? 0);
    if (intervalMs > 0) session.startHeartbeat(intervalMs, () => this.drop(session, 'heartbeat timeout'));
  }

  #onClose(session: Session, code: number, reason: string): void {
    if (!session.markClosed(code, reason)) return;
    this.#sessions.delete(session);
    if (this.#live !== session) return; // Not live yet: #open sees the failure.
    this.#live = undefined;
    if (this.#stopping) return;
    const error = session.closeError();
    if (!this.#o.policy || !isRetryableClose(code)) {
      void this.shutdown(error);
      return;
    }
    void this.#reconnect(this.#o.policy, error);
  }

  async #reconnect(policy: BackoffPolicy, cause: Error): Promise<void> {
    this.#phase = 'reconnecting';
    let lastError = cause;
    for (let attempt = 0; !this.#stopping; attempt++) {
      if (attempt >= policy.maxAttempts) {
        const message = `gave up reconnecting after ${attempt} attempt${attempt === 1 ? '' : 's'}`;
        await this.shutdown(new MeshError('connection_lost', message, { cause: lastError }));
        return;
      }
      const delayMs = backoffDelay(attempt, policy);
      this.#status.set({ type: 'reconnecting', attempt: attempt + 1, delayMs, error: lastError });
      if (!(await this.#sleep(delayMs))) return;
      this.#urlIndex = (this.#urlIndex + 1) % this.#o.connectors.length;
      try {
        await this.#open();
        return;
      } catch (error) {
        if (this.#stopping) return;
        lastError = asError(error);
        if (isFinal(error)) {
          await this.shutdown(lastError);
          return;
        }
      }
    }
  }

  /** Resolves true after `ms`, or false at once when shutdown starts. */
  #sleep(ms: number): Promise<boolean> {
    const signal = this.#shutdownSignal.signal;
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const onAbort = () => {
        clearTimeout(timer);
        resolve(false);
      };
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve(true);
      }, ms);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  async #doClose(error?: Error): Promise<void> {
    this.#terminalError = error;
    this.#phase = 'closed';
    this.#shutdownSignal.abort();
    this.#attempt?.abort(new MeshError('closed', 'client closed'));
    const closedError = this.closedError();
    for (const waiter of this.#readyWaiters) waiter.reject(closedError);
    this.#readyWaiters.clear();
    const sessions = [...this.#sessions];
    for (const session of sessions) {
      session.peer.close(closedError);
      session.close(CloseCode.Normal, 'client closed');
    }
    await Promise.all(
      sessions.map(async (s) => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          s.whenClosed,
          new Promise<void>((r) => (timer = setTimeout(r, SESSION_CLOSE_WAIT_MS))),
        ]);
        clearTimeout(timer);
        this.#onClose(s, CloseCode.Normal, 'client closed');
      }),
    );
    this.#live = undefined;
    try {
      this.#o.onClosed(error);
    } finally {
      this.#status.set(error ? { type: 'closed', error } : { type: 'closed' });
      this.#resolveClosed(error);
    }
  }
}
