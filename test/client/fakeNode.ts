import {
  type Codec,
  type Connector,
  type FrameConnection,
  type HandlerContext,
  type HelloResult,
  jsonCodec,
  MeshError,
  RpcPeer,
} from '@a2a-mesh/protocol';

/** One half of an in-memory linked pair: frames reach the other half asynchronously, in order. */
class PairEnd implements FrameConnection {
  other!: PairEnd;
  #onFrame: ((frame: string | Uint8Array) => void) | undefined;
  #onClose: ((code: number, reason: string) => void) | undefined;
  closed = false;

  constructor(readonly codec: Codec) {}

  send(frame: string | Uint8Array): void {
    if (this.closed) throw new MeshError('closed', 'connection is closed');
    queueMicrotask(() => {
      if (!this.other.closed) this.other.#onFrame?.(frame);
    });
  }

  close(code = 1000, reason = ''): void {
    if (this.closed) return;
    this.#shut(code, reason);
    queueMicrotask(() => this.other.#shut(code, reason));
  }

  #shut(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.#onClose?.(code, reason);
  }

  onFrame(listener: (frame: string | Uint8Array) => void): void {
    this.#onFrame = listener;
  }

  onClose(listener: (code: number, reason: string) => void): void {
    this.#onClose = listener;
  }
}

/** Two linked FrameConnection halves: [agent end, node end]. */
export function linkedPair(codec: Codec = jsonCodec): [FrameConnection, FrameConnection] {
  const a = new PairEnd(codec);
  const b = new PairEnd(codec);
  a.other = b;
  b.other = a;
  return [a, b];
}

/** A request the fake node received. */
export interface Received {
  method: string;
  params: Record<string, unknown>;
  conn: FakeConn;
}

type Handler = (params: Record<string, unknown>, conn: FakeConn, ctx: HandlerContext) => unknown;

/** The node side of one connection. */
export class FakeConn {
  readonly peer: RpcPeer;
  readonly end: FrameConnection;
  hello: Record<string, unknown> | undefined;
  closed = false;

  constructor(end: FrameConnection, node: FakeNode) {
    this.end = end;
    this.peer = new RpcPeer({
      send: (message) => end.send(end.codec.encode(message)),
      onRequest: (method, params, ctx) =>
        node.dispatch(method, (params ?? {}) as Record<string, unknown>, this, ctx),
    });
    end.onFrame((frame) => this.peer.receive(end.codec.decode(frame)));
    end.onClose(() => {
      this.closed = true;
      this.peer.close();
    });
  }

  /** Sends a notification to the agent. */
  notify(method: string, params: unknown): void {
    this.peer.notify(method, params);
  }

  /** Calls the agent. */
  request(method: string, params: unknown, timeoutMs = 5_000): Promise<unknown> {
    return this.peer.request(method, params, { timeoutMs });
  }

  /** Closes the connection from the node side. */
  close(code = 1000, reason = ''): void {
    this.end.close(code, reason);
  }
}

/**
 * A scripted node: answers `mesh/hello` by itself and everything else through `handle(method, fn)`;
 * methods without a handler never answer. Records every request.
 */
export class FakeNode {
  readonly conns: FakeConn[] = [];
  readonly received: Received[] = [];
  readonly #handlers = new Map<string, Handler>();
  #sessions = 0;
  /** When false, new connections are refused. */
  accepting = true;
  heartbeatMs = 0;

  /** Sets the handler of `method`; its return value (or promise) is the result. */
  handle(method: string, fn: Handler): this {
    this.#handlers.set(method, fn);
    return this;
  }

  /** The newest connection. */
  get last(): FakeConn {
    const conn = this.conns.at(-1);
    if (!conn) throw new Error('no connection yet');
    return conn;
  }

  /** Requests received for `method`, oldest first. */
  calls(method: string): Received[] {
    return this.received.filter((r) => r.method === method);
  }

  connector(codec: Codec = jsonCodec): Connector {
    return async () => {
      if (!this.accepting) throw new MeshError('connection_lost', 'connection refused');
      const [agentEnd, nodeEnd] = linkedPair(codec);
      this.conns.push(new FakeConn(nodeEnd, this));
      return agentEnd;
    };
  }

  dispatch(method: string, params: Record<string, unknown>, conn: FakeConn, ctx: HandlerContext): unknown {
    this.received.push({ method, params, conn });
    const handler = this.#handlers.get(method);
    if (handler) return handler(params, conn, ctx);
    const { signal } = ctx;
    if (method === 'mesh/hello') {
      conn.hello = params;
      this.#sessions++;
      const result: HelloResult = {
        agentId: typeof params.agentId === 'string' ? params.agentId : 'agent-1',
        nodeId: 'node-1',
        sessionId: `s${this.#sessions}`,
        protocolVersion: '1',
        heartbeatMs: this.heartbeatMs,
        limits: {
          maxMessageBytes: 1 << 20,
          maxQueueBytes: 1 << 22,
          maxSubscriptions: 100,
          maxStateBytes: 1 << 20,
        },
        resumed: params.resume !== undefined,
      };
      return result;
    }
    // Never answers: the caller's timeout or abort decides.
    return new Promise((_, reject) =>
      signal.addEventListener('abort', () => reject(signal.reason), { once: true }),
    );
  }
}

export { eventually } from '../helpers/node.js';
