import { msgpackCodec } from '@a2a-mesh/protocol';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { eventually, startNode } from '../helpers/node.js';
import { rawClient } from '../helpers/rawClient.js';

type Resp = Record<string, unknown> & {
  error?: { code: number; data: { reason: string; issues?: { path: string }[] } };
};

describe('bad input never crashes the node or touches a collaboration', () => {
  it('answers each bad frame with the right error and keeps serving others', async () => {
    const node = await startNode({ maxMessageBytes: 64 * 1024 });
    const good = await rawClient(node.url);
    expect((await good.call('mesh/hello', { agentId: 'good' })).result).toBeTruthy();
    const start = (await good.call('collaboration/start', { topic: 't', state: { n: 0 } })) as {
      result: { collaborationId: string };
    };
    const cid = start.result.collaborationId;
    await good.call('collaboration/join', { collaborationId: cid });

    const bad = await rawClient(node.url);
    const cases: { name: string; frame: string; code: number; reason: string; path?: string }[] = [
      { name: 'malformed JSON', frame: '{"jsonrpc":"2.0",', code: -32700, reason: 'parse_error' },
      { name: 'not an object', frame: '42', code: -32600, reason: 'invalid_request' },
      {
        name: 'wrong version',
        frame: '{"jsonrpc":"1.0","id":1,"method":"mesh/ping"}',
        code: -32600,
        reason: 'invalid_request',
      },
      {
        name: 'method not a string',
        frame: '{"jsonrpc":"2.0","id":1,"method":7}',
        code: -32600,
        reason: 'invalid_request',
      },
      { name: 'empty batch', frame: '[]', code: -32600, reason: 'invalid_request' },
      {
        name: 'batch too large',
        frame: JSON.stringify(
          Array.from({ length: 101 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'mesh/ping' })),
        ),
        code: -32600,
        reason: 'invalid_request',
      },
      {
        name: 'before hello',
        frame: '{"jsonrpc":"2.0","id":"x","method":"collaboration/list"}',
        code: -32073,
        reason: 'hello_required',
      },
      {
        name: 'unknown method',
        frame: '{"jsonrpc":"2.0","id":"x","method":"nope/nothing"}',
        code: -32601,
        reason: 'method_not_found',
      },
      {
        name: 'prototype key as method',
        frame: '{"jsonrpc":"2.0","id":"x","method":"__proto__"}',
        code: -32601,
        reason: 'method_not_found',
      },
    ];
    for (const c of cases) {
      const r = (await bad.sendRaw(c.frame)) as Resp;
      expect(r.error?.code, c.name).toBe(c.code);
      expect(r.error?.data.reason, c.name).toBe(c.reason);
    }

    expect((await bad.call('mesh/hello', { agentId: 'bad' })).result).toBeTruthy();
    const afterHello: {
      name: string;
      method: string;
      params: unknown;
      code: number;
      reason: string;
      path?: string;
    }[] = [
      { name: 'hello twice', method: 'mesh/hello', params: {}, code: -32600, reason: 'invalid_request' },
      {
        name: 'missing content',
        method: 'collaboration/share',
        params: { collaborationId: cid },
        code: -32602,
        reason: 'invalid_params',
        path: 'content',
      },
      {
        name: 'bad id',
        method: 'collaboration/join',
        params: { collaborationId: '../../etc' },
        code: -32602,
        reason: 'invalid_params',
        path: 'collaborationId',
      },
      {
        name: 'negative since',
        method: 'collaboration/join',
        params: { collaborationId: cid, since: { epoch: 'e', offset: -1 } },
        code: -32602,
        reason: 'invalid_params',
        path: 'since.offset',
      },
      {
        name: 'bad patch op',
        method: 'collaboration/update',
        params: { collaborationId: cid, patch: [{ op: 'explode', path: '/n' }] },
        code: -32602,
        reason: 'invalid_params',
        path: 'patch.0.op',
      },
      {
        name: 'wildcard publish',
        method: 'topics/publish',
        params: { topic: 'a.*', data: 1 },
        code: -32602,
        reason: 'invalid_params',
        path: 'topic',
      },
      {
        name: 'misplaced >',
        method: 'topics/subscribe',
        params: { pattern: 'a.>.b' },
        code: -32602,
        reason: 'invalid_params',
        path: 'pattern',
      },
      {
        name: 'unknown collaboration',
        method: 'collaboration/join',
        params: { collaborationId: 'doesNotExist' },
        code: -32060,
        reason: 'collaboration_not_found',
      },
      {
        name: 'share without join',
        method: 'collaboration/share',
        params: { collaborationId: cid, content: 'x' },
        code: -32061,
        reason: 'not_a_member',
      },
      {
        name: 'unknown subscription',
        method: 'topics/unsubscribe',
        params: { subscriptionId: 'nope' },
        code: -32074,
        reason: 'subscription_not_found',
      },
      {
        name: 'unknown conversation',
        method: 'conversation/continue',
        params: { conversationId: 'nope', message: { parts: [{ text: 'hi' }] } },
        code: -32070,
        reason: 'conversation_not_found',
      },
      {
        name: 'unknown agent',
        method: 'agents/get',
        params: { agentId: 'ghost' },
        code: -32071,
        reason: 'agent_not_found',
      },
      {
        name: 'unreachable agent',
        method: 'conversation/start',
        params: { to: { skill: 'nobody-has-this' }, message: { parts: [{ text: 'hi' }] } },
        code: -32071,
        reason: 'agent_not_found',
      },
      {
        name: 'non-owner end',
        method: 'collaboration/end',
        params: { collaborationId: cid },
        code: -32063,
        reason: 'forbidden',
      },
    ];
    for (const c of afterHello) {
      const r = (await bad.call(c.method, c.params)) as Resp;
      expect(r.error?.code, c.name).toBe(c.code);
      expect(r.error?.data.reason, c.name).toBe(c.reason);
      if (c.path) expect(r.error?.data.issues?.[0]?.path, c.name).toBe(c.path);
    }

    // Joined, the bad agent's bad writes are refused too.
    await bad.call('collaboration/join', { collaborationId: cid });
    const second = (await bad.call('collaboration/update', {
      collaborationId: cid,
      patch: [
        { op: 'add', path: '/x', value: 1 },
        { op: 'remove', path: '/missing' },
      ],
    })) as Resp & { error?: { data: { operation?: number } } };
    expect(second.error?.data.reason).toBe('invalid_patch');
    expect(second.error?.data.operation).toBe(1);
    const noApply = (await bad.call('collaboration/update', {
      collaborationId: cid,
      patch: [{ op: 'remove', path: '/missing' }],
    })) as Resp;
    expect(noApply.error?.data.reason).toBe('invalid_patch');
    const failedTest = (await bad.call('collaboration/update', {
      collaborationId: cid,
      patch: [{ op: 'test', path: '/n', value: 99 }],
    })) as Resp;
    expect(failedTest.error?.data.reason).toBe('invalid_patch');
    const huge = (await bad.call('collaboration/update', {
      collaborationId: cid,
      patch: [{ op: 'add', path: '/big', value: 'x'.repeat(40_000) }],
    })) as Resp;
    expect(huge.error).toBeUndefined();
    const tooBig = (await bad.call('collaboration/update', {
      collaborationId: cid,
      patch: [{ op: 'add', path: '/big2', value: 'y'.repeat(40_000) }],
    })) as Resp;
    expect(tooBig.error).toBeUndefined();

    // A frame over maxMessageBytes closes only that socket, with 1009.
    bad.ws.send(
      JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'mesh/ping', params: { pad: 'z'.repeat(70_000) } }),
    );
    expect(await bad.closed).toBe(1009);

    // The good agent is still served and the collaboration holds exactly the valid writes.
    const ok = (await good.call('collaboration/update', {
      collaborationId: cid,
      patch: [{ op: 'replace', path: '/n', value: 1 }],
    })) as Resp;
    expect(ok.error).toBeUndefined();
    const info = (await good.call('collaboration/get', { collaborationId: cid })) as {
      result: { state: Record<string, unknown> };
    };
    expect(Object.keys(info.result.state).sort()).toEqual(['big', 'big2', 'n']);
    expect(info.result.state.n).toBe(1);
    good.close();
  });

  it('limits state size with PayloadTooLarge', async () => {
    const node = await startNode({ maxStateBytes: 1000 });
    const c = await rawClient(node.url);
    await c.call('mesh/hello', { agentId: 'a' });
    const big = (await c.call('collaboration/start', { topic: 't', state: { s: 'x'.repeat(2000) } })) as Resp;
    expect(big.error?.data.reason).toBe('payload_too_large');
    const { result } = (await c.call('collaboration/start', { topic: 't' })) as {
      result: { collaborationId: string };
    };
    await c.call('collaboration/join', { collaborationId: result.collaborationId });
    const r = (await c.call('collaboration/update', {
      collaborationId: result.collaborationId,
      patch: [{ op: 'add', path: '/s', value: 'x'.repeat(2000) }],
    })) as Resp;
    expect(r.error?.code).toBe(-32066);
    c.close();
  });

  it('refuses an unsupported subprotocol or path at the handshake and serves msgpack', async () => {
    const node = await startNode();
    for (const [url, protocols, status] of [
      [node.url, ['something.else'], 400],
      [node.url.replace('/mesh', '/other'), ['a2a-mesh.v1.json'], 404],
    ] as const) {
      const ws = new WebSocket(url, [...protocols]);
      ws.on('error', () => {});
      const seen = await new Promise<number>((resolve) => {
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.once('open', () => resolve(101));
      });
      expect(seen).toBe(status);
    }

    const mp = await rawClient(node.url, ['a2a-mesh.v1.msgpack']);
    expect(mp.ws.protocol).toBe('a2a-mesh.v1.msgpack');
    const hello = (await mp.call('mesh/hello', { agentId: 'packed' })) as { result: { agentId: string } };
    expect(hello.result.agentId).toBe('packed');
    const garbage = (await mp.sendRaw(Buffer.from([0xc1, 0xc1, 0xc1]))) as Resp;
    expect(garbage.error?.code).toBe(-32700);
    const text = (await mp.sendRaw('{"jsonrpc":"2.0","id":1,"method":"mesh/ping"}')) as Resp;
    expect(text.error?.code).toBe(-32700);
    const batch = (await mp.sendRaw(
      Buffer.from(msgpackCodec.encode([{ jsonrpc: '2.0', id: 'b1', method: 'mesh/ping' }]) as Uint8Array),
    )) as unknown[];
    expect(Array.isArray(batch)).toBe(true);
    expect(batch).toHaveLength(1);
    mp.close();
  });

  it('closes a slow consumer with 4008 without slowing the others', async () => {
    const node = await startNode({ maxQueueBytes: 256 * 1024 });
    const writer = await rawClient(node.url);
    await writer.call('mesh/hello', { agentId: 'writer' });
    const { result } = (await writer.call('collaboration/start', { topic: 'flood' })) as {
      result: { collaborationId: string };
    };
    const cid = result.collaborationId;
    await writer.call('collaboration/join', { collaborationId: cid });
    const slow = await rawClient(node.url);
    await slow.call('mesh/hello', { agentId: 'slow' });
    await slow.call('collaboration/join', { collaborationId: cid });
    // Stop reading: the kernel buffers fill, then the node's send queue, then the node cuts it off.
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const content = 'p'.repeat(60_000);
    for (let i = 0; i < 400 && node.stats().slowConsumerCloses === 0; i++) {
      const r = (await writer.call('collaboration/share', { collaborationId: cid, content })) as Resp;
      expect(r.error).toBeUndefined();
    }
    expect(node.stats().slowConsumerCloses).toBe(1);
    // Once it reads again it drains the backlog and gets the close code, not a bare cut.
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    expect(await slow.closed).toBe(4008);
    // The writer still gets its own events in order.
    await eventually(() => expect(writer.notifications.length).toBeGreaterThan(10));
    const offsets = writer.notifications.map((n) => n.params.offset as number);
    expect(offsets).toEqual(offsets.map((_, i) => offsets[0]! + i));
    writer.close();
  });

  it('terminates a connection that stops answering pings', async () => {
    const node = await startNode({ heartbeatMs: 100 });
    const c = await rawClient(node.url);
    await c.call('mesh/hello', { agentId: 'sleepy' });
    expect(node.stats().sessions).toBe(1);
    (c.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    await eventually(() => expect(node.stats().sessions).toBe(0), 3000);
  });
});
