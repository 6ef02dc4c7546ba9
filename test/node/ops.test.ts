import { describe, expect, it } from 'vitest';
import { startNode } from '../helpers/node.js';
import { rawClient } from '../helpers/rawClient.js';

describe('operations endpoints', () => {
  it('serves /health, /ready and Prometheus /metrics that count real traffic', async () => {
    const node = await startNode();
    const base = node.url.replace('ws://', 'http://').replace('/mesh', '');
    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', nodeId: node.nodeId });
    const ready = await fetch(`${base}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true, bus: 'embedded' });

    const c = await rawClient(node.url);
    await c.call('mesh/hello', { agentId: 'metered' });
    const { result } = (await c.call('collaboration/start', { topic: 'm' })) as {
      result: { collaborationId: string };
    };
    await c.call('collaboration/join', { collaborationId: result.collaborationId });
    await c.call('collaboration/share', { collaborationId: result.collaborationId, content: 'one' });
    await c.call('nope/nope');

    const res = await fetch(`${base}/metrics`);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toMatch(/a2a_mesh_connections\{node="[^"]+"\} 1/);
    expect(text).toMatch(/a2a_mesh_events_in_total\{node="[^"]+"\} 3/);
    expect(text).toMatch(/a2a_mesh_events_out_total\{node="[^"]+"\} 1/);
    expect(text).toMatch(
      /a2a_mesh_rpc_calls_total\{method="collaboration\/share",outcome="ok",node="[^"]+"\} 1/,
    );
    expect(text).toMatch(
      /a2a_mesh_rpc_calls_total\{method="unknown",outcome="method_not_found",node="[^"]+"\} 1/,
    );
    expect(text).toContain('a2a_mesh_fanout_latency_seconds_bucket');
    c.close();

    await node.drain();
    expect(await node.closed()).toBeUndefined();
  });
});
