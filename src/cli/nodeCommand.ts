import type { Bus } from '../bus/bus.js';
import { connectNatsBus, type NatsBusOptions } from '../bus/nats.js';
import { createLogger } from '../log.js';
import { createMeshNode } from '../node.js';

/** Options of `a2a-mesh node`, as parsed by the CLI. */
export interface NodeCommandOptions {
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

/** Runs a node until SIGINT/SIGTERM, then drains it (agents get 4500 and reconnect elsewhere). */
export async function runNode(opts: NodeCommandOptions): Promise<void> {
  const logger = createLogger({ level: opts.logLevel });
  let bus: Bus | undefined;
  if (opts.nats) {
    logger.info({ servers: opts.nats.split(','), prefix: opts.natsPrefix }, 'connecting to NATS');
    bus = await connectNatsBus({
      ...natsOptions(opts, opts.nodeId),
      logger: logger.child({ component: 'nats' }),
    });
  }
  const node = await createMeshNode({
    host: opts.host,
    port: opts.port,
    logger,
    maxMessageBytes: opts.maxMessageBytes,
    maxQueueBytes: opts.maxQueueBytes,
    heartbeatMs: opts.heartbeatMs,
    presenceTtlMs: opts.presenceTtlMs,
    ...(bus ? { bus } : {}),
    ...(opts.nodeId ? { nodeId: opts.nodeId } : {}),
  });
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
