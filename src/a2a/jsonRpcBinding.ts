import {
  CancelTaskRequestSchema,
  CreateTaskPushConfigRequestSchema,
  compiledOnUse,
  GetExtendedAgentCardRequestSchema,
  GetTaskRequestSchema,
  type JsonRpcErrorObject,
  ListTaskPushConfigsRequestSchema,
  ListTasksRequestSchema,
  type Parser,
  RpcError,
  SendMessageRequestSchema,
  type StreamResponse,
  SubscribeToTaskRequestSchema,
  TASK_SEQUENCE_EXTENSION,
  TaskPushConfigRefSchema,
} from '@a2a-mesh/protocol';
import type { Logger } from 'pino';
import type { z } from 'zod';
import {
  type HttpIn,
  type HttpOut,
  type RequestTarget,
  readBody,
  sendJson,
} from '../transport/httpRouter.js';
import { type A2AVersion, invalidParams, toA2AWire } from './errors.js';
import type {
  Delivered,
  OnCallerGone,
  Requester,
  TaskScope,
  TaskService,
  TaskStream,
} from './taskService.js';
import {
  DeletePushConfigParamsV03Schema,
  GetPushConfigParamsV03Schema,
  MessageSendParamsV03Schema,
  messageFrom03,
  messageTo03,
  pushConfigFrom03,
  pushConfigTo03,
  SetPushConfigParamsV03Schema,
  streamTo03,
  TaskIdParamsV03Schema,
  TaskQueryParamsV03Schema,
  taskTo03,
} from './v03.js';

/** What a method handler gets. */
interface Call {
  agentId: string;
  /** Who is calling: the authenticated agent, or `http` when the node runs without authentication. */
  requester: Requester;
  /** Stops work for the caller once its stream closes unanswered. */
  onGone: OnCallerGone;
  /** `Last-Event-ID` of the request, as a sequence (the sequence extension). */
  lastEventId: number | undefined;
}

/** A handler answers with a result, or with a stream of events (SSE). */
type Outcome = { result: unknown } | { stream: TaskStream; map: (d: Delivered) => unknown };

interface MethodDef {
  schema: Parser<unknown>;
  run(params: never, call: Call): Promise<Outcome>;
}

function method<S extends z.ZodType>(
  schema: S,
  run: (p: z.output<S>, call: Call) => Promise<Outcome>,
): MethodDef {
  return { schema: compiledOnUse(schema), run: run as MethodDef['run'] };
}

const HTTP_REQUESTER = { id: 'http' };

/** An authenticated caller sees only tasks it requested or executes; anonymous (auth off) sees all. */
function viewerOf(requester: Requester): Requester | undefined {
  return requester.id === HTTP_REQUESTER.id ? undefined : requester;
}

function scopeOf(c: { agentId: string; requester: Requester }): TaskScope {
  return { agentId: c.agentId, viewer: viewerOf(c.requester) };
}

/**
 * The JSON-RPC binding of the A2A gateway: `POST /agents/{agentId}/a2a`. The `A2A-Version` header
 * (or query parameter) picks the method set: `1.0` (PascalCase methods, v1.0 shapes), absent or
 * `0.3` (`message/send`, ..., v0.3 shapes); any other version gets -32009.
 */
export class JsonRpcBinding {
  readonly #methods: Record<A2AVersion, Record<string, MethodDef>>;

  constructor(
    readonly tasks: TaskService,
    readonly extendedCard: (agentId: string, version: A2AVersion) => Promise<unknown>,
    readonly maxBodyBytes: number,
    readonly log: Logger,
  ) {
    const t = tasks;
    const v1: Record<string, MethodDef> = {
      SendMessage: method(SendMessageRequestSchema, async (p, c) => ({
        result: await t.sendMessage(c.agentId, p, c.requester, '1.0', c.onGone),
      })),
      SendStreamingMessage: method(SendMessageRequestSchema, async (p, c) => ({
        stream: await t.streamMessage(c.agentId, p, c.requester, '1.0'),
        map: (d) => d.event,
      })),
      GetTask: method(GetTaskRequestSchema, async (p, c) => ({
        result: await t.getTask(p.id, p.historyLength, scopeOf(c)),
      })),
      ListTasks: method(ListTasksRequestSchema, async (p, c) => ({
        result: await t.listTasks(c.agentId, p, viewerOf(c.requester)),
      })),
      CancelTask: method(CancelTaskRequestSchema, async (p, c) => ({
        result: await t.cancelTask(p.id, scopeOf(c)),
      })),
      SubscribeToTask: method(SubscribeToTaskRequestSchema, async (p, c) => ({
        stream: await t.subscribe(p.id, p.lastSequence ?? c.lastEventId, scopeOf(c)),
        map: (d) => d.event,
      })),
      CreateTaskPushNotificationConfig: method(CreateTaskPushConfigRequestSchema, async (p, c) => ({
        result: await t.createPushConfig(p.taskId, p, '1.0', scopeOf(c)),
      })),
      GetTaskPushNotificationConfig: method(TaskPushConfigRefSchema, async (p, c) => ({
        result: await t.getPushConfig(p.taskId, p.id, scopeOf(c)),
      })),
      ListTaskPushNotificationConfigs: method(ListTaskPushConfigsRequestSchema, async (p, c) => ({
        result: { configs: await t.listPushConfigs(p.taskId, scopeOf(c)), nextPageToken: '' },
      })),
      DeleteTaskPushNotificationConfig: method(TaskPushConfigRefSchema, async (p, c) => {
        await t.deletePushConfig(p.taskId, p.id, scopeOf(c));
        return { result: {} };
      }),
      GetExtendedAgentCard: method(GetExtendedAgentCardRequestSchema, async (_p, c) => ({
        result: await this.extendedCard(c.agentId, '1.0'),
      })),
    };
    const v03: Record<string, MethodDef> = {
      'message/send': method(MessageSendParamsV03Schema, async (p, c) => {
        const r = await t.sendMessage(c.agentId, sendFrom03(p), c.requester, '0.3', c.onGone);
        return { result: 'task' in r ? taskTo03(r.task) : messageTo03(r.message) };
      }),
      'message/stream': method(MessageSendParamsV03Schema, async (p, c) => ({
        stream: await t.streamMessage(c.agentId, sendFrom03(p), c.requester, '0.3'),
        map: (d) => streamTo03(d.event, d.final),
      })),
      'tasks/get': method(TaskQueryParamsV03Schema, async (p, c) => ({
        result: taskTo03(await t.getTask(p.id, p.historyLength, scopeOf(c))),
      })),
      'tasks/cancel': method(TaskIdParamsV03Schema, async (p, c) => ({
        result: taskTo03(await t.cancelTask(p.id, scopeOf(c))),
      })),
      'tasks/resubscribe': method(TaskIdParamsV03Schema, async (p, c) => ({
        stream: await t.subscribe(p.id, c.lastEventId, scopeOf(c)),
        map: (d) => streamTo03(d.event, d.final),
      })),
      'tasks/pushNotificationConfig/set': method(SetPushConfigParamsV03Schema, async (p, c) => ({
        result: pushConfigTo03(
          await t.createPushConfig(
            p.taskId,
            pushConfigFrom03(p.taskId, p.pushNotificationConfig),
            '0.3',
            scopeOf(c),
          ),
        ),
      })),
      'tasks/pushNotificationConfig/get': method(GetPushConfigParamsV03Schema, async (p, c) => {
        if (p.pushNotificationConfigId) {
          return {
            result: pushConfigTo03(await t.getPushConfig(p.id, p.pushNotificationConfigId, scopeOf(c))),
          };
        }
        const first = (await t.listPushConfigs(p.id, scopeOf(c)))[0];
        if (!first) throw RpcError.of('TaskNotFound', `task ${p.id} has no push config`, { taskId: p.id });
        return { result: pushConfigTo03(first) };
      }),
      'tasks/pushNotificationConfig/list': method(TaskIdParamsV03Schema, async (p, c) => ({
        result: (await t.listPushConfigs(p.id, scopeOf(c))).map(pushConfigTo03),
      })),
      'tasks/pushNotificationConfig/delete': method(DeletePushConfigParamsV03Schema, async (p, c) => {
        await t.deletePushConfig(p.id, p.pushNotificationConfigId, scopeOf(c));
        return { result: null };
      }),
      'agent/getAuthenticatedExtendedCard': method(GetExtendedAgentCardRequestSchema, async (_p, c) => ({
        result: await this.extendedCard(c.agentId, '0.3'),
      })),
    };
    this.#methods = { '1.0': v1, '0.3': v03 };
  }

  /** Handles one POST. Never throws: every failure is a JSON-RPC error (or 413/415 for the envelope). */
  async handle(
    req: HttpIn,
    res: HttpOut,
    agentId: string,
    url: RequestTarget,
    requester: Requester = HTTP_REQUESTER,
  ): Promise<void> {
    const rawVersion = header(req, 'a2a-version') ?? url.searchParams.get('A2A-Version') ?? undefined;
    const version = parseVersion(rawVersion);
    const wireVersion: A2AVersion = version ?? '1.0';
    const contentType = (header(req, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (contentType !== 'application/json' && contentType !== 'application/a2a+json') {
      const e = RpcError.of(
        'InvalidRequest',
        'Content-Type must be application/json (or application/a2a+json)',
        {
          contentType: contentType || '(none)',
        },
      );
      return sendRpc(res, 415, null, { error: toA2AWire(e, wireVersion) }, { accept: 'application/json' });
    }
    let body: Buffer;
    try {
      body = await readBody(req, this.maxBodyBytes);
    } catch {
      const e = RpcError.of('InvalidRequest', `request body over ${this.maxBodyBytes} bytes`, {
        limitBytes: this.maxBodyBytes,
      });
      return sendRpc(res, 413, null, { error: toA2AWire(e, wireVersion) });
    }
    let msg: unknown;
    try {
      msg = JSON.parse(body.toString('utf8'));
    } catch (error) {
      const e = RpcError.of('ParseError', 'Invalid JSON payload', { detail: (error as Error).message });
      return sendRpc(res, 200, null, { error: toA2AWire(e, wireVersion) });
    }
    const envelope = readEnvelope(msg);
    if ('error' in envelope) {
      return sendRpc(res, 200, envelope.id, { error: toA2AWire(envelope.error, wireVersion) });
    }
    const { id, method: name, params } = envelope;
    if (!version) {
      const e = RpcError.of(
        'VersionNotSupported',
        `A2A version ${rawVersion} is not supported; use 1.0 or 0.3`,
        {
          requested: rawVersion ?? '',
          supported: '1.0, 0.3',
        },
      );
      return sendRpc(res, 200, id, { error: toA2AWire(e, '1.0') });
    }
    const def = Object.hasOwn(this.#methods[version], name) ? this.#methods[version][name] : undefined;
    if (!def) {
      const other = version === '1.0' ? '0.3' : '1.0';
      const hint = Object.hasOwn(this.#methods[other], name)
        ? ` (a v${other} method: send A2A-Version: ${other})`
        : '';
      const e = RpcError.of('MethodNotFound', `method not found: ${name.slice(0, 128)}${hint}`);
      return sendRpc(res, 200, id, { error: toA2AWire(e, version) });
    }
    const parsed = def.schema.safeParse(withoutNulls(params ?? {}));
    if (!parsed.success) {
      return sendRpc(res, 200, id, {
        error: toA2AWire(invalidParams('params', parsed.error.issues), version),
      });
    }
    const extension = wantsSequence(req, version);
    const caller = watchCaller(res);
    let outcome: Outcome;
    try {
      outcome = await def.run(parsed.data as never, {
        agentId,
        requester,
        onGone: caller.onGone,
        lastEventId: parseLastEventId(header(req, 'last-event-id')),
      });
    } catch (error) {
      caller.answered();
      return sendRpc(res, 200, id, { error: this.#wire(error, version, name) });
    }
    const extra: Record<string, string> = extension ? { 'a2a-extensions': TASK_SEQUENCE_EXTENSION } : {};
    if ('result' in outcome) {
      caller.answered();
      return sendRpc(res, 200, id, { result: outcome.result }, extra);
    }
    await this.#sse(res, id, outcome, version, extension, extra, caller.onGone);
  }

  async #sse(
    res: HttpOut,
    id: string | number,
    outcome: Extract<Outcome, { stream: TaskStream }>,
    version: A2AVersion,
    extension: boolean,
    headers: Record<string, string>,
    onGone: OnCallerGone,
  ): Promise<void> {
    const { stream, map } = outcome;
    const out = res;
    onGone(() => stream.close());
    out.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
      ...headers,
    });
    out.write(': stream open\n\n');
    const ping = setInterval(() => out.write(': ping\n\n'), 15_000);
    ping.unref();
    try {
      for await (const d of stream) {
        const event = extension ? withSequence(d) : d;
        const json = JSON.stringify({ jsonrpc: '2.0', id, result: map(event) });
        out.write(`id: ${d.sequence}\ndata: ${json}\n\n`);
      }
    } catch (error) {
      const json = JSON.stringify({ jsonrpc: '2.0', id, error: this.#wire(error, version, 'stream') });
      out.write(`data: ${json}\n\n`);
    } finally {
      clearInterval(ping);
      stream.close();
      out.end();
    }
  }

  #wire(error: unknown, version: A2AVersion, method: string): JsonRpcErrorObject {
    if (error instanceof RpcError) return toA2AWire(error, version);
    this.log.error({ err: error, method }, 'A2A handler failed');
    return toA2AWire(RpcError.of('InternalError', 'internal error'), version);
  }
}

/**
 * Watches a request's stream for closing before its response (the caller went away): an
 * `OnCallerGone` without an AbortController per request (one showed in gateway profiles).
 * `answered()` marks the response as written (a direct HTTP/2 answer leaves `writableEnded` false).
 */
function watchCaller(res: HttpOut): { onGone: OnCallerGone; answered(): void } {
  let stops: Set<() => void> | undefined;
  let gone = false;
  let answered = false;
  res.once('close', () => {
    if (answered || res.writableEnded) return;
    gone = true;
    if (stops) for (const stop of stops) stop();
    stops = undefined;
  });
  return {
    onGone: (stop) => {
      if (gone) {
        stop();
        return () => {};
      }
      stops ??= new Set();
      stops.add(stop);
      return () => stops?.delete(stop);
    },
    answered: () => {
      answered = true;
      stops = undefined;
    },
  };
}

/**
 * ProtoJSON reads `null` as "not set": drop null members so optional fields validate. Params without
 * a null member (nearly all) are returned as they are, not copied.
 */
function withoutNulls(value: unknown): unknown {
  return hasNullMember(value) ? copyWithoutNulls(value) : value;
}

function hasNullMember(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (Array.isArray(value)) return value.some(hasNullMember);
  for (const k in value) {
    if (!Object.hasOwn(value, k)) continue;
    const v = (value as Record<string, unknown>)[k];
    if (v === null || hasNullMember(v)) return true;
  }
  return false;
}

function copyWithoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(copyWithoutNulls);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== null) out[k] = copyWithoutNulls(v);
  return out;
}

function header(req: HttpIn, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/** `1.0`/`1`/`1.0.x` → 1.0; empty or `0.3`/`0.3.x` → 0.3 (§3.6: no header means 0.3); else undefined. */
export function parseVersion(raw: string | undefined): A2AVersion | undefined {
  const v = (raw ?? '').trim();
  if (v === '') return '0.3';
  const m = /^(\d+)(?:\.(\d+))?(?:\.\d+)?$/.exec(v);
  if (!m) return undefined;
  const major = Number(m[1]);
  const minor = Number(m[2] ?? '0');
  if (major === 1 && minor === 0) return '1.0';
  if (major === 0 && minor === 3) return '0.3';
  return undefined;
}

function parseLastEventId(raw: string | undefined): number | undefined {
  if (raw === undefined || !/^\d{1,15}$/.test(raw.trim())) return undefined;
  return Number(raw.trim());
}

function wantsSequence(req: HttpIn, version: A2AVersion): boolean {
  const raw = header(req, version === '1.0' ? 'a2a-extensions' : 'x-a2a-extensions') ?? '';
  return raw.split(',').some((x) => x.trim() === TASK_SEQUENCE_EXTENSION);
}

/** The event with its sequence in the metadata under the extension's URI. */
function withSequence(d: Delivered): Delivered {
  const tag = { [TASK_SEQUENCE_EXTENSION]: { sequence: d.sequence } };
  const e = d.event;
  let event: StreamResponse;
  if ('task' in e) event = { task: { ...e.task, metadata: { ...e.task.metadata, ...tag } } };
  else if ('message' in e) event = { message: { ...e.message, metadata: { ...e.message.metadata, ...tag } } };
  else if ('statusUpdate' in e)
    event = { statusUpdate: { ...e.statusUpdate, metadata: { ...e.statusUpdate.metadata, ...tag } } };
  else
    event = { artifactUpdate: { ...e.artifactUpdate, metadata: { ...e.artifactUpdate.metadata, ...tag } } };
  return { ...d, event };
}

type Envelope =
  | { id: string | number; method: string; params: unknown }
  | { id: string | number | null; error: RpcError };

function readEnvelope(msg: unknown): Envelope {
  if (Array.isArray(msg)) {
    return { id: null, error: RpcError.of('InvalidRequest', 'batches are not supported by the A2A binding') };
  }
  if (typeof msg !== 'object' || msg === null) {
    return { id: null, error: RpcError.of('InvalidRequest', 'a request is a JSON object') };
  }
  const m = msg as Record<string, unknown>;
  const id = typeof m.id === 'string' || (typeof m.id === 'number' && Number.isInteger(m.id)) ? m.id : null;
  if (m.jsonrpc !== '2.0') return { id, error: RpcError.of('InvalidRequest', 'jsonrpc must be "2.0"') };
  if (typeof m.method !== 'string' || m.method === '')
    return { id, error: RpcError.of('InvalidRequest', 'method must be a non-empty string') };
  if (id === null) return { id, error: RpcError.of('InvalidRequest', 'id must be a string or an integer') };
  return { id, method: m.method, params: m.params };
}

function sendRpc(
  res: HttpOut,
  status: number,
  id: string | number | null,
  body: { result: unknown } | { error: JsonRpcErrorObject },
  headers: Record<string, string> = {},
): void {
  sendJson(res, status, { jsonrpc: '2.0', id, ...body }, headers);
}

/** A v0.3 `message/send` as a v1.0 SendMessageRequest (`blocking: false` is `returnImmediately`). */
function sendFrom03(p: z.output<typeof MessageSendParamsV03Schema>) {
  const c = p.configuration;
  const configuration: Record<string, unknown> = {};
  if (c?.acceptedOutputModes) configuration.acceptedOutputModes = c.acceptedOutputModes;
  if (c?.historyLength !== undefined) configuration.historyLength = c.historyLength;
  if (c?.blocking === false) configuration.returnImmediately = true;
  if (c?.pushNotificationConfig)
    configuration.taskPushNotificationConfig = pushConfigFrom03('', c.pushNotificationConfig);
  const out = SendMessageRequestSchema.safeParse({
    message: messageFrom03(p.message),
    configuration,
    ...(p.metadata ? { metadata: p.metadata } : {}),
  });
  if (!out.success) throw invalidParams('params', out.error.issues);
  return out.data;
}
