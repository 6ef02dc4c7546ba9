import { describe, expect, it, vi } from 'vitest';

/** `compiledOnUse` and `methodParser` compile with `z.compile`: once, on the first parse, never at creation. */
const compiles = vi.hoisted(() => ({ count: 0 }));
vi.mock('zod', async (importOriginal) => {
  const actual = await importOriginal<typeof import('zod')>();
  const compile: typeof actual.z.compile = (schema, options) => {
    compiles.count++;
    return actual.z.compile(schema, options);
  };
  return { ...actual, z: { ...actual.z, compile } };
});

const { compiledOnUse, methodParser, SendMessageRequestSchema } = await import('@a2a-mesh/protocol');

const body = { message: { messageId: 'm1', role: 'ROLE_USER', parts: [{ text: 'hi' }] } };

describe('compiled parsers', () => {
  it('compile on the first parse and then reuse the compiled schema', () => {
    const before = compiles.count;
    const parser = compiledOnUse(SendMessageRequestSchema);
    expect(compiles.count).toBe(before);
    expect(parser.safeParse(body).success).toBe(true);
    expect(parser.safeParse({}).success).toBe(false);
    expect(compiles.count).toBe(before + 1);
  });

  it('keep one parser per method and side', () => {
    const before = compiles.count;
    const params = methodParser('collaboration/share', 'params');
    expect(methodParser('collaboration/share', 'params')).toBe(params);
    expect(methodParser('collaboration/share', 'result')).not.toBe(params);
    params.safeParse({ collaborationId: 'c1', content: 1 });
    methodParser('collaboration/share', 'params').safeParse({ collaborationId: 'c1', content: 2 });
    expect(compiles.count).toBe(before + 1);
  });
});
