import { classify, failure, notification, request, success } from '@a2a-mesh/protocol';
import { describe, expect, it } from 'vitest';

describe('classify', () => {
  it('recognises a request with a numeric or string id, with or without params', () => {
    expect(classify({ jsonrpc: '2.0', id: 1, method: 'mesh/ping' })).toEqual({
      type: 'request',
      message: { jsonrpc: '2.0', id: 1, method: 'mesh/ping' },
    });
    const c = classify({ jsonrpc: '2.0', id: 'abc', method: 'm', params: { a: 1 } });
    expect(c).toEqual({
      type: 'request',
      message: { jsonrpc: '2.0', id: 'abc', method: 'm', params: { a: 1 } },
    });
    expect(classify({ jsonrpc: '2.0', id: 0, method: 'm', params: [1, 2] }).type).toBe('request');
  });

  it('recognises a notification (no id member, or id undefined)', () => {
    expect(classify({ jsonrpc: '2.0', method: 'collaboration/event', params: { x: 1 } })).toEqual({
      type: 'notification',
      message: { jsonrpc: '2.0', method: 'collaboration/event', params: { x: 1 } },
    });
    expect(classify({ jsonrpc: '2.0', method: 'n', id: undefined }).type).toBe('notification');
  });

  it('recognises success and error responses, including an error with a null id', () => {
    expect(classify({ jsonrpc: '2.0', id: 3, result: { ok: true } })).toEqual({
      type: 'response',
      message: { jsonrpc: '2.0', id: 3, result: { ok: true } },
    });
    expect(classify({ jsonrpc: '2.0', id: 3, result: null }).type).toBe('response');
    const err = { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } };
    expect(classify(err)).toEqual({ type: 'response', message: err });
    const withData = {
      jsonrpc: '2.0',
      id: 'q',
      error: { code: -32062, message: 'c', data: { reason: 'x' } },
    };
    expect(classify(withData)).toEqual({ type: 'response', message: withData });
  });

  it('keeps only the members the schemas keep (extra members are dropped, as zod does)', () => {
    const messages: [unknown, unknown][] = [
      [
        { jsonrpc: '2.0', id: 1, method: 'm', extra: 1 },
        { jsonrpc: '2.0', id: 1, method: 'm' },
      ],
      [
        { jsonrpc: '2.0', method: 'n', params: 1, x: 'y' },
        { jsonrpc: '2.0', method: 'n', params: 1 },
      ],
      [
        { jsonrpc: '2.0', id: 'r', result: 2, meta: {} },
        { jsonrpc: '2.0', id: 'r', result: 2 },
      ],
      [
        { jsonrpc: '2.0', id: 5, error: { code: -1, message: 'm', stack: 's' }, more: true },
        { jsonrpc: '2.0', id: 5, error: { code: -1, message: 'm' } },
      ],
    ];
    for (const [input, message] of messages) {
      const c = classify(input);
      expect(c.type === 'invalid' ? undefined : c.message).toStrictEqual(message);
    }
  });

  it.each<[string, unknown, string | number | null]>([
    ['a string', 'hello', null],
    ['null', null, null],
    ['a number', 42, null],
    ['an array (batches are split before classify)', [{ jsonrpc: '2.0', method: 'm' }], null],
    ['a missing jsonrpc member', { id: 1, method: 'm' }, 1],
    ['jsonrpc "1.0"', { jsonrpc: '1.0', id: 'a', method: 'm' }, 'a'],
    ['jsonrpc as a number', { jsonrpc: 2.0, id: 1, method: 'm' }, 1],
    ['an empty method', { jsonrpc: '2.0', id: 1, method: '' }, 1],
    ['a method that is not a string', { jsonrpc: '2.0', id: 1, method: 5 }, 1],
    ['a method over 128 characters', { jsonrpc: '2.0', id: 1, method: 'm'.repeat(129) }, 1],
    ['a fractional id', { jsonrpc: '2.0', id: 1.5, method: 'm' }, null],
    ['a null request id', { jsonrpc: '2.0', id: null, method: 'm' }, null],
    ['an object id', { jsonrpc: '2.0', id: { a: 1 }, method: 'm' }, null],
    ['an id over 256 characters', { jsonrpc: '2.0', id: 'i'.repeat(257), method: 'm' }, null],
    ['a notification with a bad method', { jsonrpc: '2.0', method: 7 }, null],
    ['a success without id', { jsonrpc: '2.0', result: 1 }, null],
    [
      'an error whose code is not an integer',
      { jsonrpc: '2.0', id: 4, error: { code: 'x', message: 'm' } },
      4,
    ],
    ['an error without message', { jsonrpc: '2.0', id: 4, error: { code: -1 } }, 4],
    ['an empty object', { jsonrpc: '2.0' }, null],
    ['no method, result or error', { jsonrpc: '2.0', id: 9, params: {} }, 9],
  ])('says why %s is invalid, keeping a readable id', (_name, value, id) => {
    const c = classify(value);
    expect(c.type).toBe('invalid');
    if (c.type !== 'invalid') return;
    expect(c.id).toBe(id);
    expect(c.reason.length).toBeGreaterThan(0);
  });
});

describe('message builders', () => {
  it('omit params when undefined and map an undefined result to null', () => {
    expect(request(1, 'm')).toEqual({ jsonrpc: '2.0', id: 1, method: 'm' });
    expect('params' in request(1, 'm')).toBe(false);
    expect(request('a', 'm', { x: 1 })).toEqual({ jsonrpc: '2.0', id: 'a', method: 'm', params: { x: 1 } });
    expect(notification('n')).toEqual({ jsonrpc: '2.0', method: 'n' });
    expect(notification('n', [1])).toEqual({ jsonrpc: '2.0', method: 'n', params: [1] });
    expect(success(2, undefined)).toEqual({ jsonrpc: '2.0', id: 2, result: null });
    expect(success(2, 0)).toEqual({ jsonrpc: '2.0', id: 2, result: 0 });
    expect(failure(null, { code: -32600, message: 'x' })).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: { code: -32600, message: 'x' },
    });
  });

  it('build messages that classify as what they are', () => {
    expect(classify(request(1, 'm', {})).type).toBe('request');
    expect(classify(notification('m')).type).toBe('notification');
    expect(classify(success(1, undefined)).type).toBe('response');
    expect(classify(failure(1, { code: -1, message: 'e' })).type).toBe('response');
  });
});
