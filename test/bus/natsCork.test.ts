import { connect } from '@nats-io/transport-node';
import { describe, expect, it, onTestFinished } from 'vitest';
import { connectNatsBus } from '../../src/bus/nats.js';
import { corkNatsWrites } from '../../src/bus/natsCork.js';
import { dec, enc } from '../helpers/bus.js';
import { startNatsServer } from '../helpers/natsServer.js';
import { eventually } from '../helpers/node.js';

/**
 * nats.js's writes are corked per event-loop turn (src/bus/natsCork.ts): the operations of one turn
 * leave in one system call. Nothing is lost or reordered, and a reconnect's new transport is corked too.
 */

type Transport = { socket?: { writableCorked: number }; meshCorked?: true };
const transportOf = (nc: unknown) => (nc as { protocol: { transport: Transport } }).protocol.transport;

describe('corked NATS writes', () => {
  it('holds one turn of writes in the socket until the turn ends, in order, none lost', async () => {
    const server = await startNatsServer();
    const nc = await connect({ servers: server.url });
    onTestFinished(() => nc.close());
    const sub = await connect({ servers: server.url });
    onTestFinished(() => sub.close());
    const got: string[] = [];
    sub.subscribe('corked', { callback: (_e, m) => void got.push(m.string()) });
    await sub.flush();

    expect(corkNatsWrites(nc)).toBe(true);
    expect(corkNatsWrites(nc)).toBe(true); // once per transport
    for (let i = 0; i < 100; i++) nc.publish('corked', `m${i}`);
    // nats.js hands its buffer to the transport in a microtask; the socket then stays corked.
    await Promise.resolve();
    await Promise.resolve();
    expect(transportOf(nc).socket?.writableCorked).toBe(1);
    await new Promise((r) => setImmediate(r));
    expect(transportOf(nc).socket?.writableCorked).toBe(0);
    await nc.flush();
    await eventually(() => expect(got).toHaveLength(100));
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => `m${i}`));
  });

  it('corks the new transport after a reconnect; the bus keeps working', async () => {
    const server = await startNatsServer();
    const bus = server.track(await connectNatsBus({ servers: server.url, nodeId: 'corked' }));
    expect(bus.writesCorked).toBe(true);
    await bus.append('collab.cork', enc('before'));
    await server.kill('SIGKILL');
    await eventually(() => expect(bus.connected).toBe(false));
    await server.restart();
    await eventually(() => expect(bus.connected).toBe(true), 15_000);
    // The reconnect dialled a new transport; the bus corked it when it saw the reconnect.
    expect(bus.writesCorked).toBe(true);
    await bus.append('collab.cork', enc('after'));
    expect((await bus.read('collab.cork', 1, 10)).map((e) => dec(e.data))).toEqual(['before', 'after']);
  });
});
