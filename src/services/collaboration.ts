import {
  type CollabHistoryResult,
  type CollabInfo,
  type CollabJoinResult,
  type CollabShareResult,
  type CollabSummary,
  type Json,
  type OffsetResult,
  type RoleName,
  RpcError,
} from '@a2a-mesh/protocol';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/auditLog.js';
import { type Bus, type KvBucket, KvConflictError } from '../bus/bus.js';
import type { FannedEvent } from '../collab/events.js';
import {
  failingOperation,
  IDEMPOTENCY_WINDOW_MS,
  idempotencyKey,
  type LogRecord,
  memberList,
  patched,
  type StartedData,
} from '../collab/fold.js';
import { CollabReplica, collabLog, type ReplicaOptions } from '../collab/replica.js';
import type { MemberStream, StreamCounters } from '../collab/stream.js';
import { quotaExceeded } from '../limits/quotas.js';
import type { AccessPolicy } from '../policy/accessPolicy.js';
import type { CallContext, Dispatcher } from '../rpc/dispatcher.js';
import type { Session } from '../sessions/session.js';
import { Packed, pack, unpack } from '../util/binary.js';
import { newId } from '../util/ids.js';
import { busError } from './busErrors.js';
import { TtlPresence } from './ttlPresence.js';

/** Collaboration settings. */
export interface CollaborationOptions extends ReplicaOptions {
  /** Largest shared state, as JSON bytes (default 1 MiB). */
  maxStateBytes: number;
  /** Close replicas without local members after this long (ms, default 30000). */
  idleReplicaMs: number;
  /** This node's id, for member presence entries. */
  nodeId: string;
  /** Member presence TTL (ms): a crashed node's members are marked `node_lost` within about 1.5× this. */
  presenceTtlMs: number;
  /** Most members (any role) in one collaboration (default 1000). */
  maxMembers: number;
}

/** The access rules and the audit trail the service answers to. */
export interface CollaborationSecurity {
  policy: AccessPolicy;
  audit: AuditLog;
}

interface CollabMeta {
  topic: string;
  visibility: 'public' | 'private';
  createdBy: string;
  createdAt: number;
  invited: string[];
  /** Removed and not invited since (absent before removals existed). */
  removed?: string[];
  ended: boolean;
}

/**
 * `collaboration/*`: start, join (exact replay or a fresh state, never partial), share (idempotent),
 * update (JSON Patch with compare-and-set), presence, get, history, list, leave, end.
 */
export class CollaborationService {
  readonly #replicas = new Map<string, Promise<CollabReplica | undefined>>();
  readonly #sweeper: NodeJS.Timeout;
  readonly #presenceSweeper: NodeJS.Timeout;
  readonly counters: StreamCounters = { duplicatesDropped: 0, gapsRecovered: 0, eventsSent: 0 };
  readonly #pendingWrites = new Set<Promise<unknown>>();
  #closing = false;

  private constructor(
    readonly bus: Bus,
    readonly snapshots: KvBucket,
    readonly meta: KvBucket,
    readonly members: TtlPresence,
    readonly options: CollaborationOptions,
    readonly log: Logger,
    readonly onEvent: (ev: FannedEvent) => void,
    readonly security: CollaborationSecurity,
  ) {
    this.#sweeper = setInterval(() => this.#sweep(), Math.max(1000, options.idleReplicaMs / 2));
    this.#sweeper.unref();
    this.#presenceSweeper = setInterval(
      () => void this.#sweepLostMembers(),
      Math.max(50, options.presenceTtlMs / 2),
    );
    this.#presenceSweeper.unref();
  }

  static async create(
    bus: Bus,
    options: CollaborationOptions,
    log: Logger,
    security: CollaborationSecurity,
    onEvent: (ev: FannedEvent) => void = () => {},
  ): Promise<CollaborationService> {
    const [snapshots, meta, presence] = await Promise.all([
      bus.kv('snapshots'),
      bus.kv('collabs'),
      TtlPresence.create(bus, 'members', options.nodeId, options.presenceTtlMs, log),
    ]);
    return new CollaborationService(bus, snapshots, meta, presence, options, log, onEvent, security);
  }

  register(d: Dispatcher): void {
    d.register('collaboration/start', (p, ctx) => this.start(p, ctx));
    d.register('collaboration/join', (p, ctx) => this.join(p.collaborationId, p.since, ctx));
    d.register('collaboration/share', (p, ctx) => this.share(p, ctx));
    d.register('collaboration/update', (p, ctx) => this.update(p, ctx));
    d.register('collaboration/presence', (p, ctx) => this.presence(p, ctx));
    d.register('collaboration/get', (p, ctx) => this.get(p.collaborationId, ctx));
    d.register('collaboration/history', (p, ctx) => this.history(p, ctx));
    d.register('collaboration/list', (p, ctx) => this.list(p?.mine ?? false, ctx));
    d.register('collaboration/leave', (p, ctx) => this.leave(p.collaborationId, ctx));
    d.register('collaboration/end', (p, ctx) => this.end(p.collaborationId, ctx));
    d.register('collaboration/invite', (p, ctx) => this.invite(p, ctx));
    d.register('collaboration/remove', (p, ctx) => this.remove(p, ctx));
  }

  /** Open replicas (for metrics). */
  get replicaCount(): number {
    return this.#replicas.size;
  }

  /** The replica of `id`, opened on first use. Throws CollaborationNotFound. */
  async replica(id: string): Promise<CollabReplica> {
    let p = this.#replicas.get(id);
    if (p) {
      const r = await p.catch(() => undefined);
      if (r?.failed) {
        this.#replicas.delete(id);
        p = undefined;
      }
    }
    if (!p) {
      p = CollabReplica.open(
        id,
        this.bus,
        this.snapshots,
        this.options,
        {
          counters: this.counters,
          onEvent: (r, ev) => this.#afterEvent(r, ev),
          onStreamFailure: (stream, error) => this.#streamFailed(stream, error),
        },
        this.log,
      );
      this.#replicas.set(id, p);
      p.then(
        (r) => {
          if (!r) this.#replicas.delete(id);
        },
        () => this.#replicas.delete(id),
      );
    }
    let r: CollabReplica | undefined;
    try {
      r = await p;
    } catch (error) {
      throw busError(error);
    }
    if (!r)
      throw RpcError.of('CollaborationNotFound', `collaboration ${id} does not exist`, {
        collaborationId: id,
      });
    return r;
  }

  async start(
    p: {
      topic: string;
      state?: Json | undefined;
      visibility?: 'public' | 'private' | undefined;
      members?: { agentId: string; role?: 'moderator' | 'member' | 'observer' | undefined }[] | undefined;
      metadata?: Record<string, Json> | undefined;
    },
    ctx: CallContext,
  ): Promise<{ collaborationId: string; epoch: string; offset: number }> {
    const state = p.state ?? {};
    this.#checkStateSize(state);
    const members: StartedData['members'] = [{ agentId: ctx.agentId, role: 'owner' }];
    for (const m of p.members ?? []) {
      if (m.agentId !== ctx.agentId && !members.some((x) => x.agentId === m.agentId)) {
        members.push({ agentId: m.agentId, role: m.role ?? 'member' });
      }
    }
    if (members.length > this.options.maxMembers) {
      throw this.#membersQuota(ctx.agentId);
    }
    const data: StartedData = {
      topic: p.topic,
      visibility: p.visibility ?? 'public',
      metadata: p.metadata ?? {},
      state,
      members,
    };
    const record: LogRecord = {
      type: 'started',
      from: ctx.agentId,
      at: Date.now(),
      data: data as unknown as Json,
    };
    const id = newId();
    try {
      await this.bus.append(collabLog(id), new Packed(record), { expectedLastOffset: 0 });
      const meta: CollabMeta = {
        topic: p.topic,
        visibility: data.visibility,
        createdBy: ctx.agentId,
        createdAt: record.at,
        invited: members.map((m) => m.agentId),
        ended: false,
      };
      await this.meta.put(id, pack(meta));
      const info = await this.bus.info(collabLog(id));
      this.log.info({ collaborationId: id, agentId: ctx.agentId, topic: p.topic }, 'collaboration started');
      this.security.audit.record({
        event: 'collaboration_started',
        agentId: ctx.agentId,
        collaborationId: id,
        visibility: data.visibility,
      });
      return { collaborationId: id, epoch: info.epoch, offset: 1 };
    } catch (error) {
      throw busError(error);
    }
  }

  async join(
    id: string,
    since: { epoch: string; offset: number } | undefined,
    ctx: CallContext,
  ): Promise<CollabJoinResult> {
    const r = await this.replica(id);
    const { agentId, session } = ctx;
    const previous = session.collabs.get(id);
    if (previous) {
      // A re-join on the same session restarts its stream from the requested position.
      this.#detachStream(r, previous.stream);
    }
    r.joining.set(agentId, (r.joining.get(agentId) ?? 0) + 1);
    const doneJoining = () => {
      const n = (r.joining.get(agentId) ?? 1) - 1;
      if (n > 0) r.joining.set(agentId, n);
      else r.joining.delete(agentId);
    };
    let role: RoleName;
    try {
      // Presence first: other nodes must never see this member online without an entry.
      await this.members.attached(`${id}.${agentId}`);
      role = await this.#joinWrite(r, id, agentId);
    } catch (error) {
      doneJoining();
      this.members.detached(`${id}.${agentId}`);
      throw error;
    }
    let recovered = false;
    if (since && since.epoch === r.epoch && since.offset <= r.offset && since.offset >= 0) {
      recovered = await r.canReplayFrom(since.offset).catch(() => false);
    }
    // From here to the return everything is synchronous: the result and the stream start agree.
    const base = { collaborationId: id, topic: r.state.topic, epoch: r.epoch, role };
    let next: number;
    let result: CollabJoinResult;
    if (recovered && since) {
      next = since.offset + 1;
      result = { ...base, offset: since.offset, recovered: true };
    } else {
      next = r.offset + 1;
      result = {
        ...base,
        offset: r.offset,
        recovered: false,
        state: structuredClone(r.state.board),
        members: memberList(r.state),
      };
    }
    ctx.afterResponse(() => {
      doneJoining();
      if (session.closed) {
        this.members.detached(`${id}.${agentId}`);
        this.#markOffline(r, agentId, session);
        return;
      }
      const stream = r.attach(session, agentId, next);
      session.collabs.set(id, { stream });
    });
    return result;
  }

  #joinWrite(r: CollabReplica, id: string, agentId: string): Promise<RoleName> {
    return r.write<RoleName>((state) => {
      if (state.ended) throw ended(id);
      const role = this.security.policy.checkJoin(state, agentId, id);
      const m = state.members.get(agentId);
      if (m?.online) return { done: m.role };
      if (!m && state.members.size >= this.options.maxMembers) throw this.#membersQuota(agentId);
      return { record: record('joined', agentId, { agentId, role }), result: () => role };
    });
  }

  async share(
    p: {
      collaborationId: string;
      content: Json;
      kind?: string | undefined;
      idempotencyKey?: string | undefined;
    },
    ctx: CallContext,
  ): Promise<CollabShareResult> {
    const r = await this.#joined(p.collaborationId, ctx);
    const data: Record<string, Json> = { content: p.content, kind: p.kind ?? 'message' };
    const key = p.idempotencyKey;
    if (key === undefined) {
      this.security.policy.checkWrite(r.state, ctx.agentId, p.collaborationId, 'collaboration/share');
      return { offset: await r.append(record('shared', ctx.agentId, data)), duplicate: false };
    }
    data.idempotencyKey = key;
    const now = Date.now();
    return r.write<CollabShareResult>((state) => {
      this.security.policy.checkWrite(state, ctx.agentId, p.collaborationId, 'collaboration/share');
      const seen = state.idempotency.get(idempotencyKey(ctx.agentId, key));
      if (seen && now - seen.at < IDEMPOTENCY_WINDOW_MS)
        return { done: { offset: seen.offset, duplicate: true } };
      return {
        record: record('shared', ctx.agentId, data, now),
        result: (offset) => ({ offset, duplicate: false }),
      };
    });
  }

  async update(
    p: { collaborationId: string; patch: Parameters<typeof patched>[1]; ifOffset?: number | undefined },
    ctx: CallContext,
  ): Promise<OffsetResult> {
    const r = await this.#joined(p.collaborationId, ctx);
    return r.write<OffsetResult>((state) => {
      this.security.policy.checkWrite(state, ctx.agentId, p.collaborationId, 'collaboration/update');
      if (p.ifOffset !== undefined && state.stateOffset > p.ifOffset) {
        throw RpcError.of(
          'StateConflict',
          `state changed at offset ${state.stateOffset}, after ${p.ifOffset}`,
          {
            currentOffset: state.offset,
            stateOffset: state.stateOffset,
          },
        );
      }
      let next: Json;
      try {
        next = patched(state.board, p.patch);
      } catch (error) {
        const e = error as { message?: string; name?: string };
        throw RpcError.of(
          'InvalidPatch',
          `patch does not apply: ${String(e.message ?? error).split('\n')[0]}`,
          {
            operation: failingOperation(state.board, p.patch),
            ...(typeof e.name === 'string' ? { detail: e.name } : {}),
          },
        );
      }
      this.#checkStateSize(next);
      return {
        record: record('state', ctx.agentId, { patch: p.patch as unknown as Json }),
        result: (offset) => ({ offset }),
      };
    });
  }

  async presence(
    p: { collaborationId: string; status: string; data?: Json | undefined },
    ctx: CallContext,
  ): Promise<OffsetResult> {
    const r = await this.#joined(p.collaborationId, ctx);
    this.security.policy.checkPresence(r.state, ctx.agentId, p.collaborationId);
    const data: Record<string, Json> = { agentId: ctx.agentId, status: p.status };
    if (p.data !== undefined) data.data = p.data;
    return { offset: await r.append(record('presence', ctx.agentId, data)) };
  }

  async get(id: string, ctx: CallContext): Promise<CollabInfo> {
    const r = await this.replica(id);
    this.security.policy.checkRead(r.state, ctx.agentId, id, 'collaboration/get');
    const s = r.state;
    return {
      collaborationId: id,
      topic: s.topic,
      visibility: s.visibility,
      metadata: s.metadata,
      createdBy: s.createdBy,
      createdAt: s.createdAt,
      epoch: r.epoch,
      offset: s.offset,
      stateOffset: s.stateOffset,
      state: structuredClone(s.board),
      members: memberList(s),
      ended: s.ended,
    };
  }

  async history(
    p: { collaborationId: string; fromOffset: number; limit?: number | undefined },
    ctx: CallContext,
  ): Promise<CollabHistoryResult> {
    const r = await this.replica(p.collaborationId);
    this.security.policy.checkRead(r.state, ctx.agentId, p.collaborationId, 'collaboration/history');
    const head = r.offset;
    const info = await this.bus.info(r.log).catch((e: unknown) => {
      throw busError(e);
    });
    const from = Math.max(p.fromOffset, info.firstOffset);
    const to = Math.min(head, from + (p.limit ?? 100) - 1);
    const events = from <= to ? await r.readRange(from, to) : [];
    return {
      epoch: r.epoch,
      firstOffset: info.firstOffset,
      lastOffset: head,
      events: events.map((e) => e.event),
    };
  }

  async list(mine: boolean, ctx: CallContext): Promise<{ collaborations: CollabSummary[] }> {
    try {
      const keys = await this.meta.keys();
      const out: CollabSummary[] = [];
      for (const key of keys) {
        const entry = await this.meta.get(key);
        if (!entry) continue;
        const m = unpack<CollabMeta>(entry.value);
        if (!this.security.policy.mayList(m, ctx.agentId, ctx.session.collabs.has(key), mine)) continue;
        out.push({
          collaborationId: key,
          topic: m.topic,
          visibility: m.visibility,
          createdBy: m.createdBy,
          createdAt: m.createdAt,
          ended: m.ended,
        });
      }
      out.sort((a, b) => a.createdAt - b.createdAt);
      return { collaborations: out };
    } catch (error) {
      throw busError(error);
    }
  }

  async leave(id: string, ctx: CallContext): Promise<OffsetResult> {
    const r = await this.replica(id);
    const agentId = ctx.agentId;
    return r.write<OffsetResult>((state) => {
      if (!state.members.has(agentId)) return { done: { offset: state.offset } };
      return {
        record: record('left', agentId, { agentId, reason: 'leave' }),
        result: (offset) => ({ offset }),
      };
    });
  }

  async end(id: string, ctx: CallContext): Promise<OffsetResult> {
    const r = await this.replica(id);
    let wrote = false;
    const offset = await r.write<number>((state) => {
      this.security.policy.checkEnd(state, ctx.agentId, id);
      if (state.ended) return { done: state.offset };
      return {
        record: record('ended', ctx.agentId, {}),
        result: (o) => {
          wrote = true;
          return o;
        },
      };
    });
    if (wrote)
      this.security.audit.record({ event: 'collaboration_ended', agentId: ctx.agentId, collaborationId: id });
    await this.#updateMeta(id, (m) => ({ ...m, ended: true }));
    return { offset };
  }

  /** Invites `agentId` with `role` (default member), or changes its role: owner and moderators only. */
  async invite(
    p: { collaborationId: string; agentId: string; role?: Exclude<RoleName, 'owner'> | undefined },
    ctx: CallContext,
  ): Promise<OffsetResult> {
    const id = p.collaborationId;
    const target = p.agentId;
    const role = p.role ?? 'member';
    const r = await this.replica(id);
    let previous: RoleName | undefined;
    let wrote = false;
    const offset = await r.write<number>((state) => {
      this.security.policy.checkInvite(state, ctx.agentId, target, role, id);
      previous = state.members.get(target)?.role;
      if (previous === role) return { done: state.offset };
      if (previous === undefined && state.members.size >= this.options.maxMembers) {
        throw this.#membersQuota(ctx.agentId);
      }
      const data: Record<string, Json> = { agentId: target, role };
      if (previous !== undefined) data.previousRole = previous;
      return {
        record: record('role', ctx.agentId, data),
        result: (o) => {
          wrote = true;
          return o;
        },
      };
    });
    if (wrote) {
      this.security.audit.record({
        event: 'member_invited',
        agentId: ctx.agentId,
        collaborationId: id,
        member: target,
        role,
        ...(previous === undefined ? {} : { previousRole: previous }),
      });
      await this.#updateMeta(id, (m) => ({
        ...m,
        invited: m.invited.includes(target) ? m.invited : [...m.invited, target],
        removed: (m.removed ?? []).filter((a) => a !== target),
      }));
    }
    return { offset };
  }

  /**
   * Removes a member: owner (anyone else) and moderators (members, observers). Every stream of the
   * removed agent stops at the `left` event (reason `removed`), on every node; it may not join or read
   * again until invited.
   */
  async remove(p: { collaborationId: string; agentId: string }, ctx: CallContext): Promise<OffsetResult> {
    const id = p.collaborationId;
    const target = p.agentId;
    const r = await this.replica(id);
    const offset = await r.write<number>((state) => {
      this.security.policy.checkRemove(state, ctx.agentId, target, id);
      return {
        record: record('left', ctx.agentId, { agentId: target, reason: 'removed', by: ctx.agentId }),
        result: (o) => o,
      };
    });
    this.security.audit.record({
      event: 'member_removed',
      agentId: ctx.agentId,
      collaborationId: id,
      member: target,
    });
    await this.#updateMeta(id, (m) => ({
      ...m,
      invited: m.invited.filter((a) => a !== target),
      removed: [...(m.removed ?? []).filter((a) => a !== target), target],
    }));
    return { offset };
  }

  /** Read-modify-write of the listing entry (best effort: access is decided on the log's state). */
  async #updateMeta(id: string, change: (m: CollabMeta) => CollabMeta): Promise<void> {
    for (let attempt = 0; attempt < 8; attempt++) {
      try {
        const entry = await this.meta.get(id);
        if (!entry) return;
        await this.meta.update(id, pack(change(unpack<CollabMeta>(entry.value))), entry.revision);
        return;
      } catch (error) {
        if (attempt === 7 || !(error instanceof KvConflictError)) {
          this.log.warn({ err: error, collaborationId: id }, 'could not update the collaboration listing');
          return;
        }
      }
    }
  }

  #membersQuota(agentId: string): RpcError {
    const limit = this.options.maxMembers;
    this.security.audit.record({
      event: 'quota_exceeded',
      agentId,
      quota: 'members_per_collaboration',
      limit,
    });
    return quotaExceeded('members_per_collaboration', limit, `a collaboration has at most ${limit} members`);
  }

  /** A session closed: detach its streams and, where it was the agent's last, mark the agent offline. */
  sessionClosed(session: Session): void {
    const agentId = session.agentId;
    for (const [id, joined] of session.collabs) {
      const p = this.#replicas.get(id);
      if (!p) continue;
      const done = p
        .then((r) => {
          if (!r) return;
          this.#detachStream(r, joined.stream);
          if (agentId !== undefined) this.#markOffline(r, agentId, session);
        })
        .catch(() => {})
        .finally(() => this.#pendingWrites.delete(done));
      this.#pendingWrites.add(done);
    }
    session.collabs.clear();
  }

  #markOffline(r: CollabReplica, agentId: string, session: Session): void {
    if (this.#closing || r.failed) return;
    const stillHere = () => {
      if (r.joining.has(agentId)) return true;
      for (const s of r.streams()) if (s.agentId === agentId && s.sink !== session && !s.closed) return true;
      return false;
    };
    if (stillHere()) return;
    const write = this.members
      .elsewhere(`${r.id}.${agentId}`)
      .then(async (nodes) => {
        // Still attached through another node (multi-device): that node reports its own disconnect.
        if (nodes.length > 0) return;
        await r.write((state) => {
          const m = state.members.get(agentId);
          if (stillHere() || !m?.online) return { done: undefined };
          return {
            record: record('left', agentId, { agentId, reason: 'disconnect' }),
            result: () => undefined,
          };
        });
      })
      .catch((error: unknown) =>
        this.log.warn({ err: error, collaborationId: r.id, agentId }, 'could not record disconnect'),
      )
      .finally(() => this.#pendingWrites.delete(write));
    this.#pendingWrites.add(write);
  }

  #afterEvent(r: CollabReplica, ev: FannedEvent): void {
    const { type, data } = ev.event;
    if (type === 'ended') {
      for (const s of [...r.streams()]) this.#detachStream(r, s);
    } else if (type === 'left') {
      const d = data as { agentId: string; reason: string };
      if (d.reason === 'leave' || d.reason === 'removed') {
        for (const s of [...r.streams()]) if (s.agentId === d.agentId) this.#detachStream(r, s);
      } else if (this.members.here(`${r.id}.${d.agentId}`) && !this.#closing) {
        // Marked offline (e.g. our presence entry lapsed during a bus outage) while still attached here.
        this.#rejoin(r, d.agentId);
      }
    }
    this.onEvent(ev);
  }

  #rejoin(r: CollabReplica, agentId: string): void {
    r.write((state) => {
      const m = state.members.get(agentId);
      if (!m || m.online || !this.members.here(`${r.id}.${agentId}`)) return { done: undefined };
      return { record: record('joined', agentId, { agentId, role: m.role }), result: () => undefined };
    }).catch((error: unknown) =>
      this.log.warn({ err: error, collaborationId: r.id, agentId }, 'could not restore presence'),
    );
  }

  #detachStream(r: CollabReplica, stream: MemberStream): void {
    if (!stream.closed || r.hasStream(stream)) {
      r.detach(stream);
      this.members.detached(`${r.id}.${stream.agentId}`);
    }
    const session = stream.sink as Session;
    if (session.collabs.get(r.id)?.stream === stream) session.collabs.delete(r.id);
  }

  /** Marks members `node_lost` whose hosting node stopped refreshing their presence (crash, partition). */
  async #sweepLostMembers(): Promise<void> {
    if (this.#closing) return;
    for (const p of [...this.#replicas.values()]) {
      const r = await p.catch(() => undefined);
      if (!r || r.failed || r.state.ended) continue;
      // Candidates are taken before the listing: a member's entry is written before its `joined`,
      // so anyone online now is in the listing unless its node stopped refreshing.
      const candidates = [...r.state.members]
        .filter(
          ([agentId, m]) => m.online && !this.members.here(`${r.id}.${agentId}`) && !r.joining.has(agentId),
        )
        .map(([agentId]) => agentId);
      if (candidates.length === 0) continue;
      const hostedElsewhere = (hosted: Map<string, string[]>, agentId: string) =>
        (hosted.get(`${r.id}.${agentId}`) ?? []).some((n) => n !== this.members.nodeId);
      // The watched copy of the presence bucket answers without a server round trip; only members it
      // does not show (lost, or written a moment ago) are checked with a listing for the collaboration.
      const seen = this.members.seen(r.id);
      const missing = seen ? candidates.filter((agentId) => !hostedElsewhere(seen, agentId)) : candidates;
      if (missing.length === 0) continue;
      let hosted: Map<string, string[]>;
      try {
        hosted = await this.members.locate(r.id);
      } catch {
        return; // bus unavailable: decide nothing now
      }
      for (const agentId of missing) {
        if (hostedElsewhere(hosted, agentId)) continue;
        await r
          .write((state) => {
            const cur = state.members.get(agentId);
            if (!cur?.online || this.members.here(`${r.id}.${agentId}`) || r.joining.has(agentId))
              return { done: undefined };
            return {
              record: record('left', agentId, { agentId, reason: 'node_lost' }),
              result: () => undefined,
            };
          })
          .catch((error: unknown) =>
            this.log.warn({ err: error, collaborationId: r.id, agentId }, 'could not record lost member'),
          );
      }
    }
  }

  #streamFailed(stream: MemberStream, error: unknown): void {
    const session = stream.sink as Session;
    session.log.warn(
      { err: error },
      'collaboration stream could not be filled; closing session so it recovers',
    );
    session.close(1011, 'stream recovery failed');
  }

  async #joined(id: string, ctx: CallContext): Promise<CollabReplica> {
    const r = await this.replica(id);
    if (!ctx.session.collabs.has(id)) {
      throw RpcError.of('NotAMember', `join collaboration ${id} on this session first`, {
        collaborationId: id,
      });
    }
    return r;
  }

  #checkStateSize(state: Json): void {
    const size = Buffer.byteLength(JSON.stringify(state));
    if (size > this.options.maxStateBytes) {
      throw RpcError.of('PayloadTooLarge', `state of ${size} bytes exceeds ${this.options.maxStateBytes}`, {
        limitBytes: this.options.maxStateBytes,
      });
    }
  }

  #sweep(): void {
    const now = Date.now();
    for (const [id, p] of this.#replicas) {
      void p.then((r) => {
        if (r && r.streamCount === 0 && r.idleSince > 0 && now - r.idleSince > this.options.idleReplicaMs) {
          if (this.#replicas.get(id) === p) this.#replicas.delete(id);
          r.close();
        }
      });
    }
  }

  /** Resolves when the disconnect events already started have been written (or failed). */
  async settle(): Promise<void> {
    while (this.#pendingWrites.size > 0) await Promise.allSettled([...this.#pendingWrites]);
  }

  /** Marks the service as shutting down: no more disconnect events are written. */
  beginShutdown(): void {
    this.#closing = true;
  }

  async close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#sweeper);
    clearInterval(this.#presenceSweeper);
    await this.members.close();
    for (const p of this.#replicas.values())
      void p.then(
        (r) => r?.close(),
        () => {},
      );
    this.#replicas.clear();
  }
}

function record(type: LogRecord['type'], from: string, data: Json, at = Date.now()): LogRecord {
  return { type, from, at, data };
}

function ended(id: string): RpcError {
  return RpcError.of('CollaborationEnded', `collaboration ${id} has ended`, { collaborationId: id });
}
