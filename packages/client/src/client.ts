import {
  type AgentEntry,
  CollabEventSchema,
  type CollabStartParams,
  type CollabStartResult,
  type Connector,
  type ConvContinueResult,
  type ConvEndedParams,
  type ConversationTarget,
  type ConvHistoryResult,
  type ConvStartResult,
  compiledOnUse,
  type DiscoverParams,
  type HandlerContext,
  type HelloParams,
  type HelloResult,
  type Json,
  jsonCodec,
  MeshError,
  type MethodName,
  type MethodParams,
  type MethodResult,
  msgpackCodec,
  type RequestOptions,
  RpcError,
  TopicMessageSchema,
} from '@a2a-mesh/protocol';
import { A2ATasks } from './a2aTasks.js';
import { backoffPolicy, type ReconnectOptions } from './backoff.js';
import { type CollabHost, CollaborationHandle, type JoinRequest } from './collaboration.js';
import { type ConversationHandler, ConversationResponder } from './conversations.js';
import { remaining } from './deadline.js';
import { type TaskContext, type TaskExecutor, type TaskHost, TaskRunner } from './executor.js';
import { type MessageLike, toMessage } from './messages.js';
import { asError, isConnectionLoss, type Session } from './session.js';
import { SessionManager } from './sessionManager.js';
import type { ClientStatus } from './status.js';
import { type TopicHost, TopicRouter, TopicSubscription } from './topics.js';
import { type WebSocketConstructor, webSocketConnector } from './webSocket.js';

/** Event notifications, checked with compiled parsers (one per event a member receives). */
const collabEvents = compiledOnUse(CollabEventSchema);
const topicMessages = compiledOnUse(TopicMessageSchema);

/** An Agent Card as `mesh/hello` accepts it (skills may be omitted). */
export type AgentCardInput = NonNullable<HelloParams['card']>;

/** Turns a node URL into a Connector: how `MeshClient` reaches `url`/`urls` (see `transport`). */
export type MeshTransport = (url: string) => Connector;

/** Options of `MeshClient`. Give exactly one of `url`, `urls`, `connector`. */
export interface MeshClientOptions {
  /** A node's WebSocket endpoint, e.g. `ws://127.0.0.1:7420/mesh` (or a URL for `transport`). */
  url?: string;
  /** Several nodes' endpoints: the first is used first, reconnects rotate through them. */
  urls?: readonly string[];
  /** Opens connections some other way (e.g. a node's in-memory `connector()`). */
  connector?: Connector;
  /**
   * How to reach `url`/`urls` (default: WebSocket). In Node, `http2Transport()` from
   * `@a2a-mesh/client/node` holds the session over HTTP/2 (`http://host:port`).
   */
  transport?: MeshTransport;
  /** The agent id to register (default: the node assigns one, kept across reconnects). */
  agentId?: string;
  /** The agent's card, published in the mesh directory. */
  card?: AgentCardInput;
  /** A credential for `mesh/hello`, for transports that cannot set headers (browsers). */
  token?: string;
  /**
   * Headers for the WebSocket handshake in Node, e.g. `{ authorization: 'Bearer <token>' }` (the `ws`
   * package sends them; browsers cannot: use `token`). Ignored with `connector` or `transport`.
   */
  headers?: Record<string, string>;
  /** Wire codec for WebSocket URLs (default `json`). */
  codec?: 'json' | 'msgpack';
  /** Default timeout of every request, in ms (default 30000). */
  requestTimeoutMs?: number;
  /** Timeout of one connection attempt (open, hello and re-joins), in ms (default 10000). */
  connectTimeoutMs?: number;
  /** Reconnect policy (default `{ initialDelayMs: 100, maxDelayMs: 5000, maxAttempts: Infinity }`); false: never. */
  reconnect?: ReconnectOptions | false;
  /** WebSocket constructor (default: the global one, else the `ws` package). */
  WebSocket?: WebSocketConstructor;
  /** Idle time after which the client pings the node, in ms (default: the node's `heartbeatMs`); false: never. */
  heartbeatMs?: number | false;
  /** Largest frame accepted from the node, in bytes (default 16 MiB). */
  maxMessageBytes?: number;
  /** After a join, how long a skip-ahead may wait for the stream to fill the gap before re-joining, in ms (default 1000). */
  recoveryGraceMs?: number;
}

/** Parameters of `startConversation`. */
export interface StartConversationParams {
  /** Who answers: an agent by id, or any online agent with a skill. */
  to: ConversationTarget;
  /** The first message: text or an A2A message. */
  message: MessageLike;
  /** Free-form metadata for the conversation. */
  metadata?: Record<string, Json>;
}

/** Options of `subscribe`. */
export interface SubscribeOptions extends RequestOptions {
  /** Messages kept while nobody reads; more are dropped and counted (default 10000). */
  maxBuffered?: number;
}

function connectorsFor(options: MeshClientOptions): Connector[] {
  const given = [options.url, options.urls, options.connector].filter((x) => x !== undefined).length;
  if (given !== 1) throw new MeshError('bad_config', 'give exactly one of url, urls, connector');
  if (options.connector) return [options.connector];
  const urls = options.urls ?? [options.url as string];
  if (urls.length === 0) throw new MeshError('bad_config', 'urls is empty');
  const transport = options.transport;
  if (transport) return urls.map((url) => transport(url));
  const codec = options.codec === 'msgpack' ? msgpackCodec : jsonCodec;
  const WebSocket = options.WebSocket;
  const headers = options.headers;
  return urls.map((url) =>
    webSocketConnector({ url, codec, ...(WebSocket ? { WebSocket } : {}), ...(headers ? { headers } : {}) }),
  );
}

/**
 * An agent's connection to the mesh: one session at a time to a node, re-established with backoff
 * and resumed (collaborations re-joined from their offsets, topics re-subscribed) after it drops.
 * Runs in browsers and Node. `close()` once done.
 */
export class MeshClient implements AsyncDisposable {
  readonly #requestTimeoutMs: number;
  readonly #sessions: SessionManager;
  readonly #collabs = new Map<string, CollaborationHandle>();
  readonly #collabHost: CollabHost;
  readonly #topics = new TopicRouter();
  readonly #conversations = new ConversationResponder();
  readonly #topicHost: TopicHost = { unsubscribe: (sub, options) => this.#unsubscribe(sub, options) };
  readonly #taskRunner = new TaskRunner({
    call: (method: 'task/publish' | 'task/done', params: never) => this.call(method, params),
  } as TaskHost);
  /** A2A calls to other mesh agents over this session: send, stream, get, list, cancel, subscribe, push configs. */
  readonly a2a: A2ATasks = new A2ATasks({
    call: (method, params, options) => this.call(method, params, options),
  });

  /** Creates a client; nothing happens until `connect()`. Throws MeshError `bad_config` on bad options. */
  constructor(options: MeshClientOptions) {
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.#sessions = new SessionManager({
      connectors: connectorsFor(options),
      policy: options.reconnect === false ? undefined : backoffPolicy(options.reconnect),
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      requestTimeoutMs: this.#requestTimeoutMs,
      maxMessageBytes: options.maxMessageBytes ?? 16 * 1024 * 1024,
      heartbeatMs: options.heartbeatMs,
      agentId: options.agentId,
      hello: {
        ...(options.card === undefined ? {} : { card: options.card }),
        ...(options.token === undefined ? {} : { token: options.token }),
        // Turns start without an answer to the node (one frame fewer per A2A task turn).
        notifications: ['task/execute'],
      },
      restore: (session, signal) => this.#restore(session, signal),
      onRequest: (method, params, ctx) => this.#onRequest(method, params, ctx),
      onNotification: (session, method, params) => this.#onNotification(session, method, params),
      onClosed: (error) => this.#onClosed(error),
    });
    this.#collabHost = {
      call: (method, params, opts) => this.call(method, params, opts),
      joinNow: () => {
        const live = this.#sessions.live;
        return live ? joinOn(live) : undefined;
      },
      joinFailed: (handle, error) => this.#onRecoveryFailed(handle, error),
      forget: (handle) => {
        if (this.#collabs.get(handle.id) === handle) this.#collabs.delete(handle.id);
      },
      requestTimeoutMs: this.#requestTimeoutMs,
      recoveryGraceMs: options.recoveryGraceMs ?? 1_000,
      agentId: () => this.agentId,
    };
  }

  /** This agent's id: the one given, or the one the node assigned (undefined before the first hello). */
  get agentId(): string | undefined {
    return this.#sessions.agentId;
  }

  /** The current (or last) session id. */
  get sessionId(): string | undefined {
    return this.#sessions.hello?.sessionId;
  }

  /** The node the current (or last) session is on. */
  get nodeId(): string | undefined {
    return this.#sessions.hello?.nodeId;
  }

  /** The latest `mesh/hello` result. */
  get hello(): HelloResult | undefined {
    return this.#sessions.hello;
  }

  /** True while a session is up and restored. */
  get connected(): boolean {
    return this.#sessions.live !== undefined;
  }

  /**
   * Connects (trying each URL once, in order) and says hello; resolves with the hello result.
   * If every attempt fails, or `signal`/`timeoutMs` cut it short, the client closes and this rejects.
   */
  connect(options?: RequestOptions): Promise<HelloResult> {
    return this.#sessions.connect(options);
  }

  /** Status changes as an async iterable, starting with the current status; ends after `closed`. */
  status(): AsyncIterable<ClientStatus> {
    return this.#sessions.status();
  }

  /** Resolves once the client is closed for good: `void` after `close()`, else the error. Never rejects. */
  closed(): Promise<void | Error> {
    return this.#sessions.closed();
  }

  /** Closes the session and every stream; idempotent. Collaborations see this agent as disconnected. */
  close(): Promise<void> {
    return this.#sessions.shutdown();
  }

  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Calls a mesh method and resolves with its validated result. While reconnecting, waits for the new
   * session (within the timeout). Rejects with RpcError (node said no) or MeshError (timeout, ...).
   */
  async call<M extends MethodName>(
    method: M,
    params: MethodParams<M>,
    options: RequestOptions = {},
  ): Promise<MethodResult<M>> {
    const deadline = Date.now() + (options.timeoutMs ?? this.#requestTimeoutMs);
    const session = await this.#sessions.ready(deadline, options.signal, method);
    return session.request(method, params, remaining(deadline, options.signal, method));
  }

  /** Starts a collaboration (this agent is its owner); join it with `joinCollaboration`. */
  startCollaboration(params: CollabStartParams, options?: RequestOptions): Promise<CollabStartResult> {
    return this.call('collaboration/start', params, options);
  }

  /**
   * Joins a collaboration and resolves with its handle once the local copy is loaded. Joining one
   * already joined returns the same handle. Kept joined across reconnects until `leave()`.
   */
  async joinCollaboration(
    collaborationId: string,
    options: RequestOptions = {},
  ): Promise<CollaborationHandle> {
    const what = 'collaboration/join';
    const deadline = Date.now() + (options.timeoutMs ?? this.#requestTimeoutMs);
    const session = await this.#sessions.ready(deadline, options.signal, what);
    const existing = this.#collabs.get(collaborationId);
    if (existing) {
      await existing.whenJoined(remaining(deadline, options.signal, what));
      return existing;
    }
    // Registered before the request: events that race the result are held, and a reconnect re-joins it.
    const handle = new CollaborationHandle(collaborationId, this.#collabHost);
    this.#collabs.set(collaborationId, handle);
    try {
      await handle.join(joinOn(session), remaining(deadline, options.signal, what));
    } catch (error) {
      if (!isConnectionLoss(error) || this.#sessions.stopping || handle.closed) {
        handle.detach(asError(error));
        throw error;
      }
      try {
        await handle.whenJoined(remaining(deadline, options.signal, what));
      } catch (again) {
        handle.detach(asError(again));
        throw again;
      }
    }
    return handle;
  }

  /** The handle of a joined collaboration, if any. */
  collaboration(collaborationId: string): CollaborationHandle | undefined {
    return this.#collabs.get(collaborationId);
  }

  /**
   * Sets the handler that answers conversation turns addressed to this agent, replacing any previous
   * one. Returns a function that removes it.
   */
  onConversation(handler: ConversationHandler): () => void {
    return this.#conversations.setHandler(handler);
  }

  /**
   * Serves A2A tasks addressed to this agent (from any node's gateway, or from other agents) with an
   * executor, replacing any previous one. Returns a function that removes it.
   */
  onTask(executor: TaskExecutor | ((ctx: TaskContext) => Promise<void> | void)): () => void {
    return this.#taskRunner.setExecutor(typeof executor === 'function' ? { execute: executor } : executor);
  }

  /** Calls `listener` when a conversation this agent answers is ended by the other side. Returns an unsubscribe. */
  onConversationEnded(listener: (params: ConvEndedParams) => void): () => void {
    return this.#conversations.onEnded(listener);
  }

  /** Starts a conversation with an agent (by id or skill) and resolves with its first reply. */
  startConversation(params: StartConversationParams, options?: RequestOptions): Promise<ConvStartResult> {
    const { to, message, metadata } = params;
    const body = {
      to,
      message: toMessage(message, 'ROLE_USER'),
      ...(metadata === undefined ? {} : { metadata }),
    };
    return this.call('conversation/start', body, options);
  }

  /** Sends the next message of a conversation and resolves with the reply. */
  continueConversation(
    conversationId: string,
    message: MessageLike,
    options?: RequestOptions,
  ): Promise<ConvContinueResult> {
    return this.call(
      'conversation/continue',
      { conversationId, message: toMessage(message, 'ROLE_USER') },
      options,
    );
  }

  /** Ends a conversation. */
  async endConversation(conversationId: string, options?: RequestOptions): Promise<void> {
    await this.call('conversation/end', { conversationId }, options);
  }

  /** Every message of a conversation so far. */
  conversationHistory(conversationId: string, options?: RequestOptions): Promise<ConvHistoryResult> {
    return this.call('conversation/history', { conversationId }, options);
  }

  /** Subscribes to a topic pattern (`*` one token, trailing `>` the rest); re-subscribed after reconnects. */
  async subscribe(pattern: string, options: SubscribeOptions = {}): Promise<TopicSubscription> {
    const { maxBuffered = 10_000, ...request } = options;
    const what = 'topics/subscribe';
    const deadline = Date.now() + (request.timeoutMs ?? this.#requestTimeoutMs);
    for (;;) {
      const session = await this.#sessions.ready(deadline, request.signal, what);
      const done = this.#topics.begin();
      try {
        const opts = remaining(deadline, request.signal, what);
        const { subscriptionId } = await session.request(what, { pattern }, opts);
        const sub = new TopicSubscription(pattern, subscriptionId, this.#topicHost, maxBuffered);
        this.#topics.add(sub);
        // The session died right after subscribing and its replacement is already restored: catch up.
        const live = this.#sessions.live;
        if (session.closed && live) void this.#resubscribeLater(live, sub);
        return sub;
      } catch (error) {
        // The subscription went with the session: subscribe again on the next one.
        if (!isConnectionLoss(error) || this.#sessions.stopping) throw error;
      } finally {
        done();
      }
    }
  }

  /** Publishes `data` to a concrete topic (at-most-once, to subscribers connected now). */
  async publish(topic: string, data: Json, options?: RequestOptions): Promise<void> {
    await this.call('topics/publish', { topic, data }, options);
  }

  /** Finds agents by skill, tag or free text. */
  discover(params: DiscoverParams = {}, options?: RequestOptions): Promise<AgentEntry[]> {
    return this.call('agents/discover', params, options);
  }

  /** One agent's directory entry (card, online, node). */
  getAgent(agentId: string, options?: RequestOptions): Promise<AgentEntry> {
    return this.call('agents/get', { agentId }, options);
  }

  /** Stops a subscription locally, then on the node if a session is up. */
  async #unsubscribe(sub: TopicSubscription, options?: RequestOptions): Promise<void> {
    if (sub.closed) return;
    const serverId = sub.serverId;
    this.#topics.remove(sub);
    sub.finish();
    // Without a live session the node already dropped it, and the reconnect will not restore it.
    const live = this.#sessions.live;
    if (!live) return;
    try {
      await live.request('topics/unsubscribe', { subscriptionId: serverId }, options);
    } catch (error) {
      if (error instanceof RpcError && error.reason === 'subscription_not_found') return;
      if (isConnectionLoss(error)) return;
      throw error;
    }
  }

  /** Re-joins every collaboration from its local position and re-subscribes every topic. */
  async #restore(session: Session, signal: AbortSignal): Promise<void> {
    const jobs: Promise<void>[] = [];
    const join = joinOn(session, { signal });
    for (const handle of [...this.#collabs.values()]) {
      jobs.push(
        handle.join(join).catch((error: unknown) => {
          // The node refuses for good (removed, ended, gone): drop the handle, keep the session.
          if (error instanceof RpcError && !error.retryable) handle.detach(error);
          else throw error;
        }),
      );
    }
    for (const sub of this.#topics.all()) jobs.push(this.#resubscribe(session, sub, signal));
    jobs.push(this.a2a.restore((params) => session.request('SubscribeToTask', params, { signal })));
    const results = await Promise.allSettled(jobs);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  async #resubscribe(session: Session, sub: TopicSubscription, signal?: AbortSignal): Promise<void> {
    const done = this.#topics.begin();
    try {
      const { subscriptionId } = await session.request(
        'topics/subscribe',
        { pattern: sub.pattern },
        signal ? { signal } : {},
      );
      if (sub.closed) session.request('topics/unsubscribe', { subscriptionId }).catch(() => {});
      else this.#topics.rebind(sub, subscriptionId);
    } catch (error) {
      if (!(error instanceof RpcError) || error.retryable) throw error;
      this.#topics.remove(sub);
      sub.finish(error);
    } finally {
      done();
    }
  }

  async #resubscribeLater(session: Session, sub: TopicSubscription): Promise<void> {
    try {
      await this.#resubscribe(session, sub);
    } catch (error) {
      if (!session.closed) this.#sessions.drop(session, `re-subscribe failed: ${asError(error).message}`);
    }
  }

  #onRecoveryFailed(handle: CollaborationHandle, error: unknown): void {
    if (error instanceof RpcError && !error.retryable) {
      handle.detach(error);
      return;
    }
    // The stream cannot be trusted without the re-join: start over with a fresh session.
    const live = this.#sessions.live;
    if (live) this.#sessions.drop(live, `collaboration recovery failed: ${asError(error).message}`);
  }

  #onNotification(session: Session, method: string, params: unknown): void {
    if (session.closed || this.#sessions.stopping) return;
    switch (method) {
      case 'task/execute':
        this.#taskRunner.executeNotified(params, this.agentId);
        return;
      case 'collaboration/event': {
        const parsed = collabEvents.safeParse(params);
        if (parsed.success) this.#collabs.get(parsed.data.collaborationId)?.deliver(parsed.data);
        return;
      }
      case 'topics/message': {
        const parsed = topicMessages.safeParse(params);
        if (parsed.success) this.#topics.route(parsed.data);
        return;
      }
      case 'conversation/ended':
        this.#conversations.ended(params);
        return;
      case 'task/event':
        this.a2a.router.route(params);
        return;
      default:
        return;
    }
  }

  #onRequest(method: string, params: unknown, ctx: HandlerContext): Promise<unknown> {
    switch (method) {
      case 'conversation/message':
        return this.#conversations.answer(params, ctx, this.agentId);
      case 'task/execute':
        return Promise.resolve().then(() => this.#taskRunner.execute(params, ctx, this.agentId));
      case 'task/cancel':
        return this.#taskRunner.cancel(params);
      default:
        return Promise.reject(RpcError.of('MethodNotFound', `agents do not serve ${method}`));
    }
  }

  #onClosed(error: Error | undefined): void {
    for (const handle of [...this.#collabs.values()]) handle.detach(error);
    this.#topics.finishAll(error);
    this.#conversations.abortAll(this.#sessions.closedError());
    this.a2a.router.failAll(error);
    this.#taskRunner.abortAll(this.#sessions.closedError());
  }
}

/** Sends `collaboration/join` on `session`. */
function joinOn(session: Session, base: RequestOptions = {}): JoinRequest {
  return (params, options) => session.request('collaboration/join', params, { ...base, ...options });
}
