import { RpcError } from '@a2a-mesh/protocol';
import { describe, expect, it } from 'vitest';
import { RateLimiter, rateLimitDefaults } from '../../src/limits/rateLimiter.js';
import { TokenBucket } from '../../src/limits/tokenBucket.js';

describe('TokenBucket', () => {
  it('takes while tokens last, says how long to wait, refills continuously up to capacity', () => {
    const b = new TokenBucket(3, 2, 0);
    expect([b.take(1, 0), b.take(1, 0), b.take(1, 0)]).toEqual([0, 0, 0]);
    expect(b.take(1, 0)).toBe(500);
    expect(b.take(1, 500)).toBe(0);
    expect(b.tokens(10_000)).toBe(3);
    expect(b.full(10_000)).toBe(true);
    expect(b.take(4, 10_000)).toBe(Number.POSITIVE_INFINITY);
  });

  it('charges into debt and reports when it is paid off', () => {
    const b = new TokenBucket(100, 50, 0);
    b.charge(200, 0);
    expect(b.tokens(0)).toBe(-100);
    expect(b.debtMs(0)).toBe(2000);
    expect(b.debtMs(2000)).toBe(0);
  });
});

describe('RateLimiter', () => {
  it('bills by IP before hello and by agent after; refusals carry retryAfterMs; persistent refusals mark abuse', () => {
    const limiter = new RateLimiter(
      rateLimitDefaults(1024, {
        ipRequestsPerSec: 1,
        ipRequestBurst: 1,
        agentRequestsPerSec: 1,
        agentRequestBurst: 2,
        abuseRefusals: 3,
      }),
    );
    const m = limiter.meter('10.0.0.1');
    m.request(0);
    expect(() => m.request(0)).toThrow(RpcError);
    m.bind('alice');
    m.request(0);
    m.request(0);
    let error: RpcError | undefined;
    try {
      m.request(0);
    } catch (e) {
      error = e as RpcError;
    }
    expect(error?.data).toMatchObject({ reason: 'rate_limited', limit: 'requests', retryAfterMs: 1000 });
    expect(m.abusive).toBeUndefined();
    expect(() => m.request(0)).toThrow();
    expect(() => m.request(0)).toThrow();
    expect(m.abusive).toBe('requests');
    // Another session of the same agent shares its buckets.
    const other = limiter.meter('10.0.0.2');
    other.bind('alice');
    expect(() => other.request(0)).toThrow(RpcError);
    limiter.close();
  });

  it('refuses requests while bytes are in debt, flags a flood beyond the burst, forgets idle keys', () => {
    const limiter = new RateLimiter(
      rateLimitDefaults(1000, { agentBytesPerSec: 1000, agentBytesBurst: 2000 }),
    );
    const m = limiter.meter('ip');
    m.bind('a');
    expect(m.frame(2500, 0)).toBe(true);
    expect(() => m.request(0)).toThrow(/bytes/);
    expect(m.frame(1000, 0)).toBe(true);
    expect(m.frame(1000, 0)).toBe(false);
    expect(m.abusive).toBe('bytes');
    expect(limiter.size).toBeGreaterThan(0);
    limiter.sweep(Date.now() + 3_600_000);
    expect(limiter.size).toBe(0);
    limiter.close();
  });

  it('admits new connections per IP up to a burst', () => {
    const limiter = new RateLimiter(
      rateLimitDefaults(1000, { ipConnectionsPerSec: 1, ipConnectionBurst: 2 }),
    );
    expect([limiter.admitConnection('a', 0), limiter.admitConnection('a', 0)]).toEqual([0, 0]);
    expect(limiter.admitConnection('a', 0)).toBe(1000);
    expect(limiter.admitConnection('b', 0)).toBe(0);
    limiter.close();
  });
});
