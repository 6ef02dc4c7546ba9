/**
 * Worker: the raw `ws` baseline server on 127.0.0.1 (same library and socket options as the node's
 * transport: no compression, `maxPayload` 1 MiB). Modes: a group relay, idle connections, or a
 * state server answering every request with one JSON-RPC result.
 */
import type { WebSocket, WebSocketServer } from 'ws';
import { serve } from '../lib/child.js';
import { rawWsServer } from '../lib/rawWsServer.js';
import type { WsServerCommands } from './commands.js';

let wss: WebSocketServer | undefined;
let count = 0;

serve<WsServerCommands>(
  {
    async start(args) {
      if (wss) throw new Error('already started');
      const raw = rawWsServer();
      const groups = new Map<string, Set<WebSocket>>();
      const stateJson = args.mode === 'state' ? JSON.stringify(args.state) : '';
      wss = raw.wss;
      wss.on('connection', (ws, req) => {
        count++;
        ws.on('close', () => count--);
        ws.on('error', () => {});
        if (args.mode === 'relay') {
          const g = new URL(req.url ?? '/', 'http://x').searchParams.get('g') ?? '0';
          const members = groups.get(g) ?? new Set<WebSocket>();
          groups.set(g, members);
          members.add(ws);
          ws.on('close', () => members.delete(ws));
          ws.on('message', (data: Buffer, isBinary) => {
            for (const m of members) if (m.readyState === m.OPEN) m.send(data, { binary: isBinary });
          });
        } else if (args.mode === 'state') {
          ws.on('message', (data: Buffer) => {
            const { id } = JSON.parse(data.toString()) as { id: number };
            ws.send(`{"jsonrpc":"2.0","id":${id},"result":${stateJson}}`);
          });
        }
      });
      return { url: await raw.listen() };
    },
    connections: () => count,
  },
  async () => {
    wss?.close();
  },
);
