/**
 * Load for scenario 2: collaborations whose members are split across two nodes; shares sent open-loop
 * at a fixed rate, each carrying its send time; every member measures share → event latency.
 * Senders and receivers live in this one process, so one clock (`performance.now()`) times both ends.
 */
import { sampleLoopDelay } from '../lib/loopDelay.js';
import { mapLimit, RawAgent, sleep } from '../lib/rawAgent.js';
import { summarize } from '../lib/stats.js';
import type { LatencyRunResult, LatencySet, LatencySetupArgs } from '../procs/commands.js';

const TIMELINE_BUCKET_MS = 250;

interface Collab {
  collaborationId: string;
  members: { agent: RawAgent; node: number }[];
}

/** The agents of each set (the mesh's, the floor's), each in its collaborations. */
const sets = new Map<LatencySet, Collab[]>();

export async function latencySetup(a: LatencySetupArgs): Promise<{ agents: number; setupMs: number }> {
  const t0 = performance.now();
  const deadline = Date.now() + 60_000;
  const specs = Array.from({ length: a.collabs * a.perCollab }, (_, i) => ({
    c: Math.floor(i / a.perCollab),
    node: (i % a.perCollab) % a.urls.length,
    id: `${a.prefix}-c${Math.floor(i / a.perCollab)}-m${i % a.perCollab}`,
  }));
  const agents = await mapLimit(specs, 50, (s) => RawAgent.connect(a.urls[s.node]!, s.id), deadline);
  if (sets.has(a.set)) throw new Error(`latency set ${a.set} is already set up`);
  const collabs: Collab[] = Array.from({ length: a.collabs }, (_, c) => ({
    collaborationId: '',
    members: specs
      .map((s, i) => ({ s, agent: agents[i]! }))
      .filter((x) => x.s.c === c)
      .map((x) => ({ agent: x.agent, node: x.s.node })),
  }));
  await mapLimit(
    collabs,
    20,
    async (c, i) => {
      const r = await c.members[0]!.agent.call<{ collaborationId: string }>('collaboration/start', {
        topic: `latency ${i}`,
        visibility: 'public',
      });
      c.collaborationId = r.collaborationId;
    },
    deadline,
  );
  sets.set(a.set, collabs);
  const joins = collabs.flatMap((c) => c.members.map((m) => ({ c, m })));
  await mapLimit(
    joins,
    50,
    (j) => j.m.agent.call('collaboration/join', { collaborationId: j.c.collaborationId }),
    deadline,
  );
  await sleep(500);
  return { agents: agents.length, setupMs: performance.now() - t0 };
}

export async function latencyRun(a: {
  set: LatencySet;
  ratePerSec: number;
  warmupMs: number;
  durationMs: number;
}): Promise<LatencyRunResult> {
  const collabs = sets.get(a.set);
  if (!collabs) throw new Error(`latency set ${a.set} is not set up`);
  const cross: number[] = [];
  const same: number[] = [];
  /** Worst deliveries: when the share was sent (ms after measuring began) and how long it took. */
  const worst: { atMs: number; ms: number; collab: number; node: number }[] = [];
  /** Slowest delivery per 250 ms of send time, to see whether stalls are periodic. */
  const timeline: number[] = new Array(Math.ceil(a.durationMs / TIMELINE_BUCKET_MS)).fill(0);
  const start = performance.now();
  const measureFrom = start + a.warmupMs;
  const sendUntil = measureFrom + a.durationMs;
  let received = 0;
  for (const c of collabs) {
    for (const m of c.members) {
      m.agent.onEvent = (frame) => {
        const msg = JSON.parse(frame.toString()) as {
          params: { type: string; data: { content?: { t?: number; n?: number; k?: number } } };
        };
        const content = msg.params.data.content;
        if (msg.params.type !== 'shared' || content?.t === undefined || content.t < measureFrom) return;
        const ms = performance.now() - content.t;
        received++;
        (content.n === m.node ? same : cross).push(ms);
        const bucket = Math.floor((content.t - measureFrom) / TIMELINE_BUCKET_MS);
        if (bucket < timeline.length)
          timeline[bucket] = Math.max(timeline[bucket]!, Math.round(ms * 10) / 10);
        if (worst.length < 20 || ms > worst[worst.length - 1]!.ms) {
          worst.push({
            atMs: Math.round(content.t - measureFrom),
            ms: Math.round(ms * 10) / 10,
            collab: (content.k ?? 0) % collabs.length,
            node: m.node,
          });
          worst.sort((x, y) => y.ms - x.ms);
          worst.length = Math.min(worst.length, 20);
        }
      };
    }
  }
  const stopLoopDelay = sampleLoopDelay();
  let sent = 0;
  let sentMeasured = 0;
  let acked = 0;
  let errors = 0;
  const inflight = new Set<Promise<void>>();
  const perCollab = collabs[0]?.members.length ?? 0;
  const maxShares = Math.ceil((a.ratePerSec * (a.warmupMs + a.durationMs)) / 1000) + 1;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      const due = Math.min(maxShares, Math.floor(((now - start) * a.ratePerSec) / 1000));
      while (sent < due && now < sendUntil) {
        const k = sent++;
        const c = collabs[k % collabs.length]!;
        const writer = c.members[Math.floor(k / collabs.length) % c.members.length]!;
        const t = performance.now();
        if (t >= measureFrom) sentMeasured++;
        const p = writer.agent
          .call('collaboration/share', {
            collaborationId: c.collaborationId,
            content: { t, n: writer.node, k },
          })
          .then(
            () => {
              acked++;
            },
            () => {
              errors++;
            },
          )
          .finally(() => inflight.delete(p));
        inflight.add(p);
      }
      if (now >= sendUntil || sent >= maxShares) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  const elapsed = (performance.now() - start) / 1000;
  const loopDelay = stopLoopDelay();
  await Promise.race([Promise.all([...inflight]), sleep(10_000)]);
  // Let the last deliveries arrive.
  const expected = sentMeasured * perCollab;
  const end = Date.now() + 5_000;
  while (received < expected && Date.now() < end) await sleep(20);
  for (const c of collabs) for (const m of c.members) m.agent.onEvent = undefined;
  return {
    crossNode: summarize(cross),
    sameNode: summarize(same),
    sent,
    acked,
    errors,
    expected,
    received,
    rate: sent / elapsed,
    worst,
    timeline,
    loopDelay,
  };
}

export function latencyClose(): void {
  for (const collabs of sets.values()) for (const c of collabs) for (const m of c.members) m.agent.close();
  sets.clear();
}
