import { describe, expect, it, onTestFinished } from 'vitest';
import { rawClient } from '../helpers/rawClient.js';
import { sse, startGatewayNode, userMessage } from './helpers.js';

/**
 * What an agent publishes is stored and streamed with the task's ids filled in, whether or not the
 * agent wrote them, and a status without a timestamp is stamped by the node; what the agent did
 * write (a timestamp, its fields) is kept.
 */
describe('events from an agent that leaves out ids and timestamps', () => {
  it('are streamed and stored with the task ids and a timestamp, the rest as sent', async () => {
    const node = await startGatewayNode();
    const base = node.url.replace(/^ws/, 'http').replace(/\/mesh$/, '');
    const agent = await rawClient(node.url);
    onTestFinished(() => agent.close());
    agent.ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as {
        id?: number;
        method?: string;
        params?: { taskId: string };
      };
      if (frame.method !== 'task/execute') return;
      agent.ws.send(JSON.stringify({ jsonrpc: '2.0', id: frame.id, result: {} }));
      const taskId = frame.params!.taskId;
      const events = [
        { statusUpdate: { status: { state: 'TASK_STATE_WORKING' } } },
        { artifactUpdate: { artifact: { artifactId: 'a1', parts: [{ text: 'part' }] }, lastChunk: true } },
        {
          statusUpdate: {
            status: {
              state: 'TASK_STATE_COMPLETED',
              timestamp: '2020-01-02T03:04:05.000Z',
              message: { messageId: 'done', role: 'ROLE_AGENT', parts: [{ text: 'finished' }] },
            },
          },
        },
      ];
      void (async () => {
        for (const event of events) await agent.call('task/publish', { taskId, event });
      })();
    });
    await agent.call('mesh/hello', { agentId: 'terse', card: { name: 'terse' } });

    const res = await fetch(`${base}/agents/terse/a2a`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'SendStreamingMessage',
        params: { message: userMessage('go') },
      }),
    });
    const results = (await sse(res)).map((e) => e.data.result as Record<string, Record<string, unknown>>);
    const task = results[0]!.task as { id: string; contextId: string };
    const ids = { taskId: task.id, contextId: task.contextId };
    expect(task.id).toMatch(/.+/);
    const [working, artifact, completed] = results.slice(1);
    expect(working!.statusUpdate).toMatchObject(ids);
    const stamp = (working!.statusUpdate!.status as { timestamp: string }).timestamp;
    expect(new Date(stamp).toISOString()).toBe(stamp);
    expect(Math.abs(Date.parse(stamp) - Date.now())).toBeLessThan(60_000);
    expect(artifact!.artifactUpdate).toEqual({
      ...ids,
      artifact: { artifactId: 'a1', parts: [{ text: 'part' }] },
      lastChunk: true,
    });
    expect(completed!.statusUpdate).toMatchObject({
      ...ids,
      status: {
        state: 'TASK_STATE_COMPLETED',
        timestamp: '2020-01-02T03:04:05.000Z',
        message: { messageId: 'done', parts: [{ text: 'finished' }] },
      },
    });
    expect(results).toHaveLength(4);
  });
});
