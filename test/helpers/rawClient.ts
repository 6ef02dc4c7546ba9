import { msgpackCodec } from '@a2a-mesh/protocol';
import WebSocket from 'ws';

/** A frame-level JSON-RPC test client: sends anything, records every response and notification. */
export interface RawClient {
  readonly ws: WebSocket;
  readonly notifications: { method: string; params: Record<string, unknown> }[];
  /** Calls a method and resolves with the whole response object (result or error). */
  call(method: string, params?: unknown): Promise<Record<string, unknown>>;
  /** Sends a raw frame and resolves with the next response that carries no known id, or with `id`. */
  sendRaw(frame: string | Buffer, id?: unknown): Promise<Record<string, unknown> | unknown[]>;
  /** Resolves with the close code once the socket closes. */
  readonly closed: Promise<number>;
  close(): void;
}

/** Opens a raw client on `url` with the given subprotocols (default JSON). */
export async function rawClient(url: string, protocols: string[] = ['a2a-mesh.v1.json']): Promise<RawClient> {
  const ws = new WebSocket(url, protocols);
  const binary = ws.protocol === 'a2a-mesh.v1.msgpack' || protocols[0] === 'a2a-mesh.v1.msgpack';
  const notifications: RawClient['notifications'] = [];
  const pending = new Map<unknown, (v: Record<string, unknown>) => void>();
  const orphans: ((v: Record<string, unknown> | unknown[]) => void)[] = [];
  let nextId = 1;
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.on('message', (data, isBinary) => {
    const value = isBinary
      ? msgpackCodec.decode(new Uint8Array(data as Buffer))
      : JSON.parse(data.toString());
    if (Array.isArray(value)) {
      orphans.shift()?.(value);
      return;
    }
    const msg = value as Record<string, unknown>;
    if ('method' in msg && !('id' in msg)) {
      notifications.push({ method: String(msg.method), params: msg.params as Record<string, unknown> });
      return;
    }
    const waiter = pending.get(msg.id);
    if (waiter) {
      pending.delete(msg.id);
      waiter(msg);
    } else orphans.shift()?.(msg);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('close', (code) => reject(new Error(`closed during handshake: ${code}`)));
  });
  const encode = (v: unknown) =>
    binary ? Buffer.from(msgpackCodec.encode(v) as Uint8Array) : JSON.stringify(v);
  return {
    ws,
    notifications,
    closed,
    call(method, params) {
      const id = nextId++;
      return new Promise((resolve) => {
        pending.set(id, resolve);
        ws.send(encode({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) }));
      });
    },
    sendRaw(frame, id) {
      return new Promise((resolve) => {
        if (id !== undefined) pending.set(id, resolve);
        else orphans.push(resolve);
        ws.send(frame);
      });
    },
    close: () => ws.close(),
  };
}
