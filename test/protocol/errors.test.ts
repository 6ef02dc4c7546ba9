import {
  CloseCode,
  ErrorCode,
  type ErrorName,
  isRetryableClose,
  MeshError,
  RETRYABLE_REASONS,
  RpcError,
} from '@a2a-mesh/protocol';
import { describe, expect, it } from 'vitest';

describe('ErrorCode', () => {
  const entries = Object.entries(ErrorCode) as [ErrorName, { code: number; reason: string }][];

  it('has unique codes and unique snake_case reasons', () => {
    expect(new Set(entries.map(([, v]) => v.code)).size).toBe(entries.length);
    expect(new Set(entries.map(([, v]) => v.reason)).size).toBe(entries.length);
    for (const [, v] of entries) expect(v.reason).toMatch(/^[a-z]+(_[a-z]+)*$/);
  });

  it('keeps codes in their families: JSON-RPC standard, A2A -32001..-32009, mesh -32060..-32079', () => {
    const standard = new Set([-32700, -32600, -32601, -32602, -32603]);
    for (const [name, { code }] of entries) {
      const ok =
        standard.has(code) || (code <= -32001 && code >= -32009) || (code <= -32060 && code >= -32079);
      expect(ok, `${name} ${code}`).toBe(true);
    }
  });

  it('pins the published codes a client branches on', () => {
    expect(ErrorCode.StateConflict).toEqual({ code: -32062, reason: 'state_conflict' });
    expect(ErrorCode.HelloRequired).toEqual({ code: -32073, reason: 'hello_required' });
    expect(ErrorCode.CollaborationNotFound.code).toBe(-32060);
    expect(ErrorCode.TaskNotFound.code).toBe(-32001);
    expect(ErrorCode.VersionNotSupported.code).toBe(-32009);
  });
});

describe('RpcError', () => {
  it('of() builds a known error with extra data, and the reason cannot be overridden', () => {
    const e = RpcError.of('StateConflict', 'changed', { currentOffset: 9, reason: 'spoofed' });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('RpcError');
    expect(e.code).toBe(-32062);
    expect(e.message).toBe('changed');
    expect(e.data).toEqual({ currentOffset: 9, reason: 'state_conflict' });
    expect(e.reason).toBe('state_conflict');
    const cause = new Error('root');
    expect(RpcError.of('Unavailable', 'x', undefined, cause).cause).toBe(cause);
    expect(RpcError.of('Unavailable', 'x').cause).toBeUndefined();
  });

  it('toWire() gives the JSON-RPC error member and fromWire() rebuilds the same error', () => {
    const e = RpcError.of('NotAMember', 'join first', { collaborationId: 'c1' });
    const wire = e.toWire();
    expect(wire).toEqual({
      code: -32061,
      message: 'join first',
      data: { collaborationId: 'c1', reason: 'not_a_member' },
    });
    const back = RpcError.fromWire(JSON.parse(JSON.stringify(wire)));
    expect(back).toBeInstanceOf(RpcError);
    expect(back.code).toBe(e.code);
    expect(back.message).toBe(e.message);
    expect(back.data).toEqual(e.data);
  });

  it('fromWire() fills the reason of a known code when data carries none', () => {
    expect(RpcError.fromWire({ code: -32601, message: 'no' }).reason).toBe('method_not_found');
    expect(RpcError.fromWire({ code: -32062, message: 'c', data: { currentOffset: 4 } }).data).toEqual({
      currentOffset: 4,
      reason: 'state_conflict',
    });
    expect(RpcError.fromWire({ code: -32062, message: 'c', data: { reason: 42 } }).reason).toBe(
      'state_conflict',
    );
  });

  it('fromWire() keeps a peer-given reason, and an unknown code gets reason unknown', () => {
    expect(RpcError.fromWire({ code: -32060, message: 'x', data: { reason: 'custom' } }).reason).toBe(
      'custom',
    );
    const unknown = RpcError.fromWire({ code: -31999, message: 'odd' });
    expect(unknown.code).toBe(-31999);
    expect(unknown.reason).toBe('unknown');
    expect(unknown.data).toEqual({ reason: 'unknown' });
  });

  it.each([
    ['a string', 'text'],
    ['an array', [1, 2]],
    ['null', null],
  ])('fromWire() ignores data that is %s', (_n, data) => {
    const e = RpcError.fromWire({ code: -32603, message: 'x', data });
    expect(e.data).toEqual({ reason: 'internal_error' });
  });

  it('retryable is true exactly for unavailable, rate_limited and timeout', () => {
    expect([...RETRYABLE_REASONS].sort()).toEqual(['rate_limited', 'timeout', 'unavailable']);
    for (const name of Object.keys(ErrorCode) as ErrorName[]) {
      const expected = ['Unavailable', 'RateLimited', 'Timeout'].includes(name);
      expect(RpcError.of(name, 'x').retryable, name).toBe(expected);
    }
    expect(RpcError.fromWire({ code: -32067, message: 'x' }).retryable).toBe(true);
    expect(RpcError.fromWire({ code: -1, message: 'x', data: { reason: 'timeout' } }).retryable).toBe(true);
    expect(RpcError.fromWire({ code: -1, message: 'x' }).retryable).toBe(false);
  });
});

describe('MeshError', () => {
  it('carries a string code and passes the cause through', () => {
    const cause = new Error('socket');
    const e = new MeshError('connection_lost', 'lost', { cause });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('MeshError');
    expect(e.code).toBe('connection_lost');
    expect(e.cause).toBe(cause);
  });
});

describe('close codes', () => {
  it('pins the published values', () => {
    expect(CloseCode).toEqual({
      Normal: 1000,
      GoingAway: 1001,
      TooBig: 1009,
      InternalError: 1011,
      Unauthenticated: 4001,
      Forbidden: 4003,
      SlowConsumer: 4008,
      ProtocolViolation: 4009,
      RateLimited: 4029,
      NodeDraining: 4500,
    });
  });

  it('a client reconnects after every close except 4001, 4003 and 4009', () => {
    for (const code of Object.values(CloseCode)) {
      const expected = code !== 4001 && code !== 4003 && code !== 4009;
      expect(isRetryableClose(code), String(code)).toBe(expected);
    }
    expect(isRetryableClose(1006)).toBe(true);
  });
});
