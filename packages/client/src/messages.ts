import { type MessageInput, type Role, withFields } from '@a2a-mesh/protocol';

/** A message as SDK calls accept it: plain text, or an A2A message (`messageId`/`role` optional). */
export type MessageLike = string | MessageInput;

/** A random UUID; uses `crypto.randomUUID` when present (it is missing outside secure browser contexts). */
export function randomId(): string {
  const c = globalThis.crypto;
  if (typeof c?.randomUUID === 'function') return c.randomUUID();
  const b = new Uint8Array(16);
  c.getRandomValues(b);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Turns text or a partial A2A message into a full one: text becomes `{ role, parts: [{ text }] }`;
 * a missing `messageId` is generated and a missing `role` set to `role`.
 */
export function toMessage(input: MessageLike, role: Role): MessageInput {
  if (typeof input === 'string') return { messageId: randomId(), role, parts: [{ text: input }] };
  return withFields(input, { messageId: input.messageId ?? randomId(), role: input.role ?? role });
}
