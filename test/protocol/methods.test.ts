import {
  AgentMethods,
  CollabEventSchema,
  IdSchema,
  type MethodName,
  Methods,
  Notifications,
  PROTOCOL_VERSION,
  TopicPatternSchema,
  TopicSchema,
  topicMatches,
} from '@a2a-mesh/protocol';
import { describe, expect, it } from 'vitest';

const msg = { parts: [{ text: 'hi' }] };
const patch = [{ op: 'add', path: '/ideas/-', value: 'x' }];

/** At least one valid and one invalid params value for every method; the Record type makes it total. */
const cases: Record<MethodName, { valid: unknown[]; invalid: unknown[] }> = {
  'mesh/hello': {
    valid: [
      {},
      { agentId: 'facilitator' },
      {
        agentId: 'a-1_B',
        card: { name: 'Facilitator', skills: [{ id: 'facilitate', name: 'Facilitate', tags: ['x'] }] },
        resume: 'sess-1',
        token: 't',
      },
    ],
    invalid: [
      { agentId: '_x' },
      { agentId: 'a.b' },
      { card: { skills: [] } },
      { card: { name: '' } },
      { card: { name: 'n', skills: [{ name: 'no id' }] } },
      { resume: 'r'.repeat(129) },
      'hello',
    ],
  },
  'mesh/ping': { valid: [undefined, {}], invalid: ['now', 5, null] },
  'collaboration/start': {
    valid: [
      { topic: 'Brainstorm' },
      {
        topic: 'b',
        state: { ideas: [] },
        visibility: 'private',
        members: [{ agentId: 'b' }, { agentId: 'c', role: 'observer' }, { agentId: 'd', role: 'moderator' }],
        metadata: { k: [1, 'v'] },
      },
    ],
    invalid: [
      {},
      { topic: '' },
      { topic: 't'.repeat(257) },
      { topic: 't', visibility: 'secret' },
      { topic: 't', members: [{ agentId: 'b', role: 'owner' }] },
      { topic: 't', members: [{ agentId: 'bad id' }] },
      { topic: 't', metadata: ['not', 'an', 'object'] },
      { topic: 't', state: () => 1 },
    ],
  },
  'collaboration/join': {
    valid: [{ collaborationId: 'c1' }, { collaborationId: 'c1', since: { epoch: 'e', offset: 0 } }],
    invalid: [
      {},
      { collaborationId: 'c.1' },
      { collaborationId: 'c1', since: { epoch: 'e', offset: -1 } },
      { collaborationId: 'c1', since: { epoch: '', offset: 3 } },
      { collaborationId: 'c1', since: { epoch: 'e', offset: 1.5 } },
      { collaborationId: 'c1', since: { offset: 3 } },
    ],
  },
  'collaboration/share': {
    valid: [
      { collaborationId: 'c1', content: 'idea' },
      { collaborationId: 'c1', content: null, kind: 'vote', idempotencyKey: 'k1' },
      { collaborationId: 'c1', content: { nested: [1, { a: true }] } },
    ],
    invalid: [
      { collaborationId: 'c1' },
      { collaborationId: 'c1', content: 'x', kind: '' },
      { collaborationId: 'c1', content: 'x', kind: 'k'.repeat(65) },
      { collaborationId: 'c1', content: 'x', idempotencyKey: '' },
      { collaborationId: 'c1', content: 'x', idempotencyKey: 'k'.repeat(129) },
      { collaborationId: 'c1', content: Number.NaN },
    ],
  },
  'collaboration/update': {
    valid: [
      { collaborationId: 'c1', patch },
      {
        collaborationId: 'c1',
        ifOffset: 0,
        patch: [
          { op: 'remove', path: '/a' },
          { op: 'replace', path: '/b', value: null },
          { op: 'move', path: '/c', from: '/d' },
          { op: 'copy', path: '/e', from: '/f' },
          { op: 'test', path: '/g', value: 1 },
        ],
      },
    ],
    invalid: [
      { collaborationId: 'c1', patch: [] },
      { collaborationId: 'c1', patch: [{ op: 'merge', path: '/a', value: 1 }] },
      { collaborationId: 'c1', patch: [{ op: 'add', path: '/a' }] },
      { collaborationId: 'c1', patch: [{ op: 'move', path: '/a' }] },
      { collaborationId: 'c1', patch: [{ op: 'add', value: 1 }] },
      { collaborationId: 'c1', patch, ifOffset: -1 },
      { collaborationId: 'c1', patch, ifOffset: 2.5 },
      { collaborationId: 'c1', patch: Array.from({ length: 1001 }, () => patch[0]) },
      { collaborationId: 'c1', patch: patch[0] },
    ],
  },
  'collaboration/presence': {
    valid: [
      { collaborationId: 'c1', status: 'typing' },
      { collaborationId: 'c1', status: 'idle', data: { cursor: 3 } },
    ],
    invalid: [
      { collaborationId: 'c1' },
      { collaborationId: 'c1', status: '' },
      { collaborationId: 'c1', status: 's'.repeat(65) },
    ],
  },
  'collaboration/get': { valid: [{ collaborationId: 'c1' }], invalid: [{}, { collaborationId: '' }] },
  'collaboration/history': {
    valid: [
      { collaborationId: 'c1', fromOffset: 1 },
      { collaborationId: 'c1', fromOffset: 50, limit: 1000 },
    ],
    invalid: [
      { collaborationId: 'c1' },
      { collaborationId: 'c1', fromOffset: 0 },
      { collaborationId: 'c1', fromOffset: 1, limit: 0 },
      { collaborationId: 'c1', fromOffset: 1, limit: 1001 },
    ],
  },
  'collaboration/list': { valid: [undefined, {}, { mine: true }], invalid: [{ mine: 'yes' }, 'mine'] },
  'collaboration/leave': { valid: [{ collaborationId: 'c1' }], invalid: [{ collaborationId: 7 }] },
  'collaboration/end': { valid: [{ collaborationId: 'c1' }], invalid: [{ collaborationId: '-c' }] },
  'collaboration/invite': {
    valid: [
      { collaborationId: 'c1', agentId: 'bob' },
      { collaborationId: 'c1', agentId: 'bob', role: 'observer' },
    ],
    invalid: [
      { collaborationId: 'c1' },
      { collaborationId: 'c1', agentId: 'bob', role: 'owner' },
      { collaborationId: 'c1', agentId: 'bob', role: 'admin' },
    ],
  },
  'collaboration/remove': {
    valid: [{ collaborationId: 'c1', agentId: 'bob' }],
    invalid: [{ collaborationId: 'c1' }, { collaborationId: 'c1', agentId: '_x' }],
  },
  'conversation/start': {
    valid: [
      { to: { agentId: 'writer' }, message: msg },
      {
        to: { skill: 'summarize' },
        message: { messageId: 'm1', role: 'ROLE_USER', parts: [{ data: { a: 1 } }, { url: 'https://x' }] },
        metadata: { trace: 'x' },
      },
    ],
    invalid: [
      { to: { agentId: 'writer' } },
      { to: {}, message: msg },
      { to: { agentId: 'writer', skill: 'x' }, message: msg },
      { to: { skill: '' }, message: msg },
      { to: { agentId: 'writer' }, message: { parts: [] } },
      { to: { agentId: 'writer' }, message: { parts: [{}] } },
      { to: { agentId: 'writer' }, message: { parts: [{ text: 'a', data: 1 }] } },
      { to: { agentId: 'writer' }, message: { ...msg, role: 'user' } },
      { to: { agentId: 'writer' }, message: { ...msg, messageId: '' } },
    ],
  },
  'conversation/continue': {
    valid: [{ conversationId: 'v1', message: msg }],
    invalid: [{ conversationId: 'v1' }, { conversationId: 'v 1', message: msg }],
  },
  'conversation/end': { valid: [{ conversationId: 'v1' }], invalid: [{}] },
  'conversation/history': {
    valid: [{ conversationId: 'v1' }],
    invalid: [{ conversationId: 'x'.repeat(129) }],
  },
  'topics/subscribe': {
    valid: [{ pattern: 'market.eu.*' }, { pattern: 'alerts.>' }, { pattern: 'a.b' }],
    invalid: [{ pattern: 'alerts.>.x' }, { pattern: '' }, {}],
  },
  'topics/unsubscribe': {
    valid: [{ subscriptionId: 's1' }],
    invalid: [{ subscriptionId: '' }, { subscriptionId: 's'.repeat(129) }],
  },
  'topics/publish': {
    valid: [
      { topic: 'market.eu.fr', data: { price: 1 } },
      { topic: 'a', data: null },
    ],
    invalid: [
      { topic: 'market.eu.*', data: 1 },
      { topic: 'alerts.>', data: 1 },
      { topic: 'a.b' },
      { topic: 'a..b', data: 1 },
    ],
  },
  'agents/discover': {
    valid: [undefined, {}, { skill: 'summarize', tag: 'nlp', text: 'sum', online: true }],
    invalid: [{ online: 'yes' }, { text: 't'.repeat(257) }, { skill: 5 }],
  },
  'agents/get': { valid: [{ agentId: 'writer' }], invalid: [{}, { agentId: 'wri ter' }] },
  SendMessage: {
    valid: [{ agentId: 'w', message: { messageId: 'm', role: 'ROLE_USER', parts: [{ text: 'q' }] } }],
    invalid: [{ agentId: 'w', message: msg }, { message: { messageId: 'm', role: 'ROLE_USER', parts: [] } }],
  },
  SendStreamingMessage: {
    valid: [
      {
        agentId: 'w',
        message: { messageId: 'm', role: 'ROLE_USER', parts: [{ text: 'q' }] },
        configuration: { returnImmediately: true, historyLength: 0 },
      },
    ],
    invalid: [{ agentId: 'w' }],
  },
  GetTask: {
    valid: [{ id: 't' }, { id: 't', historyLength: 2 }],
    invalid: [{}, { id: 't', historyLength: -1 }],
  },
  ListTasks: {
    valid: [{ agentId: 'w' }, { agentId: 'w', pageSize: 100, status: 'TASK_STATE_WORKING' }],
    invalid: [
      { agentId: 'w', pageSize: 0 },
      { agentId: 'w', pageSize: 101 },
      { agentId: 'w', status: 'done' },
    ],
  },
  CancelTask: { valid: [{ id: 't' }], invalid: [{}] },
  SubscribeToTask: {
    valid: [{ id: 't' }, { id: 't', lastSequence: 3 }],
    invalid: [{ id: 't', lastSequence: -1 }],
  },
  CreateTaskPushNotificationConfig: {
    valid: [
      {
        taskId: 't',
        url: 'https://example.com/hook',
        authentication: { scheme: 'Bearer', credentials: 'x' },
      },
    ],
    invalid: [{ taskId: 't', url: 'ftp://example.com' }, { url: 'https://example.com/hook' }],
  },
  GetTaskPushNotificationConfig: { valid: [{ taskId: 't', id: 'c' }], invalid: [{ taskId: 't' }] },
  ListTaskPushNotificationConfigs: { valid: [{ taskId: 't' }], invalid: [{}] },
  DeleteTaskPushNotificationConfig: { valid: [{ taskId: 't', id: 'c' }], invalid: [{ id: 'c' }] },
  GetExtendedAgentCard: { valid: [{ agentId: 'w' }], invalid: [{}] },
  'task/publish': {
    valid: [{ taskId: 't', event: { statusUpdate: { status: { state: 'TASK_STATE_WORKING' } } } }],
    invalid: [
      { taskId: 't', event: { statusUpdate: { status: { state: 'working' } } } },
      { taskId: 't', event: {} },
    ],
  },
  'task/done': { valid: [{ taskId: 't' }, { taskId: 't', error: 'boom' }], invalid: [{}] },
  'task/unsubscribe': { valid: [{ subscriptionId: 's' }], invalid: [{}] },
};

describe('Methods params schemas', () => {
  it('covers exactly the registered methods', () => {
    expect(Object.keys(cases).sort()).toEqual(Object.keys(Methods).sort());
  });

  for (const [method, { valid, invalid }] of Object.entries(cases) as [
    MethodName,
    { valid: unknown[]; invalid: unknown[] },
  ][]) {
    const schema = Methods[method].params;
    it(`${method} accepts valid params`, () => {
      for (const p of valid) {
        const r = schema.safeParse(p);
        expect(r.success, `${method} ${JSON.stringify(p)}: ${r.error?.message}`).toBe(true);
      }
    });
    it(`${method} refuses invalid params`, () => {
      for (const p of invalid) {
        expect(schema.safeParse(p).success, `${method} ${JSON.stringify(p)}`).toBe(false);
      }
    });
  }

  it('fills defaults on parse (card skills, skill tags)', () => {
    const out = Methods['mesh/hello'].params.parse({
      card: { name: 'n', skills: [{ id: 's', name: 'S' }] },
    });
    expect(out.card?.skills[0]?.tags).toEqual([]);
    expect(Methods['mesh/hello'].params.parse({ card: { name: 'n' } }).card?.skills).toEqual([]);
  });

  it('keeps unknown Agent Card and message fields (loose objects) and strips unknown params', () => {
    const out = Methods['conversation/start'].params.parse({
      to: { agentId: 'w' },
      message: { parts: [{ text: 'x', extra: 1 }], custom: true },
      extra: 'dropped',
    });
    expect(out.message).toMatchObject({ custom: true, parts: [{ text: 'x', extra: 1 }] });
    expect('extra' in out).toBe(false);
  });

  it('version and node-side schemas', () => {
    expect(PROTOCOL_VERSION).toBe('1');
    expect(Object.keys(AgentMethods)).toEqual(['conversation/message', 'task/execute', 'task/cancel']);
    expect(Object.keys(Notifications).sort()).toEqual([
      'collaboration/event',
      'conversation/ended',
      'task/event',
      'topics/message',
    ]);
    const deliver = AgentMethods['conversation/message'];
    const message = { messageId: 'm', role: 'ROLE_USER', parts: [{ text: 'q' }] };
    expect(deliver.params.safeParse({ conversationId: 'v', from: 'a', message }).success).toBe(true);
    // A delivered message is complete: messageId and role are required.
    expect(deliver.params.safeParse({ conversationId: 'v', from: 'a', message: msg }).success).toBe(false);
    // The agent's answer may omit them.
    expect(deliver.result.safeParse({ message: msg }).success).toBe(true);
    expect(deliver.result.safeParse({ reply: msg }).success).toBe(false);
  });

  it('collaboration/event: offsets start at 1 and the type is one of the eight', () => {
    const ev = { collaborationId: 'c', epoch: 'e', offset: 1, type: 'started', from: 'a', at: 1, data: {} };
    expect(CollabEventSchema.safeParse(ev).success).toBe(true);
    for (const type of ['shared', 'state', 'joined', 'left', 'role', 'presence', 'ended'])
      expect(CollabEventSchema.safeParse({ ...ev, type }).success).toBe(true);
    expect(CollabEventSchema.safeParse({ ...ev, offset: 0 }).success).toBe(false);
    expect(CollabEventSchema.safeParse({ ...ev, type: 'patched' }).success).toBe(false);
  });
});

describe('IdSchema', () => {
  it.each(['a', 'A', '0', 'agent-1', 'a_b-C9', 'x'.repeat(128)])('accepts %j', (id) => {
    expect(IdSchema.safeParse(id).success).toBe(true);
  });
  it.each(['', '_a', '-a', 'x'.repeat(129), 'a.b', 'a b', 'a*', 'a>', 'é', 'a/b', 'a:b'])(
    'refuses %j',
    (id) => {
      expect(IdSchema.safeParse(id).success).toBe(false);
    },
  );
});

describe('TopicSchema (concrete topics)', () => {
  const sixteen = Array.from({ length: 16 }, (_, i) => `t${i}`).join('.');
  it.each(['a', 'market.eu.fr', 'a-b_c.D9', '_x', sixteen, 'x'.repeat(256)])('accepts %j', (t) => {
    expect(TopicSchema.safeParse(t).success).toBe(true);
  });
  it.each(['', 'a..b', '.a', 'a.', '*', '>', 'a.*', 'a.>', 'a.b*', 'a b', `${sixteen}.x`, 'x'.repeat(257)])(
    'refuses %j',
    (t) => {
      expect(TopicSchema.safeParse(t).success).toBe(false);
    },
  );
});

describe('TopicPatternSchema', () => {
  it.each(['a', 'a.b', '*', '>', 'a.*', 'a.>', '*.b.>', 'a.*.c', '*.*', 'market.eu.*', 'alerts.>'])(
    'accepts %j',
    (p) => {
      expect(TopicPatternSchema.safeParse(p).success).toBe(true);
    },
  );
  it.each([
    '',
    '>.a',
    'a.>.b',
    '>.>',
    'a.b*',
    'a*.b',
    'a.>>',
    '**',
    'a..b',
    'a.',
    '.*',
    Array.from({ length: 17 }, () => '*').join('.'),
  ])('refuses %j', (p) => {
    expect(TopicPatternSchema.safeParse(p).success).toBe(false);
  });
});

describe('topicMatches', () => {
  it.each<[string, string, boolean]>([
    ['a.b', 'a.b', true],
    ['a.b', 'a.c', false],
    ['a.b', 'a.b.c', false],
    ['a.b.c', 'a.b', false],
    ['a', 'a.b', false],
    ['*', 'a', true],
    ['*', 'a.b', false],
    ['a.*', 'a.b', true],
    ['a.*', 'a', false],
    ['a.*', 'a.b.c', false],
    ['*.b', 'a.b', true],
    ['*.b', 'a.c', false],
    ['a.*.c', 'a.b.c', true],
    ['a.*.c', 'a.b.d', false],
    ['*.*', 'a.b', true],
    ['*.*', 'a', false],
    ['>', 'a', true],
    ['>', 'a.b.c', true],
    ['a.>', 'a.b', true],
    ['a.>', 'a.b.c.d', true],
    ['a.>', 'a', false],
    ['a.>', 'b.c', false],
    ['*.>', 'a', false],
    ['*.>', 'a.b', true],
    ['a.*.>', 'a.b', false],
    ['a.*.>', 'a.b.c', true],
    ['market.eu.*', 'market.eu.fr', true],
    ['market.eu.*', 'market.us.ny', false],
    ['alerts.>', 'alerts.cpu.high', true],
    ['alerts.>', 'alerts', false],
  ])('%s ~ %s → %s', (pattern, topic, expected) => {
    expect(topicMatches(pattern, topic)).toBe(expected);
  });
});
