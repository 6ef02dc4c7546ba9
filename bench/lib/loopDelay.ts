import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { LoopDelay } from '../procs/commands.js';

/** Starts sampling this process's event-loop delay; the returned function stops and reports it (ms). */
export function sampleLoopDelay(): () => LoopDelay {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  return () => {
    h.disable();
    const ms = (ns: number) => Math.round(ns / 1e4) / 100;
    return { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) };
  };
}
