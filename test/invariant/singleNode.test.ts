import { describe, expect, it, onTestFailed } from 'vitest';
import { pickSeed, runInvariant } from '../helpers/invariant.js';
import { startNode } from '../helpers/node.js';

describe('seeded random collaboration invariant (one node)', () => {
  it('keeps every member gap-free, identical and equal to the node under joins, leaves and cuts', async () => {
    const seed = pickSeed();
    onTestFailed(() => console.error(`invariant failed; replay with INVARIANT_SEED=${seed}`));
    const node = await startNode();
    const report = await runInvariant({ seed, urls: [node.url], agents: 6, steps: 400 });
    expect(report.problems, `seed ${seed}`).toEqual([]);
    expect(report.disconnects, `seed ${seed}`).toBeGreaterThan(0);
    expect(report.eventsChecked, `seed ${seed}`).toBeGreaterThan(report.finalOffset);
  }, 120_000);
});
