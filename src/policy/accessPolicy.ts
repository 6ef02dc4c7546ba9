import { type RoleName, RpcError } from '@a2a-mesh/protocol';
import type { AuditLog } from '../audit/auditLog.js';
import type { Principal } from '../auth/principal.js';
import type { CollabState } from '../collab/fold.js';
import { callerAllowed, callerRules } from './callerRules.js';
import { MANAGERS, mayAssign, mayRemove, WRITERS } from './roles.js';
import { mayPublish, maySubscribe, topicPermissions } from './topicPermissions.js';

/** Access rules that are configuration rather than data. */
export interface PolicyOptions {
  /** Topics allowed to a principal whose credential has no topics claim (default `allow`). */
  topicsDefault?: 'allow' | 'deny';
  /** The claim holding `{publish: [...], subscribe: [...]}` topic patterns (default `topics`). */
  topicsClaim?: string;
}

/** What a collaboration listing needs to know to show an entry. */
export interface CollabListing {
  visibility: 'public' | 'private';
  createdBy: string;
  invited: readonly string[];
  removed?: readonly string[];
}

/** A conversation's parties. */
export interface ConversationParties {
  initiator: string;
  agentId: string;
}

/** Which rule refused a call, as `data.rule` shows it. */
export type DenyRule =
  | 'private'
  | 'removed'
  | 'role'
  | 'not_participant'
  | 'not_initiator'
  | 'caller_rules'
  | 'topic_publish'
  | 'topic_subscribe';

/**
 * Every access decision of the node, in one place: collaboration visibility and roles, invites and
 * removals, conversation parties, which callers an agent accepts (its card's `allowedCallers`), and
 * topic permissions from credential claims. A refusal is -32063 `forbidden` with `data.rule` and is
 * written to the audit log.
 */
export class AccessPolicy {
  readonly #topicsDefault: 'allow' | 'deny';
  readonly #topicsClaim: string;

  constructor(
    options: PolicyOptions,
    readonly audit: AuditLog,
  ) {
    this.#topicsDefault = options.topicsDefault ?? 'allow';
    this.#topicsClaim = options.topicsClaim ?? 'topics';
  }

  // ------------------------------------------------------------ collaborations

  /** May `agentId` join? Returns the role it joins with. Removed agents and uninvited ones (private) may not. */
  checkJoin(state: CollabState, agentId: string, id: string): RoleName {
    const m = state.members.get(agentId);
    if (m) return m.role;
    if (state.removed.has(agentId)) {
      throw this.#deny(agentId, 'collaboration/join', id, 'removed', `${agentId} was removed from ${id}`);
    }
    if (state.visibility === 'private') {
      throw this.#deny(
        agentId,
        'collaboration/join',
        id,
        'private',
        `collaboration ${id} is private and ${agentId} is not invited`,
      );
    }
    return 'member';
  }

  /** May `agentId` read state and history without joining? Public: anyone not removed; private: members. */
  checkRead(state: CollabState, agentId: string, id: string, action: string): void {
    if (state.members.has(agentId)) return;
    if (state.removed.has(agentId))
      throw this.#deny(agentId, action, id, 'removed', `${agentId} was removed from ${id}`);
    if (state.visibility === 'private')
      throw this.#deny(agentId, action, id, 'private', `collaboration ${id} is private`);
  }

  /** May `agentId` share or update? Members with a writing role, while the collaboration is open. */
  checkWrite(state: CollabState, agentId: string, id: string, action: string): void {
    const m = this.#member(state, agentId, id);
    if (!WRITERS.has(m.role)) {
      throw this.#deny(agentId, action, id, 'role', `role ${m.role} cannot write to ${id}`, { role: m.role });
    }
  }

  /** May `agentId` set its presence? Any member, observers included, while open. */
  checkPresence(state: CollabState, agentId: string, id: string): void {
    this.#member(state, agentId, id);
  }

  /** May `agentId` end the collaboration? Owner or moderator. */
  checkEnd(state: CollabState, agentId: string, id: string): void {
    const role = state.members.get(agentId)?.role;
    if (role === undefined || !MANAGERS.has(role)) {
      throw this.#deny(
        agentId,
        'collaboration/end',
        id,
        'role',
        'only the owner or a moderator can end a collaboration',
        {
          ...(role ? { role } : {}),
        },
      );
    }
  }

  /** May `agentId` give `target` the role `role` (invite, or change its role)? See `mayAssign`. */
  checkInvite(state: CollabState, agentId: string, target: string, role: RoleName, id: string): void {
    const actor = this.#member(state, agentId, id).role;
    const current = state.members.get(target)?.role;
    if (target === agentId || !mayAssign(actor, current, role)) {
      throw this.#deny(
        agentId,
        'collaboration/invite',
        id,
        'role',
        `a${actor === 'owner' ? 'n' : ''} ${actor} cannot make ${target} ${role === 'observer' ? 'an' : 'a'} ${role}`,
        { role: actor },
      );
    }
  }

  /** May `agentId` remove `target`? Owner: anyone else; moderator: members and observers. */
  checkRemove(state: CollabState, agentId: string, target: string, id: string): void {
    const actor = this.#member(state, agentId, id).role;
    const m = state.members.get(target);
    if (!m) {
      throw RpcError.of('NotAMember', `${target} is not a member of ${id}`, {
        collaborationId: id,
        agentId: target,
      });
    }
    if (target === agentId || !mayRemove(actor, m.role)) {
      throw this.#deny(
        agentId,
        'collaboration/remove',
        id,
        'role',
        `a ${actor} cannot remove the ${m.role} ${target}`,
        {
          role: actor,
        },
      );
    }
  }

  /** Is a collaboration listed to `agentId`? Public ones unless removed; private ones if involved. */
  mayList(entry: CollabListing, agentId: string, joinedHere: boolean, mine: boolean): boolean {
    if (entry.removed?.includes(agentId)) return false;
    const involved = entry.createdBy === agentId || entry.invited.includes(agentId) || joinedHere;
    return mine || entry.visibility === 'private' ? involved : true;
  }

  // ------------------------------------------------------------ conversations

  /** May `agentId` continue the conversation? Only its initiator (the target replies instead). */
  checkContinue(parties: ConversationParties, agentId: string, id: string): void {
    if (parties.initiator !== agentId) {
      throw this.#deny(
        agentId,
        'conversation/continue',
        id,
        parties.agentId === agentId ? 'not_initiator' : 'not_participant',
        'only the agent that started a conversation continues it; the other side replies',
      );
    }
  }

  /** May `agentId` end the conversation or read its history? Its two parties. */
  checkParticipant(parties: ConversationParties, agentId: string, id: string, action: string): void {
    if (parties.initiator !== agentId && parties.agentId !== agentId) {
      throw this.#deny(agentId, action, id, 'not_participant', `not a participant of conversation ${id}`, {
        conversationId: id,
      });
    }
  }

  /** True when `caller` may call the agent whose card is `card` (its `allowedCallers`). */
  mayCall(caller: Principal, callerId: string, card: unknown): boolean {
    let rules: ReturnType<typeof callerRules>;
    try {
      rules = callerRules(card);
    } catch {
      return false; // a malformed rule list admits nobody
    }
    return callerAllowed(rules, callerId, caller.claims);
  }

  /** Throws Forbidden unless `caller` may call `target` (see `mayCall`). */
  checkCall(caller: Principal, callerId: string, target: string, card: unknown, action: string): void {
    if (!this.mayCall(caller, callerId, card)) {
      throw this.#deny(
        callerId,
        action,
        target,
        'caller_rules',
        `agent ${target} does not accept calls from ${callerId}`,
        {
          agentId: target,
        },
      );
    }
  }

  // ------------------------------------------------------------ topics

  /** Throws Forbidden unless the credential's topics claim allows publishing to `topic`. */
  checkPublish(principal: Principal, agentId: string, topic: string): void {
    const perms = topicPermissions(principal.claims[this.#topicsClaim], this.#topicsDefault);
    if (!mayPublish(perms.publish, topic)) {
      throw this.#deny(
        agentId,
        'topics/publish',
        topic,
        'topic_publish',
        `not allowed to publish to ${topic}`,
      );
    }
  }

  /** Throws Forbidden unless the credential's topics claim covers every topic `pattern` can match. */
  checkSubscribe(principal: Principal, agentId: string, pattern: string): void {
    const perms = topicPermissions(principal.claims[this.#topicsClaim], this.#topicsDefault);
    if (!maySubscribe(perms.subscribe, pattern)) {
      throw this.#deny(
        agentId,
        'topics/subscribe',
        pattern,
        'topic_subscribe',
        `not allowed to subscribe to ${pattern}`,
      );
    }
  }

  // ------------------------------------------------------------ helpers

  #member(state: CollabState, agentId: string, id: string): { role: RoleName } {
    if (state.ended) {
      throw RpcError.of('CollaborationEnded', `collaboration ${id} has ended`, { collaborationId: id });
    }
    const m = state.members.get(agentId);
    if (!m) throw RpcError.of('NotAMember', `${agentId} is not a member of ${id}`, { collaborationId: id });
    return m;
  }

  #deny(
    agentId: string,
    action: string,
    resource: string,
    rule: DenyRule,
    message: string,
    extra: Record<string, unknown> = {},
  ): RpcError {
    this.audit.record({ event: 'denied', agentId, action, resource, reason: rule });
    return RpcError.of('Forbidden', message, { ...extra, rule });
  }
}
