/**
 * Scenario 1: fan-out throughput of one node (embedded bus) to 1000 agents, as 100 collaborations of
 * 10 and as one collaboration of 1000, against a raw `ws` relay that broadcasts each frame to the
 * same groups of the same 1000 clients. Figure: frames delivered per second at the agents, with
 * writers keeping a fixed window of writes in flight (closed loop, so queues stay bounded).
 */
import { type Row, row, type Scenario, type ScenarioContext, type ScenarioOutcome } from '../lib/types.js';
import type { Worker } from '../lib/workers.js';
import type {
  FanoutRunResult,
  LoadGenCommands,
  MeshNodeCommands,
  WsServerCommands,
} from '../procs/commands.js';
import { checkBudget, cpuDuring, cpuText, medianOf, profiled, token } from './common.js';

interface Shape {
  label: string;
  groups: number;
  groupSize: number;
  writersPerGroup: number;
  window: number;
}

/** Share text length; the event frame the node sends is about 200 bytes more. */
const SHARE_TEXT_BYTES = 64;

async function runShape(
  ctx: ScenarioContext,
  shape: Shape,
  load: Worker<LoadGenCommands>,
  node: Worker<MeshNodeCommands>,
  relay: Worker<WsServerCommands>,
  nodeUrl: string,
  relayUrl: string,
): Promise<{ rows: Row[]; notes: string[]; trials: unknown }> {
  const { quick } = ctx;
  const trialsEach = quick ? 1 : 3;
  const warmupMs = quick ? 200 : 500;
  const durationMs = quick ? 500 : 1500;
  const p = token();
  const agents = shape.groups * shape.groupSize;
  ctx.progress(
    `${shape.label}: connecting ${agents} mesh agents (join ${shape.groups} collaborations) and ${agents} raw ws clients`,
  );
  const meshSetup = await load.call(
    'fanoutSetup',
    { set: `mesh-${p}`, mode: 'mesh', url: nodeUrl, ...shape, prefix: `fan-${p}` },
    90_000,
  );
  const wsSetup = await load.call(
    'fanoutSetup',
    { set: `ws-${p}`, mode: 'ws', url: relayUrl, ...shape, prefix: `ws-${p}` },
    90_000,
  );
  ctx.progress(
    `${shape.label}: set up in ${Math.round(meshSetup.setupMs)} ms (mesh), ${Math.round(wsSetup.setupMs)} ms (ws)`,
  );
  const mesh: (FanoutRunResult & { cpu: Record<string, number> })[] = [];
  const base: (FanoutRunResult & { cpu: Record<string, number> })[] = [];
  let frameBytes = 0;
  // Mesh first: the baseline relays frames of the size the mesh's event frames turned out to have.
  for (let i = 0; i < trialsEach; i++) {
    for (const which of ['mesh', 'baseline'] as const) {
      checkBudget(ctx);
      const isMesh = which === 'mesh';
      const trial = async () => {
        const run = load.call(
          'fanoutRun',
          {
            set: isMesh ? `mesh-${p}` : `ws-${p}`,
            warmupMs,
            durationMs,
            window: shape.window,
            payloadBytes: isMesh ? SHARE_TEXT_BYTES : Math.round(frameBytes),
          },
          60_000,
        );
        const cpu = await cpuDuring([isMesh ? node : relay, load], warmupMs, durationMs);
        return { ...(await run), cpu };
      };
      // With --profile, the node is profiled during the last mesh trial of each shape.
      const r =
        isMesh && i === trialsEach - 1
          ? await profiled(ctx, [node], `fanout ${shape.label}`, trial)
          : await trial();
      if (isMesh) {
        mesh.push(r);
        frameBytes ||= r.frameBytes;
      } else base.push(r);
      ctx.progress(
        `${shape.label} ${which} ${i + 1}/${trialsEach}: ${Math.round(r.rate).toLocaleString('en-US')} frames/s delivered ` +
          `(${Math.round(r.frameBytes)} B each; cpu ${cpuText(r.cpu)}; check ${r.check.received}/${r.check.expected} received, ${r.check.outOfOrder} out of order, ${r.check.errors} errors)`,
      );
    }
  }
  const bad = mesh.filter((r) => r.check.received !== r.check.expected || r.check.outOfOrder > 0);
  const notes = [
    `${shape.label}: ${shape.writersPerGroup} writer(s) per group, ${shape.window} writes in flight each; ` +
      `mesh frames ${Math.round(medianOf(mesh, (r) => r.frameBytes))} B, baseline frames ${Math.round(medianOf(base, (r) => r.frameBytes))} B; ` +
      `median cpu during the window: mesh run ${cpuText(medianCpu(mesh))}; baseline run ${cpuText(medianCpu(base))}`,
  ];
  if (bad.length > 0)
    notes.push(
      `${shape.label}: ${bad.length} mesh trial(s) delivered a different count than expected or out of order`,
    );
  const rows = [
    row({
      figure: `fan-out, ${shape.label} (events delivered/s)`,
      unit: '/s',
      baseline: medianOf(base, (r) => r.rate),
      baselineLabel: 'raw ws broadcast',
      mesh: medianOf(mesh, (r) => r.rate),
      target: { type: 'ratioAtLeast', value: 0.9 },
    }),
  ];
  return { rows, notes, trials: { mesh, baseline: base, setup: { mesh: meshSetup, ws: wsSetup } } };
}

function medianCpu(trials: readonly { cpu: Record<string, number> }[]): Record<string, number> {
  const roles = Object.keys(trials[0]?.cpu ?? {});
  return Object.fromEntries(
    roles.map((role) => [role, Math.round(medianOf(trials, (t) => t.cpu[role] ?? Number.NaN))]),
  );
}

export const fanoutScenario: Scenario = {
  id: 1,
  name: 'fanout',
  title: 'Fan-out throughput: one node, 1000 agents, vs a raw ws broadcast',
  budgetMs: 120_000,
  async run(ctx: ScenarioContext): Promise<ScenarioOutcome> {
    const shapes: Shape[] = ctx.quick
      ? [
          { label: '4 collabs × 5', groups: 4, groupSize: 5, writersPerGroup: 1, window: 2 },
          { label: '1 collab × 20', groups: 1, groupSize: 20, writersPerGroup: 2, window: 2 },
        ]
      : [
          { label: '100 collabs × 10', groups: 100, groupSize: 10, writersPerGroup: 1, window: 16 },
          { label: '1 collab × 1000', groups: 1, groupSize: 1000, writersPerGroup: 4, window: 2 },
        ];
    const nofile = 20_000;
    const node = await ctx.workers.start<MeshNodeCommands>({
      role: 'mesh node (embedded bus)',
      script: 'meshNode.ts',
      nofile,
    });
    const relay = await ctx.workers.start<WsServerCommands>({
      role: 'raw ws relay',
      script: 'wsServer.ts',
      nofile,
    });
    const load = await ctx.workers.start<LoadGenCommands>({
      role: 'load generator',
      script: 'loadGen.ts',
      nofile,
    });
    const { url: nodeUrl } = await node.call('start', { bus: 'embedded' });
    const { url: relayUrl } = await relay.call('start', { mode: 'relay' });
    const rows: Row[] = [];
    const notes: string[] = [];
    const trials: Record<string, unknown> = {};
    for (const shape of shapes) {
      const r = await runShape(ctx, shape, load, node, relay, nodeUrl, relayUrl);
      rows.push(...r.rows);
      notes.push(...r.notes);
      trials[shape.label] = r.trials;
      await load.call('closeAll', null);
    }
    notes.push(
      'delivered = frames received by all agents in the window; raw ws clients and mesh agents do the same work per frame (count; writers parse)',
    );
    return { rows, notes, trials };
  },
};
