import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

/**
 * A raw `ws` server for baselines and floors, with the node's transport options (no compression,
 * `maxPayload` 1 MiB, first offered subprotocol accepted). Call `listen()` once handlers are on.
 */
export function rawWsServer(): { wss: WebSocketServer; listen(): Promise<string> } {
  const server: Server = createServer();
  const wss = new WebSocketServer({
    server,
    maxPayload: 1024 * 1024,
    perMessageDeflate: false,
    clientTracking: false,
    handleProtocols: (protocols) => protocols.values().next().value ?? false,
  });
  return {
    wss,
    listen: async () => {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    },
  };
}
