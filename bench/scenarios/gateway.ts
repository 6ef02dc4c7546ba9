/**
 * Scenario 7: the A2A gateway. A2A `SendMessage` round trips/s through a node's gateway
 * (`POST /agents/{agentId}/a2a`, JSON-RPC binding, A2A v1.0) to a mesh agent in its own process that
 * answers with a direct message, over one h2c session with 16 streams in flight; against raw h2 JSON
 * POSTs on one session to a server that parses the request and answers the same way. If the gateway
 * is missing from the tree, the mesh figure is reported as not available (never a made-up number).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { row, type Scenario, type ScenarioContext, type ScenarioOutcome } from '../lib/types.js';
import { REPO_ROOT } from '../lib/workers.js';
import type {
  H2ServerCommands,
  LoadGenCommands,
  MeshAgentCommands,
  MeshNodeCommands,
} from '../procs/commands.js';
import { checkBudget, cpuDuring, cpuText, medianOf, profiled, token } from './common.js';

type Trial = { rate: number; errors: number; firstError?: string; cpu: Record<string, number> };

/** Why the mesh half cannot run, when the gateway is not in the tree. */
function gatewayMissing(): string | undefined {
  return existsSync(join(REPO_ROOT, 'src', 'a2a', 'gateway.ts'))
    ? undefined
    : 'not available: the gateway has not landed';
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
    const durationMs = q ? 400 : 1500;
    const payloadBytes = 100;
    const server = await ctx.workers.start<H2ServerCommands>({
      role: 'raw h2 JSON server',
      script: 'h2Server.ts',
    });
    const load = await ctx.workers.start<LoadGenCommands>({ role: 'load generator', script: 'loadGen.ts' });
    const { url: h2Url } = await server.call('start', null);
    const missing = gatewayMissing();
    let node: Awaited<ReturnType<typeof ctx.workers.start<MeshNodeCommands>>> | undefined;
    let agent: Awaited<ReturnType<typeof ctx.workers.start<MeshAgentCommands>>> | undefined;
    let gatewayBase = '';
    const agentId = `bench-agent-${token()}`;
    if (!missing) {
      node = await ctx.workers.start<MeshNodeCommands>({
        role: 'mesh node (embedded bus, A2A gateway)',
        script: 'meshNode.ts',
      });
      const { url } = await node.call('start', { bus: 'embedded' });
      gatewayBase = url.replace(/^ws:/, 'http:').replace(/\/mesh$/, '');
      agent = await ctx.workers.start<MeshAgentCommands>({
        role: 'mesh agent (answers tasks)',
        script: 'meshAgent.ts',
      });
      await agent.call('start', { url, agentId });
    }
    // A fresh node's round trip runs through far more code than the baseline's, and V8 takes a few
    // thousand requests to optimise it (the first 1.5 s trial measured 25-40% slower than the third):
    // both sides get one unrecorded run first, so every trial measures warmed-up code.
    const primeMs = q ? 200 : 2000;
    const prime = async (url: string, path: string, headers: Record<string, string>) => {
      const r = await load.call('h2Run', {
        url,
        path,
        headers,
        concurrency,
        warmupMs: 0,
        durationMs: primeMs,
        payloadBytes,
      });
      return `${r.completed.toLocaleString('en-US')} round trips, ${r.errors} errors`;
    };
    ctx.progress(`warm-up, not recorded: baseline ${await prime(h2Url, '/rpc', {})}`);
    if (node) {
      ctx.progress(
        `warm-up, not recorded: gateway ${await prime(gatewayBase, `/agents/${agentId}/a2a`, { 'a2a-version': '1.0' })}`,
      );
    }
    const base: Trial[] = [];
    const mesh: Trial[] = [];
    for (let i = 0; i < trialsEach; i++) {
      checkBudget(ctx);
      const bRun = load.call('h2Run', {
        url: h2Url,
        path: '/rpc',
        headers: {},
        concurrency,
        warmupMs,
        durationMs,
        payloadBytes,
      });
      const bCpu = await cpuDuring([server, load], warmupMs, durationMs);
      const b = { ...(await bRun), cpu: bCpu };
      base.push(b);
      ctx.progress(
        `baseline ${i + 1}/${trialsEach}: ${Math.round(b.rate).toLocaleString('en-US')} h2 JSON POST round trips/s (cpu ${cpuText(bCpu)})`,
      );
      if (!node || !agent) continue;
      checkBudget(ctx);
      const gateway = node;
      const meshAgent = agent;
      const trial = async (): Promise<Trial> => {
        const run = load.call('h2Run', {
          url: gatewayBase,
          path: `/agents/${agentId}/a2a`,
          headers: { 'a2a-version': '1.0' },
          concurrency,
          warmupMs,
          durationMs,
          payloadBytes,
        });
        const cpu = await cpuDuring([gateway, meshAgent, load], warmupMs, durationMs);
        return { ...(await run), cpu };
      };
      const m =
        i === trialsEach - 1 ? await profiled(ctx, [gateway], 'gateway SendMessage', trial) : await trial();
      mesh.push(m);
      ctx.progress(
        `mesh ${i + 1}/${trialsEach}: ${Math.round(m.rate).toLocaleString('en-US')} SendMessage round trips/s through the gateway ` +
          `(${m.errors} errors${m.firstError ? `, first: ${m.firstError}` : ''}; cpu ${cpuText(m.cpu)})`,
      );
    }
    const notes = [
      `one h2c session, ${concurrency} streams in flight, JSON-RPC SendMessage with a ${payloadBytes}-character text part; ` +
        'the baseline server parses the request and answers a message; through the gateway the node routes each message to the agent ' +
        '(task/execute over its WebSocket session), the agent replies (task/publish, task/done), the node answers the POST',
    ];
    if (missing) ctx.progress(`mesh: ${missing}`);
    return {
      rows: [
        row({
          figure: 'A2A SendMessage round trips/s through the gateway',
          unit: '/s',
          baseline: medianOf(base, (b) => b.rate),
          baselineLabel: 'raw h2 JSON POST, 1 session',
          mesh: missing ? null : medianOf(mesh, (m) => m.rate),
          target: { type: 'ratioAtLeast', value: 0.5 },
          ...(missing ? { note: missing } : {}),
        }),
      ],
      notes,
      trials: { baseline: base, mesh: missing ?? mesh },
    };
  },
};
