import {
  ListTaskPushNotificationConfigsRequest,
  ListTasksRequest,
  Message,
  type Part,
  Role,
  TaskState,
} from '@a2a-js/sdk';
import { ClientFactory } from '@a2a-js/sdk/client';
import { describe, expect, it } from 'vitest';
import { eventually } from '../helpers/node.js';
import { startAgent, startGatewayNode } from './helpers.js';

/** A message in the SDK's own (protobuf-style) shape. */
function msg(text: string, extra: Record<string, unknown> = {}) {
  return Message.fromJSON({ messageId: crypto.randomUUID(), role: 'ROLE_USER', parts: [{ text }], ...extra });
}

function partText(m: { parts: Part[] } | undefined): string | undefined {
  const c = m?.parts[0]?.content;
  return c?.$case === 'text' ? (c.value as string) : undefined;
}

async function setup() {
  const node = await startGatewayNode();
  await startAgent(node, 'echo');
  // The card path is resolved relative to the base URL: the agent URL ends with a slash.
  const client = await new ClientFactory().createFromUrl(`${node.httpUrl}/agents/echo/`);
  return { node, client };
}

describe('@a2a-js/sdk 1.3 client against the gateway', () => {
  it('reads the card and picks the v1.0 JSON-RPC interface at this node', async () => {
    const { node, client } = await setup();
    expect(client.protocolVersion).toBe('1.0');
    const card = await client.getAgentCard();
    expect(card.name).toBe('Agent echo');
    expect(card.supportedInterfaces.map((i) => [i.protocolBinding, i.protocolVersion])).toEqual([
      ['JSONRPC', '1.0'],
      ['JSONRPC', '0.3'],
    ]);
    expect(card.supportedInterfaces[0]?.url).toBe(`${node.httpUrl}/agents/echo/a2a`);
    expect(card.capabilities?.streaming).toBe(true);
    expect(card.capabilities?.extensions.map((e) => e.uri)).toContain(
      'urn:a2a-mesh:extension:task-sequence:v1',
    );
  });

  it('sendMessage blocks until the task completes, and getTask reads it back', async () => {
    const { client } = await setup();
    const result = await client.sendMessage({ message: msg('hello world') } as never);
    if (!('id' in result)) throw new Error('expected a task');
    expect(result.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(partText(result.artifacts[0])).toBe('echo: hello world');
    expect(result.history[0]?.role).toBe(Role.ROLE_USER);
    const again = await client.getTask({ id: result.id, historyLength: 1 } as never);
    expect(again.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(again.history).toHaveLength(1);
    expect(again.contextId).toBe(result.contextId);
  });

  it('a direct message reply, and returnImmediately', async () => {
    const { client } = await setup();
    const reply = await client.sendMessage({ message: msg('reply please') } as never);
    expect('messageId' in reply && partText(reply)).toBe('echo: reply please');
    const quick = await client.sendMessage({
      message: msg('slow job'),
      configuration: { returnImmediately: true },
    } as never);
    if (!('id' in quick)) throw new Error('expected a task');
    expect([TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING]).toContain(quick.status?.state);
    const canceled = await client.cancelTask({ id: quick.id } as never);
    expect(canceled.status?.state).toBe(TaskState.TASK_STATE_CANCELED);
  });

  it('sendMessageStream yields every event in order, ending at completion', async () => {
    const { client } = await setup();
    const kinds: string[] = [];
    const states: number[] = [];
    for await (const ev of client.sendMessageStream({ message: msg('hello stream') } as never)) {
      const p = ev.payload!;
      kinds.push(p.$case);
      if (p.$case === 'statusUpdate') states.push(p.value.status!.state);
    }
    expect(kinds).toEqual(['task', 'statusUpdate', 'artifactUpdate', 'statusUpdate']);
    expect(states).toEqual([TaskState.TASK_STATE_WORKING, TaskState.TASK_STATE_COMPLETED]);
  });

  it('input-required, then a follow-up message on the same task completes it', async () => {
    const { client } = await setup();
    const first = await client.sendMessage({ message: msg('ask me') } as never);
    if (!('id' in first)) throw new Error('expected a task');
    expect(first.status?.state).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);
    expect(partText(first.status?.message)).toBe('what is your name?');
    const second = await client.sendMessage({
      message: msg('Ada', { taskId: first.id, contextId: first.contextId }),
    } as never);
    if (!('id' in second)) throw new Error('expected a task');
    expect(second.id).toBe(first.id);
    expect(second.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(partText(second.artifacts.at(-1))).toBe('you said Ada');
    expect(second.history.map((m) => partText(m))).toEqual(
      expect.arrayContaining(['ask me', 'what is your name?', 'Ada']),
    );
  });

  it('auth-required returns at once in blocking mode', async () => {
    const { client } = await setup();
    const t = await client.sendMessage({ message: msg('auth needed') } as never);
    expect('id' in t && t.status?.state).toBe(TaskState.TASK_STATE_AUTH_REQUIRED);
  });

  it('listTasks pages through the agent tasks, newest first', async () => {
    const { client } = await setup();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const t = await client.sendMessage({ message: msg(`hello ${i}`) } as never);
      if ('id' in t) ids.push(t.id);
    }
    const seen: string[] = [];
    let pageToken = '';
    let pages = 0;
    do {
      const page = await client.listTasks(ListTasksRequest.fromJSON({ pageSize: 2, pageToken }));
      expect(page.totalSize).toBe(5);
      expect(page.pageSize).toBe(2);
      expect(page.tasks.every((t) => t.artifacts.length === 0)).toBe(true);
      seen.push(...page.tasks.map((t) => t.id));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken !== '');
    expect(pages).toBe(3);
    expect(seen).toEqual([...ids].reverse());
    const withArtifacts = await client.listTasks(
      ListTasksRequest.fromJSON({ pageSize: 1, includeArtifacts: true }),
    );
    expect(withArtifacts.tasks[0]?.artifacts).toHaveLength(1);
    const none = await client.listTasks(ListTasksRequest.fromJSON({ status: 'TASK_STATE_WORKING' }));
    expect(none.tasks).toEqual([]);
    expect(none.nextPageToken).toBe('');
  });

  it('cancelTask on a running task; cancel again is idempotent; a completed one is not cancelable', async () => {
    const { client } = await setup();
    const stream = client.sendMessageStream({ message: msg('slow job') } as never);
    const first = await stream.next();
    const task = first.value!.payload!;
    if (task.$case !== 'task') throw new Error('expected the task first');
    const canceled = await client.cancelTask({ id: task.value.id } as never);
    expect(canceled.status?.state).toBe(TaskState.TASK_STATE_CANCELED);
    const rest: string[] = [];
    for await (const ev of stream)
      rest.push(
        `${ev.payload?.$case}:${(ev.payload?.value as { status?: { state: number } } | undefined)?.status?.state}`,
      );
    expect(rest.at(-1)).toBe(`statusUpdate:${TaskState.TASK_STATE_CANCELED}`);
    expect((await client.cancelTask({ id: task.value.id } as never)).status?.state).toBe(
      TaskState.TASK_STATE_CANCELED,
    );
    const done = await client.sendMessage({ message: msg('hello') } as never);
    if (!('id' in done)) throw new Error('expected a task');
    await expect(client.cancelTask({ id: done.id } as never)).rejects.toMatchObject({
      name: 'TaskNotCancelableError',
    });
  });

  it('resubscribeTask gets the task now, then the rest of its events', async () => {
    const { node, client } = await setup();
    const started = await client.sendMessage({
      message: msg('slow job'),
      configuration: { returnImmediately: true },
    } as never);
    if (!('id' in started)) throw new Error('expected a task');
    await eventually(async () => {
      const t = await client.getTask({ id: started.id } as never);
      expect(t.status?.state).toBe(TaskState.TASK_STATE_WORKING);
    });
    const seen: string[] = [];
    const reading = (async () => {
      for await (const ev of client.resubscribeTask({ id: started.id } as never))
        seen.push(ev.payload!.$case);
    })();
    await eventually(() => expect(seen).toEqual(['task']));
    const other = await new ClientFactory().createFromUrl(`${node.httpUrl}/agents/echo/`);
    await other.cancelTask({ id: started.id } as never);
    await reading;
    expect(seen).toEqual(['task', 'statusUpdate']);
  });

  it('push notification config CRUD', async () => {
    const { client } = await setup();
    const t = await client.sendMessage({ message: msg('ask me') } as never);
    if (!('id' in t)) throw new Error('expected a task');
    const created = await client.createTaskPushNotificationConfig({
      taskId: t.id,
      url: 'http://127.0.0.1:9/hook',
      token: 'tok',
      authentication: { scheme: 'Bearer', credentials: 'secret' },
    } as never);
    expect(created.id).not.toBe('');
    expect(created.taskId).toBe(t.id);
    const got = await client.getTaskPushNotificationConfig({ taskId: t.id, id: created.id } as never);
    expect(got).toMatchObject({ url: 'http://127.0.0.1:9/hook', token: 'tok' });
    expect(got.authentication?.scheme).toBe('Bearer');
    const listed = await client.listTaskPushNotificationConfig(
      ListTaskPushNotificationConfigsRequest.fromJSON({ taskId: t.id }),
    );
    expect(listed.configs.map((c) => c.id)).toEqual([created.id]);
    await client.deleteTaskPushNotificationConfig({ taskId: t.id, id: created.id } as never);
    await client.deleteTaskPushNotificationConfig({ taskId: t.id, id: created.id } as never);
    expect(
      (
        await client.listTaskPushNotificationConfig(
          ListTaskPushNotificationConfigsRequest.fromJSON({ taskId: t.id }),
        )
      ).configs,
    ).toEqual([]);
    await expect(
      client.getTaskPushNotificationConfig({ taskId: t.id, id: created.id } as never),
    ).rejects.toMatchObject({ name: 'TaskNotFoundError' });
  });

  it('errors arrive as the SDK typed errors', async () => {
    const { client } = await setup();
    await expect(client.getTask({ id: 'no-such-task' } as never)).rejects.toMatchObject({
      name: 'TaskNotFoundError',
    });
    await expect(client.getAgentCard()).resolves.toBeDefined();
  });
});
