import type { RoleName } from '@a2a-mesh/protocol';

/** Roles that may share and update. Observers only read (and set their presence). */
export const WRITERS: ReadonlySet<RoleName> = new Set(['owner', 'moderator', 'member']);

/** Roles that manage a collaboration: end it, invite, change roles, remove. */
export const MANAGERS: ReadonlySet<RoleName> = new Set(['owner', 'moderator']);

/**
 * May `actor` give `target` (currently `current`, or not a member) the role `next`? The owner assigns
 * moderator, member and observer to anyone but itself; a moderator assigns member and observer to
 * non-members, members and observers. Nobody makes or unmakes an owner.
 */
export function mayAssign(actor: RoleName, current: RoleName | undefined, next: RoleName): boolean {
  if (next === 'owner' || current === 'owner') return false;
  if (actor === 'owner') return true;
  if (actor === 'moderator') return next !== 'moderator' && current !== 'moderator';
  return false;
}

/** May `actor` remove a member whose role is `target`? The owner removes anyone else; a moderator members and observers. */
export function mayRemove(actor: RoleName, target: RoleName): boolean {
  if (target === 'owner') return false;
  if (actor === 'owner') return true;
  return actor === 'moderator' && target !== 'moderator';
}
