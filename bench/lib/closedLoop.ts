import { sleep } from './rawAgent.js';

/** What a closed-loop run measured: completions in the window, and failed calls over the whole run. */
export interface ClosedLoopResult {
  acked: number;
  seconds: number;
  rate: number;
  errors: number;
  /** The first failure's message, when any call failed. */
  firstError?: string;
}

/**
 * Runs one chain per entry of `ops`, each calling its op again as soon as the previous completes
 * (a failure counts and pauses 5 ms). Counts completions during `durationMs` after `warmupMs`, then
 * stops the chains and waits at most `drainMs` for in-flight calls.
 */
export async function closedLoop(
  ops: readonly (() => Promise<unknown>)[],
  a: { warmupMs: number; durationMs: number; drainMs: number },
): Promise<ClosedLoopResult> {
  let running = true;
  let acked = 0;
  let errors = 0;
  let firstError: string | undefined;
  const chains = ops.map(async (op) => {
    while (running) {
      try {
        await op();
        acked++;
      } catch (error) {
        errors++;
        firstError ??= error instanceof Error ? error.message : String(error);
        await sleep(5);
      }
    }
  });
  await sleep(a.warmupMs);
  const a0 = acked;
  const t0 = performance.now();
  await sleep(a.durationMs);
  const a1 = acked;
  const seconds = (performance.now() - t0) / 1000;
  running = false;
  await Promise.race([Promise.all(chains), sleep(a.drainMs)]);
  return {
    acked: a1 - a0,
    seconds,
    rate: (a1 - a0) / seconds,
    errors,
    ...(firstError === undefined ? {} : { firstError }),
  };
}
