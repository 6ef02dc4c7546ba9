import { jetstreamManager } from '@nats-io/jetstream';
import { errors, RequestOne } from '@nats-io/nats-core/internal';
import { connect } from '@nats-io/transport-node';
import { describe, expect, it, onTestFinished } from 'vitest';
import { installNatsRequestFix, natsRequestFixInstalled } from '../../src/bus/natsRequestFix.js';
import { startNatsServer } from '../helpers/natsServer.js';

/**
 * The nats.js request fix (src/bus/natsRequestFix.ts): an answered request resolves without the
 * library's `cancel()` (which allocated a RequestError to reject an already-resolved promise), and
 * every other outcome still runs the library's own code: timeouts, no responders, server errors.
 */
describe('nats.js request fix', () => {
  it('answers requests without cancel(); timeouts, no responders and API errors still reject', async () => {
    expect(installNatsRequestFix()).toBe(true);
    expect(natsRequestFixInstalled()).toBe(true);
    const server = await startNatsServer();
    const nc = await connect({ servers: server.url, noAsyncTraces: true });
    onTestFinished(() => nc.close());
    nc.subscribe('echo', {
      callback: (_err, m) => {
        m.respond(m.data);
      },
    });
    nc.subscribe('silent', { callback: () => {} });
    await nc.flush();

    // Counts the library's cancel() calls: before the fix, one per answered request.
    const proto = RequestOne.prototype as unknown as { cancel(this: RequestOne, err?: Error): void };
    const cancel = proto.cancel;
    let cancels = 0;
    proto.cancel = function (this: RequestOne, err?: Error) {
      cancels++;
      cancel.call(this, err);
    };
    onTestFinished(() => {
      proto.cancel = cancel;
    });

    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => nc.request('echo', `n${i}`, { timeout: 2000 })),
    );
    expect(answers.map((m) => m.string())).toEqual(Array.from({ length: 50 }, (_, i) => `n${i}`));
    expect(cancels).toBe(0);

    await expect(nc.request('silent', 'x', { timeout: 100 })).rejects.toBeInstanceOf(errors.TimeoutError);
    const noOne = await nc.request('nobody.listens', 'x', { timeout: 1000 }).catch((e: unknown) => e);
    expect(noOne).toBeInstanceOf(errors.RequestError);
    expect((noOne as InstanceType<typeof errors.RequestError>).isNoResponders()).toBe(true);
    const jsm = await jetstreamManager(nc);
    await expect(jsm.streams.info('no-such-stream')).rejects.toThrow(/stream not found/);

    // The connection still answers after the failures, and the mux holds no leftover requests.
    expect((await nc.request('echo', 'again', { timeout: 2000 })).string()).toBe('again');
  });
});
