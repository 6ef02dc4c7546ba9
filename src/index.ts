export type { A2AGatewayOptions } from './a2a/gateway.js';
export type {
  AppendOptions,
  Bus,
  BusMessage,
  BusStatus,
  KvBucket,
  KvChange,
  KvEntry,
  KvOptions,
  KvWatcher,
  LogEntry,
  LogFollower,
  LogInfo,
  Registration,
} from './bus/bus.js';
export { BusUnavailableError, KvConflictError, NoRespondersError, OffsetConflictError } from './bus/bus.js';
export type { EmbeddedBusOptions } from './bus/embedded.js';
export { EmbeddedBus } from './bus/embedded.js';
export type { LoggerOptions } from './log.js';
export { createLogger } from './log.js';
export type { MeshNode, MeshNodeOptions, MeshNodeStats, MeshNodeTls } from './node.js';
export { createMeshNode } from './node.js';
