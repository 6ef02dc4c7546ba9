import {
  CloseCode,
  type CollabEvent,
  type EventType,
  type HandlerContext,
  type Json,
  RpcError,
} from '@a2a-mesh/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { type CollabItem, MeshClient, type MeshClientOptions } from '../../packages/client/src/index.js';
import { CollabReplica } from '../../packages/client/src/replica.js';
import { eventually, type FakeConn, FakeNode } from './fakeNode.js';

/**
 * A scripted collaboration log on the fake node: answers collaboration/join with or without recovery
 * and streams appended events to joined connections, in order.
 */
class FakeCollab {
  readonly id = 'c1';
  epoch = 'e1';
  log: CollabEvent[] = [];
  readonly joined = new Set<FakeConn>();
  /** When false, joins with `since` are answered with a full copy. */
  canRecover = true;

  constructor(node: FakeNode) {
    this.append(
      'started',
      {
        topic: 'board',
        visibility: 'public',
        metadata: {},
        state: { ideas: [] },
        members: [{ agentId: 'alice', role: 'owner' }],
      },
      false,
    );
    node.handle('collaboration/join', (params, conn, ctx) => this.answerJoin(params, conn, ctx));
  }

  /** Answers collaboration/join: recovered from `since` when possible, else a full copy; then streams. */
  answerJoin(params: Record<string, unknown>, conn: FakeConn, ctx: HandlerContext): unknown {
    if (params.collaborationId !== this.id)
      throw RpcError.of('CollaborationNotFound', 'no such collaboration');
    const since = params.since as { epoch: string; offset: number } | undefined;
    const head = this.log.length;
    const recovered = !!since && this.canRecover && since.epoch === this.epoch && since.offset <= head;
    const from = recovered ? since.offset : head;
    ctx.afterResponse(() => {
      for (const ev of this.log.slice(from)) conn.notify('collaboration/event', ev);
      this.joined.add(conn);
    });
    const base = { collaborationId: this.id, topic: 'board', epoch: this.epoch, role: 'owner' as const };
    if (recovered) return { ...base, offset: from, recovered: true };
    const copy = this.fold();
    return {
      ...base,
      offset: head,
      recovered: false,
      state: copy.state,
      members: [...copy.members.values()],
    };
  }

  fold(): CollabReplica {
    const r = new CollabReplica({ epoch: this.epoch, offset: 0, state: null, members: [] });
    for (const ev of this.log) r.apply(ev);
    return r;
  }

  event(offset: number, type: EventType, data: Json): CollabEvent {
    return { collaborationId: this.id, epoch: this.epoch, offset, type, from: 'alice', at: offset, data };
  }

  /** Appends an event and (unless `send` is false) streams it to every joined live connection. */
  append(type: EventType, data: Json, send = true): CollabEvent {
    const ev = this.event(this.log.length + 1, type, data);
    this.log.push(ev);
    if (send) for (const conn of this.joined) if (!conn.closed) conn.notify('collaboration/event', ev);
    return ev;
  }

  /** Sends a raw event to every joined connection, bypassing the log. */
  sendRaw(ev: CollabEvent): void {
    for (const conn of this.joined) if (!conn.closed) conn.notify('collaboration/event', ev);
  }
}

const clients: MeshClient[] = [];

function client(node: FakeNode, options: Partial<MeshClientOptions> = {}): MeshClient {
  const c = new MeshClient({
    connector: node.connector(),
    agentId: 'alice',
    reconnect: { initialDelayMs: 1, maxDelayMs: 5 },
    recoveryGraceMs: 0,
    ...options,
  });
  clients.push(c);
  return c;
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

/** Reads items from an iterator in the background. */
function reader(items: AsyncIterable<CollabItem>): { seen: CollabItem[]; done: Promise<unknown> } {
  const seen: CollabItem[] = [];
  const done = (async () => {
    for await (const item of items) seen.push(item);
  })().catch((e: unknown) => e);
  return { seen, done };
}

const offsets = (items: CollabItem[]) =>
  items.map((i) => (i.type === 'resync' ? `resync@${i.offset}` : i.offset));

async function setup(options: Partial<MeshClientOptions> = {}) {
  const node = new FakeNode();
  const collab = new FakeCollab(node);
  const c = client(node, options);
  await c.connect();
  return { node, collab, c };
}

describe('CollaborationHandle', () => {
  it('loads the copy on join and folds live events in order', async () => {
    const { collab, c } = await setup();
    collab.append('state', { patch: [{ op: 'add', path: '/ideas/-', value: 'a' }] }, false);
    const h = await c.joinCollaboration('c1');
    expect(h.offset).toBe(2);
    expect(h.state).toEqual({ ideas: ['a'] });
    expect(h.topic).toBe('board');
    expect(h.role).toBe('owner');
    expect(await c.joinCollaboration('c1')).toBe(h);
    collab.append('joined', { agentId: 'bob', role: 'member' });
    collab.append('state', { patch: [{ op: 'add', path: '/ideas/-', value: 'b' }] });
    collab.append('presence', { agentId: 'bob', status: 'typing' });
    await h.waitForOffset(5, { timeoutMs: 1_000 });
    // The first iterator gets everything since the join, even when it starts late.
    const { seen } = reader(h.events());
    await eventually(() => expect(offsets(seen)).toEqual([3, 4, 5]));
    expect(h.state).toEqual(collab.fold().state);
    expect([...h.members.values()]).toEqual([...collab.fold().members.values()]);
  });

  it('holds events that arrive with the join response and drops duplicates', async () => {
    const { collab, c } = await setup();
    collab.canRecover = true;
    const h = await c.joinCollaboration('c1');
    const { seen } = reader(h.events());
    const e2 = collab.append('shared', { content: 'x' });
    collab.sendRaw(e2);
    collab.sendRaw(collab.log[0]!);
    collab.append('shared', { content: 'y' });
    await eventually(() => expect(offsets(seen)).toEqual([2, 3]));
    expect(h.stats.duplicates).toBe(2);
  });

  it('re-joins with since on a gap and gets every event once', async () => {
    const { node, collab, c } = await setup();
    const h = await c.joinCollaboration('c1');
    const { seen } = reader(h.events());
    collab.append('shared', { content: 2 });
    collab.append('shared', { content: 3 }, false); // lost on the way
    collab.append('state', { patch: [{ op: 'replace', path: '/ideas', value: ['z'] }] });
    await eventually(() => expect(offsets(seen)).toEqual([2, 3, 4]));
    const joins = node.calls('collaboration/join');
    expect(joins).toHaveLength(2);
    expect(joins[1]?.params).toEqual({ collaborationId: 'c1', since: { epoch: 'e1', offset: 2 } });
    expect(h.stats.gaps).toBeGreaterThanOrEqual(1);
    expect(h.state).toEqual({ ideas: ['z'] });
  });

  it('waits out the grace period after a join before re-joining on a gap', async () => {
    const { node, collab, c } = await setup({ recoveryGraceMs: 60 });
    const h = await c.joinCollaboration('c1');
    collab.append('shared', { content: 2 }, false);
    collab.append('shared', { content: 3 });
    await new Promise((r) => setTimeout(r, 20));
    expect(node.calls('collaboration/join')).toHaveLength(1);
    await h.waitForOffset(3, { timeoutMs: 1_000 });
    expect(node.calls('collaboration/join')).toHaveLength(2);
  });

  it('resumes after a cut with no gap and no duplicate', async () => {
    const { node, collab, c } = await setup();
    const h = await c.joinCollaboration('c1');
    const { seen } = reader(h.events());
    collab.append('shared', { content: 2 });
    await h.waitForOffset(2);
    node.accepting = false;
    node.last.close(CloseCode.SlowConsumer, 'slow consumer');
    collab.append('shared', { content: 3 });
    collab.append('joined', { agentId: 'bob', role: 'member' });
    node.accepting = true;
    await h.waitForOffset(4, { timeoutMs: 2_000 });
    collab.append('shared', { content: 5 });
    await eventually(() => expect(offsets(seen)).toEqual([2, 3, 4, 5]));
    expect(node.calls('mesh/hello')[1]?.params).toMatchObject({ resume: 's1' });
    expect(node.calls('collaboration/join')[1]?.params).toEqual({
      collaborationId: 'c1',
      since: { epoch: 'e1', offset: 2 },
    });
    expect(h.stats).toMatchObject({ duplicates: 0, resyncs: 0 });
  });

  it('yields a resync when the node cannot recover, then continues from the new offset', async () => {
    const { node, collab, c } = await setup();
    const h = await c.joinCollaboration('c1');
    const { seen } = reader(h.events());
    collab.canRecover = false;
    node.last.close(CloseCode.NodeDraining);
    collab.append('state', { patch: [{ op: 'add', path: '/ideas/-', value: 'lost' }] }, false);
    await eventually(() => expect(offsets(seen)).toEqual(['resync@2']));
    expect(h.state).toEqual({ ideas: ['lost'] });
    expect(seen[0]).toMatchObject({ type: 'resync', state: { ideas: ['lost'] }, epoch: 'e1' });
    collab.append('shared', { content: 3 });
    await eventually(() => expect(offsets(seen)).toEqual(['resync@2', 3]));
    expect(h.stats.resyncs).toBe(1);
  });

  it('re-joins from scratch when a new epoch shows up', async () => {
    const { node, collab, c } = await setup();
    const h = await c.joinCollaboration('c1');
    const { seen } = reader(h.events());
    collab.epoch = 'e2';
    collab.log = collab.log.map((e) => ({ ...e, epoch: 'e2' }));
    collab.append('shared', { content: 2 });
    await eventually(() => expect(offsets(seen)).toEqual(['resync@2']));
    expect(h.epoch).toBe('e2');
    expect(node.calls('collaboration/join')[1]?.params).toMatchObject({ since: { epoch: 'e1', offset: 1 } });
  });

  it('ends iterators after the ended event and fails waits it can no longer reach', async () => {
    const { collab, c } = await setup();
    const h = await c.joinCollaboration('c1');
    const { seen, done } = reader(h.events());
    const far = h.waitForOffset(10).catch((e: unknown) => e);
    collab.append('ended', {});
    expect(await done).toBeUndefined();
    expect(offsets(seen)).toEqual([2]);
    expect(h.ended).toBe(true);
    expect(h.closed).toBe(true);
    expect(await far).toMatchObject({ code: 'closed' });
    expect(c.collaboration('c1')).toBeUndefined();
  });

  it('times out waitForOffset', async () => {
    const { c } = await setup();
    const h = await c.joinCollaboration('c1');
    await expect(h.waitForOffset(5, { timeoutMs: 10 })).rejects.toMatchObject({ code: 'timeout' });
  });

  it('leave() closes the handle and stops re-joining it', async () => {
    const { node, collab, c } = await setup();
    node.handle('collaboration/leave', () => ({ offset: 2 }));
    const h = await c.joinCollaboration('c1');
    const { done } = reader(h.events());
    await h.leave();
    expect(await done).toBeUndefined();
    node.last.close(CloseCode.NodeDraining);
    collab.append('shared', { content: 'after' });
    await eventually(() => expect(node.calls('mesh/hello')).toHaveLength(2));
    await c.call('collaboration/leave', { collaborationId: 'c1' });
    expect(node.calls('collaboration/join')).toHaveLength(1);
  });

  it('rejects joining a collaboration that does not exist', async () => {
    const { c } = await setup();
    await expect(c.joinCollaboration('nope')).rejects.toMatchObject({ reason: 'collaboration_not_found' });
    expect(c.collaboration('nope')).toBeUndefined();
  });

  it('fails iterators when a re-join after reconnect is refused', async () => {
    const { node, c } = await setup();
    const h = await c.joinCollaboration('c1');
    const { done } = reader(h.events());
    node.handle('collaboration/join', () => {
      throw RpcError.of('NotAMember', 'removed');
    });
    node.last.close(CloseCode.NodeDraining);
    expect(await done).toMatchObject({ reason: 'not_a_member' });
    expect(h.closed).toBe(true);
  });

  it('starts a late first iterator with a resync once too much was buffered for it', async () => {
    const { collab, c } = await setup();
    const h = await c.joinCollaboration('c1');
    for (let i = 0; i < 10_050; i++) collab.append('shared', { content: i });
    await h.waitForOffset(10_051, { timeoutMs: 5_000 });
    const { seen } = reader(h.events());
    collab.append('shared', { content: 'live' });
    await eventually(() => expect(offsets(seen)).toEqual(['resync@10051', 10_052]));
  });

  it('completes a join whose connection drops while it is in flight', async () => {
    const node = new FakeNode();
    const collab = new FakeCollab(node);
    const c = client(node);
    await c.connect();
    let first = true;
    node.handle('collaboration/join', (params, conn, ctx) => {
      if (!first) return collab.answerJoin(params, conn, ctx);
      first = false;
      queueMicrotask(() => conn.close(CloseCode.NodeDraining));
      return new Promise(() => {});
    });
    const h = await c.joinCollaboration('c1', { timeoutMs: 2_000 });
    expect(h.offset).toBe(collab.log.length);
    expect(node.calls('mesh/hello')).toHaveLength(2);
  });

  it('waits for the reconnect when joining while disconnected, and fails fast before connect()', async () => {
    const node = new FakeNode();
    new FakeCollab(node);
    const idle = client(node);
    await expect(idle.joinCollaboration('c1')).rejects.toThrow(/connect\(\) first/);
    const c = client(node, { reconnect: { initialDelayMs: 30, maxDelayMs: 30, random: () => 0.99 } });
    await c.connect();
    node.last.close(CloseCode.NodeDraining);
    await eventually(() => expect(c.connected).toBe(false));
    const h = await c.joinCollaboration('c1', { timeoutMs: 2_000 });
    expect(h.offset).toBe(1);
    expect(c.sessionId).toBe('s2');
  });

  it('passes share, update, presence and history through with the collaboration id', async () => {
    const { node, c } = await setup();
    node
      .handle('collaboration/share', () => ({ offset: 2, duplicate: false }))
      .handle('collaboration/update', () => ({ offset: 3 }))
      .handle('collaboration/presence', () => ({ offset: 4 }))
      .handle('collaboration/history', () => ({ epoch: 'e1', firstOffset: 1, lastOffset: 1, events: [] }));
    const h = await c.joinCollaboration('c1');
    await h.share({ idea: 1 }, { kind: 'idea', idempotencyKey: 'k1' });
    await h.update([{ op: 'add', path: '/x', value: 1 }], { ifOffset: 2 });
    await h.setPresence('typing');
    await h.history({ fromOffset: 1, limit: 10 });
    expect(node.received.slice(-4).map((r) => r.params)).toEqual([
      { collaborationId: 'c1', content: { idea: 1 }, kind: 'idea', idempotencyKey: 'k1' },
      { collaborationId: 'c1', patch: [{ op: 'add', path: '/x', value: 1 }], ifOffset: 2 },
      { collaborationId: 'c1', status: 'typing' },
      { collaborationId: 'c1', fromOffset: 1, limit: 10 },
    ]);
  });
});

describe('TopicSubscription', () => {
  it('maps new subscription ids after a reconnect and unsubscribes with the current one', async () => {
    const node = new FakeNode();
    let n = 0;
    node.handle('topics/subscribe', (_params, conn, ctx) => {
      const id = `sub${++n}`;
      // A message right behind the response must not be lost while the result is on its way.
      ctx.afterResponse(() =>
        conn.notify('topics/message', {
          subscriptionId: id,
          topic: 'market.eu.fr',
          from: 'bob',
          data: n,
          at: 1,
        }),
      );
      return { subscriptionId: id };
    });
    node.handle('topics/unsubscribe', () => ({}));
    const c = client(node);
    await c.connect();
    const sub = await c.subscribe('market.eu.*');
    expect(sub.id).toBe('sub1');
    const got: unknown[] = [];
    const done = (async () => {
      for await (const m of sub) got.push([m.subscriptionId, m.data]);
    })();
    node.last.close(CloseCode.NodeDraining);
    await eventually(() => expect(sub.serverId).toBe('sub2'));
    node.last.notify('topics/message', {
      subscriptionId: 'sub2',
      topic: 'market.eu.de',
      from: 'bob',
      data: 'x',
      at: 2,
    });
    await eventually(() =>
      expect(got).toEqual([
        ['sub1', 1],
        ['sub1', 2],
        ['sub1', 'x'],
      ]),
    );
    await sub.unsubscribe();
    await done;
    expect(node.calls('topics/unsubscribe')[0]?.params).toEqual({ subscriptionId: 'sub2' });
  });

  it('unsubscribes when the consumer breaks out of the loop', async () => {
    const node = new FakeNode();
    node.handle('topics/subscribe', () => ({ subscriptionId: 'only' }));
    node.handle('topics/unsubscribe', () => ({}));
    const c = client(node);
    await c.connect();
    const sub = await c.subscribe('alerts.>');
    node.last.notify('topics/message', {
      subscriptionId: 'only',
      topic: 'alerts.a',
      from: 'x',
      data: 1,
      at: 1,
    });
    for await (const m of sub) {
      expect(m.data).toBe(1);
      break;
    }
    await eventually(() => expect(node.calls('topics/unsubscribe')).toHaveLength(1));
    expect(sub.closed).toBe(true);
  });

  it('drops messages beyond maxBuffered and counts them', async () => {
    const node = new FakeNode();
    node.handle('topics/subscribe', () => ({ subscriptionId: 's' }));
    const c = client(node);
    await c.connect();
    const sub = await c.subscribe('a.*', { maxBuffered: 2 });
    for (let i = 0; i < 5; i++)
      node.last.notify('topics/message', { subscriptionId: 's', topic: 'a.b', from: 'x', data: i, at: i });
    await eventually(() => expect(sub.dropped).toBe(3));
  });
});
