/**
 * Worker: one mesh agent (the `@a2a-mesh/client` SDK) that executes A2A tasks addressed to it through
 * the gateway by answering each message with a direct reply. Its own process, as an agent beside a node.
 */
import { MeshClient } from '@a2a-mesh/client';
import { serve } from '../lib/child.js';
import type { MeshAgentCommands } from './commands.js';

let client: MeshClient | undefined;
let turns = 0;

serve<MeshAgentCommands>(
  {
    async start(a) {
      if (client) throw new Error('agent already started');
      client = new MeshClient({
        url: a.url,
        agentId: a.agentId,
        card: { name: 'Bench agent', skills: [{ id: 'echo', name: 'Echo', tags: ['bench'] }] },
        reconnect: false,
      });
      client.onTask(async (ctx) => {
        turns++;
        await ctx.reply('ok');
      });
      await client.connect();
      return null;
    },
    turns: () => turns,
  },
  async () => {
    await client?.close();
  },
);
