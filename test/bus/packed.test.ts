import { describe, expect, it } from 'vitest';
import { entryValue, kvValue } from '../../src/bus/bus.js';
import { EmbeddedBus } from '../../src/bus/embedded.js';
import { Packed, unpack } from '../../src/util/binary.js';

/** Counts how often its bytes are asked for. */
class CountingPacked<T> extends Packed<T> {
  encodes = 0;
  override get bytes(): Uint8Array {
    this.encodes++;
    return super.bytes;
  }
}

describe('Packed values on the embedded bus', () => {
  it('are kept as values: readers, followers and KV gets get the same object, never encoded', async () => {
    const bus = new EmbeddedBus();
    try {
      const value = { type: 'event', at: 1, event: { message: { parts: [{ text: 'hi' }] } } };
      const packed = new CountingPacked(value);
      const follower = bus.follow('a2atask.t1', 1);
      await bus.append('a2atask.t1', packed);
      const [read] = await bus.read('a2atask.t1', 1, 1);
      expect(entryValue(read!)).toBe(value);
      const it = follower[Symbol.asyncIterator]();
      expect(entryValue((await it.next()).value)).toBe(value);
      follower.close();
      const kv = await bus.kv('a2a-tasks');
      const record = { sequence: 0 };
      const kept = new CountingPacked(record);
      const r = await kv.create('t1', kept);
      expect(kvValue(await kv.get('t1').then((e) => e!))).toBe(record);
      await kv.update('t1', kept, r);
      expect(packed.encodes).toBe(0);
      expect(kept.encodes).toBe(0);
      // A reader that wants bytes still gets them (encoded once, on demand).
      expect(unpack(read!.data)).toEqual(value);
      expect(unpack((await kv.get('t1'))!.value)).toEqual(record);
      expect(packed.encodes).toBe(1);
    } finally {
      await bus.close();
    }
  });
});
