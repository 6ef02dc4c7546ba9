import type { WorkerPool } from './workers.js';

/**
 * What a figure must reach. Ratios are always mesh ÷ baseline; `mesh*` targets compare the mesh
 * figure itself (in the row's unit).
 */
export type Target =
  | { type: 'ratioAtLeast'; value: number }
  | { type: 'ratioAtMost'; value: number }
  | { type: 'meshAtLeast'; value: number }
  | { type: 'meshAtMost'; value: number };

/** One line of a scenario's table. `null` figures are shown as "n/a" with the reason in `note`. */
export interface Row {
  figure: string;
  unit: string;
  /** Median over the baseline trials; null when the scenario has no baseline for this figure. */
  baseline: number | null;
  /** What the baseline is, e.g. "raw ws broadcast". */
  baselineLabel: string;
  /** Median over the mesh trials; null when not measured (see `note`). */
  mesh: number | null;
  /** mesh ÷ baseline, when both exist. */
  ratio: number | null;
  target: Target | null;
  /** Whether the target was met; null when there is no target or no figure. */
  met: boolean | null;
  note?: string;
}

/** A process that took part in a scenario, for the printed process split. */
export interface ProcessInfo {
  pid: number;
  role: string;
  /** Script (relative to the repository) or binary it runs. */
  what: string;
  /** Soft limit on open files of that process, when known. */
  nofile?: number;
}

/** What a scenario gets from the harness. */
export interface ScenarioContext {
  /** Tiny sizes (smoke test): shapes are the same, counts and durations much smaller. */
  readonly quick: boolean;
  /** Prints a progress line (prefixed with the scenario name). */
  progress(message: string): void;
  /** Starts and tracks child processes; every one is stopped when the scenario ends. */
  readonly workers: WorkerPool;
  /** Aborted when the scenario's time budget runs out. */
  readonly signal: AbortSignal;
  /** Epoch milliseconds by which the scenario must be done. */
  readonly deadline: number;
  /** Directory for CPU profiles of the mesh nodes (`--profile`); undefined when not profiling. */
  readonly profileDir: string | undefined;
}

/** What a scenario reports. */
export interface ScenarioOutcome {
  rows: Row[];
  /** Free-form lines printed under the table and kept in the JSON (settings, CPU split, checks). */
  notes: string[];
  /** Raw per-trial figures, kept in the JSON. */
  trials: Record<string, unknown>;
}

/** One benchmark scenario. */
export interface Scenario {
  /** Number in the issue (1..7). */
  readonly id: number;
  /** Short name used on the command line and in result file names. */
  readonly name: string;
  readonly title: string;
  /** Hard limit on the whole scenario, in ms (at full size). */
  readonly budgetMs: number;
  /** Returns a reason when the scenario cannot run here (e.g. its subsystem has not landed). */
  unavailable?(): string | undefined;
  run(ctx: ScenarioContext): Promise<ScenarioOutcome>;
}

/** The JSON written to `bench/results/<scenario>-<timestamp>.json`. */
export interface ScenarioResult {
  scenario: string;
  id: number;
  title: string;
  status: 'ok' | 'unavailable' | 'failed';
  /** Why the scenario did not run (unavailable) or what stopped it (failed). */
  reason?: string;
  quick: boolean;
  /** True when the mesh nodes were CPU-profiled during the run (figures are then lower). */
  profiled: boolean;
  startedAt: string;
  durationMs: number;
  machine: MachineInfo;
  processes: ProcessInfo[];
  rows: Row[];
  notes: string[];
  trials: Record<string, unknown>;
}

/** The machine a result was measured on. */
export interface MachineInfo {
  hostname: string;
  cpus: number;
  cpuModel: string;
  memoryMb: number;
  node: string;
  natsServer: string;
  /** 1, 5 and 15 minute load averages when the scenario started. */
  loadAverage: number[];
  /** Soft limit on open files of the harness process. */
  nofile: number | undefined;
  /** The commit the tree was at, and how many tracked files differed from it (the run uses the working tree). */
  git: { commit: string; modifiedFiles: number } | undefined;
}

/** Builds a row, computing the ratio and whether the target was met. */
export function row(r: {
  figure: string;
  unit: string;
  baseline: number | null;
  baselineLabel: string;
  mesh: number | null;
  target: Target | null;
  note?: string | undefined;
}): Row {
  const ok = (x: number | null): x is number => x !== null && Number.isFinite(x);
  const ratio = ok(r.baseline) && ok(r.mesh) && r.baseline !== 0 ? r.mesh / r.baseline : null;
  let met: boolean | null = null;
  if (r.target && ok(r.mesh)) {
    const t = r.target;
    switch (t.type) {
      case 'ratioAtLeast':
        met = ratio === null ? null : ratio >= t.value;
        break;
      case 'ratioAtMost':
        met = ratio === null ? null : ratio <= t.value;
        break;
      case 'meshAtLeast':
        met = r.mesh >= t.value;
        break;
      case 'meshAtMost':
        met = r.mesh <= t.value;
        break;
      default:
        assertNever(t);
    }
  }
  return {
    figure: r.figure,
    unit: r.unit,
    baseline: ok(r.baseline) ? r.baseline : null,
    baselineLabel: r.baselineLabel,
    mesh: ok(r.mesh) ? r.mesh : null,
    ratio,
    target: r.target,
    met,
    ...(r.note === undefined ? {} : { note: r.note }),
  };
}

export function assertNever(x: never): never {
  throw new Error(`unexpected value ${JSON.stringify(x)}`);
}
