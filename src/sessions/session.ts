import {
  CloseCode,
  type Codec,
  type FrameConnection,
  type HandlerContext,
  MeshError,
  type RequestOptions,
  RpcPeer,
  type SharedFrame,
  sendShared,
} from '@a2a-mesh/protocol';
import type { Logger } from 'pino';
import type { Principal } from '../auth/principal.js';
import type { MemberStream, StreamSink } from '../collab/stream.js';
import { newId } from '../util/ids.js';

/** What a session needs from the node. */
export interface SessionHost {
  dispatch(session: Session, method: string, params: unknown, ctx: HandlerContext): Promise<unknown>;
  sessionClosed(session: Session, code: number, reason: string): void;
}

/** Per-session settings. */
export interface SessionOptions {
  maxMessageBytes: number;
  requestTimeoutMs: number;
  remoteAddress: string;
  transport: 'websocket' | 'memory' | 'http2';
}

/** A collaboration this session has joined on this node. */
export interface JoinedCollab {
  stream: MemberStream;
}

/**
 * One agent connection: decodes frames (size check first), runs the JSON-RPC peer in both directions,
 * and is the sink for its collaboration streams and topic messages.
 */
export class Session implements StreamSink {
  readonly id = newId();
  readonly codec: Codec;
  readonly peer: RpcPeer;
  readonly log: Logger;
  readonly collabs = new Map<string, JoinedCollab>();
  /** subscriptionId → pattern. */
  readonly subscriptions = new Map<string, string>();
  readonly openedAt = Date.now();
  agentId: string | undefined;
  /** Who the credential says this is: set at the transport (a header) or by `mesh/hello`. */
  principal: Principal | undefined;
  /** Node-to-agent requests the agent takes as notifications (`mesh/hello` `notifications`). */
  takesAsNotification: ReadonlySet<string> = new Set();
  #closed = false;
  #closeCode = 0;

  constructor(
    readonly conn: FrameConnection,
    readonly options: SessionOptions,
    readonly host: SessionHost,
    logger: Logger,
  ) {
    this.codec = conn.codec;
    this.log = logger.child({ sessionId: this.id });
    this.peer = new RpcPeer({
      send: (message) => this.sendFrame(this.codec.encode(message)),
      onRequest: (method, params, ctx) => this.host.dispatch(this, method, params, ctx),
      onNotification: (method) => this.log.debug({ method }, 'ignoring notification from agent'),
      onInternalError: (error, method) => this.log.error({ err: error, method }, 'handler failed'),
      defaultTimeoutMs: options.requestTimeoutMs,
    });
    conn.onFrame((frame) => this.#onFrame(frame));
    conn.onClose((code, reason) => this.#onClose(code, reason));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The close code, once closed. */
  get closeCode(): number {
    return this.#closeCode;
  }

  #onFrame(frame: string | Uint8Array): void {
    let value: unknown;
    try {
      value = this.codec.decode(frame, this.options.maxMessageBytes);
    } catch (error) {
      if (error instanceof MeshError && error.code === 'too_large') {
        this.close(CloseCode.TooBig, 'message too big');
        return;
      }
      this.peer.parseError(error instanceof Error ? error.message : String(error));
      return;
    }
    this.peer.receive(value);
  }

  #onClose(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeCode = code;
    this.peer.close(
      new MeshError('connection_lost', `session closed (${code}${reason ? ` ${reason}` : ''})`),
    );
    this.host.sessionClosed(this, code, reason);
  }

  /** Writes an encoded frame; on send-queue overflow the transport closes the session with 4008. */
  sendFrame(frame: string | Uint8Array): void {
    if (this.#closed) return;
    try {
      this.conn.send(frame);
    } catch (error) {
      this.log.debug({ err: error }, 'send on closed connection');
    }
  }

  /** Writes a frame that other sessions get too (a collaboration event), framed once by the transport. */
  sendShared(frame: SharedFrame): void {
    if (this.#closed) return;
    try {
      sendShared(this.conn, frame);
    } catch (error) {
      this.log.debug({ err: error }, 'send on closed connection');
    }
  }

  /** Sends a notification to the agent. */
  notify(method: string, params: unknown): void {
    this.peer.notify(method, params);
  }

  /** Calls the agent (node-to-agent request). */
  request(method: string, params: unknown, options?: RequestOptions): Promise<unknown> {
    return this.peer.request(method, params, options);
  }

  /** Closes the connection with a WebSocket close code. */
  close(code: number = CloseCode.Normal, reason = ''): void {
    if (this.#closed) return;
    this.conn.close(code, reason);
    // Transports report the close asynchronously; mark it now so nothing more is sent.
    this.#onClose(code, reason);
  }
}
