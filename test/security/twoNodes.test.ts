import { describe, expect, it, onTestFinished } from 'vitest';
import { EmbeddedBus } from '../../src/index.js';
import { eventually } from '../helpers/node.js';
import { agent, startJwtNode } from './helpers.js';

describe('access decisions hold across nodes', () => {
  it('a removal on one node stops the member’s stream on another, and role changes apply there at once', async () => {
    const bus = new EmbeddedBus();
    onTestFinished(() => bus.close());
    const { node: a } = await startJwtNode({ bus, nodeId: 'node-a' });
    const { node: b } = await startJwtNode({ bus, nodeId: 'node-b' });
    const alice = await agent(a.url, 'alice');
    const bob = await agent(b.url, 'bob');
    const start = await alice.call('collaboration/start', {
      topic: 't',
      visibility: 'private',
      members: [{ agentId: 'bob' }],
    });
    const cid = (start.result as { collaborationId: string }).collaborationId;
    await alice.call('collaboration/join', { collaborationId: cid });
    expect((await bob.call('collaboration/join', { collaborationId: cid })).result?.role).toBe('member');

    await alice.call('collaboration/invite', { collaborationId: cid, agentId: 'bob', role: 'observer' });
    await eventually(async () => {
      const r = await bob.call('collaboration/share', { collaborationId: cid, content: 'x' });
      expect(r.error?.data.rule).toBe('role');
    });

    const removed = await alice.call('collaboration/remove', { collaborationId: cid, agentId: 'bob' });
    const at = (removed.result as { offset: number }).offset;
    await eventually(() =>
      expect(bob.notifications.at(-1)?.params).toMatchObject({ offset: at, type: 'left' }),
    );
    const seen = bob.notifications.length;
    const later = await alice.call('collaboration/share', { collaborationId: cid, content: 'after' });
    expect(later.result).toBeTruthy();
    expect((await bob.call('collaboration/join', { collaborationId: cid })).error?.data.rule).toBe('removed');
    await new Promise((r) => setTimeout(r, 50));
    expect(bob.notifications.length).toBe(seen);
  });
});
