import { describe, expect, it } from 'vitest';
import { sampleLoopDelay } from '../../bench/lib/loopDelay.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The harness prints each process's event-loop delay next to latency figures; a delay that includes
 * the monitor's own 10 ms timer interval reads as 10 ms of stall in a process that has none.
 */
describe('sampleLoopDelay', () => {
  it('reports about nothing for an idle process, not the sampling interval', async () => {
    const stop = sampleLoopDelay();
    await sleep(300);
    const d = stop();
    expect(d.p50).toBeLessThan(3);
    expect(d.p50).toBeGreaterThanOrEqual(0);
  });

  it('reports a turn that blocks as a delay of about its length', async () => {
    const stop = sampleLoopDelay();
    await sleep(50);
    const until = performance.now() + 60;
    while (performance.now() < until) {
      // blocks the event loop
    }
    await sleep(50);
    const d = stop();
    expect(d.max).toBeGreaterThanOrEqual(45);
    expect(d.max).toBeLessThan(200);
  });
});
