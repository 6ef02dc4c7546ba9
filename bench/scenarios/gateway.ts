/**
 * Scenario 7: the A2A gateway. A2A `SendMessage` round trips/s through a node's gateway
 * (`POST /agents/{agentId}/a2a`, JSON-RPC binding, A2A v1.0) to a mesh agent in its own process that
 * answers with a direct message, over one h2c session with 16 streams in flight; against raw h2 JSON
 * POSTs on one session to a server that parses the request and answers the same way. A third side
 * measures the topology's floor with no mesh code: a raw h2 server that relays each POST over a raw
 * `ws` connection to an agent process and answers with its reply. If the gateway is missing from the
 * tree, the mesh figure is reported as not available (never a made-up number).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { procUsage } from '../lib/ipc.js';
import { row, type Scenario, type ScenarioContext, type ScenarioOutcome } from '../lib/types.js';
import { REPO_ROOT, type Worker } from '../lib/workers.js';
import type {
  H2RelayCommands,
  H2ServerCommands,
  LoadGenCommands,
  MeshAgentCommands,
  MeshNodeCommands,
  RelayAgentCommands,
} from '../procs/commands.js';
import { checkBudget, cpuDuring, cpuText, medianOf, profiled, startNats, token } from './common.js';

type Trial = { rate: number; errors: number; firstError?: string; cpu: Record<string, number> };

/** Why the mesh half cannot run, when the gateway is not in the tree. */
function gatewayMissing(): string | undefined {
  return existsSync(join(REPO_ROOT, 'src', 'a2a', 'gateway.ts'))
    ? undefined
    : 'not available: the gateway has not landed';
}

/** One side of the comparison: where its POSTs go and which processes serve them. */
interface Side {
  name: string;
  url: string;
  path: string;
  headers: Record<string, string>;
  /** The processes serving it, whose CPU is measured in each trial. */
  servers: readonly Pick<Worker, 'role' | 'usage'>[];
  /** The mesh nodes to profile in the last trial (`--profile`). */
  nodes?: readonly Worker<MeshNodeCommands>[];
  trials: Trial[];
}

export const gatewayScenario: Scenario = {
  id: 7,
  name: 'gateway',
  title: 'A2A gateway: SendMessage round trips/s vs raw h2 JSON POST on one session',
  budgetMs: 60_000,
  async run(ctx: ScenarioContext): Promise<ScenarioOutcome> {
    const q = ctx.quick;
    const trialsEach = q ? 1 : 3;
    const concurrency = 16;
    const warmupMs = q ? 200 : 500;
    // Trials of one node vary by 1.5× in throughput at 1.5 s; longer windows steady the medians.
    const durationMs = q ? 400 : 2500;
    const payloadBytes = 100;
    const load = await ctx.workers.start<LoadGenCommands>({ role: 'load generator', script: 'loadGen.ts' });

    const server = await ctx.workers.start<H2ServerCommands>({
      role: 'raw h2 JSON server',
      script: 'h2Server.ts',
    });
    const { url: h2Url } = await server.call('start', null);
    const base: Side = {
      name: 'baseline',
      url: h2Url,
      path: '/rpc',
      headers: {},
      servers: [server],
      trials: [],
    };

    const relay = await ctx.workers.start<H2RelayCommands>({
      role: 'raw h2 → ws relay',
      script: 'h2Relay.ts',
    });
    const relayAddr = await relay.call('start', null);
    const relayAgent = await ctx.workers.start<RelayAgentCommands>({
      role: 'raw ws relay agent',
      script: 'relayAgent.ts',
    });
    await relayAgent.call('start', { url: relayAddr.agentUrl });
    for (let i = 0; !(await relay.call('connected', null)); i++) {
      if (i > 200) throw new Error('the relay agent did not connect');
      await new Promise((r) => setTimeout(r, 10));
    }
    const floor: Side = {
      name: 'relay floor',
      url: relayAddr.url,
      path: '/rpc',
      headers: {},
      servers: [relay, relayAgent],
      trials: [],
    };

    const missing = gatewayMissing();
    let mesh: Side | undefined;
    if (!missing) {
      const agentId = `bench-agent-${token()}`;
      const node = await ctx.workers.start<MeshNodeCommands>({
        role: 'mesh node (embedded bus, A2A gateway)',
        script: 'meshNode.ts',
      });
      const { url } = await node.call('start', { bus: 'embedded' });
      const agent = await ctx.workers.start<MeshAgentCommands>({
        role: 'mesh agent (answers tasks)',
        script: 'meshAgent.ts',
      });
      await agent.call('start', { url, agentId });
      mesh = {
        name: 'mesh',
        url: url.replace(/^ws:/, 'http:').replace(/\/mesh$/, ''),
        path: `/agents/${agentId}/a2a`,
        headers: { 'a2a-version': '1.0' },
        servers: [node, agent],
        nodes: [node],
        trials: [],
      };
    }
    const sides = [base, floor, ...(mesh ? [mesh] : [])];

    // A fresh node's round trip runs through far more code than the baseline's, and V8 takes a few
    // thousand requests to optimise it (the first 1.5 s trial measured 25-40% slower than the third):
    // every side gets one unrecorded run first, so every trial measures warmed-up code.
    const warm = async (side: Side) => {
      const r = await load.call('h2Run', {
        url: side.url,
        path: side.path,
        headers: side.headers,
        concurrency,
        warmupMs: 0,
        durationMs: q ? 200 : 2000,
        payloadBytes,
      });
      ctx.progress(
        `warm-up, not recorded: ${side.name} ${r.completed.toLocaleString('en-US')} round trips, ${r.errors} errors`,
      );
    };
    const measure = async (side: Side): Promise<Trial> => {
      const run = load.call('h2Run', {
        url: side.url,
        path: side.path,
        headers: side.headers,
        concurrency,
        warmupMs,
        durationMs,
        payloadBytes,
      });
      const cpu = await cpuDuring([...side.servers, load], warmupMs, durationMs);
      return { ...(await run), cpu };
    };
    const trial = async (side: Side, i: number) => {
      checkBudget(ctx);
      const t =
        side.nodes && i === trialsEach - 1
          ? await profiled(ctx, side.nodes, `gateway SendMessage (${side.name})`, () => measure(side))
          : await measure(side);
      side.trials.push(t);
      ctx.progress(
        `${side.name} ${i + 1}/${trialsEach}: ${Math.round(t.rate).toLocaleString('en-US')} round trips/s ` +
          `(${t.errors} errors${t.firstError ? `, first: ${t.firstError}` : ''}; cpu ${cpuText(t.cpu)})`,
      );
    };
    for (const side of sides) await warm(side);
    for (let i = 0; i < trialsEach; i++) for (const side of sides) await trial(side, i);

    // Then, with the embedded node and its agent stopped, the scale-out case: the client's node and
    // the agent's node are two processes on one nats-server; every task write is a JetStream append,
    // every call to the agent a NATS request. Its ratio is to the same baseline trials.
    let natsMesh: Side | undefined;
    if (mesh) {
      for (const w of mesh.servers) await ctx.workers.stop(w as Worker);
      const nats = await startNats(ctx);
      const prefix = `bench${token()}`;
      const agentId = `bench-agent-${token()}`;
      const start = async (name: string) => {
        const w = await ctx.workers.start<MeshNodeCommands>({
          role: `mesh node ${name} (NATS bus, A2A gateway)`,
          script: 'meshNode.ts',
        });
        const { url } = await w.call('start', {
          bus: 'nats',
          servers: nats.url,
          prefix,
          nodeId: `bench-${name}-${token()}`,
        });
        return { w, url };
      };
      const front = await start('A');
      const back = await start('B');
      const agent = await ctx.workers.start<MeshAgentCommands>({
        role: 'mesh agent on node B (answers tasks)',
        script: 'meshAgent.ts',
      });
      await agent.call('start', { url: back.url, agentId });
      natsMesh = {
        name: 'mesh on NATS, agent on another node',
        url: front.url.replace(/^ws:/, 'http:').replace(/\/mesh$/, ''),
        path: `/agents/${agentId}/a2a`,
        headers: { 'a2a-version': '1.0' },
        servers: [front.w, back.w, agent, { role: 'nats-server', usage: async () => procUsage(nats.pid) }],
        nodes: [front.w, back.w],
        trials: [],
      };
      await warm(natsMesh);
      for (let i = 0; i < trialsEach; i++) await trial(natsMesh, i);
    }

    const rate = (s: Side) => medianOf(s.trials, (t) => t.rate);
    const notes = [
      `one h2c session, ${concurrency} streams in flight, JSON-RPC SendMessage with a ${payloadBytes}-character text part; ` +
        'the baseline server parses the request and answers a message; through the gateway the node routes each message to the agent ' +
        '(task/execute over its WebSocket session), the agent replies (task/publish; a direct reply ends the turn, so no task/done), the node answers the POST',
      'on NATS: SendMessage to node A for an agent connected to node B (one nats-server, JetStream file storage): ' +
        'the task record and log in JetStream, task/execute over a NATS request, the events appended by node B and followed by node A',
      'relay floor: the same three processes and hops with no mesh code (raw h2 server → one raw ws message to an agent process → ' +
        'one raw ws answer → the POST answered), no validation, task state or log: what any gateway in this topology costs on this machine',
    ];
    // CPU time per round trip of each serving process (steadier than throughput on a shared machine).
    const perRequest = (side: Side) =>
      side.servers
        .map((w) => {
          const us = medianOf(side.trials, (t) => ((t.cpu[w.role] ?? Number.NaN) * 10_000) / t.rate);
          return `${w.role} ${Math.round(us)} µs`;
        })
        .join(', ');
    for (const side of [base, floor, ...(mesh ? [mesh] : []), ...(natsMesh ? [natsMesh] : [])]) {
      notes.push(`CPU per round trip, median of the trials (${side.name}): ${perRequest(side)}`);
    }
    if (mesh) {
      notes.push(`the gateway reaches ${(rate(mesh) / rate(floor)).toFixed(2)} of the relay floor`);
    } else {
      ctx.progress(`mesh: ${missing}`);
    }
    return {
      rows: [
        row({
          figure: 'A2A SendMessage round trips/s through the gateway',
          unit: '/s',
          baseline: rate(base),
          baselineLabel: 'raw h2 JSON POST, 1 session',
          mesh: mesh ? rate(mesh) : null,
          target: { type: 'ratioAtLeast', value: 0.5 },
          ...(missing ? { note: missing } : {}),
        }),
        row({
          figure: 'SendMessage round trips/s on NATS, agent on another node',
          unit: '/s',
          baseline: rate(base),
          baselineLabel: 'raw h2 JSON POST, 1 session',
          mesh: natsMesh ? rate(natsMesh) : null,
          target: null,
          ...(missing ? { note: missing } : {}),
        }),
        row({
          figure: 'floor: the same hop with no mesh code (raw h2 → raw ws relay to an agent process)',
          unit: '/s',
          baseline: rate(base),
          baselineLabel: 'raw h2 JSON POST, 1 session',
          mesh: rate(floor),
          target: null,
        }),
      ],
      notes,
      trials: {
        baseline: base.trials,
        relayFloor: floor.trials,
        mesh: missing ?? mesh?.trials ?? [],
        meshOnNats: missing ?? natsMesh?.trials ?? [],
      },
    };
  },
};
