import { onTestFinished } from 'vitest';
import { connectNatsBus, type NatsBusOptions } from '../../src/bus/nats.js';
import { createMeshNode, type MeshNode, type MeshNodeOptions } from '../../src/index.js';
import { testLogger } from './node.js';

/** Starts an in-process node on a NATS bus of its own; both are closed when the test finishes. */
export async function startNatsNode(
  servers: string | string[],
  nodeId: string,
  options: MeshNodeOptions = {},
  busOptions: Partial<NatsBusOptions> = {},
): Promise<MeshNode> {
  const bus = await connectNatsBus({ servers, nodeId, ...busOptions });
  const node = await createMeshNode({ port: 0, logger: testLogger, nodeId, bus, ...options });
  onTestFinished(async () => {
    await node.close();
    await bus.close();
  });
  return node;
}
