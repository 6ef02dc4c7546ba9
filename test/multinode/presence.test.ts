import { describe, expect, it, onTestFinished } from 'vitest';
import { connectNatsBus } from '../../src/bus/nats.js';
import { TtlPresence } from '../../src/services/ttlPresence.js';
import { startNatsServer } from '../helpers/natsServer.js';
import { eventually, testLogger } from '../helpers/node.js';

/** TTL presence between two buses on one nats-server: lookups from the watched mirror, confirmed absences, expiry. */

// Two seconds: under a loaded CI machine a refresh can be late by more than a 1 s TTL allows.
const TTL_MS = 2000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('TTL presence on NATS', () => {
  it('sees the subjects of another node from its mirror, keeps them while refreshed, and drops them once that node stops', async () => {
    const server = await startNatsServer();
    const busA = await connectNatsBus({ servers: server.url, nodeId: 'n1' });
    const busB = server.track(await connectNatsBus({ servers: server.url, nodeId: 'n2' }));
    const a = await TtlPresence.create(busA, 'members', 'n1', TTL_MS, testLogger);
    const b = await TtlPresence.create(busB, 'members', 'n2', TTL_MS, testLogger);
    onTestFinished(async () => {
      await b.close();
      await a.close().catch(() => {});
      await busA.close().catch(() => {});
    });

    await a.attached('c1.agent1');
    await b.attached('c1.agent2');
    await eventually(() => expect(b.seen('c1')?.get('c1.agent1')).toEqual(['n1']));
    expect(await b.elsewhere('c1.agent1')).toEqual(['n1']);
    expect(await b.hosts('c1.agent2')).toEqual(['n2']);
    expect(await b.elsewhere('c1.agent2')).toEqual([]);
    // Held nowhere: the mirror has nothing, and the confirming listing agrees.
    expect(await b.hosts('c1.nobody')).toEqual([]);

    // Refreshed (unconfirmed writes) for three TTLs: still there, in the mirror and on the server.
    await sleep(3 * TTL_MS);
    expect(b.seen('c1')?.get('c1.agent1')).toEqual(['n1']);
    expect((await b.locate('c1')).get('c1.agent1')).toEqual(['n1']);

    // A last holder leaving deletes the entry; the other node's mirror follows.
    await a.attached('c1.agent3');
    await eventually(() => expect(b.seen('c1')?.get('c1.agent3')).toEqual(['n1']));
    a.detached('c1.agent3');
    await eventually(() => expect(b.seen('c1')?.has('c1.agent3')).toBe(false));

    // Node n1 goes away without cleaning up (its bus closes under it): its entry expires and the
    // mirror reports it gone within about the TTL, with no listing.
    const stoppedAt = Date.now();
    await busA.close();
    await eventually(() => expect(b.seen('c1')?.has('c1.agent1')).toBe(false), 4 * TTL_MS);
    expect(Date.now() - stoppedAt).toBeLessThan(2 * TTL_MS + 1000);
    expect(await b.elsewhere('c1.agent1')).toEqual([]);
    expect(b.seen('c1')?.get('c1.agent2')).toEqual(['n2']);
  }, 30_000);
});
