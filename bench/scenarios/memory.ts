/**
 * Scenario 4: memory per idle connected agent. A fresh server process per trial (mesh node on the
 * embedded bus, or a bare `ws` server); RSS after two full GCs before and after N idle connections
 * (mesh: after `mesh/hello`). Trials alternate baseline and mesh.
 */
import { openFileLimit } from '../lib/ipc.js';
import { row, type Scenario, type ScenarioContext, type ScenarioOutcome } from '../lib/types.js';
import type { Worker } from '../lib/workers.js';
import type { LoadGenCommands, MeshNodeCommands, WsServerCommands } from '../procs/commands.js';
import { checkBudget, medianOf, token } from './common.js';

interface Trial {
  rssPerConnKb: number;
  heapPerConnKb: number;
  baseRssMb: number;
  afterRssMb: number;
  connected: number;
  connectMs: number;
  serverNofile: number | undefined;
}

const NOFILE = 20_000;

export const memoryScenario: Scenario = {
  id: 4,
  name: 'memory',
  title: 'RSS per idle connected agent at 5k agents vs raw ws',
  budgetMs: 90_000,
  async run(ctx: ScenarioContext): Promise<ScenarioOutcome> {
    // Quick size still needs enough sockets that the RSS they add (~7 MB raw) stands above GC noise.
    const count = ctx.quick ? 1000 : 5000;
    const trialsEach = ctx.quick ? 1 : 3;
    const load = await ctx.workers.start<LoadGenCommands>({
      role: 'load generator',
      script: 'loadGen.ts',
      nofile: NOFILE,
    });
    const mesh: Trial[] = [];
    const base: Trial[] = [];
    for (let i = 0; i < trialsEach; i++) {
      for (const which of ['baseline', 'mesh'] as const) {
        checkBudget(ctx);
        const isMesh = which === 'mesh';
        let server: Worker<MeshNodeCommands> | Worker<WsServerCommands>;
        let url: string;
        if (isMesh) {
          const s = await ctx.workers.start<MeshNodeCommands>({
            role: `mesh node (embedded bus) #${i + 1}`,
            script: 'meshNode.ts',
            nofile: NOFILE,
            exposeGc: true,
          });
          url = (await s.call('start', { bus: 'embedded' })).url;
          server = s;
        } else {
          const s = await ctx.workers.start<WsServerCommands>({
            role: `raw ws server #${i + 1}`,
            script: 'wsServer.ts',
            nofile: NOFILE,
            exposeGc: true,
          });
          url = (await s.call('start', { mode: 'idle' })).url;
          server = s;
        }
        const mode = isMesh ? 'mesh' : 'ws';
        // Warm the accept path once so that lazily loaded code is in the "before" figure.
        await load.call('memoryConnect', {
          mode,
          url,
          count: 20,
          concurrency: 20,
          prefix: `warm-${token()}`,
        });
        await load.call('closeAll', null);
        await new Promise((r) => setTimeout(r, 300));
        const before = await server.usageAfterGc();
        const c = await load.call(
          'memoryConnect',
          { mode, url, count, concurrency: 100, prefix: `mem-${token()}` },
          90_000,
        );
        if (c.failures > 0)
          ctx.progress(`${which}: ${c.failures} connections failed (first: ${c.firstError})`);
        await new Promise((r) => setTimeout(r, 500));
        const after = await server.usageAfterGc();
        const t: Trial = {
          rssPerConnKb: (after.rss - before.rss) / c.connected / 1024,
          heapPerConnKb: (after.heapUsed - before.heapUsed) / c.connected / 1024,
          baseRssMb: before.rss / 2 ** 20,
          afterRssMb: after.rss / 2 ** 20,
          connected: c.connected,
          connectMs: c.ms,
          serverNofile: server.nofile,
        };
        (isMesh ? mesh : base).push(t);
        ctx.progress(
          `${which} ${i + 1}/${trialsEach}: ${t.connected} connections in ${Math.round(c.ms)} ms; RSS ${t.baseRssMb.toFixed(1)} → ` +
            `${t.afterRssMb.toFixed(1)} MB = ${t.rssPerConnKb.toFixed(1)} KB per connection (JS heap ${t.heapPerConnKb.toFixed(1)} KB)`,
        );
        await load.call('closeAll', null);
        await ctx.workers.stop(server);
      }
    }
    const rows = [
      row({
        figure: `RSS per idle connected agent, ${count} agents`,
        unit: 'KB',
        baseline: medianOf(base, (t) => t.rssPerConnKb),
        baselineLabel: 'raw ws socket',
        mesh: medianOf(mesh, (t) => t.rssPerConnKb),
        target: { type: 'ratioAtMost', value: 2 },
      }),
      row({
        figure: 'JS heap per idle connected agent',
        unit: 'KB',
        baseline: medianOf(base, (t) => t.heapPerConnKb),
        baselineLabel: 'raw ws socket',
        mesh: medianOf(mesh, (t) => t.heapPerConnKb),
        target: null,
      }),
    ];
    const notes = [
      `open-files soft limit: harness ${openFileLimit() ?? 'unknown'}; servers and the load generator start under \`ulimit -n ${NOFILE}\` ` +
        `in their spawned shell and report ${[...new Set([...mesh, ...base].map((t) => t.serverNofile))].join(', ')} (servers) and ${load.nofile} (load generator)`,
      'RSS after two forced GCs (--expose-gc), before and after the connections; mesh agents have called mesh/hello (directory entry, agent registry), nothing else',
    ];
    return { rows, notes, trials: { mesh, baseline: base } };
  },
};
