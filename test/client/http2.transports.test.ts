import type { CollabItem, CollaborationHandle, MeshClient, MeshClientOptions } from '@a2a-mesh/client';
import { http2Transport } from '@a2a-mesh/client/node';
import { describe, expect, it, onTestFinished } from 'vitest';
import { EmbeddedBus, type MeshNode } from '../../src/index.js';
import { testClient } from '../helpers/meshClient.js';
import { eventually, startNode } from '../helpers/node.js';

/** The transports a MeshClient can use against a listening node; every test below runs on each. */
const transports = [
  { name: 'WebSocket', url: (node: MeshNode) => node.url, options: {} },
  { name: 'HTTP/2', url: (node: MeshNode) => node.httpUrl, options: { transport: http2Transport() } },
] as const satisfies readonly { name: string; url(node: MeshNode): string; options: MeshClientOptions }[];
type Transport = (typeof transports)[number];

/** Client options that reach `node` over `t`. */
function at(t: Transport, node: MeshNode): MeshClientOptions {
  return { url: t.url(node), ...t.options };
}

const client = testClient;

function reader(handle: CollaborationHandle): { seen: CollabItem[] } {
  const seen: CollabItem[] = [];
  void (async () => {
    for await (const item of handle.events()) seen.push(item);
  })().catch(() => {});
  return { seen };
}

async function expectInSync(c: MeshClient, handle: CollaborationHandle): Promise<void> {
  await eventually(async () => {
    const info = await c.call('collaboration/get', { collaborationId: handle.id });
    expect(handle.offset).toBe(info.offset);
    expect(handle.epoch).toBe(info.epoch);
    expect(handle.state).toEqual(info.state);
    expect([...handle.members.values()]).toEqual(info.members);
  });
}

/** An event without what differs from run to run (times, ids, epochs). */
function normalized(items: CollabItem[]): string[] {
  return items.map((i) =>
    JSON.stringify(i, (key, value) => (['at', 'epoch', 'collaborationId'].includes(key) ? undefined : value)),
  );
}

/**
 * The collaboration integration: start, join, share (with an idempotent retry), updates with a
 * winning and a losing ifOffset, presence; both members see the same events and their local copies
 * equal `collaboration/get`. Returns what the second member saw, normalized.
 */
async function collaborationScenario(node: MeshNode, t: Transport): Promise<string[]> {
  const alice = client({ ...at(t, node), agentId: 'alice' });
  const bob = client({ ...at(t, node), agentId: 'bob' });
  await Promise.all([alice.connect(), bob.connect()]);
  const { collaborationId } = await alice.startCollaboration({
    topic: 'Cut meeting time',
    state: { ideas: [], votes: {} },
    members: [{ agentId: 'bob' }],
  });
  const a = await alice.joinCollaboration(collaborationId);
  const b = await bob.joinCollaboration(collaborationId);
  const from = b.offset;
  const ra = reader(a);
  const rb = reader(b);
  const first = await b.share('async updates', { kind: 'idea', idempotencyKey: 'i1' });
  const retry = await b.share('async updates', { kind: 'idea', idempotencyKey: 'i1' });
  expect(retry).toEqual({ offset: first.offset, duplicate: true });
  await a.update([{ op: 'add', path: '/ideas/-', value: 'async updates' }]);
  await a.waitForOffset(a.offset, { timeoutMs: 2_000 });
  await b.waitForOffset(a.offset, { timeoutMs: 2_000 });
  const { offset } = await b.update([{ op: 'add', path: '/votes/bob', value: 1 }], { ifOffset: b.offset });
  await expect(
    b.update([{ op: 'add', path: '/votes/late', value: 1 }], { ifOffset: 1 }),
  ).rejects.toMatchObject({
    reason: 'state_conflict',
    data: { currentOffset: offset, stateOffset: offset },
  });
  await a.setPresence('writing');
  await a.waitForOffset(offset + 1, { timeoutMs: 2_000 });
  await b.waitForOffset(offset + 1, { timeoutMs: 2_000 });
  expect(a.state).toEqual({ ideas: ['async updates'], votes: { bob: 1 } });
  expect(b.state).toEqual(a.state);
  expect(a.members.get('alice')).toMatchObject({ online: true, status: 'writing' });
  await expectInSync(alice, a);
  await expectInSync(bob, b);
  const tail = (items: CollabItem[]) => items.filter((i) => i.offset > from);
  await eventually(() => expect(tail(rb.seen).at(-1)?.offset).toBe(offset + 1));
  await eventually(() => expect(tail(ra.seen).at(-1)?.offset).toBe(offset + 1));
  expect(normalized(tail(ra.seen))).toEqual(normalized(tail(rb.seen)));
  expect(tail(rb.seen).map((i) => i.offset)).toEqual(
    Array.from({ length: offset + 1 - from }, (_, k) => from + 1 + k),
  );
  return normalized(tail(rb.seen));
}

describe.each(transports)('MeshClient over $name (transport equivalence)', (t) => {
  it('says hello and keeps the local copy equal to the node through a collaboration', async () => {
    const node = await startNode();
    const seen = await collaborationScenario(node, t);
    expect(seen.map((s) => JSON.parse(s).type)).toEqual(['shared', 'state', 'state', 'presence']);
  });

  it('answers a conversation through the handler, found by skill', async () => {
    const node = await startNode();
    const critic = client({
      ...at(t, node),
      agentId: 'critic',
      card: { name: 'Critic', skills: [{ id: 'critique', name: 'Critique', tags: ['review'] }] },
    });
    critic.onConversation(async (turn) => `critique of: ${turn.message.parts[0]?.text}`);
    const ended: string[] = [];
    critic.onConversationEnded((p) => ended.push(p.conversationId));
    const alice = client({ ...at(t, node), agentId: 'alice' });
    await Promise.all([critic.connect(), alice.connect()]);
    expect((await alice.discover({ skill: 'critique' })).map((e) => e.agentId)).toEqual(['critic']);
    const start = await alice.startConversation({ to: { skill: 'critique' }, message: 'stand-ups are slow' });
    expect(start.agentId).toBe('critic');
    expect(start.reply.parts).toEqual([{ text: 'critique of: stand-ups are slow' }]);
    const next = await alice.continueConversation(start.conversationId, { parts: [{ text: 'and retros?' }] });
    expect(next.reply.parts[0]?.text).toBe('critique of: and retros?');
    expect((await alice.conversationHistory(start.conversationId)).messages).toHaveLength(4);
    await alice.endConversation(start.conversationId);
    await eventually(() => expect(ended).toEqual([start.conversationId]));
  });

  it('delivers topic messages to matching subscriptions only', async () => {
    const node = await startNode();
    const sub = client({ ...at(t, node), agentId: 'watcher' });
    const pub = client({ ...at(t, node), agentId: 'feed' });
    await Promise.all([sub.connect(), pub.connect()]);
    const s = await sub.subscribe('market.eu.*');
    const got: unknown[] = [];
    void (async () => {
      for await (const m of s) got.push([m.topic, m.from, m.data]);
    })();
    await pub.publish('market.eu.fr', { price: 1 });
    await pub.publish('market.us.ny', { price: 2 });
    await pub.publish('market.eu.de', { price: 3 });
    await eventually(() =>
      expect(got).toEqual([
        ['market.eu.fr', 'feed', { price: 1 }],
        ['market.eu.de', 'feed', { price: 3 }],
      ]),
    );
    await s.unsubscribe();
    await pub.publish('market.eu.fr', { price: 4 });
    await new Promise((r) => setTimeout(r, 50));
    expect(got).toHaveLength(2);
  });

  it('follows a draining node to the next url and recovers its collaboration there', async () => {
    const bus = new EmbeddedBus();
    onTestFinished(() => bus.close());
    const n1 = await startNode({ bus, nodeId: 'n1' });
    const n2 = await startNode({ bus, nodeId: 'n2' });
    const alice = client({ urls: [t.url(n1), t.url(n2)], ...t.options, agentId: 'alice' });
    const bob = client({ ...at(t, n2), agentId: 'bob' });
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
    expect(ra.seen.map((i) => i.offset)).toEqual(
      Array.from({ length: a.offset - from }, (_, k) => from + 1 + k),
    );
    expect(a.stats.resyncs).toBe(0);
  });
});

describe('WebSocket and HTTP/2 side by side', () => {
  it('produce the same events for the same collaboration script', async () => {
    const [ws, h2] = await Promise.all(
      transports.map(async (t) => collaborationScenario(await startNode(), t)),
    );
    expect(h2).toEqual(ws);
  });

  it('serve one collaboration to members on different transports with identical streams', async () => {
    const node = await startNode();
    const [wsT, h2T] = transports;
    const w = client({ ...at(wsT, node), agentId: 'ws-member' });
    const h = client({ ...at(h2T, node), agentId: 'h2-member' });
    await Promise.all([w.connect(), h.connect()]);
    const { collaborationId } = await w.startCollaboration({ topic: 'mixed', state: { items: [] } });
    const hw = await w.joinCollaboration(collaborationId);
    const hh = await h.joinCollaboration(collaborationId);
    const from = hh.offset;
    const rw = reader(hw);
    const rh = reader(hh);
    for (let i = 0; i < 20; i++) {
      const [writer] = i % 2 ? [hw] : [hh];
      if (i % 3) await writer.share({ i, text: `é ${i} ✓` });
      else await writer.update([{ op: 'add', path: '/items/-', value: i }]);
    }
    await hw.waitForOffset(hh.offset, { timeoutMs: 2_000 });
    await hh.waitForOffset(hw.offset, { timeoutMs: 2_000 });
    expect(hw.state).toEqual(hh.state);
    const tail = (items: CollabItem[]) => items.filter((i) => i.offset > from).map((i) => JSON.stringify(i));
    await eventually(() => expect(tail(rw.seen)).toHaveLength(20));
    await eventually(() => expect(tail(rh.seen)).toEqual(tail(rw.seen)));
    await expectInSync(h, hh);
  });
});
