import { describe, expect, it, onTestFinished } from 'vitest';
import { EmbeddedBus } from '../../src/bus/embedded.js';
import { readCountingBus, rpc, startAgent, startGatewayNode, textOf, userMessage } from './helpers.js';

/**
 * A blocking SendMessage answers from the entries it followed (folded into the node's record as
 * they pass) instead of reading the task's log again after the wait, and the agent's publish appends
 * on the record the node holds (the compare-and-set append checks it is current) without reading the
 * log first: on NATS each read is one or two JetStream requests.
 */
describe('A2A SendMessage bus reads', () => {
  it('reads no task log for a blocking SendMessage on the node that holds the task', async () => {
    const inner = new EmbeddedBus();
    onTestFinished(() => inner.close());
    const reads: string[] = [];
    const bus = readCountingBus(inner, (log) => {
      if (log.startsWith('a2atask.')) reads.push(log);
    });
    const node = await startGatewayNode({ bus });
    await startAgent(node, 'echo');
    const url = `${node.httpUrl}/agents/echo/a2a`;
    for (let i = 0; i < 3; i++) {
      const r = (await rpc(url, 'SendMessage', { message: userMessage(`reply ${i}`) })).body.result as {
        message: { parts: { text?: string }[] };
      };
      expect(textOf(r.message)).toBe(`echo: reply ${i}`);
    }
    expect(reads).toEqual([]);
    const task = (await rpc(url, 'SendMessage', { message: userMessage('hello') })).body.result as {
      task: { status: { state: string }; artifacts: unknown[] };
    };
    expect(task.task.status.state).toBe('TASK_STATE_COMPLETED');
    expect(task.task.artifacts).toHaveLength(1);
  });
});
