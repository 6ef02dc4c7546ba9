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
}

/** Runs a node until SIGINT/SIGTERM, then drains it (agents get 4500 and reconnect elsewhere). */
export async function runNode(opts: NodeCommandOptions): Promise<void> {
  const logger = createLogger({ level: opts.logLevel });
  const node = await createMeshNode({
    host: opts.host,
    port: opts.port,
    logger,
    maxMessageBytes: opts.maxMessageBytes,
    maxQueueBytes: opts.maxQueueBytes,
    heartbeatMs: opts.heartbeatMs,
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
  if (result instanceof Error) process.exitCode = 1;
}
