import {
  type Artifact,
  type Json,
  type Message,
  type Part,
  type StreamResponse,
  type Task,
  type TaskPushNotificationConfig,
  type TaskState,
  type TaskStatus,
  withFields,
} from '@a2a-mesh/protocol';
import { z } from 'zod';

/**
 * A2A v0.3 shapes (JSON Schema era: `kind` discriminators, lower-case states and roles) translated
 * to and from v1.0, so v0.3 clients are served by the same task engine.
 */

type Obj = Record<string, unknown>;

const STATE_TO_03: Record<TaskState, string> = {
  TASK_STATE_UNSPECIFIED: 'unknown',
  TASK_STATE_SUBMITTED: 'submitted',
  TASK_STATE_WORKING: 'working',
  TASK_STATE_COMPLETED: 'completed',
  TASK_STATE_FAILED: 'failed',
  TASK_STATE_CANCELED: 'canceled',
  TASK_STATE_INPUT_REQUIRED: 'input-required',
  TASK_STATE_REJECTED: 'rejected',
  TASK_STATE_AUTH_REQUIRED: 'auth-required',
};
const STATE_FROM_03 = new Map(Object.entries(STATE_TO_03).map(([k, v]) => [v, k as TaskState]));

const PartV03Schema = z.looseObject({
  kind: z.enum(['text', 'file', 'data']),
  text: z.string().optional(),
  file: z
    .looseObject({
      bytes: z.string().optional(),
      uri: z.string().optional(),
      name: z.string().optional(),
      mimeType: z.string().optional(),
    })
    .optional(),
  data: z.record(z.string(), z.unknown()).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});

/** A v0.3 Message as sent by clients. */
export const MessageV03Schema = z.looseObject({
  kind: z.literal('message').optional(),
  messageId: z.string().min(1).max(256),
  role: z.enum(['user', 'agent']),
  parts: z.array(PartV03Schema).min(1),
  contextId: z.string().max(256).optional(),
  taskId: z.string().max(256).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  extensions: z.array(z.string()).optional(),
  referenceTaskIds: z.array(z.string()).optional(),
});

const PushConfigV03Schema = z.looseObject({
  id: z.string().optional(),
  url: z.url({ protocol: /^https?$/ }).max(2048),
  token: z.string().max(4096).optional(),
  authentication: z
    .looseObject({ schemes: z.array(z.string()).min(1), credentials: z.string().optional() })
    .optional(),
});

/** v0.3 `message/send` and `message/stream` params. */
export const MessageSendParamsV03Schema = z.looseObject({
  message: MessageV03Schema,
  configuration: z
    .looseObject({
      acceptedOutputModes: z.array(z.string()).optional(),
      historyLength: z.number().int().min(0).optional(),
      pushNotificationConfig: PushConfigV03Schema.optional(),
      blocking: z.boolean().optional(),
    })
    .optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});
export const TaskQueryParamsV03Schema = z.looseObject({
  id: z.string().min(1).max(256),
  historyLength: z.number().int().min(0).optional(),
});
export const TaskIdParamsV03Schema = z.looseObject({ id: z.string().min(1).max(256) });
export const SetPushConfigParamsV03Schema = z.looseObject({
  taskId: z.string().min(1).max(256),
  pushNotificationConfig: PushConfigV03Schema,
});
export const GetPushConfigParamsV03Schema = z.looseObject({
  id: z.string().min(1).max(256),
  pushNotificationConfigId: z.string().max(128).optional(),
});
export const DeletePushConfigParamsV03Schema = z.looseObject({
  id: z.string().min(1).max(256),
  pushNotificationConfigId: z.string().min(1).max(128),
});

function partFrom03(p: z.infer<typeof PartV03Schema>): Part {
  const out: Obj = {};
  if (p.kind === 'text') out.text = p.text ?? '';
  else if (p.kind === 'data') out.data = (p.data ?? {}) as Json;
  else {
    const f = p.file ?? {};
    if (f.bytes !== undefined) out.raw = f.bytes;
    else out.url = f.uri ?? '';
    if (f.name) out.filename = f.name;
    if (f.mimeType) out.mediaType = f.mimeType;
  }
  if (p.metadata) out.metadata = p.metadata;
  return out as Part;
}

function partTo03(p: Part): Obj {
  const out: Obj = {};
  if (p.text !== undefined) Object.assign(out, { kind: 'text', text: p.text });
  else if (p.data !== undefined) {
    const data =
      typeof p.data === 'object' && p.data !== null && !Array.isArray(p.data) ? p.data : { value: p.data };
    Object.assign(out, { kind: 'data', data });
  } else {
    const file: Obj = p.raw !== undefined ? { bytes: p.raw } : { uri: p.url };
    if (p.filename) file.name = p.filename;
    if (p.mediaType) file.mimeType = p.mediaType;
    Object.assign(out, { kind: 'file', file });
  }
  if (p.metadata) out.metadata = p.metadata;
  return out;
}

/** A v0.3 message as v1.0. */
export function messageFrom03(m: z.infer<typeof MessageV03Schema>): Message {
  const { kind: _kind, role, parts, ...rest } = m;
  return withFields(rest as Obj, {
    messageId: m.messageId,
    role: role === 'agent' ? 'ROLE_AGENT' : 'ROLE_USER',
    parts: parts.map(partFrom03),
  }) as Message;
}

/** A v1.0 message as v0.3. */
export function messageTo03(m: Message): Obj {
  return withFields(m, {
    kind: 'message',
    role: m.role === 'ROLE_AGENT' ? 'agent' : 'user',
    parts: m.parts.map(partTo03),
  });
}

function statusTo03(s: TaskStatus): Obj {
  const out: Obj = { ...s, state: STATE_TO_03[s.state] };
  if (s.message) out.message = messageTo03(s.message);
  return out;
}

function artifactTo03(a: Artifact): Obj {
  return { ...a, parts: a.parts.map(partTo03) };
}

/** A v1.0 task as v0.3. */
export function taskTo03(t: Task): Obj {
  const out: Obj = withFields(t, {
    kind: 'task',
    contextId: t.contextId ?? '',
    status: statusTo03(t.status),
  });
  if (t.history) out.history = t.history.map(messageTo03);
  if (t.artifacts) out.artifacts = t.artifacts.map(artifactTo03);
  return out;
}

/** A v1.0 stream item as a v0.3 event; `final` marks the last one of the stream. */
export function streamTo03(e: StreamResponse, final: boolean): Obj {
  if ('task' in e) return taskTo03(e.task);
  if ('message' in e) return messageTo03(e.message);
  if ('statusUpdate' in e) {
    const u = e.statusUpdate;
    return withFields(u, { kind: 'status-update', status: statusTo03(u.status), final });
  }
  const u = e.artifactUpdate;
  return withFields(u, { kind: 'artifact-update', artifact: artifactTo03(u.artifact) });
}

/** A v1.0 task state from its v0.3 name. */
export function stateFrom03(state: string): TaskState | undefined {
  return STATE_FROM_03.get(state);
}

/** A v0.3 push config (with its task id) as v1.0. */
export function pushConfigFrom03(
  taskId: string,
  c: z.infer<typeof PushConfigV03Schema>,
): TaskPushNotificationConfig {
  const out: TaskPushNotificationConfig = { taskId, url: c.url };
  if (c.id) out.id = c.id;
  if (c.token) out.token = c.token;
  if (c.authentication) {
    out.authentication = { scheme: c.authentication.schemes[0]! };
    if (c.authentication.credentials !== undefined)
      out.authentication.credentials = c.authentication.credentials;
  }
  return out;
}

/** A v1.0 push config as v0.3 `{taskId, pushNotificationConfig}`. */
export function pushConfigTo03(c: TaskPushNotificationConfig): Obj {
  const inner: Obj = { id: c.id, url: c.url };
  if (c.token) inner.token = c.token;
  if (c.authentication) {
    inner.authentication = {
      schemes: [c.authentication.scheme],
      ...(c.authentication.credentials === undefined ? {} : { credentials: c.authentication.credentials }),
    };
  }
  return { taskId: c.taskId, pushNotificationConfig: inner };
}
