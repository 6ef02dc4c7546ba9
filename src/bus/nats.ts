import { readFile } from 'node:fs/promises';
import { AsyncQueue, MeshError, type MeshErrorCode, type RequestOptions, RpcError } from '@a2a-mesh/protocol';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import {
  type Authenticator,
  connect,
  credsAuthenticator,
  errors,
  headers,
  type Msg,
  type NatsConnection,
  type NodeConnectionOptions,
  type Status,
  type Subscription,
} from '@nats-io/transport-node';
import {
  type AgentRequestHandler,
  type AppendOptions,
  type Bus,
  type BusData,
  type BusMessage,
  type BusStatus,
  type FollowOptions,
  type KvBucket,
  type KvOptions,
  type LogEntry,
  type LogFollower,
  type LogInfo,
  NoRespondersError,
  type Registration,
} from './bus.js';
import {
  Link,
  type NatsBusLogger,
  type NatsContext,
  settle,
  silentLogger,
  toBusError,
} from './natsContext.js';
import { corkNatsWrites, natsWritesCorked } from './natsCork.js';
import { type NatsKvBucket, openNatsKv } from './natsKv.js';
import { NatsLogs } from './natsLogs.js';
import { installNatsRequestFix } from './natsRequestFix.js';

export type { NatsBusLogger } from './natsContext.js';

/** Request header: how long the requester waits (ms); the serving handler's signal aborts after it. */
const TIMEOUT_HEADER = 'Mesh-Timeout-Ms';
/** Reply header: the reply body is an encoded error thrown by the agent's handler. */
const ERROR_HEADER = 'Mesh-Error';
const TOKEN = /^[A-Za-z0-9_-]+$/;
const MESH_ERROR_CODES: ReadonlySet<string> = new Set<MeshErrorCode>([
  'closed',
  'timeout',
  'aborted',
  'connection_lost',
  'protocol',
  'too_large',
  'bad_config',
  'bus_conflict',
  'bus_unavailable',
]);

/** Options for `connectNatsBus`. */
export interface NatsBusOptions {
  /** NATS server URL(s); a string may list several separated by commas. */
  servers: string | string[];
  /** Subject prefix and stream/bucket name prefix (default `mesh`). */
  prefix?: string;
  /** This node's id, used as the NATS connection name. */
  nodeId?: string;
  /** Token authentication. */
  token?: string;
  /** User/password authentication. */
  user?: string;
  pass?: string;
  /** A `.creds` file (JWT + nkey seed), read at connect. */
  credsFile?: string;
  /** TLS: CA to trust and an optional client certificate (PEM file paths). */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** Replicas of the log stream and KV buckets (default 1; 3 for a 3-node cluster). */
  replicas?: number;
  /** Timeout of JetStream calls and default timeout of `requestAgent`, in ms (default 5000). */
  requestTimeoutMs?: number;
  /** Wait between reconnect attempts, in ms (default 500, plus up to 250 of jitter). */
  reconnectTimeWaitMs?: number;
  /** pino-compatible logger (default: silent). */
  logger?: NatsBusLogger;
}

function serverList(servers: string | string[]): string[] {
  const list = (Array.isArray(servers) ? servers : [servers]).flatMap((s) => s.split(','));
  return list.map((s) => s.trim()).filter((s) => s.length > 0);
}

function checkTokens(what: string, value: string, wildcards: boolean): void {
  const tokens = value.split('.');
  const ok = tokens.every(
    (t, i) => TOKEN.test(t) || (wildcards && (t === '*' || (t === '>' && i === tokens.length - 1))),
  );
  if (!ok) throw new MeshError('protocol', `invalid ${what} ${JSON.stringify(value)}`);
}

interface WireError {
  name?: string;
  message?: string;
  code?: unknown;
  data?: unknown;
}

function encodeError(err: unknown): Uint8Array {
  const e = err instanceof Error ? err : new Error(String(err));
  const wire: WireError = { name: e.name, message: e.message };
  if (e instanceof RpcError) {
    wire.code = e.code;
    wire.data = e.data;
  } else if (e instanceof MeshError) {
    wire.code = e.code;
  }
  return new TextEncoder().encode(JSON.stringify(wire));
}

function decodeError(data: Uint8Array): Error {
  let wire: WireError = {};
  try {
    wire = JSON.parse(new TextDecoder().decode(data)) as WireError;
  } catch {
    // Not ours: report it as an opaque agent error.
  }
  const message = typeof wire.message === 'string' ? wire.message : 'agent handler failed';
  const data_ = wire.data as { reason?: unknown } | undefined;
  if (typeof wire.code === 'number' && typeof data_?.reason === 'string') {
    return new RpcError(wire.code, message, data_ as { reason: string });
  }
  if (typeof wire.code === 'string' && MESH_ERROR_CODES.has(wire.code)) {
    return new MeshError(wire.code as MeshErrorCode, message);
  }
  const error = new Error(message);
  if (typeof wire.name === 'string') error.name = wire.name;
  return error;
}

/**
 * The Bus over NATS: logs on a JetStream stream (contiguous offsets by compare-and-set on the subject),
 * KV on JetStream KV buckets, agent requests and topics on core NATS. See docs/protocol.md (NATS layout).
 * Writes reject at once with `BusUnavailableError` while NATS is unreachable; the connection
 * reconnects by itself for as long as the bus is open.
 */
export class NatsBus implements Bus {
  readonly kind = 'nats';
  readonly #nc: NatsConnection;
  readonly #ctx: NatsContext;
  readonly #link: Link;
  readonly #logs: NatsLogs;
  readonly #log: NatsBusLogger;
  readonly #prefix: string;
  readonly #buckets = new Map<string, Promise<NatsKvBucket>>();
  readonly #statusQueues = new Set<AsyncQueue<BusStatus>>();
  readonly #serving = new Set<AbortController>();
  #closing: Promise<void> | undefined;

  private constructor(nc: NatsConnection, ctx: NatsContext) {
    this.#nc = nc;
    this.#ctx = ctx;
    this.#link = ctx.link;
    this.#log = ctx.logger;
    this.#prefix = ctx.prefix;
    this.#logs = new NatsLogs(ctx);
  }

  /** Connects, creates or updates the log stream, and starts watching the connection. */
  static async connect(options: NatsBusOptions): Promise<NatsBus> {
    const prefix = options.prefix ?? 'mesh';
    checkTokens('prefix', prefix, false);
    const logger = options.logger ?? silentLogger;
    if (!installNatsRequestFix()) {
      logger.debug({}, 'nats.js request fix not installed (the library changed); requests run unpatched');
    }
    const requestTimeoutMs = options.requestTimeoutMs ?? 5000;
    const replicas = options.replicas ?? 1;
    let authenticator: Authenticator | undefined;
    if (options.credsFile)
      authenticator = credsAuthenticator(new Uint8Array(await readFile(options.credsFile)));
    const connectOptions: NodeConnectionOptions = {
      servers: serverList(options.servers),
      noAsyncTraces: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: options.reconnectTimeWaitMs ?? 500,
      reconnectJitter: 250,
      // Find a silently dead server within ~30 s rather than the default minutes.
      pingInterval: 10_000,
      maxPingOut: 2,
      timeout: requestTimeoutMs,
    };
    if (options.nodeId) connectOptions.name = options.nodeId;
    if (options.token) connectOptions.token = options.token;
    if (options.user) connectOptions.user = options.user;
    if (options.pass) connectOptions.pass = options.pass;
    if (authenticator) connectOptions.authenticator = authenticator;
    if (options.tls) {
      const tls: NonNullable<NodeConnectionOptions['tls']> = {};
      if (options.tls.caFile) tls.caFile = options.tls.caFile;
      if (options.tls.certFile) tls.certFile = options.tls.certFile;
      if (options.tls.keyFile) tls.keyFile = options.tls.keyFile;
      connectOptions.tls = tls;
    }
    const nc = await connect(connectOptions).catch((err: unknown) => {
      throw new MeshError('bus_unavailable', `cannot connect to NATS at ${serverList(options.servers)}`, {
        cause: err,
      });
    });
    try {
      corkNatsWrites(nc);
      const link = new Link();
      const jsm = await settle(link, logger, requestTimeoutMs, () =>
        jetstreamManager(nc, { timeout: requestTimeoutMs }),
      );
      const js = jetstream(nc, { timeout: requestTimeoutMs });
      const ctx: NatsContext = { nc, js, jsm, prefix, replicas, requestTimeoutMs, logger, link };
      const bus = new NatsBus(nc, ctx);
      bus.#watchStatus();
      await settle(link, logger, requestTimeoutMs, () => bus.#logs.ensureStream());
      logger.info(
        { server: nc.getServer(), prefix, stream: bus.#logs.stream, replicas },
        'NATS bus connected',
      );
      return bus;
    } catch (err) {
      await nc.close().catch(() => {});
      throw err;
    }
  }

  get connected(): boolean {
    return this.#link.connected;
  }

  /** Whether the connection's writes are corked per event-loop turn (see natsCork.ts). */
  get writesCorked(): boolean {
    return natsWritesCorked(this.#nc);
  }

  /** The JetStream stream holding the logs. */
  get logStream(): string {
    return this.#logs.stream;
  }

  #emit(status: BusStatus): void {
    for (const q of this.#statusQueues) q.push(status);
  }

  #watchStatus(): void {
    void (async () => {
      for await (const s of this.#nc.status()) this.#onStatus(s);
      for (const q of this.#statusQueues) q.end();
    })();
  }

  #onStatus(s: Status): void {
    switch (s.type) {
      case 'disconnect':
        this.#link.down();
        this.#log.warn({ server: s.server }, 'NATS disconnected; writes fail until it reconnects');
        this.#emit({ type: 'disconnected' });
        return;
      case 'reconnect':
        // A reconnect dials a new transport: cork its writes too.
        corkNatsWrites(this.#nc);
        this.#link.up();
        this.#log.info({ server: s.server }, 'NATS reconnected');
        this.#emit({ type: 'reconnected' });
        // The stream may have been lost with the server: recreate it (and learn the new epoch).
        this.#logs.ensureStream().catch((err: unknown) => {
          this.#log.warn({ err }, 'could not check the log stream after reconnecting');
        });
        return;
      case 'error':
        this.#log.error({ err: s.error }, 'NATS error');
        this.#emit({ type: 'error', error: s.error });
        return;
      case 'ldm':
        this.#log.warn({ server: s.server }, 'NATS server entering lame duck mode');
        return;
      case 'staleConnection':
      case 'slowConsumer':
      case 'forceReconnect':
        this.#log.warn({ status: s.type }, 'NATS connection trouble');
        return;
      case 'close':
        this.#link.close();
        return;
      case 'reconnecting':
      case 'update':
      case 'ping':
        return;
      default: {
        // Exhaustive at compile time; a status type added by a newer nats.js is only logged.
        const unknown: never = s;
        this.#log.debug({ status: unknown }, 'NATS status');
      }
    }
  }

  status(): AsyncIterable<BusStatus> {
    const q: AsyncQueue<BusStatus> = new AsyncQueue(() => this.#statusQueues.delete(q));
    if (this.#closing || this.#nc.isClosed()) {
      q.end();
      return q;
    }
    q.push(this.connected ? { type: 'connected' } : { type: 'disconnected' });
    this.#statusQueues.add(q);
    return q;
  }

  append(log: string, data: BusData, options?: AppendOptions): Promise<number> {
    return this.#logs.append(log, data, options);
  }

  info(log: string): Promise<LogInfo> {
    return this.#logs.info(log);
  }

  read(log: string, fromOffset: number, limit: number): Promise<LogEntry[]> {
    return this.#logs.read(log, fromOffset, limit);
  }

  follow(log: string, fromOffset: number, options?: FollowOptions): LogFollower {
    if (this.#closing) throw new MeshError('closed', 'bus is closed');
    return this.#logs.follow(log, fromOffset, options);
  }

  deleteLog(log: string): Promise<void> {
    return this.#logs.deleteLog(log);
  }

  kv(bucket: string, options: KvOptions = {}): Promise<KvBucket> {
    let p = this.#buckets.get(bucket);
    if (!p) {
      p = openNatsKv(this.#ctx, bucket, options);
      this.#buckets.set(bucket, p);
      p.catch(() => this.#buckets.delete(bucket));
    }
    return p;
  }

  async serveAgent(agentId: string, handler: AgentRequestHandler): Promise<Registration> {
    checkTokens('agent id', agentId, false);
    if (this.#closing) throw new MeshError('closed', 'bus is closed');
    const subject = `${this.#prefix}.agent.${agentId}.rpc`;
    const sub: Subscription = this.#nc.subscribe(subject, {
      queue: 'agents',
      callback: (err, msg) => {
        if (err) {
          this.#log.error({ err, agentId }, 'agent subscription failed');
          return;
        }
        void this.#answer(agentId, msg, handler);
      },
    });
    return this.#registered(sub);
  }

  /** Waits until the server has seen our subscriptions, so messages sent after this reach them. */
  /** Resolves once the server has `sub`; closing it unsubscribes and flushes. */
  async #registered(sub: Subscription): Promise<Registration> {
    await this.#flush();
    return {
      close: async () => {
        if (sub.isClosed()) return;
        sub.unsubscribe();
        await this.#flush();
      },
    };
  }

  async #flush(): Promise<void> {
    if (this.#link.connected) await this.#link.run(() => this.#nc.flush()).catch(() => {});
  }

  async #answer(agentId: string, msg: Msg, handler: AgentRequestHandler): Promise<void> {
    if (!msg.reply) return;
    const timeoutMs = Number(msg.headers?.get(TIMEOUT_HEADER)) || this.#ctx.requestTimeoutMs;
    const ac = new AbortController();
    const timer = setTimeout(
      () => ac.abort(new MeshError('timeout', `request to ${agentId} timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    this.#serving.add(ac);
    try {
      const reply = await handler(msg.data, ac.signal);
      if (!ac.signal.aborted) msg.respond(reply);
    } catch (err) {
      const h = headers();
      h.set(ERROR_HEADER, '1');
      try {
        msg.respond(encodeError(err), { headers: h });
      } catch (respondErr) {
        this.#log.warn({ err: respondErr, agentId }, 'could not send an error reply');
      }
    } finally {
      clearTimeout(timer);
      this.#serving.delete(ac);
    }
  }

  async requestAgent(agentId: string, data: Uint8Array, options: RequestOptions = {}): Promise<Uint8Array> {
    checkTokens('agent id', agentId, false);
    const { signal } = options;
    if (signal?.aborted)
      throw new MeshError('aborted', `request to ${agentId} was aborted`, { cause: signal.reason });
    const timeoutMs = options.timeoutMs ?? this.#ctx.requestTimeoutMs;
    const h = headers();
    h.set(TIMEOUT_HEADER, String(timeoutMs));
    const subject = `${this.#prefix}.agent.${agentId}.rpc`;
    const request = this.#link.run(async () => {
      try {
        return await this.#nc.request(subject, data, { timeout: timeoutMs, headers: h });
      } catch (err) {
        if (err instanceof errors.RequestError && err.isNoResponders()) throw new NoRespondersError(agentId);
        if (err instanceof errors.TimeoutError) {
          throw new MeshError('timeout', `request to ${agentId} timed out after ${timeoutMs} ms`, {
            cause: err,
          });
        }
        throw toBusError(err);
      }
    });
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () =>
        reject(new MeshError('aborted', `request to ${agentId} was aborted`, { cause: signal?.reason }));
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const reply = await (signal ? Promise.race([request, aborted]) : request);
      if (reply.headers?.get(ERROR_HEADER)) throw decodeError(reply.data);
      return reply.data;
    } finally {
      if (onAbort) signal?.removeEventListener('abort', onAbort);
      request.catch(() => {});
    }
  }

  async publish(topic: string, data: Uint8Array): Promise<void> {
    checkTokens('topic', topic, false);
    this.#link.check();
    this.#nc.publish(`${this.#prefix}.topic.${topic}`, data);
  }

  async subscribe(pattern: string, handler: (message: BusMessage) => void): Promise<Registration> {
    checkTokens('topic pattern', pattern, true);
    if (this.#closing) throw new MeshError('closed', 'bus is closed');
    const strip = this.#prefix.length + '.topic.'.length;
    const sub = this.#nc.subscribe(`${this.#prefix}.topic.${pattern}`, {
      callback: (err, msg) => {
        if (err) {
          this.#log.error({ err, pattern }, 'topic subscription failed');
          return;
        }
        try {
          handler({ topic: msg.subject.slice(strip), data: msg.data });
        } catch (handlerErr) {
          this.#log.error({ err: handlerErr, pattern }, 'topic handler threw');
        }
      },
    });
    return this.#registered(sub);
  }

  /** Resolves when the connection is closed: to the error that closed it, if any. Never rejects. */
  closed(): Promise<void | Error> {
    return this.#nc.closed();
  }

  /** Ends followers, watchers and handlers, then drains the connection. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#doClose();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #doClose(): Promise<void> {
    const wasConnected = this.#link.connected;
    this.#link.close();
    this.#logs.close();
    const buckets = await Promise.allSettled(this.#buckets.values());
    for (const b of buckets) if (b.status === 'fulfilled') b.value.close();
    for (const ac of this.#serving) ac.abort(new MeshError('closed', 'bus is closed'));
    for (const q of this.#statusQueues) q.end();
    this.#statusQueues.clear();
    if (this.#nc.isClosed()) return;
    if (wasConnected) {
      // Drain delivers what is in flight; bound it so that a server dying meanwhile cannot hang close().
      const drained = this.#nc.drain().then(
        () => true,
        () => false,
      );
      const timeout = new Promise<boolean>((r) =>
        setTimeout(() => r(false), this.#ctx.requestTimeoutMs).unref(),
      );
      if (await Promise.race([drained, timeout])) return;
    }
    await this.#nc.close().catch(() => {});
  }
}

/** Connects a NATS bus; see `NatsBusOptions` for defaults. */
export function connectNatsBus(options: NatsBusOptions): Promise<NatsBus> {
  return NatsBus.connect(options);
}
