import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { isPrivateAddress } from '../../src/a2a/addressGuard.js';
import type { Bus, KvBucket } from '../../src/bus/bus.js';
import { EmbeddedBus } from '../../src/bus/embedded.js';
import { startNatsNode } from '../helpers/natsNode.js';
import { startNatsServer } from '../helpers/natsServer.js';
import { eventually } from '../helpers/node.js';
import { rpc, startAgent, startGatewayNode, userMessage } from './helpers.js';

interface Hit {
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/** A local webhook: `respond(n)` decides the answer to the n-th request (1-based). */
async function webhook(respond: (n: number, res: ServerResponse) => void) {
  const hits: Hit[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hits.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString()) });
      respond(hits.length, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onTestFinished(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, hits };
}

function stateOf(body: Record<string, unknown>): string | undefined {
  const b = body as {
    task?: { status: { state: string } };
    statusUpdate?: { status: { state: string } };
  };
  return b.task?.status.state ?? b.statusUpdate?.status.state;
}

describe('push notifications', () => {
  it('delivers every event at least once, in order, retrying with backoff past a timeout and a 500', async () => {
    const node = await startGatewayNode({
      a2a: {
        pushAllowHosts: ['127.0.0.1'],
        push: { initialBackoffMs: 20, maxBackoffMs: 50, timeoutMs: 300 },
      },
    });
    await startAgent(node, 'echo');
    const url = `${node.httpUrl}/agents/echo/a2a`;
    const hook = await webhook((n, res) => {
      if (n === 1) return; // never answers: the request times out
      res.writeHead(n === 2 ? 500 : 200).end();
    });
    const first = await rpc(url, 'SendMessage', { message: userMessage('ask me') });
    const task = (first.body.result as { task: { id: string; status: { state: string } } }).task;
    expect(task.status.state).toBe('TASK_STATE_INPUT_REQUIRED');
    const created = await rpc(url, 'CreateTaskPushNotificationConfig', {
      taskId: task.id,
      url: hook.url,
      token: 'opaque',
      authentication: { scheme: 'Bearer', credentials: 'secret' },
    });
    expect(created.body.result).toMatchObject({ taskId: task.id, url: hook.url });
    const second = await rpc(url, 'SendMessage', { message: userMessage('Ada', { taskId: task.id }) });
    expect((second.body.result as { task: { status: { state: string } } }).task.status.state).toBe(
      'TASK_STATE_COMPLETED',
    );
    await eventually(
      () => expect(stateOf(hook.hits.at(-1)?.body ?? {})).toBe('TASK_STATE_COMPLETED'),
      10_000,
    );
    // The first event was tried three times (timeout, 500, 200); then each event once, in order.
    const sequences = hook.hits.map((h) => Number(h.headers['a2a-sequence']));
    expect(sequences[0]).toBe(sequences[1]);
    expect(sequences[1]).toBe(sequences[2]);
    const unique = [...new Set(sequences)];
    expect(unique).toEqual([...unique].sort((a, b) => a - b));
    expect(hook.hits.length).toBe(unique.length + 2);
    const kinds = [...new Map(hook.hits.map((h) => [h.headers['a2a-sequence'], h.body])).values()].map(
      (b) => Object.keys(b)[0],
    );
    expect(kinds).toEqual(['task', 'statusUpdate', 'artifactUpdate', 'statusUpdate']);
    for (const h of hook.hits) {
      expect(h.headers.authorization).toBe('Bearer secret');
      expect(h.headers['x-a2a-notification-token']).toBe('opaque');
      expect(h.headers['content-type']).toBe('application/a2a+json');
    }
  });

  it('a config given with SendMessage gets every event of a new task', async () => {
    const node = await startGatewayNode();
    await startAgent(node, 'echo');
    const hook = await webhook((_n, res) => res.writeHead(204).end());
    const r = await rpc(`${node.httpUrl}/agents/echo/a2a`, 'SendMessage', {
      message: userMessage('hello'),
      configuration: { taskPushNotificationConfig: { url: hook.url } },
    });
    expect((r.body.result as { task: { status: { state: string } } }).task.status.state).toBe(
      'TASK_STATE_COMPLETED',
    );
    await eventually(() => expect(hook.hits).toHaveLength(4));
    expect(hook.hits.map((h) => stateOf(h.body) ?? 'artifact')).toEqual([
      'TASK_STATE_SUBMITTED',
      'TASK_STATE_WORKING',
      'artifact',
      'TASK_STATE_COMPLETED',
    ]);
    expect(hook.hits[0]?.headers.authorization).toBeUndefined();
  });

  it('a v0.3 config receives the v0.3 task', async () => {
    const node = await startGatewayNode();
    await startAgent(node, 'echo');
    const hook = await webhook((_n, res) => res.writeHead(200).end());
    await rpc(
      `${node.httpUrl}/agents/echo/a2a`,
      'message/send',
      {
        message: { kind: 'message', messageId: 'm1', role: 'user', parts: [{ kind: 'text', text: 'hello' }] },
        configuration: {
          pushNotificationConfig: {
            url: hook.url,
            authentication: { schemes: ['Basic'], credentials: 'eA==' },
          },
        },
      },
      {},
    );
    await eventually(() =>
      expect(hook.hits.at(-1)?.body).toMatchObject({ kind: 'task', status: { state: 'completed' } }),
    );
    expect(hook.hits[0]?.headers.authorization).toBe('Basic eA==');
  });

  it('refuses webhooks on private or loopback addresses unless allow-listed', async () => {
    const node = await startGatewayNode({ a2a: {} });
    await startAgent(node, 'echo');
    const url = `${node.httpUrl}/agents/echo/a2a`;
    const first = await rpc(url, 'SendMessage', { message: userMessage('ask me') });
    const taskId = (first.body.result as { task: { id: string } }).task.id;
    for (const hook of [
      'http://127.0.0.1:9/hook',
      'http://localhost:9/hook',
      'http://10.1.2.3/hook',
      'http://192.168.1.1/hook',
      'http://169.254.169.254/latest/meta-data',
      'http://[::1]:9/hook',
      'http://[fd00::1]/hook',
    ]) {
      const r = await rpc(url, 'CreateTaskPushNotificationConfig', { taskId, url: hook });
      const error = r.body.error as { code: number; message: string };
      expect(error?.code, hook).toBe(-32602);
      expect(error.message, hook).toMatch(/private or loopback|cannot resolve/);
    }
    const r = await rpc(url, 'CreateTaskPushNotificationConfig', { taskId, url: 'file:///etc/passwd' });
    expect((r.body.error as { code: number }).code).toBe(-32602);
  });

  it('classifies addresses', () => {
    for (const a of [
      '127.0.0.1',
      '10.0.0.1',
      '172.16.5.4',
      '192.168.0.1',
      '169.254.1.1',
      '0.0.0.0',
      '::1',
      'fe80::1',
      'fc00::2',
      '::ffff:127.0.0.1',
      '100.64.0.1',
    ]) {
      expect(isPrivateAddress(a), a).toBe(true);
    }
    for (const a of ['8.8.8.8', '1.1.1.1', '2606:4700::1111', '172.32.0.1'])
      expect(isPrivateAddress(a), a).toBe(false);
  });
});

describe('push config ids', () => {
  it('refuses a v0.3 config id that cannot be a key', async () => {
    const node = await startGatewayNode();
    await startAgent(node, 'echo');
    const url = `${node.httpUrl}/agents/echo/a2a`;
    const first = await rpc(url, 'SendMessage', { message: userMessage('ask me') });
    const taskId = (first.body.result as { task: { id: string } }).task.id;
    const r = await rpc(
      url,
      'tasks/pushNotificationConfig/set',
      { taskId, pushNotificationConfig: { id: 'a.>', url: 'http://127.0.0.1:9/hook' } },
      {},
    );
    expect(r.body.error).toMatchObject({ code: -32602 });
    const ok = await rpc(
      url,
      'tasks/pushNotificationConfig/set',
      { taskId, pushNotificationConfig: { id: 'mine', url: 'http://127.0.0.1:9/hook' } },
      {},
    );
    expect(ok.body.result).toMatchObject({ taskId, pushNotificationConfig: { id: 'mine' } });
    const listed = await rpc(url, 'tasks/pushNotificationConfig/list', { id: taskId }, {});
    expect(listed.body.result).toEqual([
      { taskId, pushNotificationConfig: { id: 'mine', url: 'http://127.0.0.1:9/hook' } },
    ]);
  });

  it('a config created through node A gets the events the agent publishes through node B (NATS)', async () => {
    const nats = await startNatsServer();
    const a2a = { pushAllowHosts: ['127.0.0.1'], push: { initialBackoffMs: 20, maxBackoffMs: 100 } };
    const a = await startNatsNode(nats.url, 'node-a', { a2a });
    const b = await startNatsNode(nats.url, 'node-b', { a2a });
    // The agent is on B; the client talks to A only.
    await startAgent(b, 'asker');
    const url = `${a.httpUrl}/agents/asker/a2a`;
    await eventually(async () =>
      expect((await fetch(`${a.httpUrl}/agents/asker/.well-known/agent-card.json`)).status).toBe(200),
    );
    const hook = await webhook((_n, res) => res.writeHead(204).end());
    const first = await rpc(url, 'SendMessage', { message: userMessage('ask me') });
    const task = (first.body.result as { task: { id: string; status: { state: string } } }).task;
    expect(task.status.state).toBe('TASK_STATE_INPUT_REQUIRED');
    await rpc(url, 'CreateTaskPushNotificationConfig', { taskId: task.id, url: hook.url });
    const second = await rpc(url, 'SendMessage', { message: userMessage('Ada', { taskId: task.id }) });
    expect((second.body.result as { task: { status: { state: string } } }).task.status.state).toBe(
      'TASK_STATE_COMPLETED',
    );
    await eventually(() =>
      expect(hook.hits.map((h) => stateOf(h.body) ?? 'artifact')).toEqual([
        // The turn opens with a snapshot of the task as it stood (input required), then its events.
        'TASK_STATE_INPUT_REQUIRED',
        'TASK_STATE_WORKING',
        'artifact',
        'TASK_STATE_COMPLETED',
      ]),
    );
  });

  it('looks up push configs only for tasks that have one', async () => {
    // Counts listings of the push-config bucket (a JetStream key listing per call on NATS).
    const inner = new EmbeddedBus();
    onTestFinished(() => inner.close());
    let listings = 0;
    const countKeys = (bucket: KvBucket): KvBucket =>
      new Proxy(bucket, {
        get(target, prop) {
          const v = Reflect.get(target, prop) as unknown;
          if (prop === 'keys') {
            return (...args: Parameters<KvBucket['keys']>) => {
              listings++;
              return target.keys(...args);
            };
          }
          return typeof v === 'function' ? v.bind(target) : v;
        },
      });
    const bus = new Proxy(inner, {
      get(target, prop) {
        if (prop === 'kv') {
          return async (name: string, options?: Parameters<Bus['kv']>[1]) => {
            const bucket = await target.kv(name, options);
            return name === 'a2a-push' ? countKeys(bucket) : bucket;
          };
        }
        const v = Reflect.get(target, prop) as unknown;
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const node = await startGatewayNode({ bus });
    await startAgent(node, 'echo');
    const url = `${node.httpUrl}/agents/echo/a2a`;
    for (let i = 0; i < 5; i++) {
      const r = await rpc(url, 'SendMessage', { message: userMessage(`hello ${i}`) });
      expect((r.body.result as { task: { status: { state: string } } }).task.status.state).toBe(
        'TASK_STATE_COMPLETED',
      );
    }
    expect(listings).toBe(0);
    const hook = await webhook((_n, res) => res.writeHead(204).end());
    await rpc(url, 'SendMessage', {
      message: userMessage('hello hooked'),
      configuration: { taskPushNotificationConfig: { url: hook.url } },
    });
    await eventually(() => expect(hook.hits).toHaveLength(4));
    expect(listings).toBeGreaterThan(0);
  });
});
