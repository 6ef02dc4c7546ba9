import { connect, createServer, type Socket } from 'node:net';
import {
  type ClientStatus,
  type CollabItem,
  type CollaborationHandle,
  MeshClient,
  type MeshClientOptions,
} from '@a2a-mesh/client';
import { http2Transport } from '@a2a-mesh/client/node';
import { describe, expect, it, onTestFinished } from 'vitest';
import { testClient } from '../helpers/meshClient.js';
import { eventually, startNode } from '../helpers/node.js';

const client = (options: MeshClientOptions) => testClient({ requestTimeoutMs: 10_000, ...options });

function reader(handle: CollaborationHandle): CollabItem[] {
  const seen: CollabItem[] = [];
  void (async () => {
    for await (const item of handle.events()) seen.push(item);
  })().catch(() => {});
  return seen;
}

function statuses(c: MeshClient): ClientStatus['type'][] {
  const seen: ClientStatus['type'][] = [];
  void (async () => {
    for await (const s of c.status()) seen.push(s.type);
  })();
  return seen;
}

/** A TCP forwarder whose connections can be cut, and which can refuse new ones for a while. */
async function cutter(targetPort: number) {
  const sockets = new Set<Socket>();
  let blocked = false;
  let accepted = 0;
  const server = createServer((inbound) => {
    if (blocked) {
      inbound.destroy();
      return;
    }
    accepted++;
    const outbound = connect(targetPort, '127.0.0.1');
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => {}).on('close', () => {
        sockets.delete(s);
        inbound.destroy();
        outbound.destroy();
      });
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  onTestFinished(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    get accepted() {
      return accepted;
    },
    cutAll() {
      for (const s of sockets) s.destroy();
    },
    block(on: boolean) {
      blocked = on;
    },
  };
}

describe('MeshClient over HTTP/2', () => {
  it('resumes the event stream after a cut connection: same session, every event once', async () => {
    const node = await startNode();
    const proxy = await cutter(node.port);
    const alice = client({ url: proxy.url, transport: http2Transport(), agentId: 'alice' });
    const bob = client({ url: node.httpUrl, transport: http2Transport(), agentId: 'bob' });
    await Promise.all([alice.connect(), bob.connect()]);
    const seenStatus = statuses(alice);
    const session = alice.sessionId;
    const { collaborationId } = await bob.startCollaboration({ topic: 'stream', state: { n: 0 } });
    const b = await bob.joinCollaboration(collaborationId);
    const a = await alice.joinCollaboration(collaborationId);
    const from = a.offset;
    const seen = reader(a);
    for (let i = 1; i <= 60; i++) {
      if (i % 2) await b.share({ i });
      else await b.update([{ op: 'replace', path: '/n', value: i }]);
      // Alice only reads: nothing of hers is in flight when her connection drops.
      if (i === 20 || i === 40) {
        const before = proxy.accepted;
        proxy.cutAll();
        await eventually(() => expect(proxy.accepted).toBe(before + 1));
      }
    }
    await a.waitForOffset(b.offset, { timeoutMs: 5_000 });
    expect(seen.map((i) => i.offset)).toEqual(
      Array.from({ length: b.offset - from }, (_, k) => from + 1 + k),
    );
    expect(a.state).toEqual({ n: 60 });
    expect(a.stats).toEqual({ duplicates: 0, gaps: 0, resyncs: 0 });
    // The stream came back on new connections; the mesh session never changed.
    expect(proxy.accepted).toBe(3);
    expect(alice.sessionId).toBe(session);
    expect(seenStatus).toEqual(['connected']);
  });

  it('reconnects and recovers with since when the node ended the session meanwhile (4008)', async () => {
    const node = await startNode({ maxQueueBytes: 8192 });
    const proxy = await cutter(node.port);
    const alice = client({
      url: proxy.url,
      transport: http2Transport({ resumeWindowMs: 10_000 }),
      agentId: 'alice',
    });
    const bob = client({ url: node.httpUrl, transport: http2Transport(), agentId: 'bob' });
    await Promise.all([alice.connect(), bob.connect()]);
    const errors: string[] = [];
    void (async () => {
      for await (const s of alice.status())
        if (s.type === 'reconnecting') errors.push(String(s.error?.message));
    })();
    const first = alice.sessionId;
    const { collaborationId } = await bob.startCollaboration({ topic: 'lost', state: { n: 0 } });
    const b = await bob.joinCollaboration(collaborationId);
    const a = await alice.joinCollaboration(collaborationId);
    const from = a.offset;
    const seen = reader(a);
    proxy.block(true);
    proxy.cutAll();
    // More than maxQueueBytes for alice while her stream is away: the node ends her session.
    for (let i = 0; i < 16; i++) await b.share('z'.repeat(1000));
    await eventually(() => expect(node.stats().slowConsumerCloses).toBe(1));
    proxy.block(false);
    await eventually(() => expect(alice.connected && alice.sessionId !== first).toBe(true), 10_000);
    await b.share('after');
    await a.waitForOffset(b.offset, { timeoutMs: 5_000 });
    expect(errors[0]).toContain('4008');
    const offsets = seen.filter((i) => i.type !== 'resync').map((i) => i.offset);
    expect(offsets).toEqual(Array.from({ length: a.offset - from }, (_, k) => from + 1 + k));
    expect(a.stats.resyncs).toBe(0);
  });

  it('keeps 200 calls in flight at once on one connection', async () => {
    const node = await startNode();
    const proxy = await cutter(node.port);
    const asker = client({ url: proxy.url, transport: http2Transport(), agentId: 'asker' });
    const helper = client({ url: node.httpUrl, transport: http2Transport(), agentId: 'helper' });
    const n = 200;
    let waiting: (() => void)[] = [];
    // Every turn waits until all 200 have arrived: this only finishes if all are in flight together.
    helper.onConversation(async (turn) => {
      await new Promise<void>((resolve) => {
        waiting.push(resolve);
        if (waiting.length === n) {
          for (const w of waiting) w();
          waiting = [];
        }
      });
      return `re: ${turn.message.parts[0]?.text}`;
    });
    await Promise.all([asker.connect(), helper.connect()]);
    const replies = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        asker.startConversation({ to: { agentId: 'helper' }, message: `q${i}` }),
      ),
    );
    replies.forEach((r, i) => {
      expect(r.reply.parts).toEqual([{ text: `re: q${i}` }]);
    });
    expect(proxy.accepted).toBe(1);
  });

  it('ends its session on the node when closed, so its presence ends at once', async () => {
    const node = await startNode();
    const watcher = client({ url: node.httpUrl, transport: http2Transport(), agentId: 'watcher' });
    const leaver = client({ url: node.httpUrl, transport: http2Transport(), agentId: 'leaver' });
    await Promise.all([watcher.connect(), leaver.connect()]);
    expect((await watcher.getAgent('leaver')).online).toBe(true);
    await leaver.close();
    expect(node.stats().sessions).toBe(1);
    await eventually(async () => expect((await watcher.getAgent('leaver')).online).toBe(false));
  });

  it('accepts the node WebSocket url too, and refuses other schemes', async () => {
    const node = await startNode();
    const c = client({ url: node.url, transport: http2Transport(), agentId: 'from-ws-url' });
    expect((await c.connect()).agentId).toBe('from-ws-url');
    expect(() => new MeshClient({ url: 'ftp://x', transport: http2Transport() })).toThrow(/http\(s\)/);
  });
});
