import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { connectNatsBus } from '../../src/bus/nats.js';
import { startNatsServer } from '../helpers/natsServer.js';
import { eventually } from '../helpers/node.js';

describe('NATS subject layout', () => {
  it('stores collaboration logs but never a topic, even one named like a log', async () => {
    const nats = await startNatsServer();
    const bus = nats.track(await connectNatsBus({ servers: nats.url, nodeId: 'layout' }));
    const nc = nats.track(await connect({ servers: nats.url }));
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info('MESH_LOGS')).config.subjects.sort()).toEqual([
      'mesh.a2atask.*.log',
      'mesh.collab.*.log',
      'mesh.conv.*.log',
    ]);
    await bus.append('collab.c1', new Uint8Array([1]));
    const got: string[] = [];
    await bus.subscribe('alerts.>', (m) => got.push(m.topic));
    await bus.publish('alerts.log', new Uint8Array([2]));
    await bus.publish('collab.x.log', new Uint8Array([3]));
    await eventually(() => expect(got).toEqual(['alerts.log']));
    expect((await jsm.streams.info('MESH_LOGS')).state.messages).toBe(1);
    await expect(bus.append('topic.x', new Uint8Array([4]))).rejects.toThrow(/invalid log name/);
    await expect(bus.append('collab.a.b', new Uint8Array([4]))).rejects.toThrow(/invalid log name/);
  });
});
