import {
  codecFor,
  DEFAULT_MAX_MESSAGE_BYTES,
  jsonCodec,
  MeshError,
  msgpackCodec,
  Subprotocol,
} from '@a2a-mesh/protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';

const sample = {
  jsonrpc: '2.0',
  id: 7,
  method: 'collaboration/share',
  params: { collaborationId: 'c1', content: { text: 'héllo ✓ 🦊', n: 2.5, list: [1, null, true] } },
};

function decodeError(fn: () => unknown): MeshError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(MeshError);
    return error as MeshError;
  }
  throw new Error('expected decode to throw');
}

const utf8 = (s: string) => new TextEncoder().encode(s);

afterEach(() => {
  vi.restoreAllMocks();
});

describe('jsonCodec', () => {
  it('names its subprotocol and uses text frames', () => {
    expect(jsonCodec.name).toBe('json');
    expect(jsonCodec.subprotocol).toBe('a2a-mesh.v1.json');
    expect(jsonCodec.binary).toBe(false);
  });

  it('round-trips a message, a batch and non-ASCII text', () => {
    const frame = jsonCodec.encode(sample);
    expect(typeof frame).toBe('string');
    expect(jsonCodec.decode(frame)).toEqual(sample);
    const batch = [sample, { jsonrpc: '2.0', method: 'n' }];
    expect(jsonCodec.decode(jsonCodec.encode(batch))).toEqual(batch);
  });

  it('decodes UTF-8 bytes as well as strings', () => {
    expect(jsonCodec.decode(utf8(JSON.stringify(sample)))).toEqual(sample);
  });

  it('accepts a frame of exactly the limit and refuses one byte more with too_large', () => {
    const exact = JSON.stringify({ a: 'x'.repeat(20) });
    const max = exact.length;
    expect(jsonCodec.decode(exact, max)).toEqual({ a: 'x'.repeat(20) });
    const over = JSON.stringify({ a: 'x'.repeat(21) });
    expect(over.length).toBe(max + 1);
    expect(decodeError(() => jsonCodec.decode(over, max)).code).toBe('too_large');
    expect(decodeError(() => jsonCodec.decode(utf8(over), max)).code).toBe('too_large');
    expect(jsonCodec.decode(utf8(exact), max)).toEqual({ a: 'x'.repeat(20) });
  });

  it('counts multi-byte UTF-8 near the limit, not UTF-16 units', () => {
    // "é" is 2 bytes, "✓" 3, "🦊" 4 (two UTF-16 units).
    const two = `"${'é'.repeat(49)}"`; // 100 bytes, 51 units
    expect(utf8(two).byteLength).toBe(100);
    expect(jsonCodec.decode(two, 100)).toBe('é'.repeat(49));
    expect(decodeError(() => jsonCodec.decode(`"${'é'.repeat(49)}x"`, 100)).code).toBe('too_large');

    const three = `"${'✓'.repeat(33)}"`; // 101 bytes, 35 units
    expect(utf8(three).byteLength).toBe(101);
    expect(decodeError(() => jsonCodec.decode(three, 100)).code).toBe('too_large');
    expect(jsonCodec.decode(three, 101)).toBe('✓'.repeat(33));

    const four = `"${'🦊'.repeat(25)}"`; // 102 bytes, 52 units
    expect(utf8(four).byteLength).toBe(102);
    expect(decodeError(() => jsonCodec.decode(four, 101)).code).toBe('too_large');
    expect(jsonCodec.decode(four, 102)).toBe('🦊'.repeat(25));
  });

  it('refuses an oversized frame before parsing it', () => {
    const parse = vi.spyOn(JSON, 'parse');
    const err = decodeError(() => jsonCodec.decode(`{"broken": ${'1'.repeat(200)}`, 100));
    expect(err.code).toBe('too_large');
    expect(parse).not.toHaveBeenCalled();
  });

  it('uses the 1 MiB default limit', () => {
    expect(DEFAULT_MAX_MESSAGE_BYTES).toBe(1024 * 1024);
    const body = 'a'.repeat(DEFAULT_MAX_MESSAGE_BYTES - 2);
    expect(jsonCodec.decode(`"${body}"`)).toHaveLength(body.length);
    expect(decodeError(() => jsonCodec.decode(`"${body}a"`)).code).toBe('too_large');
  });

  it.each([
    ['truncated JSON', '{"jsonrpc":"2.0",'],
    ['trailing garbage', '{"a":1} x'],
    ['single quotes', "{'a':1}"],
    ['empty frame', ''],
  ])('refuses %s with protocol', (_name, frame) => {
    const err = decodeError(() => jsonCodec.decode(frame));
    expect(err.code).toBe('protocol');
    expect(err.cause).toBeInstanceOf(SyntaxError);
  });

  it('refuses bytes that are not valid UTF-8 with protocol', () => {
    const err = decodeError(() => jsonCodec.decode(new Uint8Array([0x22, 0xff, 0xfe, 0x22])));
    expect(err.code).toBe('protocol');
    expect(err.message).toMatch(/UTF-8/);
  });
});

describe('msgpackCodec', () => {
  it('names its subprotocol and uses binary frames', () => {
    expect(msgpackCodec.name).toBe('msgpack');
    expect(msgpackCodec.subprotocol).toBe('a2a-mesh.v1.msgpack');
    expect(msgpackCodec.binary).toBe(true);
  });

  it('round-trips a message and a batch as plain objects', () => {
    const frame = msgpackCodec.encode(sample);
    expect(frame).toBeInstanceOf(Uint8Array);
    const back = msgpackCodec.decode(frame) as Record<string, unknown>;
    expect(back).toEqual(sample);
    expect(back).not.toBeInstanceOf(Map);
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    const batch = [sample, { jsonrpc: '2.0', id: 'x', result: null }];
    expect(msgpackCodec.decode(msgpackCodec.encode(batch))).toEqual(batch);
  });

  it('writes plain msgpack maps (no msgpackr records), readable by any msgpack peer', () => {
    const frame = msgpackCodec.encode({ a: 1 }) as Uint8Array;
    // fixmap of 1 entry, fixstr "a", positive fixint 1.
    expect([...frame]).toEqual([0x81, 0xa1, 0x61, 0x01]);
  });

  it('accepts a frame of exactly the limit and refuses one byte more with too_large', () => {
    const frame = msgpackCodec.encode(sample) as Uint8Array;
    expect(msgpackCodec.decode(frame, frame.byteLength)).toEqual(sample);
    const err = decodeError(() => msgpackCodec.decode(frame, frame.byteLength - 1));
    expect(err.code).toBe('too_large');
  });

  it('refuses an oversized frame before parsing it, even when it is garbage', () => {
    const garbage = new Uint8Array(101).fill(0x92);
    expect(decodeError(() => msgpackCodec.decode(garbage, 100)).code).toBe('too_large');
  });

  it('refuses text frames with protocol', () => {
    const err = decodeError(() => msgpackCodec.decode(JSON.stringify(sample)));
    expect(err.code).toBe('protocol');
    expect(err.message).toMatch(/binary/);
  });

  it('refuses an oversized text frame with too_large (size is checked first)', () => {
    expect(decodeError(() => msgpackCodec.decode('x'.repeat(101), 100)).code).toBe('too_large');
  });

  it.each([
    ['empty frame', []],
    ['truncated array', [0x92, 0x01]],
    ['trailing bytes', [0x01, 0x02]],
    ['truncated string', [0xd9, 0x05, 0x61]],
  ])('refuses %s with protocol', (_name, bytes) => {
    const err = decodeError(() => msgpackCodec.decode(new Uint8Array(bytes)));
    expect(err.code).toBe('protocol');
    expect(err.cause).toBeDefined();
  });
});

describe('codecFor', () => {
  it('maps the two subprotocols to their codecs and nothing else', () => {
    expect(codecFor(Subprotocol.Json)).toBe(jsonCodec);
    expect(codecFor(Subprotocol.Msgpack)).toBe(msgpackCodec);
    expect(codecFor('a2a-mesh.v2.json')).toBeUndefined();
    expect(codecFor('json')).toBeUndefined();
    expect(codecFor('')).toBeUndefined();
  });
});
