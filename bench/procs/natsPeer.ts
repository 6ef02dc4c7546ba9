/**
 * Worker: raw NATS baselines with `@nats-io/transport-node` and `@nats-io/jetstream`, no mesh code:
 * a request/reply responder, a sequential requester, and JetStream publishers into one subject.
 */
import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { serve } from '../lib/child.js';
import { closedLoop } from '../lib/closedLoop.js';
import { summarize } from '../lib/stats.js';
import type { NatsPeerCommands } from './commands.js';

const connections: NatsConnection[] = [];

async function open(servers: string): Promise<NatsConnection> {
  const nc = await connect({ servers, name: `bench-peer-${process.pid}` });
  connections.push(nc);
  return nc;
}

serve<NatsPeerCommands>(
  {
    async respond(a) {
      const nc = await open(a.servers);
      nc.subscribe(a.subject, {
        callback: (_err, msg) => {
          msg.respond(msg.data);
        },
      });
      await nc.flush();
      return null;
    },
    async requestLoop(a) {
      const nc = await open(a.servers);
      const payload = new Uint8Array(a.payloadBytes).fill(120);
      const samples: number[] = [];
      // A few untimed round trips first (connection and subscription set-up).
      for (let i = 0; i < 20; i++) await nc.request(a.subject, payload, { timeout: 2000 });
      const end = performance.now() + a.durationMs;
      while (samples.length < a.maxCount && performance.now() < end) {
        const t0 = performance.now();
        await nc.request(a.subject, payload, { timeout: 2000 });
        samples.push(performance.now() - t0);
      }
      return { ...summarize(samples), count: samples.length };
    },
    async createStream(a) {
      const nc = await open(a.servers);
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: a.stream, subjects: [a.subject], storage: StorageType.File });
      return null;
    },
    async jsPublish(a) {
      const ncs = await Promise.all(Array.from({ length: a.connections }, () => open(a.servers)));
      const payload = new Uint8Array(a.payloadBytes).fill(120);
      const ops = ncs.flatMap((nc) => {
        const js = jetstream(nc);
        return Array.from({ length: a.publishers * a.window }, () => () => js.publish(a.subject, payload));
      });
      return closedLoop(ops, { warmupMs: a.warmupMs, durationMs: a.durationMs, drainMs: 5000 });
    },
  },
  async () => {
    await Promise.allSettled(connections.map((nc) => nc.close()));
  },
);
