import {
  AsyncQueue,
  compiledOnUse,
  type ListTasksRequest,
  type ListTasksResponse,
  type MethodName,
  type MethodParams,
  type MethodResult,
  type RequestOptions,
  RpcError,
  type SendMessageConfiguration,
  type SendMessageResponse,
  type StreamResponse,
  type Task,
  type TaskEvent,
  TaskEventSchema,
  type TaskPushNotificationConfig,
} from '@a2a-mesh/protocol';
import { type MessageLike, toMessage } from './messages.js';

/** `task/event` notifications, checked with a compiled parser. */
const taskEvents = compiledOnUse(TaskEventSchema);

/** One event of a task stream, with its per-task sequence. */
export interface TaskStreamItem {
  taskId: string;
  sequence: number;
  event: StreamResponse;
  /** True on the last event of the stream. */
  final: boolean;
}

/** Options of `a2a.sendMessage` and `a2a.streamMessage`. */
export interface SendTaskMessageOptions extends RequestOptions {
  /** Continue this task (a follow-up, e.g. after input-required). */
  taskId?: string;
  /** The A2A context (conversation) the message belongs to. */
  contextId?: string;
  configuration?: SendMessageConfiguration;
  metadata?: Record<string, import('@a2a-mesh/protocol').Json>;
}

/** What the task API needs from its client. */
export interface A2AHost {
  call<M extends MethodName>(
    method: M,
    params: MethodParams<M>,
    options?: RequestOptions,
  ): Promise<MethodResult<M>>;
}

/**
 * A live task stream over the mesh session: an async iterable of events in sequence order. It
 * survives reconnects: the client re-subscribes from the last sequence it delivered (the sequence
 * extension), so nothing is missed or repeated. Breaking out of the iteration stops it.
 */
export class TaskEventStream implements AsyncIterable<TaskStreamItem> {
  readonly #queue: AsyncQueue<TaskStreamItem>;
  #subscriptionId: string;
  #taskId: string | undefined;
  #lastSequence: number | undefined;

  constructor(
    subscriptionId: string,
    readonly router: TaskStreamRouter,
  ) {
    this.#subscriptionId = subscriptionId;
    this.#queue = new AsyncQueue<TaskStreamItem>(() => this.#stop());
  }

  /** The task, once its first event arrived. */
  get taskId(): string | undefined {
    return this.#taskId;
  }

  /** Sequence of the last event delivered. */
  get lastSequence(): number | undefined {
    return this.#lastSequence;
  }

  get subscriptionId(): string {
    return this.#subscriptionId;
  }

  get ended(): boolean {
    return this.#queue.ended;
  }

  /** Takes one `task/event`; duplicates (at or below the last sequence) are dropped. */
  deliver(ev: TaskEvent): void {
    if (ev.taskId) this.#taskId = ev.taskId;
    if (ev.event && ev.sequence !== undefined) {
      if (this.#lastSequence !== undefined && ev.sequence <= this.#lastSequence) return;
      this.#lastSequence = ev.sequence;
      this.#queue.push({ taskId: ev.taskId, sequence: ev.sequence, event: ev.event, final: ev.final });
    }
    if (ev.final) this.end();
  }

  /** Moves the stream to a new subscription id (after a re-subscribe). */
  rebind(subscriptionId: string): void {
    this.router.rebind(this, this.#subscriptionId, subscriptionId);
    this.#subscriptionId = subscriptionId;
  }

  end(): void {
    this.router.forget(this);
    this.#queue.end();
  }

  fail(error: Error): void {
    this.router.forget(this);
    this.#queue.fail(error);
  }

  #stop(): void {
    if (this.router.forget(this)) void this.router.unsubscribe(this.#subscriptionId);
  }

  [Symbol.asyncIterator](): AsyncIterator<TaskStreamItem> {
    return this.#queue[Symbol.asyncIterator]();
  }
}

/** Routes `task/event` notifications to their streams; holds early ones briefly. */
export class TaskStreamRouter {
  readonly #streams = new Map<string, TaskEventStream>();
  /** Events that arrived before their stream was registered (the response raced them). */
  readonly #early = new Map<string, TaskEvent[]>();

  constructor(readonly unsubscribe: (subscriptionId: string) => Promise<void>) {}

  add(stream: TaskEventStream): void {
    this.#streams.set(stream.subscriptionId, stream);
    const early = this.#early.get(stream.subscriptionId);
    this.#early.delete(stream.subscriptionId);
    for (const ev of early ?? []) stream.deliver(ev);
  }

  rebind(stream: TaskEventStream, from: string, to: string): void {
    if (this.#streams.get(from) === stream) this.#streams.delete(from);
    this.#streams.set(to, stream);
    const early = this.#early.get(to);
    this.#early.delete(to);
    for (const ev of early ?? []) stream.deliver(ev);
  }

  /** Removes a stream; true if it was registered. */
  forget(stream: TaskEventStream): boolean {
    if (this.#streams.get(stream.subscriptionId) !== stream) return false;
    this.#streams.delete(stream.subscriptionId);
    return true;
  }

  route(params: unknown): void {
    const parsed = taskEvents.safeParse(params);
    if (!parsed.success) return;
    const ev = parsed.data;
    const stream = this.#streams.get(ev.subscriptionId);
    if (stream) {
      stream.deliver(ev);
      return;
    }
    const list = this.#early.get(ev.subscriptionId) ?? [];
    if (list.length < 1000) list.push(ev);
    this.#early.set(ev.subscriptionId, list);
    if (this.#early.size > 100) this.#early.delete(this.#early.keys().next().value!);
  }

  all(): TaskEventStream[] {
    return [...this.#streams.values()];
  }

  /** Ends every stream with `error` (the client closed). */
  failAll(error: Error | undefined): void {
    for (const s of this.all()) {
      if (error) s.fail(error);
      else s.end();
    }
    this.#early.clear();
  }
}

/**
 * A2A calls from this agent to other mesh agents, over its own session: send (blocking or not),
 * stream, get, list, cancel, subscribe, push configs. Results use the A2A v1.0 JSON shapes.
 */
export class A2ATasks {
  readonly router: TaskStreamRouter;

  constructor(readonly host: A2AHost) {
    this.router = new TaskStreamRouter(async (subscriptionId) => {
      await host.call('task/unsubscribe', { subscriptionId }).catch(() => {});
    });
  }

  #request(agentId: string, message: MessageLike, options: SendTaskMessageOptions) {
    const m = { ...toMessage(message, 'ROLE_USER') };
    if (options.taskId) m.taskId = options.taskId;
    if (options.contextId) m.contextId = options.contextId;
    return {
      agentId,
      message: m as MethodParams<'SendMessage'>['message'],
      ...(options.configuration ? { configuration: options.configuration } : {}),
      ...(options.metadata ? { metadata: options.metadata } : {}),
    };
  }

  /** `SendMessage`: waits for the task to finish or need input, unless `configuration.returnImmediately`. */
  sendMessage(
    agentId: string,
    message: MessageLike,
    options: SendTaskMessageOptions = {},
  ): Promise<SendMessageResponse> {
    return this.host.call('SendMessage', this.#request(agentId, message, options), options);
  }

  /** `SendStreamingMessage`: the task's events as they happen (or one direct message). */
  async streamMessage(
    agentId: string,
    message: MessageLike,
    options: SendTaskMessageOptions = {},
  ): Promise<TaskEventStream> {
    const { subscriptionId } = await this.host.call(
      'SendStreamingMessage',
      this.#request(agentId, message, options),
      options,
    );
    const stream = new TaskEventStream(subscriptionId, this.router);
    this.router.add(stream);
    return stream;
  }

  /** `SubscribeToTask`: the task now, then its events; with `lastSequence`, every event after it. */
  async subscribe(
    taskId: string,
    options: RequestOptions & { lastSequence?: number } = {},
  ): Promise<TaskEventStream> {
    const params =
      options.lastSequence === undefined
        ? { id: taskId }
        : { id: taskId, lastSequence: options.lastSequence };
    const { subscriptionId } = await this.host.call('SubscribeToTask', params, options);
    const stream = new TaskEventStream(subscriptionId, this.router);
    this.router.add(stream);
    return stream;
  }

  getTask(taskId: string, options: RequestOptions & { historyLength?: number } = {}): Promise<Task> {
    const { historyLength, ...rest } = options;
    return this.host.call(
      'GetTask',
      historyLength === undefined ? { id: taskId } : { id: taskId, historyLength },
      rest,
    );
  }

  listTasks(
    agentId: string,
    request: ListTasksRequest = {},
    options?: RequestOptions,
  ): Promise<ListTasksResponse> {
    return this.host.call('ListTasks', { ...request, agentId }, options);
  }

  cancelTask(taskId: string, options?: RequestOptions): Promise<Task> {
    return this.host.call('CancelTask', { id: taskId }, options);
  }

  createPushConfig(
    config: TaskPushNotificationConfig & { taskId: string },
    options?: RequestOptions,
  ): Promise<TaskPushNotificationConfig> {
    return this.host.call('CreateTaskPushNotificationConfig', config, options);
  }

  getPushConfig(taskId: string, id: string, options?: RequestOptions): Promise<TaskPushNotificationConfig> {
    return this.host.call('GetTaskPushNotificationConfig', { taskId, id }, options);
  }

  async listPushConfigs(taskId: string, options?: RequestOptions): Promise<TaskPushNotificationConfig[]> {
    return (await this.host.call('ListTaskPushNotificationConfigs', { taskId }, options)).configs;
  }

  async deletePushConfig(taskId: string, id: string, options?: RequestOptions): Promise<void> {
    await this.host.call('DeleteTaskPushNotificationConfig', { taskId, id }, options);
  }

  /**
   * After a reconnect: re-subscribes every open stream from its last sequence on the new session.
   * `request` is the new session's call. A stream whose task ended meanwhile with nothing left ends.
   */
  async restore(
    request: (params: MethodParams<'SubscribeToTask'>) => Promise<{ subscriptionId: string }>,
  ): Promise<void> {
    await Promise.all(
      this.router.all().map(async (stream) => {
        const taskId = stream.taskId;
        if (taskId === undefined) {
          stream.fail(
            new RpcError(-32067, 'the stream was lost before its first event', { reason: 'unavailable' }),
          );
          return;
        }
        const params =
          stream.lastSequence === undefined
            ? { id: taskId }
            : { id: taskId, lastSequence: stream.lastSequence };
        try {
          const { subscriptionId } = await request(params);
          stream.rebind(subscriptionId);
        } catch (error) {
          if (error instanceof RpcError && !error.retryable) {
            if (error.reason === 'unsupported_operation') stream.end();
            else stream.fail(error);
            return;
          }
          throw error;
        }
      }),
    );
  }
}
