import { msgpackCodec } from '@a2a-mesh/protocol';
import { describe, expect, it } from 'vitest';
import { eventually, startNode } from '../helpers/node.js';
import { http1Request, messagesOf, type RawResponse, type RawStream, rawH2 } from './h2Raw.js';

type ErrorBody = { id: unknown; error: { code: number; data: Record<string, unknown> & { reason: string } } };

const ping = (id: unknown = 1) => ({ jsonrpc: '2.0', id, method: 'mesh/ping' });
const json = { 'content-type': 'application/json' };

function errorOf(r: RawResponse): ErrorBody['error'] {
  return (r.json as ErrorBody).error;
}

/** Collaboration events (offsets) a raw stream has read so far. */
function offsetsOf(stream: RawStream): number[] {
  return messagesOf(stream)
    .filter((m) => m.method === 'collaboration/event')
    .map((m) => (m.params as { offset: number }).offset);
}

describe('HTTP session transport: bad input', () => {
  for (const protocol of ['h2c', 'http/1.1'] as const) {
    it(`answers each bad request with its status and JSON-RPC error (${protocol})`, async () => {
      const node = await startNode({ maxMessageBytes: 8192 });
      const h2 = rawH2(node.httpUrl);
      const send =
        protocol === 'h2c'
          ? h2.request
          : (method: string, path: string, headers?: Record<string, string>, body?: string | Buffer) =>
              http1Request(node.httpUrl, method, path, headers, body);
      const hello = await send(
        'POST',
        '/mesh/rpc',
        json,
        JSON.stringify({ jsonrpc: '2.0', id: 'h', method: 'mesh/hello', params: { agentId: 'good' } }),
      );
      expect(hello.status).toBe(200);
      const sid = hello.headers['mesh-session'] as string;
      expect((hello.json as { result: { sessionId: string } }).result.sessionId).toBe(sid);
      const withSession = { ...json, 'mesh-session': sid };

      const cases: {
        name: string;
        method?: string;
        path?: string;
        headers: Record<string, string>;
        body?: string;
        status: number;
        code: number;
        reason: string;
        id?: unknown;
      }[] = [
        {
          name: 'no session, not a hello',
          headers: json,
          body: JSON.stringify(ping(5)),
          status: 400,
          code: -32073,
          reason: 'hello_required',
          id: 5,
        },
        {
          name: 'unknown session',
          headers: { ...json, 'mesh-session': 'no-such-session' },
          body: JSON.stringify(ping()),
          status: 404,
          code: -32073,
          reason: 'hello_required',
        },
        {
          name: 'wrong content type',
          headers: { 'content-type': 'text/plain', 'mesh-session': sid },
          body: JSON.stringify(ping()),
          status: 415,
          code: -32600,
          reason: 'invalid_request',
        },
        {
          name: 'oversize body',
          headers: withSession,
          body: JSON.stringify({ ...ping(), params: { pad: 'x'.repeat(9000) } }),
          status: 413,
          code: -32066,
          reason: 'payload_too_large',
        },
        {
          name: 'malformed JSON',
          headers: withSession,
          body: '{"jsonrpc":"2.0",',
          status: 400,
          code: -32700,
          reason: 'parse_error',
        },
        {
          name: 'not JSON-RPC',
          headers: withSession,
          body: '{"jsonrpc":"1.0","id":3,"method":"mesh/ping"}',
          status: 400,
          code: -32600,
          reason: 'invalid_request',
          id: 3,
        },
        {
          name: 'empty batch',
          headers: withSession,
          body: '[]',
          status: 400,
          code: -32600,
          reason: 'invalid_request',
        },
        {
          name: 'batch of 101',
          headers: withSession,
          body: JSON.stringify(Array.from({ length: 101 }, (_, i) => ping(i))),
          status: 400,
          code: -32600,
          reason: 'invalid_request',
        },
        {
          name: 'stream without session',
          method: 'GET',
          path: '/mesh/stream',
          headers: {},
          status: 400,
          code: -32073,
          reason: 'hello_required',
        },
        {
          name: 'stream of an unknown session',
          method: 'GET',
          path: '/mesh/stream',
          headers: { 'mesh-session': 'nope' },
          status: 404,
          code: -32073,
          reason: 'hello_required',
        },
        {
          name: 'stream with a bad Last-Event-ID',
          method: 'GET',
          path: '/mesh/stream',
          headers: { 'mesh-session': sid, 'last-event-id': 'abc' },
          status: 400,
          code: -32600,
          reason: 'invalid_request',
        },
        {
          name: 'stream resuming after an event never sent',
          method: 'GET',
          path: '/mesh/stream',
          headers: { 'mesh-session': sid, 'last-event-id': '999' },
          status: 400,
          code: -32600,
          reason: 'invalid_request',
        },
        {
          name: 'delete without session',
          method: 'DELETE',
          headers: {},
          status: 400,
          code: -32073,
          reason: 'hello_required',
        },
      ];
      for (const c of cases) {
        const r = await send(c.method ?? 'POST', c.path ?? '/mesh/rpc', c.headers, c.body);
        expect({ name: c.name, status: r.status }).toEqual({ name: c.name, status: c.status });
        expect(r.headers['content-type']).toBe('application/json');
        const body = r.json as ErrorBody;
        expect({ name: c.name, code: body.error.code, reason: body.error.data.reason }).toEqual({
          name: c.name,
          code: c.code,
          reason: c.reason,
        });
        expect(body.id).toEqual(c.id ?? null);
      }
      // The session survived all of it.
      const ok = await send('POST', '/mesh/rpc', withSession, JSON.stringify(ping(9)));
      expect(ok.status).toBe(200);
      expect(ok.json).toMatchObject({ id: 9, result: { at: expect.any(Number) } });
    });
  }
});

describe('HTTP session transport', () => {
  it('answers batches in order, takes notifications with 202, and speaks msgpack', async () => {
    const node = await startNode();
    const h = rawH2(node.httpUrl);
    const sid = await h.hello('batcher');
    const batch = await h.rpc(
      [
        ping(1),
        { jsonrpc: '2.0', method: 'mesh/ping' },
        5,
        ping('x'),
        { jsonrpc: '2.0', id: 2, method: 'nope' },
      ],
      sid,
    );
    expect(batch.status).toBe(200);
    const answers = batch.json as { id: unknown; result?: unknown; error?: { code: number } }[];
    expect(answers.map((a) => [a.id, a.error?.code ?? 'ok'])).toEqual([
      [1, 'ok'],
      [null, -32600],
      ['x', 'ok'],
      [2, -32601],
    ]);
    const note = await h.rpc({ jsonrpc: '2.0', method: 'mesh/ping' }, sid);
    expect(note.status).toBe(202);
    expect(note.body).toBe('');
    const packed = await h.request(
      'POST',
      '/mesh/rpc',
      { 'content-type': 'application/msgpack', 'mesh-session': sid },
      Buffer.from(msgpackCodec.encode(ping(3)) as Uint8Array),
    );
    expect(packed.status).toBe(200);
    expect(packed.headers['content-type']).toBe('application/msgpack');
    expect(msgpackCodec.decode(new Uint8Array(packed.bytes))).toMatchObject({ id: 3, result: {} });
    const second = await h.rpc({ jsonrpc: '2.0', id: 4, method: 'mesh/hello', params: {} }, sid);
    expect(errorOf(second).code).toBe(-32600);
  });

  it('answers 200 calls in flight at once on one HTTP/2 connection, even with one id for all', async () => {
    const node = await startNode();
    const h = rawH2(node.httpUrl);
    const sid = await h.hello('writer');
    const stream = h.stream(sid);
    const start = await h.rpc(
      { jsonrpc: '2.0', id: 1, method: 'collaboration/start', params: { topic: 'load', state: {} } },
      sid,
    );
    const { collaborationId } = (start.json as { result: { collaborationId: string } }).result;
    const join = await h.rpc(
      { jsonrpc: '2.0', id: 2, method: 'collaboration/join', params: { collaborationId } },
      sid,
    );
    const joinedAt = (join.json as { result: { offset: number } }).result.offset;
    const shares = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        h.rpc(
          {
            jsonrpc: '2.0',
            id: 7,
            method: 'collaboration/share',
            params: { collaborationId, content: { i }, idempotencyKey: `k${i}` },
          },
          sid,
        ),
      ),
    );
    expect(shares.every((r) => r.status === 200)).toBe(true);
    const results = shares.map(
      (r) => r.json as { id: number; result: { offset: number; duplicate: boolean } },
    );
    expect(results.every((r) => r.id === 7 && r.result.duplicate === false)).toBe(true);
    const offsets = results.map((r) => r.result.offset).sort((a, b) => a - b);
    expect(offsets).toEqual(Array.from({ length: 200 }, (_, k) => joinedAt + 1 + k));
    // Each answer went to its own POST: the event at an answer's offset carries that POST's content.
    await eventually(() => expect(offsetsOf(stream).at(-1)).toBe(joinedAt + 200));
    const byOffset = new Map(
      messagesOf(stream)
        .filter((m) => m.method === 'collaboration/event')
        .map((m) => {
          const p = m.params as { offset: number; data: { content: unknown } };
          return [p.offset, p.data.content];
        }),
    );
    results.forEach((r, i) => {
      expect(byOffset.get(r.result.offset)).toEqual({ i });
    });
  });

  it('multiplexes 200 calls that wait on node-to-agent requests answered on the same connection', async () => {
    const node = await startNode();
    const h = rawH2(node.httpUrl);
    const asker = await h.hello('asker');
    const helper = await h.hello('helper');
    h.stream(asker);
    const inbox = h.stream(helper);
    const n = 200;
    const calls = Array.from({ length: n }, (_, i) =>
      h.rpc(
        {
          jsonrpc: '2.0',
          id: i,
          method: 'conversation/start',
          params: { to: { agentId: 'helper' }, message: { parts: [{ text: `q${i}` }] } },
        },
        asker,
      ),
    );
    // The helper answers only once every request is in: all 200 calls are in flight together.
    await eventually(
      () => expect(messagesOf(inbox).filter((m) => m.method === 'conversation/message')).toHaveLength(n),
      10_000,
    );
    const requests = messagesOf(inbox).filter((m) => m.method === 'conversation/message');
    const acks = await Promise.all(
      requests.map((m) => {
        const q = (m.params as { message: { parts: { text: string }[] } }).message.parts[0]!.text;
        return h.rpc(
          { jsonrpc: '2.0', id: m.id, result: { message: { parts: [{ text: `a${q}` }] } } },
          helper,
        );
      }),
    );
    expect(acks.every((a) => a.status === 202)).toBe(true);
    const answers = await Promise.all(calls);
    answers.forEach((r, i) => {
      expect(r.json).toMatchObject({ id: i, result: { reply: { parts: [{ text: `aq${i}` }] } } });
    });
  });

  it('resumes a stream after Last-Event-ID with exactly the events it missed', async () => {
    const node = await startNode();
    const h = rawH2(node.httpUrl);
    const reader = await h.hello('reader');
    const writer = await h.hello('writer');
    h.stream(writer);
    const first = h.stream(reader);
    const start = await h.rpc(
      { jsonrpc: '2.0', id: 1, method: 'collaboration/start', params: { topic: 'resume' } },
      writer,
    );
    const { collaborationId } = (start.json as { result: { collaborationId: string } }).result;
    const join = (who: string) =>
      h.rpc({ jsonrpc: '2.0', id: 2, method: 'collaboration/join', params: { collaborationId } }, who);
    await join(writer);
    await join(reader);
    let i = 0;
    const share = () =>
      h.rpc(
        { jsonrpc: '2.0', id: 3, method: 'collaboration/share', params: { collaborationId, content: i++ } },
        writer,
      );
    for (let k = 0; k < 10; k++) await share();
    await eventually(() => expect(messagesOf(first)).toHaveLength(10));
    first.close();
    await first.ended;
    // Written while no stream is attached: queued for the next one.
    for (let k = 0; k < 10; k++) await share();
    const ids = first.events.map((e) => Number(e.id));
    expect(ids).toEqual(Array.from({ length: 10 }, (_, k) => ids[0]! + k));
    const last = String(ids.at(-1));
    const second = h.stream(reader, last);
    expect(await second.status).toBe(200);
    for (let k = 0; k < 5; k++) await share();
    await eventually(() => expect(messagesOf(second)).toHaveLength(15));
    expect(second.events.map((e) => Number(e.id))).toEqual(
      Array.from({ length: 15 }, (_, k) => Number(last) + 1 + k),
    );
    expect([...offsetsOf(first), ...offsetsOf(second)]).toEqual(
      Array.from({ length: 25 }, (_, k) => offsetsOf(first)[0]! + k),
    );
    // Resuming from further back replays from there, still in order and once each.
    const third = h.stream(reader, String(ids[3]));
    await eventually(() => expect(messagesOf(third)).toHaveLength(21));
    expect(offsetsOf(third)).toEqual(offsetsOf(first).slice(4).concat(offsetsOf(second)));
    // One stream per session: the newest replaced the one before it.
    await second.ended;
  });

  it('ends the session with 4008 when a stream resumes from an event no longer kept', async () => {
    const node = await startNode({ maxQueueBytes: 4096 });
    const h = rawH2(node.httpUrl);
    const sid = await h.hello('late');
    const first = h.stream(sid);
    const start = await h.rpc(
      { jsonrpc: '2.0', id: 1, method: 'collaboration/start', params: { topic: 'trim' } },
      sid,
    );
    const { collaborationId } = (start.json as { result: { collaborationId: string } }).result;
    await h.rpc({ jsonrpc: '2.0', id: 2, method: 'collaboration/join', params: { collaborationId } }, sid);
    for (let k = 0; k < 20; k++) {
      await h.rpc(
        {
          jsonrpc: '2.0',
          id: 3,
          method: 'collaboration/share',
          params: { collaborationId, content: 'x'.repeat(400) },
        },
        sid,
      );
    }
    await eventually(() => expect(messagesOf(first).length).toBeGreaterThanOrEqual(20));
    first.close();
    await first.ended;
    const second = h.stream(sid, first.events[0]!.id);
    await second.ended;
    expect(second.events).toEqual([
      { id: undefined, event: 'close', data: expect.stringContaining('"code":4008') },
    ]);
    const after = await h.rpc(ping(), sid);
    expect(after.status).toBe(404);
    expect(errorOf(after).data).toMatchObject({ closeCode: 4008 });
  });

  it('closes a session whose backlog overflows while no stream reads it (4008)', async () => {
    const node = await startNode({ maxQueueBytes: 4096 });
    const h = rawH2(node.httpUrl);
    const idle = await h.hello('idle');
    const writer = await h.hello('writer');
    h.stream(writer);
    const start = await h.rpc(
      { jsonrpc: '2.0', id: 1, method: 'collaboration/start', params: { topic: 'backlog' } },
      writer,
    );
    const { collaborationId } = (start.json as { result: { collaborationId: string } }).result;
    const join = { jsonrpc: '2.0', id: 2, method: 'collaboration/join', params: { collaborationId } };
    await h.rpc(join, writer);
    await h.rpc(join, idle);
    for (let k = 0; k < 12; k++) {
      const r = await h.rpc(
        {
          jsonrpc: '2.0',
          id: 3,
          method: 'collaboration/share',
          params: { collaborationId, content: 'y'.repeat(500) },
        },
        writer,
      );
      expect(r.status).toBe(200);
    }
    const after = await h.rpc(ping(), idle);
    expect(after.status).toBe(404);
    expect(errorOf(after).data).toMatchObject({ closeCode: 4008, closeReason: 'slow consumer' });
    expect(node.stats().slowConsumerCloses).toBe(1);
    // The writer kept going.
    expect((await h.rpc(ping(), writer)).status).toBe(200);
  });

  it('closes a session whose attached stream stops reading (4008), and no one else', async () => {
    const node = await startNode({ maxQueueBytes: 16 * 1024 });
    const h = rawH2(node.httpUrl);
    const stalled = await h.hello('stalled');
    const writer = await h.hello('writer');
    h.stream(writer);
    const stuck = h.stream(stalled);
    expect(await stuck.status).toBe(200);
    stuck.pause();
    const start = await h.rpc(
      { jsonrpc: '2.0', id: 1, method: 'collaboration/start', params: { topic: 'stall' } },
      writer,
    );
    const { collaborationId } = (start.json as { result: { collaborationId: string } }).result;
    const join = { jsonrpc: '2.0', id: 2, method: 'collaboration/join', params: { collaborationId } };
    await h.rpc(join, writer);
    await h.rpc(join, stalled);
    // Beyond the HTTP/2 flow-control window and maxQueueBytes, one event per turn.
    for (let k = 0; k < 200 && node.stats().slowConsumerCloses === 0; k++) {
      await h.rpc(
        {
          jsonrpc: '2.0',
          id: 3,
          method: 'collaboration/share',
          params: { collaborationId, content: 'w'.repeat(1000) },
        },
        writer,
      );
    }
    expect(node.stats().slowConsumerCloses).toBe(1);
    const after = await h.rpc(ping(), stalled);
    expect(after.status).toBe(404);
    expect(errorOf(after).data).toMatchObject({ closeCode: 4008 });
    expect((await h.rpc(ping(), writer)).status).toBe(200);
  });

  it('pings attached streams and closes a session whose stream stays away, ending its presence', async () => {
    const node = await startNode({ heartbeatMs: 100 });
    const h = rawH2(node.httpUrl);
    const watcher = await h.hello('watcher');
    const stream = h.stream(watcher);
    await h.hello('ghost');
    await eventually(() =>
      expect(stream.comments.filter((c) => c === 'ping').length).toBeGreaterThanOrEqual(2),
    );
    await eventually(async () => {
      const r = await h.rpc(
        { jsonrpc: '2.0', id: 1, method: 'agents/get', params: { agentId: 'ghost' } },
        watcher,
      );
      expect(r.json).toMatchObject({ result: { online: false } });
    });
    expect(node.stats().agents).toBe(1);
  });

  it('ends the session on DELETE, and a draining node closes streams with 4500', async () => {
    const node = await startNode();
    const h = rawH2(node.httpUrl);
    const leaving = await h.hello('leaving');
    const staying = await h.hello('staying');
    const s1 = h.stream(leaving);
    const s2 = h.stream(staying);
    await s1.status;
    await s2.status;
    const del = await h.request('DELETE', '/mesh/rpc', { 'mesh-session': leaving });
    expect(del.status).toBe(204);
    await s1.ended;
    expect(s1.events.at(-1)).toEqual({
      id: undefined,
      event: 'close',
      data: JSON.stringify({ code: 1000, reason: 'closed by the agent' }),
    });
    const gone = await h.rpc(ping(), leaving);
    expect(gone.status).toBe(404);
    expect(errorOf(gone).data).toMatchObject({ closeCode: 1000, closeReason: 'closed by the agent' });
    await node.drain();
    await s2.ended;
    expect(JSON.parse(s2.events.at(-1)!.data)).toEqual({ code: 4500, reason: 'node draining' });
  });

  it('serves sessions over HTTP/1.1 too: hello, SSE stream, calls', async () => {
    const node = await startNode();
    const hello = await http1Request(
      node.httpUrl,
      'POST',
      '/mesh/rpc',
      json,
      JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'mesh/hello', params: { agentId: 'old-timer' } }),
    );
    const sid = hello.headers['mesh-session'] as string;
    const { request } = await import('node:http');
    const events: string[] = [];
    const req = request(new URL('/mesh/stream', node.httpUrl), { headers: { 'mesh-session': sid } });
    const response = new Promise<{ status: number; type: string | undefined }>((resolve) =>
      req.on('response', (res) => {
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => events.push(chunk));
        resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'] });
      }),
    );
    req.on('error', () => {});
    req.end();
    expect(await response).toEqual({ status: 200, type: 'text/event-stream; charset=utf-8' });
    const sub = await http1Request(
      node.httpUrl,
      'POST',
      '/mesh/rpc',
      { ...json, 'mesh-session': sid },
      JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'topics/subscribe', params: { pattern: 'news.>' } }),
    );
    expect(sub.json).toMatchObject({ result: { subscriptionId: expect.any(String) } });
    await http1Request(
      node.httpUrl,
      'POST',
      '/mesh/rpc',
      { ...json, 'mesh-session': sid },
      JSON.stringify({
        jsonrpc: '2.0',
        id: 3,
        method: 'topics/publish',
        params: { topic: 'news.a', data: 1 },
      }),
    );
    await eventually(() => expect(events.join('')).toContain('"method":"topics/message"'));
    expect(events.join('')).toMatch(/id: 1\ndata: \{"jsonrpc":"2.0","method":"topics\/message"/);
    req.destroy();
  });
});
