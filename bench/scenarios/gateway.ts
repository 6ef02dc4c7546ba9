/**
 * Scenario 7: the A2A gateway. SendMessage round trips/s through the gateway to a mesh agent ÷ raw h2
 * JSON POSTs on one h2 session. The gateway has not landed yet: the baseline is measured, and the mesh
 * figure is reported as not available (never a made-up number). To add it: start a node with the
 * gateway, connect an agent that answers conversation turns, and drive `POST /agents/{id}/a2a`
 * SendMessage over one h2 session from the load generator, like `h2Run` does for the baseline.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { row, type Scenario, type ScenarioContext, type ScenarioOutcome } from '../lib/types.js';
import { REPO_ROOT } from '../lib/workers.js';
import type { H2ServerCommands, LoadGenCommands } from '../procs/commands.js';
import { checkBudget, medianOf } from './common.js';

/** Why the mesh half cannot run yet. Gateway code only counts once it is committed (landed). */
function gatewayMissing(): string {
  let landed = false;
  try {
    landed = execFileSync('git', ['ls-files', 'src/a2a'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim() !== '';
  } catch {
    landed = existsSync(join(REPO_ROOT, 'src', 'a2a'));
  }
  return landed
    ? 'not available: gateway code is in src/a2a, but this scenario does not drive it yet'
    : 'not available: the gateway has not landed';
}

export const gatewayScenario: Scenario = {
  id: 7,
  name: 'gateway',
  title: 'A2A gateway: SendMessage round trips/s vs raw h2 JSON POST on one session',
  budgetMs: 45_000,
  async run(ctx: ScenarioContext): Promise<ScenarioOutcome> {
    const trialsEach = ctx.quick ? 1 : 3;
    const concurrency = 16;
    const server = await ctx.workers.start<H2ServerCommands>({
      role: 'raw h2 JSON server',
      script: 'h2Server.ts',
    });
    const load = await ctx.workers.start<LoadGenCommands>({ role: 'load generator', script: 'loadGen.ts' });
    const { url } = await server.call('start', null);
    const base: { rate: number; errors: number }[] = [];
    for (let i = 0; i < trialsEach; i++) {
      checkBudget(ctx);
      const r = await load.call('h2Run', {
        url,
        concurrency,
        warmupMs: ctx.quick ? 100 : 300,
        durationMs: ctx.quick ? 400 : 1500,
        payloadBytes: 100,
      });
      base.push(r);
      ctx.progress(
        `baseline ${i + 1}/${trialsEach}: ${Math.round(r.rate).toLocaleString('en-US')} h2 JSON POST round trips/s`,
      );
    }
    const missing = gatewayMissing();
    ctx.progress(`mesh: ${missing}`);
    return {
      rows: [
        row({
          figure: 'A2A SendMessage round trips/s through the gateway',
          unit: '/s',
          baseline: medianOf(base, (b) => b.rate),
          baselineLabel: 'raw h2 JSON POST, 1 session',
          mesh: null,
          target: { type: 'ratioAtLeast', value: 0.5 },
          note: missing,
        }),
      ],
      notes: [
        `baseline: ${concurrency} streams in flight on one h2c session, JSON-RPC body of ~200 B parsed and answered`,
      ],
      trials: { baseline: base, mesh: missing },
    };
  },
};
