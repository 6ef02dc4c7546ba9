import { MeshClient } from '@a2a-mesh/client';
import { describe, expect, it, onTestFinished } from 'vitest';
import { echoExecutor, rpc } from '../a2a/helpers.js';
import { startNode } from '../helpers/node.js';
import { AUDIENCE, captureLog, ISSUER, SECRET, token } from './helpers.js';

const userMessage = (text: string) => ({
  messageId: crypto.randomUUID(),
  role: 'ROLE_USER',
  parts: [{ text }],
});

async function meshAgent(
  url: string,
  sub: string,
  card: Record<string, unknown> = {},
  claims = {},
): Promise<MeshClient> {
  const c = new MeshClient({
    url,
    headers: { authorization: `Bearer ${await token({ sub, claims })}` },
    card: { name: sub, skills: [{ id: 'echo', name: 'Echo' }], ...card },
    reconnect: false,
  });
  c.onTask(echoExecutor);
  onTestFinished(() => c.close());
  await c.connect();
  return c;
}

describe('A2A gateway and A2A over sessions: the same authenticator and policy', () => {
  it('requires a bearer credential, applies the card’s allowedCallers, names the caller, declares the scheme', async () => {
    const log = captureLog();
    const node = await startNode({
      logger: log.logger,
      auth: { mode: 'jwt', secret: SECRET, issuer: ISSUER, audience: AUDIENCE },
      rateLimits: { ipConnectionsPerSec: 1000, ipConnectionBurst: 1000 },
    });
    let caller: unknown;
    const worker = new MeshClient({
      url: node.url,
      headers: { authorization: `Bearer ${await token({ sub: 'worker' })}` },
      card: {
        name: 'worker',
        skills: [{ id: 'echo', name: 'Echo' }],
        allowedCallers: [{ claims: { team: 'red' } }],
      },
      reconnect: false,
    });
    worker.onTask(async (ctx) => {
      caller = ctx.from;
      await echoExecutor(ctx);
    });
    onTestFinished(() => worker.close());
    await worker.connect();
    const url = `${node.httpUrl}/agents/worker/a2a`;
    const send = (headers: Record<string, string>) =>
      rpc(url, 'SendMessage', { message: userMessage('hello') }, { 'a2a-version': '1.0', ...headers });

    // No credential, a forged one: 401 with a Bearer challenge and -32072.
    const none = await send({});
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer realm="a2a-mesh"/);
    expect(none.body.error).toMatchObject({
      code: -32072,
      data: { reason: 'unauthenticated', detail: 'missing' },
    });
    const forged = await send({ authorization: `Bearer ${await token({ sub: 'x', secret: `${SECRET}!` })}` });
    expect(forged.status).toBe(401);
    expect(forged.body.error).toMatchObject({ data: { detail: 'bad_signature' } });

    // Valid but not on the card's list: forbidden, and the agent never sees the task.
    const blue = await send({
      authorization: `Bearer ${await token({ sub: 'outsider', claims: { team: 'blue' } })}`,
    });
    expect(blue.status).toBe(200);
    expect(blue.body.error).toMatchObject({ code: -32063 });
    expect(caller).toBeUndefined();

    // On the list: served, and the agent learns who called (from the credential, not the request).
    const red = await send({
      authorization: `Bearer ${await token({ sub: 'insider', claims: { team: 'red' } })}`,
    });
    expect(red.status).toBe(200);
    expect(red.body.result).toBeTruthy();
    expect(caller).toBe('insider');

    // Over a mesh session the same rule holds.
    const outsider = await meshAgent(node.url, 'session-outsider', {}, { team: 'blue' });
    await expect(outsider.a2a.sendMessage('worker', 'hello')).rejects.toMatchObject({ reason: 'forbidden' });
    const insider = await meshAgent(node.url, 'session-insider', {}, { team: 'red' });
    expect(await insider.a2a.sendMessage('worker', 'hello')).toBeTruthy();

    // Cards declare the scheme (v1.0 and v0.3 shapes) and do not publish the caller list.
    const card = (await (
      await fetch(`${node.httpUrl}/agents/worker/.well-known/agent-card.json`, {
        headers: { 'a2a-version': '1.0' },
      })
    ).json()) as Record<string, unknown>;
    expect(card.securitySchemes).toEqual({
      meshBearer: {
        httpAuthSecurityScheme: expect.objectContaining({ scheme: 'Bearer', bearerFormat: 'JWT' }),
      },
    });
    expect(card.securityRequirements).toEqual([{ schemes: { meshBearer: { list: [] } } }]);
    expect(card.allowedCallers).toBeUndefined();
    const card03 = (await (
      await fetch(`${node.httpUrl}/agents/worker/.well-known/agent-card.json`, {
        headers: { 'a2a-version': '0.3' },
      })
    ).json()) as Record<string, unknown>;
    expect(card03.securitySchemes).toEqual({
      meshBearer: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
    });
    expect(card03.security).toEqual([{ meshBearer: [] }]);

    const audit = log.audit();
    expect(
      audit.some((r) => r.audit === 'auth_failed' && r.transport === 'a2a' && r.failure === 'missing'),
    ).toBe(true);
    expect(
      audit.some((r) => r.audit === 'denied' && r.agentId === 'outsider' && r.reason === 'caller_rules'),
    ).toBe(true);
  });

  it('without authentication nothing changes, except that a card with allowedCallers admits only matching callers', async () => {
    const node = await startNode();
    const open = new MeshClient({
      url: node.url,
      agentId: 'open',
      card: { name: 'open', skills: [] },
      reconnect: false,
    });
    open.onTask(echoExecutor);
    const picky = new MeshClient({
      url: node.url,
      agentId: 'picky',
      card: { name: 'picky', skills: [], allowedCallers: [{ agentId: 'friend' }] },
      reconnect: false,
    });
    picky.onTask(echoExecutor);
    onTestFinished(async () => {
      await open.close();
      await picky.close();
    });
    await Promise.all([open.connect(), picky.connect()]);
    const toOpen = await rpc(`${node.httpUrl}/agents/open/a2a`, 'SendMessage', {
      message: userMessage('hello'),
    });
    expect(toOpen.body.result).toBeTruthy();
    const card = (await (
      await fetch(`${node.httpUrl}/agents/open/.well-known/agent-card.json`)
    ).json()) as Record<string, unknown>;
    expect(card.securitySchemes).toBeUndefined();
    const toPicky = await rpc(`${node.httpUrl}/agents/picky/a2a`, 'SendMessage', {
      message: userMessage('hello'),
    });
    expect(toPicky.body.error).toMatchObject({ code: -32063 });
    const friend = new MeshClient({ url: node.url, agentId: 'friend', reconnect: false });
    onTestFinished(() => friend.close());
    await friend.connect();
    expect(await friend.a2a.sendMessage('picky', 'hello')).toBeTruthy();
  });
});

describe('A2A tasks are visible only to their requester and their executing agent', () => {
  it('scopes GetTask, ListTasks, CancelTask and push configs at the gateway and over sessions', async () => {
    const node = await startNode({
      auth: { mode: 'jwt', secret: SECRET, issuer: ISSUER, audience: AUDIENCE },
      rateLimits: { ipConnectionsPerSec: 1000, ipConnectionBurst: 1000 },
    });
    await meshAgent(node.url, 'worker');
    const url = `${node.httpUrl}/agents/worker/a2a`;
    const as = async (sub: string) => ({
      'a2a-version': '1.0',
      authorization: `Bearer ${await token({ sub })}`,
    });
    const alice = await as('alice');
    const bob = await as('bob');

    const sent = await rpc(url, 'SendMessage', { message: userMessage('hello') }, alice);
    const taskId = (sent.body.result as { task: { id: string } }).task.id;
    expect(taskId).toBeTruthy();

    // Alice, who asked, sees it; Bob, authenticated but a stranger to it, does not.
    expect((await rpc(url, 'GetTask', { id: taskId }, alice)).body.result).toMatchObject({ id: taskId });
    expect((await rpc(url, 'GetTask', { id: taskId }, bob)).body.error).toMatchObject({ code: -32001 });
    const aliceList = (await rpc(url, 'ListTasks', {}, alice)).body.result as { tasks: { id: string }[] };
    const bobList = (await rpc(url, 'ListTasks', {}, bob)).body.result as { tasks: { id: string }[] };
    expect(aliceList.tasks.map((t) => t.id)).toEqual([taskId]);
    expect(bobList.tasks).toEqual([]);
    expect((await rpc(url, 'CancelTask', { id: taskId }, bob)).body.error).toMatchObject({ code: -32001 });
    const listConfigs = await rpc(url, 'ListTaskPushNotificationConfigs', { taskId }, bob);
    expect(listConfigs.body.error).toMatchObject({ code: -32001 });

    // Over a mesh session: the executing agent sees its task, another agent does not.
    const worker2 = await meshAgent(node.url, 'worker-peer');
    const other = await worker2.call('GetTask' as never, { id: taskId } as never).catch((e: unknown) => e);
    expect((other as { code?: number }).code).toBe(-32001);
  });
});
