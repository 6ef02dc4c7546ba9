/**
 * Scenario 2: cross-node latency. Two nodes on one NATS server, collaborations of agents split across
 * both nodes, shares sent open-loop at a fixed rate; each member measures share → event latency.
 * Baseline: raw NATS request/reply round trips between two other processes on the same server. Floor:
 * the same agents, rate and topology through two raw `ws` + JetStream relays (bench/procs/jsRelay.ts)
 * instead of the nodes: what the hops and the store cost on this machine with no mesh code.
 */

import { row, type Scenario, type ScenarioContext, type ScenarioOutcome } from '../lib/types.js';
import type { Worker } from '../lib/workers.js';
import type {
  JsRelayCommands,
  LatencyRunResult,
  LatencySet,
  LoadGenCommands,
  LoopDelay,
  LoopDelayCommands,
  NatsPeerCommands,
} from '../procs/commands.js';
import {
  checkBudget,
  cpuDuring,
  cpuText,
  medianOf,
  natsUnavailable,
  profiled,
  startNats,
  startNatsNodePair,
  token,
} from './common.js';

type Baseline = { p50: number; p99: number; max: number; n: number };

export const latencyScenario: Scenario = {
  id: 2,
  name: 'latency',
  title: 'Cross-node latency: two nodes on NATS, share → deliver, vs raw NATS request/reply',
  budgetMs: 120_000,
  unavailable: natsUnavailable,
  async run(ctx: ScenarioContext): Promise<ScenarioOutcome> {
    const q = ctx.quick;
    const collabs = q ? 5 : 100;
    const perCollab = q ? 4 : 10;
    const ratePerSec = q ? 100 : 500;
    const warmupMs = q ? 300 : 500;
    // At least one full period of the nodes' presence refresh (every presenceTtlMs / 3 = 5 s by
    // default), whose bursts of KV writes are the slowest moments: a shorter window may miss them.
    const durationMs = q ? 700 : 6000;
    const trialsEach = q ? 1 : 3;
    const nats = await startNats(ctx);
    const { nodes, urls } = await startNatsNodePair(ctx, nats.url);
    const responder = await ctx.workers.start<NatsPeerCommands>({
      role: 'NATS responder',
      script: 'natsPeer.ts',
    });
    const requester = await ctx.workers.start<NatsPeerCommands>({
      role: 'NATS requester',
      script: 'natsPeer.ts',
    });
    const relays = await Promise.all(
      ['A', 'B'].map((n) =>
        ctx.workers.start<JsRelayCommands>({ role: `raw ws + JetStream relay ${n}`, script: 'jsRelay.ts' }),
      ),
    );
    const load = await ctx.workers.start<LoadGenCommands>({ role: 'load generator', script: 'loadGen.ts' });
    const subject = `bench.echo.${token()}`;
    await responder.call('respond', { servers: nats.url, subject });
    const floorStream = `FLOOR${token()}`;
    const floorSubjects = `floor${token()}`;
    await requester.call('createStream', {
      servers: nats.url,
      stream: floorStream,
      subject: `${floorSubjects}.>`,
    });
    const relayUrls: string[] = [];
    for (const [i, r] of relays.entries()) {
      const started = await r.call('start', {
        servers: nats.url,
        stream: floorStream,
        subjectPrefix: floorSubjects,
        relayId: `r${'AB'[i]}${token()}`,
      });
      relayUrls.push(started.url);
    }

    ctx.progress(
      `connecting ${collabs * perCollab} agents (half on each node) into ${collabs} collaborations`,
    );
    const setup = await load.call(
      'latencySetup',
      { set: 'mesh', urls, collabs, perCollab, prefix: `lat-${token()}` },
      90_000,
    );
    const floorSetup = await load.call(
      'latencySetup',
      { set: 'floor', urls: relayUrls, collabs, perCollab, prefix: `floor-${token()}` },
      90_000,
    );
    ctx.progress(
      `set up in ${Math.round(setup.setupMs)} ms (the floor's agents on the relays: ${Math.round(floorSetup.setupMs)} ms)`,
    );

    type Trial = LatencyRunResult & { cpu: Record<string, number>; serverLoopDelay: LoopDelay[] };
    const runSet = async (set: LatencySet, servers: Worker<LoopDelayCommands>[]): Promise<Trial> => {
      await Promise.all(servers.map((n) => n.call('loopDelayStart', null)));
      const run = load.call('latencyRun', { set, ratePerSec, warmupMs, durationMs }, 60_000);
      const cpu = await cpuDuring([...servers, load], warmupMs, durationMs);
      const result = await run;
      const serverLoopDelay = await Promise.all(servers.map((n) => n.call('loopDelayStop', null)));
      return { ...result, cpu, serverLoopDelay };
    };
    const describe = (m: Trial, servers: { role: string }[]) =>
      `cross-node p50 ${m.crossNode.p50.toFixed(2)} ms, p99 ${m.crossNode.p99.toFixed(2)} ms, ` +
      `max ${m.crossNode.max.toFixed(1)} ms (${m.crossNode.n} deliveries; ${m.received}/${m.expected} received, ` +
      `${m.errors} errors, ${Math.round(m.rate)} shares/s; cpu ${cpuText(m.cpu)}; event-loop delay past the 10 ms timer, p99/max ` +
      `${[...m.serverLoopDelay, m.loopDelay].map((d, j) => `${servers[j]?.role ?? load.role} ${d.p99}/${d.max}`).join(', ')} ms)`;

    const mesh: Trial[] = [];
    const floor: Trial[] = [];
    const base: Baseline[] = [];
    for (let i = 0; i < trialsEach; i++) {
      checkBudget(ctx);
      const b = await requester.call('requestLoop', {
        servers: nats.url,
        subject,
        payloadBytes: 200,
        maxCount: q ? 300 : 3000,
        durationMs: q ? 500 : 1500,
      });
      base.push(b);
      ctx.progress(
        `baseline ${i + 1}/${trialsEach}: NATS request/reply p50 ${b.p50.toFixed(3)} ms, p99 ${b.p99.toFixed(3)} ms over ${b.n}`,
      );
      checkBudget(ctx);
      const f = await runSet('floor', relays);
      floor.push(f);
      ctx.progress(`floor ${i + 1}/${trialsEach}: ${describe(f, relays)}`);
      checkBudget(ctx);
      const trial = () => runSet('mesh', nodes);
      const m = i === trialsEach - 1 ? await profiled(ctx, nodes, 'latency', trial) : await trial();
      mesh.push(m);
      ctx.progress(`mesh ${i + 1}/${trialsEach}: ${describe(m, nodes)}`);
    }
    const lost = [...mesh, ...floor].reduce((n, m) => n + Math.max(0, m.expected - m.received), 0);
    const floorP99 = medianOf(floor, (m) => m.crossNode.p99);
    const notes = [
      `${collabs} collaborations × ${perCollab} agents (alternately on node A and B), ${ratePerSec} shares/s open-loop, ` +
        `${durationMs} ms measured after ${warmupMs} ms warm-up; deliveries lost: ${lost}`,
      `same-node deliveries (including the writer's own): p50 ${medianOf(mesh, (m) => m.sameNode.p50).toFixed(2)} ms, ` +
        `p99 ${medianOf(mesh, (m) => m.sameNode.p99).toFixed(2)} ms`,
      'agents are raw JSON-RPC WebSocket clients in one load-generator process (one clock for send and receive); ' +
        'the baseline is a sequential request/reply of 200 B between two other processes through the same nats-server',
      'floor: the same agents, rate and topology with no mesh code: two raw ws servers that publish each share to ' +
        'JetStream (file storage, a subject per collaboration), answer it once stored, and send each stored message ' +
        'to their local members from an ordered consumer per collaboration (no validation, state, presence or snapshots)',
      `the mesh's cross-node p50 / p99 are ${(medianOf(mesh, (m) => m.crossNode.p50) / medianOf(floor, (m) => m.crossNode.p50)).toFixed(2)} / ` +
        `${(medianOf(mesh, (m) => m.crossNode.p99) / floorP99).toFixed(2)} of the floor's`,
    ];
    /** A latency row: the median over `trials` of one statistic, beside the baseline's same statistic. */
    const latencyRow = (
      figure: string,
      trials: Trial[],
      stat: 'p50' | 'p99' | 'max',
      target: { type: 'meshAtMost'; value: number } | null,
    ) =>
      row({
        figure,
        unit: 'ms',
        baseline: medianOf(base, (b) => b[stat]),
        baselineLabel: `NATS req/reply ${stat}`,
        mesh: medianOf(trials, (m) => m.crossNode[stat]),
        target,
      });
    const floorFigure = (stat: string) =>
      `floor: share → deliver ${stat} with no mesh code (raw ws + JetStream relays)`;
    const rows = [
      latencyRow('share → deliver, cross-node p50', mesh, 'p50', { type: 'meshAtMost', value: 2 }),
      latencyRow('share → deliver, cross-node p99', mesh, 'p99', { type: 'meshAtMost', value: 10 }),
      latencyRow(floorFigure('p50'), floor, 'p50', null),
      latencyRow(floorFigure('p99'), floor, 'p99', null),
      latencyRow('share → deliver, cross-node max', mesh, 'max', null),
    ];
    return { rows, notes, trials: { mesh, floor, baseline: base, setup, floorSetup } };
  },
};
