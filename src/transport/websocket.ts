import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  CloseCode,
  type Codec,
  codecFor,
  type FrameConnection,
  jsonCodec,
  type SharedFrame,
  Subprotocol,
  TurnCork,
} from '@a2a-mesh/protocol';
import { type WebSocket, WebSocketServer } from 'ws';
import type { TransportAuth } from '../auth/gate.js';
import { SpreadHeartbeat } from './heartbeat.js';
import type { TransportHostOptions } from './host.js';

/**
 * Settings of the WebSocket transport. `heartbeatMs` is the ping interval: a connection that misses
 * a pong for a whole interval is terminated.
 */
export interface WebSocketTransportOptions extends TransportHostOptions {
  /** Path of the endpoint (default `/mesh`). */
  path: string;
}

/** A connection accepted over WebSocket. */
class WsConnection implements FrameConnection {
  #frameListener: ((frame: string | Uint8Array) => void) | undefined;
  #closeListener: ((code: number, reason: string) => void) | undefined;
  #closed = false;
  /** A fan-out burst to this socket leaves in one writev. */
  readonly #cork = new TurnCork();
  alive = true;

  constructor(
    readonly ws: WebSocket,
    readonly codec: Codec,
    readonly options: WebSocketTransportOptions,
  ) {
    ws.on('message', (data, isBinary) => {
      const frame = isBinary ? toBytes(data) : data.toString();
      this.#frameListener?.(frame);
    });
    ws.on('pong', () => {
      this.alive = true;
    });
    ws.on('close', (code, reason) => this.#closedBy(code, reason.toString()));
    ws.on('error', (err) => {
      options.logger.debug({ err }, 'websocket error');
      // ws closes with 1009 itself when maxPayload is exceeded; report other errors as 1011.
      if (!this.#closed && ws.readyState === ws.CLOSED) this.#closedBy(1011, err.message);
    });
  }

  #closedBy(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeListener?.(code, reason);
  }

  send(frame: string | Uint8Array): void {
    if (!this.#admit(frame)) return;
    this.#cork.hold(this.ws);
    this.ws.send(frame, { binary: this.codec.binary });
  }

  /**
   * A frame many members get: its WebSocket framing is built once and the same buffer is written to
   * each member's socket, below `ws`'s per-send framing (profiled: `ws`'s send path was the largest
   * cost of an embedded node fanning out). Order with `send` holds: both write the socket in call
   * order, and `ws` sends straight through, never queueing, without permessage-deflate (off here).
   */
  sendShared(frame: SharedFrame): void {
    const socket = (this.ws as unknown as { _socket?: Duplex })._socket;
    if (!socket?.writable) {
      this.send(frame.data);
      return;
    }
    const framing = this.codec.binary ? BINARY_FRAMING : TEXT_FRAMING;
    const bytes = frame.wire(framing.kind, framing.make);
    if (!this.#admit(bytes)) return;
    this.#cork.holdSocket(socket);
    socket.write(bytes);
  }

  /** False (and nothing may be sent) once the send queue would pass its limit: the socket is closed 4008. */
  #admit(frame: string | Uint8Array): boolean {
    if (this.#closed || this.ws.readyState !== this.ws.OPEN) throw new Error('connection is closed');
    const size = typeof frame === 'string' ? Buffer.byteLength(frame) : frame.byteLength;
    if (this.ws.bufferedAmount + size > this.options.maxQueueBytes) {
      this.options.onSlowConsumer?.();
      this.close(CloseCode.SlowConsumer, 'slow consumer');
      return false;
    }
    return true;
  }

  close(code: number = CloseCode.Normal, reason = ''): void {
    if (this.ws.readyState === this.ws.CLOSED) return;
    // The close frame queues behind any backlog; a peer that reads gets the code, one that does not
    // (a stalled slow consumer) is cut off when the close handshake times out.
    this.ws.close(code, reason);
    const timer = setTimeout(() => this.ws.terminate(), this.options.closeTimeoutMs);
    timer.unref();
    this.#closedBy(code, reason);
  }

  onFrame(listener: (frame: string | Uint8Array) => void): void {
    this.#frameListener = listener;
  }

  onClose(listener: (code: number, reason: string) => void): void {
    this.#closeListener = listener;
  }
}

function refuse(socket: Duplex, status: number, text: string, body: string, headers = ''): void {
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\n${headers}Content-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

function ignore(): void {}

/** A final, unmasked server frame (RFC 6455 section 5.2) of `opcode` carrying `data`, header and payload in one buffer. */
function serverFrame(opcode: 1 | 2, data: string | Uint8Array): Buffer {
  const payload = typeof data === 'string' ? Buffer.from(data) : data;
  const n = payload.byteLength;
  const head = n < 126 ? 2 : n < 65_536 ? 4 : 10;
  const out = Buffer.allocUnsafe(head + n);
  out[0] = 0x80 | opcode;
  if (n < 126) out[1] = n;
  else if (n < 65_536) {
    out[1] = 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 127;
    out.writeBigUInt64BE(BigInt(n), 2);
  }
  out.set(payload, head);
  return out;
}

const TEXT_FRAMING = { kind: 'ws-text', make: (data: string | Uint8Array) => serverFrame(1, data) };
const BINARY_FRAMING = { kind: 'ws-binary', make: (data: string | Uint8Array) => serverFrame(2, data) };

function toBytes(data: Buffer | ArrayBuffer | Buffer[]): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

/** The `/mesh` WebSocket endpoint on an HTTP server: subprotocol negotiation, limits, heartbeat. */
export class WebSocketTransport {
  readonly #wss: WebSocketServer;
  readonly #conns = new Set<WsConnection>();
  readonly #heartbeat: SpreadHeartbeat<WsConnection>;
  readonly #onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

  constructor(
    readonly server: Server,
    readonly options: WebSocketTransportOptions,
  ) {
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.maxMessageBytes,
      clientTracking: false,
      perMessageDeflate: false,
      handleProtocols: (protocols) => {
        for (const p of protocols) if (codecFor(p)) return p;
        return false;
      },
    });
    this.#onUpgrade = (req, socket, head) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname !== options.path) {
        refuse(socket, 404, 'Not Found', `no WebSocket endpoint at ${url.pathname}; use ${options.path}`);
        return;
      }
      const offered = req.headers['sec-websocket-protocol'];
      if (offered !== undefined && !offered.split(',').some((p) => codecFor(p.trim()))) {
        // A client that offered subprotocols fails the handshake if none is chosen: say why at HTTP level.
        refuse(
          socket,
          400,
          'Bad Request',
          `unsupported subprotocol; offer ${Subprotocol.Json} or ${Subprotocol.Msgpack}`,
        );
        return;
      }
      const remoteAddress = req.socket.remoteAddress ?? 'unknown';
      const waitMs = options.admitConnection?.(remoteAddress) ?? 0;
      if (waitMs > 0) {
        const retryAfter = `Retry-After: ${Math.ceil(waitMs / 1000)}\r\n`;
        refuse(socket, 429, 'Too Many Requests', 'too many connections from this address', retryAfter);
        return;
      }
      const check = options.checkCredential;
      if (!check || req.headers.authorization === undefined) {
        this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, req, { type: 'none' }));
        return;
      }
      socket.on('error', ignore);
      check(req.headers.authorization).then(
        (auth) => {
          if (socket.destroyed) return;
          if (auth.type === 'failed' && auth.error.retryable) {
            // The keys could not be fetched: the credential may be fine, so say "retry", not "refused".
            refuse(
              socket,
              503,
              'Service Unavailable',
              'credentials cannot be checked now',
              'Retry-After: 1\r\n',
            );
            return;
          }
          // A refused credential still completes the handshake, to close with 4001: a client reads that
          // close code as final, while a refused handshake looks like a network failure and is retried.
          this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, req, auth));
        },
        (error: unknown) => {
          options.logger.error({ err: error }, 'credential check failed');
          if (!socket.destroyed) refuse(socket, 500, 'Internal Server Error', 'credential check failed');
        },
      );
    };
    server.on('upgrade', this.#onUpgrade);
    this.#heartbeat = new SpreadHeartbeat(options.heartbeatMs, (conn) => this.#beat(conn));
  }

  get connectionCount(): number {
    return this.#conns.size;
  }

  #accept(ws: WebSocket, req: IncomingMessage, auth: TransportAuth): void {
    const offered = req.headers['sec-websocket-protocol'];
    let codec: Codec | undefined = jsonCodec;
    if (offered !== undefined) codec = ws.protocol ? codecFor(ws.protocol) : undefined;
    if (!codec) {
      ws.close(
        CloseCode.ProtocolViolation,
        `unsupported subprotocol; use ${Subprotocol.Json} or ${Subprotocol.Msgpack}`,
      );
      return;
    }
    const conn = new WsConnection(ws, codec, this.options);
    this.#conns.add(conn);
    this.#heartbeat.add(conn);
    conn.onClose(() => {
      this.#conns.delete(conn);
      this.#heartbeat.delete(conn);
    });
    const remoteAddress = req.socket.remoteAddress ?? 'unknown';
    this.options.onConnection(conn, { remoteAddress, auth });
  }

  /** Terminates a connection that did not answer the last ping, pings the others. */
  #beat(conn: WsConnection): void {
    if (!conn.alive) {
      this.options.logger.debug('heartbeat lost; terminating');
      conn.ws.terminate();
      return;
    }
    conn.alive = false;
    conn.ws.ping();
  }

  /** Stops accepting and terminates every connection that is still open. */
  close(): void {
    this.#heartbeat.stop();
    this.server.off('upgrade', this.#onUpgrade);
    for (const conn of this.#conns) conn.ws.terminate();
    this.#conns.clear();
    this.#wss.close();
  }
}
