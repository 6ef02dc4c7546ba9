import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Http2ServerRequest, Http2ServerResponse } from 'node:http2';

/** A request from either the HTTP/1.1 or the HTTP/2 compatibility API. */
export type HttpRequest = IncomingMessage | Http2ServerRequest;
/** A response from either the HTTP/1.1 or the HTTP/2 compatibility API. */
export type HttpResponse = ServerResponse | Http2ServerResponse;

/** Handles one matched request; `params` holds the `:name` segments of the pattern, decoded. */
export type HttpHandler = (
  req: HttpRequest,
  res: HttpResponse,
  params: Record<string, string>,
  url: URL,
) => void | Promise<void>;

interface Route {
  method: string;
  segments: string[];
  handler: HttpHandler;
}

/**
 * Method + path routing for the node's HTTP endpoints (`/health`, `/metrics`, the A2A gateway, ...),
 * shared by HTTP/1.1 and HTTP/2. Patterns are literal segments and `:name` captures.
 */
export class HttpRouter {
  readonly #routes: Route[] = [];

  constructor(readonly onError: (error: unknown, req: HttpRequest) => void) {}

  /** Adds a route; the first registered match wins. */
  add(method: string, pattern: string, handler: HttpHandler): void {
    this.#routes.push({
      method: method.toUpperCase(),
      segments: pattern.split('/').filter(Boolean),
      handler,
    });
  }

  /** Routes a request: 404 when no path matches, 405 (with `allow`) when only the method is wrong. */
  handle(req: HttpRequest, res: HttpResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const parts = url.pathname.split('/').filter(Boolean);
    const allowed: string[] = [];
    for (const route of this.#routes) {
      const params = match(route.segments, parts);
      if (!params) continue;
      if (route.method !== req.method && !(route.method === 'GET' && req.method === 'HEAD')) {
        allowed.push(route.method);
        continue;
      }
      Promise.resolve()
        .then(() => route.handler(req, res, params, url))
        .catch((error: unknown) => {
          this.onError(error, req);
          if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
          else res.end();
        });
      return;
    }
    if (allowed.length > 0)
      sendJson(res, 405, { error: 'method not allowed' }, { allow: allowed.join(', ') });
    else sendJson(res, 404, { error: 'not found' });
  }
}

function match(pattern: string[], parts: string[]): Record<string, string> | undefined {
  if (pattern.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    const v = parts[i]!;
    if (p.startsWith(':')) {
      try {
        params[p.slice(1)] = decodeURIComponent(v);
      } catch {
        return undefined;
      }
    } else if (p !== v) return undefined;
  }
  return params;
}

/** Writes a JSON response. */
export function sendJson(
  res: HttpResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  respond(res, status, text, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
}

/**
 * Writes a whole response: `headers` (lower-case names) and `body`. On HTTP/2 the stream is answered
 * directly: the compatibility API's writeHead and end validate and copy every header again, which
 * took 8% of the node's CPU per A2A SendMessage. The compatibility response object still reports
 * `headersSent` and emits `finish` and `close`; its `writableEnded` stays false.
 */
export function respond(
  res: HttpResponse,
  status: number,
  body: string | Uint8Array,
  headers: Record<string, string | number>,
): void {
  if (res instanceof Http2ServerResponse && res.req.method !== 'HEAD') {
    const stream = res.stream;
    if (!stream.headersSent && !stream.destroyed) {
      stream.respond({ ...headers, ':status': status });
      stream.end(body);
      return;
    }
  }
  (res as ServerResponse).writeHead(status, headers);
  res.end(body);
}

/**
 * Reads a request body up to `maxBytes`; rejects with `{ status: 413 }` beyond it (and destroys the
 * request stream), or with the stream's error, or when it closes before its end. Listens for events
 * rather than iterating the stream (an async iterator per request showed in profiles).
 */
export function readBody(req: HttpRequest, maxBytes: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        done();
        req.destroy();
        reject(Object.assign(new Error(`body over ${maxBytes} bytes`), { status: 413 }));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      done();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    };
    const onError = (error: Error) => {
      done();
      reject(error);
    };
    const onClose = () => {
      done();
      reject(
        Object.assign(new Error('request closed before its end'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }),
      );
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}
