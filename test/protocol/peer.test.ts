import {
  type HandlerContext,
  type JsonRpcMessage,
  MeshError,
  RpcError,
  RpcPeer,
  type RpcPeerOptions,
} from '@a2a-mesh/protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';

type Frame = JsonRpcMessage | JsonRpcMessage[];

/** A peer whose outgoing frames are recorded; the test feeds it frames by hand. */
function harness(overrides: Partial<RpcPeerOptions> = {}) {
  const sent: Frame[] = [];
  const internal: { error: unknown; method: string }[] = [];
  const notifications: { method: string; params: unknown }[] = [];
  const peer = new RpcPeer({
    send: (m) => {
      // Copy, as a codec would: later mutation must not change what was sent.
      sent.push(JSON.parse(JSON.stringify(m)));
    },
    onRequest: (method, params) => ({ method, params }),
    onNotification: (method, params) => {
      notifications.push({ method, params });
    },
    onInternalError: (error, method) => {
      internal.push({ error, method });
    },
    ...overrides,
  });
  return { peer, sent, internal, notifications };
}

/** Lets queued microtasks and promise chains run. */
async function flush(times = 10): Promise<void> {
  for (let i = 0; i < times; i++) await Promise.resolve();
}

async function sentAfter(sent: Frame[], n: number): Promise<Frame[]> {
  await vi.waitFor(() => expect(sent.length).toBeGreaterThanOrEqual(n), { interval: 1 });
  return sent;
}

/** Two peers linked through a JSON round trip, delivered asynchronously like a socket. */
function pair(a: Partial<RpcPeerOptions>, b: Partial<RpcPeerOptions>) {
  const link = (to: () => RpcPeer) => (m: Frame) => {
    const wire = JSON.stringify(m);
    queueMicrotask(() => to().receive(JSON.parse(wire)));
  };
  const left: RpcPeer = new RpcPeer({ onRequest: () => null, ...a, send: link(() => right) });
  const right: RpcPeer = new RpcPeer({ onRequest: () => null, ...b, send: link(() => left) });
  return { left, right };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('RpcPeer outgoing requests', () => {
  it('matches responses to requests by id, whatever order they come back in', async () => {
    const { left } = pair(
      {},
      {
        onRequest: async (method, params) => {
          const { delayMs } = params as { delayMs: number };
          await new Promise((r) => setTimeout(r, delayMs));
          return `${method}:${delayMs}`;
        },
      },
    );
    const slow = left.request('slow', { delayMs: 30 });
    const fast = left.request('fast', { delayMs: 1 });
    expect(left.pendingCount).toBe(2);
    const order: string[] = [];
    await Promise.all([slow.then((v) => order.push(String(v))), fast.then((v) => order.push(String(v)))]);
    expect(order).toEqual(['fast:1', 'slow:30']);
    expect(left.pendingCount).toBe(0);
  });

  it('sends requests with increasing numeric ids and omits absent params', async () => {
    const { peer, sent } = harness();
    const a = peer.request('a').catch((e: unknown) => e);
    const b = peer.request('b', { x: 1 }).catch((e: unknown) => e);
    expect(sent).toEqual([
      { jsonrpc: '2.0', id: 1, method: 'a' },
      { jsonrpc: '2.0', id: 2, method: 'b', params: { x: 1 } },
    ]);
    peer.close();
    expect(await a).toBeInstanceOf(MeshError);
    expect(await b).toBeInstanceOf(MeshError);
  });

  it('rejects with the RpcError the other side answered with', async () => {
    const { left } = pair(
      {},
      {
        onRequest: () => {
          throw RpcError.of('StateConflict', 'changed', { currentOffset: 7, stateOffset: 6 });
        },
      },
    );
    const error = await left.request('collaboration/update').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcError);
    expect(error).toMatchObject({
      code: -32062,
      message: 'changed',
      data: { reason: 'state_conflict', currentOffset: 7, stateOffset: 6 },
    });
  });

  it('ignores responses with unknown ids and does not answer them', async () => {
    const { peer, sent } = harness();
    const p = peer.request('m');
    peer.receive({ jsonrpc: '2.0', id: 999, result: 'stray' });
    peer.receive({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
    await flush();
    expect(sent).toHaveLength(1);
    expect(peer.pendingCount).toBe(1);
    peer.receive({ jsonrpc: '2.0', id: 1, result: 'ok' });
    await expect(p).resolves.toBe('ok');
  });

  it('times out with MeshError timeout and forgets the request; a late response is ignored', async () => {
    vi.useFakeTimers();
    const { peer, sent } = harness({ defaultTimeoutMs: 1000 });
    const byDefault = peer.request('slow');
    const own = peer.request('slower', undefined, { timeoutMs: 5000 });
    const byDefaultErr = byDefault.catch((e: unknown) => e);
    const ownErr = own.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(999);
    expect(peer.pendingCount).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    const e1 = await byDefaultErr;
    expect(e1).toBeInstanceOf(MeshError);
    expect((e1 as MeshError).code).toBe('timeout');
    expect((e1 as MeshError).message).toMatch(/slow timed out after 1000 ms/);
    expect(peer.pendingCount).toBe(1);
    await vi.advanceTimersByTimeAsync(4000);
    expect(((await ownErr) as MeshError).code).toBe('timeout');
    expect(peer.pendingCount).toBe(0);
    peer.receive({ jsonrpc: '2.0', id: 1, result: 'late' });
    await flush();
    expect(sent).toHaveLength(2);
  });

  it('defaults to a 30 s timeout', async () => {
    vi.useFakeTimers();
    const { peer } = harness();
    const p = peer.request('m').catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(29_999);
    expect(peer.pendingCount).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(((await p) as MeshError).code).toBe('timeout');
  });

  it('rejects with MeshError aborted when the signal aborts, and sends nothing for a pre-aborted signal', async () => {
    const { peer, sent } = harness();
    const ac = new AbortController();
    const p = peer.request('m', undefined, { signal: ac.signal }).catch((e: unknown) => e);
    expect(peer.pendingCount).toBe(1);
    ac.abort(new Error('user cancelled'));
    const err = (await p) as MeshError;
    expect(err).toBeInstanceOf(MeshError);
    expect(err.code).toBe('aborted');
    expect((err.cause as Error).message).toBe('user cancelled');
    expect(peer.pendingCount).toBe(0);

    const pre = AbortSignal.abort();
    const e2 = (await peer.request('n', undefined, { signal: pre }).catch((e: unknown) => e)) as MeshError;
    expect(e2.code).toBe('aborted');
    expect(sent).toHaveLength(1);
  });

  it('rejects at once when send throws, without leaving it pending', async () => {
    const boom = new Error('socket gone');
    const { peer } = harness({
      send: () => {
        throw boom;
      },
    });
    await expect(peer.request('m')).rejects.toBe(boom);
    expect(peer.pendingCount).toBe(0);
  });

  it('close() rejects pending requests with connection_lost; later calls fail with closed', async () => {
    const { peer, sent } = harness();
    const a = peer.request('a').catch((e: unknown) => e);
    const b = peer.request('b').catch((e: unknown) => e);
    const reason = new Error('socket closed 1006');
    peer.close(reason);
    for (const e of [await a, await b]) {
      expect(e).toBeInstanceOf(MeshError);
      expect((e as MeshError).code).toBe('connection_lost');
      expect((e as MeshError).cause).toBe(reason);
    }
    expect(peer.pendingCount).toBe(0);
    const later = (await peer.request('c').catch((e: unknown) => e)) as MeshError;
    expect(later.code).toBe('closed');
    peer.notify('n');
    expect(sent).toHaveLength(2);
  });
});

describe('RpcPeer incoming requests', () => {
  it('answers a single request with a single response; undefined results become null', async () => {
    const { peer, sent } = harness({ onRequest: () => undefined });
    peer.receive({ jsonrpc: '2.0', id: 'x', method: 'm' });
    expect(await sentAfter(sent, 1)).toEqual([{ jsonrpc: '2.0', id: 'x', result: null }]);
  });

  it('passes method, params, id and a live signal to the handler', async () => {
    let seen: { method: string; params: unknown; ctx: HandlerContext } | undefined;
    const { peer, sent } = harness({
      onRequest: (method, params, ctx) => {
        seen = { method, params, ctx };
        return 1;
      },
    });
    peer.receive({ jsonrpc: '2.0', id: 5, method: 'collaboration/get', params: { collaborationId: 'c' } });
    await sentAfter(sent, 1);
    expect(seen?.method).toBe('collaboration/get');
    expect(seen?.params).toEqual({ collaborationId: 'c' });
    expect(seen?.ctx.id).toBe(5);
    expect(seen?.ctx.signal.aborted).toBe(false);
  });

  it('answers a batch with an array, even for one element', async () => {
    const { peer, sent } = harness();
    peer.receive([{ jsonrpc: '2.0', id: 1, method: 'only' }]);
    expect(await sentAfter(sent, 1)).toEqual([[{ jsonrpc: '2.0', id: 1, result: { method: 'only' } }]]);
  });

  it('answers a mixed batch with one array: requests and invalid entries, in order, no notifications', async () => {
    const { peer, sent, notifications } = harness({
      onRequest: async (method) => {
        if (method === 'slow') await new Promise((r) => setTimeout(r, 10));
        return method;
      },
    });
    peer.receive([
      { jsonrpc: '2.0', id: 1, method: 'slow' },
      { jsonrpc: '2.0', method: 'note', params: [1] },
      { jsonrpc: '1.0', id: 2, method: 'bad' },
      { jsonrpc: '2.0', id: 3, method: 'fast' },
      { jsonrpc: '2.0', id: 4, result: 'stray response' },
    ]);
    const [frame] = await sentAfter(sent, 1);
    expect(sent).toHaveLength(1);
    expect(Array.isArray(frame)).toBe(true);
    const responses = frame as Record<string, unknown>[];
    expect(responses.map((r) => r.id)).toEqual([1, 2, 3]);
    expect(responses[0]).toEqual({ jsonrpc: '2.0', id: 1, result: 'slow' });
    expect(responses[1]).toMatchObject({
      id: 2,
      error: { code: -32600, data: { reason: 'invalid_request' } },
    });
    expect(responses[2]).toEqual({ jsonrpc: '2.0', id: 3, result: 'fast' });
    expect(notifications).toEqual([{ method: 'note', params: [1] }]);
  });

  it('sends nothing for a batch of notifications only', async () => {
    const { peer, sent, notifications } = harness();
    peer.receive([
      { jsonrpc: '2.0', method: 'a' },
      { jsonrpc: '2.0', method: 'b' },
    ]);
    await flush();
    expect(notifications.map((n) => n.method)).toEqual(['a', 'b']);
    expect(sent).toEqual([]);
  });

  it('answers an empty batch with a single -32600 error (not an array)', async () => {
    const { peer, sent } = harness();
    peer.receive([]);
    const [frame] = await sentAfter(sent, 1);
    expect(frame).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: {
        code: -32600,
        message: 'Invalid Request',
        data: { reason: 'invalid_request', detail: 'empty batch' },
      },
    });
  });

  it('refuses a batch over maxBatch (default 100) without running any of it', async () => {
    let calls = 0;
    const { peer, sent } = harness({
      onRequest: () => {
        calls++;
        return null;
      },
    });
    const batch = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'm' }));
    peer.receive(batch(101));
    const [frame] = await sentAfter(sent, 1);
    expect(frame).toMatchObject({ id: null, error: { code: -32600 } });
    expect(calls).toBe(0);
    peer.receive(batch(100));
    const frames = await sentAfter(sent, 2);
    expect(frames[1]).toHaveLength(100);
    expect(calls).toBe(100);

    const small = harness({ maxBatch: 2 });
    small.peer.receive(batch(3));
    expect((await sentAfter(small.sent, 1))[0]).toMatchObject({ error: { code: -32600 } });
  });

  it('answers an invalid single message with -32600, keeping its id', async () => {
    const { peer, sent } = harness();
    peer.receive({ jsonrpc: '2.0', id: 8, method: '' });
    peer.receive('not an object');
    const frames = await sentAfter(sent, 2);
    expect(frames[0]).toMatchObject({ id: 8, error: { code: -32600, data: { reason: 'invalid_request' } } });
    expect(frames[1]).toMatchObject({ id: null, error: { code: -32600 } });
  });

  it('parseError() answers with -32700 and a null id', () => {
    const { peer, sent } = harness();
    peer.parseError('frame is not valid JSON');
    expect(sent).toEqual([
      {
        jsonrpc: '2.0',
        id: null,
        error: {
          code: -32700,
          message: 'Parse error',
          data: { reason: 'parse_error', detail: 'frame is not valid JSON' },
        },
      },
    ]);
  });

  it('never answers a notification, even when its handler throws', async () => {
    const boom = new Error('listener bug');
    const { peer, sent, internal } = harness({
      onNotification: () => {
        throw boom;
      },
    });
    peer.receive({ jsonrpc: '2.0', method: 'topics/message', params: {} });
    await flush();
    expect(sent).toEqual([]);
    expect(internal).toEqual([{ error: boom, method: 'topics/message' }]);
  });

  it('answers a handler that throws a non-RpcError with -32603 and reports it to onInternalError', async () => {
    const bug = new TypeError('secret internals');
    const { peer, sent, internal } = harness({
      onRequest: async () => {
        throw bug;
      },
    });
    peer.receive({ jsonrpc: '2.0', id: 1, method: 'collaboration/share' });
    const [frame] = await sentAfter(sent, 1);
    expect(frame).toEqual({
      jsonrpc: '2.0',
      id: 1,
      error: { code: -32603, message: 'Internal error', data: { reason: 'internal_error' } },
    });
    expect(JSON.stringify(frame)).not.toContain('secret');
    expect(internal).toEqual([{ error: bug, method: 'collaboration/share' }]);
  });

  it('a synchronous throw is handled the same way', async () => {
    const { peer, sent, internal } = harness({
      onRequest: () => {
        throw 'a string';
      },
    });
    peer.receive({ jsonrpc: '2.0', id: 2, method: 'm' });
    expect((await sentAfter(sent, 1))[0]).toMatchObject({ id: 2, error: { code: -32603 } });
    expect(internal).toEqual([{ error: 'a string', method: 'm' }]);
  });

  it('answers with the RpcError a handler throws, without calling onInternalError', async () => {
    const { peer, sent, internal } = harness({
      onRequest: () => {
        throw RpcError.of('NotAMember', 'join first', { collaborationId: 'c' });
      },
    });
    peer.receive({ jsonrpc: '2.0', id: 3, method: 'm' });
    expect((await sentAfter(sent, 1))[0]).toEqual({
      jsonrpc: '2.0',
      id: 3,
      error: { code: -32061, message: 'join first', data: { collaborationId: 'c', reason: 'not_a_member' } },
    });
    expect(internal).toEqual([]);
  });

  it('runs afterResponse callbacks right after the response was handed to send', async () => {
    const log: string[] = [];
    const sent: Frame[] = [];
    const peer = new RpcPeer({
      send: (m) => {
        sent.push(m);
        log.push(`send ${JSON.stringify(m)}`);
      },
      onRequest: (method, _p, ctx) => {
        ctx.afterResponse(() => log.push(`after ${method} (${sent.length} sent)`));
        log.push(`handle ${method}`);
        return 'r';
      },
    });
    peer.receive({ jsonrpc: '2.0', id: 1, method: 'join' });
    await sentAfter(sent, 1);
    expect(log).toEqual(['handle join', 'send {"jsonrpc":"2.0","id":1,"result":"r"}', 'after join (1 sent)']);

    log.length = 0;
    peer.receive([
      { jsonrpc: '2.0', id: 2, method: 'a' },
      { jsonrpc: '2.0', id: 3, method: 'b' },
    ]);
    await sentAfter(sent, 2);
    expect(log[2]).toMatch(/^send \[/);
    expect(log.slice(3)).toEqual(['after a (2 sent)', 'after b (2 sent)']);
  });

  it('does not run afterResponse when the handler fails', async () => {
    let ran = false;
    const { peer, sent } = harness({
      onRequest: (_m, _p, ctx) => {
        ctx.afterResponse(() => {
          ran = true;
        });
        throw RpcError.of('Forbidden', 'no');
      },
    });
    peer.receive({ jsonrpc: '2.0', id: 1, method: 'm' });
    await sentAfter(sent, 1);
    await flush();
    expect(ran).toBe(false);
  });

  it('close() aborts running handlers and drops their late responses', async () => {
    let signal: AbortSignal | undefined;
    let release!: () => void;
    let after = false;
    const { peer, sent } = harness({
      onRequest: async (_m, _p, ctx) => {
        signal = ctx.signal;
        ctx.afterResponse(() => {
          after = true;
        });
        await new Promise<void>((r) => {
          release = r;
        });
        return 'late';
      },
    });
    peer.receive({ jsonrpc: '2.0', id: 1, method: 'm' });
    await vi.waitFor(() => expect(signal).toBeDefined(), { interval: 1 });
    const reason = new Error('gone');
    peer.close(reason);
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBe(reason);
    release();
    await flush();
    expect(sent).toEqual([]);
    expect(after).toBe(false);
  });

  it('a handler that reads ctx.signal only after close() gets it aborted with the reason', async () => {
    let ctxSeen: HandlerContext | undefined;
    let release!: () => void;
    const { peer, sent } = harness({
      onRequest: async (_m, _p, ctx) => {
        ctxSeen = ctx;
        await new Promise<void>((r) => {
          release = r;
        });
        return 'late';
      },
    });
    peer.receive({ jsonrpc: '2.0', id: 1, method: 'm' });
    await vi.waitFor(() => expect(ctxSeen).toBeDefined(), { interval: 1 });
    const reason = new Error('gone');
    peer.close(reason);
    expect(ctxSeen?.signal.aborted).toBe(true);
    expect(ctxSeen?.signal.reason).toBe(reason);
    expect(ctxSeen?.signal).toBe(ctxSeen?.signal);
    release();
    await flush();
    expect(sent).toEqual([]);
  });
});

describe('RpcPeer both ways', () => {
  it('a handler can call back into the peer that called it', async () => {
    let right: RpcPeer | undefined;
    const peers = pair(
      { onRequest: (method, params) => ({ answeredBy: 'left', method, params }) },
      {
        onRequest: async (_method, params) => ({
          inner: await right?.request('conversation/message', { q: params }),
        }),
      },
    );
    right = peers.right;
    const result = await peers.left.request('conversation/start', 'hi');
    expect(result).toEqual({
      inner: { answeredBy: 'left', method: 'conversation/message', params: { q: 'hi' } },
    });
    expect(peers.left.pendingCount).toBe(0);
    expect(peers.right.pendingCount).toBe(0);
  });
});
