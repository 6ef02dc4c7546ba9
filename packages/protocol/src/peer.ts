import type { RequestOptions } from './common.js';
import { ErrorCode, MeshError, RpcError } from './errors.js';
import {
  classify,
  failure,
  type JsonRpcMessage,
  type JsonRpcResponse,
  notification,
  type RequestId,
  request,
  success,
} from './jsonrpc.js';

/** Context passed to a request handler. */
export interface HandlerContext {
  /** The request id. */
  readonly id: RequestId;
  /** Aborted when the peer closes before the handler finishes. */
  readonly signal: AbortSignal;
  /** Runs `fn` right after this request's response has been handed to `send` (e.g. to start a stream). */
  afterResponse(fn: () => void): void;
}

/** Callbacks that connect an RpcPeer to a transport and to the application. */
export interface RpcPeerOptions {
  /** Hands one message or batch to the transport. */
  send(message: JsonRpcMessage | JsonRpcMessage[]): void;
  /** Answers a request; throw RpcError to answer with that error. */
  onRequest(method: string, params: unknown, ctx: HandlerContext): Promise<unknown> | unknown;
  /** Receives a notification. */
  onNotification?(method: string, params: unknown): void;
  /** Called when a handler threw something that is not an RpcError (answered as -32603). */
  onInternalError?(error: unknown, method: string): void;
  /** Timeout for outgoing requests without their own `timeoutMs`, in milliseconds (default 30000). */
  defaultTimeoutMs?: number;
  /** Largest batch accepted, in messages (default 100). */
  maxBatch?: number;
}

/** A request being handled: its AbortController once the handler asked for `ctx.signal`. */
interface Running {
  ac: AbortController | undefined;
  /** Set when the session closed while the handler ran. */
  closed: Error | undefined;
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  cleanup(): void;
}

/**
 * One end of a bidirectional JSON-RPC 2.0 session: sends requests and matches their responses,
 * dispatches incoming requests (single or batch) to a handler. Transport-agnostic, browser-safe.
 */
export class RpcPeer {
  readonly #opts: RpcPeerOptions;
  readonly #pending = new Map<RequestId, Pending>();
  /** Running handlers; each one's AbortController is created when the handler first reads `ctx.signal`. */
  readonly #inflight = new Set<Running>();
  #nextId = 1;
  #closed: Error | undefined;

  constructor(options: RpcPeerOptions) {
    this.#opts = options;
  }

  /** Number of outgoing requests awaiting a response. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Sends a request and resolves with its result; rejects with RpcError or MeshError. */
  request(method: string, params?: unknown, options: RequestOptions = {}): Promise<unknown> {
    if (this.#closed)
      return Promise.reject(new MeshError('closed', 'session is closed', { cause: this.#closed }));
    const { signal } = options;
    if (signal?.aborted)
      return Promise.reject(new MeshError('aborted', `${method} aborted`, { cause: signal.reason }));
    const id = this.#nextId++;
    const timeoutMs = options.timeoutMs ?? this.#opts.defaultTimeoutMs ?? 30_000;
    return new Promise<unknown>((resolve, reject) => {
      const onAbort = () => {
        this.#pending.get(id)?.cleanup();
        reject(new MeshError('aborted', `${method} aborted`, { cause: signal?.reason }));
      };
      const timer = setTimeout(() => {
        this.#pending.get(id)?.cleanup();
        reject(new MeshError('timeout', `${method} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#pending.delete(id);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(id, { resolve, reject, cleanup });
      try {
        this.#opts.send(request(id, method, params));
      } catch (error) {
        cleanup();
        reject(error instanceof Error ? error : new MeshError('closed', String(error)));
      }
    });
  }

  /** Sends a notification. */
  notify(method: string, params?: unknown): void {
    if (this.#closed) return;
    this.#opts.send(notification(method, params));
  }

  /** Feeds one decoded frame (a message or a batch) into the peer. */
  receive(value: unknown): void {
    if (Array.isArray(value)) {
      void this.#receiveBatch(value);
      return;
    }
    void this.#receiveOne(value).then((response) => {
      if (response) this.#sendResponses([response.message], response.after, false);
    });
  }

  /** Answers a frame that could not be decoded with a -32700 error. */
  parseError(reason: string): void {
    this.#opts.send(
      failure(null, {
        code: ErrorCode.ParseError.code,
        message: 'Parse error',
        data: { reason: ErrorCode.ParseError.reason, detail: reason },
      }),
    );
  }

  /** Rejects every pending request and aborts running handlers; later calls fail with MeshError `closed`. */
  close(reason: Error = new MeshError('closed', 'session closed')): void {
    if (this.#closed) return;
    this.#closed = reason;
    for (const p of [...this.#pending.values()]) {
      p.cleanup();
      p.reject(new MeshError('connection_lost', reason.message, { cause: reason }));
    }
    for (const run of this.#inflight) {
      run.closed = reason;
      run.ac?.abort(reason);
    }
    this.#inflight.clear();
  }

  async #receiveBatch(values: unknown[]): Promise<void> {
    const max = this.#opts.maxBatch ?? 100;
    if (values.length === 0 || values.length > max) {
      const why = values.length === 0 ? 'empty batch' : `batch of ${values.length} exceeds ${max}`;
      this.#opts.send(failure(null, invalidRequest(why)));
      return;
    }
    const results = await Promise.all(values.map((v) => this.#receiveOne(v)));
    const responses: JsonRpcResponse[] = [];
    const after: (() => void)[] = [];
    for (const r of results) {
      if (!r) continue;
      responses.push(r.message);
      after.push(...r.after);
    }
    if (responses.length > 0) this.#sendResponses(responses, after, true);
  }

  #sendResponses(responses: JsonRpcResponse[], after: (() => void)[], asBatch: boolean): void {
    if (this.#closed) return;
    this.#opts.send(asBatch ? responses : responses[0]!);
    for (const fn of after) fn();
  }

  async #receiveOne(
    value: unknown,
  ): Promise<{ message: JsonRpcResponse; after: (() => void)[] } | undefined> {
    const c = classify(value);
    switch (c.type) {
      case 'invalid':
        return { message: failure(c.id, invalidRequest(c.reason)), after: [] };
      case 'response': {
        const { id } = c.message;
        const p = id === null ? undefined : this.#pending.get(id);
        if (!p) return undefined;
        p.cleanup();
        if ('error' in c.message) p.reject(RpcError.fromWire(c.message.error));
        else p.resolve(c.message.result);
        return undefined;
      }
      case 'notification':
        try {
          this.#opts.onNotification?.(c.message.method, c.message.params);
        } catch (error) {
          this.#opts.onInternalError?.(error, c.message.method);
        }
        return undefined;
      case 'request': {
        const { id, method, params } = c.message;
        const run: Running = { ac: undefined, closed: undefined };
        const after: (() => void)[] = [];
        this.#inflight.add(run);
        try {
          const ctx: HandlerContext = {
            id,
            get signal() {
              if (!run.ac) {
                run.ac = new AbortController();
                if (run.closed) run.ac.abort(run.closed);
              }
              return run.ac.signal;
            },
            afterResponse: (fn) => after.push(fn),
          };
          const result = await this.#opts.onRequest(method, params, ctx);
          return { message: success(id, result), after };
        } catch (error) {
          if (error instanceof RpcError) return { message: failure(id, error.toWire()), after: [] };
          this.#opts.onInternalError?.(error, method);
          const def = ErrorCode.InternalError;
          return {
            message: failure(id, { code: def.code, message: 'Internal error', data: { reason: def.reason } }),
            after: [],
          };
        } finally {
          this.#inflight.delete(run);
        }
      }
      default:
        return assertNever(c);
    }
  }
}

function invalidRequest(detail: string) {
  const def = ErrorCode.InvalidRequest;
  return { code: def.code, message: 'Invalid Request', data: { reason: def.reason, detail } };
}

/** Compile-time exhaustiveness check for switches over tagged unions. */
export function assertNever(value: never): never {
  throw new Error(`unexpected value: ${JSON.stringify(value)}`);
}
