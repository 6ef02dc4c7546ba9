import { z } from 'zod';
import { AgentCardSchema, MessageInputSchema, MessageSchema } from './a2a.js';
import { A2AMeshMethods, TaskAgentMethods, TaskEventSchema, TaskNodeRequests } from './a2aTasks.js';
import {
  compiledOnUse,
  IdSchema,
  JsonSchema,
  MetadataSchema,
  type Parser,
  TopicPatternSchema,
  TopicSchema,
} from './common.js';

/** Protocol version spoken by this package; returned by `mesh/hello`. */
export const PROTOCOL_VERSION = '1';

// ---------------------------------------------------------------- mesh/*

/** Limits the node applies to this session, returned by `mesh/hello`. Bytes and counts. */
export const SessionLimitsSchema = z.object({
  maxMessageBytes: z.number().int(),
  maxQueueBytes: z.number().int(),
  maxSubscriptions: z.number().int(),
  maxStateBytes: z.number().int(),
});
export type SessionLimits = z.infer<typeof SessionLimitsSchema>;

export const HelloParamsSchema = z.object({
  agentId: IdSchema.optional(),
  card: AgentCardSchema.optional(),
  /** The sessionId of a previous session of this agent, so the node can retire it at once. */
  resume: z.string().max(128).optional(),
  /** A credential for transports that cannot set headers (browsers). */
  token: z.string().max(16384).optional(),
  /**
   * Node-to-agent requests this agent takes as notifications (sent without an id, never answered):
   * the node honours those in `AGENT_NOTIFIABLE_METHODS` and ignores the rest.
   */
  notifications: z.array(z.string().max(64)).max(16).optional(),
});
export type HelloParams = z.input<typeof HelloParamsSchema>;

export const HelloResultSchema = z.object({
  agentId: IdSchema,
  nodeId: z.string(),
  sessionId: z.string(),
  protocolVersion: z.string(),
  heartbeatMs: z.number().int(),
  limits: SessionLimitsSchema,
  resumed: z.boolean(),
});
export type HelloResult = z.infer<typeof HelloResultSchema>;

export const PingParamsSchema = z.object({}).optional();
export const PingResultSchema = z.object({ at: z.number() });

// ---------------------------------------------------------------- collaboration/*

/** Member roles, strongest first. Observers read but cannot share or update. */
export const RoleNameSchema = z.enum(['owner', 'moderator', 'member', 'observer']);
export type RoleName = z.infer<typeof RoleNameSchema>;

export const VisibilitySchema = z.enum(['public', 'private']);
export type Visibility = z.infer<typeof VisibilitySchema>;

/** A member of a collaboration; `online` is false while none of its sessions is attached. */
export const MemberSchema = z.object({
  agentId: IdSchema,
  role: RoleNameSchema,
  online: z.boolean(),
  status: z.string().optional(),
});
export type Member = z.infer<typeof MemberSchema>;

/** One RFC 6902 JSON Patch operation. */
export const PatchOperationSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('add'), path: z.string(), value: JsonSchema }),
  z.object({ op: z.literal('remove'), path: z.string() }),
  z.object({ op: z.literal('replace'), path: z.string(), value: JsonSchema }),
  z.object({ op: z.literal('move'), path: z.string(), from: z.string() }),
  z.object({ op: z.literal('copy'), path: z.string(), from: z.string() }),
  z.object({ op: z.literal('test'), path: z.string(), value: JsonSchema }),
]);
export type PatchOperation = z.infer<typeof PatchOperationSchema>;

/** A log position: the epoch names the log's lifetime, the offset the last event seen in it. */
export const PositionSchema = z.object({ epoch: z.string().min(1).max(64), offset: z.number().int().min(0) });
export type Position = z.infer<typeof PositionSchema>;

export const CollabStartParamsSchema = z.object({
  topic: z.string().min(1).max(256),
  state: JsonSchema.optional(),
  visibility: VisibilitySchema.optional(),
  members: z
    .array(z.object({ agentId: IdSchema, role: RoleNameSchema.exclude(['owner']).optional() }))
    .max(1000)
    .optional(),
  metadata: MetadataSchema.optional(),
});
export type CollabStartParams = z.input<typeof CollabStartParamsSchema>;
export const CollabStartResultSchema = z.object({
  collaborationId: IdSchema,
  epoch: z.string(),
  offset: z.number(),
});
export type CollabStartResult = z.infer<typeof CollabStartResultSchema>;

export const CollabJoinParamsSchema = z.object({
  collaborationId: IdSchema,
  since: PositionSchema.optional(),
});
export type CollabJoinParams = z.input<typeof CollabJoinParamsSchema>;
/**
 * `recovered: true`: the node replays exactly the events after `since` (offset = since.offset; no state).
 * `recovered: false`: `state` and `members` are current at `offset`; events follow from `offset + 1`.
 */
export const CollabJoinResultSchema = z.object({
  collaborationId: IdSchema,
  topic: z.string(),
  epoch: z.string(),
  offset: z.number(),
  recovered: z.boolean(),
  state: JsonSchema.optional(),
  members: z.array(MemberSchema).optional(),
  role: RoleNameSchema,
});
export type CollabJoinResult = z.infer<typeof CollabJoinResultSchema>;

export const CollabShareParamsSchema = z.object({
  collaborationId: IdSchema,
  content: JsonSchema,
  kind: z.string().min(1).max(64).optional(),
  idempotencyKey: z.string().min(1).max(128).optional(),
});
export type CollabShareParams = z.input<typeof CollabShareParamsSchema>;
/** `duplicate: true` when the idempotency key was seen in the last 5 minutes; `offset` is the original's. */
export const CollabShareResultSchema = z.object({ offset: z.number(), duplicate: z.boolean() });
export type CollabShareResult = z.infer<typeof CollabShareResultSchema>;

export const CollabUpdateParamsSchema = z.object({
  collaborationId: IdSchema,
  patch: z.array(PatchOperationSchema).min(1).max(1000),
  /** Apply only if the state has not changed after this offset (compare-and-set). */
  ifOffset: z.number().int().min(0).optional(),
});
export type CollabUpdateParams = z.input<typeof CollabUpdateParamsSchema>;
export const OffsetResultSchema = z.object({ offset: z.number() });
export type OffsetResult = z.infer<typeof OffsetResultSchema>;

export const CollabRefParamsSchema = z.object({ collaborationId: IdSchema });
export type CollabRefParams = z.input<typeof CollabRefParamsSchema>;

export const CollabPresenceParamsSchema = z.object({
  collaborationId: IdSchema,
  status: z.string().min(1).max(64),
  data: JsonSchema.optional(),
});
export type CollabPresenceParams = z.input<typeof CollabPresenceParamsSchema>;

/** `collaboration/invite`: make `agentId` a member with `role` (default `member`), or change its role. */
export const CollabInviteParamsSchema = z.object({
  collaborationId: IdSchema,
  agentId: IdSchema,
  role: RoleNameSchema.exclude(['owner']).optional(),
});
export type CollabInviteParams = z.input<typeof CollabInviteParamsSchema>;

/** `collaboration/remove`: take `agentId` out; its streams stop at once and it may not rejoin until invited. */
export const CollabRemoveParamsSchema = z.object({ collaborationId: IdSchema, agentId: IdSchema });
export type CollabRemoveParams = z.input<typeof CollabRemoveParamsSchema>;

export const CollabInfoSchema = z.object({
  collaborationId: IdSchema,
  topic: z.string(),
  visibility: VisibilitySchema,
  metadata: MetadataSchema,
  createdBy: z.string(),
  createdAt: z.number(),
  epoch: z.string(),
  offset: z.number(),
  stateOffset: z.number(),
  state: JsonSchema,
  members: z.array(MemberSchema),
  ended: z.boolean(),
});
export type CollabInfo = z.infer<typeof CollabInfoSchema>;

export const CollabHistoryParamsSchema = z.object({
  collaborationId: IdSchema,
  fromOffset: z.number().int().min(1),
  limit: z.number().int().min(1).max(1000).optional(),
});
export type CollabHistoryParams = z.input<typeof CollabHistoryParamsSchema>;

export const CollabListParamsSchema = z.object({ mine: z.boolean().optional() }).optional();
export type CollabListParams = z.input<typeof CollabListParamsSchema>;
export const CollabSummarySchema = z.object({
  collaborationId: IdSchema,
  topic: z.string(),
  visibility: VisibilitySchema,
  createdBy: z.string(),
  createdAt: z.number(),
  ended: z.boolean(),
});
export type CollabSummary = z.infer<typeof CollabSummarySchema>;
export const CollabListResultSchema = z.object({ collaborations: z.array(CollabSummarySchema) });

/** Event types; `started` is always offset 1. `role`: a member was invited or its role changed. */
export const EventTypeSchema = z.enum([
  'started',
  'shared',
  'state',
  'joined',
  'left',
  'role',
  'presence',
  'ended',
]);
export type EventType = z.infer<typeof EventTypeSchema>;

/** Why a member left: it called leave, its last session dropped, it was removed, or its node died. */
export const LeftReasonSchema = z.enum(['leave', 'disconnect', 'removed', 'node_lost']);
export type LeftReason = z.infer<typeof LeftReasonSchema>;

/** Notification `collaboration/event`: one log entry, delivered in offset order, gap-free. */
export const CollabEventSchema = z.object({
  collaborationId: IdSchema,
  epoch: z.string(),
  offset: z.number().int().min(1),
  type: EventTypeSchema,
  from: z.string(),
  at: z.number(),
  data: JsonSchema,
});
export type CollabEvent = z.infer<typeof CollabEventSchema>;

export const CollabHistoryResultSchema = z.object({
  epoch: z.string(),
  firstOffset: z.number(),
  lastOffset: z.number(),
  events: z.array(CollabEventSchema),
});
export type CollabHistoryResult = z.infer<typeof CollabHistoryResultSchema>;

// ---------------------------------------------------------------- conversation/*

export const ConversationTargetSchema = z.union([
  z.object({ agentId: IdSchema }).strict(),
  z.object({ skill: z.string().min(1).max(128) }).strict(),
]);
export type ConversationTarget = z.infer<typeof ConversationTargetSchema>;

export const ConvStartParamsSchema = z.object({
  to: ConversationTargetSchema,
  message: MessageInputSchema,
  metadata: MetadataSchema.optional(),
});
export type ConvStartParams = z.input<typeof ConvStartParamsSchema>;
export const ConvStartResultSchema = z.object({
  conversationId: IdSchema,
  agentId: IdSchema,
  reply: MessageSchema,
});
export type ConvStartResult = z.infer<typeof ConvStartResultSchema>;

export const ConvContinueParamsSchema = z.object({ conversationId: IdSchema, message: MessageInputSchema });
export type ConvContinueParams = z.input<typeof ConvContinueParamsSchema>;
export const ConvContinueResultSchema = z.object({ reply: MessageSchema });
export type ConvContinueResult = z.infer<typeof ConvContinueResultSchema>;

export const ConvRefParamsSchema = z.object({ conversationId: IdSchema });
export type ConvRefParams = z.input<typeof ConvRefParamsSchema>;

export const ConvHistoryResultSchema = z.object({
  conversationId: IdSchema,
  initiator: IdSchema,
  agentId: IdSchema,
  ended: z.boolean(),
  messages: z.array(MessageSchema),
});
export type ConvHistoryResult = z.infer<typeof ConvHistoryResultSchema>;

/** Node-to-agent request `conversation/message`: one turn to answer; the agent returns `{message}`. */
export const ConvDeliverParamsSchema = z.object({
  conversationId: IdSchema,
  from: IdSchema,
  message: MessageSchema,
  metadata: MetadataSchema.optional(),
});
export type ConvDeliverParams = z.infer<typeof ConvDeliverParamsSchema>;
export const ConvDeliverResultSchema = z.object({ message: MessageInputSchema });
export type ConvDeliverResult = z.input<typeof ConvDeliverResultSchema>;

/** Node-to-agent notification `conversation/ended`. */
export const ConvEndedParamsSchema = z.object({ conversationId: IdSchema, by: IdSchema });
export type ConvEndedParams = z.infer<typeof ConvEndedParamsSchema>;

// ---------------------------------------------------------------- topics/*

export const TopicSubscribeParamsSchema = z.object({ pattern: TopicPatternSchema });
export type TopicSubscribeParams = z.input<typeof TopicSubscribeParamsSchema>;
export const TopicSubscribeResultSchema = z.object({ subscriptionId: z.string() });
export type TopicSubscribeResult = z.infer<typeof TopicSubscribeResultSchema>;
export const TopicUnsubscribeParamsSchema = z.object({ subscriptionId: z.string().min(1).max(128) });
export type TopicUnsubscribeParams = z.input<typeof TopicUnsubscribeParamsSchema>;
export const TopicPublishParamsSchema = z.object({ topic: TopicSchema, data: JsonSchema });
export type TopicPublishParams = z.input<typeof TopicPublishParamsSchema>;

/** Notification `topics/message`. At-most-once: messages published while disconnected are not replayed. */
export const TopicMessageSchema = z.object({
  subscriptionId: z.string(),
  topic: z.string(),
  from: z.string(),
  data: JsonSchema,
  at: z.number(),
});
export type TopicMessage = z.infer<typeof TopicMessageSchema>;

// ---------------------------------------------------------------- agents/*

export const DiscoverParamsSchema = z
  .object({
    skill: z.string().max(128).optional(),
    tag: z.string().max(128).optional(),
    text: z.string().max(256).optional(),
    online: z.boolean().optional(),
  })
  .optional();
export type DiscoverParams = z.input<typeof DiscoverParamsSchema>;
export const AgentEntrySchema = z.object({
  agentId: IdSchema,
  card: AgentCardSchema,
  online: z.boolean(),
  nodeId: z.string(),
});
export type AgentEntry = z.infer<typeof AgentEntrySchema>;
export const DiscoverResultSchema = z.array(AgentEntrySchema);
export const AgentGetParamsSchema = z.object({ agentId: IdSchema });
export type AgentGetParams = z.input<typeof AgentGetParamsSchema>;

export const EmptyResultSchema = z.object({});

// ---------------------------------------------------------------- registry

/** Agent-to-node methods: params and result schemas, by method name. */
export const Methods = {
  'mesh/hello': { params: HelloParamsSchema, result: HelloResultSchema },
  'mesh/ping': { params: PingParamsSchema, result: PingResultSchema },
  'collaboration/start': { params: CollabStartParamsSchema, result: CollabStartResultSchema },
  'collaboration/join': { params: CollabJoinParamsSchema, result: CollabJoinResultSchema },
  'collaboration/share': { params: CollabShareParamsSchema, result: CollabShareResultSchema },
  'collaboration/update': { params: CollabUpdateParamsSchema, result: OffsetResultSchema },
  'collaboration/presence': { params: CollabPresenceParamsSchema, result: OffsetResultSchema },
  'collaboration/get': { params: CollabRefParamsSchema, result: CollabInfoSchema },
  'collaboration/history': { params: CollabHistoryParamsSchema, result: CollabHistoryResultSchema },
  'collaboration/list': { params: CollabListParamsSchema, result: CollabListResultSchema },
  'collaboration/leave': { params: CollabRefParamsSchema, result: OffsetResultSchema },
  'collaboration/end': { params: CollabRefParamsSchema, result: OffsetResultSchema },
  'collaboration/invite': { params: CollabInviteParamsSchema, result: OffsetResultSchema },
  'collaboration/remove': { params: CollabRemoveParamsSchema, result: OffsetResultSchema },
  'conversation/start': { params: ConvStartParamsSchema, result: ConvStartResultSchema },
  'conversation/continue': { params: ConvContinueParamsSchema, result: ConvContinueResultSchema },
  'conversation/end': { params: ConvRefParamsSchema, result: EmptyResultSchema },
  'conversation/history': { params: ConvRefParamsSchema, result: ConvHistoryResultSchema },
  'topics/subscribe': { params: TopicSubscribeParamsSchema, result: TopicSubscribeResultSchema },
  'topics/unsubscribe': { params: TopicUnsubscribeParamsSchema, result: EmptyResultSchema },
  'topics/publish': { params: TopicPublishParamsSchema, result: EmptyResultSchema },
  'agents/discover': { params: DiscoverParamsSchema, result: DiscoverResultSchema },
  'agents/get': { params: AgentGetParamsSchema, result: AgentEntrySchema },
  ...A2AMeshMethods,
  ...TaskAgentMethods,
} as const;
export type MethodName = keyof typeof Methods;

const methodParsers = {
  params: new Map<string, Parser<unknown>>(),
  result: new Map<string, Parser<unknown>>(),
};

/**
 * The parser of `method`'s params or result, compiled on its first use (`compiledOnUse`): one per
 * method and side in the process, for the node's dispatcher and the SDK's results.
 */
export function methodParser(method: MethodName, side: 'params' | 'result'): Parser<unknown> {
  const cache = methodParsers[side];
  let parser = cache.get(method);
  if (!parser) {
    parser = compiledOnUse(Methods[method][side]);
    cache.set(method, parser);
  }
  return parser;
}
/** Params a caller passes to `method` (zod input type: defaults may be omitted). */
export type MethodParams<M extends MethodName> = z.input<(typeof Methods)[M]['params']>;
/** Result a caller receives from `method`. */
export type MethodResult<M extends MethodName> = z.infer<(typeof Methods)[M]['result']>;

/** Node-to-agent requests. */
export const AgentMethods = {
  'conversation/message': { params: ConvDeliverParamsSchema, result: ConvDeliverResultSchema },
  ...TaskNodeRequests,
} as const;
export type AgentMethodName = keyof typeof AgentMethods;

/** Notifications sent by the node. */
export const Notifications = {
  'collaboration/event': CollabEventSchema,
  'topics/message': TopicMessageSchema,
  'conversation/ended': ConvEndedParamsSchema,
  'task/event': TaskEventSchema,
} as const;
export type NotificationName = keyof typeof Notifications;
