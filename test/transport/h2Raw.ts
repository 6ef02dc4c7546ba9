import { request as httpRequest } from 'node:http';
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect,
  type IncomingHttpHeaders,
  type SecureClientSessionOptions,
} from 'node:http2';
import { onTestFinished } from 'vitest';

/** One HTTP answer, body as text (or bytes for msgpack). */
export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  bytes: Buffer;
  /** The body parsed as JSON (undefined when empty or not JSON). */
  json: unknown;
}

/** One SSE event as read off the wire. */
export interface RawEvent {
  id: string | undefined;
  event: string;
  data: string;
}

/** An open `GET /mesh/stream`, recording everything it reads. */
export interface RawStream {
  readonly status: Promise<number>;
  readonly events: RawEvent[];
  readonly comments: string[];
  /** Resolves when the stream has ended. */
  readonly ended: Promise<void>;
  /** Resets the stream from the agent's side. */
  close(): void;
  /** Stops reading (the HTTP/2 flow-control window then fills up). */
  pause(): void;
}

/** A frame-level HTTP/2 client: one connection, any request, SSE streams recorded. */
export interface RawH2 {
  readonly session: ClientHttp2Session;
  request(
    method: string,
    path: string,
    headers?: Record<string, string>,
    body?: string | Buffer,
  ): Promise<RawResponse>;
  /** POSTs a JSON value to /mesh/rpc, with `Mesh-Session` when given. */
  rpc(body: unknown, sessionId?: string): Promise<RawResponse>;
  /** Says hello and returns the session id. */
  hello(agentId?: string): Promise<string>;
  stream(sessionId: string, lastEventId?: string): RawStream;
}

/** Connects to `origin` (h2c for http:, TLS for https:); closed when the test finishes. */
export function rawH2(origin: string, tls: SecureClientSessionOptions = {}): RawH2 {
  const session = connect(origin, tls);
  session.on('error', () => {});
  onTestFinished(() => {
    session.destroy();
  });
  const request: RawH2['request'] = (method, path, headers = {}, body) =>
    new Promise((resolve, reject) => {
      const req = session.request({ ':method': method, ':path': path, ...headers });
      const chunks: Buffer[] = [];
      let head: IncomingHttpHeaders = {};
      req.on('response', (h) => {
        head = h;
      });
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('error', reject);
      req.on('end', () => {
        const bytes = Buffer.concat(chunks);
        const text = bytes.toString('utf8');
        let json: unknown;
        try {
          json = text === '' ? undefined : JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: Number(head[':status']), headers: head, body: text, bytes, json });
      });
      req.end(body);
    });
  const rpc: RawH2['rpc'] = (body, sessionId) =>
    request(
      'POST',
      '/mesh/rpc',
      { 'content-type': 'application/json', ...(sessionId ? { 'mesh-session': sessionId } : {}) },
      JSON.stringify(body),
    );
  return {
    session,
    request,
    rpc,
    async hello(agentId) {
      const r = await rpc({ jsonrpc: '2.0', id: 'hello', method: 'mesh/hello', params: { agentId } });
      const id = r.headers['mesh-session'];
      if (r.status !== 200 || typeof id !== 'string') throw new Error(`hello failed: ${r.status} ${r.body}`);
      return id;
    },
    stream(sessionId, lastEventId) {
      const req: ClientHttp2Stream = session.request(
        {
          ':method': 'GET',
          ':path': '/mesh/stream',
          'mesh-session': sessionId,
          ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }),
        },
        { endStream: true },
      );
      return readSse(req);
    },
  };
}

function readSse(req: ClientHttp2Stream): RawStream {
  const events: RawEvent[] = [];
  const comments: string[] = [];
  let buffer = '';
  let fields: RawEvent = { id: undefined, event: 'message', data: '' };
  let hasData = false;
  req.setEncoding('utf8');
  const status = new Promise<number>((resolve) => req.on('response', (h) => resolve(Number(h[':status']))));
  req.on('data', (chunk: string) => {
    buffer += chunk;
    for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line === '') {
        if (hasData) events.push(fields);
        fields = { id: undefined, event: 'message', data: '' };
        hasData = false;
      } else if (line.startsWith(':')) comments.push(line.slice(1).trim());
      else {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon);
        const value = line.slice(colon + 1).replace(/^ /, '');
        if (name === 'id') fields.id = value;
        if (name === 'event') fields.event = value;
        if (name === 'data') {
          fields.data = hasData ? `${fields.data}\n${value}` : value;
          hasData = true;
        }
      }
    }
  });
  req.on('error', () => {});
  const ended = new Promise<void>((resolve) => req.on('close', () => resolve()));
  return { status, events, comments, ended, close: () => req.close(), pause: () => req.pause() };
}

/** The JSON-RPC messages carried by a stream's default events. */
export function messagesOf(stream: RawStream): { method?: string; id?: unknown; params?: unknown }[] {
  return stream.events.filter((e) => e.event === 'message').map((e) => JSON.parse(e.data));
}

/** One HTTP/1.1 request on a fresh connection (no keep-alive), body as text. */
export function http1Request(
  origin: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string | Buffer,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, origin);
    const req = httpRequest(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const bytes = Buffer.concat(chunks);
        const text = bytes.toString('utf8');
        let json: unknown;
        try {
          json = text === '' ? undefined : JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, bytes, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
