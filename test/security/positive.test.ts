import { MeshClient } from '@a2a-mesh/client';
import { RpcError } from '@a2a-mesh/protocol';
import { describe, expect, it, onTestFinished } from 'vitest';
import { generateApiKey, hashApiKey } from '../../src/auth/apiKeys.js';
import { eventually, startNode, testLogger } from '../helpers/node.js';
import { agent, captureLog, startJwtNode, token, wire } from './helpers.js';

function client(url: string, options: Partial<ConstructorParameters<typeof MeshClient>[0]> = {}): MeshClient {
  const c = new MeshClient({ url, reconnect: false, ...options });
  onTestFinished(() => c.close());
  return c;
}

describe('positive paths', () => {
  it('invites, changes roles and removes; moderators are bounded; the client follows its own role and removal', async () => {
    const { node, log } = await startJwtNode();
    const bearer = async (sub: string) => ({ authorization: `Bearer ${await token({ sub })}` });
    const alice = client(node.url, { headers: await bearer('alice') });
    const bob = client(node.url, { headers: await bearer('bob') });
    const mod = client(node.url, { headers: await bearer('mod') });
    await Promise.all([alice.connect(), bob.connect(), mod.connect()]);
    expect([alice.agentId, bob.agentId, mod.agentId]).toEqual(['alice', 'bob', 'mod']);

    const { collaborationId: cid } = await alice.startCollaboration({ topic: 'p', visibility: 'private' });
    const board = await alice.joinCollaboration(cid);
    await expect(bob.joinCollaboration(cid)).rejects.toMatchObject({ reason: 'forbidden' });

    // Invite: bob becomes a member and can join and share.
    await alice.call('collaboration/invite', { collaborationId: cid, agentId: 'bob' });
    await alice.call('collaboration/invite', { collaborationId: cid, agentId: 'mod', role: 'moderator' });
    const bobBoard = await bob.joinCollaboration(cid);
    expect(bobBoard.role).toBe('member');
    await bobBoard.share('hello');
    expect((await bob.call('collaboration/list', {})).collaborations.map((c) => c.collaborationId)).toEqual([
      cid,
    ]);

    // Role change: observer cannot share; back to member can.
    const { offset: toObserver } = await alice.call('collaboration/invite', {
      collaborationId: cid,
      agentId: 'bob',
      role: 'observer',
    });
    await bobBoard.waitForOffset(toObserver);
    expect(bobBoard.role).toBe('observer');
    expect(board.members.get('bob')?.role).toBe('observer');
    await expect(bobBoard.share('no')).rejects.toMatchObject({
      reason: 'forbidden',
      data: { role: 'observer' },
    });
    await alice.call('collaboration/invite', { collaborationId: cid, agentId: 'bob', role: 'member' });
    await eventually(() => expect(bobBoard.role).toBe('member'));
    await bobBoard.share('back');
    // Inviting with the same role again writes nothing.
    const head = board.offset;
    await board.waitForOffset(head);
    expect((await alice.call('collaboration/invite', { collaborationId: cid, agentId: 'bob' })).offset).toBe(
      head,
    );

    // A moderator invites observers and members, but makes no moderators and removes no owner.
    await mod.call('collaboration/invite', { collaborationId: cid, agentId: 'dave', role: 'observer' });
    await expect(
      mod.call('collaboration/invite', { collaborationId: cid, agentId: 'erin', role: 'moderator' }),
    ).rejects.toMatchObject({ reason: 'forbidden' });
    await expect(
      mod.call('collaboration/remove', { collaborationId: cid, agentId: 'alice' }),
    ).rejects.toMatchObject({
      reason: 'forbidden',
    });
    await mod.call('collaboration/remove', { collaborationId: cid, agentId: 'dave' });

    // Removal: bob's handle ends with forbidden; re-invited, he may join again.
    const events: string[] = [];
    const reading = (async () => {
      for await (const ev of bobBoard.events()) events.push(ev.type);
    })();
    const { offset: removedAt } = await alice.call('collaboration/remove', {
      collaborationId: cid,
      agentId: 'bob',
    });
    await expect(reading).rejects.toBeInstanceOf(RpcError);
    expect(bobBoard.closed).toBe(true);
    expect(bobBoard.offset).toBe(removedAt);
    await expect(bob.joinCollaboration(cid)).rejects.toMatchObject({ data: { rule: 'removed' } });
    await alice.call('collaboration/invite', { collaborationId: cid, agentId: 'bob' });
    expect((await bob.joinCollaboration(cid)).role).toBe('member');

    // The log says who did what; the audit trail too.
    const history = await alice.call('collaboration/history', {
      collaborationId: cid,
      fromOffset: 1,
      limit: 100,
    });
    const roles = history.events
      .filter((e) => e.type === 'role')
      .map((e) => `${e.from}>${JSON.stringify(e.data)}`);
    expect(roles[0]).toBe('alice>{"agentId":"bob","role":"member"}');
    expect(roles).toContain('alice>{"agentId":"bob","role":"observer","previousRole":"member"}');
    const audit = log.audit().map((r) => r.audit);
    expect(audit).toEqual(
      expect.arrayContaining(['collaboration_started', 'member_invited', 'member_removed']),
    );
  });

  it('API keys: stored hashed, sent as a bearer header or in mesh/hello; the key names the agent', async () => {
    const aliceKey = generateApiKey();
    const bobKey = generateApiKey();
    const log = captureLog();
    const node = await startNode({
      logger: log.logger,
      auth: {
        mode: 'apikey',
        keys: [
          { agentId: 'alice', sha256: hashApiKey(aliceKey) },
          {
            agentId: 'bob',
            sha256: hashApiKey(bobKey),
            claims: { topics: { publish: ['bob.>'], subscribe: ['>'] } },
          },
        ],
      },
    });
    const alice = client(node.url, { headers: { authorization: `Bearer ${aliceKey}` } });
    expect((await alice.connect()).agentId).toBe('alice');
    const bob = client(node.url, { token: bobKey });
    expect((await bob.connect()).agentId).toBe('bob');
    await expect(bob.publish('alice.x', 1)).rejects.toMatchObject({ data: { rule: 'topic_publish' } });
    await bob.publish('bob.x', 1);

    const wrong = client(node.url, { token: generateApiKey() });
    await expect(wrong.connect()).rejects.toMatchObject({
      reason: 'unauthenticated',
      data: { detail: 'unknown_key' },
    });
    const spoof = client(node.url, { token: bobKey, agentId: 'alice' });
    await expect(spoof.connect()).rejects.toMatchObject({ reason: 'forbidden', data: { rule: 'identity' } });
    const text = log.lines.join('\n');
    expect(text).not.toContain(aliceKey);
    expect(text).not.toContain(bobKey);
  });

  it('a second connection with the same id is the same principal, up to the connection quota', async () => {
    const { node } = await startJwtNode({ quotas: { maxConnectionsPerAgent: 2 } });
    const a1 = await agent(node.url, 'multi');
    const a2 = await agent(node.url, 'multi');
    const { result } = await a1.call('collaboration/start', { topic: 't', visibility: 'private' });
    const cid = (result as { collaborationId: string }).collaborationId;
    // The other device is the owner too.
    expect((await a2.call('collaboration/join', { collaborationId: cid })).result?.role).toBe('owner');
    const third = await wire(node.url, { authorization: `Bearer ${await token({ sub: 'multi' })}` });
    const refused = await third.call('mesh/hello', {});
    expect(refused.error).toMatchObject({ code: -32076, data: { quota: 'connections_per_agent', limit: 2 } });
    a1.close();
    await eventually(async () => expect((await third.call('mesh/hello', {})).result?.agentId).toBe('multi'));
  });

  it('a session ends when its credential expires (4001); auth none stays the default', async () => {
    const { node } = await startJwtNode({ auth: { mode: 'jwt', secret: 'x'.repeat(32), clockSkewMs: 0 } });
    const jwt = await token({
      sub: 'brief',
      expiresInS: 2,
      secret: 'x'.repeat(32),
      issuer: 'i',
      audience: 'a',
    });
    const c = await wire(node.url, { authorization: `Bearer ${jwt}` });
    expect((await c.call('mesh/hello', {})).result?.agentId).toBe('brief');
    const closed = await c.closed;
    expect(closed).toEqual({ code: 4001, reason: 'credential expired' });

    const open = await startNode({ logger: testLogger });
    const anyone = client(open.url, { agentId: 'whoever' });
    expect((await anyone.connect()).agentId).toBe('whoever');
  });
});
