import { describe, expect, it } from 'vitest';
import { backoffDelay, backoffPolicy } from '../../packages/client/src/backoff.js';

const almostOne = 1 - Number.EPSILON;

describe('backoff with full jitter', () => {
  it('fills in the defaults', () => {
    const p = backoffPolicy();
    expect(p.initialDelayMs).toBe(100);
    expect(p.maxDelayMs).toBe(5_000);
    expect(p.maxAttempts).toBe(Number.POSITIVE_INFINITY);
  });

  it('draws from [0, ceiling): 0 at the bottom, just under the ceiling at the top', () => {
    expect(backoffDelay(0, backoffPolicy({ random: () => 0 }))).toBe(0);
    expect(backoffDelay(0, backoffPolicy({ random: () => almostOne }))).toBe(99);
    expect(backoffDelay(3, backoffPolicy({ random: () => 0.5 }))).toBe(400);
  });

  it('doubles the ceiling per attempt until maxDelayMs', () => {
    const top = backoffPolicy({ initialDelayMs: 100, maxDelayMs: 5_000, random: () => almostOne });
    const ceilings = [0, 1, 2, 3, 4, 5, 6, 7].map((a) => backoffDelay(a, top) + 1);
    expect(ceilings).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000]);
  });

  it('stays within bounds for any attempt and any random value', () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const p = backoffPolicy({ initialDelayMs: 50, maxDelayMs: 2_000, random });
    for (let attempt = 0; attempt < 2_000; attempt++) {
      const d = backoffDelay(attempt, p);
      expect(Number.isInteger(d)).toBe(true);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(Math.min(2_000, 50 * 2 ** attempt));
    }
  });

  it('spreads delays over the whole range (full jitter, not equal jitter)', () => {
    let i = 0;
    const values = [0.01, 0.25, 0.5, 0.75, 0.99];
    const p = backoffPolicy({
      initialDelayMs: 1_000,
      maxDelayMs: 1_000,
      random: () => values[i++ % values.length]!,
    });
    const delays = values.map(() => backoffDelay(5, p));
    expect(delays).toEqual([10, 250, 500, 750, 990]);
  });

  it('clamps a misbehaving random source', () => {
    expect(backoffDelay(0, backoffPolicy({ random: () => 7 }))).toBe(100);
    expect(backoffDelay(0, backoffPolicy({ random: () => -1 }))).toBe(0);
  });
});
