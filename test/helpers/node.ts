import pino from 'pino';
import { onTestFinished } from 'vitest';
import { createMeshNode, type MeshNode, type MeshNodeOptions } from '../../src/index.js';

/** A quiet logger for tests (set LOG_LEVEL to see node logs). */
export const testLogger = pino({ level: process.env.LOG_LEVEL ?? 'silent' });

/** Starts a node on a free port; it is closed when the current test finishes. */
export async function startNode(options: MeshNodeOptions = {}): Promise<MeshNode> {
  const node = await createMeshNode({ port: 0, logger: testLogger, ...options });
  onTestFinished(() => node.close());
  return node;
}

/** Re-checks `check` until it stops throwing or `timeoutMs` passes (then rethrows its last error). */
export async function eventually<T>(
  check: () => T | Promise<T>,
  timeoutMs = 5000,
  intervalMs = 10,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
}
