import type { RequestOptions } from '@a2a-mesh/protocol';
import { Packed, unpack } from '../util/binary.js';

/** What a log append or KV write takes: bytes, or a `Packed` value (encoded only where bytes are stored). */
export type BusData = Uint8Array | Packed;

/** The bytes of `data`. */
export function busBytes(data: BusData): Uint8Array {
  return data instanceof Packed ? data.bytes : data;
}

/**
 * The kinds of log the mesh keeps; a log name is `<kind>.<id>` (collaborations, conversations,
 * A2A tasks). The NATS bus binds its stream to exactly these subjects, so no topic can land in it.
 */
export const LOG_KINDS = ['collab', 'conv', 'a2atask'] as const;
export type LogKind = (typeof LOG_KINDS)[number];

const LOG_NAME = new RegExp(`^(${LOG_KINDS.join('|')})\\.[A-Za-z0-9_-]{1,128}$`);

/** True when `log` is a valid log name (`<kind>.<id>`). */
export function isLogName(log: string): boolean {
  return LOG_NAME.test(log);
}

/** One entry of an append-only log. Offsets are contiguous per log, starting at 1. */
export interface LogEntry {
  readonly offset: number;
  readonly data: Uint8Array;
  /** The value itself when the bus kept it (a `Packed` append to the embedded bus): read it, not `data`. */
  readonly decoded?: unknown;
}

/** The node-internal value of a log entry: `decoded` when the bus kept it, else `data` unpacked. */
export function entryValue<T>(entry: LogEntry): T {
  return entry.decoded !== undefined ? (entry.decoded as T) : unpack<T>(entry.data);
}

/** Where a log stands: `epoch` changes only if the log is lost; offsets `firstOffset..lastOffset` are readable. */
export interface LogInfo {
  readonly epoch: string;
  /** First offset still stored (lastOffset + 1 when the log is empty or fully trimmed). */
  readonly firstOffset: number;
  /** Last offset written; 0 when nothing was ever written. */
  readonly lastOffset: number;
}

/** Options for `append`. */
export interface AppendOptions extends RequestOptions {
  /**
   * Compare-and-set: append only if the log's last offset equals this; otherwise reject with
   * `OffsetConflictError` carrying the current last offset. Omit to append at the end.
   */
  expectedLastOffset?: number;
}

/** A live tail of a log from a given offset. Iterating yields entries in offset order with no gap. */
export interface LogFollower extends AsyncIterable<LogEntry> {
  /** Stops following; a pending iteration ends. */
  close(): void;
}

/** One key-value entry. `revision` grows with every write of the bucket. */
export interface KvEntry {
  readonly key: string;
  readonly value: Uint8Array;
  readonly revision: number;
  /** The value itself when the bus kept it (a `Packed` write to the embedded bus): read it, not `value`. */
  readonly decoded?: unknown;
}

/** The node-internal value of a KV entry: `decoded` when the bus kept it, else `value` unpacked. */
export function kvValue<T>(entry: KvEntry): T {
  return entry.decoded !== undefined ? (entry.decoded as T) : unpack<T>(entry.value);
}

/** A change seen by a KV watcher: a put (value set) or a delete/expiry (value undefined). */
export interface KvChange {
  readonly key: string;
  readonly value: Uint8Array | undefined;
  readonly revision: number;
}

/** A key-value bucket. Keys: [-/_=.a-zA-Z0-9]+. With a TTL, entries not written again expire. */
export interface KvBucket {
  get(key: string): Promise<KvEntry | undefined>;
  /** Writes unconditionally; returns the new revision. */
  put(key: string, value: BusData): Promise<number>;
  /**
   * Writes unconditionally without waiting for the store to confirm, for rewrites repeated anyway
   * (TTL refreshes): one that is lost is not reported. Throws `BusUnavailableError` while the bus is down.
   */
  touch(key: string, value: Uint8Array): void;
  /** Writes only if the key does not exist; otherwise rejects with `KvConflictError`. */
  create(key: string, value: BusData): Promise<number>;
  /** Writes only if the key's revision is `revision`; otherwise rejects with `KvConflictError`. */
  update(key: string, value: BusData, revision: number): Promise<number>;
  delete(key: string): Promise<void>;
  /** All live keys (optionally those starting with `prefix`). */
  keys(prefix?: string): Promise<string[]>;
  /** Live changes from now on; iterating ends when `close()` is called. */
  watch(): KvWatcher;
  /**
   * A local copy of the live keys, kept current by one watch: answers without asking the backend.
   * A write from another node shows up after a moment (its delivery), an expiry within about a
   * quarter of the TTL after it (1 s at most).
   */
  mirrorKeys(): KvKeyMirror;
  /**
   * Like `mirrorKeys`, with each live key's last value: for buckets written rarely and read often
   * (agent cards), whose readers can take a value a moment old.
   */
  mirror(): KvMirror;
}

/** A bucket's live keys as this node last saw them. */
export interface KvKeyMirror {
  /** Resolves once the keys live at the start are in; rejects if the watch could not start. */
  readonly loaded: Promise<void>;
  /** False once the watch ended or failed (or `close()`): the copy is no longer kept current. */
  readonly current: boolean;
  /** Live keys starting with `prefix` (all when empty). */
  keys(prefix?: string): string[];
  close(): void;
}

/** A bucket's live entries as this node last saw them. */
export interface KvMirror extends KvKeyMirror {
  /** The live entry of `key` as last seen; undefined when there is none (or not yet seen here). */
  get(key: string): KvEntry | undefined;
}

/** A live feed of KV changes. */
export interface KvWatcher extends AsyncIterable<KvChange> {
  close(): void;
}

/** Options of `Bus.follow`. */
export interface FollowOptions {
  /**
   * The caller knows `log` is empty (it has just created what the log belongs to, and nothing can
   * have written it yet), so a follower from offset 1 may skip reading what came before.
   */
  empty?: boolean;
}

/** Options when opening a bucket. */
export interface KvOptions {
  /** Entries expire this many milliseconds after their last write (0 or absent: never). */
  ttlMs?: number;
}

/** A handler answering requests routed to an agent (`mesh.agent.<id>.rpc` on NATS). */
export type AgentRequestHandler = (data: Uint8Array, signal: AbortSignal) => Promise<Uint8Array>;

/** A topic message as the bus delivers it. */
export interface BusMessage {
  readonly topic: string;
  readonly data: Uint8Array;
}

/** Something that can be stopped. */
export interface Registration {
  close(): Promise<void>;
}

/** Connection status changes, for readiness, metrics and logs. */
export type BusStatus =
  | { type: 'connected' }
  | { type: 'disconnected' }
  | { type: 'reconnected' }
  | { type: 'error'; error: Error };

/**
 * Everything a mesh node shares with other nodes. The only layer that knows NATS.
 * The embedded implementation gives the same contract in one process.
 * Every method that writes rejects fast with `BusUnavailableError` when the bus cannot reach its backend.
 */
export interface Bus {
  /** `embedded` or `nats`. */
  readonly kind: string;

  /** Appends `data` to `log` (created on first write) and resolves with its offset. */
  append(log: string, data: BusData, options?: AppendOptions): Promise<number>;
  /** Where `log` stands. A log never written has lastOffset 0. */
  info(log: string): Promise<LogInfo>;
  /** Up to `limit` entries from `fromOffset` on, contiguous; fewer if the log ends. */
  read(log: string, fromOffset: number, limit: number): Promise<LogEntry[]>;
  /**
   * Follows `log` from `fromOffset` (inclusive) on, including entries written later. Entries
   * appended after this call returns are delivered even before iteration starts.
   */
  follow(log: string, fromOffset: number, options?: FollowOptions): LogFollower;
  /** Deletes a log and everything in it. */
  deleteLog(log: string): Promise<void>;

  /** Opens (creating if needed) a key-value bucket. */
  kv(bucket: string, options?: KvOptions): Promise<KvBucket>;

  /** Serves requests routed to `agentId` from this node. Several nodes may serve one agent. */
  serveAgent(agentId: string, handler: AgentRequestHandler): Promise<Registration>;
  /** Routes a request to whichever node serves `agentId`; rejects with `NoRespondersError` when none does. */
  requestAgent(agentId: string, data: Uint8Array, options?: RequestOptions): Promise<Uint8Array>;

  /** Publishes to a concrete topic (at most once, no persistence). */
  publish(topic: string, data: Uint8Array): Promise<void>;
  /** Subscribes to a topic pattern (`*`, `>`); the handler runs for every matching message. */
  subscribe(pattern: string, handler: (message: BusMessage) => void): Promise<Registration>;

  /** Status changes for as long as the bus is open. */
  status(): AsyncIterable<BusStatus>;
  /** True while the bus can serve writes. */
  readonly connected: boolean;

  /** Closes the bus; idempotent. */
  close(): Promise<void>;
}

/** `append` with `expectedLastOffset` found the log elsewhere. */
export class OffsetConflictError extends Error {
  override readonly name = 'OffsetConflictError';
  constructor(
    readonly log: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`log ${log}: expected last offset ${expected}, found ${actual}`);
  }
}

/** A KV `create` or `update` found another value or revision. */
export class KvConflictError extends Error {
  override readonly name = 'KvConflictError';
  constructor(readonly key: string) {
    super(`kv key ${key} was changed concurrently`);
  }
}

/** Nobody serves the agent a request was routed to. */
export class NoRespondersError extends Error {
  override readonly name = 'NoRespondersError';
  constructor(readonly agentId: string) {
    super(`no node serves agent ${agentId}`);
  }
}

/** The bus cannot reach its backend right now; the same call may succeed later. */
export class BusUnavailableError extends Error {
  override readonly name = 'BusUnavailableError';
}
