import { type CollaborationHandle, MeshClient, MeshError, RpcError } from '@a2a-mesh/client';
import type { Json } from '@a2a-mesh/protocol';
import { seededRandom } from '../../src/util/random.js';
import { createTcpProxy, type TcpProxy } from './tcpProxy.js';

export { seededRandom };

/** Retries an idempotent read that raced a cut connection (the client never retries in-flight calls). */
async function reread<T>(read: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await read();
    } catch (error) {
      const lost = error instanceof MeshError && error.code === 'connection_lost';
      if (!lost || attempt >= 20) throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** The seed for a run: `INVARIANT_SEED` when set, else random. */
export function pickSeed(): number {
  const env = process.env.INVARIANT_SEED;
  return env ? Number(env) : Math.floor(Math.random() * 2 ** 31);
}

/** Settings of one invariant run. */
export interface InvariantOptions {
  seed: number;
  /** Node WebSocket endpoints; agent i starts on node i mod n and fails over through the others. */
  urls: string[];
  agents: number;
  steps: number;
  /** Called before each step; may kill or restart nodes. */
  beforeStep?: (step: number, random: () => number) => Promise<void>;
  /** Log a line per step (for debugging a seed). */
  trace?: (line: string) => void;
}

/** What one run saw. */
export interface InvariantReport {
  seed: number;
  finalOffset: number;
  eventsChecked: number;
  disconnects: number;
  resyncs: number;
  problems: string[];
}

interface Agent {
  id: string;
  client: MeshClient;
  proxies: TcpProxy[];
  handle: CollaborationHandle | undefined;
  /** Offsets received, per contiguous segment (a new segment starts at a join or a resync). */
  segments: number[][];
  reader: Promise<void> | undefined;
}

/**
 * Seeded random join/leave/share/update/disconnect run against one collaboration. Afterwards:
 * every agent's received offsets are contiguous within each segment, every offset carries the same
 * event for everyone, and every joined agent's local state equals the node's state at the same offset.
 */
export async function runInvariant(options: InvariantOptions): Promise<InvariantReport> {
  const random = seededRandom(options.seed);
  const trace = options.trace ?? (() => {});
  const problems: string[] = [];
  const canonical = new Map<number, string>();
  let disconnects = 0;
  let resyncs = 0;
  const agents: Agent[] = [];
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;

  const read = (agent: Agent, handle: CollaborationHandle) => {
    agent.segments.push([]);
    return (async () => {
      for await (const item of handle.events()) {
        if (item.type === 'resync') {
          resyncs++;
          agent.segments.push([]);
          continue;
        }
        const seg = agent.segments.at(-1)!;
        const prev = seg.at(-1);
        if (prev !== undefined && item.offset !== prev + 1) {
          problems.push(`${agent.id}: offset ${item.offset} after ${prev} (gap or duplicate)`);
        }
        seg.push(item.offset);
        const body = JSON.stringify({ type: item.type, from: item.from, at: item.at, data: item.data });
        const seen = canonical.get(item.offset);
        if (seen === undefined) canonical.set(item.offset, body);
        else if (seen !== body)
          problems.push(`${agent.id}: offset ${item.offset} differs: ${body} vs ${seen}`);
      }
    })().catch((error: unknown) => {
      problems.push(`${agent.id}: event stream failed: ${String(error)}`);
    });
  };

  try {
    for (let i = 0; i < options.agents; i++) {
      const proxies = await Promise.all(options.urls.map((u) => createTcpProxy(Number(new URL(u).port))));
      const rotated = proxies.map((_, k) => proxies[(i + k) % proxies.length]!);
      const id = `agent${i}`;
      const client = new MeshClient({
        urls: rotated.map((p) => `ws://127.0.0.1:${p.port}/mesh`),
        agentId: id,
        codec: i % 2 === 0 ? 'json' : 'msgpack',
        reconnect: { initialDelayMs: 10, maxDelayMs: 200 },
        requestTimeoutMs: 10_000,
      });
      await client.connect();
      agents.push({ id, client, proxies, handle: undefined, segments: [], reader: undefined });
    }
    const owner = agents[0]!;
    const { collaborationId } = await owner.client.startCollaboration({
      topic: `invariant ${options.seed}`,
      state: { counter: 0, items: [] },
    });

    for (let step = 0; step < options.steps; step++) {
      await options.beforeStep?.(step, random);
      const agent = pick(agents);
      const roll = random();
      try {
        if (!agent.handle) {
          if (roll < 0.8) {
            trace(`${step} ${agent.id} join`);
            const handle = await agent.client.joinCollaboration(collaborationId);
            agent.handle = handle;
            agent.reader = read(agent, handle);
          }
          continue;
        }
        const h = agent.handle;
        if (roll < 0.4) {
          const key = random() < 0.3 ? `k${Math.floor(random() * 5)}` : undefined;
          trace(`${step} ${agent.id} share ${key ?? ''}`);
          await h.share({ step, by: agent.id }, key ? { idempotencyKey: key } : {});
        } else if (roll < 0.65) {
          const cas = random() < 0.5;
          const patch =
            random() < 0.5
              ? [{ op: 'replace' as const, path: '/counter', value: step as Json }]
              : [{ op: 'add' as const, path: '/items/-', value: `${agent.id}@${step}` as Json }];
          trace(`${step} ${agent.id} update${cas ? ' cas' : ''}`);
          try {
            await h.update(patch, cas ? { ifOffset: h.offset } : {});
          } catch (error) {
            if (!(error instanceof RpcError && error.reason === 'state_conflict')) throw error;
          }
        } else if (roll < 0.75) {
          trace(`${step} ${agent.id} presence`);
          await h.setPresence(pick(['thinking', 'idle', 'writing']));
        } else if (roll < 0.9) {
          trace(`${step} ${agent.id} disconnect`);
          disconnects++;
          for (const p of agent.proxies) p.cutAll();
        } else {
          trace(`${step} ${agent.id} leave`);
          await h.leave();
          await agent.reader;
          agent.handle = undefined;
        }
      } catch (error) {
        // Calls racing a cut connection may fail with a retryable error; the invariants still must hold.
        if (error instanceof RpcError && !error.retryable && error.reason !== 'not_a_member') throw error;
        trace(`${step} ${agent.id} call failed: ${String(error)}`);
      }
    }

    // Quiesce: every joined agent reaches the node's head, then compare with the node's state.
    const head = await reread(() => owner.client.call('collaboration/get', { collaborationId }));
    let finalOffset = head.offset;
    for (const agent of agents) {
      if (!agent.handle) continue;
      const info = await reread(() => agent.client.call('collaboration/get', { collaborationId }));
      finalOffset = Math.max(finalOffset, info.offset);
    }
    for (const agent of agents) {
      if (!agent.handle) continue;
      await agent.handle.waitForOffset(finalOffset, { timeoutMs: 15_000 });
      const info = await reread(() => agent.client.call('collaboration/get', { collaborationId }));
      if (info.offset === agent.handle.offset) {
        if (JSON.stringify(info.state) !== JSON.stringify(agent.handle.state)) {
          problems.push(`${agent.id}: local state differs from the node's at offset ${info.offset}`);
        }
        const nodeMembers = JSON.stringify(info.members.map((m) => [m.agentId, m.role, m.online]).sort());
        const localMembers = JSON.stringify(
          [...agent.handle.members.values()].map((m) => [m.agentId, m.role, m.online]).sort(),
        );
        if (nodeMembers !== localMembers)
          problems.push(`${agent.id}: members differ: ${localMembers} vs ${nodeMembers}`);
      } else {
        problems.push(
          `${agent.id}: node moved on to ${info.offset} while comparing at ${agent.handle.offset}`,
        );
      }
    }
    let eventsChecked = 0;
    for (const a of agents) for (const s of a.segments) eventsChecked += s.length;
    return { seed: options.seed, finalOffset, eventsChecked, disconnects, resyncs, problems };
  } finally {
    await Promise.all(agents.map((a) => a.client.close()));
    await Promise.all(agents.flatMap((a) => a.proxies.map((p) => p.close())));
  }
}
