import { describe, expect, it, onTestFinished } from 'vitest';
import { rpc, startAgent, startGatewayNode, userMessage } from './helpers.js';

const ERROR_INFO = 'type.googleapis.com/google.rpc.ErrorInfo';

async function setup() {
  const node = await startGatewayNode();
  await startAgent(node, 'echo');
  const url = `${node.httpUrl}/agents/echo/a2a`;
  return { node, url };
}

async function completedTask(url: string): Promise<string> {
  const r = await rpc(url, 'SendMessage', { message: userMessage('hello') });
  return ((r.body.result as Record<string, Record<string, string>>).task as { id: string }).id;
}

describe('A2A gateway errors', () => {
  it('answers the error table with A2A codes and google.rpc.ErrorInfo details', async () => {
    const { node, url } = await setup();
    const done = await completedTask(url);
    const cases: {
      name: string;
      call: () => Promise<{ status: number; body: Record<string, unknown> }>;
      status?: number;
      code: number;
      reason: string;
      domain?: string;
    }[] = [
      {
        name: 'unknown task',
        call: () => rpc(url, 'GetTask', { id: 'nope' }),
        code: -32001,
        reason: 'TASK_NOT_FOUND',
      },
      {
        name: 'a task id that cannot exist',
        call: () => rpc(url, 'GetTask', { id: '../../etc' }),
        code: -32001,
        reason: 'TASK_NOT_FOUND',
      },
      {
        name: 'cancel of a terminal task',
        call: () => rpc(url, 'CancelTask', { id: done }),
        code: -32002,
        reason: 'TASK_NOT_CANCELABLE',
      },
      {
        name: 'a message to a terminal task',
        call: () => rpc(url, 'SendMessage', { message: userMessage('more', { taskId: done }) }),
        code: -32004,
        reason: 'UNSUPPORTED_OPERATION',
      },
      {
        name: 'subscribing to a terminal task',
        call: () => rpc(url, 'SubscribeToTask', { id: done }),
        code: -32004,
        reason: 'UNSUPPORTED_OPERATION',
      },
      {
        name: 'bad params (no message)',
        call: () => rpc(url, 'SendMessage', { configuration: {} }),
        code: -32602,
        reason: 'INVALID_PARAMS',
      },
      {
        name: 'bad params (pageSize over 100)',
        call: () => rpc(url, 'ListTasks', { pageSize: 500 }),
        code: -32602,
        reason: 'INVALID_PARAMS',
      },
      {
        name: 'bad page token',
        call: () => rpc(url, 'ListTasks', { pageToken: 'garbage' }),
        code: -32602,
        reason: 'INVALID_PARAMS',
      },
      {
        name: 'unsupported version',
        call: () => rpc(url, 'GetTask', { id: done }, { 'a2a-version': '2.0' }),
        code: -32009,
        reason: 'VERSION_NOT_SUPPORTED',
      },
      {
        name: 'a v1.0 method without A2A-Version (read as 0.3)',
        call: () => rpc(url, 'GetTask', { id: done }, {}),
        code: -32601,
        reason: 'method_not_found',
      },
      {
        name: 'unknown method',
        call: () => rpc(url, 'DoSomething', {}),
        code: -32601,
        reason: 'METHOD_NOT_FOUND',
      },
      {
        name: 'no extended card',
        call: () => rpc(url, 'GetExtendedAgentCard', {}),
        code: -32004,
        reason: 'UNSUPPORTED_OPERATION',
      },
      {
        name: 'push config that does not exist',
        call: () => rpc(url, 'GetTaskPushNotificationConfig', { taskId: done, id: 'nope' }),
        code: -32001,
        reason: 'TASK_NOT_FOUND',
      },
      {
        name: 'unknown agent',
        call: () => rpc(`${node.httpUrl}/agents/nobody/a2a`, 'SendMessage', { message: userMessage('hi') }),
        code: -32071,
        reason: 'AGENT_NOT_FOUND',
        domain: 'a2a-mesh',
      },
    ];
    for (const c of cases) {
      const r = await c.call();
      expect(r.status, c.name).toBe(c.status ?? 200);
      const error = r.body.error as { code: number; message: string; data: unknown };
      expect(error?.code, c.name).toBe(c.code);
      if (c.reason === c.reason.toLowerCase()) {
        // v0.3 requests get the mesh's error data object.
        expect(error.data, c.name).toMatchObject({ reason: c.reason });
        expect(error.message).toContain('A2A-Version: 1.0');
        continue;
      }
      const details = error.data as Record<string, unknown>[];
      expect(details[0], c.name).toMatchObject({
        '@type': ERROR_INFO,
        reason: c.reason,
        domain: c.domain ?? 'a2a-protocol.org',
      });
    }
  });

  it('invalid params carry a google.rpc.BadRequest with the field', async () => {
    const { url } = await setup();
    const r = await rpc(url, 'SendMessage', { message: { messageId: 'm', role: 'ROLE_USER', parts: [] } });
    const details = (r.body.error as { data: Record<string, unknown>[] }).data;
    expect(details[1]).toMatchObject({
      '@type': 'type.googleapis.com/google.rpc.BadRequest',
      fieldViolations: [{ field: 'message.parts' }],
    });
  });

  it('reads null members as not set (ProtoJSON), at any depth, and keeps nulls inside lists', async () => {
    const { url } = await setup();
    const message = { ...userMessage('nulls'), metadata: null, parts: [{ text: 'nulls', metadata: null }] };
    const r = await rpc(url, 'SendMessage', { message, configuration: null, metadata: null });
    expect(r.body.error).toBeUndefined();
    const task = (r.body.result as { task: { history: { metadata?: unknown; parts: object[] }[] } }).task;
    expect(task.history[0]!.metadata).toBeUndefined();
    expect(task.history[0]!.parts[0]).toEqual({ text: 'nulls' });
    // A null member still fails where the field is required.
    const bad = await rpc(url, 'SendMessage', { message: null });
    expect((bad.body.error as { code: number }).code).toBe(-32602);
  });

  it('refuses a wrong content type (415), bad JSON (-32700) and batches (-32600)', async () => {
    const { url } = await setup();
    const wrong = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', 'a2a-version': '1.0' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'GetTask', params: { id: 'x' } }),
    });
    expect(wrong.status).toBe(415);
    expect(((await wrong.json()) as { error: { code: number } }).error.code).toBe(-32600);
    const bad = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{nope',
    });
    expect(((await bad.json()) as { error: { code: number } }).error.code).toBe(-32700);
    const batch = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/a2a+json', 'a2a-version': '1.0' },
      body: JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'GetTask', params: { id: 'x' } }]),
    });
    expect(((await batch.json()) as { error: { code: number } }).error.code).toBe(-32600);
    const getOnRpc = await fetch(url);
    expect(getOnRpc.status).toBe(405);
  });

  it('a v0.3 error keeps the mesh data object', async () => {
    const { url } = await setup();
    const r = await rpc(url, 'tasks/get', { id: 'nope' }, {});
    expect(r.body.error).toMatchObject({ code: -32001, data: { reason: 'task_not_found', taskId: 'nope' } });
  });

  it('a task of another agent is not found at this agent endpoint', async () => {
    const { node, url } = await setup();
    await startAgent(node, 'other');
    const id = await completedTask(url);
    const r = await rpc(`${node.httpUrl}/agents/other/a2a`, 'GetTask', { id });
    expect((r.body.error as { code: number }).code).toBe(-32001);
  });

  it('an executor that throws fails the task with its message', async () => {
    const { url } = await setup();
    const r = await rpc(url, 'SendMessage', { message: userMessage('crash now') });
    const task = (
      r.body.result as { task: { status: { state: string; message: { parts: { text: string }[] } } } }
    ).task;
    expect(task.status.state).toBe('TASK_STATE_FAILED');
    expect(task.status.message.parts[0]?.text).toBe('boom');
  });
});

describe('A2A gateway cards', () => {
  it('serves the agent card with ETag, Cache-Control and 304 on If-None-Match', async () => {
    const { node } = await setup();
    const cardUrl = `${node.httpUrl}/agents/echo/.well-known/agent-card.json`;
    const res = await fetch(cardUrl, { headers: { 'a2a-version': '1.0' } });
    expect(res.status).toBe(200);
    const etag = res.headers.get('etag');
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    expect(res.headers.get('cache-control')).toBe('public, max-age=60');
    const card = (await res.json()) as Record<string, unknown>;
    expect(card).toMatchObject({
      name: 'Agent echo',
      description: 'the echo test agent',
      version: '1.0.0',
      defaultInputModes: ['text/plain'],
      skills: [{ id: 'echo', name: 'Echo', description: '', tags: ['test', 'echo'] }],
    });
    expect(card.url).toBeUndefined();
    const again = await fetch(cardUrl, { headers: { 'a2a-version': '1.0', 'if-none-match': etag! } });
    expect(again.status).toBe(304);
    const legacy = await fetch(cardUrl, { headers: { 'if-none-match': etag! } });
    expect(legacy.status).toBe(200);
    expect(legacy.headers.get('etag')).not.toBe(etag);
  });

  it('404 for unknown agents, with a hint when the agent is missing from the path', async () => {
    const { node } = await setup();
    expect((await fetch(`${node.httpUrl}/agents/nobody/.well-known/agent-card.json`)).status).toBe(404);
    const hint = await fetch(`${node.httpUrl}/agents/.well-known/agent-card.json`);
    expect(hint.status).toBe(404);
    expect(((await hint.json()) as { error: string }).error).toContain('trailing slash');
  });

  it('the node card lists every agent skill; /agents filters cards by skill and tag', async () => {
    const { node } = await setup();
    await startAgent(node, 'writer', undefined, {
      skills: [{ id: 'write', name: 'Write', tags: ['prose'] }],
    });
    const nodeCard = (await (await fetch(`${node.httpUrl}/.well-known/agent-card.json`)).json()) as {
      skills: { id: string }[];
      name: string;
    };
    expect(nodeCard.name).toBe(`a2a-mesh node ${node.nodeId}`);
    expect(nodeCard.skills.map((s) => s.id).sort()).toEqual(['echo/echo', 'writer/write']);
    const bySkill = (await (await fetch(`${node.httpUrl}/agents?skill=write`)).json()) as {
      agents: { agentId: string; online: boolean; card: { supportedInterfaces: { url: string }[] } }[];
    };
    expect(bySkill.agents.map((a) => a.agentId)).toEqual(['writer']);
    expect(bySkill.agents[0]?.online).toBe(true);
    expect(bySkill.agents[0]?.card.supportedInterfaces[0]?.url).toBe(`${node.httpUrl}/agents/writer/a2a`);
    const byTag = (await (await fetch(`${node.httpUrl}/agents?tag=echo`)).json()) as { agents: unknown[] };
    expect(byTag.agents).toHaveLength(1);
    const all = (await (await fetch(`${node.httpUrl}/agents`)).json()) as { agents: unknown[] };
    expect(all.agents).toHaveLength(2);
  });

  it('an agent that declares an extended card gets GetExtendedAgentCard', async () => {
    const node = await startGatewayNode();
    await startAgent(node, 'rich', undefined, { capabilities: { extendedAgentCard: true } });
    const r = await rpc(`${node.httpUrl}/agents/rich/a2a`, 'GetExtendedAgentCard', {});
    expect(r.body.result).toMatchObject({ name: 'Agent rich', capabilities: { extendedAgentCard: true } });
  });
});

describe('A2A gateway over HTTP/2 (h2c)', () => {
  it('serves cards and streams on an h2 connection', async () => {
    const { connect } = await import('node:http2');
    const { node } = await setup();
    const session = connect(node.httpUrl);
    onTestFinished(() => new Promise<void>((r) => session.close(() => r())));
    const request = (headers: Record<string, string>, body?: string) =>
      new Promise<{ status: number; headers: Record<string, unknown>; text: string }>((resolve, reject) => {
        const req = session.request(headers);
        let status = 0;
        let head: Record<string, unknown> = {};
        const chunks: Buffer[] = [];
        req.on('response', (h) => {
          status = Number(h[':status']);
          head = h;
        });
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => resolve({ status, headers: head, text: Buffer.concat(chunks).toString() }));
        req.on('error', reject);
        req.end(body);
      });
    const card = await request({
      ':method': 'GET',
      ':path': '/agents/echo/.well-known/agent-card.json',
      'a2a-version': '1.0',
    });
    expect(card.status).toBe(200);
    const parsed = JSON.parse(card.text) as { supportedInterfaces: { url: string }[] };
    expect(parsed.supportedInterfaces[0]?.url).toBe(`${node.httpUrl}/agents/echo/a2a`);
    const stream = await request(
      {
        ':method': 'POST',
        ':path': '/agents/echo/a2a',
        'content-type': 'application/json',
        'a2a-version': '1.0',
      },
      JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'SendStreamingMessage',
        params: { message: userMessage('hello') },
      }),
    );
    expect(stream.headers['content-type']).toBe('text/event-stream');
    const ids = [...stream.text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    expect(ids).toEqual([1, 2, 3, 4]);
  });
});
