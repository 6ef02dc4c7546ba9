import { MeshClient, RpcError, type TaskStreamItem } from '@a2a-mesh/client';
import { TASK_SEQUENCE_EXTENSION } from '@a2a-mesh/protocol';
import { describe, expect, it, onTestFinished } from 'vitest';
import { eventually } from '../helpers/node.js';
import { createTcpProxy } from '../helpers/tcpProxy.js';
import { echoExecutor, rpc, sse, startAgent, startGatewayNode, textOf, userMessage } from './helpers.js';

function label(item: TaskStreamItem): string {
  const e = item.event;
  if ('task' in e) return `task:${e.task.status.state}`;
  if ('statusUpdate' in e) return `status:${e.statusUpdate.status.state}`;
  if ('artifactUpdate' in e) return 'artifact';
  return 'message';
}

describe('agents delegating A2A tasks over their mesh sessions', () => {
  it('send, stream, get, list and cancel from one agent to another; the executor sees who asked', async () => {
    const node = await startGatewayNode();
    const asked: (string | undefined)[] = [];
    await startAgent(node, 'echo', (ctx) => {
      asked.push(ctx.from);
      return echoExecutor(ctx);
    });
    const boss = await startAgent(node, 'boss');

    const sent = await boss.a2a.sendMessage('echo', 'hello there');
    if (!('task' in sent)) throw new Error('expected a task');
    expect(sent.task.status.state).toBe('TASK_STATE_COMPLETED');
    expect(asked).toEqual(['boss']);

    const reply = await boss.a2a.sendMessage('echo', 'reply please');
    expect('message' in reply && textOf(reply.message)).toBe('echo: reply please');

    const stream = await boss.a2a.streamMessage('echo', 'chunks');
    const items: TaskStreamItem[] = [];
    for await (const item of stream) items.push(item);
    expect(items.map(label)).toEqual([
      'task:TASK_STATE_SUBMITTED',
      'status:TASK_STATE_WORKING',
      'artifact',
      'artifact',
      'artifact',
      'status:TASK_STATE_COMPLETED',
    ]);
    expect(items.map((i) => i.sequence)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(items.at(-1)?.final).toBe(true);
    const task = await boss.a2a.getTask(items[0]!.taskId);
    expect(task.artifacts?.[0]?.parts.map((p) => p.text).join('')).toBe('one two three');

    const listed = await boss.a2a.listTasks('echo', { pageSize: 100 });
    expect(listed.totalSize).toBe(2);

    const slow = await boss.a2a.sendMessage('echo', 'slow', { configuration: { returnImmediately: true } });
    if (!('task' in slow)) throw new Error('expected a task');
    const canceled = await boss.a2a.cancelTask(slow.task.id);
    expect(canceled.status.state).toBe('TASK_STATE_CANCELED');
    await expect(boss.a2a.cancelTask(sent.task.id)).rejects.toMatchObject({ reason: 'task_not_cancelable' });
    await expect(boss.a2a.getTask('missing')).rejects.toBeInstanceOf(RpcError);
  });

  it('only the executing agent may publish to a task', async () => {
    const node = await startGatewayNode();
    await startAgent(node, 'echo');
    const intruder = await startAgent(node, 'intruder');
    const slow = await intruder.a2a.sendMessage('echo', 'slow', {
      configuration: { returnImmediately: true },
    });
    if (!('task' in slow)) throw new Error('expected a task');
    await expect(
      intruder.call('task/publish', {
        taskId: slow.task.id,
        event: { statusUpdate: { status: { state: 'TASK_STATE_COMPLETED' } } },
      }),
    ).rejects.toMatchObject({ reason: 'task_not_found' });
    await intruder.a2a.cancelTask(slow.task.id);
  });

  it('a subscription survives a dropped connection: it resumes from its last sequence, nothing lost or repeated', async () => {
    const node = await startGatewayNode();
    await startAgent(node, 'echo');
    const proxy = await createTcpProxy(node.port);
    onTestFinished(() => proxy.close());
    const watcher = new MeshClient({
      url: `ws://127.0.0.1:${proxy.port}/mesh`,
      agentId: 'watcher',
      reconnect: { initialDelayMs: 20, maxDelayMs: 100 },
    });
    onTestFinished(() => watcher.close());
    await watcher.connect();
    const boss = await startAgent(node, 'boss');
    const slow = await boss.a2a.sendMessage('echo', 'slow', { configuration: { returnImmediately: true } });
    if (!('task' in slow)) throw new Error('expected a task');
    await eventually(async () =>
      expect((await boss.a2a.getTask(slow.task.id)).status.state).toBe('TASK_STATE_WORKING'),
    );
    const stream = await watcher.a2a.subscribe(slow.task.id);
    const items: TaskStreamItem[] = [];
    const reading = (async () => {
      for await (const item of stream) items.push(item);
    })();
    await eventually(() => expect(items).toHaveLength(1));
    proxy.cutAll();
    // Events written while the watcher is away.
    const canceled = await boss.a2a.cancelTask(slow.task.id);
    expect(canceled.status.state).toBe('TASK_STATE_CANCELED');
    await reading;
    expect(items.map(label)).toEqual(['task:TASK_STATE_WORKING', 'status:TASK_STATE_CANCELED']);
    const sequences = items.map((i) => i.sequence);
    expect(new Set(sequences).size).toBe(sequences.length);
  });

  it('subscribe with lastSequence replays exactly the events after it', async () => {
    const node = await startGatewayNode();
    await startAgent(node, 'echo');
    const boss = await startAgent(node, 'boss');
    const all: TaskStreamItem[] = [];
    for await (const item of await boss.a2a.streamMessage('echo', 'ask me')) all.push(item);
    expect(all.map(label)).toEqual(['task:TASK_STATE_SUBMITTED', 'status:TASK_STATE_INPUT_REQUIRED']);
    const taskId = all[0]!.taskId;
    const replay = await boss.a2a.subscribe(taskId, { lastSequence: 0 });
    const again: TaskStreamItem[] = [];
    const reading = (async () => {
      for await (const item of replay) again.push(item);
    })();
    await eventually(() => expect(again).toHaveLength(2));
    await boss.a2a.sendMessage('echo', { parts: [{ text: 'Ada' }], taskId });
    await reading;
    // 3 and 4 are internal entries (the turn's end, the follow-up message): sequences increase, with gaps.
    expect(again.map((i) => i.sequence)).toEqual([1, 2, 5, 6, 7, 8]);
    expect(again.map(label).slice(2)).toEqual([
      'task:TASK_STATE_INPUT_REQUIRED',
      'status:TASK_STATE_WORKING',
      'artifact',
      'status:TASK_STATE_COMPLETED',
    ]);
  });

  it('an agent that leaves mid-task fails the task', async () => {
    const node = await startGatewayNode({
      a2a: { livenessCheckMs: 50 },
    });
    const echo = await startAgent(node, 'echo');
    const boss = await startAgent(node, 'boss');
    const slow = await boss.a2a.sendMessage('echo', 'slow', { configuration: { returnImmediately: true } });
    if (!('task' in slow)) throw new Error('expected a task');
    await echo.close();
    await eventually(async () => {
      const t = await boss.a2a.getTask(slow.task.id);
      expect(t.status.state).toBe('TASK_STATE_FAILED');
      expect(textOf(t.status.message)).toContain('left the mesh');
    });
  });

  it('a message to an agent that is offline is refused', async () => {
    const node = await startGatewayNode();
    const echo = await startAgent(node, 'echo');
    await echo.close();
    const r = await rpc(`${node.httpUrl}/agents/echo/a2a`, 'SendMessage', { message: userMessage('hi') });
    expect(r.body.error).toMatchObject({ code: -32065 });
  });
});

describe('the task-sequence extension over HTTP', () => {
  it('tags events with their sequence when the client asks for the extension', async () => {
    const node = await startGatewayNode();
    await startAgent(node, 'echo');
    const res = await fetch(`${node.httpUrl}/agents/echo/a2a`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'a2a-version': '1.0',
        'a2a-extensions': TASK_SEQUENCE_EXTENSION,
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 'x',
        method: 'SendStreamingMessage',
        params: { message: userMessage('hello') },
      }),
    });
    expect(res.headers.get('a2a-extensions')).toBe(TASK_SEQUENCE_EXTENSION);
    const events = await sse(res);
    expect(events.map((e) => e.id)).toEqual(['1', '2', '3', '4']);
    for (const e of events) {
      const result = e.data.result as Record<string, { metadata?: Record<string, { sequence: number }> }>;
      const inner = Object.values(result)[0]!;
      expect(inner.metadata?.[TASK_SEQUENCE_EXTENSION]?.sequence).toBe(Number(e.id));
    }
    const taskId = ((events[0]!.data.result as { task: { id: string } }).task as { id: string }).id;
    const tail = await fetch(`${node.httpUrl}/agents/echo/a2a`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 'y',
        method: 'SubscribeToTask',
        params: { id: taskId, lastSequence: 2 },
      }),
    });
    expect((await sse(tail)).map((e) => e.id)).toEqual(['3', '4']);
  });

  it('a resubscribe after the terminal event of an ended task says there is nothing after it, instead of waiting', async () => {
    const node = await startGatewayNode();
    await startAgent(node, 'echo');
    const post = (method: string, params: unknown, signal?: AbortSignal) =>
      fetch(`${node.httpUrl}/agents/echo/a2a`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 'z', method, params }),
        ...(signal ? { signal } : {}),
      });
    const events = await sse(await post('SendStreamingMessage', { message: userMessage('hello') }));
    const last = Number(events.at(-1)!.id);
    const taskId = ((events[0]!.data.result as { task: { id: string } }).task as { id: string }).id;
    // The turn's end (and a push mark) follow the terminal event in the log; neither is an event.
    const created = await post('CreateTaskPushNotificationConfig', {
      taskId,
      url: 'http://127.0.0.1:9/hook',
    });
    expect(((await created.json()) as { result?: unknown }).result).toBeDefined();
    const res = await post('SubscribeToTask', { id: taskId, lastSequence: last }, AbortSignal.timeout(3_000));
    const body = (await res.json()) as { error?: { code: number; message: string } };
    expect(body.error?.code).toBe(-32004);
    expect(body.error?.message).toMatch(/nothing after/);
    // Before the terminal event there is still something to replay.
    const tail = await post('SubscribeToTask', { id: taskId, lastSequence: last - 1 });
    expect((await sse(tail)).map((e) => Number(e.id))).toEqual([last]);
  });
});
