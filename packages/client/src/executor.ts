import {
  type Artifact,
  compiledOnUse,
  type HandlerContext,
  type Json,
  MeshError,
  type Message,
  RpcError,
  type SendMessageConfiguration,
  type StreamResponse,
  type Task,
  TaskCancelParamsSchema,
  TaskExecuteParamsSchema,
  type TaskState,
  withFields,
} from '@a2a-mesh/protocol';
import { type MessageLike, randomId, toMessage } from './messages.js';
import { asError } from './session.js';

/** An artifact as `TaskContext.artifact` accepts it: `artifactId` is generated when absent. */
export type ArtifactInput = Omit<Artifact, 'artifactId'> & { artifactId?: string };

/**
 * One turn of an A2A task this agent executes, modelled on `@a2a-js/sdk`'s RequestContext plus its
 * event bus. Publish the turn's events in order; each call resolves with the event's per-task
 * sequence once the node stored it. The first event of a turn should be the task (the node
 * writes a snapshot itself if it is a status or artifact update) or a direct `reply`.
 */
export interface TaskContext {
  readonly taskId: string;
  readonly contextId: string;
  /** The message that started this turn. */
  readonly message: Message;
  /** The task as it stood before this turn (a follow-up); undefined on the first turn. */
  readonly task: Task | undefined;
  /** Tasks the message references (`referenceTaskIds`) that exist. */
  readonly referenceTasks: readonly Task[];
  readonly configuration: SendMessageConfiguration | undefined;
  readonly metadata: Record<string, Json> | undefined;
  /** The mesh agent that sent the message, when it came from one (undefined for HTTP clients). */
  readonly from: string | undefined;
  /** Aborted when the task is canceled or the client closes. */
  readonly signal: AbortSignal;
  /** Publishes any A2A event (`{task}`, `{message}`, `{statusUpdate}`, `{artifactUpdate}`). */
  publish(event: StreamResponse): Promise<number>;
  /** Publishes a status update; `message` (text or message) is sent with role agent. */
  status(state: TaskState, message?: MessageLike, metadata?: Record<string, Json>): Promise<number>;
  /** `TASK_STATE_WORKING`. */
  working(message?: MessageLike): Promise<number>;
  /** `TASK_STATE_INPUT_REQUIRED`: the turn should end; the client answers with a follow-up message. */
  inputRequired(message: MessageLike): Promise<number>;
  /** `TASK_STATE_AUTH_REQUIRED`. */
  authRequired(message: MessageLike): Promise<number>;
  /** `TASK_STATE_COMPLETED`. */
  complete(message?: MessageLike): Promise<number>;
  /** `TASK_STATE_FAILED`. */
  fail(message: MessageLike): Promise<number>;
  /** `TASK_STATE_REJECTED`. */
  reject(message: MessageLike): Promise<number>;
  /** Adds (or with `append`, extends) an artifact. */
  artifact(artifact: ArtifactInput, options?: { append?: boolean; lastChunk?: boolean }): Promise<number>;
  /** Answers with a direct message instead of a task (only as the turn's first event). */
  reply(message: MessageLike): Promise<number>;
}

/** Executes A2A tasks addressed to this agent, like `@a2a-js/sdk`'s AgentExecutor. */
export interface TaskExecutor {
  /** Runs one turn; publish through `ctx`. Returning ends the turn; throwing fails the task. */
  execute(ctx: TaskContext): Promise<void> | void;
  /** Stops a running turn (default: abort `ctx.signal` and publish `TASK_STATE_CANCELED`). */
  cancel?(ctx: TaskContext): Promise<void> | void;
}

/** What the runner needs from the client: agent-to-node calls. */
export interface TaskHost {
  call(
    method: 'task/publish',
    params: { taskId: string; event: StreamResponse },
  ): Promise<{ sequence: number; ended?: boolean }>;
  call(method: 'task/done', params: { taskId: string; error?: string }): Promise<unknown>;
}

class Turn implements TaskContext {
  readonly taskId: string;
  readonly contextId: string;
  readonly message: Message;
  readonly task: Task | undefined;
  readonly referenceTasks: readonly Task[];
  readonly configuration: SendMessageConfiguration | undefined;
  readonly metadata: Record<string, Json> | undefined;
  readonly from: string | undefined;
  readonly abort = new AbortController();
  /** True once the node said an event ended the turn (it closed the task): no `task/done` then. */
  ended = false;
  #tail: Promise<unknown> = Promise.resolve();

  constructor(
    params: ReturnType<typeof TaskExecuteParamsSchema.parse>,
    readonly host: TaskHost,
  ) {
    this.taskId = params.taskId;
    this.contextId = params.contextId;
    this.message = params.message;
    this.task = params.task;
    this.referenceTasks = params.referenceTasks ?? [];
    this.configuration = params.configuration;
    this.metadata = params.metadata;
    this.from = params.from?.agentId;
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  publish(event: StreamResponse): Promise<number> {
    // One at a time, in order: the node validates each event against the state the previous left.
    const next = this.#tail.then(async () => {
      const { sequence, ended } = await this.host.call('task/publish', { taskId: this.taskId, event });
      if (ended === true) this.ended = true;
      return sequence;
    });
    this.#tail = next.catch(() => {});
    return next;
  }

  /** Resolves when every publish so far has settled. */
  flush(): Promise<unknown> {
    return this.#tail;
  }

  #agentMessage(m: MessageLike): Message {
    return withFields(toMessage(m, 'ROLE_AGENT'), {
      taskId: this.taskId,
      contextId: this.contextId,
    }) as Message;
  }

  status(state: TaskState, message?: MessageLike, metadata?: Record<string, Json>): Promise<number> {
    const status: { state: TaskState; message?: Message; timestamp: string } = {
      state,
      timestamp: new Date().toISOString(),
    };
    if (message !== undefined) status.message = this.#agentMessage(message);
    return this.publish({
      statusUpdate: {
        taskId: this.taskId,
        contextId: this.contextId,
        status,
        ...(metadata ? { metadata } : {}),
      },
    });
  }

  working(message?: MessageLike): Promise<number> {
    return this.status('TASK_STATE_WORKING', message);
  }
  inputRequired(message: MessageLike): Promise<number> {
    return this.status('TASK_STATE_INPUT_REQUIRED', message);
  }
  authRequired(message: MessageLike): Promise<number> {
    return this.status('TASK_STATE_AUTH_REQUIRED', message);
  }
  complete(message?: MessageLike): Promise<number> {
    return this.status('TASK_STATE_COMPLETED', message);
  }
  fail(message: MessageLike): Promise<number> {
    return this.status('TASK_STATE_FAILED', message);
  }
  reject(message: MessageLike): Promise<number> {
    return this.status('TASK_STATE_REJECTED', message);
  }

  artifact(
    artifact: ArtifactInput,
    options: { append?: boolean; lastChunk?: boolean } = {},
  ): Promise<number> {
    return this.publish({
      artifactUpdate: {
        taskId: this.taskId,
        contextId: this.contextId,
        artifact: withFields(artifact, { artifactId: artifact.artifactId ?? randomId() }) as Artifact,
        ...(options.append === undefined ? {} : { append: options.append }),
        ...(options.lastChunk === undefined ? {} : { lastChunk: options.lastChunk }),
      },
    });
  }

  reply(message: MessageLike): Promise<number> {
    return this.publish({ message: this.#agentMessage(message) });
  }
}

/** `task/execute` params, checked per turn with a compiled parser. */
const executeParams = compiledOnUse(TaskExecuteParamsSchema);

/**
 * The agent side of the task protocol: runs the executor for each `task/execute` (answered at once),
 * ends the turn with `task/done` (unless the node ended it with a closing event), and handles
 * `task/cancel`.
 */
export class TaskRunner {
  #executor: TaskExecutor | undefined;
  readonly #turns = new Map<string, Turn>();

  constructor(readonly host: TaskHost) {}

  /** Sets the executor (replacing any); returns a function that removes it. */
  setExecutor(executor: TaskExecutor): () => void {
    this.#executor = executor;
    return () => {
      if (this.#executor === executor) this.#executor = undefined;
    };
  }

  /** Answers `task/execute`: starts the turn once the answer is out. */
  execute(params: unknown, ctx: HandlerContext, agentId: string | undefined): Record<string, never> {
    const { executor, turn } = this.#take(params, agentId);
    ctx.afterResponse(() => void this.#run(executor, turn));
    return {};
  }

  /**
   * `task/execute` as a notification (the SDK asks for it at `mesh/hello`): starts the turn at once.
   * A turn it cannot take is ended with `task/done` and the reason, which fails the task.
   */
  executeNotified(params: unknown, agentId: string | undefined): void {
    let taken: { executor: TaskExecutor; turn: Turn };
    try {
      taken = this.#take(params, agentId);
    } catch (error) {
      const taskId = (params as { taskId?: unknown } | null)?.taskId;
      if (typeof taskId === 'string') {
        this.host.call('task/done', { taskId, error: asError(error).message }).catch(() => {});
      }
      return;
    }
    void this.#run(taken.executor, taken.turn);
  }

  #take(params: unknown, agentId: string | undefined): { executor: TaskExecutor; turn: Turn } {
    const parsed = executeParams.safeParse(params);
    if (!parsed.success) {
      throw RpcError.of('InvalidParams', 'invalid task/execute params', { detail: parsed.error.message });
    }
    const executor = this.#executor;
    if (!executor) throw RpcError.of('AgentError', `agent ${agentId ?? ''} takes no tasks`);
    const turn = new Turn(parsed.data, this.host);
    this.#turns.get(turn.taskId)?.abort.abort(new MeshError('aborted', 'replaced by a newer turn'));
    this.#turns.set(turn.taskId, turn);
    return { executor, turn };
  }

  async #run(executor: TaskExecutor, turn: Turn): Promise<void> {
    let error: string | undefined;
    try {
      await executor.execute(turn);
    } catch (e) {
      if (!turn.signal.aborted) error = asError(e).message || 'the executor failed';
    }
    await turn.flush();
    if (this.#turns.get(turn.taskId) === turn) this.#turns.delete(turn.taskId);
    // The node ended the turn with the event that closed the task; an error now changes nothing.
    if (turn.ended) return;
    try {
      await this.host.call('task/done', { taskId: turn.taskId, ...(error === undefined ? {} : { error }) });
    } catch {
      // The node fails the turn itself if the agent vanished; nothing more to do here.
    }
  }

  /** Answers `task/cancel` once the running turn (if any) has stopped and said so. */
  async cancel(params: unknown): Promise<Record<string, never>> {
    const parsed = TaskCancelParamsSchema.safeParse(params);
    if (!parsed.success) throw RpcError.of('InvalidParams', 'invalid task/cancel params');
    const turn = this.#turns.get(parsed.data.taskId);
    if (!turn) return {};
    const executor = this.#executor;
    try {
      if (executor?.cancel) await executor.cancel(turn);
      else {
        turn.abort.abort(new MeshError('aborted', 'task canceled'));
        await turn.status('TASK_STATE_CANCELED', 'Canceled on request.').catch(() => 0);
      }
    } finally {
      turn.abort.abort(new MeshError('aborted', 'task canceled'));
      await turn.flush();
    }
    return {};
  }

  /** Aborts every running turn (the client is closing). */
  abortAll(reason: Error): void {
    for (const turn of this.#turns.values()) turn.abort.abort(reason);
  }
}
