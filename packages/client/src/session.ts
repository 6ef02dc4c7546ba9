import {
  type FrameConnection,
  type HandlerContext,
  type HelloResult,
  isRetryableClose,
  type JsonRpcMessage,
  MeshError,
  type MethodName,
  type MethodParams,
  type MethodResult,
  methodParser,
  type RequestOptions,
  RpcError,
  RpcPeer,
} from '@a2a-mesh/protocol';

/** Close code the client reports for a connection it dropped itself. */
export const ABNORMAL_CLOSE = 1006;

/** What a session reports to its owner. */
export interface SessionHandlers {
  /** Answers a node-to-agent request. */
  onRequest(method: string, params: unknown, ctx: HandlerContext): Promise<unknown>;
  /** Receives a notification from the node. */
  onNotification(session: Session, method: string, params: unknown): void;
  /** The connection ended (once). */
  onClose(session: Session, code: number, reason: string): void;
  /** Default request timeout, in ms. */
  readonly requestTimeoutMs: number;
  /** Largest frame accepted from the node, in bytes. */
  readonly maxMessageBytes: number;
}

/** Errors after which reconnecting cannot help. */
const finalErrors = new WeakSet<Error>();

/** `error` as an Error. */
export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** True for errors that reconnecting will not fix: a final close code, a refused hello, a protocol mismatch. */
export function isFinal(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (finalErrors.has(error)) return true;
  if (error instanceof RpcError) return !error.retryable;
  return error instanceof MeshError && (error.code === 'protocol' || error.code === 'bad_config');
}

/** True when a call failed because its session went away. */
export function isConnectionLoss(error: unknown): boolean {
  return error instanceof MeshError && (error.code === 'connection_lost' || error.code === 'closed');
}

function frameBytes(frame: string | Uint8Array, limit: number): number {
  if (typeof frame !== 'string') return frame.byteLength;
  // UTF-8 is at most 3 bytes per UTF-16 unit: count exactly only when it could matter.
  return frame.length * 3 <= limit ? frame.length : new TextEncoder().encode(frame).byteLength;
}

function parseResult<M extends MethodName>(method: M, raw: unknown): MethodResult<M> {
  const parsed = methodParser(method, 'result').safeParse(raw);
  if (!parsed.success) {
    throw new MeshError('protocol', `${method}: unexpected result from the node: ${parsed.error.message}`);
  }
  return parsed.data as MethodResult<M>;
}

/** One connection to a node and the JSON-RPC peer on it; `ready` once hello and restore are done. */
export class Session {
  readonly conn: FrameConnection;
  readonly peer: RpcPeer;
  hello: HelloResult | undefined;
  ready = false;
  closed = false;
  closeInfo: { code: number; reason: string } | undefined;
  /** Resolves when the connection has ended. */
  readonly whenClosed: Promise<void>;
  #markClosed!: () => void;
  #lastFrameAt = Date.now();
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  readonly #maxMessageBytes: number;

  constructor(conn: FrameConnection, handlers: SessionHandlers) {
    this.conn = conn;
    this.#maxMessageBytes = handlers.maxMessageBytes;
    this.whenClosed = new Promise((resolve) => {
      this.#markClosed = resolve;
    });
    this.peer = new RpcPeer({
      send: (message) => this.#send(message),
      onRequest: (method, params, ctx) => handlers.onRequest(method, params, ctx),
      onNotification: (method, params) => handlers.onNotification(this, method, params),
      defaultTimeoutMs: handlers.requestTimeoutMs,
    });
    conn.onFrame((frame) => this.#receive(frame));
    conn.onClose((code, reason) => handlers.onClose(this, code, reason));
  }

  /** Calls `method` on this session and validates the result against its schema. */
  async request<M extends MethodName>(
    method: M,
    params: MethodParams<M>,
    options: RequestOptions = {},
  ): Promise<MethodResult<M>> {
    return parseResult(method, await this.peer.request(method, params, options));
  }

  /** Records the end of the connection and fails its pending calls; false if it was already closed. */
  markClosed(code: number, reason: string): boolean {
    if (this.closed) return false;
    this.closed = true;
    this.closeInfo = { code, reason };
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#markClosed();
    this.peer.close(this.closeError());
    return true;
  }

  /** Closes the connection from this side (the close callback follows). */
  close(code: number, reason: string): void {
    try {
      this.conn.close(code, reason);
    } catch {
      // Already closed.
    }
  }

  /** The error calls fail with once this connection ended; final when the close code forbids a reconnect. */
  closeError(): MeshError {
    const { code, reason } = this.closeInfo ?? { code: ABNORMAL_CLOSE, reason: '' };
    const error = new MeshError(
      'connection_lost',
      `connection closed (${code}${reason ? ` ${reason}` : ''})`,
    );
    if (!isRetryableClose(code)) finalErrors.add(error);
    return error;
  }

  /** Pings the node with `mesh/ping` whenever it was silent for `intervalMs`; calls `onDead` if it does not answer in time. */
  startHeartbeat(intervalMs: number, onDead: () => void): void {
    let pinging = false;
    this.#heartbeat = setInterval(() => {
      if (this.closed || pinging || Date.now() - this.#lastFrameAt < intervalMs) return;
      pinging = true;
      this.peer.request('mesh/ping', {}, { timeoutMs: intervalMs }).then(
        () => {
          pinging = false;
        },
        (error: unknown) => {
          pinging = false;
          if (!this.closed && error instanceof MeshError && error.code === 'timeout') onDead();
        },
      );
    }, intervalMs);
  }

  #send(message: JsonRpcMessage | JsonRpcMessage[]): void {
    const isRequest = !Array.isArray(message) && 'method' in message && 'id' in message;
    try {
      const frame = this.conn.codec.encode(message);
      const limit = this.hello?.limits.maxMessageBytes;
      if (limit !== undefined && frameBytes(frame, limit) > limit) {
        throw RpcError.of('PayloadTooLarge', `message exceeds the node's ${limit}-byte limit`, { limit });
      }
      this.conn.send(frame);
    } catch (error) {
      // Requests report the failure to their caller; a response or notification has nobody to tell.
      if (isRequest) throw error;
    }
  }

  #receive(frame: string | Uint8Array): void {
    if (this.closed) return;
    this.#lastFrameAt = Date.now();
    let value: unknown;
    try {
      value = this.conn.codec.decode(frame, this.#maxMessageBytes);
    } catch (error) {
      this.peer.parseError(asError(error).message);
      return;
    }
    this.peer.receive(value);
  }
}
