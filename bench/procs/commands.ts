/**
 * The commands each worker process answers (name → argument and result types), shared by the
 * harness (`Worker<...>`) and the workers (`serve<...>`). Times in ms, sizes in bytes, rates per second.
 * Command maps are type aliases, not interfaces, so that they fit `CommandMap`'s index signature.
 */
import type { MeshNodeStats } from '../../src/index.js';
import type { LatencySummary } from '../lib/stats.js';

// ---------------------------------------------------------------- mesh node

/** Node options a scenario (or a profiling experiment) may override; scenarios measure the defaults. */
export interface NodeTuning {
  presenceTtlMs?: number;
  snapshotEvery?: number;
  heartbeatMs?: number;
}

export type MeshStartArgs = (
  | { bus: 'embedded'; nodeId?: string }
  | { bus: 'nats'; servers: string; prefix: string; nodeId: string }
) & { tuning?: NodeTuning };

export type MeshNodeCommands = {
  start: { args: MeshStartArgs; result: { url: string; nodeId: string; startMs: number } };
  stats: { args: null; result: MeshNodeStats };
  /** Starts the V8 CPU profiler (sampling every 200 µs). */
  profileStart: { args: null; result: null };
  /** Stops it and writes the profile (`.cpuprofile` JSON) to `file`. */
  profileStop: { args: { file: string }; result: null };
} & LoopDelayCommands;

/** Commands of a server whose event-loop delay a scenario samples. */
export type LoopDelayCommands = {
  /** Starts sampling this process's event-loop delay (`perf_hooks.monitorEventLoopDelay`, 10 ms timer; see bench/lib/loopDelay.ts). */
  loopDelayStart: { args: null; result: null };
  /** Stops sampling and reports what it saw. */
  loopDelayStop: { args: null; result: LoopDelay };
};

/** Event-loop delay over a window, ms: how late a 10 ms timer ran beyond its interval (the process could not react sooner). */
export interface LoopDelay {
  p50: number;
  p99: number;
  max: number;
}

// ---------------------------------------------------------------- raw ws server (baselines)

/** `relay`: a frame from a member of group `?g=N` is sent as-is to every member of that group.
 * `idle`: accepts and holds connections. `state`: answers every frame with `state` as a JSON-RPC result. */
export type WsServerMode = { mode: 'relay' } | { mode: 'idle' } | { mode: 'state'; state: unknown };

export type WsServerCommands = {
  start: { args: WsServerMode; result: { url: string } };
  connections: { args: null; result: number };
};

// ---------------------------------------------------------------- raw NATS peer (baselines)

export type NatsPeerCommands = {
  /** Echoes every request on `subject`. */
  respond: { args: { servers: string; subject: string }; result: null };
  /** Sequential request/reply round trips; latency in ms. */
  requestLoop: {
    args: { servers: string; subject: string; payloadBytes: number; maxCount: number; durationMs: number };
    result: LatencySummary & { count: number };
  };
  /** Creates a file-storage stream over `subject`. */
  createStream: { args: { servers: string; stream: string; subject: string }; result: null };
  /** JetStream publishes to one subject from `connections` × `publishers` loops with `window` in flight each. */
  jsPublish: {
    args: {
      servers: string;
      subject: string;
      connections: number;
      publishers: number;
      window: number;
      payloadBytes: number;
      warmupMs: number;
      durationMs: number;
    };
    result: { acked: number; seconds: number; rate: number; errors: number };
  };
};

// ---------------------------------------------------------------- h2 JSON server (baseline of scenario 7)

export type H2ServerCommands = {
  start: { args: null; result: { url: string } };
};

// ---------------------------------------------------------------- h2 → ws relay (floor of scenario 7)

export type H2RelayCommands = {
  /** Listens for POSTs (`url`) and for the one agent connection (`agentUrl`). */
  start: { args: null; result: { url: string; agentUrl: string } };
  /** True once the agent has connected. */
  connected: { args: null; result: boolean };
};

export type JsRelayCommands = {
  /**
   * Connects to NATS and listens for raw JSON-RPC clients; shares go to `<subjectPrefix>.<collaborationId>`
   * in `stream` (which must exist), collaboration ids are made as `<relayId>-<n>`.
   */
  start: {
    args: { servers: string; stream: string; subjectPrefix: string; relayId: string };
    result: { url: string };
  };
} & LoopDelayCommands;

export type RelayAgentCommands = {
  /** Connects to the relay and answers every forwarded message. */
  start: { args: { url: string }; result: null };
};

// ---------------------------------------------------------------- mesh agent (scenario 7)

export type MeshAgentCommands = {
  /** Connects an agent that answers every A2A message with a direct reply. */
  start: { args: { url: string; agentId: string }; result: null };
  /** Turns executed so far. */
  turns: { args: null; result: number };
};

// ---------------------------------------------------------------- load generator

export interface FanoutSetupArgs {
  /** Name of this set of agents, used by `fanoutRun`. */
  set: string;
  mode: 'mesh' | 'ws';
  url: string;
  groups: number;
  groupSize: number;
  writersPerGroup: number;
  /** Prefix of agent ids, unique per trial. */
  prefix: string;
}

export interface FanoutRunArgs {
  set: string;
  warmupMs: number;
  durationMs: number;
  /** Shares (or relay frames) each writer keeps in flight. */
  window: number;
  /** Mesh: text length of each share. Baseline: total bytes of each relayed frame. */
  payloadBytes: number;
}

export interface FanoutRunResult {
  /** Frames received by all agents inside the measuring window. */
  delivered: number;
  seconds: number;
  rate: number;
  /** Writes acknowledged inside the run (mesh: share results; baseline: own echoes). */
  acked: number;
  /** Average size of a delivered frame. */
  frameBytes: number;
  /** After the writers stopped and deliveries settled: frames received vs. expected (acked × group size). */
  check: { received: number; expected: number; outOfOrder: number; errors: number };
}

/** Which set of agents a latency call is for: on the mesh nodes, or on the floor's raw relays. */
export type LatencySet = 'mesh' | 'floor';

export interface LatencySetupArgs {
  set: LatencySet;
  urls: string[];
  collabs: number;
  perCollab: number;
  prefix: string;
}

export interface LatencyRunResult {
  /** share → event at a member on the other node, ms. */
  crossNode: LatencySummary;
  /** share → event at a member on the writer's node (including the writer), ms. */
  sameNode: LatencySummary;
  sent: number;
  acked: number;
  errors: number;
  /** Deliveries expected for shares sent after warm-up vs. received. */
  expected: number;
  received: number;
  /** Achieved share rate. */
  rate: number;
  /** The 20 slowest deliveries: send time (ms after measuring began), latency (ms), collaboration index, receiving node. */
  worst: { atMs: number; ms: number; collab: number; node: number }[];
  /** Slowest delivery (ms) of the shares sent in each 250 ms of the measuring window. */
  timeline: number[];
  /** The load generator's own event-loop delay while sending. */
  loopDelay: LoopDelay;
}

export interface WritesSetupArgs {
  writerUrls: string[];
  readerUrls: string[];
  prefix: string;
}

export interface WritesRunResult {
  acked: number;
  seconds: number;
  rate: number;
  errors: number;
  /** Every reader saw offsets 1, 2, 3, ... with no gap or duplicate, up to the last acked offset. */
  contiguous: boolean;
  readerEvents: number[];
  lastOffset: number;
}

export interface LateJoinFillArgs {
  url: string;
  events: number;
  /** Every N-th event is a state update (JSON Patch add), the rest are shares. */
  updateEvery: number;
  window: number;
  prefix: string;
}

export type LoadGenCommands = {
  fanoutSetup: { args: FanoutSetupArgs; result: { agents: number; setupMs: number } };
  fanoutRun: { args: FanoutRunArgs; result: FanoutRunResult };
  latencySetup: { args: LatencySetupArgs; result: { agents: number; setupMs: number } };
  latencyRun: {
    args: { set: LatencySet; ratePerSec: number; warmupMs: number; durationMs: number };
    result: LatencyRunResult;
  };
  writesSetup: { args: WritesSetupArgs; result: { collaborationId: string; setupMs: number } };
  writesRun: { args: { warmupMs: number; durationMs: number; window: number }; result: WritesRunResult };
  memoryConnect: {
    args: { mode: 'mesh' | 'ws'; url: string; count: number; concurrency: number; prefix: string };
    result: { connected: number; ms: number; failures: number; firstError?: string };
  };
  lateJoinFill: {
    args: LateJoinFillArgs;
    result: {
      collaborationId: string;
      lastOffset: number;
      stateBytes: number;
      state: unknown;
      ms: number;
      retries: number;
      firstError?: string;
    };
  };
  /** A fresh MeshClient connects (untimed), then joinCollaboration → state ready is timed. */
  lateJoinMesh: {
    args: { url: string; collaborationId: string; agentId: string };
    result: { ms: number; offset: number; stateBytes: number };
  };
  /** A fresh raw ws client connects (untimed), then one request → parsed state is timed. */
  lateJoinWs: { args: { url: string }; result: { ms: number; stateBytes: number } };
  /** Starts and joins a small collaboration on `url`, to warm a fresh node's code paths. */
  warmNode: { args: { url: string; prefix: string }; result: null };
  /** JSON-RPC `SendMessage` POSTs to `url` + `path` over one h2c session, `concurrency` streams in flight. */
  h2Run: {
    args: {
      url: string;
      path: string;
      headers: Record<string, string>;
      concurrency: number;
      warmupMs: number;
      durationMs: number;
      payloadBytes: number;
    };
    result: { completed: number; seconds: number; rate: number; errors: number; firstError?: string };
  };
  /** Closes every agent and socket this process holds. */
  closeAll: { args: null; result: null };
};

// ---------------------------------------------------------------- cold start

export type ColdStartCommands = {
  /** Imports and starts a node (`mesh`) or a bare ws server (`ws`) listening on port 0. */
  start: {
    /** `entry`: URL of the module exporting `createMeshNode` (the compiled dist/index.js). */
    args: { mode: 'mesh' | 'ws'; entry: string };
    result: {
      /** Dynamic import of the node's (or ws's) modules. */
      importMs: number;
      /** createMeshNode() (or server set-up) until listening. */
      startMs: number;
      totalMs: number;
      /** CPU time (user + system, all threads) spent in import + start: less disturbed by load. */
      cpuMs: number;
      /** performance.now() at this script's first line: Node's own start-up before it. */
      firstLineMs: number;
      nodeUptimeMs: number;
    };
  };
  /** After two GCs: memory from /proc/self/smaps_rollup (MB). */
  smaps: {
    args: Record<string, never>;
    result: {
      rssMb: number;
      /** Proportional set size: private pages plus this process's share of shared ones. */
      pssMb: number;
      /** File pages shared with other processes (mostly the node binary's code). */
      sharedCleanMb: number;
      privateDirtyMb: number;
      heapUsedMb: number;
    };
  };
};
