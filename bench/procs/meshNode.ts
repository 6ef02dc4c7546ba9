/**
 * Worker: one mesh node (`createMeshNode`) listening on 127.0.0.1, over the embedded bus or over
 * NATS. Nothing else runs in this process, so its CPU profile and RSS are the node's. With
 * `profileStart`/`profileStop` the harness records a V8 CPU profile of just a measuring window.
 */
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import type { MeshNode } from '../../src/index.js';
import { createMeshNode } from '../../src/index.js';
import { serve } from '../lib/child.js';
import { loopDelayCommands } from '../lib/loopDelay.js';
import type { MeshNodeCommands } from './commands.js';

let node: MeshNode | undefined;
let closeBus: (() => Promise<void>) | undefined;
let inspector: Session | undefined;

serve<MeshNodeCommands>(
  {
    async start(args) {
      if (node) throw new Error('node already started');
      const t0 = performance.now();
      if (args.bus === 'nats') {
        const { connectNatsBus } = await import('../../src/bus/nats.js');
        const bus = await connectNatsBus({ servers: args.servers, prefix: args.prefix, nodeId: args.nodeId });
        closeBus = () => bus.close();
        node = await createMeshNode({ port: 0, nodeId: args.nodeId, bus, ...args.tuning });
      } else {
        node = await createMeshNode({
          port: 0,
          ...(args.nodeId ? { nodeId: args.nodeId } : {}),
          ...args.tuning,
        });
      }
      return { url: node.url, nodeId: node.nodeId, startMs: performance.now() - t0 };
    },
    stats() {
      if (!node) throw new Error('node not started');
      return node.stats();
    },
    async profileStart() {
      if (!inspector) {
        inspector = new Session();
        inspector.connect();
        await inspector.post('Profiler.enable');
        await inspector.post('Profiler.setSamplingInterval', { interval: 200 });
      }
      await inspector.post('Profiler.start');
      return null;
    },
    async profileStop({ file }) {
      if (!inspector) throw new Error('profileStart was not called');
      const { profile } = await inspector.post('Profiler.stop');
      await writeFile(file, JSON.stringify(profile));
      return null;
    },
    ...loopDelayCommands(),
  },
  async () => {
    inspector?.disconnect();
    await node?.close();
    await closeBus?.();
  },
);
