import type { CollabEvent, EventType, Json } from '@a2a-mesh/protocol';
import { describe, expect, it } from 'vitest';
import { CollabReplica } from '../../packages/client/src/replica.js';

function ev(offset: number, type: EventType, data: Json, epoch = 'e1'): CollabEvent {
  return { collaborationId: 'c1', epoch, offset, type, from: 'alice', at: 1_000 + offset, data };
}

const started = ev(1, 'started', {
  topic: 'board',
  visibility: 'public',
  metadata: {},
  state: { ideas: [] },
  members: [
    { agentId: 'alice', role: 'owner' },
    { agentId: 'bob', role: 'member' },
  ],
});

function fresh(): CollabReplica {
  return new CollabReplica({ epoch: 'e1', offset: 0, state: null, members: [] });
}

describe('CollabReplica fold', () => {
  it('folds started into state and offline members', () => {
    const r = fresh();
    expect(r.apply(started)).toBe('applied');
    expect(r.offset).toBe(1);
    expect(r.state).toEqual({ ideas: [] });
    expect([...r.members.values()]).toEqual([
      { agentId: 'alice', role: 'owner', online: false },
      { agentId: 'bob', role: 'member', online: false },
    ]);
  });

  it('applies state patches on a copy, leaving earlier snapshots intact', () => {
    const r = fresh();
    r.apply(started);
    const before = r.state;
    r.apply(ev(2, 'state', { patch: [{ op: 'add', path: '/ideas/-', value: 'x' }] }));
    expect(r.state).toEqual({ ideas: ['x'] });
    expect(before).toEqual({ ideas: [] });
    r.apply(ev(3, 'shared', { content: 'hello', kind: 'note' }));
    expect(r.state).toEqual({ ideas: ['x'] });
    expect(r.offset).toBe(3);
  });

  it('treats a patch that does not apply as a no-op that still advances the offset', () => {
    const r = fresh();
    r.apply(started);
    expect(r.apply(ev(2, 'state', { patch: [{ op: 'remove', path: '/nope' }] }))).toBe('applied');
    expect(r.state).toEqual({ ideas: [] });
    expect(r.offset).toBe(2);
  });

  it('tracks members through joined, presence and left', () => {
    const r = fresh();
    r.apply(started);
    r.apply(ev(2, 'joined', { agentId: 'bob', role: 'member' }));
    r.apply(ev(3, 'joined', { agentId: 'carol', role: 'observer' }));
    r.apply(ev(4, 'presence', { agentId: 'bob', status: 'typing' }));
    expect(r.members.get('bob')).toEqual({ agentId: 'bob', role: 'member', online: true, status: 'typing' });
    r.apply(ev(5, 'presence', { agentId: 'zed', status: 'ghost' }));
    expect(r.members.has('zed')).toBe(false);
    r.apply(ev(6, 'left', { agentId: 'bob', reason: 'disconnect' }));
    expect(r.members.get('bob')).toEqual({ agentId: 'bob', role: 'member', online: false });
    r.apply(ev(7, 'left', { agentId: 'carol', reason: 'leave' }));
    expect(r.members.has('carol')).toBe(false);
    r.apply(ev(8, 'joined', { agentId: 'bob', role: 'member' }));
    r.apply(ev(9, 'left', { agentId: 'bob', reason: 'node_lost' }));
    expect(r.members.get('bob')?.online).toBe(false);
    r.apply(ev(10, 'left', { agentId: 'bob', reason: 'removed' }));
    expect([...r.members.keys()]).toEqual(['alice']);
  });

  it('marks the collaboration ended', () => {
    const r = fresh();
    r.apply(started);
    expect(r.ended).toBe(false);
    r.apply(ev(2, 'ended', {}));
    expect(r.ended).toBe(true);
  });

  it('drops duplicates and refuses gaps without changing anything', () => {
    const r = fresh();
    r.apply(started);
    r.apply(ev(2, 'shared', { content: 1 }));
    expect(r.apply(ev(2, 'shared', { content: 1 }))).toBe('duplicate');
    expect(r.apply(ev(1, 'started', {}))).toBe('duplicate');
    expect(r.apply(ev(4, 'state', { patch: [{ op: 'add', path: '/x', value: 1 }] }))).toBe('gap');
    expect(r.offset).toBe(2);
    expect(r.state).toEqual({ ideas: [] });
    expect(r.apply(ev(3, 'shared', { content: 3 }))).toBe('applied');
    expect(r.apply(ev(4, 'state', { patch: [{ op: 'add', path: '/x', value: 1 }] }))).toBe('applied');
    expect(r.state).toEqual({ ideas: [], x: 1 });
  });

  it('treats an event from another epoch as a gap', () => {
    const r = fresh();
    r.apply(started);
    expect(r.check(ev(2, 'shared', {}, 'e2'))).toBe('gap');
    expect(r.apply(ev(2, 'shared', {}, 'e2'))).toBe('gap');
    expect(r.offset).toBe(1);
  });

  it('folds a seeded random stream with duplicates and reorders into the in-order result', () => {
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 48_271) % 2_147_483_647;
      return seed % n;
    };
    const log: CollabEvent[] = [started];
    for (let o = 2; o <= 200; o++) {
      const k = rand(3);
      log.push(
        k === 0
          ? ev(o, 'state', { patch: [{ op: 'add', path: '/ideas/-', value: o }] })
          : k === 1
            ? ev(o, 'presence', { agentId: rand(2) ? 'alice' : 'bob', status: `s${o}` })
            : ev(o, 'shared', { content: o }),
      );
    }
    const reference = fresh();
    for (const e of log) reference.apply(e);

    // Deliver with duplicates and gaps; on a gap, "recover" by replaying from the local offset.
    const r = fresh();
    let i = 0;
    while (r.offset < 200) {
      const e = log[Math.min(log.length - 1, Math.max(0, r.offset - 2 + rand(5)))]!;
      i++;
      if (r.apply(e) === 'gap') for (const missing of log.slice(r.offset, e.offset)) r.apply(missing);
    }
    expect(i).toBeGreaterThan(0);
    expect(r.state).toEqual(reference.state);
    expect([...r.members.values()]).toEqual([...reference.members.values()]);
  });
});
