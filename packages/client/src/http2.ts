import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect,
  type IncomingHttpHeaders,
  type SecureClientSessionOptions,
} from 'node:http2';
import {
  type Codec,
  type Connector,
  type FrameConnection,
  jsonCodec,
  MeshError,
  withFields,
} from '@a2a-mesh/protocol';
import type { MeshTransport } from './client.js';

/** Options of `http2Connector`. Times in milliseconds. */
export interface Http2ConnectorOptions {
  /**
   * The node: `http://host:port` (cleartext HTTP/2 with prior knowledge) or `https://host:port` (TLS,
   * ALPN `h2`). `ws://`/`wss://` URLs of `/mesh` are accepted too and mean the same node.
   */
  url: string;
  /** TLS options for `https` URLs, e.g. `{ ca }` to trust a private CA. */
  tls?: SecureClientSessionOptions;
  /**
   * Headers sent with every request, e.g. `{ authorization: 'Bearer <token>' }`: the node checks the
   * credential at `mesh/hello` and then takes only requests that repeat it.
   */
  headers?: Record<string, string>;
  /** How long a lost event stream may take to come back before the session counts as lost (default: the node's heartbeatMs). */
  resumeWindowMs?: number;
  /** How long `close()` waits for `DELETE /mesh/rpc` (default 1000). */
  closeTimeoutMs?: number;
}

/** Close code reported when the connection was lost without a close from the node (as WebSocket's 1006). */
const ABNORMAL = 1006;
const SESSION_HEADER = 'mesh-session';

interface Endpoints {
  origin: string;
  rpcPath: string;
  streamPath: string;
}

function endpointsOf(url: string): Endpoints {
  let u: URL;
  try {
    u = new URL(url);
  } catch (cause) {
    throw new MeshError('bad_config', `not a URL: ${url}`, { cause });
  }
  const scheme = { 'http:': 'http:', 'ws:': 'http:', 'https:': 'https:', 'wss:': 'https:' }[u.protocol];
  if (!scheme) throw new MeshError('bad_config', `${url}: use an http(s):// URL for HTTP/2 sessions`);
  let base = u.pathname.replace(/\/+$/, '');
  if (base.endsWith('/mesh')) base = base.slice(0, -'/mesh'.length);
  return { origin: `${scheme}//${u.host}`, rpcPath: `${base}/mesh/rpc`, streamPath: `${base}/mesh/stream` };
}

/**
 * A Connector that holds a mesh session over HTTP/2 (Node only): calls are `POST /mesh/rpc`, many in
 * flight on one connection; notifications and node requests arrive on the `GET /mesh/stream` SSE
 * stream, which is resumed with `Last-Event-ID` if it drops. When the node loses the session, the
 * connection reports a close, and `MeshClient` reconnects and resumes as it does over WebSocket.
 */
export function http2Connector(options: Http2ConnectorOptions): Connector {
  const endpoints = endpointsOf(options.url);
  return async (signal) => {
    if (signal.aborted)
      throw new MeshError('aborted', `connect to ${endpoints.origin} aborted`, { cause: signal.reason });
    const h2 = openSession(endpoints.origin, options.tls);
    await new Promise<void>((resolve, reject) => {
      const done = (error?: Error) => {
        signal.removeEventListener('abort', onAbort);
        h2.off('connect', onConnect);
        h2.off('error', onError);
        h2.off('close', onClose);
        if (!error) {
          resolve();
          return;
        }
        h2.destroy();
        reject(error);
      };
      const onAbort = () =>
        done(new MeshError('aborted', `connect to ${endpoints.origin} aborted`, { cause: signal.reason }));
      const onConnect = () => done();
      const onError = (cause: Error) =>
        done(new MeshError('connection_lost', `cannot connect to ${endpoints.origin}`, { cause }));
      const onClose = () =>
        done(new MeshError('connection_lost', `${endpoints.origin} closed the connection`));
      signal.addEventListener('abort', onAbort, { once: true });
      h2.once('connect', onConnect);
      h2.once('error', onError);
      h2.once('close', onClose);
    });
    return new Http2Connection(h2, endpoints, options);
  };
}

/** A `MeshTransport` for `MeshClient`'s `transport` option: every URL is reached with `http2Connector`. */
export function http2Transport(options: Omit<Http2ConnectorOptions, 'url'> = {}): MeshTransport {
  return (url) => http2Connector({ ...options, url });
}

function openSession(origin: string, tls: SecureClientSessionOptions | undefined): ClientHttp2Session {
  const h2 = connect(origin, tls ?? {});
  // Errors also end the requests on the session, which is where they are handled.
  h2.on('error', ignore);
  return h2;
}

function ignore(): void {}

interface SseEvent {
  event: string;
  id: string | undefined;
  data: string;
}

/** Reads `text/event-stream`: events separated by blank lines, `id:`, `event:`, `data:` fields, `:` comments. */
class SseParser {
  #parts: string[] = [];
  #data: string[] = [];
  #event = '';
  #id: string | undefined;

  constructor(readonly onEvent: (event: SseEvent) => void) {}

  push(chunk: string): void {
    let from = 0;
    for (let nl = chunk.indexOf('\n'); nl >= 0; nl = chunk.indexOf('\n', from)) {
      this.#parts.push(chunk.slice(from, nl));
      const line = this.#parts.join('');
      this.#parts = [];
      this.#line(line.endsWith('\r') ? line.slice(0, -1) : line);
      from = nl + 1;
    }
    if (from < chunk.length) this.#parts.push(chunk.slice(from));
  }

  #line(line: string): void {
    if (line === '') {
      if (this.#data.length > 0)
        this.onEvent({ event: this.#event || 'message', id: this.#id, data: this.#data.join('\n') });
      this.#data = [];
      this.#event = '';
      this.#id = undefined;
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.#data.push(value);
    else if (field === 'event') this.#event = value;
    else if (field === 'id') this.#id = value;
  }
}

interface PostResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** The agent end of an HTTP session, as a FrameConnection for `MeshClient`. */
class Http2Connection implements FrameConnection {
  readonly codec: Codec = jsonCodec;
  readonly #ep: Endpoints;
  readonly #o: Http2ConnectorOptions;
  #h2: ClientHttp2Session;
  #sessionId: string | undefined;
  #helloSent = false;
  #queued: string[] = [];
  readonly #posts = new Set<ClientHttp2Stream>();
  #stream: ClientHttp2Stream | undefined;
  #lastEventId: string | undefined;
  #heartbeatMs = 25_000;
  #resumeDeadline: number | undefined;
  #resumeAttempt = 0;
  #resumeTimer: ReturnType<typeof setTimeout> | undefined;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #closing = false;
  #closed: { code: number; reason: string } | undefined;
  #frameListener: ((frame: string | Uint8Array) => void) | undefined;
  #closeListener: ((code: number, reason: string) => void) | undefined;

  constructor(h2: ClientHttp2Session, endpoints: Endpoints, options: Http2ConnectorOptions) {
    this.#h2 = h2;
    this.#ep = endpoints;
    this.#o = options;
  }

  send(frame: string | Uint8Array): void {
    if (this.#closed || this.#closing) throw new MeshError('closed', 'connection is closed');
    const text = typeof frame === 'string' ? frame : Buffer.from(frame).toString('utf8');
    if (this.#sessionId !== undefined) {
      this.#post(text, false);
      return;
    }
    // The first frame is `mesh/hello`; anything sent before its answer waits for the session id.
    if (this.#helloSent) this.#queued.push(text);
    else {
      this.#helloSent = true;
      this.#post(text, true);
    }
  }

  close(code = 1000, reason = ''): void {
    if (this.#closed || this.#closing) return;
    this.#closing = true;
    const finish = () => this.#finish(code, reason);
    const h2 = this.#h2;
    if (this.#sessionId === undefined || h2.closed || h2.destroyed) {
      finish();
      return;
    }
    // Ends the session on the node at once, so its presence ends now rather than at the detach timeout.
    let del: ClientHttp2Stream;
    try {
      del = h2.request(
        {
          ...this.#o.headers,
          ':method': 'DELETE',
          ':path': this.#ep.rpcPath,
          [SESSION_HEADER]: this.#sessionId,
        },
        { endStream: true },
      );
    } catch {
      finish();
      return;
    }
    const timer = setTimeout(finish, this.#o.closeTimeoutMs ?? 1_000);
    del.on('error', ignore);
    del.on('close', () => {
      clearTimeout(timer);
      finish();
    });
    del.resume();
  }

  onFrame(listener: (frame: string | Uint8Array) => void): void {
    this.#frameListener = listener;
  }

  onClose(listener: (code: number, reason: string) => void): void {
    this.#closeListener = listener;
    if (this.#closed) listener(this.#closed.code, this.#closed.reason);
  }

  /** The HTTP/2 session to send on: a new one if the last was closed (the mesh session lives on the node). */
  #session(): ClientHttp2Session {
    const h2 = this.#h2;
    if (!h2.closed && !h2.destroyed) return h2;
    this.#h2 = openSession(this.#ep.origin, this.#o.tls);
    return this.#h2;
  }

  #post(text: string, hello: boolean): void {
    const headers: Record<string, string> = withFields(this.#o.headers ?? {}, {
      ':method': 'POST',
      ':path': this.#ep.rpcPath,
      'content-type': 'application/json',
      accept: 'application/json',
    });
    if (this.#sessionId !== undefined) headers[SESSION_HEADER] = this.#sessionId;
    let req: ClientHttp2Stream;
    try {
      req = this.#session().request(headers);
    } catch (error) {
      this.#lost(`cannot send: ${(error as Error).message}`);
      return;
    }
    this.#posts.add(req);
    let status = 0;
    let responseHeaders: IncomingHttpHeaders = {};
    const chunks: string[] = [];
    req.setEncoding('utf8');
    req.on('response', (h) => {
      status = Number(h[':status']);
      responseHeaders = h;
    });
    req.on('data', (chunk: string) => chunks.push(chunk));
    req.on('error', ignore);
    req.on('close', () => {
      this.#posts.delete(req);
      if (this.#closed) return;
      // No complete answer: whether the call ran is unknown, so the connection counts as lost
      // (as a dropped WebSocket would) and the client reconnects and resumes.
      if (status === 0 || !req.readableEnded) {
        this.#lost('request failed before its response');
        return;
      }
      this.#answered(text, hello, { status, headers: responseHeaders, body: chunks.join('') });
    });
    req.end(text);
  }

  #answered(sent: string, hello: boolean, r: PostResult): void {
    if (hello) {
      const id = r.headers[SESSION_HEADER];
      if (r.status === 200 && typeof id === 'string' && id !== '') {
        this.#sessionId = id;
        this.#heartbeatMs = heartbeatOf(r.body) ?? this.#heartbeatMs;
        this.#openStream();
        this.#deliver(r.body);
        const queued = this.#queued;
        this.#queued = [];
        for (const text of queued) this.#post(text, false);
        return;
      }
      // No session: the next frame may try hello again.
      this.#helloSent = false;
      const queued = this.#queued;
      this.#queued = [];
      queueMicrotask(() => {
        for (const text of queued) if (!this.#closed && !this.#closing) this.send(text);
      });
    }
    if (r.status === 200) {
      this.#deliver(r.body);
      return;
    }
    if (r.status === 202 || r.status === 204) return;
    const close = closeOf(r.body);
    if (r.status === 404 || close) {
      this.#finish(close?.code ?? ABNORMAL, close?.reason || `session lost (HTTP ${r.status})`);
      return;
    }
    this.#deliver(errorFor(sent, r));
  }

  #deliver(body: string): void {
    if (body === '' || this.#closed) return;
    this.#frameListener?.(body);
  }

  #openStream(): void {
    if (this.#closed || this.#closing || this.#sessionId === undefined) return;
    const headers: Record<string, string> = {
      ...this.#o.headers,
      ':method': 'GET',
      ':path': this.#ep.streamPath,
      accept: 'text/event-stream',
      [SESSION_HEADER]: this.#sessionId,
    };
    if (this.#lastEventId !== undefined) headers['last-event-id'] = this.#lastEventId;
    let stream: ClientHttp2Stream;
    try {
      stream = this.#session().request(headers, { endStream: true });
    } catch (error) {
      this.#streamLost(`cannot open the event stream: ${(error as Error).message}`);
      return;
    }
    this.#stream = stream;
    this.#touch();
    let status = 0;
    const refusal: string[] = [];
    const parser = new SseParser((event) => this.#onEvent(event));
    stream.setEncoding('utf8');
    stream.on('response', (h) => {
      status = Number(h[':status']);
      if (status === 200) {
        this.#resumeDeadline = undefined;
        this.#resumeAttempt = 0;
      }
    });
    stream.on('data', (chunk: string) => {
      if (status !== 200) {
        refusal.push(chunk);
        return;
      }
      this.#touch();
      parser.push(chunk);
    });
    stream.on('error', ignore);
    stream.on('close', () => {
      if (this.#stream !== stream) return;
      this.#stream = undefined;
      if (this.#closed || this.#closing) return;
      if (status === 0 || status === 200) {
        this.#streamLost('event stream ended');
        return;
      }
      const close = closeOf(refusal.join(''));
      const reason = close?.reason || `event stream refused (HTTP ${status})`;
      this.#finish(close?.code ?? ABNORMAL, reason);
    });
  }

  #onEvent(event: SseEvent): void {
    if (this.#closed) return;
    if (event.event === 'close') {
      if (this.#closing) return;
      const close = parseClose(event.data);
      this.#finish(close?.code ?? ABNORMAL, close?.reason ?? 'closed by the node');
      return;
    }
    if (event.event !== 'message') return;
    if (event.id !== undefined) this.#lastEventId = event.id;
    this.#frameListener?.(event.data);
  }

  /** The stream dropped without a close from the node: resume it after the last event seen, for a while. */
  #streamLost(why: string): void {
    if (this.#closed || this.#closing) return;
    const windowMs = this.#o.resumeWindowMs ?? this.#heartbeatMs;
    this.#resumeDeadline ??= Date.now() + windowMs;
    if (Date.now() >= this.#resumeDeadline) {
      this.#lost(why);
      return;
    }
    const delayMs = Math.min(1_000, 25 * 2 ** this.#resumeAttempt++);
    this.#resumeTimer = setTimeout(() => {
      this.#resumeTimer = undefined;
      this.#openStream();
    }, delayMs);
  }

  /** Restarts the stream's idle timer: the node writes at least a ping every heartbeatMs. */
  #touch(): void {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      // Silent for three heartbeats: the connection is gone. Every request on it fails, the stream resumes.
      this.#h2.destroy();
    }, 3 * this.#heartbeatMs);
    this.#idleTimer.unref?.();
  }

  #lost(reason: string): void {
    this.#finish(ABNORMAL, reason);
  }

  #finish(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = { code, reason };
    if (this.#resumeTimer) clearTimeout(this.#resumeTimer);
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#stream?.close();
    this.#stream = undefined;
    for (const req of this.#posts) req.close();
    this.#posts.clear();
    const h2 = this.#h2;
    h2.close();
    setTimeout(() => h2.destroy(), 1_000).unref?.();
    this.#closeListener?.(code, reason);
  }
}

function heartbeatOf(body: string): number | undefined {
  try {
    const ms = (JSON.parse(body) as { result?: { heartbeatMs?: unknown } }).result?.heartbeatMs;
    return typeof ms === 'number' && ms > 0 ? ms : undefined;
  } catch {
    return undefined;
  }
}

function parseClose(data: string): { code: number; reason: string } | undefined {
  try {
    const v = JSON.parse(data) as { code?: unknown; reason?: unknown };
    if (typeof v.code !== 'number') return undefined;
    return { code: v.code, reason: typeof v.reason === 'string' ? v.reason : '' };
  } catch {
    return undefined;
  }
}

/** The node's close code from an error body that says the session is gone (`data.closeCode`). */
function closeOf(body: string): { code: number; reason: string } | undefined {
  try {
    const data = (JSON.parse(body) as { error?: { data?: { closeCode?: unknown; closeReason?: unknown } } })
      .error?.data;
    if (typeof data?.closeCode !== 'number') return undefined;
    return { code: data.closeCode, reason: typeof data.closeReason === 'string' ? data.closeReason : '' };
  } catch {
    return undefined;
  }
}

/** An error answer for a refused POST, carrying the id of the request it refuses so its caller hears at once. */
function errorFor(sent: string, r: PostResult): string {
  let id: unknown = null;
  try {
    const v = JSON.parse(sent) as { id?: unknown; method?: unknown };
    if (!Array.isArray(v) && v.method !== undefined && v.id !== undefined) id = v.id;
  } catch {
    // Not ours to judge: the node answered it.
  }
  try {
    const body = JSON.parse(r.body) as { error?: unknown; id?: unknown };
    if (typeof body === 'object' && body !== null && !Array.isArray(body) && body.error !== undefined) {
      return JSON.stringify({ ...body, jsonrpc: '2.0', id: body.id ?? id });
    }
    if (Array.isArray(body)) return r.body;
  } catch {
    // Not JSON: described below.
  }
  if (id === null) return '';
  return JSON.stringify({
    jsonrpc: '2.0',
    id,
    error: {
      code: -32603,
      message: `HTTP ${r.status}`,
      data: { reason: 'internal_error', status: r.status },
    },
  });
}
