/**
 * Load for scenario 5: fill one collaboration with a long log (shares, and every N-th event a state
 * update), then time late joins: the SDK's `joinCollaboration` until its local state is ready, and,
 * as the baseline, one raw `ws` request answered with a state of the same size.
 */
import { MeshClient } from '@a2a-mesh/client';
import { mapLimit, openSocket, RawAgent, sleep } from '../lib/rawAgent.js';
import type { LateJoinFillArgs } from '../procs/commands.js';

const held: { close(): void }[] = [];

export async function lateJoinFill(a: LateJoinFillArgs): Promise<{
  collaborationId: string;
  lastOffset: number;
  stateBytes: number;
  state: unknown;
  ms: number;
  retries: number;
  firstError?: string;
}> {
  const t0 = performance.now();
  const writer = await RawAgent.connect(a.url, `${a.prefix}-writer`);
  held.push(writer);
  const { collaborationId } = await writer.call<{ collaborationId: string }>('collaboration/start', {
    topic: 'late join',
    visibility: 'public',
    state: { ideas: [], votes: {} },
  });
  await writer.call('collaboration/join', { collaborationId });
  let failures = 0;
  let firstError: string | undefined;
  const deadline = Date.now() + 60_000;
  const write = async (i: number) => {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        if (i % a.updateEvery === 0) {
          await writer.call('collaboration/update', {
            collaborationId,
            patch: [{ op: 'add', path: '/ideas/-', value: { n: i, text: `idea number ${i}`, by: 'writer' } }],
          });
        } else {
          await writer.call('collaboration/share', {
            collaborationId,
            content: { text: `message ${i}: a line of discussion between agents` },
          });
        }
        return;
      } catch (error) {
        failures++;
        firstError ??= error instanceof Error ? error.message : String(error);
        await sleep(5);
      }
    }
    throw new Error(`event ${i} could not be written: ${firstError}`);
  };
  // Updates are compare-and-set inside the node and lose every race against concurrent shares, so
  // each update runs alone, followed by the shares up to the next update with `window` in flight.
  for (let from = 0; from < a.events; from += a.updateEvery) {
    if (Date.now() > deadline) throw new Error('filling the log took longer than 60 s');
    const chunk = Array.from({ length: Math.min(a.updateEvery, a.events - from) }, (_, k) => from + k);
    const updates = chunk.filter((i) => i % a.updateEvery === 0);
    for (const i of updates) await write(i);
    await mapLimit(
      chunk.filter((i) => i % a.updateEvery !== 0),
      a.window,
      write,
      deadline,
    );
  }
  const info = await writer.call<{ offset: number; state: unknown }>('collaboration/get', {
    collaborationId,
  });
  return {
    collaborationId,
    lastOffset: info.offset,
    stateBytes: Buffer.byteLength(JSON.stringify(info.state)),
    state: info.state,
    ms: performance.now() - t0,
    retries: failures,
    ...(firstError === undefined ? {} : { firstError }),
  };
}

export async function lateJoinMesh(a: {
  url: string;
  collaborationId: string;
  agentId: string;
}): Promise<{ ms: number; offset: number; stateBytes: number }> {
  const client = new MeshClient({ url: a.url, agentId: a.agentId, reconnect: false, heartbeatMs: false });
  try {
    await client.connect();
    const t0 = performance.now();
    const handle = await client.joinCollaboration(a.collaborationId);
    const state = handle.state;
    const ms = performance.now() - t0;
    return { ms, offset: handle.offset, stateBytes: Buffer.byteLength(JSON.stringify(state)) };
  } finally {
    await client.close();
  }
}

export async function lateJoinWs(a: { url: string }): Promise<{ ms: number; stateBytes: number }> {
  const ws = await openSocket(a.url, []);
  try {
    const t0 = performance.now();
    const reply = new Promise<Buffer>((resolve) => ws.once('message', (d: Buffer) => resolve(d)));
    ws.send('{"jsonrpc":"2.0","id":1,"method":"state"}');
    const data = await reply;
    const msg = JSON.parse(data.toString()) as { result: unknown };
    const ms = performance.now() - t0;
    return { ms, stateBytes: Buffer.byteLength(JSON.stringify(msg.result)) };
  } finally {
    ws.terminate();
  }
}

/** Runs the join, share and fold code paths once on a fresh node, so a later timed join is not its first. */
export async function warmNode(a: { url: string; prefix: string }): Promise<null> {
  const agent = await RawAgent.connect(a.url, `${a.prefix}-warm`);
  try {
    const { collaborationId } = await agent.call<{ collaborationId: string }>('collaboration/start', {
      topic: 'warm-up',
      state: { ideas: [] },
    });
    await agent.call('collaboration/join', { collaborationId });
    for (let i = 0; i < 20; i++) await agent.call('collaboration/share', { collaborationId, content: { i } });
    const client = new MeshClient({ url: a.url, agentId: `${a.prefix}-warm2`, reconnect: false });
    await client.connect();
    await client.joinCollaboration(collaborationId);
    await client.close();
  } finally {
    agent.close();
  }
  return null;
}

export function lateJoinClose(): void {
  for (const h of held.splice(0)) h.close();
}
