import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { LoopDelay } from '../procs/commands.js';

/** How often the monitor's timer fires (ms). Coarse on purpose: a finer timer would load the process it measures. */
export const LOOP_DELAY_RESOLUTION_MS = 10;

/**
 * Starts sampling this process's event-loop delay; the returned function stops and reports it (ms).
 * `monitorEventLoopDelay` records the whole time between two runs of its timer, so every sample
 * includes the timer's own interval; reported figures are what came on top of that interval (an
 * idle process reports about 0, a turn that blocked for 30 ms about 30).
 */
export function sampleLoopDelay(): () => LoopDelay {
  const h = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
  h.enable();
  return () => {
    h.disable();
    const ms = (ns: number) => Math.max(0, Math.round(ns / 1e4 - LOOP_DELAY_RESOLUTION_MS * 100) / 100);
    return { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) };
  };
}

/** The `loopDelayStart` / `loopDelayStop` commands of a worker (`LoopDelayCommands`), with their own state. */
export function loopDelayCommands(): { loopDelayStart(): null; loopDelayStop(): LoopDelay } {
  let stop: (() => LoopDelay) | undefined;
  return {
    loopDelayStart() {
      stop?.();
      stop = sampleLoopDelay();
      return null;
    },
    loopDelayStop() {
      if (!stop) throw new Error('loopDelayStart was not called');
      const d = stop();
      stop = undefined;
      return d;
    },
  };
}
