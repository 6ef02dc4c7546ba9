import { MeshError } from '@a2a-mesh/protocol';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  type Bus,
  type BusMessage,
  entryValue,
  KvConflictError,
  kvValue,
  NoRespondersError,
  OffsetConflictError,
} from '../../src/bus/bus.js';
import { EmbeddedBus } from '../../src/bus/embedded.js';
import { connectNatsBus } from '../../src/bus/nats.js';
import { Packed, unpack } from '../../src/util/binary.js';
import { collect, dec, enc, range } from '../helpers/bus.js';
import { type NatsServer, startNatsServer } from '../helpers/natsServer.js';
import { eventually } from '../helpers/node.js';

/**
 * The Bus contract, written once and run against the in-process bus and the NATS bus. Each test uses
 * its own log, bucket and topic names, so tests share one nats-server without seeing each other.
 */

let seq = 0;
/**
 * Log kinds whose follow is checked: task logs are followed through the stream's republish on NATS,
 * the others with an ordered consumer (src/bus/natsLogs.ts `follow`).
 */
const FOLLOWED_KINDS = ['collab.', 'a2atask.'];
const must = async <T>(p: Promise<T | undefined>): Promise<T> => {
  const v = await p;
  if (v === undefined) throw new Error('missing');
  return v;
};
const unique = (base: string) => `${base}${Date.now().toString(36)}${(seq++).toString(36)}`;

interface Target {
  name: string;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** A bus for this test, closed when the test ends. */
  bus(): Promise<Bus>;
  /** Another node's bus (the same instance for the embedded bus); closed when the test ends. */
  peer(first: Bus): Promise<Bus>;
}

const embedded: Target = {
  name: 'EmbeddedBus',
  setup: async () => {},
  teardown: async () => {},
  bus: async () => {
    const bus = new EmbeddedBus();
    onTestFinished(() => bus.close());
    return bus;
  },
  peer: async (first) => first,
};

let server: NatsServer | undefined;
const nats: Target = {
  name: 'NatsBus',
  setup: async () => {
    server = await startNatsServer();
  },
  teardown: async () => {
    await server?.stop();
  },
  bus: async () => {
    if (!server) throw new Error('no server');
    const bus = server.track(await connectNatsBus({ servers: server.url, nodeId: unique('node') }));
    onTestFinished(() => bus.close());
    return bus;
  },
  peer: async () => nats.bus(),
};

describe.each([embedded, nats])('Bus conformance: $name', (target) => {
  beforeAll(() => target.setup());
  afterAll(() => target.teardown());

  describe('logs', () => {
    it('appends with contiguous offsets from 1 and reports where the log stands', async () => {
      const bus = await target.bus();
      const log = unique('collab.');
      const before = await bus.info(log);
      expect(before.lastOffset).toBe(0);
      expect(before.firstOffset).toBe(1);
      expect(await bus.append(log, enc('a'))).toBe(1);
      expect(await bus.append(log, enc('b'))).toBe(2);
      expect(await bus.append(log, enc('c'))).toBe(3);
      const after = await bus.info(log);
      expect(after).toEqual({ epoch: before.epoch, firstOffset: 1, lastOffset: 3 });
      expect(typeof after.epoch).toBe('string');
      expect(after.epoch.length).toBeGreaterThan(0);
    });

    it('refuses log names outside the log kinds, on every try', async () => {
      const bus = await target.bus();
      for (const name of ['topic.x', 'collab.a.b', 'collab.', 'a2atask.t x']) {
        await expect(bus.append(name, enc('x'))).rejects.toThrow(/invalid log name/);
        await expect(bus.append(name, enc('again'))).rejects.toThrow(/invalid log name/);
        expect(() => bus.follow(name, 1)).toThrow(/invalid log name/);
      }
    });

    it('reads contiguous ranges, fewer only at the end', async () => {
      const bus = await target.bus();
      const log = unique('collab.');
      // Interleave another log so stream sequences and offsets differ.
      const other = unique('conv.');
      for (let i = 1; i <= 30; i++) {
        await bus.append(log, enc(`e${i}`));
        if (i % 3 === 0) await bus.append(other, enc(`o${i}`));
      }
      const all = await bus.read(log, 1, 100);
      expect(all.map((e) => e.offset)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      expect(all.map((e) => dec(e.data))).toEqual(Array.from({ length: 30 }, (_, i) => `e${i + 1}`));
      expect((await bus.read(log, 2, 1)).map((e) => e.offset)).toEqual([2]);
      expect((await bus.read(log, 28, 10)).map((e) => dec(e.data))).toEqual(['e28', 'e29', 'e30']);
      expect((await bus.read(log, 5, 20)).map((e) => e.offset)).toEqual(
        Array.from({ length: 20 }, (_, i) => i + 5),
      );
      expect(await bus.read(log, 31, 10)).toEqual([]);
      expect(await bus.read(unique('collab.'), 1, 10)).toEqual([]);
    });

    it('takes Packed values: read and followed as the value, and as its msgpack bytes', async () => {
      const a = await target.bus();
      const b = await target.peer(a);
      const log = unique('a2atask.');
      const values = [
        { type: 'input', n: 1, nested: { list: [1, 'two'] } },
        { type: 'end', n: 2 },
      ];
      const follower = b.follow(log, 1);
      onTestFinished(() => follower.close());
      const followed = collect(follower);
      for (const v of values) await a.append(log, new Packed(v));
      await a.append(log, enc('plain bytes'));
      const read = await b.read(log, 1, 10);
      expect(read.slice(0, 2).map((e) => entryValue(e))).toEqual(values);
      expect(read.slice(0, 2).map((e) => unpack(e.data))).toEqual(values);
      expect(dec(read[2]!.data)).toBe('plain bytes');
      await eventually(() => expect(followed.entries).toHaveLength(3));
      expect(followed.entries.slice(0, 2).map((e) => entryValue(e))).toEqual(values);
      expect(followed.entries.map((e) => e.offset)).toEqual([1, 2, 3]);
      const bucket = unique('kv');
      const kv = await a.kv(bucket);
      const r1 = await kv.create('k', new Packed({ v: 1 }));
      await kv.update('k', new Packed({ v: 2 }), r1);
      await kv.put('p', new Packed({ v: 3 }));
      await expect(kv.create('k', new Packed({ v: 4 }))).rejects.toBeInstanceOf(KvConflictError);
      const peerKv = await b.kv(bucket);
      expect(kvValue(await must(peerKv.get('k')))).toEqual({ v: 2 });
      expect(unpack((await must(peerKv.get('p'))).value)).toEqual({ v: 3 });
    });

    it('reads what another node appended', async () => {
      const a = await target.bus();
      const b = await target.peer(a);
      const log = unique('collab.');
      for (let i = 1; i <= 12; i++) await a.append(log, enc(`x${i}`));
      expect((await b.read(log, 7, 3)).map((e) => dec(e.data))).toEqual(['x7', 'x8', 'x9']);
      expect((await b.info(log)).lastOffset).toBe(12);
      expect(await b.append(log, enc('x13'))).toBe(13);
    });

    it.each(FOLLOWED_KINDS)(
      'follows from the past, then live, without gaps or duplicates (%s logs)',
      async (kind) => {
        const bus = await target.bus();
        const log = unique(kind);
        for (let i = 1; i <= 5; i++) await bus.append(log, enc(`m${i}`));
        const follower = bus.follow(log, 3);
        const { entries, done } = collect(follower);
        await eventually(() => expect(entries.map((e) => e.offset)).toEqual([3, 4, 5]));
        await bus.append(log, enc('m6'));
        await bus.append(log, enc('m7'));
        await eventually(() => expect(entries.map((e) => e.offset)).toEqual([3, 4, 5, 6, 7]));
        expect(entries.map((e) => dec(e.data))).toEqual(['m3', 'm4', 'm5', 'm6', 'm7']);
        follower.close();
        expect(await done).toBeUndefined();
      },
    );

    it.each(FOLLOWED_KINDS)(
      'follows a log that is not written yet, and sees another node append (%s logs)',
      async (kind) => {
        const a = await target.bus();
        const b = await target.peer(a);
        const log = unique(kind);
        const follower = a.follow(log, 1);
        const { entries, done } = collect(follower);
        // Give the follower a moment to start before the first write.
        await new Promise((r) => setTimeout(r, 50));
        await b.append(log, enc('first'));
        await a.append(log, enc('second'));
        await eventually(() => expect(entries.map((e) => dec(e.data))).toEqual(['first', 'second']));
        expect(entries.map((e) => e.offset)).toEqual([1, 2]);
        follower.close();
        expect(await done).toBeUndefined();
      },
    );

    it('rejects a compare-and-set append with the actual last offset', async () => {
      const a = await target.bus();
      const b = await target.peer(a);
      const log = unique('collab.');
      expect(await a.append(log, enc('1'), { expectedLastOffset: 0 })).toBe(1);
      expect(await a.append(log, enc('2'), { expectedLastOffset: 1 })).toBe(2);
      const err = await a.append(log, enc('late'), { expectedLastOffset: 1 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OffsetConflictError);
      expect(err).toMatchObject({ log, expected: 1, actual: 2 });
      // A node whose view is stale gets the same answer, and succeeds with the right offset.
      await b.info(log);
      await a.append(log, enc('3'));
      const stale = await b.append(log, enc('x'), { expectedLastOffset: 2 }).catch((e: unknown) => e);
      expect(stale).toMatchObject({ name: 'OffsetConflictError', expected: 2, actual: 3 });
      expect(await b.append(log, enc('4'), { expectedLastOffset: 3 })).toBe(4);
      expect((await a.read(log, 1, 10)).map((e) => dec(e.data))).toEqual(['1', '2', '3', '4']);
      // A node that never saw the log, appending at offset 0 (as to a new task's log), is refused too.
      const c = await target.peer(a);
      const unseen = await c.append(log, enc('y'), { expectedLastOffset: 0 }).catch((e: unknown) => e);
      expect(unseen).toMatchObject({ name: 'OffsetConflictError', expected: 0, actual: 4 });
      expect(await c.append(log, enc('5'), { expectedLastOffset: 4 })).toBe(5);
      // ... and one appending at offset 0 to a log nobody wrote gets offset 1.
      const fresh = unique('collab.');
      expect(await c.append(fresh, enc('first'), { expectedLastOffset: 0 })).toBe(1);
      expect(await (await target.peer(a)).append(fresh, enc('second'), { expectedLastOffset: 1 })).toBe(2);
    });

    it('lets one of two nodes racing to write the first entry of a new log in, and refuses the other', async () => {
      const a = await target.bus();
      for (let round = 0; round < 5; round++) {
        const [x, y] = [await target.peer(a), await target.peer(a)];
        const log = unique('a2atask.');
        const results = await Promise.allSettled([
          x.append(log, enc('x'), { expectedLastOffset: 0 }),
          y.append(log, enc('y'), { expectedLastOffset: 0 }),
        ]);
        const won = results.filter((r) => r.status === 'fulfilled');
        const lost = results.filter((r) => r.status === 'rejected');
        expect(won.map((r) => (r as PromiseFulfilledResult<number>).value)).toEqual([1]);
        expect(lost).toHaveLength(1);
        expect((lost[0] as PromiseRejectedResult).reason).toMatchObject({
          name: 'OffsetConflictError',
          expected: 0,
          actual: 1,
        });
        expect((await a.read(log, 1, 10)).map((e) => e.offset)).toEqual([1]);
      }
    });

    it('keeps offsets contiguous under concurrent appends from two nodes', async () => {
      const a = await target.bus();
      const b = await target.peer(a);
      const log = unique('collab.');
      const perWriter = 40;
      const writes = [
        ...Array.from({ length: perWriter }, (_, i) => a.append(log, enc(`a${i}`))),
        ...Array.from({ length: perWriter }, (_, i) => b.append(log, enc(`b${i}`))),
      ];
      const offsets = await Promise.all(writes);
      expect([...offsets].sort((x, y) => x - y)).toEqual(
        Array.from({ length: 2 * perWriter }, (_, i) => i + 1),
      );
      const entries = await a.read(log, 1, 1000);
      expect(entries.map((e) => e.offset)).toEqual(Array.from({ length: 2 * perWriter }, (_, i) => i + 1));
      // Each write is stored once, at the offset its append returned.
      const byPayload = new Map(entries.map((e) => [dec(e.data), e.offset]));
      expect(byPayload.size).toBe(2 * perWriter);
      for (let i = 0; i < perWriter; i++) {
        expect(byPayload.get(`a${i}`)).toBe(offsets[i]);
        expect(byPayload.get(`b${i}`)).toBe(offsets[perWriter + i]);
      }
    });

    it('gives concurrent appends from one node contiguous offsets in call order, each its own', async () => {
      const bus = await target.bus();
      const log = unique('collab.');
      const first = await Promise.all(Array.from({ length: 60 }, (_, i) => bus.append(log, enc(`p${i}`))));
      expect(first).toEqual(range(1, 60));
      // Waves started while earlier ones are still in flight.
      const waves: Promise<number>[] = [];
      for (let w = 0; w < 5; w++) {
        for (let i = 0; i < 20; i++) waves.push(bus.append(log, enc(`w${w}-${i}`)));
        await new Promise((r) => setImmediate(r));
      }
      expect(await Promise.all(waves)).toEqual(range(61, 160));
      const stored = await bus.read(log, 1, 1000);
      expect(stored.map((e) => e.offset)).toEqual(range(1, 160));
      expect(stored.slice(60).map((e) => dec(e.data))).toEqual(
        Array.from({ length: 100 }, (_, i) => `w${Math.floor(i / 20)}-${i % 20}`),
      );
    });

    it.each(FOLLOWED_KINDS)(
      'reads and follows from any offset of entries appended together, on another node too (%s logs)',
      async (kind) => {
        const a = await target.bus();
        const log = unique(kind);
        const other = unique('conv.');
        await a.append(log, enc('e1'));
        const together = [
          ...Array.from({ length: 30 }, (_, i) => a.append(log, enc(`e${i + 2}`))),
          ...Array.from({ length: 5 }, (_, i) => a.append(other, enc(`o${i}`))),
        ];
        await Promise.all(together);
        await Promise.all(Array.from({ length: 9 }, (_, i) => a.append(log, enc(`e${i + 32}`))));
        const b = await target.peer(a);
        for (const reader of [a, b]) {
          for (const from of [1, 2, 3, 16, 31, 32, 33, 40]) {
            const got = await reader.read(log, from, 4);
            expect(got.map((e) => e.offset)).toEqual(range(from, Math.min(40, from + 3)));
            expect(got.map((e) => dec(e.data))).toEqual(got.map((e) => `e${e.offset}`));
          }
        }
        const c = await target.peer(a);
        let end = 40;
        for (const from of [17, 35]) {
          const follower = c.follow(log, from);
          const { entries, done } = collect(follower);
          await eventually(() => expect(entries.map((e) => e.offset)).toEqual(range(from, end)));
          await Promise.all([a.append(log, enc(`e${end + 1}`)), a.append(log, enc(`e${end + 2}`))]);
          end += 2;
          await eventually(() => expect(entries.map((e) => e.offset)).toEqual(range(from, end)));
          expect(entries.map((e) => dec(e.data))).toEqual(entries.map((e) => `e${e.offset}`));
          follower.close();
          expect(await done).toBeUndefined();
        }
      },
    );

    it('checks each compare-and-set against the appends before it, also when they go out together', async () => {
      const a = await target.bus();
      const log = unique('collab.');
      const settled = await Promise.allSettled([
        a.append(log, enc('u1')),
        // Stale from the start: u1, sent just before it, is there by then.
        a.append(log, enc('stale0'), { expectedLastOffset: 0 }),
        a.append(log, enc('c2'), { expectedLastOffset: 1 }),
        a.append(log, enc('u3')),
        // Stale: the log is at 3 once the appends before it are stored.
        a.append(log, enc('stale2'), { expectedLastOffset: 2 }),
        a.append(log, enc('c4'), { expectedLastOffset: 3 }),
        a.append(log, enc('u5')),
        a.append(log, enc('c6'), { expectedLastOffset: 5 }),
      ]);
      const outcome = settled.map((r) => (r.status === 'fulfilled' ? r.value : r.reason));
      expect(outcome[0]).toBe(1);
      expect(outcome[1]).toBeInstanceOf(OffsetConflictError);
      expect(outcome[1]).toMatchObject({ log, expected: 0, actual: 1 });
      expect(outcome.slice(2, 4)).toEqual([2, 3]);
      expect(outcome[4]).toMatchObject({ name: 'OffsetConflictError', expected: 2, actual: 3 });
      expect(outcome.slice(5)).toEqual([4, 5, 6]);
      expect((await a.read(log, 1, 10)).map((e) => dec(e.data))).toEqual([
        'u1',
        'c2',
        'u3',
        'c4',
        'u5',
        'c6',
      ]);
      // Another node appended meanwhile: an expectation planned on the old end fails there too.
      const b = await target.peer(a);
      await b.append(log, enc('b7'));
      const both = await Promise.allSettled([
        a.append(log, enc('late'), { expectedLastOffset: 6 }),
        a.append(log, enc('a8')),
        a.append(log, enc('c9'), { expectedLastOffset: 8 }),
      ]);
      expect(both[0]).toMatchObject({ status: 'rejected', reason: { expected: 6, actual: 7 } });
      expect(both.slice(1)).toEqual([
        { status: 'fulfilled', value: 8 },
        { status: 'fulfilled', value: 9 },
      ]);
    });

    it.each(FOLLOWED_KINDS)(
      'deletes a log: it starts again from offset 1 and its followers end (%s logs)',
      async (kind) => {
        const bus = await target.bus();
        const log = unique(kind);
        await bus.append(log, enc('a'));
        await bus.append(log, enc('b'));
        const { done } = collect(bus.follow(log, 1));
        await bus.deleteLog(log);
        expect(await done).toBeUndefined();
        expect((await bus.info(log)).lastOffset).toBe(0);
        expect(await bus.read(log, 1, 10)).toEqual([]);
        expect(await bus.append(log, enc('again'))).toBe(1);
      },
    );
  });

  describe('kv', () => {
    it('puts, gets, creates, updates with compare-and-set and deletes', async () => {
      const bus = await target.bus();
      const kv = await bus.kv(unique('kv'));
      expect(await kv.get('missing')).toBeUndefined();
      const r1 = await kv.put('a.b', enc('1'));
      expect(await kv.get('a.b')).toMatchObject({ key: 'a.b', revision: r1 });
      expect(dec((await kv.get('a.b'))!.value)).toBe('1');
      await expect(kv.create('a.b', enc('2'))).rejects.toBeInstanceOf(KvConflictError);
      const r2 = await kv.create('c', enc('c1'));
      expect(r2).toBeGreaterThan(r1);
      await expect(kv.update('c', enc('c2'), r1)).rejects.toBeInstanceOf(KvConflictError);
      await expect(kv.update('nope', enc('x'), r2)).rejects.toBeInstanceOf(KvConflictError);
      const r3 = await kv.update('c', enc('c2'), r2);
      expect(r3).toBeGreaterThan(r2);
      expect(dec((await kv.get('c'))!.value)).toBe('c2');
      await kv.delete('c');
      expect(await kv.get('c')).toBeUndefined();
      // A deleted key can be created again.
      expect(await kv.create('c', enc('c3'))).toBeGreaterThan(r3);
    });

    it('lists keys, optionally by prefix', async () => {
      const bus = await target.bus();
      const kv = await bus.kv(unique('kv'));
      expect(await kv.keys()).toEqual([]);
      for (const k of ['agents.a1', 'agents.a2', 'agentsx', 'tasks.t1', 'tasks/t2']) await kv.put(k, enc(k));
      await kv.delete('agents.a2');
      expect((await kv.keys()).sort()).toEqual(['agents.a1', 'agentsx', 'tasks.t1', 'tasks/t2']);
      expect((await kv.keys('agents.')).sort()).toEqual(['agents.a1']);
      expect((await kv.keys('agents')).sort()).toEqual(['agents.a1', 'agentsx']);
      expect((await kv.keys('tasks')).sort()).toEqual(['tasks.t1', 'tasks/t2']);
    });

    it('watches changes from now on: puts, and deletes as undefined', async () => {
      const a = await target.bus();
      const b = await target.peer(a);
      const name = unique('kv');
      const kv = await a.kv(name);
      const kvB = await b.kv(name);
      await kv.put('old', enc('before the watch'));
      const watcher = kv.watch();
      const seen: { key: string; value: string | undefined }[] = [];
      const done = (async () => {
        for await (const c of watcher) seen.push({ key: c.key, value: c.value && dec(c.value) });
      })();
      await kv.put('k1', enc('v1'));
      await kvB.put('k2', enc('v2'));
      await kv.put('k1', enc('v1b'));
      await kv.delete('k1');
      await kvB.delete('old');
      await eventually(() =>
        expect(seen).toEqual([
          { key: 'k1', value: 'v1' },
          { key: 'k2', value: 'v2' },
          { key: 'k1', value: 'v1b' },
          { key: 'k1', value: undefined },
          { key: 'old', value: undefined },
        ]),
      );
      watcher.close();
      await done;
    });

    it('touch writes like put, without waiting, and keeps a TTL entry alive', async () => {
      const a = await target.bus();
      const b = await target.peer(a);
      const name = unique('touch');
      const kv = await a.kv(name, { ttlMs: 1000 });
      const kvB = await b.kv(name, { ttlMs: 1000 });
      kv.touch('t.1', enc('first'));
      await eventually(async () => expect(dec((await kvB.get('t.1'))!.value)).toBe('first'));
      for (let i = 0; i < 4; i++) {
        await new Promise((r) => setTimeout(r, 400));
        kv.touch('t.1', enc(`again ${i}`));
      }
      await eventually(async () => expect(dec((await kvB.get('t.1'))!.value)).toBe('again 3'));
      await eventually(async () => expect(await kvB.keys()).toEqual([]), 4000);
    });

    it('mirrors the live keys: the existing ones once loaded, then writes from any node, deletes and expiries', async () => {
      const a = await target.bus();
      const b = await target.peer(a);
      const name = unique('mirror');
      const kv = await a.kv(name, { ttlMs: 1500 });
      const kvB = await b.kv(name, { ttlMs: 1500 });
      const empty = kv.mirrorKeys();
      onTestFinished(() => empty.close());
      await empty.loaded;
      expect(empty.keys()).toEqual([]);
      await kv.put('p.old', enc('1'));
      await kvB.put('p.gone', enc('2'));
      await kvB.delete('p.gone');
      const mirror = kv.mirrorKeys();
      onTestFinished(() => mirror.close());
      await mirror.loaded;
      expect(mirror.current).toBe(true);
      expect(mirror.keys()).toEqual(['p.old']);
      await eventually(() => expect(empty.keys()).toEqual(['p.old']));
      await kvB.put('p.new', enc('3'));
      await kvB.put('q.other', enc('4'));
      await eventually(() => expect(mirror.keys('p.').sort()).toEqual(['p.new', 'p.old']));
      await kv.delete('p.old');
      await eventually(() => expect(mirror.keys().sort()).toEqual(['p.new', 'q.other']));
      // Kept alive by writes, p.new outlives its TTL; q.other expires, and the mirror tells.
      for (let i = 0; i < 4; i++) {
        await new Promise((r) => setTimeout(r, 500));
        await kvB.put('p.new', enc(`again ${i}`));
      }
      await eventually(() => expect(mirror.keys()).toEqual(['p.new']), 4000);
      mirror.close();
      expect(mirror.current).toBe(false);
    });

    it('mirrors entries with their last values: the existing ones once loaded, then writes and deletes from any node', async () => {
      const a = await target.bus();
      const b = await target.peer(a);
      const name = unique('vmirror');
      const kv = await a.kv(name);
      const kvB = await b.kv(name);
      await kv.put('c.one', enc('1'));
      await kv.put('c.two', enc('2'));
      const mirror = kvB.mirror();
      onTestFinished(() => mirror.close());
      await mirror.loaded;
      expect(mirror.keys().sort()).toEqual(['c.one', 'c.two']);
      expect(dec(mirror.get('c.one')!.value)).toBe('1');
      expect(mirror.get('c.none')).toBeUndefined();
      const r = await kv.put('c.one', new Packed({ v: 'packed' }));
      await eventually(() => expect(mirror.get('c.one')?.revision).toBe(r));
      expect(kvValue(mirror.get('c.one')!)).toEqual({ v: 'packed' });
      await kv.delete('c.two');
      await eventually(() => expect(mirror.get('c.two')).toBeUndefined());
      expect(mirror.keys()).toEqual(['c.one']);
      mirror.close();
      expect(mirror.current).toBe(false);
    });

    it('expires entries a TTL after their last write, and tells watchers', async () => {
      const bus = await target.bus();
      const kv = await bus.kv(unique('ttl'), { ttlMs: 1000 });
      const watcher = kv.watch();
      const changes: { key: string; value: string | undefined }[] = [];
      void (async () => {
        for await (const c of watcher) changes.push({ key: c.key, value: c.value && dec(c.value) });
      })();
      await kv.put('short', enc('s'));
      await kv.put('kept', enc('k1'));
      await new Promise((r) => setTimeout(r, 600));
      await kv.put('kept', enc('k2'));
      expect(await kv.get('short')).toBeDefined();
      await eventually(async () => {
        expect(await kv.get('short')).toBeUndefined();
        expect(await kv.keys()).toEqual(['kept']);
      }, 4000);
      expect(await kv.get('kept')).toBeDefined();
      await eventually(() => expect(changes).toContainEqual({ key: 'short', value: undefined }), 4000);
      await eventually(() => expect(changes).toContainEqual({ key: 'kept', value: undefined }), 4000);
      await expect(kv.create('short', enc('again'))).resolves.toBeGreaterThan(0);
      watcher.close();
    });
  });

  describe('agent routing', () => {
    it('routes a request to the node serving the agent and returns its reply', async () => {
      const a = await target.bus();
      const b = await target.peer(a);
      const agent = unique('agent');
      const reg = await a.serveAgent(agent, async (data) => enc(`echo:${dec(data)}`));
      expect(dec(await b.requestAgent(agent, enc('hi'), { timeoutMs: 2000 }))).toBe('echo:hi');
      await reg.close();
      await expect(b.requestAgent(agent, enc('hi'), { timeoutMs: 2000 })).rejects.toBeInstanceOf(
        NoRespondersError,
      );
    });

    it('brings a handler error back to the requester as an error', async () => {
      const a = await target.bus();
      const b = await target.peer(a);
      const agent = unique('agent');
      await a.serveAgent(agent, async () => {
        throw new Error('handler exploded');
      });
      const started = Date.now();
      const err = await b.requestAgent(agent, enc('x'), { timeoutMs: 3000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toBe('handler exploded');
      expect(Date.now() - started).toBeLessThan(2000);
    });

    it('rejects with NoRespondersError when nobody serves the agent', async () => {
      const bus = await target.bus();
      const err = await bus
        .requestAgent(unique('nobody'), enc('x'), { timeoutMs: 2000 })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NoRespondersError);
    });

    it('times out a request the handler does not answer in time', async () => {
      const a = await target.bus();
      const b = await target.peer(a);
      const agent = unique('agent');
      let handlerSignal: AbortSignal | undefined;
      await a.serveAgent(agent, (_data, signal) => {
        handlerSignal = signal;
        return new Promise(() => {});
      });
      const err = await b.requestAgent(agent, enc('x'), { timeoutMs: 200 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MeshError);
      expect((err as MeshError).code).toBe('timeout');
      await eventually(() => expect(handlerSignal?.aborted).toBe(true));
    });
  });

  describe('topics', () => {
    it('delivers to patterns with * and >', async () => {
      const a = await target.bus();
      const b = await target.peer(a);
      const ns = unique('t');
      const star: BusMessage[] = [];
      const rest: BusMessage[] = [];
      const r1 = await a.subscribe(`${ns}.market.eu.*`, (m) => star.push(m));
      const r2 = await a.subscribe(`${ns}.alerts.>`, (m) => rest.push(m));
      for (const t of [
        'market.eu.fr',
        'market.eu.fr.paris',
        'market.us.ny',
        'alerts',
        'alerts.cpu',
        'alerts.disk.sda',
      ]) {
        await b.publish(`${ns}.${t}`, enc(t));
      }
      // A last message each subscription matches: once it is in, everything before it is.
      await b.publish(`${ns}.market.eu.end`, enc('end'));
      await b.publish(`${ns}.alerts.end`, enc('end'));
      await eventually(() => expect(star.map((m) => dec(m.data))).toContain('end'));
      await eventually(() => expect(rest.map((m) => dec(m.data))).toContain('end'));
      expect(star.map((m) => m.topic)).toEqual([`${ns}.market.eu.fr`, `${ns}.market.eu.end`]);
      expect(rest.map((m) => m.topic)).toEqual([
        `${ns}.alerts.cpu`,
        `${ns}.alerts.disk.sda`,
        `${ns}.alerts.end`,
      ]);
      await r1.close();
      await b.publish(`${ns}.market.eu.de`, enc('after close'));
      await b.publish(`${ns}.alerts.last`, enc('last'));
      await eventually(() => expect(rest.map((m) => dec(m.data))).toContain('last'));
      expect(star.map((m) => dec(m.data))).not.toContain('after close');
      await r2.close();
    });
  });

  describe('status', () => {
    it('starts connected', async () => {
      const bus = await target.bus();
      expect(bus.connected).toBe(true);
      const it = bus.status()[Symbol.asyncIterator]();
      expect((await it.next()).value).toEqual({ type: 'connected' });
      await it.return?.();
    });

    it('closes idempotently', async () => {
      const bus = await target.bus();
      await bus.close();
      await bus.close();
      expect(bus.connected).toBe(false);
    });
  });
});
