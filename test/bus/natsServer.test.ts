import { connect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { startNatsServer } from '../helpers/natsServer.js';

/** The test launcher itself: fails early, restarts on the same port with the same store. */
describe('nats-server test launcher', () => {
  it('rejects with the server output when nats-server exits at start', async () => {
    const err = await startNatsServer({ config: { no_such_option: 1 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain('no_such_option');
  });

  it('restarts on the same port and store dir, and kills by signal', async () => {
    const server = await startNatsServer();
    expect(server.url).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
    expect(server.port).not.toBe(4222);
    const { port, storeDir, pid } = server;
    await server.kill('SIGKILL');
    expect(server.running).toBe(false);
    await server.restart();
    expect(server.running).toBe(true);
    expect(server.port).toBe(port);
    expect(server.storeDir).toBe(storeDir);
    expect(server.pid).not.toBe(pid);
    const nc = server.track(await connect({ servers: server.url }));
    await nc.flush();
  });
});
