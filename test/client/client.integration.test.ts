import type { CollabItem, CollaborationHandle, MeshClient } from '@a2a-mesh/client';
import { describe, expect, it, onTestFinished } from 'vitest';
import { EmbeddedBus } from '../../src/index.js';
import { testClient } from '../helpers/meshClient.js';
import { eventually, startNode } from '../helpers/node.js';
import { createTcpProxy } from '../helpers/tcpProxy.js';

const client = testClient;

/** Reads a handle's items in the background. */
function reader(handle: CollaborationHandle): { seen: CollabItem[]; done: Promise<unknown> } {
  const seen: CollabItem[] = [];
  const done = (async () => {
    for await (const item of handle.events()) seen.push(item);
  })().catch((e: unknown) => e);
  return { seen, done };
}

/** Asserts the local copy equals the node's view at the same offset. */
async function expectInSync(c: MeshClient, handle: CollaborationHandle): Promise<void> {
  await eventually(async () => {
    const info = await c.call('collaboration/get', { collaborationId: handle.id });
    expect(handle.offset).toBe(info.offset);
    expect(handle.epoch).toBe(info.epoch);
    expect(handle.state).toEqual(info.state);
    expect([...handle.members.values()]).toEqual(info.members);
  });
}

function expectContiguous(items: CollabItem[], from: number, to: number): void {
  const offsets = items.map((i) => (i.type === 'resync' ? `resync@${i.offset}` : i.offset));
  expect(offsets).toEqual(Array.from({ length: to - from + 1 }, (_, k) => from + k));
}

describe('MeshClient against a mesh node', () => {
  it('connects and says hello over WebSocket and in memory', async () => {
    const node = await startNode();
    const ws = client({ url: node.url, agentId: 'alice', card: { name: 'Alice' } });
    const hello = await ws.connect();
    expect(hello).toMatchObject({ agentId: 'alice', protocolVersion: '1', resumed: false });
    expect(ws.nodeId).toBe(hello.nodeId);
    expect(ws.sessionId).toBe(hello.sessionId);
    const mem = client({ connector: node.connector('msgpack'), agentId: 'bob' });
    await mem.connect();
    const alice = await mem.getAgent('alice');
    expect(alice).toMatchObject({ agentId: 'alice', online: true, card: { name: 'Alice' } });
  });

  it('keeps the local copy equal to collaboration/get through start, join, share and update', async () => {
    const node = await startNode();
    const alice = client({ url: node.url, agentId: 'alice' });
    const bob = client({ url: node.url, agentId: 'bob' });
    await Promise.all([alice.connect(), bob.connect()]);
    const { collaborationId } = await alice.startCollaboration({
      topic: 'Cut meeting time',
      state: { ideas: [], votes: {} },
      members: [{ agentId: 'bob' }],
    });
    const a = await alice.joinCollaboration(collaborationId);
    const b = await bob.joinCollaboration(collaborationId);
    const ra = reader(a);
    await b.share('async updates', { kind: 'idea', idempotencyKey: 'i1' });
    const dup = await b.share('async updates', { kind: 'idea', idempotencyKey: 'i1' });
    expect(dup.duplicate).toBe(true);
    await a.update([{ op: 'add', path: '/ideas/-', value: 'async updates' }]);
    const { offset } = await b.update([{ op: 'add', path: '/votes/bob', value: 1 }], { ifOffset: a.offset });
    await a.setPresence('writing');
    await expect(
      b.update([{ op: 'add', path: '/votes/x', value: 1 }], { ifOffset: 1 }),
    ).rejects.toMatchObject({
      reason: 'state_conflict',
    });
    await a.waitForOffset(offset + 1, { timeoutMs: 2_000 });
    await b.waitForOffset(offset + 1, { timeoutMs: 2_000 });
    expect(a.state).toEqual({ ideas: ['async updates'], votes: { bob: 1 } });
    expect(a.members.get('alice')).toMatchObject({ online: true, status: 'writing' });
    expect(b.state).toEqual(a.state);
    await expectInSync(alice, a);
    await expectInSync(bob, b);
    const history = await a.history({ fromOffset: 1, limit: 100 });
    expect(history.events.map((e) => e.offset)).toEqual(Array.from({ length: a.offset }, (_, k) => k + 1));
    const types = ra.seen.map((i) => i.type);
    expect(types).toContain('shared');
    expect(types).toContain('state');
  });

  it('resumes after the socket is cut mid-stream with no gap and no duplicate', async () => {
    const node = await startNode();
    const proxy = await createTcpProxy(node.port);
    onTestFinished(() => proxy.close());
    const alice = client({ url: `ws://127.0.0.1:${proxy.port}/mesh`, agentId: 'alice' });
    const bob = client({ url: node.url, agentId: 'bob' });
    await Promise.all([alice.connect(), bob.connect()]);
    const { collaborationId } = await bob.startCollaboration({ topic: 'stream', state: { n: 0 } });
    const b = await bob.joinCollaboration(collaborationId);
    const a = await alice.joinCollaboration(collaborationId);
    const start = a.offset;
    const ra = reader(a);
    const firstSession = alice.sessionId;
    const writes = (async () => {
      for (let i = 1; i <= 200; i++) {
        if (i % 2) await b.share({ i });
        else await b.update([{ op: 'replace', path: '/n', value: i }]);
        if (i === 60 || i === 130) proxy.cutAll();
        if (i % 25 === 0) await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await writes;
    await a.waitForOffset(b.offset, { timeoutMs: 10_000 });
    expect(alice.sessionId).not.toBe(firstSession);
    // Events from other members after the last write: alice's own joined/left may follow.
    await expectInSync(alice, a);
    const upTo = a.offset;
    expectContiguous(ra.seen, start + 1, upTo);
    expect(a.stats.duplicates + a.stats.resyncs).toBe(0);
    expect(a.state).toEqual({ n: 200 });
  });

  it('answers a conversation through the handler, found by skill', async () => {
    const node = await startNode();
    const critic = client({
      url: node.url,
      agentId: 'critic',
      card: { name: 'Critic', skills: [{ id: 'critique', name: 'Critique', tags: ['review'] }] },
    });
    critic.onConversation(async (turn) => `critique of: ${turn.message.parts[0]?.text}`);
    const alice = client({ url: node.url, agentId: 'alice', codec: 'msgpack' });
    await Promise.all([critic.connect(), alice.connect()]);
    const found = await alice.discover({ skill: 'critique' });
    expect(found.map((e) => e.agentId)).toEqual(['critic']);
    const start = await alice.startConversation({ to: { skill: 'critique' }, message: 'stand-ups are slow' });
    expect(start.agentId).toBe('critic');
    expect(start.reply.parts).toEqual([{ text: 'critique of: stand-ups are slow' }]);
    const next = await alice.continueConversation(start.conversationId, {
      parts: [{ text: 'and retros?' }],
    });
    expect(next.reply.parts[0]?.text).toBe('critique of: and retros?');
    const history = await alice.conversationHistory(start.conversationId);
    expect(history.messages).toHaveLength(4);
    await alice.endConversation(start.conversationId);
  });

  it('delivers topic messages, and again after a reconnect', async () => {
    const node = await startNode();
    const proxy = await createTcpProxy(node.port);
    onTestFinished(() => proxy.close());
    const sub = client({ url: `ws://127.0.0.1:${proxy.port}/mesh`, agentId: 'watcher' });
    const pub = client({ url: node.url, agentId: 'feed', codec: 'msgpack' });
    await Promise.all([sub.connect(), pub.connect()]);
    const s = await sub.subscribe('market.eu.*');
    const got: unknown[] = [];
    void (async () => {
      for await (const m of s) got.push([m.subscriptionId, m.topic, m.data]);
    })();
    await pub.publish('market.eu.fr', { price: 1 });
    await pub.publish('market.us.ny', { price: 2 });
    await eventually(() => expect(got).toEqual([[s.id, 'market.eu.fr', { price: 1 }]]));
    const before = sub.sessionId;
    proxy.cutAll();
    await eventually(() => expect(sub.connected && sub.sessionId !== before).toBe(true));
    await pub.publish('market.eu.de', { price: 3 });
    await eventually(() => expect(got.at(-1)).toEqual([s.id, 'market.eu.de', { price: 3 }]));
    await s.unsubscribe();
    await pub.publish('market.eu.fr', { price: 4 });
    await new Promise((r) => setTimeout(r, 50));
    expect(got).toHaveLength(2);
  });

  it('lets json and msgpack clients share one collaboration', async () => {
    const node = await startNode();
    const j = client({ url: node.url, agentId: 'json-agent', codec: 'json' });
    const m = client({ url: node.url, agentId: 'msgpack-agent', codec: 'msgpack' });
    await Promise.all([j.connect(), m.connect()]);
    const { collaborationId } = await j.startCollaboration({ topic: 'mixed', state: { items: [] } });
    const hj = await j.joinCollaboration(collaborationId);
    const hm = await m.joinCollaboration(collaborationId);
    const from = hm.offset;
    const rj = reader(hj);
    const rm = reader(hm);
    for (let i = 0; i < 10; i++) {
      await (i % 2 ? hj : hm).update([{ op: 'add', path: '/items/-', value: { i, text: `é ${i} ✓` } }]);
      await (i % 2 ? hm : hj).share({ i, bytes: 'x'.repeat(i * 10) });
    }
    await hj.waitForOffset(hm.offset, { timeoutMs: 2_000 });
    await hm.waitForOffset(hj.offset, { timeoutMs: 2_000 });
    expect(hj.state).toEqual(hm.state);
    await expectInSync(j, hj);
    await expectInSync(m, hm);
    const tail = (items: CollabItem[]) => items.filter((i) => i.offset > from).map((i) => JSON.stringify(i));
    expect(tail(rj.seen)).toEqual(tail(rm.seen));
    expectContiguous(rm.seen, from + 1, hm.offset);
  });

  it('follows a draining node to the next url and recovers its collaborations there', async () => {
    const bus = new EmbeddedBus();
    onTestFinished(() => bus.close());
    const n1 = await startNode({ bus, nodeId: 'n1' });
    const n2 = await startNode({ bus, nodeId: 'n2' });
    const alice = client({ urls: [n1.url, n2.url], agentId: 'alice' });
    const bob = client({ url: n2.url, agentId: 'bob' });
    await Promise.all([alice.connect(), bob.connect()]);
    expect(alice.nodeId).toBe('n1');
    const { collaborationId } = await bob.startCollaboration({ topic: 'failover', state: { n: 0 } });
    const b = await bob.joinCollaboration(collaborationId);
    const a = await alice.joinCollaboration(collaborationId);
    const from = a.offset;
    const ra = reader(a);
    await b.share('before');
    await n1.drain();
    await b.update([{ op: 'replace', path: '/n', value: 1 }]);
    await eventually(() => expect(alice.nodeId).toBe('n2'));
    await b.share('after');
    await a.waitForOffset(b.offset, { timeoutMs: 5_000 });
    await expectInSync(alice, a);
    expectContiguous(ra.seen, from + 1, a.offset);
    expect(a.stats.resyncs).toBe(0);
  });
});
