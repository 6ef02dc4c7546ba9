import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The node's Prometheus metrics, in a registry of its own (several nodes can share a process). */
export class NodeMetrics {
  readonly registry = new Registry();
  readonly eventsIn: Counter;
  readonly eventsOut: Counter;
  readonly fanoutLatency: Histogram;
  readonly busReconnects: Counter;
  readonly slowConsumerCloses: Counter;
  readonly rpcCalls: Counter<'method' | 'outcome'>;

  constructor(
    nodeId: string,
    gauges: {
      connections(): number;
      agents(): number;
      collaborations(): number;
      eventsSent(): number;
      slowConsumerCloses(): number;
    },
  ) {
    this.registry.setDefaultLabels({ node: nodeId });
    const registers = [this.registry];
    new Gauge({
      name: 'a2a_mesh_connections',
      help: 'Open agent sessions on this node',
      registers,
      collect() {
        this.set(gauges.connections());
      },
    });
    new Gauge({
      name: 'a2a_mesh_agents',
      help: 'Distinct agents connected to this node',
      registers,
      collect() {
        this.set(gauges.agents());
      },
    });
    new Gauge({
      name: 'a2a_mesh_collaborations',
      help: 'Collaborations this node holds a replica of',
      registers,
      collect() {
        this.set(gauges.collaborations());
      },
    });
    this.eventsIn = new Counter({
      name: 'a2a_mesh_events_in_total',
      help: 'Collaboration events applied from the log',
      registers,
    });
    this.eventsOut = new Counter({
      name: 'a2a_mesh_events_out_total',
      help: 'Collaboration event frames written to agents',
      registers,
      collect() {
        // Counted on the hot path as a plain number; published here.
        this.reset();
        this.inc(gauges.eventsSent());
      },
    });
    this.fanoutLatency = new Histogram({
      name: 'a2a_mesh_fanout_latency_seconds',
      help: 'From an event being written (its `at`) to this node fanning it out',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    });
    this.busReconnects = new Counter({
      name: 'a2a_mesh_bus_reconnects_total',
      help: 'Reconnections of the bus (NATS)',
      registers,
    });
    this.slowConsumerCloses = new Counter({
      name: 'a2a_mesh_slow_consumer_closes_total',
      help: 'Sessions closed with 4008 because their send queue overflowed',
      registers,
      collect() {
        this.reset();
        this.inc(gauges.slowConsumerCloses());
      },
    });
    this.rpcCalls = new Counter({
      name: 'a2a_mesh_rpc_calls_total',
      help: 'JSON-RPC calls handled, by method and outcome (ok or the error reason)',
      labelNames: ['method', 'outcome'],
      registers,
    });
  }
}
