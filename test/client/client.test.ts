import { CloseCode, ErrorCode, MeshError, RpcError } from '@a2a-mesh/protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type ClientStatus, MeshClient, type MeshClientOptions } from '../../packages/client/src/index.js';
import { eventually, FakeNode } from './fakeNode.js';

const clients: MeshClient[] = [];

function client(node: FakeNode, options: Partial<MeshClientOptions> = {}): MeshClient {
  const c = new MeshClient({
    connector: node.connector(),
    agentId: 'alice',
    reconnect: { initialDelayMs: 1, maxDelayMs: 5 },
    ...options,
  });
  clients.push(c);
  return c;
}

afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

async function collect<T>(iterable: AsyncIterable<T>, into: T[]): Promise<void> {
  for await (const item of iterable) into.push(item);
}

describe('MeshClient options', () => {
  it('needs exactly one of url, urls, connector', () => {
    expect(() => new MeshClient({})).toThrow(MeshError);
    expect(() => new MeshClient({ url: 'ws://x/mesh', urls: ['ws://y/mesh'] })).toThrow(/exactly one/);
    expect(() => new MeshClient({ urls: [] })).toThrow(/empty/);
  });
});

describe('MeshClient connect and hello', () => {
  it('says hello with its agentId and card and exposes the session', async () => {
    const node = new FakeNode();
    const c = client(node, { card: { name: 'Alice' } });
    const hello = await c.connect();
    expect(hello.sessionId).toBe('s1');
    expect(c.agentId).toBe('alice');
    expect(c.sessionId).toBe('s1');
    expect(c.nodeId).toBe('node-1');
    expect(c.connected).toBe(true);
    expect(node.calls('mesh/hello')[0]?.params).toEqual({
      agentId: 'alice',
      card: { name: 'Alice' },
      notifications: ['task/execute'],
    });
    expect(await c.connect()).toBe(hello);
  });

  it('keeps the agentId the node assigned', async () => {
    const node = new FakeNode();
    const c = new MeshClient({
      connector: node.connector(),
      reconnect: { initialDelayMs: 1, maxDelayMs: 5 },
    });
    clients.push(c);
    const seen: string[] = [];
    node.handle('mesh/hello', (params) => {
      seen.push(String(params.agentId));
      return {
        agentId: 'assigned-7',
        nodeId: 'n',
        sessionId: `s${seen.length}`,
        protocolVersion: '1',
        heartbeatMs: 0,
        limits: { maxMessageBytes: 1e6, maxQueueBytes: 1e6, maxSubscriptions: 10, maxStateBytes: 1e6 },
        resumed: false,
      };
    });
    await c.connect();
    expect(c.agentId).toBe('assigned-7');
    node.last.close(CloseCode.NodeDraining);
    await eventually(() => expect(seen).toHaveLength(2));
    expect(seen).toEqual(['undefined', 'assigned-7']);
  });

  it('rejects connect and closes when the node refuses hello', async () => {
    const node = new FakeNode().handle('mesh/hello', () => {
      throw RpcError.of('Unauthenticated', 'who are you');
    });
    const c = client(node);
    await expect(c.connect()).rejects.toMatchObject({ reason: 'unauthenticated' });
    const result = await c.closed();
    expect(result).toBeInstanceOf(RpcError);
    await expect(c.call('collaboration/list', {})).rejects.toMatchObject({ code: 'closed' });
  });

  it('rejects connect when no node is reachable', async () => {
    const node = new FakeNode();
    node.accepting = false;
    const c = client(node);
    await expect(c.connect()).rejects.toMatchObject({ code: 'connection_lost' });
    expect(await c.closed()).toBeInstanceOf(Error);
  });

  it('calls before connect() fail at once', async () => {
    const c = client(new FakeNode());
    await expect(c.call('collaboration/list', {})).rejects.toThrow(/connect\(\) first/);
  });
});

describe('MeshClient requests', () => {
  it('returns validated results and passes node errors through as RpcError', async () => {
    const node = new FakeNode()
      .handle('collaboration/start', () => ({ collaborationId: 'c1', epoch: 'e1', offset: 1 }))
      .handle('collaboration/get', () => {
        throw RpcError.of('CollaborationNotFound', 'no such collaboration', { collaborationId: 'zz' });
      })
      .handle('collaboration/list', () => ({ nope: true }));
    const c = client(node);
    await c.connect();
    await expect(c.startCollaboration({ topic: 't' })).resolves.toEqual({
      collaborationId: 'c1',
      epoch: 'e1',
      offset: 1,
    });
    const error = await c.call('collaboration/get', { collaborationId: 'zz' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcError);
    expect(error).toMatchObject({
      reason: 'collaboration_not_found',
      code: ErrorCode.CollaborationNotFound.code,
    });
    await expect(c.call('collaboration/list', {})).rejects.toMatchObject({ code: 'protocol' });
  });

  it('times out a call the node never answers', async () => {
    vi.useFakeTimers();
    const node = new FakeNode();
    const c = client(node, { requestTimeoutMs: 1_000 });
    await c.connect();
    const pending = c.call('collaboration/list', {});
    const outcome = pending.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(999);
    const custom = c.call('collaboration/list', {}, { timeoutMs: 50 }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(60);
    expect(await custom).toMatchObject({ code: 'timeout' });
    await vi.advanceTimersByTimeAsync(10);
    expect(await outcome).toMatchObject({ code: 'timeout' });
  });

  it('aborts a call with its signal', async () => {
    const node = new FakeNode();
    const c = client(node);
    await c.connect();
    const ac = new AbortController();
    const pending = c.call('collaboration/list', {}, { signal: ac.signal });
    ac.abort();
    await expect(pending).rejects.toMatchObject({ code: 'aborted' });
    await expect(c.call('collaboration/list', {}, { signal: ac.signal })).rejects.toMatchObject({
      code: 'aborted',
    });
  });

  it('fails calls in flight when the connection drops, and later calls wait for the new session', async () => {
    const node = new FakeNode();
    const c = client(node);
    await c.connect();
    const inFlight = c.call('collaboration/list', {}).catch((e: unknown) => e);
    node.handle('collaboration/list', () => ({ collaborations: [] }));
    node.accepting = false;
    node.last.close(CloseCode.SlowConsumer, 'slow consumer');
    expect(await inFlight).toMatchObject({ code: 'connection_lost' });
    const waiting = c.call('collaboration/list', {});
    await new Promise((r) => setTimeout(r, 30));
    node.accepting = true;
    await expect(waiting).resolves.toEqual({ collaborations: [] });
    expect(node.calls('mesh/hello')[1]?.params).toMatchObject({ agentId: 'alice', resume: 's1' });
    expect(c.sessionId).toBe('s2');
  });

  it('bounds the wait for a new session by the call timeout', async () => {
    const node = new FakeNode();
    const c = client(node);
    await c.connect();
    node.accepting = false;
    node.last.close(CloseCode.NodeDraining);
    await eventually(() => expect(c.connected).toBe(false));
    await expect(c.call('collaboration/list', {}, { timeoutMs: 30 })).rejects.toMatchObject({
      code: 'timeout',
    });
  });

  it('answers node requests it does not serve with method_not_found', async () => {
    const node = new FakeNode();
    const c = client(node);
    await c.connect();
    await expect(node.last.request('tasks/whatever', {})).rejects.toMatchObject({
      reason: 'method_not_found',
    });
  });
});

describe('MeshClient reconnect and close', () => {
  it('reports status: connecting, connected, reconnecting, connected, closed', async () => {
    const node = new FakeNode();
    const c = client(node, { reconnect: { initialDelayMs: 8, maxDelayMs: 8, random: () => 0.5 } });
    const seen: ClientStatus[] = [];
    const done = collect(c.status(), seen);
    await c.connect();
    node.last.close(CloseCode.NodeDraining, 'draining');
    await eventually(() => expect(c.sessionId).toBe('s2'));
    await c.close();
    await done;
    expect(seen.map((s) => s.type)).toEqual([
      'connecting',
      'connected',
      'reconnecting',
      'connected',
      'closed',
    ]);
    expect(seen[2]).toMatchObject({ type: 'reconnecting', attempt: 1, delayMs: 4 });
    expect(seen[4]).toEqual({ type: 'closed' });
    expect(await c.closed()).toBeUndefined();
  });

  it('rotates through urls-like connectors and gives up after maxAttempts', async () => {
    const node = new FakeNode();
    const c = client(node, { reconnect: { initialDelayMs: 1, maxDelayMs: 2, maxAttempts: 3 } });
    await c.connect();
    node.accepting = false;
    node.last.close(1006);
    const error = await c.closed();
    expect(error).toBeInstanceOf(MeshError);
    expect((error as Error).message).toMatch(/after 3 attempts/);
  });

  it('does not reconnect after a final close code', async () => {
    const node = new FakeNode();
    const c = client(node);
    await c.connect();
    node.last.close(CloseCode.Forbidden, 'forbidden');
    const error = await c.closed();
    expect((error as Error).message).toMatch(/4003/);
    expect(node.calls('mesh/hello')).toHaveLength(1);
  });

  it('does not reconnect when reconnect is false', async () => {
    const node = new FakeNode();
    const c = client(node, { reconnect: false });
    await c.connect();
    node.last.close(CloseCode.NodeDraining);
    expect(await c.closed()).toBeInstanceOf(Error);
  });

  it('close() is idempotent, fails pending calls and ends status iterators', async () => {
    const node = new FakeNode();
    const c = client(node);
    await c.connect();
    const pending = c.call('collaboration/list', {}).catch((e: unknown) => e);
    const first = c.close();
    const second = c.close();
    await Promise.all([first, second]);
    expect(await pending).toBeInstanceOf(MeshError);
    expect(await c.closed()).toBeUndefined();
    const after: ClientStatus[] = [];
    await collect(c.status(), after);
    expect(after).toEqual([{ type: 'closed' }]);
    await expect(c.connect()).rejects.toMatchObject({ code: 'closed' });
  });

  it('close() during a reconnect wait stops everything', async () => {
    const node = new FakeNode();
    const c = client(node, { reconnect: { initialDelayMs: 10_000, maxDelayMs: 10_000, random: () => 0.9 } });
    await c.connect();
    node.last.close(CloseCode.NodeDraining);
    const waiting = c.call('collaboration/list', {}).catch((e: unknown) => e);
    await eventually(() => expect(c.connected).toBe(false));
    await c.close();
    expect(await waiting).toMatchObject({ code: 'closed' });
    expect(node.calls('mesh/hello')).toHaveLength(1);
  });

  it('supports await using', async () => {
    const node = new FakeNode();
    {
      await using c = new MeshClient({ connector: node.connector(), agentId: 'x' });
      await c.connect();
    }
    await eventually(() => expect(node.last.end).toBeDefined());
  });

  it('pings an idle node and reconnects when the ping goes unanswered', async () => {
    const node = new FakeNode();
    node.heartbeatMs = 20;
    const c = client(node);
    await c.connect();
    await eventually(() => expect(node.calls('mesh/ping').length).toBeGreaterThan(0));
    await eventually(() => expect(c.sessionId).toBe('s2'));
  });
});

describe('MeshClient conversations', () => {
  it('answers conversation/message with the handler reply', async () => {
    const node = new FakeNode();
    const c = client(node);
    c.onConversation((turn) => `echo: ${turn.message.parts[0]?.text}`);
    await c.connect();
    const result = (await node.last.request('conversation/message', {
      conversationId: 'v1',
      from: 'bob',
      message: { messageId: 'm1', role: 'ROLE_USER', parts: [{ text: 'hi' }] },
    })) as { message: { role: string; parts: { text: string }[]; messageId: string } };
    expect(result.message.role).toBe('ROLE_AGENT');
    expect(result.message.parts).toEqual([{ text: 'echo: hi' }]);
    expect(result.message.messageId).toMatch(/[0-9a-f-]{36}/);
  });

  it('turns handler failures into agent_error and aborts turns when the conversation ends', async () => {
    const node = new FakeNode();
    const c = client(node);
    let aborted = false;
    const ended: string[] = [];
    c.onConversationEnded((p) => ended.push(p.conversationId));
    const off = c.onConversation(async (turn, { signal }) => {
      if (turn.conversationId === 'boom') throw new Error('kaput');
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
      aborted = signal.aborted;
      throw new Error('stopped');
    });
    await c.connect();
    const msg = { messageId: 'm1', role: 'ROLE_USER', parts: [{ text: 'hi' }] };
    await expect(
      node.last.request('conversation/message', { conversationId: 'boom', from: 'bob', message: msg }),
    ).rejects.toMatchObject({ reason: 'agent_error', message: 'kaput' });
    const slow = node.last.request('conversation/message', {
      conversationId: 'v2',
      from: 'bob',
      message: msg,
    });
    const slowOutcome = slow.catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 5));
    node.last.notify('conversation/ended', { conversationId: 'v2', by: 'bob' });
    expect(await slowOutcome).toMatchObject({ reason: 'agent_error' });
    expect(aborted).toBe(true);
    expect(ended).toEqual(['v2']);
    off();
    await expect(
      node.last.request('conversation/message', { conversationId: 'v3', from: 'bob', message: msg }),
    ).rejects.toMatchObject({ reason: 'agent_error' });
  });

  it('sends text as an A2A user message', async () => {
    const node = new FakeNode().handle('conversation/start', (params) => ({
      conversationId: 'v1',
      agentId: 'bob',
      reply: {
        messageId: 'r1',
        role: 'ROLE_AGENT',
        parts: [{ text: `got ${JSON.stringify(params.message)}` }],
      },
    }));
    const c = client(node);
    await c.connect();
    const result = await c.startConversation({ to: { skill: 'critic' }, message: 'hello' });
    expect(result.agentId).toBe('bob');
    const sent = node.calls('conversation/start')[0]?.params as {
      to: unknown;
      message: Record<string, unknown>;
    };
    expect(sent.to).toEqual({ skill: 'critic' });
    expect(sent.message).toMatchObject({ role: 'ROLE_USER', parts: [{ text: 'hello' }] });
    expect(typeof sent.message.messageId).toBe('string');
  });
});
