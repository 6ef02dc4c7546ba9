/**
 * Worker: the agent of scenario 7's relay floor (`h2Relay.ts`): a raw `ws` client that answers every
 * forwarded message with a direct reply, in its own process like the mesh agent.
 */
import WebSocket from 'ws';
import { serve } from '../lib/child.js';
import type { RelayAgentCommands } from './commands.js';

let ws: WebSocket | undefined;

serve<RelayAgentCommands>(
  {
    async start({ url }) {
      const socket = new WebSocket(url);
      await new Promise<void>((resolve, reject) => {
        socket.once('open', () => resolve());
        socket.once('error', reject);
      });
      socket.on('message', (data) => {
        const { id } = JSON.parse(data.toString()) as { id: number };
        socket.send(
          JSON.stringify({
            id,
            result: { message: { role: 'ROLE_AGENT', parts: [{ text: 'ok' }], messageId: `r${id}` } },
          }),
        );
      });
      ws = socket;
      return null;
    },
  },
  async () => {
    ws?.close();
  },
);
