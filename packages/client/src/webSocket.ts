import { type Codec, type Connector, type FrameConnection, MeshError, TurnCork } from '@a2a-mesh/protocol';

/** A WebSocket constructor with the WHATWG signature: the browser's, Node 22's global, or `ws`'s. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => object;

/** The part of the WHATWG WebSocket surface this module uses (`ws` provides it too). */
interface WebSocketLike {
  readonly protocol: string;
  readonly readyState: number;
  binaryType: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  /** `ws` only: drops the socket without a closing handshake. */
  terminate?(): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onerror: ((event: { message?: string; error?: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
}

const OPEN = 1;

/** Options of `webSocketConnector`. */
export interface WebSocketConnectorOptions {
  /** `ws://` or `wss://` URL of a node's `/mesh` endpoint. */
  url: string;
  /** Codec (and so subprotocol) to ask for. */
  codec: Codec;
  /** Constructor to use (default: the global `WebSocket`, else the `ws` package, loaded on demand). */
  WebSocket?: WebSocketConstructor;
  /** How long `close()` waits for the closing handshake before dropping the socket, in ms (default 1000). */
  closeTimeoutMs?: number;
  /**
   * Handshake headers, e.g. `{ authorization: 'Bearer <token>' }`. Only constructors that take options
   * (the `ws` package in Node) send them; browsers cannot, so there use the client's `token`.
   */
  headers?: Record<string, string>;
}

let wsModule: Promise<WebSocketConstructor> | undefined;

async function loadWebSocket(needHeaders: boolean): Promise<WebSocketConstructor> {
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  // A global (WHATWG) WebSocket cannot send headers; `ws` can.
  if (typeof global === 'function' && !needHeaders) return global;
  // `ws` is an optional dependency: only Node versions without a global WebSocket need it.
  wsModule ??= import('ws').then(
    (mod) => {
      const m = mod as unknown as { default?: WebSocketConstructor; WebSocket?: WebSocketConstructor };
      const ctor = m.WebSocket ?? m.default;
      if (typeof ctor !== 'function')
        throw new MeshError('bad_config', 'the ws package has no WebSocket export');
      return ctor;
    },
    (cause: unknown) => {
      wsModule = undefined;
      throw new MeshError('bad_config', 'no global WebSocket and the ws package is not installed', { cause });
    },
  );
  return wsModule;
}

function toFrame(data: unknown): string | Uint8Array | undefined {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return undefined;
}

/**
 * A Connector that opens a WebSocket to `url` with the codec's subprotocol (binary frames as
 * ArrayBuffer), and fails unless the node agreed to that subprotocol. Browser-safe.
 */
export function webSocketConnector(options: WebSocketConnectorOptions): Connector {
  const { url, codec } = options;
  const closeTimeoutMs = options.closeTimeoutMs ?? 1_000;
  return async (signal) => {
    if (signal.aborted) throw new MeshError('aborted', `connect to ${url} aborted`, { cause: signal.reason });
    const Ctor = options.WebSocket ?? (await loadWebSocket(options.headers !== undefined));
    let ws: WebSocketLike;
    try {
      const headers = options.headers;
      ws = (
        headers
          ? new (Ctor as unknown as new (u: string, p: string[], o: object) => object)(
              url,
              [codec.subprotocol],
              {
                headers,
              },
            )
          : new Ctor(url, [codec.subprotocol])
      ) as WebSocketLike;
    } catch (cause) {
      throw new MeshError('bad_config', `cannot open a WebSocket to ${url}`, { cause });
    }
    ws.binaryType = 'arraybuffer';
    await new Promise<void>((resolve, reject) => {
      const fail = (error: Error) => {
        signal.removeEventListener('abort', onAbort);
        ws.onopen = ws.onclose = null;
        // `ws` emits an error when a connecting socket is dropped; it needs a listener.
        ws.onerror = ignore;
        dropSocket(ws);
        reject(error);
      };
      const onAbort = () =>
        fail(new MeshError('aborted', `connect to ${url} aborted`, { cause: signal.reason }));
      signal.addEventListener('abort', onAbort, { once: true });
      ws.onopen = () => {
        signal.removeEventListener('abort', onAbort);
        ws.onopen = ws.onclose = null;
        ws.onerror = ignore;
        if (ws.protocol !== codec.subprotocol) {
          dropSocket(ws);
          reject(new MeshError('protocol', `${url} did not accept subprotocol ${codec.subprotocol}`));
          return;
        }
        resolve();
      };
      ws.onerror = (event) => {
        const cause = event.error ?? event.message;
        fail(
          new MeshError(
            'connection_lost',
            `cannot connect to ${url}`,
            cause === undefined ? undefined : { cause },
          ),
        );
      };
      ws.onclose = (event) =>
        fail(
          new MeshError('connection_lost', `${url} closed the connection (${event.code} ${event.reason})`),
        );
    });
    return new WebSocketConnection(ws, codec, closeTimeoutMs);
  };
}

function ignore(): void {}

function dropSocket(ws: WebSocketLike): void {
  try {
    if (ws.terminate) ws.terminate();
    else ws.close();
  } catch {
    // Already closing.
  }
}

class WebSocketConnection implements FrameConnection {
  readonly codec: Codec;
  readonly #ws: WebSocketLike;
  readonly #closeTimeoutMs: number;
  #frameListener: ((frame: string | Uint8Array) => void) | undefined;
  #closeListener: ((code: number, reason: string) => void) | undefined;
  #closed: { code: number; reason: string } | undefined;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  /** With `ws` in Node, a turn's frames (a reply, the next request) leave in one system call. */
  readonly #cork = new TurnCork();

  constructor(ws: WebSocketLike, codec: Codec, closeTimeoutMs: number) {
    this.#ws = ws;
    this.codec = codec;
    this.#closeTimeoutMs = closeTimeoutMs;
    ws.onmessage = (event) => {
      const frame = toFrame(event.data);
      if (frame !== undefined && !this.#closed) this.#frameListener?.(frame);
    };
    // The close event that follows an error carries the code.
    ws.onerror = ignore;
    ws.onclose = (event) => this.#finish(event.code, event.reason);
  }

  send(frame: string | Uint8Array): void {
    if (this.#closed || this.#ws.readyState !== OPEN) throw new MeshError('closed', 'connection is closed');
    this.#cork.hold(this.#ws);
    this.#ws.send(frame);
  }

  close(code = 1000, reason = ''): void {
    if (this.#closed || this.#closeTimer) return;
    try {
      this.#ws.close(code, reason);
    } catch {
      // Browsers refuse some codes; close without one.
      this.#ws.close();
    }
    // A dead peer never answers the closing handshake: give up on it after a while.
    this.#closeTimer = setTimeout(() => {
      dropSocket(this.#ws);
      this.#finish(code, reason || 'close timeout');
    }, this.#closeTimeoutMs);
  }

  onFrame(listener: (frame: string | Uint8Array) => void): void {
    this.#frameListener = listener;
  }

  onClose(listener: (code: number, reason: string) => void): void {
    this.#closeListener = listener;
    if (this.#closed) listener(this.#closed.code, this.#closed.reason);
  }

  #finish(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = { code, reason };
    if (this.#closeTimer) clearTimeout(this.#closeTimer);
    this.#ws.onmessage = this.#ws.onclose = null;
    this.#closeListener?.(code, reason);
  }
}
