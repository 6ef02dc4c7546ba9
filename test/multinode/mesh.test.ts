import { type CollabEvent, type CollaborationHandle, MeshClient, RpcError } from '@a2a-mesh/client';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startNatsNode } from '../helpers/natsNode.js';
import { startNatsServer } from '../helpers/natsServer.js';
import { eventually } from '../helpers/node.js';

async function client(
  url: string | string[],
  agentId: string,
  extra: Partial<ConstructorParameters<typeof MeshClient>[0]> = {},
) {
  const c = new MeshClient({
    ...(Array.isArray(url) ? { urls: url } : { url }),
    agentId,
    reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
    ...extra,
  });
  onTestFinished(() => c.close());
  await c.connect();
  return c;
}

/** Records a handle's events; a resync (the node could not replay exactly) is recorded as an error. */
function record(handle: CollaborationHandle): CollabEvent[] & { resyncs: number } {
  const seen = Object.assign([] as CollabEvent[], { resyncs: 0 });
  void (async () => {
    for await (const item of handle.events()) {
      if (item.type === 'resync') seen.resyncs++;
      else seen.push(item);
    }
  })();
  return seen;
}

function contiguous(events: CollabEvent[]): boolean {
  return events.every((e, i) => i === 0 || e.offset === events[i - 1]!.offset + 1);
}

describe('multi-node mesh over NATS JetStream', () => {
  it('agents on three nodes see identical gap-free sequences and state; a late joiner on a third node catches up', async () => {
    const nats = await startNatsServer();
    const nodes = await Promise.all(
      ['n1', 'n2', 'n3'].map((id) => startNatsNode(nats.url, id, { snapshotEvery: 20 })),
    );
    const agents = await Promise.all(
      ['a', 'b', 'c', 'd', 'e', 'f'].map((id, i) =>
        client(nodes[i % 2]!.url, id, { codec: i % 3 === 0 ? 'msgpack' : 'json' }),
      ),
    );
    const { collaborationId } = await agents[0]!.startCollaboration({
      topic: 'three nodes',
      state: { items: [] },
    });
    const handles = await Promise.all(agents.map((a) => a.joinCollaboration(collaborationId)));
    const seen = handles.map(record);
    await Promise.all(
      handles.map(async (h, i) => {
        for (let k = 0; k < 15; k++) {
          if (k % 3 === 0) await h.update([{ op: 'add', path: '/items/-', value: `${i}:${k}` }]);
          else await h.share({ i, k });
        }
      }),
    );
    const head = Math.max(...handles.map((h) => h.offset));
    await Promise.all(handles.map((h) => h.waitForOffset(head, { timeoutMs: 10_000 })));
    await eventually(() => expect(seen.every((s) => s.at(-1)?.offset === head)).toBe(true));
    const tail = (s: CollabEvent[]) =>
      JSON.stringify(s.filter((e) => e.offset > 8).map((e) => [e.offset, e.type, e.from, e.data]));
    for (const s of seen) {
      expect(contiguous(s)).toBe(true);
      expect(tail(s)).toBe(tail(seen[0]!));
    }
    for (const h of handles) expect(h.state).toEqual(handles[0]!.state);
    expect((handles[0]!.state as { items: string[] }).items).toHaveLength(6 * 5);

    // Late joiner on the third node: snapshot + tail gives exactly the members' state.
    const late = await client(nodes[2]!.url, 'late');
    const lateHandle = await late.joinCollaboration(collaborationId);
    await handles[0]!.waitForOffset(lateHandle.offset, { timeoutMs: 5000 });
    expect(lateHandle.state).toEqual(handles[0]!.state);
    const info = await late.call('collaboration/get', { collaborationId });
    expect(
      info.members
        .filter((m) => m.online)
        .map((m) => m.agentId)
        .sort(),
    ).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'late']);
  });

  it('concurrent writers on two nodes never produce a duplicate or skipped offset', async () => {
    const nats = await startNatsServer();
    const [n1, n2] = await Promise.all([startNatsNode(nats.url, 'w1'), startNatsNode(nats.url, 'w2')]);
    const writers = await Promise.all([0, 1, 2, 3].map((i) => client((i % 2 ? n2 : n1).url, `w${i}`)));
    const { collaborationId } = await writers[0]!.startCollaboration({ topic: 'race', state: { n: 0 } });
    const handles = await Promise.all(writers.map((w) => w.joinCollaboration(collaborationId)));
    const reader = record(handles[1]!);
    const offsets = (
      await Promise.all(
        handles.map(async (h) => {
          const mine: number[] = [];
          for (let k = 0; k < 60; k++) mine.push((await h.share(k)).offset);
          return mine;
        }),
      )
    ).flat();
    expect(new Set(offsets).size).toBe(offsets.length);
    const sorted = [...offsets].sort((a, b) => a - b);
    expect(sorted.at(-1)! - sorted[0]! + 1).toBe(offsets.length);
    await eventually(() => expect(reader.at(-1)?.offset).toBe(sorted.at(-1)));
    expect(contiguous(reader)).toBe(true);
    const shared = reader.filter((e) => e.type === 'shared').map((e) => e.offset);
    expect(shared).toEqual(sorted);
  });

  it('routes conversations and topics across nodes, sees the directory everywhere, and says AgentUnreachable for an offline agent', async () => {
    const nats = await startNatsServer();
    const [n1, n2] = await Promise.all([startNatsNode(nats.url, 'r1'), startNatsNode(nats.url, 'r2')]);
    const critic = await client(n2.url, 'critic', {
      card: { name: 'Critic', skills: [{ id: 'critique', name: 'Critique', tags: ['review'] }] },
    });
    critic.onConversation(async (turn) => `critic on ${n2.nodeId}: ${turn.message.parts[0]?.text ?? ''}`);
    const asker = await client(n1.url, 'asker');
    const found = await asker.discover({ tag: 'review' });
    expect(found.map((a) => [a.agentId, a.online, a.nodeId])).toEqual([['critic', true, 'r2']]);
    const convo = await asker.startConversation({ to: { skill: 'critique' }, message: 'is this sound?' });
    expect(convo.agentId).toBe('critic');
    expect(convo.reply.parts[0]?.text).toBe('critic on r2: is this sound?');
    const again = await asker.continueConversation(convo.conversationId, 'and now?');
    expect(again.reply.parts[0]?.text).toBe('critic on r2: and now?');
    const history = await critic.conversationHistory(convo.conversationId);
    expect(history.messages.map((m) => m.role)).toEqual([
      'ROLE_USER',
      'ROLE_AGENT',
      'ROLE_USER',
      'ROLE_AGENT',
    ]);

    const sub = await critic.subscribe('market.eu.*');
    const all = await critic.subscribe('market.>');
    const got: string[] = [];
    void (async () => {
      for await (const m of sub) got.push(`one:${m.topic}`);
    })();
    void (async () => {
      for await (const m of all) got.push(`all:${m.topic}`);
    })();
    await asker.publish('market.eu.fr', { p: 1 });
    await asker.publish('market.us', { p: 2 });
    await asker.publish('market.eu.fr.paris', { p: 3 });
    await asker.publish('other.eu.fr', { p: 4 });
    await eventually(() =>
      expect(got.sort()).toEqual([
        'all:market.eu.fr',
        'all:market.eu.fr.paris',
        'all:market.us',
        'one:market.eu.fr',
      ]),
    );

    await critic.close();
    await eventually(async () => expect((await asker.getAgent('critic')).online).toBe(false));
    const err = await asker
      .startConversation({ to: { agentId: 'critic' }, message: 'hello?' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).reason).toBe('agent_unreachable');
  });

  it('fails writes fast with a retryable error while NATS is down, and loses nothing acknowledged across a restart', async () => {
    const nats = await startNatsServer();
    const node = await startNatsNode(nats.url, 'o1', {}, { reconnectTimeWaitMs: 100 });
    const a = await client(node.url, 'outage');
    const { collaborationId } = await a.startCollaboration({ topic: 'outage' });
    const h = await a.joinCollaboration(collaborationId);
    const acked: number[] = [];
    for (let k = 0; k < 20; k++) acked.push((await h.share(`before ${k}`)).offset);

    await nats.kill('SIGKILL');
    await eventually(() => expect(node.bus.connected).toBe(false));
    const started = Date.now();
    const err = await h.share('during', { timeoutMs: 5000 }).catch((e: unknown) => e);
    const tookMs = Date.now() - started;
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).reason).toBe('unavailable');
    expect((err as RpcError).retryable).toBe(true);
    expect(tookMs).toBeLessThan(2000); // fail fast rather than hang until a request timeout
    const ready = await fetch(node.url.replace('ws://', 'http://').replace('/mesh', '/ready'));
    expect(ready.status).toBe(503);

    await nats.restart();
    await eventually(() => expect(node.bus.connected).toBe(true), 15_000);
    await eventually(async () => acked.push((await h.share('after')).offset), 15_000, 200);
    const seen = record(h);
    const history = await h.history({ fromOffset: 1, limit: 1000 });
    const shared = history.events.filter((e) => e.type === 'shared').map((e) => e.offset);
    for (const o of acked) expect(shared).toContain(o);
    expect(history.events.map((e) => e.offset)).toEqual(history.events.map((_, i) => i + 1));
    await h.share('live again');
    await eventually(
      () => expect(seen.some((e) => (e.data as { content?: string }).content === 'live again')).toBe(true),
      10_000,
    );
  });

  it('drains a node: its agents get 4500, reconnect to another node and resume with no gap', async () => {
    const nats = await startNatsServer();
    const [n1, n2] = await Promise.all([startNatsNode(nats.url, 'd1'), startNatsNode(nats.url, 'd2')]);
    const mover = await client([n1.url, n2.url], 'mover');
    const stayer = await client(n2.url, 'stayer');
    const { collaborationId } = await stayer.startCollaboration({ topic: 'drain' });
    const hs = await stayer.joinCollaboration(collaborationId);
    const hm = await mover.joinCollaboration(collaborationId);
    const seen = record(hm);
    for (let k = 0; k < 10; k++) await hs.share(k);
    const drained = n1.drain();
    for (let k = 10; k < 30; k++) await hs.share(k);
    await drained;
    await hm.waitForOffset(hs.offset, { timeoutMs: 10_000 });
    expect(mover.nodeId).toBe('d2');
    await eventually(() => expect(seen.at(-1)?.offset).toBe(hs.offset));
    expect(seen.resyncs).toBe(0);
    expect(contiguous(seen)).toBe(true);
    const contents = seen
      .filter((e) => e.type === 'shared')
      .map((e) => (e.data as { content: number }).content);
    expect(contents).toEqual([...Array(30).keys()]);
    expect(hm.state).toEqual(hs.state);
  });
});
