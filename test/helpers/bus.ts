import type { LogEntry, LogFollower } from '../../src/bus/bus.js';

// Small helpers shared by the bus suites.

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
/** The integers from `from` to `to`, both included. */
export const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Collects a follower's entries in the background until it ends; `done` resolves with its error, if any. */
export function collect(follower: LogFollower): { entries: LogEntry[]; done: Promise<Error | undefined> } {
  const entries: LogEntry[] = [];
  const done = (async () => {
    try {
      for await (const e of follower) entries.push(e);
      return undefined;
    } catch (err) {
      return err as Error;
    }
  })();
  return { entries, done };
}
