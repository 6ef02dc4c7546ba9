import type { ServerResponse } from 'node:http';
import { type AgentEntry, type JsonRpcErrorObject, RpcError } from '@a2a-mesh/protocol';
import type { Logger } from 'pino';
import type { Bus } from '../bus/bus.js';
import type { Dispatcher } from '../rpc/dispatcher.js';
import type { DirectoryService } from '../services/directory.js';
import type { AgentRegistry } from '../sessions/agentRegistry.js';
import {
  type HttpIn,
  type HttpRequest,
  type HttpResponse,
  type HttpRouter,
  sendJson,
} from '../transport/httpRouter.js';
import { agentCard, type CardSecurity, etagOf, nodeCard } from './cards.js';
import type { A2AVersion } from './errors.js';
import { JsonRpcBinding, parseVersion } from './jsonRpcBinding.js';
import { PushDeliverer, type PushOptions } from './push.js';
import { A2ASessionMethods } from './sessionMethods.js';
import { type Requester, TaskService } from './taskService.js';
import { TaskStore } from './taskStore.js';

/** A2A gateway options (`createMeshNode({ a2a })`). Times in milliseconds. */
export interface A2AGatewayOptions {
  /** Base URL put in agent cards, e.g. `https://mesh.example.com` (default: from each request's Host). */
  publicUrl?: string;
  /** Webhook hosts (names or IP literals) allowed although private or loopback (default none). */
  pushAllowHosts?: readonly string[];
  /** Webhook retry and timeout settings. */
  push?: Partial<Omit<PushOptions, 'allowHosts'>>;
  /** `Cache-Control: max-age` of agent cards, in seconds (default 60). */
  cardMaxAgeSeconds?: number;
  /** How often running turns started on this node are checked for a vanished agent (default 2000). */
  livenessCheckMs?: number;
}

/** What the gateway needs from its node. */
export interface A2AGatewayDeps {
  bus: Bus;
  agents: AgentRegistry;
  directory: DirectoryService;
  nodeId: string;
  logger: Logger;
  /** Timeout of node-to-agent requests. */
  requestTimeoutMs: number;
  /** Largest request body accepted. */
  maxBodyBytes: number;
  /** The node's own HTTP base URL (used when no request tells the host). */
  baseUrl: () => string;
  /**
   * Authenticates a JSON-RPC request (its `Authorization: Bearer` header); absent, every caller is
   * the anonymous `http` requester. A refusal is answered with its status, headers and error as is.
   */
  authenticate?(req: HttpIn): Promise<HttpCaller>;
  /** Throws (Forbidden) when a requester may not send to an agent (its card's `allowedCallers`). */
  authorizeCall?(requester: Requester, agentId: string, card: unknown): void;
  /** The authentication scheme the cards declare (`securitySchemes`), when the node requires one. */
  security?: CardSecurity;
}

/** The outcome of authenticating an HTTP caller. */
export type HttpCaller =
  | { ok: true; requester: Requester }
  | { ok: false; status: number; error: JsonRpcErrorObject; headers: Record<string, string> };

/**
 * Every mesh agent as a standard A2A agent at this node: agent cards, the JSON-RPC binding with SSE
 * streaming (v1.0 and v0.3), tasks on the bus, push notifications, and the same A2A methods for
 * agents over their mesh sessions.
 */
export class A2AGateway {
  readonly tasks: TaskService;
  readonly #mesh: A2ASessionMethods;
  readonly #binding: JsonRpcBinding;
  readonly #pusher: PushDeliverer;
  #closed = false;

  private constructor(
    readonly deps: A2AGatewayDeps,
    readonly options: A2AGatewayOptions,
    store: TaskStore,
  ) {
    const log = deps.logger.child({ component: 'a2a' });
    this.#pusher = new PushDeliverer({ ...options.push, allowHosts: options.pushAllowHosts ?? [] }, log);
    this.tasks = new TaskService(
      store,
      deps.agents,
      deps.directory,
      this.#pusher,
      {
        requestTimeoutMs: deps.requestTimeoutMs,
        livenessCheckMs: options.livenessCheckMs ?? 2000,
        ...(deps.authorizeCall ? { authorizeCall: deps.authorizeCall } : {}),
      },
      log,
    );
    this.#mesh = new A2ASessionMethods(this.tasks, (agentId) => this.#extendedCard(agentId, '1.0'), log);
    this.#binding = new JsonRpcBinding(
      this.tasks,
      (agentId, version) => this.#extendedCard(agentId, version),
      deps.maxBodyBytes,
      log,
    );
  }

  static async create(deps: A2AGatewayDeps, options: A2AGatewayOptions = {}): Promise<A2AGateway> {
    return new A2AGateway(deps, options, await TaskStore.create(deps.bus));
  }

  /** Registers the A2A methods and the task protocol on the node's dispatcher. */
  register(d: Dispatcher): void {
    this.#mesh.register(d);
  }

  /** Adds the gateway's HTTP endpoints. */
  routes(router: HttpRouter): void {
    router.add('GET', '/.well-known/agent-card.json', async (req, res) => {
      const entries = await this.deps.directory.discover({});
      this.#sendCard(req, res, nodeCard(this.deps.nodeId, entries, this.#base(req)));
    });
    router.add('GET', '/agents', async (req, res, _p, url) => {
      const filter: { skill?: string; tag?: string } = {};
      const skill = url.searchParams.get('skill');
      const tag = url.searchParams.get('tag');
      if (skill) filter.skill = skill;
      if (tag) filter.tag = tag;
      const version = cardVersion(req);
      const entries = await this.deps.directory.discover(filter);
      sendJson(res, 200, {
        agents: entries.map((e) => ({
          agentId: e.agentId,
          online: e.online,
          card: agentCard(e, this.#base(req), version, this.deps.security),
        })),
      });
    });
    router.add('GET', '/agents/.well-known/agent-card.json', (_req, res) =>
      sendJson(res, 404, {
        error:
          'no agent named in the path: an agent card is at /agents/{agentId}/.well-known/agent-card.json ' +
          '(give A2A clients the agent URL with a trailing slash: /agents/{agentId}/)',
      }),
    );
    router.add('GET', '/agents/:agentId/.well-known/agent-card.json', async (req, res, params) => {
      const entry = await this.#entry(params.agentId!);
      if (!entry) return sendJson(res, 404, { error: `agent ${params.agentId} is not in the directory` });
      this.#sendCard(req, res, agentCard(entry, this.#base(req), cardVersion(req), this.deps.security));
    });
    router.addStream('POST', '/agents/:agentId/a2a', async (req, res, params, url) => {
      const caller = this.deps.authenticate ? await this.deps.authenticate(req) : undefined;
      if (caller && !caller.ok) {
        const body = { jsonrpc: '2.0', id: null, error: caller.error };
        sendJson(res, caller.status, body, caller.headers);
        return;
      }
      await this.#binding.handle(req, res, params.agentId!, url, caller?.requester);
    });
  }

  async #entry(agentId: string): Promise<AgentEntry | undefined> {
    try {
      return await this.deps.directory.get(agentId);
    } catch (error) {
      if (error instanceof RpcError && error.reason === 'agent_not_found') return undefined;
      throw error;
    }
  }

  /** The extended card when the agent's card declares `capabilities.extendedAgentCard`, else -32004. */
  async #extendedCard(agentId: string, version: A2AVersion): Promise<unknown> {
    const entry = await this.deps.directory.get(agentId);
    const caps = (entry.card as { capabilities?: { extendedAgentCard?: boolean } }).capabilities;
    if (caps?.extendedAgentCard !== true) {
      throw RpcError.of('UnsupportedOperation', `agent ${agentId} has no extended agent card`, { agentId });
    }
    return agentCard(entry, this.options.publicUrl ?? this.deps.baseUrl(), version, this.deps.security);
  }

  #base(req: HttpRequest): string {
    if (this.options.publicUrl) return this.options.publicUrl.replace(/\/+$/, '');
    const host = req.headers[':authority'] ?? req.headers.host;
    if (typeof host !== 'string' || !/^[A-Za-z0-9.:[\]-]+$/.test(host)) return this.deps.baseUrl();
    const tls = (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true;
    return `${tls ? 'https' : 'http'}://${host}`;
  }

  #sendCard(req: HttpRequest, res: HttpResponse, card: unknown): void {
    const body = JSON.stringify(card);
    const etag = etagOf(body);
    const headers = {
      etag,
      'cache-control': `public, max-age=${this.options.cardMaxAgeSeconds ?? 60}`,
      vary: 'A2A-Version',
    };
    const match = req.headers['if-none-match'];
    if (typeof match === 'string' && match.split(',').some((t) => t.trim() === etag || t.trim() === '*')) {
      (res as ServerResponse).writeHead(304, headers);
      res.end();
      return;
    }
    (res as ServerResponse).writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      ...headers,
    });
    res.end(body);
  }

  /** Webhook notifications queued or being sent. */
  get pushInflight(): number {
    return this.#pusher.inflight;
  }

  /** Stops streams, liveness checks and webhook retries. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#mesh.close();
    this.tasks.close();
    this.#pusher.close();
  }
}

function cardVersion(req: HttpRequest): A2AVersion {
  const raw = req.headers['a2a-version'];
  return parseVersion(typeof raw === 'string' ? raw : undefined) === '0.3' ? '0.3' : '1.0';
}
