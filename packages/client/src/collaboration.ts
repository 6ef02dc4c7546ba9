import {
  AsyncQueue,
  assertNever,
  type CollabEvent,
  type CollabHistoryResult,
  type CollabJoinParams,
  type CollabJoinResult,
  type CollabShareResult,
  type Json,
  type Member,
  MeshError,
  type MethodName,
  type MethodParams,
  type MethodResult,
  type OffsetResult,
  type PatchOperation,
  type Position,
  type RequestOptions,
  type RoleName,
  RpcError,
} from '@a2a-mesh/protocol';
import { bounded } from './deadline.js';
import { CollabReplica } from './replica.js';

/** Yielded by `events()` when the node could not replay what was missed: the local copy was replaced. */
export interface CollabResync {
  type: 'resync';
  collaborationId: string;
  epoch: string;
  offset: number;
  state: Json;
  members: Member[];
}

/** One item of a collaboration's event stream: a log event, or a resync. */
export type CollabItem = CollabEvent | CollabResync;

/** Sends `collaboration/join` on some session. */
export type JoinRequest = (params: CollabJoinParams, options?: RequestOptions) => Promise<CollabJoinResult>;

/** What a collaboration handle needs from its client. */
export interface CollabHost {
  /** A call that waits for a session (see `MeshClient.call`). */
  call<M extends MethodName>(
    method: M,
    params: MethodParams<M>,
    options?: RequestOptions,
  ): Promise<MethodResult<M>>;
  /** Joins on the live session; undefined while there is none (the reconnect re-joins anyway). */
  joinNow(): JoinRequest | undefined;
  /** A recovery join failed: the client either drops the handle or the session. */
  joinFailed(handle: CollaborationHandle, error: unknown): void;
  /** The handle is done; the client stops routing events to it. */
  forget(handle: CollaborationHandle): void;
  /** Default timeout of `waitForOffset`, in ms. */
  readonly requestTimeoutMs: number;
  /** How long, after a join, a skip-ahead may wait for the stream to fill the gap before re-joining, in ms. */
  readonly recoveryGraceMs: number;
  /** This client's agent id, to notice its own removal and role changes (absent: not noticed). */
  agentId?(): string | undefined;
}

/** Options of `share`. */
export interface ShareOptions extends RequestOptions {
  /** Application-defined kind of content (e.g. `idea`, `vote`). */
  kind?: string;
  /** Shares with the same key within 5 minutes are applied once. */
  idempotencyKey?: string;
}

/** Options of `update`. */
export interface UpdateOptions extends RequestOptions {
  /** Compare-and-set: apply only if the state did not change after this offset (else `state_conflict`). */
  ifOffset?: number;
}

/** Which part of the log `history` reads. */
export interface HistoryQuery {
  /** First offset to read (1 is `started`). */
  fromOffset: number;
  /** Most events to return (node default and cap apply). */
  limit?: number;
}

/** Counters of what the client-side stream check did. */
export interface CollabStats {
  /** Events dropped because their offset was already applied. */
  duplicates: number;
  /** Events that skipped ahead (or came from another epoch) and were not applied. */
  gaps: number;
  /** Times the local copy was replaced because the node could not replay. */
  resyncs: number;
}

interface OffsetWaiter {
  offset: number;
  resolve(): void;
  reject(error: Error): void;
}

/** Items kept for the first `events()` iterator at most; beyond this it starts with a resync instead. */
const EARLY_LIMIT = 10_000;

/**
 * A joined collaboration: a local copy (state, members, offset) kept in step with the node, its event
 * stream (each event exactly once, in offset order, across reconnects) and the calls that act on it.
 * Get one from `MeshClient.joinCollaboration`.
 */
export class CollaborationHandle {
  /** The collaboration id. */
  readonly id: string;
  readonly #host: CollabHost;
  #topic = '';
  #role: RoleName = 'member';
  #replica: CollabReplica | undefined;
  #phase: 'joining' | 'live' | 'closed' = 'joining';
  #joinSeq = 0;
  #buffer: CollabEvent[] = [];
  #lastJoinAt = 0;
  #aheadOffset = 0;
  #epochMismatch = false;
  #forceFull = false;
  #recoveryTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #queues = new Set<AsyncQueue<CollabItem>>();
  #early: CollabItem[] | undefined = [];
  #earlyOverflow = false;
  readonly #waiters = new Set<OffsetWaiter>();
  #closeError: Error | undefined;
  #endedByNode = false;
  readonly #joined: Promise<void>;
  #settleJoined: { resolve(): void; reject(error: Error): void } | undefined;
  readonly #stats: CollabStats = { duplicates: 0, gaps: 0, resyncs: 0 };

  /** @internal Created by the client. */
  constructor(id: string, host: CollabHost) {
    this.id = id;
    this.#host = host;
    this.#joined = new Promise<void>((resolve, reject) => {
      this.#settleJoined = { resolve, reject };
    });
    // Rejection is observed through whenJoined(); never let it surface as unhandled.
    this.#joined.catch(() => {});
  }

  /** The collaboration's topic. */
  get topic(): string {
    return this.#topic;
  }

  /** This agent's role in it. */
  get role(): RoleName {
    return this.#role;
  }

  /** The shared state at `offset` (null before the first join completes). Treat as read-only. */
  get state(): Json {
    return this.#replica?.state ?? null;
  }

  /** Offset of the last event in the local copy. */
  get offset(): number {
    return this.#replica?.offset ?? 0;
  }

  /** The log's epoch. */
  get epoch(): string {
    return this.#replica?.epoch ?? '';
  }

  /** The local copy's position, as sent in `since` on a re-join. */
  get position(): Position | undefined {
    return this.#replica ? { epoch: this.#replica.epoch, offset: this.#replica.offset } : undefined;
  }

  /** Members by agentId, with role, online flag and presence status. */
  get members(): ReadonlyMap<string, Member> {
    return this.#replica?.members ?? new Map();
  }

  /** True once the collaboration has ended. */
  get ended(): boolean {
    return this.#endedByNode || (this.#replica?.ended ?? false);
  }

  /** True once the handle no longer follows the collaboration (left, ended, or client closed). */
  get closed(): boolean {
    return this.#phase === 'closed';
  }

  /** What the client-side stream check did so far. */
  get stats(): Readonly<CollabStats> {
    return this.#stats;
  }

  /**
   * The event stream, in offset order, each event once. The first iterator also gets everything since
   * the join; later ones start now. Ends after `ended` or `leave()`; throws if the client failed.
   */
  events(): AsyncIterable<CollabItem> {
    const queue: AsyncQueue<CollabItem> = new AsyncQueue(() => this.#queues.delete(queue));
    if (this.#early) {
      for (const item of this.#early) queue.push(item);
      this.#early = undefined;
    } else if (this.#earlyOverflow) {
      this.#earlyOverflow = false;
      if (this.#replica) queue.push(this.#resyncItem());
    }
    if (this.#phase !== 'closed') this.#queues.add(queue);
    else if (this.#closeError) queue.fail(this.#closeError);
    else queue.end();
    return queue;
  }

  /** Shares content with every member; resolves with its offset (and `duplicate` for a repeated key). */
  share(content: Json, options: ShareOptions = {}): Promise<CollabShareResult> {
    const { kind, idempotencyKey, ...request } = options;
    return this.#host.call(
      'collaboration/share',
      {
        collaborationId: this.id,
        content,
        ...(kind === undefined ? {} : { kind }),
        ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
      },
      request,
    );
  }

  /** Applies an RFC 6902 patch to the shared state; with `ifOffset`, only if unchanged since then. */
  update(patch: PatchOperation[], options: UpdateOptions = {}): Promise<OffsetResult> {
    const { ifOffset, ...request } = options;
    return this.#host.call(
      'collaboration/update',
      { collaborationId: this.id, patch, ...(ifOffset === undefined ? {} : { ifOffset }) },
      request,
    );
  }

  /** Sets this agent's presence status (e.g. `typing`, `idle`), with optional data. */
  setPresence(status: string, data?: Json, options?: RequestOptions): Promise<OffsetResult> {
    return this.#host.call(
      'collaboration/presence',
      { collaborationId: this.id, status, ...(data === undefined ? {} : { data }) },
      options,
    );
  }

  /** Reads logged events from `fromOffset` on. */
  history(query: HistoryQuery, options?: RequestOptions): Promise<CollabHistoryResult> {
    return this.#host.call(
      'collaboration/history',
      {
        collaborationId: this.id,
        fromOffset: query.fromOffset,
        ...(query.limit === undefined ? {} : { limit: query.limit }),
      },
      options,
    );
  }

  /** Leaves the collaboration; the handle closes and its iterators end. */
  async leave(options?: RequestOptions): Promise<OffsetResult> {
    try {
      const result = await this.#host.call('collaboration/leave', { collaborationId: this.id }, options);
      this.detach();
      return result;
    } catch (error) {
      if (error instanceof RpcError && !error.retryable) this.detach();
      throw error;
    }
  }

  /** Ends the collaboration for everyone (owner or moderator); further writes fail. */
  end(options?: RequestOptions): Promise<OffsetResult> {
    return this.#host.call('collaboration/end', { collaborationId: this.id }, options);
  }

  /** Resolves once the local copy has reached `offset`; rejects on timeout, abort, or when it never can. */
  waitForOffset(offset: number, options: RequestOptions = {}): Promise<void> {
    if (this.#replica && this.offset >= offset) return Promise.resolve();
    if (this.#phase === 'closed') return Promise.reject(this.#closedError(offset));
    let waiter!: OffsetWaiter;
    const reached = new Promise<void>((resolve, reject) => {
      waiter = { offset, resolve, reject };
    });
    this.#waiters.add(waiter);
    const timeoutMs = options.timeoutMs ?? this.#host.requestTimeoutMs;
    return bounded(reached, { ...options, timeoutMs }, `waitForOffset(${offset})`, () =>
      this.#waiters.delete(waiter),
    );
  }

  /** @internal Resolves after the first successful join; rejects if the handle closes first. */
  whenJoined(options: RequestOptions = {}): Promise<void> {
    if (this.#replica && this.#phase !== 'joining') return Promise.resolve();
    return bounded(this.#joined, options, 'collaboration/join');
  }

  /**
   * @internal Joins (or re-joins with `since` = the local position) through `request`. Events that
   * arrive meanwhile are held and checked once the result is in. A superseded join does nothing.
   */
  async join(request: JoinRequest, options?: RequestOptions): Promise<void> {
    if (this.#phase === 'closed') return;
    const seq = ++this.#joinSeq;
    this.#phase = 'joining';
    this.#clearRecovery();
    const replica = this.#replica;
    const since = replica && !this.#forceFull ? { epoch: replica.epoch, offset: replica.offset } : undefined;
    const result = await request(
      since ? { collaborationId: this.id, since } : { collaborationId: this.id },
      options,
    );
    if (seq !== this.#joinSeq || this.#phase !== 'joining') return;
    if (result.recovered && !(since && result.epoch === since.epoch && result.offset === since.offset)) {
      if (!since) throw new MeshError('protocol', `collaboration/join ${this.id}: recovered without since`);
      // The node claims a replay that does not start where we are: start over from a full copy.
      this.#forceFull = true;
      return this.join(request, options);
    }
    this.#forceFull = false;
    this.#topic = result.topic;
    this.#role = result.role;
    if (!result.recovered) {
      if (result.state === undefined || result.members === undefined) {
        throw new MeshError('protocol', `collaboration/join ${this.id}: no state in an unrecovered join`);
      }
      const snapshot = {
        epoch: result.epoch,
        offset: result.offset,
        state: result.state,
        members: result.members,
      };
      if (this.#replica) {
        this.#replica.reset(snapshot);
        this.#stats.resyncs++;
        this.#emit(this.#resyncItem());
      } else {
        this.#replica = new CollabReplica(snapshot);
      }
    }
    this.#phase = 'live';
    this.#lastJoinAt = Date.now();
    this.#aheadOffset = 0;
    this.#epochMismatch = false;
    this.#settleJoined?.resolve();
    this.#settleJoined = undefined;
    this.#settleWaiters();
    const buffered = this.#buffer;
    this.#buffer = [];
    for (const event of buffered) {
      if (this.closed) break;
      // A gap re-join may start while draining: deliver() then keeps the rest for after it.
      this.deliver(event);
    }
  }

  /** @internal An event from the node for this collaboration. */
  deliver(event: CollabEvent): void {
    if (this.#phase === 'closed') return;
    if (this.#phase === 'joining') {
      this.#buffer.push(event);
      return;
    }
    this.#ingest(event);
  }

  /** @internal Stops following the collaboration. With an error, iterators throw it. */
  detach(error?: Error): void {
    if (this.#phase === 'closed') return;
    if (error instanceof RpcError && error.reason === 'collaboration_ended') {
      this.#endedByNode = true;
      error = undefined;
    }
    this.#phase = 'closed';
    this.#closeError = error;
    this.#clearRecovery();
    this.#buffer = [];
    for (const queue of this.#queues) {
      if (error) queue.fail(error);
      else queue.end();
    }
    this.#queues.clear();
    for (const waiter of this.#waiters) waiter.reject(error ?? this.#closedError(waiter.offset));
    this.#waiters.clear();
    this.#settleJoined?.reject(
      error ?? new MeshError('closed', `collaboration ${this.id} closed before joining`),
    );
    this.#settleJoined = undefined;
    this.#host.forget(this);
  }

  #ingest(event: CollabEvent): void {
    const replica = this.#replica;
    if (!replica) return;
    const outcome = replica.apply(event);
    switch (outcome) {
      case 'applied':
        this.#emit(event);
        this.#settleWaiters();
        if (!this.#needsRecovery()) this.#clearRecovery();
        if (event.type === 'ended') this.detach();
        else this.#aboutMe(event);
        return;
      case 'duplicate':
        this.#stats.duplicates++;
        return;
      case 'gap':
        this.#stats.gaps++;
        if (event.epoch !== replica.epoch) this.#epochMismatch = true;
        else this.#aheadOffset = Math.max(this.#aheadOffset, event.offset);
        this.#scheduleRecovery();
        return;
      default:
        assertNever(outcome);
    }
  }

  /** Follows this agent's own role changes, and stops once it is removed (the node stops the stream too). */
  #aboutMe(event: CollabEvent): void {
    const data = event.data as { agentId?: unknown; role?: unknown; reason?: unknown } | null;
    const me = this.#host.agentId?.();
    if (me === undefined || data?.agentId !== me) return;
    if (event.type === 'role') {
      const role = this.#replica?.members.get(me)?.role;
      if (role) this.#role = role;
    } else if (event.type === 'left' && data.reason === 'removed') {
      this.detach(RpcError.of('Forbidden', `removed from collaboration ${this.id}`, { rule: 'removed' }));
    }
  }

  #needsRecovery(): boolean {
    return this.#epochMismatch || this.#aheadOffset > (this.#replica?.offset ?? 0);
  }

  #scheduleRecovery(): void {
    if (this.#recoveryTimer !== undefined || this.#phase !== 'live') return;
    // Right after a join, events from before it may still be in flight: give the new stream a moment.
    const waitMs = this.#lastJoinAt + this.#host.recoveryGraceMs - Date.now();
    if (waitMs <= 0) {
      this.#recover();
      return;
    }
    this.#recoveryTimer = setTimeout(() => {
      this.#recoveryTimer = undefined;
      if (this.#phase === 'live' && this.#needsRecovery()) this.#recover();
    }, waitMs);
  }

  #recover(): void {
    const request = this.#host.joinNow();
    if (!request) return;
    this.join(request).catch((error: unknown) => this.#host.joinFailed(this, error));
  }

  #clearRecovery(): void {
    if (this.#recoveryTimer !== undefined) clearTimeout(this.#recoveryTimer);
    this.#recoveryTimer = undefined;
  }

  #emit(item: CollabItem): void {
    if (this.#early) {
      if (this.#early.length < EARLY_LIMIT) this.#early.push(item);
      else {
        this.#early = undefined;
        this.#earlyOverflow = true;
      }
    }
    for (const queue of this.#queues) queue.push(item);
  }

  #resyncItem(): CollabResync {
    const snap = this.#replica!.snapshot();
    return {
      type: 'resync',
      collaborationId: this.id,
      epoch: snap.epoch,
      offset: snap.offset,
      state: snap.state,
      members: [...snap.members],
    };
  }

  #settleWaiters(): void {
    const offset = this.offset;
    for (const waiter of this.#waiters) {
      if (offset < waiter.offset) continue;
      this.#waiters.delete(waiter);
      waiter.resolve();
    }
  }

  #closedError(offset: number): MeshError {
    return new MeshError(
      'closed',
      `collaboration ${this.id} ${this.ended ? 'ended' : 'closed'} at offset ${this.offset}, before offset ${offset}`,
      this.#closeError ? { cause: this.#closeError } : undefined,
    );
  }
}
