import { describe, expect, it } from 'vitest';
import { PrefixMap } from '../../src/bus/prefixMap.js';

describe('PrefixMap', () => {
  it('lists exactly the keys a scan would, through sets, overwrites and deletes', () => {
    const map = new PrefixMap<number>();
    const plain = new Map<string, number>();
    // A fixed pseudo-random sequence: keys with and without dots, sharing first tokens.
    let seed = 7;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const tokens = ['a', 'ab', 'abc', 'b', 'agent-1', 'agent-10', 'x_y'];
    const keyAt = () => {
      const t = tokens[next(tokens.length)]!;
      const depth = next(3);
      return depth === 0 ? t : `${t}.${['n1', 'n2', 'n10'][next(3)]}${depth === 2 ? '.z' : ''}`;
    };
    const prefixes = [
      '',
      'a',
      'ab',
      'ab.',
      'agent-1',
      'agent-1.',
      'agent-1.n1',
      'b.n',
      'x_y.n10.z',
      'zzz',
      'zzz.',
    ];
    for (let step = 0; step < 2000; step++) {
      const key = keyAt();
      if (next(3) === 0) expect(map.delete(key)).toBe(plain.delete(key));
      else {
        map.set(key, step);
        plain.set(key, step);
      }
      if (step % 50 === 0) {
        for (const prefix of prefixes) {
          const expected = [...plain].filter(([k]) => k.startsWith(prefix)).sort();
          expect(map.withPrefix(prefix).sort(), `${prefix} at step ${step}`).toEqual(expected);
        }
      }
    }
    expect(map.size).toBe(plain.size);
    map.clear();
    expect(map.withPrefix('')).toEqual([]);
    map.set('a.b', 1);
    expect(map.withPrefix('a.')).toEqual([['a.b', 1]]);
  });
});
