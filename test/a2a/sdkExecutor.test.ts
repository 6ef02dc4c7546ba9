import { Message, Role, TaskState } from '@a2a-js/sdk';
import { ClientFactory } from '@a2a-js/sdk/client';
import {
  AgentEvent,
  type AgentExecutor,
  type ExecutionEventBus,
  type RequestContext,
} from '@a2a-js/sdk/server';
import { fromA2AExecutor } from '@a2a-mesh/client';
import { describe, expect, it } from 'vitest';
import { startAgent, startGatewayNode } from './helpers.js';

function agentMessage(taskId: string, contextId: string, text: string) {
  return Message.fromJSON({
    messageId: crypto.randomUUID(),
    role: 'ROLE_AGENT',
    taskId,
    contextId,
    parts: [{ text }],
  });
}

/** An executor written for @a2a-js/sdk, as its docs show one: nothing mesh-specific in it. */
class ShoutingExecutor implements AgentExecutor {
  readonly canceled = new Set<string>();
  readonly seen: { role: number; text: unknown; hadTask: boolean }[] = [];

  async execute(ctx: RequestContext, bus: ExecutionEventBus): Promise<void> {
    const { taskId, contextId, userMessage, task } = ctx;
    const first = userMessage.parts[0]?.content;
    const text = first?.$case === 'text' ? first.value : '';
    this.seen.push({ role: userMessage.role, text, hadTask: task !== undefined });
    const now = () => new Date().toISOString();
    bus.publish(
      AgentEvent.task({
        id: taskId,
        contextId,
        status: { state: TaskState.TASK_STATE_SUBMITTED, message: undefined, timestamp: now() },
        history: [...(task?.history ?? []), userMessage],
        artifacts: task?.artifacts ?? [],
        metadata: {},
      }),
    );
    bus.publish(
      AgentEvent.statusUpdate({
        taskId,
        contextId,
        status: {
          state: TaskState.TASK_STATE_WORKING,
          message: agentMessage(taskId, contextId, 'thinking'),
          timestamp: now(),
        },
        metadata: {},
      }),
    );
    if (text === 'wait') {
      while (!this.canceled.has(taskId)) await new Promise((r) => setTimeout(r, 5));
      return;
    }
    if (text === 'name?') {
      bus.publish(
        AgentEvent.statusUpdate({
          taskId,
          contextId,
          status: {
            state: TaskState.TASK_STATE_INPUT_REQUIRED,
            message: agentMessage(taskId, contextId, 'who are you?'),
            timestamp: now(),
          },
          metadata: {},
        }),
      );
      bus.finished();
      return;
    }
    bus.publish(
      AgentEvent.artifactUpdate({
        taskId,
        contextId,
        artifact: {
          artifactId: 'shout',
          name: 'shout',
          description: 'the message, louder',
          parts: [
            {
              content: { $case: 'text', value: String(text).toUpperCase() },
              metadata: undefined,
              filename: '',
              mediaType: 'text/plain',
            },
            {
              content: { $case: 'data', value: { length: String(text).length } },
              metadata: undefined,
              filename: '',
              mediaType: '',
            },
          ],
          metadata: {},
          extensions: [],
        },
        append: false,
        lastChunk: true,
        metadata: {},
      }),
    );
    bus.publish(
      AgentEvent.statusUpdate({
        taskId,
        contextId,
        status: { state: TaskState.TASK_STATE_COMPLETED, message: undefined, timestamp: now() },
        metadata: {},
      }),
    );
    bus.finished();
  }

  async cancelTask(taskId: string, bus: ExecutionEventBus): Promise<void> {
    this.canceled.add(taskId);
    bus.publish(
      AgentEvent.statusUpdate({
        taskId,
        contextId: '',
        status: {
          state: TaskState.TASK_STATE_CANCELED,
          message: undefined,
          timestamp: new Date().toISOString(),
        },
        metadata: {},
      }),
    );
  }
}

function msg(text: string, extra: Record<string, unknown> = {}) {
  return Message.fromJSON({ messageId: crypto.randomUUID(), role: 'ROLE_USER', parts: [{ text }], ...extra });
}

describe('an @a2a-js/sdk AgentExecutor behind the adapter', () => {
  async function setup() {
    const node = await startGatewayNode();
    const executor = new ShoutingExecutor();
    await startAgent(node, 'shouter', fromA2AExecutor(executor));
    const client = await new ClientFactory().createFromUrl(`${node.httpUrl}/agents/shouter/`);
    return { node, executor, client };
  }

  it('serves a stock client: blocking send, stream, and the RequestContext it sees', async () => {
    const { executor, client } = await setup();
    const task = await client.sendMessage({ message: msg('hello') } as never);
    if (!('id' in task)) throw new Error('expected a task');
    expect(task.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    const parts = task.artifacts[0]?.parts.map((p) => p.content);
    expect(parts).toEqual([
      { $case: 'text', value: 'HELLO' },
      { $case: 'data', value: { length: 5 } },
    ]);
    expect(task.artifacts[0]?.description).toBe('the message, louder');
    expect(executor.seen[0]).toEqual({ role: Role.ROLE_USER, text: 'hello', hadTask: false });
    const cases: string[] = [];
    for await (const ev of client.sendMessageStream({ message: msg('again') } as never))
      cases.push(ev.payload!.$case);
    expect(cases).toEqual(['task', 'statusUpdate', 'artifactUpdate', 'statusUpdate']);
  });

  it('a follow-up turn gets the task in its RequestContext', async () => {
    const { executor, client } = await setup();
    const first = await client.sendMessage({ message: msg('name?') } as never);
    if (!('id' in first)) throw new Error('expected a task');
    expect(first.status?.state).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);
    const second = await client.sendMessage({ message: msg('Ada', { taskId: first.id }) } as never);
    expect('id' in second && second.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(executor.seen.map((s) => s.hadTask)).toEqual([false, true]);
  });

  it('cancelTask reaches the executor cancelTask', async () => {
    const { executor, client } = await setup();
    const stream = client.sendMessageStream({ message: msg('wait') } as never);
    const first = (await stream.next()).value!.payload!;
    if (first.$case !== 'task') throw new Error('expected the task first');
    const canceled = await client.cancelTask({ id: first.value.id } as never);
    expect(canceled.status?.state).toBe(TaskState.TASK_STATE_CANCELED);
    expect(executor.canceled.has(first.value.id)).toBe(true);
    const rest: number[] = [];
    for await (const ev of stream)
      if (ev.payload?.$case === 'statusUpdate') rest.push(ev.payload.value.status!.state);
    expect(rest.at(-1)).toBe(TaskState.TASK_STATE_CANCELED);
  });
});
