import { createHash, timingSafeEqual } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import {
  assertNever,
  type Classified,
  CloseCode,
  type Codec,
  classify as classifyMessage,
  ErrorCode,
  type ErrorName,
  failure,
  type JsonRpcErrorObject,
  type JsonRpcRequest,
  type JsonRpcResponse,
  jsonCodec,
  MeshError,
  msgpackCodec,
} from '@a2a-mesh/protocol';
import type { TransportAuth } from '../auth/gate.js';
import { SpreadHeartbeat } from './heartbeat.js';
import type { TransportHostOptions } from './host.js';
import { HttpSessionConnection, SseStream } from './http2Session.js';
import { type HttpRequest, type HttpResponse, type HttpRouter, readBody, respond } from './httpRouter.js';

/** Settings of the HTTP session transport. Sizes in bytes, times in milliseconds. */
export interface Http2TransportOptions extends TransportHostOptions {
  /** How long a session may go without an event stream before it is closed (default 2 × heartbeatMs). */
  detachTimeoutMs?: number;
  /** Sent events kept per session for resuming streams (default 1024 events, at most maxQueueBytes). */
  replayEvents?: number;
}

/** Header carrying the session id, as `Mcp-Session-Id` does in MCP's streamable HTTP transport. */
export const SESSION_HEADER = 'mesh-session';
/** Largest batch, in messages (as on every transport). */
const MAX_BATCH = 100;
/** Closed sessions remembered, so a late request learns the close code. */
const REMEMBER_CLOSED = 1024;

interface ClosedSession {
  code: number;
  reason: string;
}

/**
 * The agent-session endpoints over HTTP/2 (and HTTP/1.1): `POST /mesh/rpc` carries calls (and the
 * agent's answers to node requests), `GET /mesh/stream` is the session's SSE stream of notifications
 * and node-to-agent requests, `DELETE /mesh/rpc` ends the session. `mesh/hello` without a
 * `Mesh-Session` header opens a session; every later request carries its id in that header.
 */
export class Http2Transport {
  readonly #o: Http2TransportOptions;
  readonly #sessions = new Map<string, HttpSessionConnection>();
  readonly #recentlyClosed = new Map<string, ClosedSession>();
  readonly #heartbeat: SpreadHeartbeat<HttpSessionConnection>;
  #closed = false;

  constructor(options: Http2TransportOptions) {
    this.#o = options;
    this.#heartbeat = new SpreadHeartbeat(options.heartbeatMs, (conn) => conn.ping());
  }

  /** Sessions open on this transport. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** Adds `POST`/`DELETE /mesh/rpc` and `GET /mesh/stream` to a router. */
  register(router: HttpRouter): void {
    router.add('POST', '/mesh/rpc', (req, res) => this.#post(req, res));
    router.add('DELETE', '/mesh/rpc', (req, res) => this.#delete(req, res));
    router.add('GET', '/mesh/stream', (req, res) => this.#stream(req, res));
  }

  /** Stops the heartbeat and closes every session still open (1001). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#heartbeat.stop();
    for (const conn of [...this.#sessions.values()]) conn.close(1001, 'node closing');
  }

  async #post(req: HttpRequest, res: HttpResponse): Promise<void> {
    const codec = bodyCodec(req.headers['content-type']);
    if (!codec) {
      const detail = 'Content-Type must be application/json or application/msgpack';
      reply(res, 415, jsonCodec, failure(null, invalidRequest(detail)));
      return;
    }
    const sessionId = header(req, SESSION_HEADER);
    const existing = sessionId === undefined ? undefined : this.#sessions.get(sessionId);
    if (sessionId !== undefined && !existing) {
      this.#unknownSession(res, codec, sessionId);
      return;
    }
    if (existing && !sameCredential(existing, req)) {
      reply(res, 401, codec, failure(null, credentialMismatch()));
      return;
    }
    const max = this.#o.maxMessageBytes;
    if (Number(req.headers['content-length']) > max) {
      reply(res, 413, codec, failure(null, tooLarge(max)));
      return;
    }
    let body: Buffer;
    try {
      body = await readBody(req, max);
    } catch (error) {
      if ((error as { status?: number }).status === 413) reply(res, 413, codec, failure(null, tooLarge(max)));
      else res.destroy();
      return;
    }
    let value: unknown;
    try {
      value = codec.decode(new Uint8Array(body.buffer, body.byteOffset, body.byteLength), max);
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      reply(res, 400, codec, failure(null, parseError(detail)));
      return;
    }
    const batch = Array.isArray(value);
    const items: unknown[] = Array.isArray(value) ? value : [value];
    if (batch && (items.length === 0 || items.length > MAX_BATCH)) {
      const why = items.length === 0 ? 'empty batch' : `batch of ${items.length} exceeds ${MAX_BATCH}`;
      reply(res, 400, codec, failure(null, invalidRequest(why)));
      return;
    }
    const messages = items.map(classifyMessage);
    const first = messages[0]!;
    if (!batch && first.type === 'invalid') {
      reply(res, 400, codec, failure(first.id, invalidRequest(first.reason)));
      return;
    }
    if (!existing) {
      if (batch || first.type !== 'request' || first.message.method !== 'mesh/hello') {
        const id = !batch && first.type === 'request' ? first.message.id : null;
        reply(res, 400, codec, failure(id, helloRequired('send mesh/hello without Mesh-Session first')));
        return;
      }
      await this.#hello(req, res, codec, first.message);
      return;
    }
    if (existing.closed) {
      this.#unknownSession(res, codec, sessionId!);
      return;
    }
    // The session reads JSON: only a msgpack body, re-encoded, can grow past the limit.
    if (codec === msgpackCodec && messages.some((m) => m.type !== 'invalid' && encodedTooLarge(m, max))) {
      reply(res, 413, codec, failure(null, tooLarge(max)));
      return;
    }
    await this.#run(existing, messages, batch, res, codec, sessionId!);
  }

  /** Feeds a POST's messages into the session and answers with the responses to its requests. */
  async #run(
    conn: HttpSessionConnection,
    messages: Classified[],
    batch: boolean,
    res: HttpResponse,
    codec: Codec,
    sessionId: string,
  ): Promise<void> {
    const gone = new AbortController();
    res.once('close', () => gone.abort());
    const answers: Promise<JsonRpcResponse>[] = [];
    for (const m of messages) {
      switch (m.type) {
        case 'invalid':
          answers.push(Promise.resolve(failure(m.id, invalidRequest(m.reason))));
          break;
        case 'request':
          answers.push(conn.call(m.message, gone.signal));
          break;
        case 'notification':
        case 'response':
          conn.feed(m.message);
          break;
        default:
          assertNever(m);
      }
    }
    if (answers.length === 0) {
      res.writeHead(202, { 'cache-control': 'no-store' });
      res.end();
      return;
    }
    let responses: JsonRpcResponse[];
    try {
      responses = await Promise.all(answers);
    } catch (error) {
      if (!(error instanceof MeshError)) throw error;
      if (!res.headersSent && !gone.signal.aborted) this.#unknownSession(res, codec, sessionId);
      return;
    }
    if (gone.signal.aborted) return;
    reply(res, 200, codec, batch ? responses : responses[0]!);
  }

  /** Opens a session for a `mesh/hello` sent without `Mesh-Session`. */
  async #hello(req: HttpRequest, res: HttpResponse, codec: Codec, hello: JsonRpcRequest): Promise<void> {
    if (this.#closed) {
      reply(res, 503, codec, failure(hello.id, unavailable('node is closing', 1001, 'node closing')));
      return;
    }
    const remoteAddress = req.socket?.remoteAddress ?? 'unknown';
    const waitMs = this.#o.admitConnection?.(remoteAddress) ?? 0;
    if (waitMs > 0) {
      const error = rpcError('RateLimited', 'too many new sessions from this address', {
        retryAfterMs: waitMs,
      });
      reply(res, 429, codec, failure(hello.id, error), { 'retry-after': String(Math.ceil(waitMs / 1000)) });
      return;
    }
    const authorization = header(req, 'authorization');
    let auth: TransportAuth = { type: 'none' };
    if (this.#o.checkCredential && authorization !== undefined) {
      auth = await this.#o.checkCredential(authorization);
      if (auth.type === 'failed' && auth.error.retryable) {
        // The keys could not be fetched: the credential may be fine, so say "retry", not "refused".
        const error = rpcError('Unavailable', 'credentials cannot be checked now');
        reply(res, 503, codec, failure(hello.id, error), { 'retry-after': '1' });
        return;
      }
    }
    const conn = new HttpSessionConnection({
      maxQueueBytes: this.#o.maxQueueBytes,
      replayEvents: this.#o.replayEvents ?? 1024,
      replayBytes: this.#o.maxQueueBytes,
      detachTimeoutMs: this.#o.detachTimeoutMs ?? 2 * this.#o.heartbeatMs,
      closeTimeoutMs: this.#o.closeTimeoutMs,
      onClosed: (c, code, reason) => this.#forget(c, code, reason),
      ...(this.#o.onSlowConsumer ? { onSlowConsumer: this.#o.onSlowConsumer } : {}),
      logger: this.#o.logger,
    });
    this.#o.onConnection(conn, { remoteAddress, auth });
    if (conn.closed) {
      const { code, reason } = conn.closeInfo!;
      const [status, error] = refusal(code, reason);
      reply(res, status, codec, failure(hello.id, error));
      return;
    }
    if (authorization !== undefined) conn.credential = credentialDigest(authorization);
    const gone = new AbortController();
    res.once('close', () => {
      gone.abort();
      if (conn.sessionId === undefined) conn.close(1000, 'hello abandoned');
    });
    let response: JsonRpcResponse;
    try {
      response = await conn.call(hello, gone.signal);
    } catch (error) {
      if (!(error instanceof MeshError)) throw error;
      const { code, reason } = conn.closeInfo ?? { code: 1011, reason: 'closed' };
      if (!gone.signal.aborted)
        reply(res, 503, codec, failure(hello.id, unavailable(`session closed: ${reason}`, code, reason)));
      return;
    }
    const sessionId = 'result' in response ? sessionIdOf(response.result) : undefined;
    if (sessionId === undefined || conn.closed) {
      const closed = conn.closeInfo;
      // Without an id nobody can address the session again.
      conn.close(1000, 'hello failed');
      if (closed) {
        // The node closed the session during its hello (e.g. a refused credential): say so in the status.
        const [status, error] = refusal(closed.code, closed.reason);
        reply(res, status, codec, 'error' in response ? response : failure(hello.id, error));
      } else reply(res, 200, codec, response);
      return;
    }
    conn.sessionId = sessionId;
    this.#sessions.set(sessionId, conn);
    this.#heartbeat.add(conn);
    reply(res, 200, codec, response, { [SESSION_HEADER]: sessionId });
  }

  /** The session named by `Mesh-Session`, or undefined after answering 400, 404 or 401. */
  #sessionOf(req: HttpRequest, res: HttpResponse): { conn: HttpSessionConnection } | undefined {
    const sessionId = header(req, SESSION_HEADER);
    if (sessionId === undefined) {
      reply(res, 400, jsonCodec, failure(null, helloRequired('Mesh-Session header required')));
      return undefined;
    }
    const conn = this.#sessions.get(sessionId);
    if (!conn) {
      this.#unknownSession(res, jsonCodec, sessionId);
      return undefined;
    }
    if (!sameCredential(conn, req)) {
      reply(res, 401, jsonCodec, failure(null, credentialMismatch()));
      return undefined;
    }
    return { conn };
  }

  #delete(req: HttpRequest, res: HttpResponse): void {
    const found = this.#sessionOf(req, res);
    if (!found) return;
    const { conn } = found;
    conn.close(1000, 'closed by the agent');
    res.writeHead(204, { 'cache-control': 'no-store' });
    res.end();
  }

  #stream(req: HttpRequest, res: HttpResponse): void {
    const found = this.#sessionOf(req, res);
    if (!found) return;
    const { conn } = found;
    const raw = header(req, 'last-event-id');
    const lastEventId = raw === undefined ? undefined : /^\d{1,15}$/.test(raw) ? Number(raw) : Number.NaN;
    if (Number.isNaN(lastEventId) || conn.checkResume(lastEventId) === 'ahead') {
      const detail = `Last-Event-ID ${JSON.stringify(raw)} is not an event of this session`;
      reply(res, 400, jsonCodec, failure(null, invalidRequest(detail)));
      return;
    }
    const headers: Record<string, string> = {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
    };
    if (req.httpVersionMajor < 2) headers['x-accel-buffering'] = 'no';
    (res as ServerResponse).writeHead(200, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const stream = new SseStream(res);
    // Sent at once so the headers (and the retry hint) reach the agent before the first event.
    (res as ServerResponse).write('retry: 1000\n\n');
    res.once('close', () => conn.detach(stream));
    conn.attach(stream, lastEventId);
  }

  #forget(conn: HttpSessionConnection, code: number, reason: string): void {
    const id = conn.sessionId;
    if (id === undefined || this.#sessions.get(id) !== conn) return;
    this.#sessions.delete(id);
    this.#heartbeat.delete(conn);
    this.#recentlyClosed.set(id, { code, reason });
    if (this.#recentlyClosed.size > REMEMBER_CLOSED) {
      const oldest = this.#recentlyClosed.keys().next().value;
      if (oldest !== undefined) this.#recentlyClosed.delete(oldest);
    }
  }

  #unknownSession(res: HttpResponse, codec: Codec, sessionId: string): void {
    const closed = this.#recentlyClosed.get(sessionId);
    const def = ErrorCode.HelloRequired;
    const error: JsonRpcErrorObject = {
      code: def.code,
      message: 'Unknown session',
      data: {
        reason: def.reason,
        detail: 'unknown or expired Mesh-Session; call mesh/hello again',
        ...(closed ? { closeCode: closed.code, closeReason: closed.reason } : {}),
      },
    };
    reply(res, 404, codec, failure(null, error));
  }
}

function header(req: HttpRequest, name: string): string | undefined {
  const v = req.headers[name];
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s === '' ? undefined : s;
}

function bodyCodec(contentType: string | undefined): Codec | undefined {
  const type = contentType?.split(';')[0]?.trim().toLowerCase();
  if (type === 'application/json') return jsonCodec;
  if (type === 'application/msgpack' || type === 'application/x-msgpack') return msgpackCodec;
  return undefined;
}

function reply(
  res: HttpResponse,
  status: number,
  codec: Codec,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.writableEnded) return;
  const encoded = codec.encode(body);
  const bytes = typeof encoded === 'string' ? Buffer.from(encoded) : encoded;
  respond(res, status, bytes, {
    'content-type': codec === msgpackCodec ? 'application/msgpack' : 'application/json',
    'content-length': String(bytes.byteLength),
    'cache-control': 'no-store',
    ...headers,
  });
}

function encodedTooLarge(m: Exclude<Classified, { type: 'invalid' }>, max: number): boolean {
  const text = JSON.stringify(m.message);
  return text.length > max / 3 && Buffer.byteLength(text) > max;
}

function sessionIdOf(result: unknown): string | undefined {
  const id = (result as { sessionId?: unknown } | null)?.sessionId;
  return typeof id === 'string' ? id : undefined;
}

function invalidRequest(detail: string): JsonRpcErrorObject {
  const def = ErrorCode.InvalidRequest;
  return { code: def.code, message: 'Invalid Request', data: { reason: def.reason, detail } };
}

function parseError(detail: string): JsonRpcErrorObject {
  const def = ErrorCode.ParseError;
  return { code: def.code, message: 'Parse error', data: { reason: def.reason, detail } };
}

function tooLarge(limitBytes: number): JsonRpcErrorObject {
  const def = ErrorCode.PayloadTooLarge;
  return {
    code: def.code,
    message: `body exceeds the ${limitBytes}-byte limit`,
    data: { reason: def.reason, limitBytes },
  };
}

function helloRequired(detail: string): JsonRpcErrorObject {
  const def = ErrorCode.HelloRequired;
  return { code: def.code, message: 'Call mesh/hello first', data: { reason: def.reason, detail } };
}

function rpcError(name: ErrorName, message: string, extra: Record<string, unknown> = {}): JsonRpcErrorObject {
  const def = ErrorCode[name];
  return { code: def.code, message, data: { ...extra, reason: def.reason } };
}

/** The status and error for a session the node closed before anyone could use it. */
function refusal(code: number, reason: string): [number, JsonRpcErrorObject] {
  const extra = { closeCode: code, closeReason: reason };
  if (code === CloseCode.Unauthenticated) return [401, rpcError('Unauthenticated', reason, extra)];
  if (code === CloseCode.Forbidden) return [403, rpcError('Forbidden', reason, extra)];
  return [503, unavailable(`session refused: ${reason}`, code, reason)];
}

function credentialDigest(authorization: string): Buffer {
  return createHash('sha256').update(authorization).digest();
}

/** A session opened with an `Authorization` header takes only requests that repeat it. */
function sameCredential(conn: HttpSessionConnection, req: HttpRequest): boolean {
  if (conn.credential === undefined) return true;
  const given = header(req, 'authorization');
  return given !== undefined && timingSafeEqual(conn.credential, credentialDigest(given));
}

function credentialMismatch(): JsonRpcErrorObject {
  return rpcError('Unauthenticated', 'this session was opened with another credential', {
    detail: 'repeat the Authorization header of the mesh/hello request',
  });
}

function unavailable(message: string, closeCode: number, closeReason: string): JsonRpcErrorObject {
  const def = ErrorCode.Unavailable;
  return { code: def.code, message, data: { reason: def.reason, closeCode, closeReason } };
}
