import type { MeshClient } from '@a2a-mesh/client';
import { describe, expect, it } from 'vitest';
import { eventually } from '../helpers/node.js';
import { rpc, startAgent, startGatewayNode, textOf, userMessage } from './helpers.js';

/**
 * An event that closes the task (a direct message, a terminal state) ends the turn with it: the node
 * writes the turn's end in the same append and answers the publish with `ended: true`, and the SDK
 * sends no `task/done`. A turn left open (input required) still ends with `task/done`; a late
 * `task/done` (an agent that does not know `ended`) changes nothing.
 */

/** Records the agent-to-node calls the client makes (the SDK's task protocol goes through `call`). */
function recordCalls(client: MeshClient): string[] {
  const calls: string[] = [];
  const target = client as unknown as { call(method: string, ...rest: unknown[]): Promise<unknown> };
  const original = target.call.bind(client);
  target.call = (method: string, ...rest: unknown[]) => {
    calls.push(method);
    return original(method, ...rest);
  };
  return calls;
}

type SendResult = {
  message?: { parts: { text?: string }[] };
  task?: { id: string; status: { state: string; message?: { parts: { text?: string }[] } } };
};

describe('a closing event ends the turn', () => {
  it('a direct reply or a terminal state: no task/done; an interrupted turn: task/done', async () => {
    const node = await startGatewayNode();
    const client = await startAgent(node, 'worker');
    const calls = recordCalls(client);
    const url = `${node.httpUrl}/agents/worker/a2a`;

    const reply = (await rpc(url, 'SendMessage', { message: userMessage('reply hi') })).body
      .result as SendResult;
    expect(textOf(reply.message)).toBe('echo: reply hi');
    // The SDK's turn ended when its only publish was answered `ended: true`.
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toEqual(['task/publish']);

    calls.length = 0;
    const done = (await rpc(url, 'SendMessage', { message: userMessage('hello') })).body.result as SendResult;
    expect(done.task?.status.state).toBe('TASK_STATE_COMPLETED');
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toEqual(['task/publish', 'task/publish', 'task/publish', 'task/publish']);

    calls.length = 0;
    const asked = (await rpc(url, 'SendMessage', { message: userMessage('ask me') })).body
      .result as SendResult;
    expect(asked.task?.status.state).toBe('TASK_STATE_INPUT_REQUIRED');
    await eventually(() => expect(calls).toEqual(['task/publish', 'task/done']));
    // The follow-up starts the next turn (it waits for the previous turn's end) and completes it.
    calls.length = 0;
    const answered = (
      await rpc(url, 'SendMessage', { message: userMessage('Ada', { taskId: asked.task!.id }) })
    ).body.result as SendResult;
    expect(answered.task?.status.state).toBe('TASK_STATE_COMPLETED');
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).not.toContain('task/done');
  });

  it('publish answers ended, and a late task/done (with an error) changes nothing', async () => {
    const node = await startGatewayNode();
    let publishAnswers: unknown[] = [];
    const client = await startAgent(node, 'worker', async (ctx) => {
      const target = client as unknown as { call(method: string, params: unknown): Promise<unknown> };
      // Raw task/publish calls, to see the node's answers.
      const status = (state: string, message?: unknown) =>
        target.call('task/publish', {
          taskId: ctx.taskId,
          event: {
            statusUpdate: {
              taskId: ctx.taskId,
              contextId: ctx.contextId,
              status: { state, ...(message ? { message } : {}) },
            },
          },
        });
      publishAnswers = [
        await status('TASK_STATE_WORKING'),
        await status('TASK_STATE_COMPLETED', {
          messageId: 'm1',
          role: 'ROLE_AGENT',
          parts: [{ text: 'all done' }],
        }),
        // An agent that ignores `ended` and reports a failure afterwards.
        await target.call('task/done', { taskId: ctx.taskId, error: 'late failure' }),
      ];
    });
    const url = `${node.httpUrl}/agents/worker/a2a`;
    const sent = (await rpc(url, 'SendMessage', { message: userMessage('go') })).body.result as SendResult;
    expect(sent.task?.status.state).toBe('TASK_STATE_COMPLETED');
    await eventually(() => expect(publishAnswers).toHaveLength(3));
    const [working, completed, late] = publishAnswers as [
      { sequence: number; ended?: boolean },
      { sequence: number; ended?: boolean },
      Record<string, never>,
    ];
    expect(working.ended).toBeUndefined();
    expect(completed.ended).toBe(true);
    expect(completed.sequence).toBeGreaterThan(working.sequence);
    expect(late).toEqual({});
    const read = (await rpc(url, 'GetTask', { id: sent.task!.id })).body.result as SendResult['task'];
    expect(read?.status.state).toBe('TASK_STATE_COMPLETED');
    expect(textOf(read?.status.message)).toBe('all done');
  });
});
