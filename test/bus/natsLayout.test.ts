import {
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  type MsgRequest,
  type StoredMsg,
} from '@nats-io/jetstream';
import { connect, headers } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import type { LogEntry } from '../../src/bus/bus.js';
import { connectNatsBus } from '../../src/bus/nats.js';
import { OFFSET_HEADER } from '../../src/bus/natsLogFormat.js';
import { collect, dec, enc, range } from '../helpers/bus.js';
import { startNatsServer } from '../helpers/natsServer.js';
import { eventually } from '../helpers/node.js';

/** Every message stored on one subject of the log stream, in stream order. */
async function storedOn(jsm: JetStreamManager, subject: string): Promise<StoredMsg[]> {
  const out: StoredMsg[] = [];
  let seq = 1;
  for (let i = 0; i < 10_000; i++) {
    // `next_by_subj` is a server field nats.js does not type.
    const query = { next_by_subj: subject, seq } as unknown as MsgRequest;
    const m = await jsm.streams.getMessage('MESH_LOGS', query).catch(() => null);
    if (!m) break;
    out.push(m);
    seq = m.seq + 1;
  }
  return out;
}

/** Splits a batch payload: 4-byte big-endian length, then the entry, repeated. */
function frames(data: Uint8Array): string[] {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out: string[] = [];
  for (let at = 0; at < data.length; ) {
    const length = view.getUint32(at);
    out.push(dec(data.subarray(at + 4, at + 4 + length)));
    at += 4 + length;
  }
  return out;
}

describe('NATS subject layout', () => {
  it('republishes stored task-log messages only, to <prefix>.tail.a2atask.<id>.log; a follower skips a forged gap', async () => {
    const nats = await startNatsServer();
    const nc = nats.track(await connect({ servers: nats.url }));
    const jsm = await jetstreamManager(nc);
    const bus = nats.track(await connectNatsBus({ servers: nats.url, nodeId: 'tail' }));
    expect((await jsm.streams.info('MESH_LOGS')).config.republish).toEqual({
      src: 'mesh.a2atask.>',
      dest: 'mesh.tail.a2atask.>',
    });
    const tail: string[] = [];
    nc.subscribe('mesh.tail.>', {
      callback: (_e, m) => {
        tail.push(`${m.subject} ${m.headers?.get(OFFSET_HEADER)} ${m.string()}`);
      },
    });
    await nc.flush();
    const follower = bus.follow('a2atask.t1', 1);
    const { entries } = collect(follower);
    await bus.append('a2atask.t1', enc('one'));
    await bus.append('collab.c1', enc('not republished'));
    // A compare-and-set append that JetStream refuses is published on the log subject but not stored.
    await expect(bus.append('a2atask.t1', enc('refused'), { expectedLastOffset: 0 })).rejects.toThrow();
    // A message on the tail subject that claims a later offset: the follower reads the log instead.
    const forged = headers();
    forged.set(OFFSET_HEADER, '5');
    forged.set('Nats-Sequence', '999');
    nc.publish('mesh.tail.a2atask.t1.log', enc('forged'), { headers: forged });
    await bus.append('a2atask.t1', enc('two'));
    await eventually(() =>
      expect(entries.map((e) => `${e.offset} ${dec(e.data)}`)).toEqual(['1 one', '2 two']),
    );
    await eventually(() =>
      expect(tail).toEqual([
        'mesh.tail.a2atask.t1.log 1 one',
        'mesh.tail.a2atask.t1.log 5 forged',
        'mesh.tail.a2atask.t1.log 2 two',
      ]),
    );
    follower.close();
  });

  it('a task-log follower subscribes when made: what is appended before its iteration starts arrives, with no first read', async () => {
    const nats = await startNatsServer();
    const reader = nats.track(await connectNatsBus({ servers: nats.url, nodeId: 'reader' }));
    const writer = nats.track(await connectNatsBus({ servers: nats.url, nodeId: 'writer' }));
    // `empty`: the follower does not read the log first; only its subscription can bring these.
    const follower = reader.follow('a2atask.fresh', 1, { empty: true });
    await reader.info('a2atask.fresh'); // a round trip on the reader's connection: its subscription is in place
    await writer.append('a2atask.fresh', enc('one'));
    await writer.append('a2atask.fresh', enc('two'));
    const started = Date.now();
    const { entries } = collect(follower);
    await eventually(() =>
      expect(entries.map((e) => `${e.offset} ${dec(e.data)}`)).toEqual(['1 one', '2 two']),
    );
    // Well before the follower's 5 s idle read.
    expect(Date.now() - started).toBeLessThan(2_000);
    // Through the republish: no consumer on the stream (a consumer follower would have made one).
    const jsm = await jetstreamManager(nats.track(await connect({ servers: nats.url })));
    expect(await jsm.consumers.list('MESH_LOGS').next()).toEqual([]);
    follower.close();
  });

  it('reads a one-replica log with direct gets, and an append after a read that found the log empty goes out without reading it again', async () => {
    const nats = await startNatsServer();
    const bus = nats.track(await connectNatsBus({ servers: nats.url, nodeId: 'empty-read' }));
    const nc = nats.track(await connect({ servers: nats.url }));
    const gets: string[] = [];
    // Log reads: direct gets on a stream of one replica, leader gets otherwise.
    for (const subject of [
      '$JS.API.STREAM.MSG.GET.>',
      '$JS.API.DIRECT.GET.MESH_LOGS',
      '$JS.API.DIRECT.GET.MESH_LOGS.>',
    ]) {
      nc.subscribe(subject, { callback: (_e, m) => void gets.push(m.subject) });
    }
    await nc.flush();
    expect(await bus.read('a2atask.new', 1, 10)).toEqual([]);
    await nc.flush();
    expect(gets).toEqual(['$JS.API.DIRECT.GET.MESH_LOGS.mesh.a2atask.new.log']);
    expect(await bus.append('a2atask.new', enc('first'), { expectedLastOffset: 0 })).toBe(1);
    await nc.flush();
    expect(gets).toHaveLength(1);
    expect((await bus.read('a2atask.new', 1, 10)).map((e) => dec(e.data))).toEqual(['first']);
  });

  it('keeps following task logs with consumers on a stream made without the republish', async () => {
    const nats = await startNatsServer();
    const nc = nats.track(await connect({ servers: nats.url }));
    const jsm = await jetstreamManager(nc);
    // As a node from before the republish made it; nats-server cannot add a republish later.
    await jsm.streams.add({
      name: 'MESH_LOGS',
      subjects: ['mesh.collab.*.log', 'mesh.conv.*.log', 'mesh.a2atask.*.log'],
      allow_direct: true,
    });
    const bus = nats.track(await connectNatsBus({ servers: nats.url, nodeId: 'old-stream' }));
    expect((await jsm.streams.info('MESH_LOGS')).config.republish).toBeUndefined();
    const { entries } = collect(bus.follow('a2atask.t2', 1));
    await bus.append('a2atask.t2', enc('one'));
    await bus.append('a2atask.t2', enc('two'));
    await eventually(() =>
      expect(entries.map((e) => `${e.offset} ${dec(e.data)}`)).toEqual(['1 one', '2 two']),
    );
    expect((await jsm.consumers.list('MESH_LOGS').next()).length).toBe(1);
  });

  it('stores collaboration logs but never a topic, even one named like a log', async () => {
    const nats = await startNatsServer();
    const bus = nats.track(await connectNatsBus({ servers: nats.url, nodeId: 'layout' }));
    const nc = nats.track(await connect({ servers: nats.url }));
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info('MESH_LOGS')).config.subjects.sort()).toEqual([
      'mesh.a2atask.*.log',
      'mesh.collab.*.log',
      'mesh.conv.*.log',
    ]);
    await bus.append('collab.c1', new Uint8Array([1]));
    const got: string[] = [];
    await bus.subscribe('alerts.>', (m) => got.push(m.topic));
    await bus.publish('alerts.log', new Uint8Array([2]));
    await bus.publish('collab.x.log', new Uint8Array([3]));
    await eventually(() => expect(got).toEqual(['alerts.log']));
    expect((await jsm.streams.info('MESH_LOGS')).state.messages).toBe(1);
    await expect(bus.append('topic.x', new Uint8Array([4]))).rejects.toThrow(/invalid log name/);
    await expect(bus.append('collab.a.b', new Uint8Array([4]))).rejects.toThrow(/invalid log name/);
  });

  it('stores appends made while one is in flight as batch messages: first offset, count, framed entries', async () => {
    const nats = await startNatsServer();
    const bus = nats.track(await connectNatsBus({ servers: nats.url, nodeId: 'batches' }));
    const nc = nats.track(await connect({ servers: nats.url }));
    const jsm = await jetstreamManager(nc);
    const log = 'collab.batched';
    expect(await bus.append(log, enc('e1'))).toBe(1);
    const offsets = await Promise.all(range(2, 201).map((i) => bus.append(log, enc(`e${i}`))));
    expect(offsets).toEqual(range(2, 201));

    const stored = await storedOn(jsm, 'mesh.collab.batched.log');
    expect(stored.length).toBeLessThan(50);
    // A lone append is stored as before batches: its data as the payload, no count.
    expect(stored[0]!.header.get('Mesh-Offset')).toBe('1');
    expect(stored[0]!.header.has('Mesh-Count')).toBe(false);
    expect(dec(stored[0]!.data)).toBe('e1');
    let next = 1;
    let prevSeq = 0;
    let batches = 0;
    for (const m of stored) {
      const first = Number(m.header.get('Mesh-Offset'));
      expect(first).toBe(next);
      const count = m.header.has('Mesh-Count') ? Number(m.header.get('Mesh-Count')) : 1;
      const entries = count === 1 ? [dec(m.data)] : frames(m.data);
      expect(entries).toEqual(range(first, first + count - 1).map((o) => `e${o}`));
      if (count > 1) batches++;
      expect(m.header.get('Nats-Msg-Id')).toBe(`${log}:${first}:${prevSeq}`);
      expect(m.header.get('Nats-Expected-Last-Subject-Sequence')).toBe(String(prevSeq));
      next = first + count;
      prevSeq = m.seq;
    }
    expect(next).toBe(202);
    expect(batches).toBeGreaterThan(0);
  });

  it('reads, follows and continues a log written one entry a message by the previous version', async () => {
    const nats = await startNatsServer();
    const writer = nats.track(await connectNatsBus({ servers: nats.url, nodeId: 'old-writer' }));
    const nc = nats.track(await connect({ servers: nats.url }));
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const log = 'collab.legacy';
    const subject = 'mesh.collab.legacy.log';
    // Entries 1..30 as the previous version stored them, interleaved with another log.
    let prevSeq = 0;
    for (let o = 1; o <= 30; o++) {
      const h = headers();
      h.set('Mesh-Offset', String(o));
      h.set('Mesh-Append', `old${o}`);
      const ack = await js.publish(subject, enc(`e${o}`), {
        headers: h,
        msgID: `${log}:${o}:${prevSeq}`,
        expect: { lastSubjectSequence: prevSeq },
      });
      prevSeq = ack.seq;
      if (o % 4 === 0) await writer.append('conv.other', enc(`o${o}`));
    }
    // Then batches from this version.
    expect(await Promise.all(range(31, 90).map((o) => writer.append(log, enc(`e${o}`))))).toEqual(
      range(31, 90),
    );
    expect((await storedOn(jsm, subject)).length).toBeLessThan(90);

    const reader = nats.track(await connectNatsBus({ servers: nats.url, nodeId: 'reader' }));
    expect(await reader.info(log)).toMatchObject({ firstOffset: 1, lastOffset: 90 });
    const all = await reader.read(log, 1, 1000);
    expect(all.map((e) => e.offset)).toEqual(range(1, 90));
    expect(all.map((e) => dec(e.data))).toEqual(range(1, 90).map((o) => `e${o}`));
    for (const from of [7, 30, 31, 32, 58, 90]) {
      const fresh = nats.track(await connectNatsBus({ servers: nats.url, nodeId: `reader${from}` }));
      expect((await fresh.read(log, from, 3)).map((e) => e.offset)).toEqual(
        range(from, Math.min(90, from + 2)),
      );
    }
    const followed: LogEntry[] = [];
    const follower = reader.follow(log, 29);
    const done = (async () => {
      for await (const e of follower) followed.push(e);
    })();
    await eventually(() => expect(followed.map((e) => e.offset)).toEqual(range(29, 90)));
    expect(await reader.append(log, enc('e91'))).toBe(91);
    await eventually(() => expect(followed.map((e) => e.offset)).toEqual(range(29, 91)));
    expect(followed.map((e) => dec(e.data))).toEqual(range(29, 91).map((o) => `e${o}`));
    follower.close();
    await done;
  });

  it('settles every queued append when the log cannot be read, rather than retrying forever', async () => {
    const nats = await startNatsServer();
    const bus = nats.track(await connectNatsBus({ servers: nats.url, nodeId: 'unreadable' }));
    const nc = nats.track(await connect({ servers: nats.url }));
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete('MESH_LOGS');
    // A log this node never saw: its end must be read before the first publish, and that fails.
    const started = Date.now();
    const results = await Promise.allSettled(
      range(1, 20).map((i) => bus.append('collab.lost', enc(`e${i}`))),
    );
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('settles two nodes racing with batches: each append stored once, at the offset it was given', async () => {
    const nats = await startNatsServer();
    const a = nats.track(await connectNatsBus({ servers: nats.url, nodeId: 'race-a' }));
    const b = nats.track(await connectNatsBus({ servers: nats.url, nodeId: 'race-b' }));
    const nc = nats.track(await connect({ servers: nats.url }));
    const jsm = await jetstreamManager(nc);
    const log = 'collab.race';
    // Each node follows the log, as a node holding the collaboration's replica does: what its
    // follower sees is where the next append of that node starts.
    const followed = [a, b].map((bus) => {
      const follower = bus.follow(log, 1);
      const offsets: number[] = [];
      const done = (async () => {
        for await (const e of follower) offsets.push(e.offset);
      })();
      return { follower, offsets, done };
    });
    const given = new Map<string, number>();
    // Waves of 25 appends per node while the other node's are in flight.
    const writer = async (name: string, bus: typeof a) => {
      for (let w = 0; w < 6; w++) {
        await Promise.all(
          range(1, 25).map(async (i) => {
            const data = `${name}${w}-${i}`;
            given.set(data, await bus.append(log, enc(data)));
          }),
        );
      }
    };
    await Promise.all([writer('a', a), writer('b', b)]);
    expect([...given.values()].sort((x, y) => x - y)).toEqual(range(1, 300));
    const stored = await a.read(log, 1, 1000);
    expect(stored.map((e) => e.offset)).toEqual(range(1, 300));
    for (const e of stored) expect(given.get(dec(e.data))).toBe(e.offset);
    expect((await storedOn(jsm, 'mesh.collab.race.log')).length).toBeLessThan(300);
    for (const f of followed) {
      await eventually(() => expect(f.offsets).toEqual(range(1, 300)));
      f.follower.close();
      await f.done;
    }
  });
});

describe('KV buckets opened by several nodes at once', () => {
  it('every node gets the bucket when they all create it at the same moment', async () => {
    const nats = await startNatsServer();
    const buses = await Promise.all(
      ['n1', 'n2', 'n3', 'n4'].map(async (nodeId) =>
        nats.track(await connectNatsBus({ servers: nats.url, nodeId })),
      ),
    );
    // Ten fresh buckets, each created by all four buses concurrently (as nodes starting together
    // against a new NATS do): the losers of each race must bind to the winner's bucket.
    for (let i = 0; i < 10; i++) {
      const name = `race${i}`;
      const buckets = await Promise.all(buses.map((b) => b.kv(name, { ttlMs: i % 2 ? 60_000 : 0 })));
      await buckets[0]!.put('k', new Uint8Array([i]));
      for (const bucket of buckets) expect([...((await bucket.get('k'))?.value ?? [])]).toEqual([i]);
    }
  });

  it("refuses a bucket whose subjects another stream holds, with the server's error", async () => {
    const nats = await startNatsServer();
    const nc = nats.track(await connect({ servers: nats.url }));
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'SQUATTER', subjects: ['$KV.mesh_taken.>'] });
    const bus = nats.track(await connectNatsBus({ servers: nats.url, nodeId: 'n1' }));
    await expect(bus.kv('taken')).rejects.toThrow(/subjects overlap/);
  });
});
