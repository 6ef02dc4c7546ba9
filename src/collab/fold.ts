import type {
  EventType,
  Json,
  LeftReason,
  Member,
  PatchOperation,
  RoleName,
  Visibility,
} from '@a2a-mesh/protocol';
import fastJsonPatch from 'fast-json-patch';

/** How long an idempotency key is remembered, measured on the log's own clock (event `at`). */
export const IDEMPOTENCY_WINDOW_MS = 5 * 60_000;

/** One collaboration log record as stored on the bus (offset comes from the log). */
export interface LogRecord {
  type: EventType;
  from: string;
  at: number;
  data: Json;
}

export interface MemberState {
  role: RoleName;
  online: boolean;
  status?: string;
}

/**
 * A collaboration's state: the fold of its log up to `offset`. Every node folds the same log with this
 * code, so every node computes the same state for the same offset.
 */
export interface CollabState {
  offset: number;
  topic: string;
  visibility: Visibility;
  metadata: Record<string, Json>;
  createdBy: string;
  createdAt: number;
  board: Json;
  stateOffset: number;
  members: Map<string, MemberState>;
  /** Agents removed by an owner or moderator and not invited since: they may not join or read. */
  removed: Set<string>;
  ended: boolean;
  /** `${agentId}\u0000${key}` → offset of the share that used it; insertion-ordered by log order. */
  idempotency: Map<string, { offset: number; at: number }>;
}

/** An empty state, before offset 1. */
export function emptyState(): CollabState {
  return {
    offset: 0,
    topic: '',
    visibility: 'public',
    metadata: {},
    createdBy: '',
    createdAt: 0,
    board: {},
    stateOffset: 0,
    members: new Map(),
    removed: new Set(),
    ended: false,
    idempotency: new Map(),
  };
}

export interface StartedData {
  topic: string;
  visibility: Visibility;
  metadata: Record<string, Json>;
  state: Json;
  members: { agentId: string; role: RoleName }[];
}

/** The key under which a sender's idempotency key is remembered. */
export function idempotencyKey(agentId: string, key: string): string {
  return `${agentId}\u0000${key}`;
}

/** Applies RFC 6902 `patch` to a copy of `doc`; throws the library's error when it does not apply. */
export function patched(doc: Json, patch: PatchOperation[]): Json {
  return fastJsonPatch.applyPatch(doc, patch as fastJsonPatch.Operation[], true, false).newDocument as Json;
}

/** Index of the first operation of `patch` that does not apply to `doc` (the library reports 0 for many). */
export function failingOperation(doc: Json, patch: PatchOperation[]): number {
  let current = structuredClone(doc);
  for (let i = 0; i < patch.length; i++) {
    try {
      current = fastJsonPatch.applyOperation(current, patch[i] as fastJsonPatch.Operation, true, true)
        .newDocument as Json;
    } catch {
      return i;
    }
  }
  return patch.length - 1;
}

/**
 * Applies the record at `offset` to `state` in place. Deterministic: depends only on the state and the
 * record. A record that cannot apply (a patch that fails) changes nothing but the offset.
 */
export function applyRecord(state: CollabState, offset: number, record: LogRecord): void {
  state.offset = offset;
  const data = record.data as Record<string, Json>;
  switch (record.type) {
    case 'started': {
      const d = record.data as unknown as StartedData;
      state.topic = d.topic;
      state.visibility = d.visibility;
      state.metadata = d.metadata;
      state.board = d.state;
      state.stateOffset = offset;
      state.createdBy = record.from;
      state.createdAt = record.at;
      for (const m of d.members) state.members.set(m.agentId, { role: m.role, online: false });
      return;
    }
    case 'shared': {
      const key = data.idempotencyKey;
      if (typeof key === 'string') {
        state.idempotency.set(idempotencyKey(record.from, key), { offset, at: record.at });
        const cutoff = record.at - IDEMPOTENCY_WINDOW_MS;
        for (const [k, v] of state.idempotency) {
          if (v.at >= cutoff) break;
          state.idempotency.delete(k);
        }
      }
      return;
    }
    case 'state': {
      try {
        state.board = fastJsonPatch.applyPatch(
          state.board,
          data.patch as unknown as fastJsonPatch.Operation[],
          true,
          false,
        ).newDocument as Json;
        state.stateOffset = offset;
      } catch {
        // Validated before append; a record that still fails is a deterministic no-op on every node.
      }
      return;
    }
    case 'joined': {
      const agentId = String(data.agentId);
      const prev = state.members.get(agentId);
      state.members.set(agentId, { role: (data.role as RoleName) ?? prev?.role ?? 'member', online: true });
      return;
    }
    case 'left': {
      const agentId = String(data.agentId);
      const reason = data.reason as LeftReason;
      if (reason === 'leave' || reason === 'removed') {
        state.members.delete(agentId);
        if (reason === 'removed') state.removed.add(agentId);
      } else {
        const m = state.members.get(agentId);
        if (m) {
          m.online = false;
          delete m.status;
        }
      }
      return;
    }
    case 'role': {
      // An invite (not a member yet) or a role change; either way the agent is no longer removed.
      const agentId = String(data.agentId);
      const role = data.role as RoleName;
      const m = state.members.get(agentId);
      if (m) m.role = role;
      else state.members.set(agentId, { role, online: false });
      state.removed.delete(agentId);
      return;
    }
    case 'presence': {
      const m = state.members.get(String(data.agentId));
      if (m) m.status = String(data.status);
      return;
    }
    case 'ended':
      state.ended = true;
      return;
    default:
      return;
  }
}

/** Members as the wire shows them, in the order they first joined. */
export function memberList(state: CollabState): Member[] {
  const out: Member[] = [];
  for (const [agentId, m] of state.members) {
    const member: Member = { agentId, role: m.role, online: m.online };
    if (m.status !== undefined) member.status = m.status;
    out.push(member);
  }
  return out;
}

/** A plain-object copy of a state, for snapshots (maps as entry arrays). */
export type SnapshotData = Omit<CollabState, 'members' | 'idempotency' | 'removed'> & {
  members: [string, MemberState][];
  idempotency: [string, { offset: number; at: number }][];
  /** Absent in snapshots written before removals existed. */
  removed?: string[];
};

export function toSnapshot(state: CollabState): SnapshotData {
  return {
    ...state,
    board: structuredClone(state.board),
    members: [...state.members].map(([k, v]) => [k, { ...v }]),
    idempotency: [...state.idempotency].map(([k, v]) => [k, { ...v }]),
    removed: [...state.removed],
  };
}

export function fromSnapshot(snap: SnapshotData): CollabState {
  return {
    ...snap,
    members: new Map(snap.members),
    idempotency: new Map(snap.idempotency),
    removed: new Set(snap.removed ?? []),
  };
}
