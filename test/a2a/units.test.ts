import { type Message, RpcError } from '@a2a-mesh/protocol';
import { describe, expect, it } from 'vitest';
import { toA2AWire } from '../../src/a2a/errors.js';
import { parseVersion } from '../../src/a2a/jsonRpcBinding.js';
import { applyEntry, isoTime, type TaskLogEntry, type TaskRecord, viewTask } from '../../src/a2a/taskFold.js';
import { messageFrom03, streamTo03, taskTo03 } from '../../src/a2a/v03.js';
import { pendingRecord } from './helpers.js';

const user: Message = {
  messageId: 'u1',
  role: 'ROLE_USER',
  parts: [{ text: 'hi' }],
  taskId: 't',
  contextId: 'c',
};

const record = (): TaskRecord => pendingRecord('t', [user]);

describe('A2A version negotiation', () => {
  it('reads A2A-Version as §3.6 says', () => {
    expect(parseVersion(undefined)).toBe('0.3');
    expect(parseVersion('')).toBe('0.3');
    expect(parseVersion('0.3')).toBe('0.3');
    expect(parseVersion('0.3.0')).toBe('0.3');
    expect(parseVersion('1.0')).toBe('1.0');
    expect(parseVersion('1')).toBe('1.0');
    expect(parseVersion(' 1.0.2 ')).toBe('1.0');
    for (const v of ['2.0', '1.1', '0.2', 'latest', '1.0-beta']) expect(parseVersion(v), v).toBeUndefined();
  });
});

describe('task fold', () => {
  it('folds status, artifacts (with append), messages and follow-up input', () => {
    let r = record();
    r = applyEntry(
      r,
      { type: 'event', at: 1, event: { statusUpdate: { status: { state: 'TASK_STATE_WORKING' } } } },
      1,
    );
    expect(r.kind).toBe('task');
    r = applyEntry(
      r,
      {
        type: 'event',
        at: 2,
        event: { artifactUpdate: { artifact: { artifactId: 'x', parts: [{ text: 'a' }] } } },
      },
      2,
    );
    r = applyEntry(
      r,
      {
        type: 'event',
        at: 3,
        event: { artifactUpdate: { artifact: { artifactId: 'x', parts: [{ text: 'b' }] }, append: true } },
      },
      3,
    );
    expect(r.task.artifacts?.[0]?.parts).toEqual([{ text: 'a' }, { text: 'b' }]);
    const ask: Message = { messageId: 'q', role: 'ROLE_AGENT', parts: [{ text: 'name?' }] };
    r = applyEntry(
      r,
      {
        type: 'event',
        at: 4,
        event: { statusUpdate: { status: { state: 'TASK_STATE_INPUT_REQUIRED', message: ask } } },
      },
      4,
    );
    r = applyEntry(r, { type: 'end', at: 5 }, 5);
    expect(r.turnRunning).toBe(false);
    r = applyEntry(r, { type: 'input', at: 6, message: { ...user, messageId: 'u2' } }, 6);
    expect(r).toMatchObject({ turn: 2, turnStarted: false, turnRunning: true, sequence: 6, updatedAt: 6 });
    expect(r.task.history?.map((m) => m.messageId)).toEqual(['u1', 'q', 'u2']);
    expect(viewTask(r.task, { historyLength: 1 }).history?.map((m) => m.messageId)).toEqual(['u2']);
    expect(viewTask(r.task, { historyLength: 0 }).history).toBeUndefined();
    expect(viewTask(r.task, { includeArtifacts: false }).artifacts).toBeUndefined();
  });

  it('a direct message first makes the record a message, not a task', () => {
    const reply: Message = { messageId: 'r', role: 'ROLE_AGENT', parts: [{ text: 'hello' }] };
    const r = applyEntry(record(), { type: 'event', at: 1, event: { message: reply } }, 1);
    expect(r.kind).toBe('message');
    expect(r.reply).toEqual(reply);
  });

  it('gives every folded record the same fields in the same order, whatever the entry', () => {
    // One object layout for every record the fold makes (V8 copies such records on its fast path;
    // a copy that gains a field later takes the slow one). Unset fields are present as undefined.
    const reply: Message = { messageId: 'r', role: 'ROLE_AGENT', parts: [{ text: 'hello' }] };
    const entries: TaskLogEntry[] = [
      { type: 'event', at: 1, event: { message: reply } },
      { type: 'end', at: 2 },
      { type: 'push', at: 3 },
      { type: 'input', at: 4, message: { ...user, messageId: 'u2' } },
      { type: 'event', at: 5, event: { statusUpdate: { status: { state: 'TASK_STATE_WORKING' } } } },
    ];
    const layouts = new Set<string>();
    for (const first of entries) {
      let r = applyEntry(record(), first, 1);
      layouts.add(Object.keys(r).join(','));
      for (const [i, e] of entries.entries()) {
        r = applyEntry(r, e, i + 2);
        layouts.add(Object.keys(r).join(','));
      }
    }
    expect([...layouts]).toEqual([
      'agentId,task,kind,reply,sequence,turn,turnStarted,turnRunning,requester,createdAt,updatedAt,push',
    ]);
    // An unset field is undefined, and stays out of what JSON shows of the record.
    const plain = applyEntry(record(), { type: 'end', at: 1 }, 1);
    expect(plain.reply).toBeUndefined();
    expect(plain.push).toBeUndefined();
    expect(Object.keys(JSON.parse(JSON.stringify(plain)))).not.toContain('reply');
  });
});

describe('v0.3 translation', () => {
  it('maps parts, roles and states both ways', () => {
    const m = messageFrom03({
      kind: 'message',
      messageId: 'm',
      role: 'user',
      parts: [
        { kind: 'text', text: 't' },
        { kind: 'file', file: { bytes: 'AAE=', name: 'f.bin', mimeType: 'application/octet-stream' } },
        { kind: 'file', file: { uri: 'https://example.com/x' } },
        { kind: 'data', data: { a: 1 } },
      ],
    });
    expect(m.role).toBe('ROLE_USER');
    expect(m.parts).toEqual([
      { text: 't' },
      { raw: 'AAE=', filename: 'f.bin', mediaType: 'application/octet-stream' },
      { url: 'https://example.com/x' },
      { data: { a: 1 } },
    ]);
    const task = taskTo03({
      id: 't',
      contextId: 'c',
      status: { state: 'TASK_STATE_INPUT_REQUIRED' },
      history: [m],
    });
    expect(task).toMatchObject({ kind: 'task', status: { state: 'input-required' } });
    expect((task.history as { parts: unknown[] }[])[0]?.parts).toEqual([
      { kind: 'text', text: 't' },
      { kind: 'file', file: { bytes: 'AAE=', name: 'f.bin', mimeType: 'application/octet-stream' } },
      { kind: 'file', file: { uri: 'https://example.com/x' } },
      { kind: 'data', data: { a: 1 } },
    ]);
    expect(
      streamTo03(
        { statusUpdate: { taskId: 't', contextId: 'c', status: { state: 'TASK_STATE_COMPLETED' } } },
        true,
      ),
    ).toEqual({
      kind: 'status-update',
      taskId: 't',
      contextId: 'c',
      status: { state: 'completed' },
      final: true,
    });
  });
});

describe('A2A wire errors', () => {
  it('puts an ErrorInfo first, with string metadata and the domain by code', () => {
    const wire = toA2AWire(RpcError.of('TaskNotFound', 'task x not found', { taskId: 'x', n: 2 }), '1.0');
    expect(wire).toEqual({
      code: -32001,
      message: 'task x not found',
      data: [
        {
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason: 'TASK_NOT_FOUND',
          domain: 'a2a-protocol.org',
          metadata: { taskId: 'x', n: '2' },
        },
      ],
    });
    const mesh = toA2AWire(RpcError.of('AgentUnreachable', 'gone', { agentId: 'a' }), '1.0');
    expect((mesh.data as { domain: string }[])[0]?.domain).toBe('a2a-mesh');
    expect(toA2AWire(RpcError.of('TaskNotFound', 'x'), '0.3').data).toEqual({ reason: 'task_not_found' });
  });
});

describe('isoTime', () => {
  it('formats each millisecond as Date does, also when the same one comes again or goes back', () => {
    const base = Date.UTC(2026, 10, 22, 10, 0, 0, 0);
    for (const ms of [base, base, base + 1, base + 1, base, base + 999, base + 1000]) {
      expect(isoTime(ms)).toBe(new Date(ms).toISOString());
    }
  });
});
