import { z } from 'zod';
import { JsonSchema, MetadataSchema } from './common.js';

/** An A2A v1.0 Part: exactly one of text, raw (base64), url, data; plus optional metadata. */
export const PartSchema = z
  .looseObject({
    text: z.string().optional(),
    raw: z.string().optional(),
    url: z.string().optional(),
    data: JsonSchema.optional(),
    metadata: MetadataSchema.optional(),
    filename: z.string().optional(),
    mediaType: z.string().optional(),
  })
  .refine(
    (p) => [p.text, p.raw, p.url, p.data].filter((x) => x !== undefined).length === 1,
    'a part has exactly one of text, raw, url, data',
  );
export type Part = z.infer<typeof PartSchema>;

/** A2A v1.0 message role (proto enum names, as in the JSON binding). */
export const RoleSchema = z.enum(['ROLE_USER', 'ROLE_AGENT']);
export type Role = z.infer<typeof RoleSchema>;

/** An A2A v1.0 Message. */
export const MessageSchema = z.looseObject({
  messageId: z.string().min(1).max(256),
  contextId: z.string().max(256).optional(),
  taskId: z.string().max(256).optional(),
  role: RoleSchema,
  parts: z.array(PartSchema).min(1),
  metadata: MetadataSchema.optional(),
  extensions: z.array(z.string()).optional(),
  referenceTaskIds: z.array(z.string()).optional(),
});
export type Message = z.infer<typeof MessageSchema>;

/** A message as a sender gives it: the node fills in `messageId` and `role` when absent. */
export const MessageInputSchema = MessageSchema.extend({
  messageId: z.string().min(1).max(256).optional(),
  role: RoleSchema.optional(),
});
export type MessageInput = z.infer<typeof MessageInputSchema>;

/** An A2A AgentSkill. */
export const AgentSkillSchema = z.looseObject({
  id: z.string().min(1).max(128),
  name: z.string().max(256),
  description: z.string().max(4096).optional(),
  tags: z.array(z.string().max(128)).max(64).default([]),
  examples: z.array(z.string()).optional(),
});
export type AgentSkill = z.infer<typeof AgentSkillSchema>;

/** An A2A AgentCard, as much of it as the mesh reads; other fields pass through unchanged. */
export const AgentCardSchema = z.looseObject({
  name: z.string().min(1).max(256),
  description: z.string().max(4096).optional(),
  version: z.string().max(64).optional(),
  skills: z.array(AgentSkillSchema).max(256).default([]),
});
export type AgentCard = z.infer<typeof AgentCardSchema>;
