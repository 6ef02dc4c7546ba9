import { MeshClient, type TaskContext } from '@a2a-mesh/client';
import type { Message } from '@a2a-mesh/protocol';
import { onTestFinished } from 'vitest';
import type { TaskRecord } from '../../src/a2a/taskFold.js';
import type { Bus } from '../../src/bus/bus.js';
import type { MeshNode, MeshNodeOptions } from '../../src/index.js';
import { startNode } from '../helpers/node.js';

/** A node with the A2A gateway (webhooks to 127.0.0.1 allowed, fast retries). */
export function startGatewayNode(options: MeshNodeOptions = {}): Promise<MeshNode> {
  return startNode({
    a2a: { pushAllowHosts: ['127.0.0.1'], push: { initialBackoffMs: 20, maxBackoffMs: 100 } },
    ...options,
  });
}

/** Text of the first text part of a message-like JSON value. */
export function textOf(
  m: { parts?: readonly { text?: string | undefined }[] } | undefined,
): string | undefined {
  return m?.parts?.find((p) => p.text !== undefined)?.text;
}

/**
 * The test agent's executor. By the first word of the message:
 * `hello` → working, an artifact, completed; `ask` → input-required, then completed with the answer;
 * `slow` → working, then waits for cancel; `reply` → a direct message; `auth` → auth-required;
 * `crash` → throws; `chunks` → an artifact in three appended chunks.
 */
export async function echoExecutor(ctx: TaskContext): Promise<void> {
  const text = textOf(ctx.message) ?? '';
  const word = text.split(' ')[0];
  if (ctx.task?.status.state === 'TASK_STATE_INPUT_REQUIRED') {
    await ctx.working('thanks');
    await ctx.artifact({ name: 'answer', parts: [{ text: `you said ${text}` }] });
    await ctx.complete('done');
    return;
  }
  switch (word) {
    case 'reply':
      await ctx.reply(`echo: ${text}`);
      return;
    case 'ask':
      await ctx.inputRequired('what is your name?');
      return;
    case 'auth':
      await ctx.authRequired('sign in first');
      return;
    case 'crash':
      throw new Error('boom');
    case 'slow':
      await ctx.working('started');
      await new Promise<void>((resolve) => {
        if (ctx.signal.aborted) resolve();
        ctx.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      return;
    case 'chunks':
      await ctx.working();
      await ctx.artifact({ artifactId: 'a1', parts: [{ text: 'one ' }] });
      await ctx.artifact({ artifactId: 'a1', parts: [{ text: 'two ' }] }, { append: true });
      await ctx.artifact({ artifactId: 'a1', parts: [{ text: 'three' }] }, { append: true, lastChunk: true });
      await ctx.complete();
      return;
    default:
      await ctx.publish({
        task: {
          id: ctx.taskId,
          contextId: ctx.contextId,
          status: { state: 'TASK_STATE_SUBMITTED' },
          history: [ctx.message],
        },
      });
      await ctx.working('on it');
      await ctx.artifact({ artifactId: 'result', name: 'result', parts: [{ text: `echo: ${text}` }] });
      await ctx.complete('done');
  }
}

/** A mesh agent connected to `node` serving tasks with `executor` (default `echoExecutor`). */
export async function startAgent(
  node: MeshNode,
  agentId: string,
  executor: Parameters<MeshClient['onTask']>[0] = echoExecutor,
  card: Record<string, unknown> = {},
): Promise<MeshClient> {
  const client = new MeshClient({
    url: node.url,
    agentId,
    card: {
      name: `Agent ${agentId}`,
      description: `the ${agentId} test agent`,
      skills: [{ id: 'echo', name: 'Echo', tags: ['test', 'echo'] }],
      ...card,
    },
    reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
  });
  client.onTask(executor);
  onTestFinished(() => client.close());
  await client.connect();
  return client;
}

/** Raw JSON-RPC over HTTP: returns the status, headers and parsed body (or SSE events). */
export async function rpc(
  url: string,
  method: string,
  params: unknown,
  headers: Record<string, string> = { 'a2a-version': '1.0' },
): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

/** Reads a whole SSE response: each event's `id` and parsed `data`. */
export async function sse(
  res: Response,
): Promise<{ id: string | undefined; data: Record<string, unknown> }[]> {
  const text = await res.text();
  const out: { id: string | undefined; data: Record<string, unknown> }[] = [];
  for (const block of text.split('\n\n')) {
    let id: string | undefined;
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('id:')) id = line.slice(3).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).trim());
    }
    if (data.length > 0) out.push({ id, data: JSON.parse(data.join('\n')) as Record<string, unknown> });
  }
  return out;
}

/** A v1.0 user message (JSON shape). */
export function userMessage(text: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { messageId: crypto.randomUUID(), role: 'ROLE_USER', parts: [{ text }], ...extra };
}

/** A new task's record (sequence 0, submitted, first turn running) holding `history`. */
export function pendingRecord(id: string, history: Message[] = []): TaskRecord {
  return {
    agentId: 'a',
    task: { id, contextId: 'c', status: { state: 'TASK_STATE_SUBMITTED' }, history },
    kind: 'pending',
    sequence: 0,
    turn: 1,
    turnStarted: false,
    turnRunning: true,
    requester: 'http',
    createdAt: 0,
    updatedAt: 0,
  };
}

/** `inner` with every log read reported to `onRead(log, fromOffset)` first. */
export function readCountingBus(inner: Bus, onRead: (log: string, from: number) => void): Bus {
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === 'read') {
        return (log: string, from: number, limit: number) => {
          onRead(log, from);
          return target.read(log, from, limit);
        };
      }
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? v.bind(target) : v;
    },
  }) as Bus;
}
