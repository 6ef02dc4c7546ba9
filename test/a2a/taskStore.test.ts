import { describe, expect, it, onTestFinished } from 'vitest';
import type { TaskLogEntry } from '../../src/a2a/taskFold.js';
import { TaskStore } from '../../src/a2a/taskStore.js';
import { EmbeddedBus } from '../../src/bus/embedded.js';
import { pendingRecord, readCountingBus } from './helpers.js';

/**
 * Two TaskStores on one bus stand for two nodes. An append first tries the record its node holds,
 * without reading the log; these check that a stale held record never decides anything: a conflict,
 * a refusal or "nothing to write" is decided again on the caught-up record.
 */
async function twoNodes(): Promise<{ a: TaskStore; b: TaskStore; reads: string[] }> {
  const inner = new EmbeddedBus();
  onTestFinished(() => inner.close());
  const reads: string[] = [];
  const counted = readCountingBus(inner, (log, from) => reads.push(`${log}@${from}`));
  return { a: await TaskStore.create(counted), b: await TaskStore.create(inner), reads };
}

const record = (id: string) => pendingRecord(id);

const input = (at: number): TaskLogEntry => ({
  type: 'input',
  at,
  message: { messageId: `m${at}`, role: 'ROLE_USER', parts: [{ text: `${at}` }] },
});

describe('TaskStore.append on a held record', () => {
  it('appends without reading the log when the held record is current', async () => {
    const { a, reads } = await twoNodes();
    await a.create('t1', record('t1'));
    const r = await a.append('t1', () => [input(2)]);
    expect(r.sequences).toEqual([1]);
    expect(reads).toEqual([]);
  });

  it('retries on the caught-up record when another node appended (compare-and-set conflict)', async () => {
    const { a, b, reads } = await twoNodes();
    await a.create('t2', record('t2'));
    await b.append('t2', () => [input(2)]);
    const seen: number[] = [];
    const r = await a.append('t2', (rec) => {
      seen.push(rec.sequence);
      return [input(3)];
    });
    expect(seen).toEqual([0, 1]);
    expect(r.sequences).toEqual([2]);
    expect(r.record.turn).toBe(3);
    // The retry caught up from the log (the KV record is then caught up too: b wrote it last).
    expect(reads[0]).toBe('a2atask.t2@1');
  });

  it('decides "nothing to write" and refusals again on the caught-up record', async () => {
    const { a, b } = await twoNodes();
    await a.create('t3', record('t3'));
    await b.append('t3', () => [input(2)]);
    // Held by a: turn 1. The current turn is 2: only the caught-up record says so.
    const ended = await a.append('t3', (rec) => (rec.turn === 2 ? [{ type: 'end', at: 3 }] : []));
    expect(ended.sequences).toEqual([2]);
    await b.append('t3', () => [input(4)]);
    const refused = await a.append('t3', (rec) => {
      if (rec.turn !== 3) throw new Error(`stale turn ${rec.turn}`);
      return [{ type: 'end', at: 5 }];
    });
    expect(refused.sequences).toEqual([4]);
    // A refusal on the current record stands.
    await expect(
      a.append('t3', () => {
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
  });
});
