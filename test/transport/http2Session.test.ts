import { EventEmitter } from 'node:events';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  HttpSessionConnection,
  type HttpSessionOptions,
  SseStream,
} from '../../src/transport/http2Session.js';
import type { HttpResponse } from '../../src/transport/httpRouter.js';

/** A response that records what is written; while `stalled`, everything written stays unflushed. */
class FakeResponse extends EventEmitter {
  text = '';
  backlog = 0;
  stalled = false;
  writableFinished = false;
  get writableLength(): number {
    return this.backlog;
  }
  write(chunk: string): boolean {
    this.text += chunk;
    if (this.stalled) this.backlog += Buffer.byteLength(chunk);
    return true;
  }
  end(): void {
    this.writableFinished = true;
  }
  destroy(): void {}
}

function stream(): { res: FakeResponse; sse: SseStream; ids(): number[]; closeEvents(): string[] } {
  const res = new FakeResponse();
  const sse = new SseStream(res as unknown as HttpResponse);
  return {
    res,
    sse,
    ids: () => [...res.text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1])),
    closeEvents: () => [...res.text.matchAll(/^event: close\ndata: (.*)$/gm)].map((m) => m[1]!),
  };
}

function connection(overrides: Partial<HttpSessionOptions> = {}) {
  const closed: [number, string][] = [];
  let slow = 0;
  const conn = new HttpSessionConnection({
    maxQueueBytes: 1 << 20,
    replayEvents: 3,
    replayBytes: 1 << 20,
    detachTimeoutMs: 60_000,
    closeTimeoutMs: 1000,
    onClosed: (_c, code, reason) => closed.push([code, reason]),
    onSlowConsumer: () => {
      slow++;
    },
    logger: pino({ level: 'silent' }),
    ...overrides,
  });
  const note = (n: number) => conn.send(JSON.stringify({ jsonrpc: '2.0', method: 'x', params: { n } }));
  return { conn, closed, note, slow: () => slow };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('HttpSessionConnection', () => {
  it('numbers events, queues them while detached and gives the first stream all of them', () => {
    const { conn, note } = connection();
    for (let n = 1; n <= 10; n++) note(n);
    const s = stream();
    expect(conn.checkResume(undefined)).toBe('ok');
    conn.attach(s.sse, undefined);
    note(11);
    expect(s.ids()).toEqual(Array.from({ length: 11 }, (_, k) => k + 1));
    expect(s.res.text).toContain('id: 11\ndata: {"jsonrpc":"2.0","method":"x","params":{"n":11}}\n\n');
  });

  it('keeps the latest sent events for resuming, and says when a position is gone or ahead', () => {
    const { conn, note } = connection({ replayEvents: 3 });
    const first = stream();
    conn.attach(first.sse, undefined);
    for (let n = 1; n <= 5; n++) note(n);
    conn.detach(first.sse);
    note(6);
    expect(conn.checkResume(1)).toBe('gone');
    expect(conn.checkResume(2)).toBe('ok');
    expect(conn.checkResume(6)).toBe('ok');
    expect(conn.checkResume(7)).toBe('ahead');
    const again = stream();
    conn.attach(again.sse, 3);
    expect(again.ids()).toEqual([4, 5, 6]);
    const gone = stream();
    conn.attach(gone.sse, 0);
    expect(gone.closeEvents()).toEqual([
      JSON.stringify({ code: 4008, reason: 'event stream position no longer available' }),
    ]);
    expect(conn.closed).toBe(true);
  });

  it('bounds kept events by bytes too', () => {
    const { conn, note } = connection({ replayEvents: 100, replayBytes: 200 });
    const s = stream();
    conn.attach(s.sse, undefined);
    for (let n = 1; n <= 10; n++) note(n); // about 50 bytes each
    expect(conn.checkResume(5)).toBe('gone');
    expect(conn.checkResume(7)).toBe('ok');
  });

  it('hands responses back to their call under the caller id, even when two calls share an id', async () => {
    const { conn } = connection();
    const s = stream();
    conn.attach(s.sse, undefined);
    // A node that answers every request with its params, in reverse order of arrival.
    const seen: { id: number; params: unknown }[] = [];
    conn.onFrame((frame) => {
      seen.push(JSON.parse(frame as string));
      if (seen.length === 2)
        for (const m of seen.reverse())
          conn.send(JSON.stringify({ jsonrpc: '2.0', id: m.id, result: m.params }));
    });
    const a = conn.call({ jsonrpc: '2.0', id: 1, method: 'echo', params: 'a' });
    const b = conn.call({ jsonrpc: '2.0', id: 1, method: 'echo', params: 'b' });
    expect(await a).toEqual({ jsonrpc: '2.0', id: 1, result: 'a' });
    expect(await b).toEqual({ jsonrpc: '2.0', id: 1, result: 'b' });
    // A node request goes to the stream.
    conn.send(JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'conversation/message', params: {} }));
    expect(s.ids()).toEqual([1]);
  });

  it('closes as a slow consumer when the unsent backlog or the stream backlog overflows', () => {
    const detached = connection({ maxQueueBytes: 300 });
    for (let n = 1; n <= 10 && !detached.conn.closed; n++) detached.note(n);
    expect(detached.closed).toEqual([[4008, 'slow consumer']]);
    expect(detached.slow()).toBe(1);

    const attached = connection({ maxQueueBytes: 300 });
    const s = stream();
    attached.conn.attach(s.sse, undefined);
    s.res.stalled = true;
    // More than maxQueueBytes in one turn: not a backlog yet, it has not had its chance to flush.
    for (let n = 1; n <= 8; n++) attached.note(n);
    expect(s.res.backlog).toBeGreaterThan(300);
    expect(attached.conn.closed).toBe(false);
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        // Still there a turn later: the agent is not reading.
        attached.note(9);
        expect(attached.closed).toEqual([[4008, 'slow consumer']]);
        expect(s.closeEvents()).toEqual([JSON.stringify({ code: 4008, reason: 'slow consumer' })]);
        resolve();
      }),
    );
  });

  it('closes once: pending calls fail, the close listener hears it even when it comes late', async () => {
    const { conn, closed } = connection();
    const call = conn.call({ jsonrpc: '2.0', id: 1, method: 'slow' });
    conn.close(4500, 'node draining');
    conn.close(1000, 'again');
    await expect(call).rejects.toMatchObject({ code: 'connection_lost' });
    expect(closed).toEqual([[4500, 'node draining']]);
    const heard: number[] = [];
    conn.onClose((code) => heard.push(code));
    expect(heard).toEqual([4500]);
    expect(() => conn.send('{}')).toThrow(/closed/);
  });

  it('ends a session whose stream stays detached past the timeout', () => {
    vi.useFakeTimers();
    const { conn, closed } = connection({ detachTimeoutMs: 1000 });
    const s = stream();
    vi.advanceTimersByTime(900);
    conn.attach(s.sse, undefined);
    vi.advanceTimersByTime(5000);
    expect(closed).toEqual([]);
    conn.detach(s.sse);
    vi.advanceTimersByTime(999);
    expect(closed).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(closed).toEqual([[1006, 'event stream detached for too long']]);
  });
});
