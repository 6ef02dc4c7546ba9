import WebSocket from 'ws';

/**
 * A minimal mesh agent for load generation: one WebSocket speaking JSON-RPC (`a2a-mesh.v1.json`),
 * with none of the SDK's per-event work (no schema parsing, no local state fold), so a load generator
 * process can hold thousands and the figures measure the node. Notification frames are counted and
 * handed to `onEvent` as raw bytes; only responses are parsed.
 */
export class RawAgent {
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  #nextId = 1;
  /** Notification frames received (collaboration events, topic messages). */
  received = 0;
  /** Bytes of those frames. */
  receivedBytes = 0;
  /** Called with every notification frame, when set (e.g. to parse a sample). */
  onEvent: ((frame: Buffer) => void) | undefined;

  private constructor(
    readonly ws: WebSocket,
    readonly agentId: string,
  ) {
    ws.on('message', (data: Buffer) => this.#onMessage(data));
    ws.on('close', () => {
      const err = new Error(`agent ${agentId}: socket closed`);
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    });
  }

  /** Opens a socket to `url` and calls `mesh/hello` with `agentId`. */
  static async connect(url: string, agentId: string, timeoutMs = 10_000): Promise<RawAgent> {
    const ws = await openSocket(url, ['a2a-mesh.v1.json'], timeoutMs);
    const agent = new RawAgent(ws, agentId);
    await agent.call('mesh/hello', { agentId }, timeoutMs);
    return agent;
  }

  #onMessage(data: Buffer): void {
    // Frames are `{"jsonrpc":"2.0","method"...` (notification) or `{"jsonrpc":"2.0","id"...` (response).
    if (data[18] === 0x6d) {
      this.received++;
      this.receivedBytes += data.length;
      this.onEvent?.(data);
      return;
    }
    const msg = JSON.parse(data.toString()) as {
      id?: number;
      result?: unknown;
      error?: { message: string; data?: unknown };
    };
    const p = msg.id === undefined ? undefined : this.#pending.get(msg.id);
    if (!p) return;
    this.#pending.delete(msg.id!);
    if (msg.error) p.reject(new Error(`${msg.error.message} ${JSON.stringify(msg.error.data ?? {})}`));
    else p.resolve(msg.result);
  }

  /** Calls a method and resolves with its result; rejects with the node's error message. */
  call<T = unknown>(method: string, params: unknown, timeoutMs = 30_000): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${method} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  close(): void {
    this.ws.terminate();
  }
}

/** Opens a WebSocket (no compression) and resolves once it is open. */
export function openSocket(url: string, protocols: string[], timeoutMs = 10_000): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
    const fail = (err: Error) => {
      ws.terminate();
      reject(err);
    };
    ws.once('open', () => {
      ws.off('error', fail);
      ws.on('error', () => {});
      resolve(ws);
    });
    ws.once('error', fail);
  });
}

/** Runs `fn` over `items` with at most `limit` in flight; stops starting new ones after `deadline` (epoch ms). */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
  deadline = Number.POSITIVE_INFINITY,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      if (Date.now() > deadline)
        throw new Error(`gave up after ${next} of ${items.length}: time budget spent`);
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  });
  await Promise.all(runners);
  return out;
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits until `check()` is true, polling every `everyMs`, for at most `timeoutMs`; returns the last check. */
export async function waitUntil(check: () => boolean, timeoutMs: number, everyMs = 20): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) return false;
    await sleep(everyMs);
  }
  return true;
}
