import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/auditLog.js';
import { ANONYMOUS, type Principal } from '../../src/auth/principal.js';
import { applyRecord, emptyState, type LogRecord } from '../../src/collab/fold.js';
import { AccessPolicy } from '../../src/policy/accessPolicy.js';
import { callerAllowed, callerRules } from '../../src/policy/callerRules.js';
import { mayAssign, mayRemove } from '../../src/policy/roles.js';
import { covers, mayPublish, maySubscribe, topicPermissions } from '../../src/policy/topicPermissions.js';

const quiet = new AuditLog(pino({ level: 'silent' }));

function principal(claims: Record<string, unknown>): Principal {
  return { method: 'jwt', agentId: 'x', claims };
}

describe('topic permissions', () => {
  it('a pattern is covered only when every topic it matches is allowed', () => {
    const yes: [string, string][] = [
      ['>', 'a.b'],
      ['>', '>'],
      ['a.>', 'a.b.c'],
      ['a.>', 'a.*'],
      ['a.>', 'a.>'],
      ['a.*', 'a.b'],
      ['a.*', 'a.*'],
      ['a.*.c', 'a.b.c'],
      ['*.b', 'x.b'],
    ];
    const no: [string, string][] = [
      ['a.>', 'a'],
      ['a.>', '>'],
      ['a.*', 'a.>'],
      ['a.*', 'a.b.c'],
      ['a.b', 'a.*'],
      ['a.b', 'a.b.c'],
      ['a.*.c', 'a.*.d'],
      ['*', '>'],
    ];
    for (const [a, p] of yes) expect(covers(a, p), `${a} covers ${p}`).toBe(true);
    for (const [a, p] of no) expect(covers(a, p), `${a} covers ${p}`).toBe(false);
  });

  it('claims: absent follows the default, present restricts, malformed denies', () => {
    expect(topicPermissions(undefined, 'allow')).toEqual({ publish: undefined, subscribe: undefined });
    expect(topicPermissions(undefined, 'deny')).toEqual({ publish: [], subscribe: [] });
    const p = topicPermissions({ publish: ['m.eu.*'] }, 'allow');
    expect(mayPublish(p.publish, 'm.eu.fr')).toBe(true);
    expect(mayPublish(p.publish, 'm.us.ny')).toBe(false);
    expect(maySubscribe(p.subscribe, 'm.eu.fr')).toBe(false);
    expect(topicPermissions({ publish: 'everything' }, 'allow')).toEqual({ publish: [], subscribe: [] });
    expect(topicPermissions({ publish: ['bad..pattern'] }, 'allow')).toEqual({ publish: [], subscribe: [] });
  });
});

describe('caller rules (a card’s allowedCallers)', () => {
  it('match by agent id and by claim values, arrays included; none means anyone', () => {
    const rules = callerRules({
      allowedCallers: [{ agentId: 'boss' }, { claims: { team: ['red', 'blue'], tier: 2 } }],
    });
    expect(callerAllowed(rules, 'boss', {})).toBe(true);
    expect(callerAllowed(rules, 'x', { team: 'blue', tier: 2 })).toBe(true);
    expect(callerAllowed(rules, 'x', { team: ['green', 'red'], tier: 2 })).toBe(true);
    expect(callerAllowed(rules, 'x', { team: 'blue' })).toBe(false);
    expect(callerAllowed(rules, 'x', { team: 'green', tier: 2 })).toBe(false);
    expect(callerAllowed(callerRules({ name: 'open' }), 'x', {})).toBe(true);
    expect(() => callerRules({ allowedCallers: [{ claim: 'typo' }] })).toThrow();
    const policy = new AccessPolicy({}, quiet);
    expect(policy.mayCall(ANONYMOUS, 'x', { allowedCallers: 'nonsense' })).toBe(false);
    expect(() =>
      policy.checkCall(
        principal({ team: 'green' }),
        'x',
        'target',
        { allowedCallers: [{ claims: { team: 'red' } }] },
        'a',
      ),
    ).toThrow(/does not accept calls/);
  });
});

describe('roles', () => {
  it('owners assign anything but owner; moderators members and observers; nobody touches the owner', () => {
    expect(mayAssign('owner', undefined, 'moderator')).toBe(true);
    expect(mayAssign('owner', 'moderator', 'observer')).toBe(true);
    expect(mayAssign('owner', 'member', 'owner')).toBe(false);
    expect(mayAssign('moderator', undefined, 'member')).toBe(true);
    expect(mayAssign('moderator', 'member', 'observer')).toBe(true);
    expect(mayAssign('moderator', undefined, 'moderator')).toBe(false);
    expect(mayAssign('moderator', 'moderator', 'member')).toBe(false);
    expect(mayAssign('moderator', 'owner', 'member')).toBe(false);
    expect(mayAssign('member', undefined, 'observer')).toBe(false);
    expect(mayRemove('owner', 'moderator')).toBe(true);
    expect(mayRemove('moderator', 'member')).toBe(true);
    expect(mayRemove('moderator', 'moderator')).toBe(false);
    expect(mayRemove('owner', 'owner')).toBe(false);
    expect(mayRemove('member', 'observer')).toBe(false);
  });

  it('the fold keeps removals until a new invite; the policy reads them', () => {
    const s = emptyState();
    const rec = (type: LogRecord['type'], from: string, data: unknown): LogRecord => ({
      type,
      from,
      at: 1,
      data: data as LogRecord['data'],
    });
    applyRecord(
      s,
      1,
      rec('started', 'o', {
        topic: 't',
        visibility: 'public',
        metadata: {},
        state: {},
        members: [{ agentId: 'o', role: 'owner' }],
      }),
    );
    applyRecord(s, 2, rec('joined', 'm', { agentId: 'm', role: 'member' }));
    applyRecord(s, 3, rec('left', 'o', { agentId: 'm', reason: 'removed', by: 'o' }));
    const policy = new AccessPolicy({}, quiet);
    expect(() => policy.checkJoin(s, 'm', 'c')).toThrow(/removed/);
    expect(() => policy.checkRead(s, 'm', 'c', 'get')).toThrow(/removed/);
    expect(policy.checkJoin(s, 'stranger', 'c')).toBe('member');
    applyRecord(s, 4, rec('role', 'o', { agentId: 'm', role: 'observer' }));
    expect(policy.checkJoin(s, 'm', 'c')).toBe('observer');
    expect(s.members.get('m')).toEqual({ role: 'observer', online: false });
    expect(() => policy.checkWrite(s, 'm', 'c', 'share')).toThrow(/observer/);
  });
});
