import {
  assertNever,
  type CollabEvent,
  type Json,
  type Member,
  type PatchOperation,
  type RoleName,
} from '@a2a-mesh/protocol';
import fastJsonPatch from 'fast-json-patch';

/** A full copy of a collaboration at one log position. */
export interface CollabSnapshot {
  readonly epoch: string;
  readonly offset: number;
  readonly state: Json;
  readonly members: readonly Member[];
}

/**
 * What happened to an event offered to a replica: `applied`; `duplicate` (offset at or below the
 * local one, dropped); `gap` (it skips ahead, or belongs to another epoch: not applied, recover first).
 */
export type FoldOutcome = 'applied' | 'duplicate' | 'gap';

type Data = Record<string, Json>;

function asObject(value: Json): Data {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : {};
}

const ROLES: ReadonlySet<string> = new Set(['owner', 'moderator', 'member', 'observer']);

function asRole(value: Json | undefined): RoleName | undefined {
  return typeof value === 'string' && ROLES.has(value) ? (value as RoleName) : undefined;
}

/**
 * The local copy of one collaboration: the fold of its event log, as the node computes it. Accepts
 * events strictly in offset order; state and member objects are replaced, never mutated, so values
 * read earlier stay valid snapshots.
 */
export class CollabReplica {
  #epoch: string;
  #offset: number;
  #state: Json;
  #members: Map<string, Member>;
  #ended = false;

  constructor(snapshot: CollabSnapshot) {
    this.#epoch = snapshot.epoch;
    this.#offset = snapshot.offset;
    this.#state = snapshot.state;
    this.#members = new Map(snapshot.members.map((m) => [m.agentId, { ...m }]));
  }

  /** The log's epoch. */
  get epoch(): string {
    return this.#epoch;
  }

  /** Offset of the last event folded in (0 before `started`). */
  get offset(): number {
    return this.#offset;
  }

  /** The shared state at `offset`. */
  get state(): Json {
    return this.#state;
  }

  /** Members by agentId, in the order they first joined. */
  get members(): ReadonlyMap<string, Member> {
    return this.#members;
  }

  /** True once an `ended` event was folded in. */
  get ended(): boolean {
    return this.#ended;
  }

  /** This copy as a snapshot (members as a list). */
  snapshot(): CollabSnapshot {
    return {
      epoch: this.#epoch,
      offset: this.#offset,
      state: this.#state,
      members: [...this.#members.values()],
    };
  }

  /** Replaces the whole copy (after a join that could not recover). */
  reset(snapshot: CollabSnapshot): void {
    this.#epoch = snapshot.epoch;
    this.#offset = snapshot.offset;
    this.#state = snapshot.state;
    this.#members = new Map(snapshot.members.map((m) => [m.agentId, { ...m }]));
    this.#ended = false;
  }

  /** Says what `apply(event)` would do, without doing it. */
  check(event: CollabEvent): FoldOutcome {
    if (event.epoch !== this.#epoch) return 'gap';
    if (event.offset <= this.#offset) return 'duplicate';
    if (event.offset > this.#offset + 1) return 'gap';
    return 'applied';
  }

  /** Folds `event` in if it is the next one; otherwise leaves the copy unchanged. */
  apply(event: CollabEvent): FoldOutcome {
    const outcome = this.check(event);
    if (outcome !== 'applied') return outcome;
    this.#fold(event);
    this.#offset = event.offset;
    return outcome;
  }

  // Mirrors the node's fold (src/collab/fold.ts) so both compute the same state and members.
  #fold(event: CollabEvent): void {
    const data = asObject(event.data);
    switch (event.type) {
      case 'started': {
        this.#state = data.state ?? {};
        const members = new Map<string, Member>();
        const list = Array.isArray(data.members) ? data.members : [];
        for (const item of list) {
          const m = asObject(item);
          if (typeof m.agentId !== 'string') continue;
          members.set(m.agentId, { agentId: m.agentId, role: asRole(m.role) ?? 'member', online: false });
        }
        this.#members = members;
        return;
      }
      case 'shared':
        return;
      case 'state': {
        if (!Array.isArray(data.patch)) return;
        try {
          const patch = data.patch as unknown as PatchOperation[];
          // On a copy: a patch that fails leaves the state as it was, like the node's fold.
          this.#state = fastJsonPatch.applyPatch(this.#state, patch as fastJsonPatch.Operation[], true, false)
            .newDocument as Json;
        } catch {
          // The node validates patches before appending them; one that still fails changes nothing.
        }
        return;
      }
      case 'joined': {
        if (typeof data.agentId !== 'string') return;
        const prev = this.#members.get(data.agentId);
        const role = asRole(data.role) ?? prev?.role ?? 'member';
        this.#setMember({ agentId: data.agentId, role, online: true });
        return;
      }
      case 'left': {
        if (typeof data.agentId !== 'string') return;
        const prev = this.#members.get(data.agentId);
        if (!prev) return;
        if (data.reason === 'leave' || data.reason === 'removed') {
          const members = new Map(this.#members);
          members.delete(data.agentId);
          this.#members = members;
        } else {
          this.#setMember({ agentId: prev.agentId, role: prev.role, online: false });
        }
        return;
      }
      case 'role': {
        if (typeof data.agentId !== 'string') return;
        const role = asRole(data.role);
        if (!role) return;
        const prev = this.#members.get(data.agentId);
        this.#setMember(prev ? { ...prev, role } : { agentId: data.agentId, role, online: false });
        return;
      }
      case 'presence': {
        if (typeof data.agentId !== 'string') return;
        const prev = this.#members.get(data.agentId);
        if (!prev) return;
        this.#setMember({ ...prev, status: String(data.status) });
        return;
      }
      case 'ended':
        this.#ended = true;
        return;
      default:
        assertNever(event.type);
    }
  }

  #setMember(member: Member): void {
    const members = new Map(this.#members);
    members.set(member.agentId, member);
    this.#members = members;
  }
}
