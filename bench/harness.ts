/**
 * The benchmark harness: runs scenarios (each bounded in time, baseline and mesh interleaved in the
 * same run), prints their tables and process split, and writes one JSON result per scenario.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { machineInfo } from './lib/machine.js';
import { profileText, summarizeProfiles } from './lib/profile.js';
import { textTable } from './lib/table.js';
import type { Scenario, ScenarioContext, ScenarioOutcome, ScenarioResult } from './lib/types.js';
import { REPO_ROOT, removeCompiledProcs, WorkerPool } from './lib/workers.js';
import { coldStartScenario } from './scenarios/coldStart.js';
import { fanoutScenario } from './scenarios/fanout.js';
import { gatewayScenario } from './scenarios/gateway.js';
import { lateJoinScenario } from './scenarios/lateJoin.js';
import { latencyScenario } from './scenarios/latency.js';
import { memoryScenario } from './scenarios/memory.js';
import { writesScenario } from './scenarios/writes.js';

/** Every scenario, in the issue's order. */
export const SCENARIOS: readonly Scenario[] = [
  fanoutScenario,
  latencyScenario,
  writesScenario,
  memoryScenario,
  lateJoinScenario,
  coldStartScenario,
  gatewayScenario,
];

/** Where results go by default. */
export const DEFAULT_OUT_DIR = join(REPO_ROOT, 'bench', 'results');

/** Options of `runBench`. */
export interface BenchOptions {
  /** Scenario names or numbers; empty runs all. */
  scenarios?: readonly string[];
  /** Tiny sizes (the smoke test). */
  quick?: boolean;
  /** Directory for the JSON results (default `bench/results`). */
  outDir?: string;
  /** CPU-profile the mesh nodes during a mesh trial per case and print their top functions. */
  profile?: boolean;
}

/** Resolves names or numbers to scenarios; throws on an unknown one. */
export function selectScenarios(names: readonly string[]): Scenario[] {
  if (names.length === 0) return [...SCENARIOS];
  return names.map((n) => {
    const s = SCENARIOS.find((x) => x.name === n || String(x.id) === n);
    if (!s)
      throw new Error(
        `unknown scenario ${n}; known: ${SCENARIOS.map((x) => `${x.id} ${x.name}`).join(', ')}`,
      );
    return s;
  });
}

function stamp(d: Date): string {
  return d.toISOString().replace(/[:.]/g, '-');
}

/** Runs the selected scenarios one after the other; returns their results (also written as JSON). */
export async function runBench(options: BenchOptions = {}): Promise<ScenarioResult[]> {
  const quick = options.quick ?? false;
  const outDir = options.outDir ?? DEFAULT_OUT_DIR;
  await mkdir(outDir, { recursive: true });
  const results: ScenarioResult[] = [];
  try {
    for (const scenario of selectScenarios(options.scenarios ?? [])) {
      const result = await runScenario(scenario, quick, options.profile ?? false, outDir);
      results.push(result);
      const file = join(outDir, `${scenario.name}-${stamp(new Date(result.startedAt))}.json`);
      await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
      console.log(`  wrote ${file}\n`);
    }
  } finally {
    removeCompiledProcs();
  }
  return results;
}

async function runScenario(
  scenario: Scenario,
  quick: boolean,
  profile: boolean,
  outDir: string,
): Promise<ScenarioResult> {
  const started = new Date();
  const machine = machineInfo();
  console.log(
    `== ${scenario.id} ${scenario.name}: ${scenario.title}${quick ? ' (quick)' : ''} — load average ${machine.loadAverage.join(' ')}` +
      (machine.git ? `, tree at ${machine.git.commit} (+${machine.git.modifiedFiles} modified files)` : ''),
  );
  const base = {
    scenario: scenario.name,
    id: scenario.id,
    title: scenario.title,
    quick,
    profiled: profile,
    startedAt: started.toISOString(),
    machine,
  };
  const unavailable = scenario.unavailable?.();
  if (unavailable !== undefined) {
    console.log(`  not available: ${unavailable}\n`);
    return {
      ...base,
      status: 'unavailable',
      reason: unavailable,
      durationMs: 0,
      processes: [],
      rows: [],
      notes: [],
      trials: {},
    };
  }
  const budgetMs = scenario.budgetMs;
  const controller = new AbortController();
  const pool = new WorkerPool(controller.signal);
  const profileDir = profile ? join(outDir, 'profiles', `${scenario.name}-${stamp(started)}`) : undefined;
  const ctx: ScenarioContext = {
    quick,
    workers: pool,
    signal: controller.signal,
    deadline: Date.now() + budgetMs,
    profileDir,
    progress: (m) => console.log(`  [${scenario.name}] ${m}`),
  };
  let outcome: ScenarioOutcome | undefined;
  let failure: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  const overBudget = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new Error(`scenario exceeded its ${budgetMs} ms budget`));
    }, budgetMs);
  });
  try {
    outcome = await Promise.race([scenario.run(ctx), overBudget]);
  } catch (error) {
    failure = error instanceof Error ? error.message : String(error);
    console.log(`  FAILED: ${failure}`);
  } finally {
    clearTimeout(timer);
    if (failure) await pool.killAll();
    else await pool.stopAll();
  }
  const durationMs = Date.now() - started.getTime();
  const result: ScenarioResult = {
    ...base,
    status: failure ? 'failed' : 'ok',
    ...(failure ? { reason: failure } : {}),
    durationMs,
    processes: pool.processes(),
    rows: outcome?.rows ?? [],
    notes: outcome?.notes ?? [],
    trials: outcome?.trials ?? {},
  };
  if (profileDir) {
    const profiles = await summarizeProfiles(profileDir);
    result.trials.profiles = profiles;
    for (const p of profiles) console.log(profileText(p));
  }
  if (result.rows.length > 0) console.log(`\n${textTable(result.rows)}`);
  for (const n of result.notes) console.log(`  note: ${n}`);
  console.log(
    `  processes: ${result.processes.map((p) => `${p.pid} ${p.role}`).join('; ')} (harness ${process.pid})`,
  );
  console.log(`  took ${(durationMs / 1000).toFixed(1)} s`);
  return result;
}
