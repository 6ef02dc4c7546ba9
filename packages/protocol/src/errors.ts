import type { JsonRpcErrorObject } from './jsonrpc.js';

/**
 * Every wire error: its numeric JSON-RPC code and the stable `data.reason` string.
 * Standard JSON-RPC codes, A2A codes (-32001..-32009, as the A2A v1.0 spec defines them) and
 * mesh codes (-32060..-32079). Clients branch on `reason`, which never changes once published.
 */
export const ErrorCode = {
  ParseError: { code: -32700, reason: 'parse_error' },
  InvalidRequest: { code: -32600, reason: 'invalid_request' },
  MethodNotFound: { code: -32601, reason: 'method_not_found' },
  InvalidParams: { code: -32602, reason: 'invalid_params' },
  InternalError: { code: -32603, reason: 'internal_error' },

  TaskNotFound: { code: -32001, reason: 'task_not_found' },
  TaskNotCancelable: { code: -32002, reason: 'task_not_cancelable' },
  PushNotificationNotSupported: { code: -32003, reason: 'push_notification_not_supported' },
  UnsupportedOperation: { code: -32004, reason: 'unsupported_operation' },
  ContentTypeNotSupported: { code: -32005, reason: 'content_type_not_supported' },
  InvalidAgentResponse: { code: -32006, reason: 'invalid_agent_response' },
  ExtendedAgentCardNotConfigured: { code: -32007, reason: 'extended_agent_card_not_configured' },
  ExtensionSupportRequired: { code: -32008, reason: 'extension_support_required' },
  VersionNotSupported: { code: -32009, reason: 'version_not_supported' },

  CollaborationNotFound: { code: -32060, reason: 'collaboration_not_found' },
  NotAMember: { code: -32061, reason: 'not_a_member' },
  StateConflict: { code: -32062, reason: 'state_conflict' },
  Forbidden: { code: -32063, reason: 'forbidden' },
  RateLimited: { code: -32064, reason: 'rate_limited' },
  AgentUnreachable: { code: -32065, reason: 'agent_unreachable' },
  PayloadTooLarge: { code: -32066, reason: 'payload_too_large' },
  Unavailable: { code: -32067, reason: 'unavailable' },
  CollaborationEnded: { code: -32068, reason: 'collaboration_ended' },
  InvalidPatch: { code: -32069, reason: 'invalid_patch' },
  ConversationNotFound: { code: -32070, reason: 'conversation_not_found' },
  AgentNotFound: { code: -32071, reason: 'agent_not_found' },
  Unauthenticated: { code: -32072, reason: 'unauthenticated' },
  HelloRequired: { code: -32073, reason: 'hello_required' },
  SubscriptionNotFound: { code: -32074, reason: 'subscription_not_found' },
  Timeout: { code: -32075, reason: 'timeout' },
  QuotaExceeded: { code: -32076, reason: 'quota_exceeded' },
  ConversationEnded: { code: -32077, reason: 'conversation_ended' },
  AgentError: { code: -32078, reason: 'agent_error' },
} as const;
export type ErrorName = keyof typeof ErrorCode;

/** Reasons that mean "try again later": the same call may succeed once the node or NATS recovers. */
export const RETRYABLE_REASONS: ReadonlySet<string> = new Set(['unavailable', 'rate_limited', 'timeout']);

/** The `data` member every mesh error carries. */
export interface ErrorData {
  reason: string;
  [key: string]: unknown;
}

const byCode = new Map<number, ErrorName>(
  (Object.entries(ErrorCode) as [ErrorName, { code: number }][]).map(([name, v]) => [v.code, name]),
);

/**
 * A wire error: a JSON-RPC error with numeric `code` and `data.reason`. Thrown by handlers to answer
 * with that error; thrown by clients when the peer answered with an error.
 */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  readonly code: number;
  readonly data: ErrorData;

  constructor(code: number, message: string, data: ErrorData, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.data = data;
  }

  /** The stable reason string (e.g. `state_conflict`). */
  get reason(): string {
    return this.data.reason;
  }

  /** True when retrying the same call later may succeed. */
  get retryable(): boolean {
    return RETRYABLE_REASONS.has(this.data.reason);
  }

  /** Builds a known mesh error, with extra `data` fields merged in. */
  static of(name: ErrorName, message: string, extra?: Record<string, unknown>, cause?: unknown): RpcError {
    const def = ErrorCode[name];
    return new RpcError(
      def.code,
      message,
      { ...extra, reason: def.reason },
      cause === undefined ? undefined : { cause },
    );
  }

  /** Rebuilds an error received on the wire; unknown codes keep their code and get reason `unknown`. */
  static fromWire(error: JsonRpcErrorObject): RpcError {
    const known = byCode.get(error.code);
    const data = error.data;
    const dataObj =
      typeof data === 'object' && data !== null && !Array.isArray(data)
        ? (data as Record<string, unknown>)
        : {};
    const reason =
      typeof dataObj.reason === 'string'
        ? dataObj.reason
        : known !== undefined
          ? ErrorCode[known].reason
          : 'unknown';
    return new RpcError(error.code, error.message, { ...dataObj, reason });
  }

  /** The JSON-RPC `error` member for this error. */
  toWire(): JsonRpcErrorObject {
    return { code: this.code, message: this.message, data: this.data };
  }
}

/** Local (never on the wire) error kinds raised by the SDK and node internals. */
export type MeshErrorCode =
  | 'closed'
  | 'timeout'
  | 'aborted'
  | 'connection_lost'
  | 'protocol'
  | 'too_large'
  | 'bad_config'
  | 'bus_conflict'
  | 'bus_unavailable';

/** A local error with a string `code`; `cause` carries the underlying error through. */
export class MeshError extends Error {
  override readonly name = 'MeshError';
  readonly code: MeshErrorCode;

  constructor(code: MeshErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
