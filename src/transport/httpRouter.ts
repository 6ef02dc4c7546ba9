import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { type Http2ServerRequest, Http2ServerResponse, type ServerHttp2Stream } from 'node:http2';
import { withFields } from '@a2a-mesh/protocol';

/** A request from either the HTTP/1.1 or the HTTP/2 compatibility API. */
export type HttpRequest = IncomingMessage | Http2ServerRequest;
/** A response from either the HTTP/1.1 or the HTTP/2 compatibility API. */
export type HttpResponse = ServerResponse | Http2ServerResponse;

/**
 * What a stream route reads of a request: an HTTP/1.1 request, or an HTTP/2 stream's headers with
 * the stream's body events (`data`, `end`, `error`, `close`).
 */
export interface HttpIn {
  readonly headers: IncomingHttpHeaders;
  readonly socket?: { readonly remoteAddress?: string | undefined } | null | undefined;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'end' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  off(event: 'data', listener: (chunk: Buffer) => void): unknown;
  off(event: 'end' | 'close', listener: () => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
  destroy(): unknown;
}

/** What a stream route writes: an HTTP/1.1 response, or an HTTP/2 stream answered on itself. */
export interface HttpOut {
  readonly headersSent: boolean;
  readonly writableEnded: boolean;
  writeHead(status: number, headers: Record<string, string | number>): unknown;
  write(chunk: string): unknown;
  end(body?: string | Uint8Array): unknown;
  once(event: 'close', listener: () => void): unknown;
}

/** A request's target as handlers see it: its path (as `URL` normalises it) and its query. */
export interface RequestTarget {
  readonly pathname: string;
  /** Parsed on first use. */
  readonly searchParams: URLSearchParams;
}

/** Handles one matched request; `params` holds the `:name` segments of the pattern, decoded. */
type Handler<Req, Res> = (
  req: Req,
  res: Res,
  params: Record<string, string>,
  url: RequestTarget,
) => void | Promise<void>;

/** What `new URL` made of a request target, kept per distinct target (see `HttpRouter.#parse`). */
interface ParsedTarget {
  readonly pathname: string;
  readonly search: string;
  /** The path's non-empty segments. */
  readonly parts: readonly string[];
}

/** How many distinct request targets the router keeps parsed; past it, it starts again. */
const TARGET_CACHE_SIZE = 512;

class Target implements RequestTarget {
  #searchParams: URLSearchParams | undefined;

  constructor(
    readonly pathname: string,
    readonly search: string,
  ) {}

  get searchParams(): URLSearchParams {
    this.#searchParams ??= new URLSearchParams(this.search);
    return this.#searchParams;
  }
}

/** A handler on the HTTP/1.1 or HTTP/2 compatibility API. */
export type HttpHandler = Handler<HttpRequest, HttpResponse>;

/** A handler that needs only `HttpIn`/`HttpOut`: on HTTP/2 it runs on the stream itself. */
export type StreamHandler = Handler<HttpIn, HttpOut>;

interface Route {
  method: string;
  segments: string[];
  handler: HttpHandler | StreamHandler;
  /** True when `handler` is a `StreamHandler`. */
  onStream: boolean;
}

/**
 * Method + path routing for the node's HTTP endpoints (`/health`, `/metrics`, the A2A gateway, ...),
 * shared by HTTP/1.1 and HTTP/2. Patterns are literal segments and `:name` captures.
 */
export class HttpRouter {
  readonly #routes: Route[] = [];
  readonly #targets = new Map<string, ParsedTarget>();

  /** `onError` hears of every handler that throws, with the request's path. */
  constructor(readonly onError: (error: unknown, path: string) => void) {}

  /** Adds a route; the first registered match wins. */
  add(method: string, pattern: string, handler: HttpHandler): void {
    this.#add(method, pattern, handler, false);
  }

  /**
   * Adds a route whose handler needs only `HttpIn`/`HttpOut`: on HTTP/2 it gets the stream itself
   * (`handleStream`), without the compatibility API's request and response objects, which with
   * their second readable stream were 8-10% of the node's CPU per A2A SendMessage.
   */
  addStream(method: string, pattern: string, handler: StreamHandler): void {
    this.#add(method, pattern, handler, true);
  }

  #add(method: string, pattern: string, handler: HttpHandler | StreamHandler, onStream: boolean): void {
    this.#routes.push({
      method: method.toUpperCase(),
      segments: pattern.split('/').filter(Boolean),
      handler,
      onStream,
    });
  }

  /** Routes a request: 404 when no path matches, 405 (with `allow`) when only the method is wrong. */
  handle(req: HttpRequest, res: HttpResponse): void {
    const found = this.#match(req.method, req.url);
    if ('route' in found) {
      const { route, params, url } = found;
      this.#run(() => (route.handler as HttpHandler)(req, res, params, url), url, res);
    } else if (found.allowed.length > 0) {
      sendJson(res, 405, { error: 'method not allowed' }, { allow: found.allowed.join(', ') });
    } else sendJson(res, 404, { error: 'not found' });
  }

  /**
   * Takes an HTTP/2 request on its stream when a stream route matches it, and returns true; returns
   * false for every other request (to be handled with the compatibility API, `handle`).
   */
  handleStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): boolean {
    const found = this.#match(
      headers[':method'] as string | undefined,
      headers[':path'] as string | undefined,
    );
    if (!('route' in found) || !found.route.onStream) return false;
    const { route, params, url } = found;
    const req = new StreamIn(stream, headers);
    const res = new StreamOut(stream);
    this.#run(() => (route.handler as StreamHandler)(req, res, params, url), url, res);
    return true;
  }

  #match(
    method: string | undefined,
    path: string | undefined,
  ): { route: Route; params: Record<string, string>; url: RequestTarget } | { allowed: string[] } {
    const target = this.#parse(path ?? '/');
    const allowed: string[] = [];
    for (const route of this.#routes) {
      const params = match(route.segments, target.parts);
      if (!params) continue;
      if (route.method !== method && !(route.method === 'GET' && method === 'HEAD')) {
        allowed.push(route.method);
        continue;
      }
      return { route, params, url: new Target(target.pathname, target.search) };
    }
    return { allowed };
  }

  /**
   * The target parsed by `new URL` (its normalisation of the path included), once per distinct
   * target: an A2A client posts to the same few paths, and parsing each request's target again
   * was 4% of the node's CPU per SendMessage.
   */
  #parse(path: string): ParsedTarget {
    let target = this.#targets.get(path);
    if (!target) {
      const url = new URL(path, 'http://localhost');
      target = { pathname: url.pathname, search: url.search, parts: url.pathname.split('/').filter(Boolean) };
      if (this.#targets.size >= TARGET_CACHE_SIZE) this.#targets.clear();
      this.#targets.set(path, target);
    }
    return target;
  }

  #run(handler: () => void | Promise<void>, url: RequestTarget, res: HttpResponse | HttpOut): void {
    Promise.resolve()
      .then(handler)
      .catch((error: unknown) => {
        this.onError(error, url.pathname);
        if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
        else (res as HttpOut).end();
      });
  }
}

/** An HTTP/2 request read on its stream (see `HttpRouter.addStream`). */
class StreamIn implements HttpIn {
  constructor(
    readonly stream: ServerHttp2Stream,
    readonly headers: IncomingHttpHeaders,
  ) {
    // An error on the stream (a reset by the client) must not be unhandled; the handler sees the
    // stream close.
    stream.on('error', ignore);
  }

  get socket() {
    return this.stream.session?.socket;
  }

  on(event: string, listener: (arg: never) => void): this {
    this.stream.on(event, listener as (arg: unknown) => void);
    return this;
  }

  off(event: string, listener: (arg: never) => void): this {
    this.stream.off(event, listener as (arg: unknown) => void);
    return this;
  }

  destroy(): void {
    this.stream.destroy();
  }
}

/** An HTTP/2 response written on its stream (see `HttpRouter.addStream`). */
class StreamOut implements HttpOut {
  #ended = false;

  constructor(readonly stream: ServerHttp2Stream) {}

  get headersSent(): boolean {
    return this.stream.headersSent;
  }

  /** True once `end` was called (the stream's own flag is also set when the client resets it). */
  get writableEnded(): boolean {
    return this.#ended;
  }

  writeHead(status: number, headers: Record<string, string | number>): void {
    if (this.stream.destroyed || this.stream.headersSent) return;
    this.stream.respond(withFields(headers, { ':status': status }));
  }

  write(chunk: string): boolean {
    return !this.stream.destroyed && this.stream.write(chunk);
  }

  end(body?: string | Uint8Array): void {
    this.#ended = true;
    if (this.stream.destroyed) return;
    if (body === undefined) this.stream.end();
    else endWith(this.stream, body);
  }

  once(event: 'close', listener: () => void): void {
    this.stream.once(event, listener);
  }
}

function ignore(): void {}

/**
 * Writes `body` on an HTTP/2 stream and ends the stream once the write has completed. With
 * `stream.end(body)` the stream closes while its write is still pending, and on Node 20 the write's
 * completion then finds the stream destroyed and builds an ERR_STREAM_DESTROYED error, stack trace
 * included, that nothing reads (`errorBuffer` in node:internal/streams/writable): 4-7 µs of CPU per
 * response in a plain node:http2 server, 3.5% of the node per A2A SendMessage. Ending after the write
 * sends END_STREAM on an empty DATA frame instead.
 */
function endWith(stream: ServerHttp2Stream, body: string | Uint8Array): void {
  stream.write(body, () => {
    if (!stream.destroyed) stream.end();
  });
}

function match(pattern: readonly string[], parts: readonly string[]): Record<string, string> | undefined {
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
  res: HttpResponse | HttpOut,
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
  res: HttpResponse | HttpOut,
  status: number,
  body: string | Uint8Array,
  headers: Record<string, string | number>,
): void {
  if (res instanceof Http2ServerResponse && res.req.method !== 'HEAD') {
    const stream = res.stream;
    if (!stream.headersSent && !stream.destroyed) {
      stream.respond(withFields(headers, { ':status': status }));
      endWith(stream, body);
      return;
    }
  }
  (res as HttpOut).writeHead(status, headers);
  res.end(body);
}

/**
 * Reads a request body up to `maxBytes`; rejects with `{ status: 413 }` beyond it (and destroys the
 * request stream), or with the stream's error, or when it closes before its end. Listens for events
 * rather than iterating the stream (an async iterator per request showed in profiles).
 */
export function readBody(req: HttpIn, maxBytes: number): Promise<Buffer> {
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
