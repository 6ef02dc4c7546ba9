import { Message, TaskState } from '@a2a-js/sdk';
import { ClientFactory } from '@a2a-js/sdk/client';
import { connect } from '@nats-io/transport-node';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startNatsNode } from '../helpers/natsNode.js';
import { startNatsServer } from '../helpers/natsServer.js';
import { eventually } from '../helpers/node.js';
import { rpc, sse, startAgent, userMessage } from './helpers.js';

function msg(text: string) {
  return Message.fromJSON({ messageId: crypto.randomUUID(), role: 'ROLE_USER', parts: [{ text }] });
}

describe('A2A tasks across nodes (NATS bus)', () => {
  it('a task created through node A is read, listed, resubscribed and canceled through node B', async () => {
    const nats = await startNatsServer();
    const a = await startNatsNode(nats.url, 'node-a');
    const b = await startNatsNode(nats.url, 'node-b');
    // The agent is connected to node A only.
    await startAgent(a, 'worker');
    const viaA = await new ClientFactory().createFromUrl(`${a.httpUrl}/agents/worker/`);
    await eventually(async () => {
      const res = await fetch(`${b.httpUrl}/agents/worker/.well-known/agent-card.json`);
      expect(res.status).toBe(200);
    });
    const viaB = await new ClientFactory().createFromUrl(`${b.httpUrl}/agents/worker/`);
    expect((await viaB.getAgentCard()).supportedInterfaces[0]?.url).toBe(`${b.httpUrl}/agents/worker/a2a`);

    const done = await viaA.sendMessage({ message: msg('hello from A') } as never);
    if (!('id' in done)) throw new Error('expected a task');
    const read = await viaB.getTask({ id: done.id } as never);
    expect(read.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(read.artifacts).toHaveLength(1);

    const slow = await viaA.sendMessage({
      message: msg('slow one'),
      configuration: { returnImmediately: true },
    } as never);
    if (!('id' in slow)) throw new Error('expected a task');
    const listed = await viaB.listTasks({ pageSize: 10, pageToken: '', status: 0 } as never);
    expect(listed.tasks.map((t) => t.id).sort()).toEqual([done.id, slow.id].sort());

    const seen: string[] = [];
    const reading = (async () => {
      for await (const ev of viaB.resubscribeTask({ id: slow.id } as never)) {
        const p = ev.payload!;
        seen.push(p.$case === 'statusUpdate' ? `status:${p.value.status!.state}` : p.$case);
      }
    })();
    await eventually(() => expect(seen[0]).toBe('task'));
    // Cancel through B: B asks the agent (on A) over the bus.
    const canceled = await viaB.cancelTask({ id: slow.id } as never);
    expect(canceled.status?.state).toBe(TaskState.TASK_STATE_CANCELED);
    await reading;
    expect(seen.at(-1)).toBe(`status:${TaskState.TASK_STATE_CANCELED}`);
  });

  it('a stream through B starts a task on an agent at A; a reconnecting client replays from its last sequence at A', async () => {
    const nats = await startNatsServer();
    const a = await startNatsNode(nats.url, 'node-a');
    const b = await startNatsNode(nats.url, 'node-b');
    await startAgent(a, 'worker');
    await eventually(async () => {
      const r = await rpc(`${b.httpUrl}/agents/worker/a2a`, 'ListTasks', {});
      expect(r.body.result).toBeDefined();
    });
    const res = await fetch(`${b.httpUrl}/agents/worker/a2a`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'a2a-version': '1.0', accept: 'text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 7,
        method: 'SendStreamingMessage',
        params: { message: userMessage('chunks please') },
      }),
    });
    const events = await sse(res);
    const ids = events.map((e) => Number(e.id));
    expect(ids).toEqual([...ids].sort((x, y) => x - y));
    const taskId = (events[0]!.data.result as { task: { id: string } }).task.id;
    // A client that saw the first two events reconnects to the other node and misses nothing.
    const resumed = await fetch(`${a.httpUrl}/agents/worker/a2a`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'a2a-version': '1.0', 'last-event-id': String(ids[1]) },
      body: JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'SubscribeToTask', params: { id: taskId } }),
    });
    const rest = await sse(resumed);
    expect(rest.map((e) => Number(e.id))).toEqual(ids.slice(2));
    expect(rest.map((e) => e.data.result)).toEqual(events.slice(2).map((e) => e.data.result));
  });

  it('a node that has read a task sees what other nodes write after; a fresh node lists the final state as soon as it is answered', async () => {
    const nats = await startNatsServer();
    const a = await startNatsNode(nats.url, 'node-a');
    const b = await startNatsNode(nats.url, 'node-b');
    const c = await startNatsNode(nats.url, 'node-c');
    await startAgent(a, 'worker');
    const at = (n: { httpUrl: string }) => `${n.httpUrl}/agents/worker/a2a`;
    await eventually(async () => {
      const r = await rpc(at(b), 'ListTasks', {});
      expect(r.body.result).toBeDefined();
    });
    type TaskJson = {
      id: string;
      status: { state: string };
      history?: { parts: { text?: string }[] }[];
      artifacts?: unknown[];
    };
    // Started through B (which creates the record and keeps it); the agent at A writes the events.
    const asked = await rpc(at(b), 'SendMessage', { message: userMessage('ask me') });
    const task = (asked.body.result as { task: TaskJson }).task;
    expect(task.status.state).toBe('TASK_STATE_INPUT_REQUIRED');
    const viaB = await rpc(at(b), 'GetTask', { id: task.id });
    expect((viaB.body.result as TaskJson).status.state).toBe('TASK_STATE_INPUT_REQUIRED');
    // The follow-up goes through A; its turn runs and completes there.
    const answered = await rpc(at(a), 'SendMessage', { message: userMessage('alice', { taskId: task.id }) });
    expect((answered.body.result as { task: TaskJson }).task.status.state).toBe('TASK_STATE_COMPLETED');
    // No waiting: B catches up from the log, C (never saw the task) lists the stored record.
    const again = (await rpc(at(b), 'GetTask', { id: task.id })).body.result as TaskJson;
    expect(again.status.state).toBe('TASK_STATE_COMPLETED');
    expect(again.artifacts).toHaveLength(1);
    expect(again.history?.some((m) => m.parts[0]?.text === 'alice')).toBe(true);
    for (const node of [b, c]) {
      const listed = (await rpc(at(node), 'ListTasks', {})).body.result as { tasks: TaskJson[] };
      expect(listed.tasks.map((t) => [t.id, t.status.state])).toEqual([[task.id, 'TASK_STATE_COMPLETED']]);
    }
    const refused = await rpc(at(b), 'SendMessage', { message: userMessage('more', { taskId: task.id }) });
    expect((refused.body.error as { message: string }).message).toMatch(/terminal state/);
    // A direct reply leaves no task to list, on any node, as soon as it is returned.
    const replied = await rpc(at(b), 'SendMessage', { message: userMessage('reply now') });
    expect(replied.body.result).toHaveProperty('message');
    for (const node of [a, b, c]) {
      const listed = (await rpc(at(node), 'ListTasks', {})).body.result as { tasks: TaskJson[] };
      expect(listed.tasks.map((t) => t.id)).toEqual([task.id]);
    }
  });

  it('a SendMessage routed to the agent on another node reads no task record, log or card on any node', async () => {
    const nats = await startNatsServer();
    const a = await startNatsNode(nats.url, 'node-a');
    const b = await startNatsNode(nats.url, 'node-b');
    await startAgent(b, 'worker');
    const url = `${a.httpUrl}/agents/worker/a2a`;
    await eventually(async () => expect((await rpc(url, 'ListTasks', {})).body.result).toBeDefined());
    // Node A's mirror of the cards has the agent's, written on node B at its hello.
    await eventually(async () => {
      const listed = (await (await fetch(`${a.httpUrl}/agents`)).json()) as { agents: { agentId: string }[] };
      expect(listed.agents.map((c) => c.agentId)).toContain('worker');
    });
    // Every read of the server's state: task records and logs, and the agent's card.
    const spy = await connect({ servers: nats.url });
    onTestFinished(() => spy.close());
    const reads: string[] = [];
    spy.subscribe('$JS.API.>', {
      callback: (_e, m) => {
        if (/MSG\.GET|DIRECT\.GET/.test(m.subject)) reads.push(m.subject);
      },
    });
    await spy.flush();
    for (let i = 0; i < 4; i++) {
      const r = await rpc(url, 'SendMessage', { message: userMessage(i % 2 ? `reply ${i}` : `hello ${i}`) });
      expect(r.body.result).toBeDefined();
    }
    expect(reads).toEqual([]);
    // The answers are right on both nodes: node B wrote them from the record node A handed over.
    const viaB = (await rpc(`${b.httpUrl}/agents/worker/a2a`, 'ListTasks', {})).body.result as {
      tasks: { status: { state: string } }[];
    };
    expect(viaB.tasks.map((t) => t.status.state)).toEqual(['TASK_STATE_COMPLETED', 'TASK_STATE_COMPLETED']);
  });

  it('the node that started a turn stops checking on it once it saw the task close, although the end was written elsewhere', async () => {
    const nats = await startNatsServer();
    // Liveness checks every 50 ms: a finished task still on node A's list would be read at each.
    const a = await startNatsNode(nats.url, 'node-a', { a2a: { livenessCheckMs: 50 } });
    const b = await startNatsNode(nats.url, 'node-b');
    await startAgent(b, 'worker');
    const url = `${a.httpUrl}/agents/worker/a2a`;
    await eventually(async () => expect((await rpc(url, 'ListTasks', {})).body.result).toBeDefined());
    for (let i = 0; i < 5; i++) {
      const r = await rpc(url, 'SendMessage', { message: userMessage(i % 2 ? `reply ${i}` : `hello ${i}`) });
      expect(r.body.result).toBeDefined();
    }
    // Reads of task records and logs from now on (a subscriber on the server sees every request).
    const spy = await connect({ servers: nats.url });
    onTestFinished(() => spy.close());
    let reads = 0;
    spy.subscribe('$JS.API.>', {
      callback: (_e, m) => {
        if (m.subject.includes('a2a-tasks') || m.subject.includes('STREAM.MSG.GET')) reads++;
      },
    });
    await spy.flush();
    await new Promise((r) => setTimeout(r, 500));
    expect(reads).toBe(0);
  });
});
