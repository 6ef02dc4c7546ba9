import type { Server as HttpServer, IncomingHttpHeaders } from 'node:http';
import {
  createServer as createHttp2Server,
  type Http2Server,
  Http2ServerRequest,
  Http2ServerResponse,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import { type AddressInfo, createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';

/** PEM material for TLS. */
export interface ListenerTls {
  cert: string | Buffer;
  key: string | Buffer;
  /** CA certificates: when given, every client must present a certificate they signed (mutual TLS). */
  ca?: string | Buffer;
}

/** Settings of `listenMesh`. Times in milliseconds. */
export interface MeshListenerOptions {
  host: string;
  port: number;
  /** Serves HTTP/1.1 (and WebSocket upgrades, through its `upgrade` listeners). Never listens itself. */
  http1: HttpServer;
  /**
   * Takes an HTTP/2 request on its stream and returns true, or returns false to have it handed to
   * `onHttp2Request` (absent: every request goes there).
   */
  onHttp2Stream?(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): boolean;
  /** Handles the HTTP/2 requests `onHttp2Stream` leaves (compatibility API). */
  onHttp2Request(req: Http2ServerRequest, res: Http2ServerResponse): void;
  /** TLS with ALPN `h2` + `http/1.1`; without it the port speaks cleartext HTTP/1.1 and h2c. */
  tls?: ListenerTls;
  /** Most concurrent streams per HTTP/2 connection (default 1000). */
  maxConcurrentStreams?: number;
  /** How long a new cleartext connection may take to send its first bytes (default 10000). */
  firstBytesTimeoutMs?: number;
  logger: Logger;
}

/** The HTTP/2 client connection preface (RFC 9113 §3.4): a cleartext client with prior knowledge starts with it. */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * The node's one port: HTTP/1.1 (with WebSocket upgrades) and HTTP/2 side by side. Cleartext
 * connections are sorted by their first bytes (the h2c preface, else HTTP/1.1); TLS connections by
 * ALPN (`h2`, else HTTP/1.1). Both kinds reach the same handlers.
 */
export class MeshListener {
  readonly #server: Server;
  readonly #h2: Http2Server;
  readonly #http1: HttpServer;
  readonly #sockets = new Set<Socket>();
  readonly #h2Sessions = new Set<ServerHttp2Session>();
  readonly #log: Logger;
  readonly #firstBytesTimeoutMs: number;
  /** True when the port speaks TLS. */
  readonly secure: boolean;
  #closing: Promise<void> | undefined;

  private constructor(options: MeshListenerOptions) {
    this.#log = options.logger;
    this.#http1 = options.http1;
    this.#firstBytesTimeoutMs = options.firstBytesTimeoutMs ?? 10_000;
    this.secure = options.tls !== undefined;
    this.#h2 = createHttp2Server({
      settings: { maxConcurrentStreams: options.maxConcurrentStreams ?? 1000 },
    });
    // No 'request' listener: Node would then make compatibility objects for every stream. Streams
    // not taken on the stream get them here, as Node makes them.
    const { onHttp2Stream, onHttp2Request } = options;
    this.#h2.on(
      'stream',
      (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _f: number, raw: string[]) => {
        if (onHttp2Stream?.(stream, headers)) return;
        compatRequest(stream, headers, raw, onHttp2Request);
      },
    );
    this.#h2.on('session', (session: ServerHttp2Session) => {
      this.#h2Sessions.add(session);
      session.once('close', () => this.#h2Sessions.delete(session));
      session.on('error', (err) => this.#log.debug({ err }, 'http2 session error'));
    });
    if (options.tls) {
      const tls = createTlsServer({
        cert: options.tls.cert,
        key: options.tls.key,
        ...(options.tls.ca === undefined
          ? {}
          : { ca: options.tls.ca, requestCert: true, rejectUnauthorized: true }),
        ALPNProtocols: ['h2', 'http/1.1'],
        minVersion: 'TLSv1.2',
      });
      tls.on('secureConnection', (socket: TLSSocket) => {
        if (!this.#track(socket)) return;
        this.#hand(socket, socket.alpnProtocol === 'h2');
      });
      tls.on('tlsClientError', (err) => this.#log.debug({ err }, 'TLS handshake failed'));
      // The raw socket is tracked from the start (a stalled handshake is closed with the rest).
      tls.on('connection', (socket: Socket) => void this.#track(socket));
      this.#server = tls;
    } else {
      this.#server = createNetServer((socket) => {
        if (!this.#track(socket)) return;
        this.#sniff(socket);
      });
    }
  }

  /** Opens the port; resolves once it is listening. */
  static async listen(options: MeshListenerOptions): Promise<MeshListener> {
    const listener = new MeshListener(options);
    const server = listener.#server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // http.Server starts its connection tracking (header and request timeouts, closeAllConnections)
    // on 'listening'; it never listens itself here, so start it now.
    listener.#http1.emit('listening');
    return listener;
  }

  /** The TCP port. */
  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** Number of HTTP/2 connections open. */
  get http2Connections(): number {
    return this.#h2Sessions.size;
  }

  /** Stops accepting connections; resolves once every open one has ended (see `closeAllConnections`). */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      for (const session of this.#h2Sessions) session.close();
      this.#http1.closeIdleConnections();
    });
    return this.#closing;
  }

  /** Destroys every open connection: HTTP/1.1, WebSocket and HTTP/2. */
  closeAllConnections(): void {
    for (const session of this.#h2Sessions) session.destroy();
    this.#http1.closeAllConnections();
    for (const socket of this.#sockets) socket.destroy();
  }

  #track(socket: Socket): boolean {
    if (this.#closing) {
      socket.destroy();
      return false;
    }
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    return true;
  }

  /** Reads just enough of a cleartext connection to tell h2c from HTTP/1.1, then hands it over. */
  #sniff(socket: Socket): void {
    let seen: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), this.#firstBytesTimeoutMs);
    timer.unref();
    const done = (h2: boolean) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('end', onEnd);
      // Put the bytes back so the server that takes the socket reads them first. The HTTP/2 session
      // reads buffered bytes itself (and would see them twice if the socket flowed); the HTTP/1.1
      // parser only gets them once the socket flows again.
      socket.pause();
      socket.unshift(seen);
      this.#hand(socket, h2);
      if (!h2) socket.resume();
    };
    const onData = (chunk: Buffer) => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, PREFACE.length);
      if (!seen.subarray(0, n).equals(PREFACE.subarray(0, n))) done(false);
      else if (n === PREFACE.length) done(true);
    };
    const onError = () => {
      clearTimeout(timer);
      socket.destroy();
    };
    const onEnd = () => {
      clearTimeout(timer);
      socket.destroy();
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('end', onEnd);
  }

  #hand(socket: Socket, h2: boolean): void {
    if (h2) this.#h2.emit('connection', socket);
    else this.#http1.emit('connection', socket);
  }
}

/**
 * Hands an HTTP/2 stream to a compatibility-API handler the way Node's HTTP/2 server does for its
 * 'request' event when nobody listens for 'connect', 'checkContinue' or 'checkExpectation': CONNECT
 * is 405, `Expect: 100-continue` gets its interim response first, any other expectation is 417.
 */
function compatRequest(
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  rawHeaders: string[],
  onRequest: (req: Http2ServerRequest, res: Http2ServerResponse) => void,
): void {
  const req = new Http2ServerRequest(stream, headers, {}, rawHeaders);
  const res = new Http2ServerResponse(stream);
  if (headers[':method'] === 'CONNECT') {
    res.statusCode = 405;
    res.end();
    return;
  }
  if (headers.expect !== undefined) {
    if (headers.expect !== '100-continue') {
      res.statusCode = 417;
      res.end();
      return;
    }
    res.writeContinue();
  }
  onRequest(req, res);
}

/** Opens the node's port (see `MeshListener`). */
export function listenMesh(options: MeshListenerOptions): Promise<MeshListener> {
  return MeshListener.listen(options);
}
