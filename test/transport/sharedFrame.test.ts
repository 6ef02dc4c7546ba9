import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type FrameConnection, SharedFrame, Subprotocol, sendShared } from '@a2a-mesh/protocol';
import pino from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import WebSocket from 'ws';
import { WebSocketTransport } from '../../src/transport/websocket.js';
import { eventually } from '../helpers/node.js';

/** A WebSocket transport on a real port; `conns` are the server ends, in connection order. */
async function transport(maxQueueBytes = 8 << 20) {
  const server = createServer();
  const conns: FrameConnection[] = [];
  const slow: number[] = [];
  const t = new WebSocketTransport(server, {
    path: '/mesh',
    maxMessageBytes: 1 << 20,
    maxQueueBytes,
    heartbeatMs: 60_000,
    closeTimeoutMs: 1_000,
    onConnection: (conn) => conns.push(conn),
    onSlowConsumer: () => slow.push(1),
    logger: pino({ level: 'silent' }),
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/mesh`;
  onTestFinished(async () => {
    t.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return { conns, slow, url };
}

/** A plain `ws` client that keeps every message it gets (text as string, binary as bytes). */
async function client(url: string, protocol: string) {
  const ws = new WebSocket(url, [protocol]);
  const got: (string | Buffer)[] = [];
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  ws.on('message', (data: Buffer, isBinary) => got.push(isBinary ? data : data.toString()));
  await once(ws, 'open');
  onTestFinished(() => ws.terminate());
  return { ws, got, closed };
}

// Every payload length class of RFC 6455 framing: 7-bit (<126), 16-bit (<65536), 64-bit.
const SIZES = [0, 1, 125, 126, 127, 65_535, 65_536, 200_000];

describe('frames sent to many WebSocket sessions', () => {
  it('arrive intact at every member, text and binary, at every length class, framed once', async () => {
    const { conns, url } = await transport();
    const text = [await client(url, Subprotocol.Json), await client(url, Subprotocol.Json)];
    const binary = [await client(url, Subprotocol.Msgpack), await client(url, Subprotocol.Msgpack)];
    await eventually(() => expect(conns).toHaveLength(4));
    const textFrames = SIZES.map((n) => new SharedFrame('é'.repeat(Math.floor(n / 2)) + 'x'.repeat(n % 2)));
    const binaryFrames = SIZES.map(
      (n) => new SharedFrame(Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff)),
    );
    for (const [i, conn] of conns.entries()) {
      for (const f of i < 2 ? textFrames : binaryFrames) sendShared(conn, f);
    }
    await eventually(() => {
      for (const c of [...text, ...binary]) expect(c.got).toHaveLength(SIZES.length);
    }, 10_000);
    for (const c of text) expect(c.got).toEqual(textFrames.map((f) => f.data));
    for (const c of binary)
      expect(c.got.map((b) => [...(b as Buffer)])).toEqual(
        binaryFrames.map((f) => [...(f.data as Uint8Array)]),
      );
    // The transport kept its framing on the frame: asking again does not frame anew.
    const never = () => {
      throw new Error('framed twice');
    };
    for (const f of textFrames) expect(f.wire('ws-text', never).byteLength).toBeGreaterThan(0);
    for (const f of binaryFrames) expect(f.wire('ws-binary', never).byteLength).toBeGreaterThan(0);
  });

  it('keep their order with the session’s own frames', async () => {
    const { conns, url } = await transport();
    const c = await client(url, Subprotocol.Json);
    await eventually(() => expect(conns).toHaveLength(1));
    const conn = conns[0]!;
    const expected: string[] = [];
    for (let i = 0; i < 50; i++) {
      const own = `own ${i}`;
      const shared = `shared ${i}`;
      if (i % 3 === 0) {
        sendShared(conn, new SharedFrame(shared));
        conn.send(own);
        expected.push(shared, own);
      } else {
        conn.send(own);
        sendShared(conn, new SharedFrame(shared));
        expected.push(own, shared);
      }
    }
    await eventually(() => expect(c.got).toHaveLength(expected.length));
    expect(c.got).toEqual(expected);
  });

  it('close a session whose send queue would pass its limit with 4008, and refuse sends once closed', async () => {
    const { conns, slow, url } = await transport(64 * 1024);
    const c = await client(url, Subprotocol.Json);
    await eventually(() => expect(conns).toHaveLength(1));
    const conn = conns[0]!;
    // The client stops reading; the kernel buffers fill, then the transport's queue.
    (c.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const big = new SharedFrame('y'.repeat(16 * 1024));
    let sent = 0;
    try {
      for (; sent < 10_000; sent++) sendShared(conn, big);
    } catch (error) {
      expect(String(error)).toContain('connection is closed');
    }
    expect(sent).toBeLessThan(10_000);
    expect(slow).toEqual([1]);
    (c.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    expect(await c.closed).toBe(4008);
    expect(() => sendShared(conn, new SharedFrame('late'))).toThrow('connection is closed');
  });
});

describe('SharedFrame', () => {
  it('makes a framing once per frame, for the first kind asked; other kinds are made each time', () => {
    const f = new SharedFrame('abc');
    let made = 0;
    const make = (d: string | Uint8Array) => {
      made++;
      return Buffer.from(`<${String(d)}>`);
    };
    const a = f.wire('a', make);
    expect(f.wire('a', make)).toBe(a);
    expect(made).toBe(1);
    expect(Buffer.from(f.wire('b', make)).toString()).toBe('<abc>');
    expect(f.wire('b', make)).not.toBe(f.wire('b', make));
    expect(made).toBe(4);
    expect(f.wire('a', make)).toBe(a);
  });
});
