/**
 * Scenario 5: late join over a 10k-event log. The SDK's `joinCollaboration` is timed until the
 * handle's state is ready: on a node whose replica is live (embedded bus), and on a freshly started
 * second node that must load the replica (snapshot from NATS KV, then the rest of the log from
 * JetStream). Baseline: one raw `ws` request answered with a state of the same size.
 */
import { type Row, row, type Scenario, type ScenarioContext, type ScenarioOutcome } from '../lib/types.js';
import type { LoadGenCommands, MeshNodeCommands, WsServerCommands } from '../procs/commands.js';
import { checkBudget, medianOf, natsUnavailable, startNats, token } from './common.js';

export const lateJoinScenario: Scenario = {
  id: 5,
  name: 'latejoin',
  title: 'Late join over a 10k-event log until state is ready',
  budgetMs: 120_000,
  async run(ctx: ScenarioContext): Promise<ScenarioOutcome> {
    const q = ctx.quick;
    // Offsets 1 (started) and 2 (the writer joined), then the events: the log ends at 10,999, so with a
    // snapshot every 1000 events a replica opened elsewhere replays the most it ever has to (999 events).
    const events = q ? 300 : 10_997;
    const warmSamples = q ? 2 : 9;
    const coldSamples = q ? 1 : 3;
    const load = await ctx.workers.start<LoadGenCommands>({ role: 'load generator', script: 'loadGen.ts' });
    const node = await ctx.workers.start<MeshNodeCommands>({
      role: 'mesh node (embedded bus)',
      script: 'meshNode.ts',
    });
    const { url } = await node.call('start', { bus: 'embedded' });

    ctx.progress(`writing ${events} events (every 10th a state update) on the embedded node`);
    const fill = await load.call(
      'lateJoinFill',
      { url, events, updateEvery: 10, window: 16, prefix: `lj-${token()}` },
      90_000,
    );
    ctx.progress(
      `log at offset ${fill.lastOffset}, state ${fill.stateBytes} B, written in ${Math.round(fill.ms)} ms`,
    );
    const stateServer = await ctx.workers.start<WsServerCommands>({
      role: 'raw ws state server',
      script: 'wsServer.ts',
    });
    const { url: stateUrl } = await stateServer.call('start', { mode: 'state', state: fill.state });

    const base: number[] = [];
    const warm: { ms: number; offset: number; stateBytes: number }[] = [];
    for (let i = 0; i < warmSamples; i++) {
      checkBudget(ctx);
      base.push((await load.call('lateJoinWs', { url: stateUrl })).ms);
      warm.push(
        await load.call('lateJoinMesh', {
          url,
          collaborationId: fill.collaborationId,
          agentId: `late-${token()}`,
        }),
      );
    }
    ctx.progress(
      `live replica: join → state ready ${warm.map((w) => w.ms.toFixed(1)).join(', ')} ms; baseline ${base.map((b) => b.toFixed(2)).join(', ')} ms`,
    );
    const rows: Row[] = [
      row({
        figure: `late join → state ready, live replica (${fill.lastOffset}-event log, embedded bus)`,
        unit: 'ms',
        baseline: medianOf(base, (x) => x),
        baselineLabel: 'raw ws fetch of same state',
        mesh: medianOf(warm, (w) => w.ms),
        target: { type: 'meshAtMost', value: 50 },
      }),
    ];
    const notes = [
      `${events} events (every 10th a JSON Patch add to the board, the rest shares); state ${fill.stateBytes} B; log offset ${fill.lastOffset}; ` +
        `snapshot every 1000 events (node default), so a replica opened elsewhere replays up to ${fill.lastOffset % 1000} events after the last one; each join by a fresh MeshClient (connect not timed)`,
    ];
    const trials: Record<string, unknown> = { fill: { ...fill, state: undefined }, baseline: base, warm };

    const natsReason = natsUnavailable();
    if (natsReason) {
      rows.push(
        row({
          figure: 'late join → state ready, replica opened on a fresh second node (NATS)',
          unit: 'ms',
          baseline: null,
          baselineLabel: 'raw ws fetch of same state',
          mesh: null,
          target: { type: 'meshAtMost', value: 50 },
          note: natsReason,
        }),
      );
      return { rows, notes, trials };
    }
    const nats = await startNats(ctx);
    const prefix = `bench${token()}`;
    const natsA = await ctx.workers.start<MeshNodeCommands>({
      role: 'mesh node A (NATS bus)',
      script: 'meshNode.ts',
    });
    const { url: urlA } = await natsA.call('start', {
      bus: 'nats',
      servers: nats.url,
      prefix,
      nodeId: `bench-A-${token()}`,
    });
    ctx.progress(`writing ${events} events through node A over NATS`);
    const natsFill = await load.call(
      'lateJoinFill',
      { url: urlA, events, updateEvery: 10, window: 16, prefix: `ljn-${token()}` },
      90_000,
    );
    ctx.progress(`log at offset ${natsFill.lastOffset}, written in ${Math.round(natsFill.ms)} ms`);
    const cold: { ms: number; offset: number; stateBytes: number }[] = [];
    const coldBase: number[] = [];
    for (let i = 0; i < coldSamples; i++) {
      checkBudget(ctx);
      const nodeB = await ctx.workers.start<MeshNodeCommands>({
        role: `mesh node B #${i + 1} (NATS bus, fresh)`,
        script: 'meshNode.ts',
      });
      const { url: urlB } = await nodeB.call('start', {
        bus: 'nats',
        servers: nats.url,
        prefix,
        nodeId: `bench-B-${token()}`,
      });
      await load.call('warmNode', { url: urlB, prefix: `w-${token()}` });
      coldBase.push((await load.call('lateJoinWs', { url: stateUrl })).ms);
      const c = await load.call('lateJoinMesh', {
        url: urlB,
        collaborationId: natsFill.collaborationId,
        agentId: `late-${token()}`,
      });
      cold.push(c);
      ctx.progress(
        `fresh node B ${i + 1}/${coldSamples}: join → state ready ${c.ms.toFixed(1)} ms (offset ${c.offset})`,
      );
      await ctx.workers.stop(nodeB);
    }
    rows.push(
      row({
        figure: `late join → state ready, replica opened on a fresh second node (${natsFill.lastOffset}-event log, NATS)`,
        unit: 'ms',
        baseline: medianOf(coldBase, (x) => x),
        baselineLabel: 'raw ws fetch of same state',
        mesh: medianOf(cold, (c) => c.ms),
        target: { type: 'meshAtMost', value: 50 },
      }),
    );
    notes.push(
      'fresh node B: started, warmed with a small collaboration of its own, then the timed join makes it open the replica ' +
        '(latest snapshot from KV, then the log after it from JetStream)',
    );
    trials.cold = cold;
    trials.coldBaseline = coldBase;
    trials.natsFill = { ...natsFill, state: undefined };
    return { rows, notes, trials };
  },
};
