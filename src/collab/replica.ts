import { MeshError, RpcError } from '@a2a-mesh/protocol';
import type { Logger } from 'pino';
import { type Bus, entryValue, type KvBucket, type LogFollower, OffsetConflictError } from '../bus/bus.js';
import { busError } from '../services/busErrors.js';
import { Packed, pack, unpack } from '../util/binary.js';
import { EventRing, FannedEvent } from './events.js';
import {
  applyRecord,
  type CollabState,
  emptyState,
  fromSnapshot,
  type LogRecord,
  type SnapshotData,
  toSnapshot,
} from './fold.js';
import { MemberStream, type StreamCounters, type StreamSink } from './stream.js';

/** Tuning for replicas. */
export interface ReplicaOptions {
  /** Write a snapshot every this many events (default 1000). */
  snapshotEvery: number;
  /** Also snapshot when this many ms passed since the last one and events arrived since (default 30000). */
  snapshotIntervalMs?: number;
  /** Recent events kept in memory for replays (default 4096). */
  ringSize: number;
  /** CAS attempts before a write gives up with Unavailable (default 64). */
  maxWriteAttempts: number;
}

/** What a write builder returns: the record to append, or a result that needs no append. */
export type WritePlan<T> = { record: LogRecord; result: (offset: number) => T } | { done: T };

/** The bus key prefix of a collaboration log. */
export function collabLog(collaborationId: string): string {
  return `collab.${collaborationId}`;
}

/** Hooks into the rest of the node. */
export interface ReplicaHooks {
  /** Called after an event was applied and fanned out. */
  onEvent(replica: CollabReplica, ev: FannedEvent): void;
  /** A stream could not be filled from the log; the session must reconnect and recover. */
  onStreamFailure(stream: MemberStream, error: unknown): void;
  counters: StreamCounters;
}

/**
 * One node's copy of one collaboration: follows its log from a snapshot, folds it into state, fans
 * events out to the local members' streams, and serialises writes with compare-and-set on the log.
 */
export class CollabReplica {
  readonly log: string;
  readonly state: CollabState;
  readonly #streams = new Set<MemberStream>();
  readonly #waiters: { offset: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  readonly #ring: EventRing;
  #follower: LogFollower | undefined;
  #failure: Error | undefined;
  #closed = false;
  #snapshotOffset = 0;
  #snapshotAt = Date.now();
  /** When the last local stream went away (0 while streams are attached), for idle eviction. */
  idleSince = Date.now();
  /** Local sessions between their join write and their stream attach, by agent id. */
  readonly joining = new Map<string, number>();

  private constructor(
    readonly id: string,
    readonly epoch: string,
    state: CollabState,
    readonly bus: Bus,
    readonly snapshots: KvBucket,
    readonly options: ReplicaOptions,
    readonly hooks: ReplicaHooks,
    readonly log_: Logger,
  ) {
    this.log = collabLog(id);
    this.state = state;
    this.#snapshotOffset = state.offset;
    this.#ring = new EventRing(options.ringSize);
  }

  /**
   * Opens the replica: loads the newest snapshot of the same epoch, then follows the log from there
   * until it reaches the head it saw at open. Resolves undefined if the collaboration does not exist.
   */
  static async open(
    id: string,
    bus: Bus,
    snapshots: KvBucket,
    options: ReplicaOptions,
    hooks: ReplicaHooks,
    logger: Logger,
  ): Promise<CollabReplica | undefined> {
    const log = collabLog(id);
    const info = await bus.info(log);
    if (info.lastOffset === 0) return undefined;
    let state = emptyState();
    const snapEntry = await snapshots.get(id);
    if (snapEntry) {
      const snap = unpack<{ epoch: string; state: SnapshotData }>(snapEntry.value);
      if (snap.epoch === info.epoch && snap.state.offset >= info.firstOffset - 1)
        state = fromSnapshot(snap.state);
    }
    if (state.offset < info.firstOffset - 1) {
      throw RpcError.of('Unavailable', `collaboration ${id}: log was trimmed past its last snapshot`);
    }
    const replica = new CollabReplica(id, info.epoch, state, bus, snapshots, options, hooks, logger);
    replica.#start();
    await replica.waitFor(info.lastOffset);
    return replica;
  }

  get offset(): number {
    return this.state.offset;
  }

  get streamCount(): number {
    return this.#streams.size;
  }

  /** Streams of local members, for presence bookkeeping. */
  streams(): IterableIterator<MemberStream> {
    return this.#streams.values();
  }

  #start(): void {
    const follower = this.bus.follow(this.log, this.state.offset + 1);
    this.#follower = follower;
    void (async () => {
      try {
        for await (const entry of follower) {
          if (entry.offset !== this.state.offset + 1) {
            if (entry.offset <= this.state.offset) continue;
            throw new MeshError(
              'protocol',
              `log ${this.log}: gap at ${this.state.offset + 1} (got ${entry.offset})`,
            );
          }
          this.#apply(entry.offset, entryValue<LogRecord>(entry));
        }
        if (!this.#closed) throw new MeshError('closed', `log ${this.log} follower ended`);
      } catch (error) {
        this.#fail(error instanceof Error ? error : new Error(String(error)));
      }
    })();
  }

  #apply(offset: number, record: LogRecord): void {
    applyRecord(this.state, offset, record);
    const ev = new FannedEvent(this.id, this.epoch, offset, record);
    this.#ring.push(ev);
    for (const s of this.#streams) {
      if (s.closed) this.#streams.delete(s);
      else s.deliver(ev);
    }
    while (this.#waiters.length > 0 && this.#waiters[0]!.offset <= offset) this.#waiters.shift()!.resolve();
    if (
      offset % this.options.snapshotEvery === 0 ||
      (offset > this.#snapshotOffset &&
        Date.now() - this.#snapshotAt >= (this.options.snapshotIntervalMs ?? 30_000))
    ) {
      this.#snapshot();
    }
    this.hooks.onEvent(this, ev);
  }

  #snapshot(): void {
    this.#snapshotOffset = this.state.offset;
    this.#snapshotAt = Date.now();
    const offset = this.state.offset;
    const value = pack({ epoch: this.epoch, state: toSnapshot(this.state) });
    const write = async () => {
      // Several nodes snapshot the same log; never replace a newer snapshot with an older one.
      const current = await this.snapshots.get(this.id);
      if (current) {
        const prev = unpack<{ epoch: string; state: { offset: number } }>(current.value);
        if (prev.epoch === this.epoch && prev.state.offset >= offset) return;
      }
      await this.snapshots.put(this.id, value);
    };
    write().catch((error: unknown) => {
      this.log_.warn({ err: error, collaborationId: this.id }, 'snapshot write failed');
    });
  }

  #fail(error: Error): void {
    if (this.#closed) return;
    this.#failure = error;
    this.log_.error({ err: error, collaborationId: this.id }, 'replica failed; members will recover');
    for (const w of this.#waiters.splice(0)) w.reject(error);
    for (const s of this.#streams) this.hooks.onStreamFailure(s, error);
    this.close();
  }

  /** Resolves once the fold has reached `offset`. */
  waitFor(offset: number): Promise<void> {
    if (this.state.offset >= offset) return Promise.resolve();
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#closed) return Promise.reject(new MeshError('closed', 'replica closed'));
    return new Promise((resolve, reject) => {
      const w = { offset, resolve, reject };
      const i = this.#waiters.findIndex((x) => x.offset > offset);
      if (i < 0) this.#waiters.push(w);
      else this.#waiters.splice(i, 0, w);
    });
  }

  get failed(): boolean {
    return this.#failure !== undefined || this.#closed;
  }

  /**
   * Appends a record planned against the current state, compare-and-set on the log head, so the plan
   * is always applied to exactly the state it was made from. Retries on conflict.
   */
  async write<T>(plan: (state: CollabState) => WritePlan<T>): Promise<T> {
    for (let attempt = 0; attempt < this.options.maxWriteAttempts; attempt++) {
      if (this.#failure)
        throw RpcError.of('Unavailable', 'collaboration replica is recovering', undefined, this.#failure);
      const p = plan(this.state);
      if ('done' in p) return p.done;
      const expected = this.state.offset;
      try {
        const offset = await this.bus.append(this.log, new Packed(p.record), {
          expectedLastOffset: expected,
        });
        await this.waitFor(offset);
        return p.result(offset);
      } catch (error) {
        if (error instanceof OffsetConflictError) {
          await this.waitFor(error.actual).catch((e: unknown) => {
            throw busError(e);
          });
          continue;
        }
        throw busError(error);
      }
    }
    throw RpcError.of('Unavailable', 'too much write contention on this collaboration; retry');
  }

  /** Appends without compare-and-set (the record does not depend on state). */
  async append(record: LogRecord): Promise<number> {
    try {
      const offset = await this.bus.append(this.log, new Packed(record));
      await this.waitFor(offset);
      return offset;
    } catch (error) {
      throw busError(error);
    }
  }

  /** Attaches a session stream that will send every event from `next` on, catching up from the log first. */
  attach(sink: StreamSink, agentId: string, next: number): MemberStream {
    const stream = new MemberStream(
      sink,
      agentId,
      next,
      (from, to) => this.readRange(from, to),
      () => this.state.offset,
      this.hooks.counters,
      (error) => this.hooks.onStreamFailure(stream, error),
    );
    this.#streams.add(stream);
    this.idleSince = 0;
    void stream.catchUp();
    return stream;
  }

  hasStream(stream: MemberStream): boolean {
    return this.#streams.has(stream);
  }

  detach(stream: MemberStream): void {
    stream.close();
    this.#streams.delete(stream);
    if (this.#streams.size === 0) this.idleSince = Date.now();
  }

  /** Events `from..to` inclusive: from the in-memory ring when possible, else from the log. */
  async readRange(from: number, to: number): Promise<FannedEvent[]> {
    const out: FannedEvent[] = [];
    let o = from;
    for (; o <= to; o++) {
      const ev = this.#ring.get(o);
      if (!ev) break;
      out.push(ev);
    }
    if (o > to) return out;
    const entries = await this.bus.read(this.log, o, to - o + 1);
    for (const e of entries)
      out.push(new FannedEvent(this.id, this.epoch, e.offset, entryValue<LogRecord>(e)));
    return out;
  }

  /** True when events after `offset` can still be replayed exactly. */
  async canReplayFrom(offset: number): Promise<boolean> {
    if (offset === this.state.offset || this.#ring.get(offset + 1)) return true;
    const info = await this.bus.info(this.log);
    return info.epoch === this.epoch && info.firstOffset <= offset + 1;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#follower?.close();
    for (const s of this.#streams) s.close();
    this.#streams.clear();
    const err = new MeshError('closed', 'replica closed');
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }
}
