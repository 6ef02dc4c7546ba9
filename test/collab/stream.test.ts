import { jsonCodec, msgpackCodec, type SharedFrame } from '@a2a-mesh/protocol';
import { describe, expect, it, vi } from 'vitest';
import { EventRing, FannedEvent } from '../../src/collab/events.js';
import type { LogRecord } from '../../src/collab/fold.js';
import {
  MemberStream,
  type RangeReader,
  type StreamCounters,
  type StreamSink,
} from '../../src/collab/stream.js';

const record = (offset: number): LogRecord => ({
  type: 'shared',
  from: 'a',
  at: 1000 + offset,
  data: { content: `event ${offset}`, kind: 'message' },
});
const ev = (offset: number) => new FannedEvent('c1', 'ep1', offset, record(offset));

interface Harness {
  stream: MemberStream;
  sent: number[];
  counters: StreamCounters;
  errors: unknown[];
  reads: [number, number][];
  sink: StreamSink & { closed: boolean };
  setHead(offset: number): void;
}

/**
 * A stream over a log of events 1..head (the replica's fold), read through `reader` (by default
 * straight from that log), writing decoded offsets into `sent`.
 */
function harness(next: number, head: number, reader?: RangeReader): Harness {
  const sent: number[] = [];
  const errors: unknown[] = [];
  const reads: [number, number][] = [];
  const counters: StreamCounters = { duplicatesDropped: 0, gapsRecovered: 0, eventsSent: 0 };
  let h = head;
  const sink = {
    codec: jsonCodec,
    closed: false,
    sendShared(frame: SharedFrame) {
      const msg = JSON.parse(frame.data as string);
      expect(msg.method).toBe('collaboration/event');
      sent.push(msg.params.offset);
    },
  };
  const fromLog: RangeReader = async (from, to) => {
    const out: FannedEvent[] = [];
    for (let o = from; o <= Math.min(to, h); o++) out.push(ev(o));
    return out;
  };
  const stream = new MemberStream(
    sink,
    'agent',
    next,
    async (from, to) => {
      reads.push([from, to]);
      return (reader ?? fromLog)(from, to);
    },
    () => h,
    counters,
    (error) => errors.push(error),
  );
  return {
    stream,
    sent,
    counters,
    errors,
    reads,
    sink,
    setHead: (o) => {
      h = o;
    },
  };
}

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('MemberStream', () => {
  it('delivers live events in order and advances next', () => {
    const t = harness(1, 0);
    for (const o of [1, 2, 3]) {
      t.setHead(o);
      t.stream.deliver(ev(o));
    }
    expect(t.sent).toEqual([1, 2, 3]);
    expect(t.stream.next).toBe(4);
    expect(t.reads).toEqual([]);
    expect(t.counters).toEqual({ duplicatesDropped: 0, gapsRecovered: 0, eventsSent: 3 });
  });

  it('drops duplicates and counts them', () => {
    const t = harness(1, 3);
    t.stream.deliver(ev(1));
    t.stream.deliver(ev(2));
    t.stream.deliver(ev(2));
    t.stream.deliver(ev(1));
    t.stream.deliver(ev(3));
    expect(t.sent).toEqual([1, 2, 3]);
    expect(t.counters.duplicatesDropped).toBe(2);
    expect(t.counters.eventsSent).toBe(3);
  });

  it('fills a gap through the range reader before sending the later event', async () => {
    const t = harness(1, 1);
    t.stream.deliver(ev(1));
    t.setHead(4);
    t.stream.deliver(ev(4)); // 2 and 3 were missed
    expect(t.sent).toEqual([1]);
    expect(t.counters.gapsRecovered).toBe(1);
    await vi.waitFor(() => expect(t.sent).toEqual([1, 2, 3, 4]), { interval: 1 });
    expect(t.reads).toEqual([[2, 4]]);
    expect(t.stream.next).toBe(5);
    // Event 4 came back through the range read; the held copy is dropped, not sent twice.
    expect(t.counters.duplicatesDropped).toBe(1);
  });

  it('holds events that arrive while a gap is being filled and flushes them in order', async () => {
    const read = deferred<FannedEvent[]>();
    const t = harness(1, 1, () => read.promise);
    t.stream.deliver(ev(1));
    t.setHead(3);
    t.stream.deliver(ev(3)); // gap at 2: read 2..3 pending
    // Later events arrive out of order while the read is pending; nothing may overtake the gap.
    t.stream.deliver(ev(5));
    t.stream.deliver(ev(4));
    t.stream.deliver(ev(1));
    expect(t.sent).toEqual([1]);
    read.resolve([ev(2), ev(3)]);
    await vi.waitFor(() => expect(t.sent).toEqual([1, 2, 3, 4, 5]), { interval: 1 });
    expect(t.reads).toEqual([[2, 3]]);
    expect(t.stream.next).toBe(6);
    expect(t.errors).toEqual([]);
  });

  it('catchUp() sends everything from next up to the head, in chunks of 500', async () => {
    const t = harness(1, 1200);
    await t.stream.catchUp();
    expect(t.reads).toEqual([
      [1, 500],
      [501, 1000],
      [1001, 1200],
    ]);
    expect(t.sent).toHaveLength(1200);
    expect(t.sent.every((o, i) => o === i + 1)).toBe(true);
  });

  it('catches up from a position in the middle (recovered join)', async () => {
    const t = harness(8, 10);
    const catching = t.stream.catchUp();
    t.setHead(11);
    t.stream.deliver(ev(11)); // live event during the catch-up
    await catching;
    await vi.waitFor(() => expect(t.sent).toEqual([8, 9, 10, 11]), { interval: 1 });
  });

  it('reports an error when the log has no event where one is needed, and sends nothing past it', async () => {
    const t = harness(1, 5, async (from) => (from === 1 ? [ev(1), ev(2)] : []));
    await t.stream.catchUp();
    expect(t.sent).toEqual([1, 2]);
    expect(t.errors).toHaveLength(1);
    expect(String(t.errors[0])).toMatch(/no event at offset 3/);
  });

  it('reports a failing range read', async () => {
    const boom = new Error('bus down');
    const t = harness(1, 3, async () => {
      throw boom;
    });
    t.stream.deliver(ev(3));
    await vi.waitFor(() => expect(t.errors).toEqual([boom]), { interval: 1 });
    expect(t.sent).toEqual([]);
  });

  it('sends nothing once closed, or once its sink is closed', async () => {
    const t = harness(1, 2);
    t.stream.deliver(ev(1));
    t.sink.closed = true;
    expect(t.stream.closed).toBe(true);
    t.stream.deliver(ev(2));
    expect(t.sent).toEqual([1]);

    const u = harness(1, 3);
    u.stream.close();
    u.stream.deliver(ev(1));
    await u.stream.catchUp();
    expect(u.sent).toEqual([]);
    expect(u.reads).toEqual([]);
  });

  it('stops a catch-up when closed mid-way', async () => {
    const read = deferred<FannedEvent[]>();
    const t = harness(1, 3, () => read.promise);
    const catching = t.stream.catchUp();
    t.stream.close();
    read.resolve([ev(1), ev(2), ev(3)]);
    await catching;
    expect(t.sent).toEqual([]);
  });
});

describe('FannedEvent', () => {
  it('is the wire event, encoded once per codec', () => {
    const e = ev(7);
    expect(e.event).toEqual({
      collaborationId: 'c1',
      epoch: 'ep1',
      offset: 7,
      type: 'shared',
      from: 'a',
      at: 1007,
      data: { content: 'event 7', kind: 'message' },
    });
    const json = e.frame(jsonCodec);
    expect(e.frame(jsonCodec)).toBe(json);
    expect(JSON.parse(json.data as string)).toEqual({
      jsonrpc: '2.0',
      method: 'collaboration/event',
      params: e.event,
    });
    const bin = e.frame(msgpackCodec);
    expect(e.frame(msgpackCodec)).toBe(bin);
    expect(msgpackCodec.decode(bin.data)).toEqual({
      jsonrpc: '2.0',
      method: 'collaboration/event',
      params: e.event,
    });
  });
});

describe('EventRing', () => {
  it('keeps the last `capacity` events', () => {
    const ring = new EventRing(4);
    for (let o = 1; o <= 10; o++) ring.push(ev(o));
    expect(ring.get(6)).toBeUndefined();
    expect([7, 8, 9, 10].map((o) => ring.get(o)?.offset)).toEqual([7, 8, 9, 10]);
    expect(ring.get(11)).toBeUndefined();
    expect(ring.get(0)).toBeUndefined();
  });
});
