import { describe, expect, it } from 'vitest';
import { eventually } from '../helpers/node.js';
import {
  agent,
  logOf,
  SECRET,
  startJwtNode,
  token,
  unsignedToken,
  type WireClient,
  wire,
} from './helpers.js';

const limits = {
  agentRequestsPerSec: 20,
  agentRequestBurst: 20,
  agentBytesPerSec: 32 * 1024,
  agentBytesBurst: 128 * 1024,
  abuseRefusals: 10,
  ipConnectionsPerSec: 1000,
  ipConnectionBurst: 1000,
  ipRequestsPerSec: 1000,
  ipRequestBurst: 1000,
};

/** Waits for a close and returns its code and reason. */
async function closedWith(c: WireClient): Promise<{ code: number; reason: string }> {
  return c.closed;
}

describe('attack table: every attempt is refused with the documented code and leaves no trace', () => {
  it('refuses forged, expired, misdirected and impersonating credentials, trespassers, floods and oversize input', async () => {
    const { node, log } = await startJwtNode({
      maxMessageBytes: 64 * 1024,
      maxSubscriptions: 3,
      rateLimits: limits,
    });
    const url = node.url;

    // A private collaboration: alice owns it, bob and carol are members, olga observes.
    const alice = await agent(url, 'alice');
    const start = await alice.call('collaboration/start', {
      topic: 'plans',
      visibility: 'private',
      state: { plan: 'secret' },
      members: [
        { agentId: 'bob', role: 'member' },
        { agentId: 'carol', role: 'member' },
        { agentId: 'olga', role: 'observer' },
      ],
    });
    const cid = (start.result as { collaborationId: string }).collaborationId;
    await alice.call('collaboration/join', { collaborationId: cid });
    const bob = await agent(url, 'bob');
    await bob.call('collaboration/join', { collaborationId: cid });
    const carol = await agent(url, 'carol');
    await carol.call('collaboration/join', { collaborationId: cid });
    const olga = await agent(url, 'olga');
    expect((await olga.call('collaboration/join', { collaborationId: cid })).result?.role).toBe('observer');
    const baseline = await logOf(alice, cid);
    expect(baseline.map((e) => e.split(':')[1])).toEqual(['started', 'joined', 'joined', 'joined', 'joined']);
    const unchanged = async () => expect(await logOf(alice, cid)).toEqual(baseline);
    const unknownAgent = async (agentId: string) =>
      expect((await alice.call('agents/get', { agentId })).error?.data.reason).toBe('agent_not_found');

    // --- credentials -----------------------------------------------------------------------------
    // No credential: a socket without a header must authenticate in mesh/hello; without a token it gets
    // -32072 and the close 4001.
    const anon = await wire(url);
    const anonHello = await anon.call('mesh/hello', { agentId: 'alice' });
    expect(anonHello.error).toMatchObject({
      code: -32072,
      data: { reason: 'unauthenticated', detail: 'missing' },
    });
    expect((await closedWith(anon)).code).toBe(4001);

    const forged: [string, string, string][] = [
      ['bad signature', await token({ sub: 'alice', secret: `${SECRET}-not` }), 'bad_signature'],
      ['expired', await token({ sub: 'alice', expiresInS: -3600 }), 'expired'],
      ['wrong audience', await token({ sub: 'alice', audience: 'another-service' }), 'bad_audience'],
      ['wrong issuer', await token({ sub: 'alice', issuer: 'https://evil.test' }), 'bad_issuer'],
      ['not yet valid', await token({ sub: 'alice', notBeforeInS: 3600 }), 'not_yet_valid'],
      ['alg none', unsignedToken('alice'), 'algorithm_not_allowed'],
      ['garbage', 'not.a.jwt', 'malformed'],
    ];
    for (const [name, jwt, failure] of forged) {
      // In the Authorization header: the handshake completes and the node closes with 4001 at once.
      const viaHeader = await wire(url, { authorization: `Bearer ${jwt}` });
      const closed = await closedWith(viaHeader);
      expect(closed.code, name).toBe(4001);
      expect(closed.reason, name).toBe(`unauthenticated: ${failure}`);
      // In mesh/hello (browsers): -32072 with the failure, then 4001.
      const viaHello = await wire(url);
      const r = await viaHello.call('mesh/hello', { token: jwt });
      expect(r.error, name).toMatchObject({
        code: -32072,
        data: { reason: 'unauthenticated', detail: failure },
      });
      expect((await closedWith(viaHello)).code, name).toBe(4001);
    }

    // Claims an agent id that is not its own: -32063 (rule identity), then 4003.
    const mallory = await wire(url, { authorization: `Bearer ${await token({ sub: 'mallory' })}` });
    const spoof = await mallory.call('mesh/hello', { agentId: 'alice' });
    expect(spoof.error).toMatchObject({ code: -32063, data: { reason: 'forbidden', rule: 'identity' } });
    expect((await closedWith(mallory)).code).toBe(4003);
    await unknownAgent('mallory');
    await unchanged();

    // --- collaborations --------------------------------------------------------------------------
    // Joins a private collaboration uninvited; reads it without joining.
    const eve = await agent(url, 'eve');
    for (const [method, params] of [
      ['collaboration/join', { collaborationId: cid }],
      ['collaboration/get', { collaborationId: cid }],
      ['collaboration/history', { collaborationId: cid, fromOffset: 1 }],
    ] as const) {
      const r = await eve.call(method, params);
      expect(r.error, method).toMatchObject({ code: -32063, data: { reason: 'forbidden', rule: 'private' } });
    }
    expect((await eve.call('collaboration/list', {})).result?.collaborations).toEqual([]);
    // Invites itself, removes someone, ends it: not a member.
    expect(
      (await eve.call('collaboration/invite', { collaborationId: cid, agentId: 'eve' })).error?.code,
    ).toBe(-32061);
    expect((await eve.call('collaboration/end', { collaborationId: cid })).error?.code).toBe(-32063);
    await unchanged();

    // An observer shares, updates, invites.
    const share = await olga.call('collaboration/share', { collaborationId: cid, content: 'hi' });
    expect(share.error).toMatchObject({ code: -32063, data: { rule: 'role', role: 'observer' } });
    const update = await olga.call('collaboration/update', {
      collaborationId: cid,
      patch: [{ op: 'replace', path: '/plan', value: 'leaked' }],
    });
    expect(update.error).toMatchObject({ code: -32063, data: { rule: 'role', role: 'observer' } });
    const promote = await olga.call('collaboration/invite', {
      collaborationId: cid,
      agentId: 'olga',
      role: 'member',
    });
    expect(promote.error).toMatchObject({ code: -32063, data: { rule: 'role' } });
    // A member promotes itself or removes the owner.
    expect(
      (await bob.call('collaboration/invite', { collaborationId: cid, agentId: 'bob', role: 'moderator' }))
        .error?.code,
    ).toBe(-32063);
    expect(
      (await bob.call('collaboration/remove', { collaborationId: cid, agentId: 'alice' })).error?.code,
    ).toBe(-32063);
    await unchanged();

    // A removed member keeps reading: its stream stops at its removal, and it cannot come back.
    const removed = await alice.call('collaboration/remove', { collaborationId: cid, agentId: 'carol' });
    const removedAt = (removed.result as { offset: number }).offset;
    await eventually(() =>
      expect(carol.notifications.at(-1)?.params).toMatchObject({ offset: removedAt, type: 'left' }),
    );
    const carolSeen = carol.notifications.length;
    const after = await alice.call('collaboration/share', { collaborationId: cid, content: 'after carol' });
    const afterOffset = (after.result as { offset: number }).offset;
    await eventually(() => expect(bob.notifications.at(-1)?.params).toMatchObject({ offset: afterOffset }));
    expect(carol.notifications.length).toBe(carolSeen);
    expect(
      (await carol.call('collaboration/share', { collaborationId: cid, content: 'still here?' })).error?.code,
    ).toBe(-32061);
    for (const [method, params] of [
      ['collaboration/join', { collaborationId: cid }],
      ['collaboration/get', { collaborationId: cid }],
      ['collaboration/history', { collaborationId: cid, fromOffset: 1 }],
    ] as const) {
      const r = await carol.call(method, params);
      expect(r.error, method).toMatchObject({ code: -32063, data: { rule: 'removed' } });
    }
    expect(carol.notifications.length).toBe(carolSeen);
    const expected = [...baseline, `${removedAt}:left:alice`, `${afterOffset}:shared:alice`];
    expect(await logOf(alice, cid)).toEqual(expected);

    // --- topics ----------------------------------------------------------------------------------
    const listener = await agent(url, 'listener');
    await listener.call('topics/subscribe', { pattern: '>' });
    const publisher = await agent(url, 'publisher', {
      topics: { publish: ['news.public.>'], subscribe: ['news.>'] },
    });
    const pub = await publisher.call('topics/publish', { topic: 'news.secret.plans', data: 'x' });
    expect(pub.error).toMatchObject({ code: -32063, data: { rule: 'topic_publish' } });
    const sub = await publisher.call('topics/subscribe', { pattern: 'alerts.>' });
    expect(sub.error).toMatchObject({ code: -32063, data: { rule: 'topic_subscribe' } });
    expect((await publisher.call('topics/subscribe', { pattern: '>' })).error?.code).toBe(-32063);
    expect((await publisher.call('topics/subscribe', { pattern: 'news.*.x' })).result).toBeTruthy();
    expect((await publisher.call('topics/publish', { topic: 'news.public.ok', data: 1 })).result).toEqual({});
    await eventually(() =>
      expect(listener.notifications.map((n) => n.params.topic)).toEqual(['news.public.ok']),
    );

    // --- floods and limits -----------------------------------------------------------------------
    // Too many subscriptions.
    const subber = await agent(url, 'subber');
    for (const p of ['a', 'b', 'c'])
      expect((await subber.call('topics/subscribe', { pattern: p })).result).toBeTruthy();
    const fourth = await subber.call('topics/subscribe', { pattern: 'd' });
    expect(fourth.error).toMatchObject({
      code: -32076,
      data: { reason: 'quota_exceeded', quota: 'subscriptions_per_session', limit: 3 },
    });

    // Floods requests: refused with retryAfterMs, then closed with 4029.
    const flooder = await agent(url, 'flooder');
    const answers = await Promise.allSettled(Array.from({ length: 60 }, () => flooder.call('mesh/ping')));
    const limited = answers
      .filter(
        (a): a is PromiseFulfilledResult<Awaited<ReturnType<WireClient['call']>>> => a.status === 'fulfilled',
      )
      .map((a) => a.value.error)
      .filter((e) => e !== undefined);
    expect(limited.length).toBeGreaterThan(0);
    expect(limited[0]).toMatchObject({ code: -32064, data: { reason: 'rate_limited', limit: 'requests' } });
    expect(limited[0]!.data.retryAfterMs).toBeGreaterThan(0);
    expect((await closedWith(flooder)).code).toBe(4029);

    // Floods bytes: requests are refused while in byte debt, and the flood is closed with 4029.
    const bytes = await agent(url, 'byteflooder');
    const junk = JSON.stringify({ jsonrpc: '2.0', method: 'noise', params: { pad: 'x'.repeat(30 * 1024) } });
    for (let i = 0; i < 6; i++) bytes.send(junk);
    const refused = await bytes.call('mesh/ping');
    expect(refused.error).toMatchObject({ code: -32064, data: { limit: 'bytes' } });
    expect(refused.error!.data.retryAfterMs).toBeGreaterThan(0);
    for (let i = 0; i < 10 && bytes.ws.readyState === bytes.ws.OPEN; i++) bytes.send(junk);
    expect((await closedWith(bytes)).code).toBe(4029);

    // Oversize frame: 1009, before it is parsed.
    const big = await agent(url, 'big');
    big.send(
      JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'mesh/ping', params: { pad: 'x'.repeat(70 * 1024) } }),
    );
    expect((await closedWith(big)).code).toBe(1009);

    // --- nothing leaked, everything audited ------------------------------------------------------
    expect(await logOf(alice, cid)).toEqual(expected);
    const audit = log.audit();
    const failures = audit.filter((r) => r.audit === 'auth_failed').map((r) => r.failure);
    for (const f of [
      'missing',
      'bad_signature',
      'expired',
      'bad_audience',
      'bad_issuer',
      'not_yet_valid',
      'algorithm_not_allowed',
      'malformed',
    ])
      expect(failures).toContain(f);
    expect(
      audit.some((r) => r.audit === 'identity_mismatch' && r.claimed === 'alice' && r.agentId === 'mallory'),
    ).toBe(true);
    const denials = audit.filter((r) => r.audit === 'denied').map((r) => `${r.agentId}:${r.reason}`);
    for (const d of [
      'eve:private',
      'olga:role',
      'bob:role',
      'carol:removed',
      'publisher:topic_publish',
      'publisher:topic_subscribe',
    ])
      expect(denials).toContain(d);
    expect(audit.some((r) => r.audit === 'member_removed' && r.member === 'carol')).toBe(true);
    const closes = audit.filter((r) => r.audit === 'rate_limit_close').map((r) => `${r.agentId}:${r.limit}`);
    expect(closes).toEqual(expect.arrayContaining(['flooder:requests', 'byteflooder:bytes']));
    expect(audit.some((r) => r.audit === 'quota_exceeded' && r.quota === 'subscriptions_per_session')).toBe(
      true,
    );
    // Neither the secret nor any token, nor shared content, is in any log line.
    const all = log.lines.join('\n');
    expect(all).not.toContain(SECRET);
    for (const [name, jwt] of forged) expect(all, name).not.toContain(jwt);
    for (const [name, jwt] of forged.slice(0, 5)) expect(all, name).not.toContain(jwt.split('.')[2]);
    expect(all).not.toContain('after carol');
  });
});
