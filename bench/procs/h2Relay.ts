/**
 * Worker: the floor of scenario 7's topology, with no mesh code. An h2c server whose `POST /rpc`
 * parses the JSON-RPC body and forwards its message over a raw `ws` connection to an agent in
 * another process (`relayAgent.ts`); the agent's answer is sent back as the POST's JSON result. One
 * hop to the agent and back, as through the gateway, without validation, task state or a log.
 */
import { createServer, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';
import { serve } from '../lib/child.js';
import type { H2RelayCommands } from './commands.js';

let agent: WebSocket | undefined;
const pending = new Map<number, { stream: ServerHttp2Stream; rpcId: unknown }>();
let nextId = 1;

serve<H2RelayCommands>({
  async start() {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    wss.on('connection', (ws) => {
      agent = ws;
      ws.on('message', (data) => {
        const answer = JSON.parse(data.toString()) as { id: number; result: unknown };
        const p = pending.get(answer.id);
        if (!p) return;
        pending.delete(answer.id);
        if (p.stream.destroyed) return;
        p.stream.respond({ ':status': 200, 'content-type': 'application/json' });
        p.stream.end(JSON.stringify({ jsonrpc: '2.0', id: p.rpcId, result: answer.result }));
      });
    });
    const server = createServer();
    server.on('stream', (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (headers[':method'] !== 'POST' || !agent) {
          stream.respond({ ':status': agent ? 405 : 503 });
          stream.end();
          return;
        }
        const req = JSON.parse(Buffer.concat(chunks).toString()) as {
          id: unknown;
          params?: { message?: unknown };
        };
        const id = nextId++;
        pending.set(id, { stream, rpcId: req.id });
        agent.send(JSON.stringify({ id, message: req.params?.message }));
      });
      stream.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      agentUrl: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    };
  },
  connected: () => agent !== undefined,
});
