import type {
  Artifact,
  Json,
  Message,
  Part,
  StreamResponse,
  Task,
  TaskState,
  TaskStatus,
} from '@a2a-mesh/protocol';
import { TaskStateSchema } from '@a2a-mesh/protocol';
import type { TaskContext, TaskExecutor } from './executor.js';

/**
 * Runs an `@a2a-js/sdk` (1.x) AgentExecutor unchanged on the mesh. The SDK hands executors its
 * protobuf-style objects (enum numbers, `{content: {$case, value}}` parts) in a RequestContext and
 * an ExecutionEventBus; this adapter builds both from a mesh turn and publishes what the executor
 * publishes as A2A v1.0 JSON. The SDK is not imported: the shapes are duck-typed.
 */

/** The AgentExecutor interface of `@a2a-js/sdk`: `execute(requestContext, eventBus)`, `cancelTask(taskId, eventBus)`. */
export interface A2AAgentExecutorLike {
  execute(requestContext: never, eventBus: never): Promise<void>;
  cancelTask(taskId: string, eventBus: never): Promise<void>;
}

type Obj = Record<string, unknown>;
type SdkEvent = { kind: 'message' | 'task' | 'statusUpdate' | 'artifactUpdate'; data: Obj };

// Proto enum order: index = the numeric value the SDK uses.
const STATES: readonly TaskState[] = TaskStateSchema.options;
const ROLES = ['ROLE_UNSPECIFIED', 'ROLE_USER', 'ROLE_AGENT'] as const;

// ---------------------------------------------------------------- SDK objects → A2A JSON

function nonEmpty<T>(v: T[] | undefined): T[] | undefined {
  return v && v.length > 0 ? v : undefined;
}

function meta(v: unknown): Record<string, Json> | undefined {
  return v && typeof v === 'object' && Object.keys(v).length > 0 ? (v as Record<string, Json>) : undefined;
}

function clean<T extends Obj>(o: T): T {
  for (const k of Object.keys(o)) if (o[k] === undefined || o[k] === '') delete o[k];
  return o;
}

function partToJson(p: Obj): Part {
  const c = (p.content ?? {}) as { $case?: string; value?: unknown };
  const out: Obj = {};
  if (c.$case === 'text') out.text = c.value;
  else if (c.$case === 'raw') out.raw = toBase64(c.value as Uint8Array);
  else if (c.$case === 'url') out.url = c.value;
  else if (c.$case === 'data') out.data = c.value ?? null;
  else out.text = '';
  out.filename = p.filename;
  out.mediaType = p.mediaType;
  out.metadata = meta(p.metadata);
  return clean(out) as Part;
}

function messageToJson(m: Obj): Message {
  return clean({
    messageId: m.messageId,
    contextId: m.contextId,
    taskId: m.taskId,
    role: typeof m.role === 'number' ? (ROLES[m.role] ?? 'ROLE_AGENT') : m.role,
    parts: ((m.parts as Obj[] | undefined) ?? []).map(partToJson),
    metadata: meta(m.metadata),
    extensions: nonEmpty(m.extensions as string[] | undefined),
    referenceTaskIds: nonEmpty(m.referenceTaskIds as string[] | undefined),
  }) as unknown as Message;
}

function statusToJson(s: Obj | undefined): TaskStatus {
  const state = typeof s?.state === 'number' ? (STATES[s.state] ?? 'TASK_STATE_UNSPECIFIED') : s?.state;
  return clean({
    state: (state ?? 'TASK_STATE_UNSPECIFIED') as TaskState,
    message: s?.message ? messageToJson(s.message as Obj) : undefined,
    timestamp: s?.timestamp as string | undefined,
  }) as TaskStatus;
}

function artifactToJson(a: Obj): Artifact {
  return clean({
    artifactId: a.artifactId,
    name: a.name,
    description: a.description,
    parts: ((a.parts as Obj[] | undefined) ?? []).map(partToJson),
    metadata: meta(a.metadata),
    extensions: nonEmpty(a.extensions as string[] | undefined),
  }) as unknown as Artifact;
}

function taskToJson(t: Obj): Task {
  return clean({
    id: t.id,
    contextId: t.contextId,
    status: statusToJson(t.status as Obj | undefined),
    artifacts: nonEmpty((t.artifacts as Obj[] | undefined)?.map(artifactToJson)),
    history: nonEmpty((t.history as Obj[] | undefined)?.map(messageToJson)),
    metadata: meta(t.metadata),
  }) as unknown as Task;
}

/** An SDK `AgentExecutionEvent` as an A2A stream item. */
export function sdkEventToStream(e: SdkEvent): StreamResponse {
  const d = e.data;
  switch (e.kind) {
    case 'message':
      return { message: messageToJson(d) };
    case 'task':
      return { task: taskToJson(d) };
    case 'statusUpdate':
      return {
        statusUpdate: clean({
          taskId: d.taskId as string,
          contextId: d.contextId as string,
          status: statusToJson(d.status as Obj | undefined),
          metadata: meta(d.metadata),
        }),
      };
    case 'artifactUpdate':
      return {
        artifactUpdate: clean({
          taskId: d.taskId as string,
          contextId: d.contextId as string,
          artifact: artifactToJson((d.artifact ?? {}) as Obj),
          append: d.append === true ? true : undefined,
          lastChunk: d.lastChunk === true ? true : undefined,
          metadata: meta(d.metadata),
        }),
      };
    default:
      throw new Error(`unknown executor event ${JSON.stringify((e as { kind: unknown }).kind)}`);
  }
}

// ---------------------------------------------------------------- A2A JSON → SDK objects

function partToSdk(p: Part): Obj {
  let content: Obj;
  if (p.text !== undefined) content = { $case: 'text', value: p.text };
  else if (p.raw !== undefined) content = { $case: 'raw', value: fromBase64(p.raw) };
  else if (p.url !== undefined) content = { $case: 'url', value: p.url };
  else content = { $case: 'data', value: p.data };
  return { content, metadata: p.metadata, filename: p.filename ?? '', mediaType: p.mediaType ?? '' };
}

function messageToSdk(m: Message): Obj {
  return {
    messageId: m.messageId,
    contextId: m.contextId ?? '',
    taskId: m.taskId ?? '',
    role: ROLES.indexOf(m.role),
    parts: m.parts.map(partToSdk),
    metadata: m.metadata,
    extensions: m.extensions ?? [],
    referenceTaskIds: m.referenceTaskIds ?? [],
  };
}

function taskToSdk(t: Task): Obj {
  return {
    id: t.id,
    contextId: t.contextId ?? '',
    status: {
      state: STATES.indexOf(t.status.state),
      message: t.status.message ? messageToSdk(t.status.message) : undefined,
      timestamp: t.status.timestamp,
    },
    artifacts: (t.artifacts ?? []).map((a) => ({
      artifactId: a.artifactId,
      name: a.name ?? '',
      description: a.description ?? '',
      parts: a.parts.map(partToSdk),
      metadata: a.metadata,
      extensions: a.extensions ?? [],
    })),
    history: (t.history ?? []).map(messageToSdk),
    metadata: t.metadata,
  };
}

// ---------------------------------------------------------------- the event bus and the adapter

type Listener = (event?: SdkEvent) => void;

/** An ExecutionEventBus that forwards every published event to the turn, in order. */
class MeshEventBus {
  readonly #listeners = { event: new Set<Listener>(), finished: new Set<Listener>() };
  #finished = false;

  constructor(readonly turn: TaskContext) {}

  publish(event: SdkEvent): void {
    // The bus API is synchronous; the turn serializes the publishes and the runner awaits them.
    this.turn.publish(sdkEventToStream(event)).catch(() => {});
    for (const l of this.#listeners.event) l(event);
  }

  finished(): void {
    if (this.#finished) return;
    this.#finished = true;
    for (const l of this.#listeners.finished) l();
  }

  on(name: 'event' | 'finished', listener: Listener): this {
    this.#listeners[name].add(listener);
    return this;
  }

  off(name: 'event' | 'finished', listener: Listener): this {
    this.#listeners[name].delete(listener);
    return this;
  }

  once(name: 'event' | 'finished', listener: Listener): this {
    const wrapped: Listener = (e) => {
      this.#listeners[name].delete(wrapped);
      listener(e);
    };
    return this.on(name, wrapped);
  }

  removeAllListeners(name?: 'event' | 'finished'): this {
    if (name) this.#listeners[name].clear();
    else for (const set of Object.values(this.#listeners)) set.clear();
    return this;
  }
}

/** A RequestContext with the fields and getter executors read. */
function requestContext(turn: TaskContext): Obj {
  const message = messageToSdk(turn.message);
  const configuration = turn.configuration;
  return {
    request: {
      tenant: '',
      message,
      configuration: {
        acceptedOutputModes: configuration?.acceptedOutputModes ?? [],
        taskPushNotificationConfig: undefined,
        historyLength: configuration?.historyLength,
        returnImmediately: configuration?.returnImmediately ?? false,
      },
      metadata: turn.metadata,
    },
    taskId: turn.taskId,
    contextId: turn.contextId,
    context: {
      tenant: '',
      user: { isAuthenticated: false, userName: turn.from ?? '' },
      requestedExtensions: undefined,
      activatedExtensions: undefined,
      requestedVersion: '1.0',
      state: new Map<string, unknown>(),
      setTenant() {},
      addActivatedExtension() {},
      setRequestedExtensions() {},
    },
    task: turn.task ? taskToSdk(turn.task) : undefined,
    referenceTasks: turn.referenceTasks.length > 0 ? turn.referenceTasks.map(taskToSdk) : undefined,
    get userMessage() {
      return message;
    },
  };
}

/**
 * Wraps an `@a2a-js/sdk` AgentExecutor as a mesh TaskExecutor:
 * `client.onTask(fromA2AExecutor(new MyAgentExecutor()))`.
 */
export function fromA2AExecutor(executor: A2AAgentExecutorLike): TaskExecutor {
  const buses = new Map<string, MeshEventBus>();
  return {
    async execute(turn) {
      const bus = new MeshEventBus(turn);
      buses.set(turn.taskId, bus);
      try {
        await executor.execute(requestContext(turn) as never, bus as never);
      } finally {
        bus.finished();
        if (buses.get(turn.taskId) === bus) buses.delete(turn.taskId);
      }
    },
    async cancel(turn) {
      const bus = buses.get(turn.taskId) ?? new MeshEventBus(turn);
      await executor.cancelTask(turn.taskId, bus as never);
    },
  };
}

function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function fromBase64(b64: string): Uint8Array {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
