import { MeshClient } from '@a2a-mesh/client';
import { describe, expect, it, onTestFinished } from 'vitest';
import { rawClient } from '../helpers/rawClient.js';
import { rpc, startGatewayNode, userMessage } from './helpers.js';

/**
 * `task/execute` as a notification: an agent that lists it in `mesh/hello` `notifications` gets each
 * turn without an id and answers nothing (one frame fewer per turn); an agent that does not gets the
 * request as before. The SDK asks for it, and ends a turn it cannot take with `task/done` and the reason.
 */
interface Frame {
  jsonrpc: '2.0';
  id?: number | string;
  method?: string;
  params?: { taskId: string; contextId: string };
}

/** A raw agent that records the node's task/execute frames and replies to each with a direct message. */
async function rawAgent(url: string, agentId: string, notifications?: string[]) {
  const client = await rawClient(url);
  onTestFinished(() => client.close());
  const executes: Frame[] = [];
  client.ws.on('message', (data) => {
    const frame = JSON.parse(data.toString()) as Frame;
    if (frame.method !== 'task/execute') return;
    executes.push(frame);
    if (frame.id !== undefined) client.ws.send(JSON.stringify({ jsonrpc: '2.0', id: frame.id, result: {} }));
    const { taskId, contextId } = frame.params!;
    void client.call('task/publish', {
      taskId,
      event: {
        message: {
          messageId: crypto.randomUUID(),
          role: 'ROLE_AGENT',
          parts: [{ text: 'hi' }],
          taskId,
          contextId,
        },
      },
    });
  });
  const hello = await client.call('mesh/hello', {
    agentId,
    card: { name: agentId },
    ...(notifications ? { notifications } : {}),
  });
  expect(hello.result).toBeDefined();
  return { executes };
}

describe('task/execute as a notification', () => {
  it('is sent without an id to an agent that asks for it, and as a request to one that does not', async () => {
    const node = await startGatewayNode();
    const base = node.url.replace(/^ws/, 'http').replace(/\/mesh$/, '');
    const notified = await rawAgent(node.url, 'notified', ['task/execute', 'no/such-method']);
    const asked = await rawAgent(node.url, 'asked');
    for (const [agentId, agent] of [
      ['notified', notified],
      ['asked', asked],
    ] as const) {
      const r = await rpc(`${base}/agents/${agentId}/a2a`, 'SendMessage', { message: userMessage('hello') });
      const result = r.body.result as { message?: { parts: unknown } };
      expect(result.message?.parts).toEqual([{ text: 'hi' }]);
      expect(agent.executes).toHaveLength(1);
    }
    expect(notified.executes[0]!.id).toBeUndefined();
    expect(asked.executes[0]!.id).toBeDefined();
  });

  it('the SDK ends a turn it cannot take with task/done and the reason: the task fails with it', async () => {
    const node = await startGatewayNode();
    const base = node.url.replace(/^ws/, 'http').replace(/\/mesh$/, '');
    const client = new MeshClient({
      url: node.url,
      agentId: 'idle',
      card: { name: 'Idle' },
      reconnect: false,
    });
    onTestFinished(() => client.close());
    await client.connect();
    const r = await rpc(`${base}/agents/idle/a2a`, 'SendMessage', { message: userMessage('anyone?') });
    const task = (
      r.body.result as { task: { status: { state: string; message?: { parts: { text: string }[] } } } }
    ).task;
    expect(task.status.state).toBe('TASK_STATE_FAILED');
    expect(task.status.message?.parts[0]?.text).toContain('agent idle takes no tasks');
  });
});
