import { MeshError } from '@a2a-mesh/protocol';
import type { AuthConfig } from '../auth/authenticator.js';
import type { JwtAlgorithm } from '../auth/jwt.js';
import type { Bus } from '../bus/bus.js';
import type { NatsBusOptions } from '../bus/nats.js';
import type { RateLimitOptions } from '../limits/rateLimiter.js';
import { createLogger } from '../log.js';
import { createMeshNode, type MeshNodeOptions } from '../node.js';

/** Options of `a2a-mesh node`, as parsed by the CLI. */
export interface NodeCommandOptions {
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  publicUrl?: string;
  pushAllowHosts?: string[];
  host: string;
  port: number;
  nodeId?: string;
  logLevel: string;
  maxMessageBytes: number;
  maxQueueBytes: number;
  heartbeatMs: number;
  presenceTtlMs: number;
  nats?: string;
  natsPrefix: string;
  natsToken?: string;
  natsUser?: string;
  natsPass?: string;
  natsCreds?: string;
  natsTlsCa?: string;
  natsTlsCert?: string;
  natsTlsKey?: string;
  natsReplicas: number;
  auth: 'none' | 'apikey' | 'jwt';
  insecureNoAuth: boolean;
  apiKeys?: string;
  jwtSecretFile?: string;
  jwtPublicKey?: string;
  jwksUrl?: string;
  jwtIssuer?: string;
  jwtAudience?: string;
  jwtAlgorithms?: string;
  jwtClockSkewMs: number;
  jwtIdentityClaim: string;
  topicsDefault: 'allow' | 'deny';
  auditLog?: string;
  rateLimits: 'auto' | 'on' | 'off';
  agentRequestsPerSec?: number;
  agentBytesPerSec?: number;
  ipConnectionsPerSec?: number;
  maxConnectionsPerAgent: number;
  maxSubscriptions: number;
  maxMembers: number;
  maxStateBytes: number;
  helloTimeoutMs: number;
}

function list(value: string | undefined): string[] | undefined {
  const items = value
    ?.split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  return items && items.length > 0 ? items : undefined;
}

/** The auth config for the CLI flags (key files are read when the node starts). */
export function authConfig(opts: NodeCommandOptions): AuthConfig {
  switch (opts.auth) {
    case 'none':
      return { mode: 'none' };
    case 'apikey':
      return { mode: 'apikey', ...(opts.apiKeys ? { keysFile: opts.apiKeys } : {}) };
    case 'jwt': {
      const issuer = list(opts.jwtIssuer);
      const audience = list(opts.jwtAudience);
      const algorithms = list(opts.jwtAlgorithms) as JwtAlgorithm[] | undefined;
      return {
        mode: 'jwt',
        ...(opts.jwtSecretFile ? { secretFile: opts.jwtSecretFile } : {}),
        ...(opts.jwtPublicKey ? { publicKeyFile: opts.jwtPublicKey } : {}),
        ...(opts.jwksUrl ? { jwksUrl: opts.jwksUrl } : {}),
        ...(issuer ? { issuer } : {}),
        ...(audience ? { audience } : {}),
        ...(algorithms ? { algorithms } : {}),
        clockSkewMs: opts.jwtClockSkewMs,
        identityClaim: opts.jwtIdentityClaim,
      };
    }
    default:
      throw new Error(`unknown --auth ${String(opts.auth)}`);
  }
}

/** The security-related node options for the CLI flags. */
export function securityOptions(opts: NodeCommandOptions): MeshNodeOptions {
  const rates: Partial<RateLimitOptions> = {
    ...(opts.agentRequestsPerSec ? { agentRequestsPerSec: opts.agentRequestsPerSec } : {}),
    ...(opts.agentBytesPerSec ? { agentBytesPerSec: opts.agentBytesPerSec } : {}),
    ...(opts.ipConnectionsPerSec ? { ipConnectionsPerSec: opts.ipConnectionsPerSec } : {}),
  };
  const rateLimits =
    opts.rateLimits === 'off'
      ? false
      : opts.rateLimits === 'on' || Object.keys(rates).length > 0
        ? rates
        : undefined;
  return {
    auth: authConfig(opts),
    insecureNoAuth: opts.insecureNoAuth,
    ...(rateLimits === undefined ? {} : { rateLimits }),
    quotas: {
      maxConnectionsPerAgent: opts.maxConnectionsPerAgent,
      maxMembersPerCollaboration: opts.maxMembers,
    },
    maxSubscriptions: opts.maxSubscriptions,
    maxStateBytes: opts.maxStateBytes,
    policy: { topicsDefault: opts.topicsDefault },
    ...(opts.auditLog ? { audit: { file: opts.auditLog } } : {}),
    helloTimeoutMs: opts.helloTimeoutMs,
  };
}

/** A server URL as it may be logged: user and password (or token) removed. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (!u.username && !u.password) return url;
    u.username = '';
    u.password = '';
    return `${u.toString().replace(/\/$/, '')} (credentials redacted)`;
  } catch {
    return '(unparsable URL)';
  }
}

/** The NATS bus options for the CLI flags (secrets are passed through, never logged). */
export function natsOptions(opts: NodeCommandOptions, nodeId: string | undefined): NatsBusOptions {
  const tls = {
    ...(opts.natsTlsCa ? { caFile: opts.natsTlsCa } : {}),
    ...(opts.natsTlsCert ? { certFile: opts.natsTlsCert } : {}),
    ...(opts.natsTlsKey ? { keyFile: opts.natsTlsKey } : {}),
  };
  return {
    servers: opts.nats ?? '',
    prefix: opts.natsPrefix,
    replicas: opts.natsReplicas,
    ...(nodeId ? { nodeId } : {}),
    ...(opts.natsToken ? { token: opts.natsToken } : {}),
    ...(opts.natsUser ? { user: opts.natsUser } : {}),
    ...(opts.natsPass ? { pass: opts.natsPass } : {}),
    ...(opts.natsCreds ? { credsFile: opts.natsCreds } : {}),
    ...(Object.keys(tls).length > 0 ? { tls } : {}),
  };
}

/** TLS and A2A gateway options from the CLI flags; a half-given TLS pair is a configuration error. */
export function listenerOptions(opts: NodeCommandOptions): Pick<MeshNodeOptions, 'tls' | 'a2a'> {
  if (Boolean(opts.tlsCert) !== Boolean(opts.tlsKey)) {
    throw new MeshError('bad_config', '--tls-cert and --tls-key go together');
  }
  const out: Pick<MeshNodeOptions, 'tls' | 'a2a'> = {};
  if (opts.tlsCert && opts.tlsKey) {
    out.tls = { certFile: opts.tlsCert, keyFile: opts.tlsKey, ...(opts.tlsCa ? { caFile: opts.tlsCa } : {}) };
  }
  if (opts.publicUrl || opts.pushAllowHosts) {
    out.a2a = {
      ...(opts.publicUrl ? { publicUrl: opts.publicUrl } : {}),
      ...(opts.pushAllowHosts ? { pushAllowHosts: opts.pushAllowHosts } : {}),
    };
  }
  return out;
}

/** Runs a node until SIGINT/SIGTERM, then drains it (agents get 4500 and reconnect elsewhere). */
export async function runNode(opts: NodeCommandOptions): Promise<void> {
  const logger = createLogger({ level: opts.logLevel });
  let bus: Bus | undefined;
  if (opts.nats) {
    const servers = opts.nats.split(',').map((u) => redactUrl(u.trim()));
    logger.info({ servers, prefix: opts.natsPrefix }, 'connecting to NATS');
    // Loaded only here: a node on the embedded bus never loads the NATS client.
    const { connectNatsBus } = await import('../bus/nats.js');
    bus = await connectNatsBus({
      ...natsOptions(opts, opts.nodeId),
      logger: logger.child({ component: 'nats' }),
    });
  }
  let node: Awaited<ReturnType<typeof createMeshNode>>;
  try {
    node = await createMeshNode({
      host: opts.host,
      port: opts.port,
      logger,
      maxMessageBytes: opts.maxMessageBytes,
      maxQueueBytes: opts.maxQueueBytes,
      heartbeatMs: opts.heartbeatMs,
      presenceTtlMs: opts.presenceTtlMs,
      ...securityOptions(opts),
      ...listenerOptions(opts),
      ...(bus ? { bus } : {}),
      ...(opts.nodeId ? { nodeId: opts.nodeId } : {}),
    });
  } catch (error) {
    logger.fatal({ err: error }, 'cannot start the node');
    await bus?.close();
    process.exitCode = 2;
    return;
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    void node.drain();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  const result = await node.closed();
  await bus?.close();
  if (result instanceof Error) process.exitCode = 1;
}
