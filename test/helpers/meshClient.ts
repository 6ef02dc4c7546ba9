import { MeshClient, type MeshClientOptions } from '@a2a-mesh/client';
import { afterEach } from 'vitest';

const clients: MeshClient[] = [];

// Registered in the importing test file's root suite: every client made by `testClient` is closed
// after each test, after the test's own teardown.
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

/** A MeshClient with quick reconnects and a 5 s request timeout (overridable), closed after the test. */
export function testClient(options: MeshClientOptions): MeshClient {
  const c = new MeshClient({
    reconnect: { initialDelayMs: 10, maxDelayMs: 100 },
    requestTimeoutMs: 5_000,
    ...options,
  });
  clients.push(c);
  return c;
}
