import { withFields } from '@a2a-mesh/protocol';
import { describe, expect, it } from 'vitest';

/**
 * `withFields` stands in for `{ ...base, ...fields }` on hot paths (V8's slow path for a spread
 * followed by new properties): it must give the same object, key order included, and leave the
 * base alone.
 */
describe('withFields', () => {
  it('makes what a spread makes: later fields win, undefined is kept, key order is the spread order', () => {
    const base = { messageId: 'm1', role: 'ROLE_USER', parts: [{ text: 'hi' }], taskId: 'old' };
    const fields = { taskId: 't1', contextId: 'c1', extra: undefined };
    const got = withFields(base, fields);
    const spread = { ...base, ...fields };
    expect(got).toEqual(spread);
    expect(Object.keys(got)).toEqual(Object.keys(spread));
    expect(JSON.stringify(got)).toBe(JSON.stringify(spread));
    expect('extra' in got).toBe(true);
  });

  it('copies: the base is not changed and nested values are shared, as with a spread', () => {
    const parts = [{ text: 'hi' }];
    const base = { parts };
    const got = withFields(base, { taskId: 't' });
    expect(base).toEqual({ parts });
    expect(got).not.toBe(base);
    expect(got.parts).toBe(parts);
  });

  it('copies own enumerable properties only, like a spread', () => {
    const proto = { inherited: 1 };
    const base = Object.create(proto, {
      own: { value: 2, enumerable: true },
      hidden: { value: 3, enumerable: false },
    }) as { own: number };
    expect(withFields(base, { added: 4 })).toEqual({ own: 2, added: 4 });
  });

  it('keeps an own __proto__ (as JSON.parse makes it) a plain property, as a spread does', () => {
    const base = JSON.parse('{"__proto__":{"polluted":true},"k":1}') as Record<string, unknown>;
    const got = withFields(base, { x: 1 }) as Record<string, unknown>;
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
    expect(got.polluted).toBeUndefined();
    expect(Object.hasOwn(got, '__proto__')).toBe(true);
    expect(got).toEqual({ ...base, x: 1 });
  });
});
