import { afterEach, describe, expect, it, vi } from 'vitest';
import { heartbeatSlots, SpreadHeartbeat } from '../../src/transport/heartbeat.js';
import { eventually, startNode } from '../helpers/node.js';
import { rawClient } from '../helpers/rawClient.js';
import { rawH2 } from './h2Raw.js';

/**
 * A node pings every connection once per heartbeat interval. Pinging all of them in one turn (a
 * socket write each) stalled a node with thousands of connections, and whatever shared a process or
 * core with it, once per interval; the pings are spread over the interval instead.
 */
describe('SpreadHeartbeat', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('visits every member once per interval, a slot per tick', () => {
    vi.useFakeTimers();
    const visits: { member: number; at: number }[] = [];
    const hb = new SpreadHeartbeat<number>(1000, (member) => visits.push({ member, at: Date.now() }));
    const t0 = Date.now();
    for (let i = 0; i < 100; i++) hb.add(i);
    hb.add(7); // added twice: still one member
    vi.advanceTimersByTime(1000);
    expect(visits.map((v) => v.member).sort((a, b) => a - b)).toEqual([...Array(100).keys()]);
    const perTick = new Map<number, number>();
    for (const v of visits) perTick.set(v.at - t0, (perTick.get(v.at - t0) ?? 0) + 1);
    expect(perTick.size).toBe(20);
    expect(Math.max(...perTick.values())).toBe(5);
    vi.advanceTimersByTime(1000);
    expect(visits.length).toBe(200);
    hb.delete(3);
    vi.advanceTimersByTime(1000);
    expect(visits.length).toBe(299);
    expect(visits.slice(200).some((v) => v.member === 3)).toBe(false);
    hb.stop();
    vi.advanceTimersByTime(5000);
    expect(visits.length).toBe(299);
  });

  it('cuts an interval into up to 20 slots at least 50 ms apart', () => {
    expect(heartbeatSlots(25_000)).toBe(20);
    expect(heartbeatSlots(1000)).toBe(20);
    expect(heartbeatSlots(500)).toBe(10);
    expect(heartbeatSlots(100)).toBe(2);
    expect(heartbeatSlots(20)).toBe(1);
    expect(heartbeatSlots(0)).toBe(1);
  });
});

describe('node heartbeat', () => {
  it('spreads WebSocket pings over the interval and still pings every connection', async () => {
    const node = await startNode({ heartbeatMs: 1000 });
    const pings: { client: number; at: number }[] = [];
    const clients = await Promise.all(Array.from({ length: 40 }, () => rawClient(node.url)));
    const t0 = performance.now();
    clients.forEach((c, i) => {
      c.ws.on('ping', () => pings.push({ client: i, at: performance.now() - t0 }));
    });
    await eventually(() => expect(new Set(pings.map((p) => p.client)).size).toBe(40), 3000);
    // The first ping of each client, by 50 ms tick: all 40 in one burst before; about 2 per tick now.
    const first = new Map<number, number>();
    for (const p of pings) if (!first.has(p.client)) first.set(p.client, p.at);
    const buckets = new Set([...first.values()].map((at) => Math.floor(at / 50)));
    expect(buckets.size).toBeGreaterThanOrEqual(10);
    for (const c of clients) c.close();
  });

  it('spreads HTTP/2 session pings too, and each attached stream is still pinged', async () => {
    const node = await startNode({ heartbeatMs: 1000 });
    const h = rawH2(node.httpUrl);
    const streams = [];
    for (let i = 0; i < 20; i++) streams.push(h.stream(await h.hello(`agent-${i}`)));
    const t0 = performance.now();
    const firstPing = new Map<number, number>();
    while (firstPing.size < streams.length && performance.now() - t0 < 3000) {
      streams.forEach((s, i) => {
        if (!firstPing.has(i) && s.comments.includes('ping')) firstPing.set(i, performance.now() - t0);
      });
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(firstPing.size).toBe(20);
    const buckets = new Set([...firstPing.values()].map((at) => Math.floor(at / 50)));
    expect(buckets.size).toBeGreaterThanOrEqual(8);
  });
});
