/** Worker: the raw HTTP/2 (h2c) baseline of scenario 7: `POST /rpc` parses a JSON-RPC body and answers a JSON result. */
import { createServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { serve } from '../lib/child.js';
import type { H2ServerCommands } from './commands.js';

serve<H2ServerCommands>({
  async start() {
    const server = createServer();
    server.on('stream', (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (headers[':method'] !== 'POST') {
          stream.respond({ ':status': 405 });
          stream.end();
          return;
        }
        const req = JSON.parse(Buffer.concat(chunks).toString()) as { id: number; params?: unknown };
        const body = JSON.stringify({
          jsonrpc: '2.0',
          id: req.id,
          result: { kind: 'message', role: 'ROLE_AGENT', parts: [{ text: 'ok' }], messageId: `r${req.id}` },
        });
        stream.respond({ ':status': 200, 'content-type': 'application/json' });
        stream.end(body);
      });
      stream.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  },
});
