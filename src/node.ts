import { readFile } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import {
  AGENT_NOTIFIABLE_METHODS,
  type AgentCard,
  CloseCode,
  type Codec,
  type Connector,
  DEFAULT_MAX_MESSAGE_BYTES,
  type FrameConnection,
  type HandlerContext,
  jsonCodec,
  MeshError,
  msgpackCodec,
  PROTOCOL_VERSION,
  RpcError,
} from '@a2a-mesh/protocol';
import type { Logger } from 'pino';
import { A2AGateway, type A2AGatewayDeps, type A2AGatewayOptions } from './a2a/gateway.js';
import { type AuditOptions, createAuditLog } from './audit/auditLog.js';
import { type AuthConfig, type Authenticator, createAuthenticator } from './auth/authenticator.js';
import { isLoopbackHost } from './auth/bearer.js';
import { SecurityGate, type TransportAuth } from './auth/gate.js';
import type { Bus } from './bus/bus.js';
import { EmbeddedBus } from './bus/embedded.js';
import { type QuotaOptions, quotaDefaults } from './limits/quotas.js';
import { RateLimiter, type RateLimitOptions, rateLimitDefaults } from './limits/rateLimiter.js';
import { createLogger } from './log.js';
import { NodeMetrics } from './ops/metrics.js';
import { AccessPolicy, type PolicyOptions } from './policy/accessPolicy.js';
import { Dispatcher } from './rpc/dispatcher.js';
import { CollaborationService } from './services/collaboration.js';
import { ConversationService } from './services/conversation.js';
import { DirectoryService } from './services/directory.js';
import { TopicService } from './services/topics.js';
import { AgentRegistry } from './sessions/agentRegistry.js';
import { Session, type SessionHost } from './sessions/session.js';
import { Http2Transport } from './transport/http2.js';
import { HttpRouter, sendJson } from './transport/httpRouter.js';
import { listenMesh, type MeshListener } from './transport/listener.js';
import { createMemoryPair } from './transport/memory.js';
import { WebSocketTransport } from './transport/websocket.js';
import { newId } from './util/ids.js';

/** Options of `createMeshNode`. Sizes in bytes, times in milliseconds. */
export interface MeshNodeOptions {
  /** Interface to listen on (default `127.0.0.1`). */
  host?: string;
  /** TCP port (default 7420; 0 picks a free one). */
  port?: number;
  /** Listen on a port at all (default true); false serves in-memory connections only. */
  listen?: boolean;
  /** This node's id (default: random). */
  nodeId?: string;
  /** The bus shared with other nodes (default: a new in-process EmbeddedBus, closed with the node). */
  bus?: Bus;
  /** Root logger (default: pino, pretty on a TTY, level from `LOG_LEVEL`). */
  logger?: Logger;
  /** Largest inbound frame (default 1 MiB); larger closes the socket with 1009. */
  maxMessageBytes?: number;
  /** Largest send backlog per connection (default 8 MiB); more closes it with 4008. */
  maxQueueBytes?: number;
  /** WebSocket ping interval (default 25000). */
  heartbeatMs?: number;
  /** Timeout of node-to-agent requests (default 30000). */
  requestTimeoutMs?: number;
  /** Snapshot a collaboration every N events (default 1000). */
  snapshotEvery?: number;
  /** Also snapshot when this long passed since the last snapshot and events arrived (ms, default 30000). */
  snapshotIntervalMs?: number;
  /** Largest collaboration state as JSON (default 1 MiB). */
  maxStateBytes?: number;
  /** Topic subscriptions per session (default 100). */
  maxSubscriptions?: number;
  /** Presence entry TTL (default 15000); a crashed node's agents go offline within it. */
  presenceTtlMs?: number;
  /** How long `drain()` waits for agents to go before closing them (default 5000). */
  drainTimeoutMs?: number;
  /** Serve TLS (ALPN `h2` + `http/1.1`, WebSocket over HTTP/1.1) instead of cleartext HTTP/1.1 + h2c. */
  tls?: MeshNodeTls;
  /** A2A gateway settings: public URL in cards, webhook allow-list and retries. */
  a2a?: A2AGatewayOptions;
  /**
   * How agents prove who they are (default `{ mode: 'none' }`: agents name themselves, for development).
   * With `apikey` or `jwt` the agent id comes from the credential.
   */
  auth?: AuthConfig | Authenticator;
  /** Allow auth `none` on a non-loopback host (default false: the node refuses to start there). */
  insecureNoAuth?: boolean;
  /** Rate limits (token buckets). Default: on with defaults when auth is required, off with `none`. */
  rateLimits?: Partial<RateLimitOptions> | boolean;
  /** Sessions per agent per node (default 64), members per collaboration (default 1000). */
  quotas?: Partial<QuotaOptions>;
  /** Access rules that come from configuration (topic permissions when a credential has no claim). */
  policy?: PolicyOptions;
  /** The audit trail (default: the node's logger with `component: "audit"`); false: none. */
  audit?: AuditOptions | false;
  /** Sessions must complete `mesh/hello` within this, when auth is required (default 10000; 0: no limit). */
  helloTimeoutMs?: number;
}

/** PEM files for a node's TLS port. */
export interface MeshNodeTls {
  /** Certificate chain (PEM). */
  certFile: string;
  /** Private key (PEM). */
  keyFile: string;
  /** CA certificates (PEM): when given, clients must present a certificate they signed (mutual TLS). */
  caFile?: string;
}

/** Counts for health and metrics. */
export interface MeshNodeStats {
  sessions: number;
  agents: number;
  collaborations: number;
  duplicatesDropped: number;
  gapsRecovered: number;
  /** Connections closed with 4008 because their send queue overflowed. */
  slowConsumerCloses: number;
}

/** A running mesh node. */
export interface MeshNode extends AsyncDisposable {
  readonly nodeId: string;
  /** `ws://host:port/mesh` (`wss://` with TLS; empty when not listening). */
  readonly url: string;
  /** `http://host:port` (`https://` with TLS; empty when not listening): base of `/mesh/rpc` and `/mesh/stream`. */
  readonly httpUrl: string;
  /** The TCP port (0 when not listening). */
  readonly port: number;
  readonly bus: Bus;
  readonly logger: Logger;
  /** A Connector for an agent in this process (in-memory pair; `json` or `msgpack` framing). */
  connector(codec?: 'json' | 'msgpack'): Connector;
  stats(): MeshNodeStats;
  /** Stops at once: every connection is closed (1001), the bus closed if the node owns it. */
  close(): Promise<void>;
  /** Graceful stop: refuses new connections, closes agents with 4500 so they reconnect elsewhere, then closes. */
  drain(): Promise<void>;
  /** Resolves when the node has closed: void, or the error that closed it. Never rejects. */
  closed(): Promise<void | Error>;
}

/** Starts a mesh node: a WebSocket endpoint at `/mesh` over the given bus (in-process by default). */
export async function createMeshNode(options: MeshNodeOptions = {}): Promise<MeshNode> {
  const node = new MeshNodeImpl(options);
  await node.start();
  return node;
}

class MeshNodeImpl implements MeshNode, SessionHost {
  readonly nodeId: string;
  readonly bus: Bus;
  readonly logger: Logger;
  readonly #ownsBus: boolean;
  readonly #opts: Required<
    Omit<
      MeshNodeOptions,
      | 'bus'
      | 'logger'
      | 'nodeId'
      | 'tls'
      | 'a2a'
      | 'auth'
      | 'insecureNoAuth'
      | 'rateLimits'
      | 'quotas'
      | 'policy'
      | 'audit'
      | 'helloTimeoutMs'
    >
  >;
  readonly #security: MeshNodeOptions;
  #gate!: SecurityGate;
  #limiter: RateLimiter | undefined;
  readonly #helloing = new WeakSet<Session>();
  readonly #a2aOptions: A2AGatewayOptions;
  #a2a: A2AGateway | undefined;
  readonly #tls: MeshNodeTls | undefined;
  readonly #dispatcher = new Dispatcher({ admit: (s, m, ctx) => this.#gate.admit(s, m, ctx) });
  readonly #sessions = new Map<string, Session>();
  #ws: WebSocketTransport | undefined;
  #http2: Http2Transport | undefined;
  #listener: MeshListener | undefined;
  #agents!: AgentRegistry;
  #collab!: CollaborationService;
  #directory!: DirectoryService;
  #topics!: TopicService;
  #port = 0;
  #metrics!: NodeMetrics;
  #slowConsumerCloses = 0;
  #draining = false;
  #closing: Promise<void> | undefined;
  #closedResult: Promise<void | Error>;
  #resolveClosed!: (v: void | Error) => void;

  constructor(options: MeshNodeOptions) {
    if (options.nodeId !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(options.nodeId)) {
      throw new MeshError(
        'bad_config',
        `node id ${JSON.stringify(options.nodeId)}: use 1-64 of A-Z a-z 0-9 _ -`,
      );
    }
    this.nodeId = options.nodeId ?? `node-${newId(8)}`;
    this.logger = (options.logger ?? createLogger()).child({ nodeId: this.nodeId });
    this.#ownsBus = options.bus === undefined;
    this.bus = options.bus ?? new EmbeddedBus();
    this.#opts = {
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 7420,
      listen: options.listen ?? true,
      maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      maxQueueBytes: options.maxQueueBytes ?? 8 * 1024 * 1024,
      heartbeatMs: options.heartbeatMs ?? 25_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
      snapshotEvery: options.snapshotEvery ?? 1000,
      snapshotIntervalMs: options.snapshotIntervalMs ?? 30_000,
      maxStateBytes: options.maxStateBytes ?? 1024 * 1024,
      maxSubscriptions: options.maxSubscriptions ?? 100,
      presenceTtlMs: options.presenceTtlMs ?? 15_000,
      drainTimeoutMs: options.drainTimeoutMs ?? 5000,
    };
    this.#tls = options.tls;
    this.#a2aOptions = options.a2a ?? {};
    this.#security = options;
    this.#checkExposure(options);
    this.#closedResult = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  get url(): string {
    return this.#port
      ? `${this.#tls ? 'wss' : 'ws'}://${hostForUrl(this.#opts.host)}:${this.#port}/mesh`
      : '';
  }

  get httpUrl(): string {
    return this.#port ? `${this.#tls ? 'https' : 'http'}://${hostForUrl(this.#opts.host)}:${this.#port}` : '';
  }

  get port(): number {
    return this.#port;
  }

  /** Refuses auth `none` on a non-loopback interface unless `insecureNoAuth` says so (then warns loudly). */
  #checkExposure(options: MeshNodeOptions): void {
    if (!this.#opts.listen || isLoopbackHost(this.#opts.host)) return;
    const auth = options.auth;
    const required = auth === undefined ? false : 'required' in auth ? auth.required : auth.mode !== 'none';
    if (required) return;
    if (!options.insecureNoAuth) {
      throw new MeshError(
        'bad_config',
        `refusing to listen on ${this.#opts.host} without authentication: set auth (apikey or jwt), ` +
          'listen on 127.0.0.1, or pass insecureNoAuth (--insecure-no-auth) to accept the risk',
      );
    }
    this.logger.warn(
      { host: this.#opts.host },
      'INSECURE: listening on a non-loopback interface WITHOUT AUTHENTICATION; any process that reaches ' +
        'this port can act as any agent. Use --auth apikey|jwt outside a trusted network.',
    );
  }

  async #startSecurity(): Promise<AccessPolicy> {
    const o = this.#security;
    const authenticator =
      o.auth !== undefined && 'authenticate' in o.auth ? o.auth : await createAuthenticator(o.auth);
    const audit = createAuditLog(o.audit, this.logger, this.nodeId);
    const limitsOn = o.rateLimits === undefined ? authenticator.required : o.rateLimits !== false;
    if (limitsOn) {
      const given = typeof o.rateLimits === 'object' ? o.rateLimits : {};
      this.#limiter = new RateLimiter(rateLimitDefaults(this.#opts.maxMessageBytes, given));
    }
    const jwtSkew =
      o.auth !== undefined && 'mode' in o.auth && o.auth.mode === 'jwt' ? o.auth.clockSkewMs : undefined;
    this.#gate = new SecurityGate({
      authenticator,
      audit,
      limiter: this.#limiter,
      quotas: quotaDefaults(o.quotas),
      helloTimeoutMs: o.helloTimeoutMs ?? 10_000,
      expiryGraceMs: jwtSkew ?? 30_000,
      logger: this.logger,
    });
    if (authenticator.required)
      this.logger.info({ auth: authenticator.method, rateLimits: limitsOn }, 'authentication on');
    return new AccessPolicy(o.policy ?? {}, audit);
  }

  /** The gateway's HTTP authentication, caller rules and card declaration: the same authenticator and policy. */
  #a2aSecurity(policy: AccessPolicy): Pick<A2AGatewayDeps, 'authenticate' | 'authorizeCall' | 'security'> {
    const gate = this.#gate;
    const method = gate.authenticator.method;
    const authorizeCall: A2AGatewayDeps['authorizeCall'] = (requester, agentId, card) => {
      const principal = { method, agentId: requester.agentId, claims: requester.claims ?? {} };
      policy.checkCall(principal, requester.agentId ?? requester.id, agentId, card, 'SendMessage');
    };
    if (!gate.authenticator.required) return { authorizeCall };
    return {
      authorizeCall,
      authenticate: async (req) => {
        const auth = await gate.checkHttp(req.headers.authorization, req.socket?.remoteAddress ?? 'unknown');
        if (!auth.ok) return auth;
        const agentId = auth.principal?.agentId;
        const claims = auth.principal?.claims ?? {};
        return { ok: true, requester: { id: `agent:${agentId}`, ...(agentId ? { agentId } : {}), claims } };
      },
      security: {
        bearerFormat: method === 'jwt' ? 'JWT' : 'API key',
        description: 'Authorization: Bearer <credential>; the mesh agent id is taken from the credential',
      },
    };
  }

  async start(): Promise<void> {
    const log = this.logger;
    const policy = await this.#startSecurity();
    this.#agents = new AgentRegistry(this.bus, log);
    this.#metrics = new NodeMetrics(this.nodeId, {
      connections: () => this.#sessions.size,
      agents: () => this.#agents.agentCount,
      collaborations: () => this.#collab.replicaCount,
      eventsSent: () => this.#collab.counters.eventsSent,
      slowConsumerCloses: () => this.#slowConsumerCloses,
    });
    const metrics = this.#metrics;
    this.#collab = await CollaborationService.create(
      this.bus,
      {
        snapshotEvery: this.#opts.snapshotEvery,
        snapshotIntervalMs: this.#opts.snapshotIntervalMs,
        ringSize: 4096,
        maxWriteAttempts: 64,
        maxStateBytes: this.#opts.maxStateBytes,
        idleReplicaMs: 30_000,
        nodeId: this.nodeId,
        presenceTtlMs: this.#opts.presenceTtlMs,
        maxMembers: quotaDefaults(this.#security.quotas).maxMembersPerCollaboration,
      },
      log,
      { policy, audit: this.#gate.audit },
      (ev) => {
        metrics.eventsIn.inc();
        metrics.fanoutLatency.observe(Math.max(0, Date.now() - ev.event.at) / 1000);
      },
    );
    void this.#watchBus();
    this.#directory = await DirectoryService.create(
      this.bus,
      this.nodeId,
      { presenceTtlMs: this.#opts.presenceTtlMs },
      log,
    );
    this.#topics = new TopicService(this.bus, this.#opts.maxSubscriptions, log, policy);
    const conversations = await ConversationService.create(
      this.bus,
      this.#directory,
      this.#agents,
      this.#opts.requestTimeoutMs,
      log,
      policy,
    );

    const d = this.#dispatcher;
    d.register('mesh/hello', (p, ctx) => this.#hello(ctx.session, p));
    d.register('mesh/ping', () => ({ at: Date.now() }));
    this.#collab.register(d);
    conversations.register(d);
    this.#topics.register(d);
    this.#directory.register(d);
    this.#a2a = await A2AGateway.create(
      {
        bus: this.bus,
        agents: this.#agents,
        directory: this.#directory,
        nodeId: this.nodeId,
        logger: log,
        requestTimeoutMs: this.#opts.requestTimeoutMs,
        maxBodyBytes: this.#opts.maxMessageBytes,
        baseUrl: () => this.httpUrl,
        ...this.#a2aSecurity(policy),
      },
      this.#a2aOptions,
    );
    this.#a2a.register(d);

    if (!this.#opts.listen) return;
    const router = this.#routes();
    const server = createServer((req, res) => router.handle(req, res));
    // What both transports share: limits, heartbeat, slow-consumer counting, admission and credentials.
    const common = {
      maxMessageBytes: this.#opts.maxMessageBytes,
      maxQueueBytes: this.#opts.maxQueueBytes,
      heartbeatMs: this.#opts.heartbeatMs,
      closeTimeoutMs: 2000,
      logger: log,
      onSlowConsumer: () => {
        this.#slowConsumerCloses++;
      },
      admitConnection: (ip: string) => this.#gate.admitConnection(ip),
      checkCredential: (header: string | undefined) => this.#gate.checkHeader(header),
    };
    this.#ws = new WebSocketTransport(server, {
      ...common,
      path: '/mesh',
      onConnection: (conn, info) => this.#accept(conn, info.remoteAddress, 'websocket', info.auth),
    });
    this.#http2 = new Http2Transport({
      ...common,
      onConnection: (conn, info) => this.#accept(conn, info.remoteAddress, 'http2', info.auth),
    });
    this.#http2.register(router);
    const tls = this.#tls;
    this.#listener = await listenMesh({
      host: this.#opts.host,
      port: this.#opts.port,
      http1: server,
      onHttp2Stream: (stream, headers) => router.handleStream(stream, headers),
      onHttp2Request: (req, res) => router.handle(req, res),
      logger: log,
      ...(tls && {
        tls: {
          cert: await readFile(tls.certFile),
          key: await readFile(tls.keyFile),
          ...(tls.caFile === undefined ? {} : { ca: await readFile(tls.caFile) }),
        },
      }),
    });
    this.#port = this.#listener.port;
    log.info({ url: this.url, bus: this.bus.kind }, 'mesh node listening');
  }

  async #watchBus(): Promise<void> {
    for await (const s of this.bus.status()) {
      if (s.type === 'reconnected') this.#metrics.busReconnects.inc();
      if (s.type === 'disconnected')
        this.logger.warn('bus disconnected; writes fail fast until it reconnects');
      if (s.type === 'reconnected') this.logger.info('bus reconnected');
    }
  }

  /** Ready when not draining, the bus is connected and its log store answers. */
  async ready(): Promise<{ ready: boolean; reason?: string }> {
    if (this.#draining || this.#closing) return { ready: false, reason: 'draining' };
    if (!this.bus.connected) return { ready: false, reason: 'bus disconnected' };
    try {
      await withTimeout(this.bus.info('collab.readiness-probe'), 2000);
      return { ready: true };
    } catch (error) {
      return { ready: false, reason: `log store unavailable: ${(error as Error).message}` };
    }
  }

  #routes(): HttpRouter {
    const router = new HttpRouter((error, path) =>
      this.logger.error({ err: error, path }, 'HTTP handler failed'),
    );
    router.add('GET', '/health', (_req, res) =>
      sendJson(res, 200, { status: this.#draining ? 'draining' : 'ok', nodeId: this.nodeId }),
    );
    router.add('GET', '/ready', async (_req, res) => {
      const r = await this.ready();
      sendJson(res, r.ready ? 200 : 503, { ...r, nodeId: this.nodeId, bus: this.bus.kind });
    });
    router.add('GET', '/metrics', async (_req, res) => {
      const text = await this.#metrics.registry.metrics();
      (res as ServerResponse).writeHead(200, { 'content-type': this.#metrics.registry.contentType });
      res.end(text);
    });
    this.#a2a?.routes(router);
    return router;
  }

  #accept(
    conn: FrameConnection,
    remoteAddress: string,
    transport: 'websocket' | 'memory' | 'http2',
    auth: TransportAuth = { type: 'none' },
  ): Session | undefined {
    if (auth.type === 'failed') {
      this.#gate.authFailed(auth.error, transport, remoteAddress);
      conn.close(CloseCode.Unauthenticated, `unauthenticated: ${auth.error.failure}`);
      return undefined;
    }
    if (this.#draining || this.#closing) {
      // Refused outright: no session is created, so none can linger in the session map.
      conn.close(CloseCode.NodeDraining, 'node draining');
      return undefined;
    }
    let session: Session | undefined;
    const metered = this.#gate.meter(conn, remoteAddress, () => {
      if (session) this.#gate.abuse(session);
    });
    session = new Session(
      metered.conn,
      {
        maxMessageBytes: this.#opts.maxMessageBytes,
        requestTimeoutMs: this.#opts.requestTimeoutMs,
        remoteAddress,
        transport,
      },
      this,
      this.logger,
    );
    this.#gate.opened(session, metered.meter, auth.type === 'ok' ? auth.principal : undefined);
    this.#sessions.set(session.id, session);
    return session;
  }

  connector(codec: 'json' | 'msgpack' = 'json'): Connector {
    const c: Codec = codec === 'json' ? jsonCodec : msgpackCodec;
    return async () => {
      if (this.#closing || this.#draining)
        throw new RpcError(-32067, 'node is closing', { reason: 'unavailable' });
      const [agentEnd, nodeEnd] = createMemoryPair(c, this.#opts.maxQueueBytes);
      this.#accept(nodeEnd, 'memory', 'memory');
      return agentEnd;
    };
  }

  async dispatch(session: Session, method: string, params: unknown, ctx: HandlerContext): Promise<unknown> {
    const label = this.#dispatcher.has(method) ? method : 'unknown';
    try {
      const result = await this.#dispatcher.dispatch(session, method, params, ctx);
      this.#metrics.rpcCalls.inc({ method: label, outcome: 'ok' });
      return result;
    } catch (error) {
      this.#metrics.rpcCalls.inc({
        method: label,
        outcome: error instanceof RpcError ? error.reason : 'internal_error',
      });
      throw error;
    }
  }

  async #hello(
    session: Session,
    p: {
      agentId?: string | undefined;
      card?: AgentCard | undefined;
      resume?: string | undefined;
      token?: string | undefined;
      notifications?: string[] | undefined;
    },
  ) {
    if (session.agentId !== undefined || this.#helloing.has(session))
      throw RpcError.of('InvalidRequest', 'mesh/hello was already called on this session');
    this.#helloing.add(session);
    let agentId: string;
    try {
      agentId = await this.#gate.hello(
        session,
        p,
        (id) => this.#agents.sessionsOf(id).filter((s) => !s.closed && s.id !== p.resume).length,
      );
    } finally {
      this.#helloing.delete(session);
    }
    if (session.closed) throw RpcError.of('Unavailable', 'session closed');
    let resumed = false;
    if (p.resume) {
      const old = this.#sessions.get(p.resume);
      if (old && old !== session && old.agentId === agentId) {
        old.close(CloseCode.Normal, 'replaced by a resumed session');
        resumed = true;
      }
    }
    session.agentId = agentId;
    if (p.notifications) {
      session.takesAsNotification = new Set(
        p.notifications.filter((m) => AGENT_NOTIFIABLE_METHODS.includes(m)),
      );
    }
    try {
      await this.#agents.add(session);
      await this.#directory.online(agentId, p.card);
    } catch (error) {
      this.#agents.remove(session);
      session.agentId = undefined;
      throw error;
    }
    this.#gate.bound(session);
    session.log.info({ agentId, transport: session.options.transport, resumed }, 'agent connected');
    return {
      agentId,
      nodeId: this.nodeId,
      sessionId: session.id,
      protocolVersion: PROTOCOL_VERSION,
      heartbeatMs: this.#opts.heartbeatMs,
      limits: {
        maxMessageBytes: this.#opts.maxMessageBytes,
        maxQueueBytes: this.#opts.maxQueueBytes,
        maxSubscriptions: this.#opts.maxSubscriptions,
        maxStateBytes: this.#opts.maxStateBytes,
      },
      resumed,
    };
  }

  sessionClosed(session: Session, code: number, reason: string): void {
    this.#sessions.delete(session.id);
    this.#gate.closed(session);
    this.#collab.sessionClosed(session);
    void this.#topics.sessionClosed(session);
    const agentId = session.agentId;
    if (agentId !== undefined) {
      session.log.info({ agentId, code, reason }, 'agent disconnected');
      this.#agents.remove(session);
      this.#directory.offline(agentId);
    }
  }

  stats(): MeshNodeStats {
    return {
      sessions: this.#sessions.size,
      agents: this.#agents.agentCount,
      collaborations: this.#collab.replicaCount,
      duplicatesDropped: this.#collab.counters.duplicatesDropped,
      gapsRecovered: this.#collab.counters.gapsRecovered,
      slowConsumerCloses: this.#slowConsumerCloses,
    };
  }

  drain(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#draining = true;
    this.logger.info({ sessions: this.#sessions.size }, 'draining');
    this.#closing = this.#shutdown(true);
    return this.#closing;
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown(false);
    return this.#closing;
  }

  closed(): Promise<void | Error> {
    return this.#closedResult;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #shutdown(graceful: boolean): Promise<void> {
    let failure: Error | undefined;
    try {
      const stopListening = this.#listener ? this.#listener.close() : Promise.resolve();
      if (!graceful) this.#collab.beginShutdown();
      const code = graceful ? CloseCode.NodeDraining : CloseCode.GoingAway;
      for (const s of [...this.#sessions.values()])
        s.close(code, graceful ? 'node draining' : 'node closing');
      if (graceful) {
        await Promise.race([this.#collab.settle(), sleep(this.#opts.drainTimeoutMs)]);
      }
      this.#a2a?.close();
      await this.#collab.close();
      this.#ws?.close();
      this.#http2?.close();
      this.#listener?.closeAllConnections();
      await stopListening;
      await this.#topics.close();
      await this.#directory.close();
      if (this.#ownsBus) await this.bus.close();
      this.#limiter?.close();
      this.logger.info('mesh node closed');
    } catch (error) {
      failure = error instanceof Error ? error : new Error(String(error));
      this.logger.error({ err: failure }, 'error while closing');
    }
    this.#resolveClosed(failure);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

function hostForUrl(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}
