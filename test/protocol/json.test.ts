import { isJson, JsonSchema, MAX_JSON_DEPTH, MetadataSchema } from '@a2a-mesh/protocol';
import { describe, expect, it } from 'vitest';

function nested(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { k: v };
  return v;
}

describe('JSON values (isJson, JsonSchema)', () => {
  it('accepts what JSON can carry, shared (not cyclic) references included', () => {
    const shared = { a: 1 };
    for (const v of [
      'text',
      0,
      -1.5e300,
      true,
      null,
      [],
      {},
      { a: [1, 'b', null, { c: false }] },
      Object.assign(Object.create(null), { bare: 1 }),
      { one: shared, two: shared },
      JSON.parse('{"__proto__":{"x":1}}'),
    ]) {
      expect(isJson(v)).toBe(true);
      expect(JsonSchema.safeParse(v).success).toBe(true);
    }
  });

  it('refuses what JSON cannot carry', () => {
    for (const v of [
      undefined,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      10n,
      Symbol('s'),
      () => 1,
      new Date(0),
      new Map(),
      { a: undefined },
      [1, undefined],
      { deep: { deeper: [Number.NaN] } },
    ]) {
      expect(isJson(v)).toBe(false);
      expect(JsonSchema.safeParse(v).success).toBe(false);
    }
  });

  it('refuses values nested deeper than MAX_JSON_DEPTH, and cycles, without overflowing the stack', () => {
    expect(isJson(nested(MAX_JSON_DEPTH))).toBe(true);
    expect(isJson(nested(MAX_JSON_DEPTH + 1))).toBe(false);
    // JSON.parse builds values far deeper than a recursive check could walk.
    const deep = JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`) as unknown;
    expect(JsonSchema.safeParse(deep).success).toBe(false);
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(isJson(cyclic)).toBe(false);
  });

  it('says where and why in the issue, and passes valid values on as they are', () => {
    const r = MetadataSchema.safeParse({ ok: 1, bad: Number.NaN });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['bad']);
    expect(r.error?.issues[0]?.message).toMatch(/expected a JSON value/);
    const value = { a: [1, 2] };
    expect(JsonSchema.parse(value)).toBe(value);
  });
});
