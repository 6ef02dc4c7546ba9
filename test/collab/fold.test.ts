import type { Json, PatchOperation } from '@a2a-mesh/protocol';
import { describe, expect, it } from 'vitest';
import {
  applyRecord,
  type CollabState,
  emptyState,
  fromSnapshot,
  IDEMPOTENCY_WINDOW_MS,
  idempotencyKey,
  type LogRecord,
  memberList,
  patched,
  type StartedData,
  toSnapshot,
} from '../../src/collab/fold.js';

const T0 = 1_700_000_000_000;

function started(over: Partial<StartedData> = {}, from = 'owner', at = T0): LogRecord {
  const data: StartedData = {
    topic: 'Brainstorm',
    visibility: 'public',
    metadata: { room: 'r1' },
    state: { ideas: [], votes: {} },
    members: [
      { agentId: from, role: 'owner' },
      { agentId: 'mod', role: 'moderator' },
    ],
    ...over,
  };
  return { type: 'started', from, at, data: data as unknown as Json };
}

const rec = (type: LogRecord['type'], from: string, data: Json, at = T0): LogRecord => ({
  type,
  from,
  at,
  data,
});
const joined = (agentId: string, role?: string, at = T0) =>
  rec('joined', agentId, role === undefined ? { agentId } : { agentId, role }, at);
const left = (agentId: string, reason: string, at = T0) => rec('left', agentId, { agentId, reason }, at);
const presence = (agentId: string, status: string) => rec('presence', agentId, { agentId, status });
const update = (from: string, patch: PatchOperation[], at = T0) =>
  rec('state', from, { patch: patch as unknown as Json }, at);
const share = (from: string, content: Json, key?: string, at = T0) =>
  rec(
    'shared',
    from,
    key === undefined ? { content, kind: 'message' } : { content, kind: 'message', idempotencyKey: key },
    at,
  );

/** Folds records from offset 1. */
function fold(records: LogRecord[], state: CollabState = emptyState(), first = 1): CollabState {
  records.forEach((r, i) => {
    applyRecord(state, first + i, r);
  });
  return state;
}

describe('applyRecord', () => {
  it('starts from an empty state at offset 0', () => {
    const s = emptyState();
    expect(s.offset).toBe(0);
    expect(s.board).toEqual({});
    expect(s.members.size).toBe(0);
    expect(s.ended).toBe(false);
  });

  it('started (offset 1) sets topic, visibility, metadata, board, creator and invited members offline', () => {
    const s = fold([started({ visibility: 'private' })]);
    expect(s.offset).toBe(1);
    expect(s.stateOffset).toBe(1);
    expect(s.topic).toBe('Brainstorm');
    expect(s.visibility).toBe('private');
    expect(s.metadata).toEqual({ room: 'r1' });
    expect(s.board).toEqual({ ideas: [], votes: {} });
    expect(s.createdBy).toBe('owner');
    expect(s.createdAt).toBe(T0);
    expect(memberList(s)).toEqual([
      { agentId: 'owner', role: 'owner', online: false },
      { agentId: 'mod', role: 'moderator', online: false },
    ]);
  });

  it('state applies the JSON Patch and moves stateOffset; other events move only offset', () => {
    const s = fold([
      started(),
      update('owner', [{ op: 'add', path: '/ideas/-', value: 'a' }]),
      share('owner', 'hello'),
      update('owner', [
        { op: 'add', path: '/ideas/-', value: 'b' },
        { op: 'add', path: '/votes/a', value: 2 },
      ]),
      joined('x'),
    ]);
    expect(s.board).toEqual({ ideas: ['a', 'b'], votes: { a: 2 } });
    expect(s.stateOffset).toBe(4);
    expect(s.offset).toBe(5);
  });

  it('a patch that fails at fold time is a no-op but advances the offset', () => {
    const s = fold([started({ state: { n: 1 } })]);
    applyRecord(s, 2, update('owner', [{ op: 'remove', path: '/missing' }]));
    expect(s.offset).toBe(2);
    expect(s.stateOffset).toBe(1);
    expect(s.board).toEqual({ n: 1 });
    applyRecord(s, 3, update('owner', [{ op: 'test', path: '/n', value: 2 }]));
    expect(s.offset).toBe(3);
    expect(s.board).toEqual({ n: 1 });
  });

  it('a multi-operation patch that fails part-way leaves the board untouched (RFC 6902 atomicity)', () => {
    const s = fold([started({ state: { n: 1 } })]);
    applyRecord(
      s,
      2,
      update('owner', [
        { op: 'add', path: '/added', value: true },
        { op: 'replace', path: '/n', value: 99 },
        { op: 'remove', path: '/missing' },
      ]),
    );
    expect(s.offset).toBe(2);
    expect(s.stateOffset).toBe(1);
    expect(s.board).toEqual({ n: 1 });
    applyRecord(
      s,
      3,
      update('owner', [
        { op: 'replace', path: '/n', value: 5 },
        { op: 'test', path: '/n', value: 1 },
      ]),
    );
    expect(s.board).toEqual({ n: 1 });
    expect(s.stateOffset).toBe(1);
  });

  describe('members', () => {
    it('joined brings a member online with its role; a new agent defaults to member', () => {
      const s = fold([started(), joined('owner', 'owner'), joined('guest'), joined('viewer', 'observer')]);
      expect(memberList(s)).toEqual([
        { agentId: 'owner', role: 'owner', online: true },
        { agentId: 'mod', role: 'moderator', online: false },
        { agentId: 'guest', role: 'member', online: true },
        { agentId: 'viewer', role: 'observer', online: true },
      ]);
    });

    it('joined without a role keeps the role the member already had', () => {
      const s = fold([started(), joined('mod')]);
      expect(s.members.get('mod')).toEqual({ role: 'moderator', online: true });
    });

    it('presence sets the status of a member and ignores non-members', () => {
      const s = fold([started(), joined('a'), presence('a', 'typing'), presence('stranger', 'lurking')]);
      expect(s.members.get('a')).toEqual({ role: 'member', online: true, status: 'typing' });
      expect(s.members.has('stranger')).toBe(false);
      expect(memberList(s).find((m) => m.agentId === 'a')).toEqual({
        agentId: 'a',
        role: 'member',
        online: true,
        status: 'typing',
      });
    });

    it.each(['leave', 'removed'])('left(%s) removes the member', (reason) => {
      const s = fold([started(), joined('a'), presence('a', 'typing'), left('a', reason)]);
      expect(s.members.has('a')).toBe(false);
      expect(memberList(s).map((m) => m.agentId)).toEqual(['owner', 'mod']);
    });

    it.each(['disconnect', 'node_lost'])(
      'left(%s) keeps the member, offline, and clears its status',
      (reason) => {
        const s = fold([started(), joined('a', 'moderator'), presence('a', 'typing'), left('a', reason)]);
        expect(s.members.get('a')).toEqual({ role: 'moderator', online: false });
        // Rejoining after a disconnect keeps the role.
        applyRecord(s, s.offset + 1, joined('a'));
        expect(s.members.get('a')).toEqual({ role: 'moderator', online: true });
      },
    );

    it('a member who left and joins again is a plain member again, at the end of the list', () => {
      const s = fold([started(), joined('a', 'observer'), joined('b'), left('a', 'leave'), joined('a')]);
      expect(memberList(s).map((m) => [m.agentId, m.role])).toEqual([
        ['owner', 'owner'],
        ['mod', 'moderator'],
        ['b', 'member'],
        ['a', 'member'],
      ]);
    });

    it('left for an unknown agent changes nothing but the offset', () => {
      const s = fold([started()]);
      const before = memberList(s);
      applyRecord(s, 2, left('ghost', 'disconnect'));
      expect(memberList(s)).toEqual(before);
      expect(s.offset).toBe(2);
    });
  });

  it('ended marks the collaboration ended', () => {
    const s = fold([started(), rec('ended', 'owner', {})]);
    expect(s.ended).toBe(true);
    expect(s.offset).toBe(2);
  });

  describe('idempotency window', () => {
    it('remembers keyed shares per agent with their offset and time; unkeyed shares are not remembered', () => {
      const s = fold([started(), share('a', 'x', 'k1'), share('b', 'y', 'k1'), share('a', 'z')]);
      expect(s.idempotency.get(idempotencyKey('a', 'k1'))).toEqual({ offset: 2, at: T0 });
      expect(s.idempotency.get(idempotencyKey('b', 'k1'))).toEqual({ offset: 3, at: T0 });
      expect(s.idempotency.size).toBe(2);
      expect(idempotencyKey('a', 'k1')).not.toBe(idempotencyKey('a\u0000k', '1'.slice(1)));
    });

    it('prunes keys older than 5 minutes (log time) when a later keyed share is folded', () => {
      expect(IDEMPOTENCY_WINDOW_MS).toBe(300_000);
      const s = fold([
        started(),
        share('a', 1, 'old', T0),
        share('a', 2, 'mid', T0 + 60_000),
        // Unkeyed shares do not prune.
        share('a', 3, undefined, T0 + 10 * 60_000),
      ]);
      expect([...s.idempotency.keys()]).toEqual([idempotencyKey('a', 'old'), idempotencyKey('a', 'mid')]);
      // At T0 + 5 min exactly, `old` is still inside the window (at >= cutoff).
      applyRecord(s, 5, share('b', 4, 'edge', T0 + IDEMPOTENCY_WINDOW_MS));
      expect(s.idempotency.has(idempotencyKey('a', 'old'))).toBe(true);
      // One millisecond later it is pruned; `mid` (1 min later) stays.
      applyRecord(s, 6, share('b', 5, 'late', T0 + IDEMPOTENCY_WINDOW_MS + 1));
      expect([...s.idempotency.keys()]).toEqual([
        idempotencyKey('a', 'mid'),
        idempotencyKey('b', 'edge'),
        idempotencyKey('b', 'late'),
      ]);
      expect(s.idempotency.get(idempotencyKey('b', 'late'))).toEqual({ offset: 6, at: T0 + 300_001 });
    });
  });

  it('is deterministic: the same records give equal states', () => {
    // Built afresh for each fold, as every node decodes its own copy of the log.
    const log = () => [
      started(),
      joined('owner', 'owner'),
      joined('a'),
      share('a', 'idea', 'k'),
      update('a', [{ op: 'add', path: '/ideas/-', value: { text: 'idea', by: 'a' } }]),
      update('owner', [{ op: 'replace', path: '/ideas/0/text', value: 'better idea' }]),
      presence('a', 'thinking'),
      update('owner', [{ op: 'remove', path: '/nope' }]),
      left('a', 'disconnect'),
      rec('ended', 'owner', {}),
    ];
    const a = fold(log());
    expect(a.board).toEqual({ ideas: [{ text: 'better idea', by: 'a' }], votes: {} });
    expect(toSnapshot(a)).toEqual(toSnapshot(fold(log())));
  });

  it('does not modify the records it folds (they are also the events replayed to members)', () => {
    const log = [
      started(),
      update('a', [{ op: 'add', path: '/ideas/-', value: { text: 'idea', votes: 0 } }]),
      update('b', [{ op: 'replace', path: '/ideas/0/votes', value: 5 }]),
      update('b', [{ op: 'add', path: '/votes/x', value: 1 }]),
    ];
    const before = structuredClone(log);
    const s = fold(log);
    expect(s.board).toEqual({ ideas: [{ text: 'idea', votes: 5 }], votes: { x: 1 } });
    expect(log).toEqual(before);
  });
});

describe('patched', () => {
  it('returns a patched copy and leaves the input alone', () => {
    const doc = { ideas: ['a'], n: 1 };
    const out = patched(doc, [
      { op: 'add', path: '/ideas/-', value: 'b' },
      { op: 'replace', path: '/n', value: 2 },
      { op: 'copy', from: '/n', path: '/m' },
      { op: 'move', from: '/m', path: '/k' },
      { op: 'test', path: '/k', value: 2 },
    ]);
    expect(out).toEqual({ ideas: ['a', 'b'], n: 2, k: 2 });
    expect(doc).toEqual({ ideas: ['a'], n: 1 });
  });

  it('throws when an operation does not apply, and leaves the input alone', () => {
    const doc = { n: 1 };
    expect(() =>
      patched(doc, [
        { op: 'add', path: '/x', value: 1 },
        { op: 'remove', path: '/missing' },
      ]),
    ).toThrow(/does not exist/);
    expect(doc).toEqual({ n: 1 });
    let error: unknown;
    try {
      patched(doc, [
        { op: 'add', path: '/x', value: 1 },
        { op: 'test', path: '/n', value: 2 },
      ]);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ name: 'TEST_OPERATION_FAILED', index: 1 });
    expect(() => patched(doc, [{ op: 'add', path: 'no-slash', value: 1 }])).toThrow();
    expect(() => patched(doc, [{ op: 'add', path: '/a/b', value: 1 }])).toThrow();
    expect(() => patched(doc, [{ op: 'add', path: '/__proto__/x', value: 1 }])).toThrow();
    expect(doc).toEqual({ n: 1 });
  });

  it('can replace the whole document at the root path', () => {
    expect(patched({ a: 1 }, [{ op: 'replace', path: '', value: [1, 2] }])).toEqual([1, 2]);
  });
});

describe('snapshots', () => {
  const log = [
    started(),
    joined('owner', 'owner'),
    joined('a'),
    presence('a', 'typing'),
    share('a', 'x', 'key-1', T0 + 1),
    update('a', [{ op: 'add', path: '/votes/x', value: 1 }]),
    joined('b', 'observer'),
    left('b', 'node_lost'),
  ];

  it('round-trips through toSnapshot/fromSnapshot, also through msgpack', async () => {
    const s = fold(log);
    const snap = toSnapshot(s);
    expect(Array.isArray(snap.members)).toBe(true);
    expect(Array.isArray(snap.idempotency)).toBe(true);
    expect(fromSnapshot(snap)).toEqual(s);
    const { pack, unpack } = await import('../../src/util/binary.js');
    const restored = fromSnapshot(unpack(pack(snap)));
    expect(restored).toEqual(s);
    expect(restored.members).toBeInstanceOf(Map);
    expect(restored.idempotency).toBeInstanceOf(Map);
    expect(memberList(restored)).toEqual(memberList(s));
  });

  it('a snapshot is a copy: folding on after it does not change it', () => {
    const s = fold(log);
    const snap = toSnapshot(s);
    const frozen = structuredClone(snap);
    applyRecord(s, 9, update('a', [{ op: 'add', path: '/votes/y', value: 2 }]));
    applyRecord(s, 10, presence('owner', 'away'));
    applyRecord(s, 11, share('owner', 'y', 'key-2', T0 + 2));
    expect(snap).toEqual(frozen);
  });

  it('folding the tail on a restored snapshot equals folding the whole log', () => {
    const tail = [
      update('owner', [{ op: 'add', path: '/ideas/-', value: 'late' }]),
      left('a', 'leave'),
      share('owner', 'z', 'key-2', T0 + IDEMPOTENCY_WINDOW_MS + 5),
      rec('ended', 'owner', {}),
    ];
    const whole = fold([...log, ...tail]);
    const fromSnap = fold(tail, fromSnapshot(structuredClone(toSnapshot(fold(log)))), log.length + 1);
    expect(toSnapshot(fromSnap)).toEqual(toSnapshot(whole));
  });
});

describe('roles and removals', () => {
  const role = (from: string, agentId: string, r: string, previousRole?: string) =>
    rec('role', from, previousRole === undefined ? { agentId, role: r } : { agentId, role: r, previousRole });
  const removed = (by: string, agentId: string) => rec('left', by, { agentId, reason: 'removed', by });

  it('a role event invites (offline) or changes a role, keeping presence; removal bars until re-invited', () => {
    const s = fold([
      started(),
      joined('bob'),
      presence('bob', 'typing'),
      role('owner', 'bob', 'observer', 'member'),
      role('owner', 'carol', 'member'),
    ]);
    expect(memberList(s)).toContainEqual({
      agentId: 'bob',
      role: 'observer',
      online: true,
      status: 'typing',
    });
    expect(s.members.get('carol')).toEqual({ role: 'member', online: false });
    applyRecord(s, 6, removed('owner', 'bob'));
    expect(s.members.has('bob')).toBe(false);
    expect([...s.removed]).toEqual(['bob']);
    applyRecord(s, 7, left('carol', 'leave'));
    expect([...s.removed]).toEqual(['bob']);
    applyRecord(s, 8, role('owner', 'bob', 'member'));
    expect(s.removed.size).toBe(0);
    expect(s.members.get('bob')).toEqual({ role: 'member', online: false });
  });

  it('removals survive snapshots; old snapshots without them restore to none', () => {
    const s = fold([started(), joined('bob'), removed('owner', 'bob')]);
    const again = fromSnapshot(structuredClone(toSnapshot(s)));
    expect([...again.removed]).toEqual(['bob']);
    const { removed: _r, ...old } = toSnapshot(s);
    expect(fromSnapshot(old).removed.size).toBe(0);
  });
});
