import { ClientFactory } from 'a2a-sdk-v03/client';
import { describe, expect, it } from 'vitest';
import { startAgent, startGatewayNode } from './helpers.js';

type Any = Record<string, unknown> & {
  kind?: string;
  status?: { state: string; message?: Any };
  parts?: Any[];
  artifacts?: Any[];
};

function msg(text: string, extra: Record<string, unknown> = {}) {
  return {
    kind: 'message',
    messageId: crypto.randomUUID(),
    role: 'user',
    parts: [{ kind: 'text', text }],
    ...extra,
  };
}

async function setup() {
  const node = await startGatewayNode();
  await startAgent(node, 'echo');
  const client = await new ClientFactory().createFromUrl(`${node.httpUrl}/agents/echo/`);
  return { node, client };
}

describe('@a2a-js/sdk 0.3 client (no A2A-Version header) against the gateway', () => {
  it('reads the v0.3 fields of the card', async () => {
    const { node } = await setup();
    const res = await fetch(`${node.httpUrl}/agents/echo/.well-known/agent-card.json`);
    const card = (await res.json()) as Record<string, unknown>;
    expect(card).toMatchObject({
      protocolVersion: '0.3.0',
      url: `${node.httpUrl}/agents/echo/a2a`,
      preferredTransport: 'JSONRPC',
      capabilities: { streaming: true, pushNotifications: true },
    });
  });

  it('message/send answers a v0.3 task, tasks/get reads it', async () => {
    const { client } = await setup();
    const task = (await client.sendMessage({ message: msg('hello old world') } as never)) as unknown as Any;
    expect(task.kind).toBe('task');
    expect(task.status?.state).toBe('completed');
    expect(task.artifacts?.[0]?.parts).toEqual([{ kind: 'text', text: 'echo: hello old world' }]);
    const got = (await client.getTask({ id: task.id } as never)) as unknown as Any;
    expect(got).toMatchObject({ kind: 'task', id: task.id, status: { state: 'completed' } });
    expect((got.history as Any[])[0]).toMatchObject({ kind: 'message', role: 'user' });
  });

  it('message/send with a direct reply answers a v0.3 message', async () => {
    const { client } = await setup();
    const reply = (await client.sendMessage({ message: msg('reply now') } as never)) as unknown as Any;
    expect(reply).toMatchObject({
      kind: 'message',
      role: 'agent',
      parts: [{ kind: 'text', text: 'echo: reply now' }],
    });
  });

  it('message/stream yields v0.3 events in order, the last one final', async () => {
    const { client } = await setup();
    const events: Any[] = [];
    for await (const ev of client.sendMessageStream({ message: msg('hello stream') } as never))
      events.push(ev as unknown as Any);
    expect(events.map((e) => e.kind)).toEqual(['task', 'status-update', 'artifact-update', 'status-update']);
    expect(
      events.map((e) => (e.kind === 'status-update' ? `${e.status?.state}:${e.final}` : e.kind)),
    ).toEqual(['task', 'working:false', 'artifact-update', 'completed:true']);
  });

  it('tasks/cancel cancels a running task; a completed one is not cancelable', async () => {
    const { client } = await setup();
    const stream = client.sendMessageStream({ message: msg('slow one') } as never);
    const first = (await stream.next()).value as unknown as Any;
    expect(first.kind).toBe('task');
    const canceled = (await client.cancelTask({ id: first.id } as never)) as unknown as Any;
    expect(canceled.status?.state).toBe('canceled');
    const rest: Any[] = [];
    for await (const ev of stream) rest.push(ev as unknown as Any);
    expect(rest.at(-1)).toMatchObject({ kind: 'status-update', status: { state: 'canceled' }, final: true });
    const done = (await client.sendMessage({ message: msg('hello') } as never)) as unknown as Any;
    await expect(client.cancelTask({ id: done.id } as never)).rejects.toThrow(/cannot be canceled/);
  });
});
