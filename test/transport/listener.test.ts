import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type Http2ServerRequest, type Http2ServerResponse, connect as h2connect } from 'node:http2';
import { connect as netConnect } from 'node:net';
import pino from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { listenMesh } from '../../src/transport/listener.js';
import { eventually } from '../helpers/node.js';

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

/** Echoes `<http version> <method> <path> <body>`. */
function echo(req: Req, res: Res): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () =>
    res.end(`${req.httpVersion} ${req.method} ${req.url} ${Buffer.concat(chunks).toString()}`),
  );
}

async function listen() {
  const http1 = createServer(echo);
  const wss = new WebSocketServer({ noServer: true });
  http1.on('upgrade', (req, socket, head) =>
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (d) => ws.send(`echo ${d}`))),
  );
  const listener = await listenMesh({
    host: '127.0.0.1',
    port: 0,
    http1,
    onHttp2Request: echo,
    logger: pino({ level: 'silent' }),
  });
  onTestFinished(async () => {
    listener.closeAllConnections();
    await listener.close();
    wss.close();
  });
  return listener;
}

describe('one port for HTTP/1.1, WebSocket and h2c', () => {
  it('hands HTTP/1.1 to the HTTP/1.1 server, with pipelining and bodies split across packets', async () => {
    const listener = await listen();
    const raw = netConnect(listener.port, '127.0.0.1');
    onTestFinished(() => {
      raw.destroy();
    });
    let got = '';
    raw.on('data', (d) => {
      got += d;
    });
    // The first bytes could be the start of the h2 preface ("P..."): the listener must wait for more.
    raw.write('P');
    await new Promise((r) => setTimeout(r, 20));
    raw.write('OST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello');
    await new Promise((r) => setTimeout(r, 20));
    raw.write('world');
    raw.write('GET /b HTTP/1.1\r\nHost: x\r\n\r\n');
    await eventually(() => {
      expect(got).toContain('1.1 POST /a helloworld');
      expect(got).toContain('1.1 GET /b ');
    });
  });

  it('upgrades WebSockets and multiplexes h2c streams on the same port', async () => {
    const listener = await listen();
    const ws = new WebSocket(`ws://127.0.0.1:${listener.port}/mesh`);
    onTestFinished(() => ws.terminate());
    const reply = await new Promise<string>((resolve, reject) => {
      ws.on('open', () => ws.send('hi'));
      ws.on('message', (d) => resolve(String(d)));
      ws.on('error', reject);
    });
    expect(reply).toBe('echo hi');
    const session = h2connect(`http://127.0.0.1:${listener.port}`);
    onTestFinished(() => {
      session.destroy();
    });
    const bodies = await Promise.all(
      Array.from(
        { length: 50 },
        (_, i) =>
          new Promise<string>((resolve, reject) => {
            const req = session.request({ ':method': 'POST', ':path': `/h${i}` });
            let body = '';
            req.on('data', (d) => {
              body += d;
            });
            req.on('end', () => resolve(body));
            req.on('error', reject);
            req.end(`body${i}`);
          }),
      ),
    );
    expect(bodies).toEqual(Array.from({ length: 50 }, (_, i) => `2.0 POST /h${i} body${i}`));
    expect(listener.http2Connections).toBe(1);
  });

  it('closes every kind of connection on closeAllConnections', async () => {
    const listener = await listen();
    const ws = new WebSocket(`ws://127.0.0.1:${listener.port}/mesh`);
    await new Promise((r) => ws.once('open', r));
    const session = h2connect(`http://127.0.0.1:${listener.port}`);
    await new Promise((r) => session.once('connect', r));
    const idle = netConnect(listener.port, '127.0.0.1');
    await new Promise((r) => idle.once('connect', r));
    const closed = Promise.all([
      new Promise((r) => ws.once('close', r)),
      new Promise((r) => session.once('close', r)),
      new Promise((r) => idle.once('close', r)),
    ]);
    session.on('error', () => {});
    idle.on('error', () => {});
    const stopped = listener.close();
    listener.closeAllConnections();
    await closed;
    await stopped;
  });
});
