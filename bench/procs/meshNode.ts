/**
 * Worker: one mesh node (`createMeshNode`) listening on 127.0.0.1, over the embedded bus or over
 * NATS. Nothing else runs in this process, so its CPU profile and RSS are the node's.
 */
import type { MeshNode } from '../../src/index.js';
import { createMeshNode } from '../../src/index.js';
import { serve } from '../lib/child.js';
import type { MeshNodeCommands } from './commands.js';

let node: MeshNode | undefined;
let closeBus: (() => Promise<void>) | undefined;

serve<MeshNodeCommands>(
  {
    async start(args) {
      if (node) throw new Error('node already started');
      const t0 = performance.now();
      if (args.bus === 'nats') {
        const { connectNatsBus } = await import('../../src/bus/nats.js');
        const bus = await connectNatsBus({ servers: args.servers, prefix: args.prefix, nodeId: args.nodeId });
        closeBus = () => bus.close();
        node = await createMeshNode({ port: 0, nodeId: args.nodeId, bus });
      } else {
        node = await createMeshNode({ port: 0, ...(args.nodeId ? { nodeId: args.nodeId } : {}) });
      }
      return { url: node.url, nodeId: node.nodeId, startMs: performance.now() - t0 };
    },
    stats() {
      if (!node) throw new Error('node not started');
      return node.stats();
    },
  },
  async () => {
    await node?.close();
    await closeBus?.();
  },
);
