export type { AgentCard, AgentSkill, Message, MessageInput, Part, Role } from './a2a.js';
export {
  AgentCardSchema,
  AgentSkillSchema,
  MessageInputSchema,
  MessageSchema,
  PartSchema,
  RoleSchema,
} from './a2a.js';
export { AsyncQueue } from './asyncQueue.js';
export { CloseCode, isRetryableClose } from './closeCodes.js';
export type { Codec } from './codec.js';
export { codecFor, DEFAULT_MAX_MESSAGE_BYTES, jsonCodec, msgpackCodec, Subprotocol } from './codec.js';
export type { Id, Json, RequestOptions } from './common.js';
export {
  IdSchema,
  JsonSchema,
  MetadataSchema,
  TopicPatternSchema,
  TopicSchema,
  topicMatches,
} from './common.js';
export type { Connector, FrameConnection } from './connection.js';
export type { ErrorData, ErrorName, MeshErrorCode } from './errors.js';
export { ErrorCode, MeshError, RETRYABLE_REASONS, RpcError } from './errors.js';
export type {
  Classified,
  JsonRpcErrorObject,
  JsonRpcErrorResponse,
  JsonRpcMessage,
  JsonRpcNotification,
  JsonRpcRequest,
  JsonRpcResponse,
  JsonRpcSuccess,
  RequestId,
} from './jsonrpc.js';
export {
  classify,
  failure,
  JsonRpcErrorObjectSchema,
  JsonRpcErrorResponseSchema,
  JsonRpcNotificationSchema,
  JsonRpcRequestSchema,
  JsonRpcSuccessSchema,
  notification,
  RequestIdSchema,
  request,
  success,
} from './jsonrpc.js';
export type {
  AgentEntry,
  AgentMethodName,
  CollabEvent,
  CollabHistoryParams,
  CollabHistoryResult,
  CollabInfo,
  CollabJoinParams,
  CollabJoinResult,
  CollabListParams,
  CollabPresenceParams,
  CollabShareParams,
  CollabShareResult,
  CollabStartParams,
  CollabStartResult,
  CollabSummary,
  CollabUpdateParams,
  ConvContinueParams,
  ConvContinueResult,
  ConvDeliverParams,
  ConvDeliverResult,
  ConvEndedParams,
  ConversationTarget,
  ConvHistoryResult,
  ConvStartParams,
  ConvStartResult,
  DiscoverParams,
  EventType,
  HelloParams,
  HelloResult,
  LeftReason,
  Member,
  MethodName,
  MethodParams,
  MethodResult,
  NotificationName,
  OffsetResult,
  PatchOperation,
  Position,
  RoleName,
  SessionLimits,
  TopicMessage,
  TopicPublishParams,
  TopicSubscribeResult,
  Visibility,
} from './methods.js';
export {
  AgentEntrySchema,
  AgentMethods,
  CollabEventSchema,
  CollabInfoSchema,
  ConvDeliverParamsSchema,
  ConvDeliverResultSchema,
  ConvEndedParamsSchema,
  EventTypeSchema,
  LeftReasonSchema,
  MemberSchema,
  Methods,
  Notifications,
  PatchOperationSchema,
  PositionSchema,
  PROTOCOL_VERSION,
  RoleNameSchema,
  SessionLimitsSchema,
  TopicMessageSchema,
  VisibilitySchema,
} from './methods.js';
export type { HandlerContext, RpcPeerOptions } from './peer.js';
export { assertNever, RpcPeer } from './peer.js';
