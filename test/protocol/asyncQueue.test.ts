import { AsyncQueue } from '@a2a-mesh/protocol';
import { describe, expect, it } from 'vitest';

async function collect<T>(q: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of q) out.push(x);
  return out;
}

describe('AsyncQueue', () => {
  it('yields pushed items in order, then ends after end() once they are read', async () => {
    const q = new AsyncQueue<number>();
    q.push(1);
    q.push(2);
    expect(q.size).toBe(2);
    q.end();
    q.push(3); // ignored after end
    expect(q.ended).toBe(true);
    expect(await collect(q)).toEqual([1, 2]);
    expect(q.size).toBe(0);
  });

  it('hands an item straight to a waiting reader', async () => {
    const q = new AsyncQueue<string>();
    const next = q.next();
    q.push('a');
    expect(await next).toEqual({ value: 'a', done: false });
    expect(q.size).toBe(0);
  });

  it('ends a waiting reader on end()', async () => {
    const q = new AsyncQueue<string>();
    const next = q.next();
    q.end();
    expect(await next).toEqual({ value: undefined, done: true });
    expect(await q.next()).toEqual({ value: undefined, done: true });
  });

  it('interleaves producer and consumer without loss', async () => {
    const q = new AsyncQueue<number>();
    const reading = collect(q);
    for (let i = 0; i < 5000; i++) {
      q.push(i);
      if (i % 7 === 0) await Promise.resolve();
    }
    q.end();
    const out = await reading;
    expect(out).toHaveLength(5000);
    expect(out.every((v, i) => v === i)).toBe(true);
  });

  it('keeps order across its internal compaction (more than 1024 buffered reads)', async () => {
    const q = new AsyncQueue<number>();
    for (let i = 0; i < 3000; i++) q.push(i);
    const first: number[] = [];
    for (let i = 0; i < 2000; i++) first.push((await q.next()).value as number);
    for (let i = 3000; i < 3500; i++) q.push(i);
    q.end();
    const rest = await collect(q);
    expect([...first, ...rest]).toEqual(Array.from({ length: 3500 }, (_, i) => i));
  });

  it('fail() delivers queued items first, then throws the error once, then is done', async () => {
    const q = new AsyncQueue<number>();
    q.push(1);
    const boom = new Error('boom');
    q.fail(boom);
    expect(await q.next()).toEqual({ value: 1, done: false });
    await expect(q.next()).rejects.toBe(boom);
    expect(await q.next()).toEqual({ value: undefined, done: true });
  });

  it('fail() makes for-await throw', async () => {
    const q = new AsyncQueue<number>();
    q.push(1);
    q.fail(new Error('log trimmed'));
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const x of q) seen.push(x);
      })(),
    ).rejects.toThrow('log trimmed');
    expect(seen).toEqual([1]);
  });

  // BUG (packages/protocol/src/asyncQueue.ts): fail() calls end() while a reader is waiting, and end()
  // resolves that reader with done:true before fail() can reject it, so the error is lost and a
  // for-await loop ends normally. `it.fails` keeps the suite green until it is fixed; then flip it to `it`.
  it('fail() rejects a reader that is already waiting', async () => {
    const q = new AsyncQueue<number>();
    const waiting = q.next();
    const boom = new Error('boom');
    q.fail(boom);
    await expect(waiting).rejects.toBe(boom);
  });

  it('fail() after end() is ignored', async () => {
    const q = new AsyncQueue<number>();
    q.end();
    q.fail(new Error('late'));
    expect(await q.next()).toEqual({ value: undefined, done: true });
  });

  it('runs onReturn once: on end(), on fail() and when the consumer breaks', async () => {
    let calls = 0;
    const q = new AsyncQueue<number>(() => calls++);
    q.end();
    q.end();
    expect(calls).toBe(1);

    let failed = 0;
    const f = new AsyncQueue<number>(() => failed++);
    f.fail(new Error('x'));
    expect(failed).toBe(1);

    let broke = 0;
    const b = new AsyncQueue<number>(() => broke++);
    b.push(1);
    b.push(2);
    b.push(3);
    for await (const x of b) {
      if (x === 1) break;
    }
    expect(broke).toBe(1);
    expect(b.ended).toBe(true);
    expect(b.size).toBe(0);
    b.push(4);
    expect(await b.next()).toEqual({ value: undefined, done: true });
  });
});
