import { z } from 'zod';

/** JSON-RPC 2.0 request id: string or integer number (null is reserved for parse errors). */
export const RequestIdSchema = z.union([z.string().max(256), z.number().int()]);
export type RequestId = z.infer<typeof RequestIdSchema>;

/** A JSON-RPC 2.0 request (has an id and expects a response). */
export const JsonRpcRequestSchema = z.object({
  jsonrpc: z.literal('2.0'),
  id: RequestIdSchema,
  method: z.string().min(1).max(128),
  params: z.unknown().optional(),
});
export type JsonRpcRequest = z.infer<typeof JsonRpcRequestSchema>;

/** A JSON-RPC 2.0 notification (no id, no response). */
export const JsonRpcNotificationSchema = z.object({
  jsonrpc: z.literal('2.0'),
  method: z.string().min(1).max(128),
  params: z.unknown().optional(),
});
export type JsonRpcNotification = z.infer<typeof JsonRpcNotificationSchema>;

/** The `error` member of a JSON-RPC error response. */
export const JsonRpcErrorObjectSchema = z.object({
  code: z.number().int(),
  message: z.string(),
  data: z.unknown().optional(),
});
export type JsonRpcErrorObject = z.infer<typeof JsonRpcErrorObjectSchema>;

/** A successful JSON-RPC 2.0 response. */
export const JsonRpcSuccessSchema = z.object({
  jsonrpc: z.literal('2.0'),
  id: RequestIdSchema,
  result: z.unknown(),
});
export type JsonRpcSuccess = z.infer<typeof JsonRpcSuccessSchema>;

/** A JSON-RPC 2.0 error response; id is null when the request id could not be read. */
export const JsonRpcErrorResponseSchema = z.object({
  jsonrpc: z.literal('2.0'),
  id: RequestIdSchema.nullable(),
  error: JsonRpcErrorObjectSchema,
});
export type JsonRpcErrorResponse = z.infer<typeof JsonRpcErrorResponseSchema>;

export type JsonRpcResponse = JsonRpcSuccess | JsonRpcErrorResponse;
export type JsonRpcMessage = JsonRpcRequest | JsonRpcNotification | JsonRpcResponse;

/** One classified inbound message, or the reason it is not a valid JSON-RPC 2.0 message. */
export type Classified =
  | { type: 'request'; message: JsonRpcRequest }
  | { type: 'notification'; message: JsonRpcNotification }
  | { type: 'response'; message: JsonRpcResponse }
  | { type: 'invalid'; id: RequestId | null; reason: string };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** True for an id the schema accepts: an integer, or a string of at most 256 characters. */
function isRequestId(id: unknown): id is RequestId {
  return typeof id === 'number' ? Number.isInteger(id) : typeof id === 'string' && id.length <= 256;
}

/**
 * The well-formed common cases without running the schemas (they cost a zod parse per frame);
 * undefined for anything else, which the schemas then sort and explain. Same output as the schemas:
 * only the members they keep.
 */
function classifyFast(value: Record<string, unknown>): Classified | undefined {
  if (value.jsonrpc !== '2.0') return undefined;
  const { id } = value;
  if ('method' in value) {
    const { method, params } = value;
    if (typeof method !== 'string' || method.length < 1 || method.length > 128) return undefined;
    if (id === undefined) {
      return {
        type: 'notification',
        message: params === undefined ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', method, params },
      };
    }
    if (!isRequestId(id)) return undefined;
    return {
      type: 'request',
      message: params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params },
    };
  }
  if ('result' in value) {
    return isRequestId(id)
      ? { type: 'response', message: { jsonrpc: '2.0', id, result: value.result } }
      : undefined;
  }
  if ('error' in value) {
    const e = value.error;
    if (!isObject(e) || !Number.isInteger(e.code) || typeof e.message !== 'string') return undefined;
    if (id !== null && !isRequestId(id)) return undefined;
    const error: JsonRpcErrorObject = { code: e.code as number, message: e.message };
    if (e.data !== undefined) error.data = e.data;
    return { type: 'response', message: { jsonrpc: '2.0', id, error } };
  }
  return undefined;
}

/** Sorts one decoded JSON value into request / notification / response, or says why it is invalid. */
export function classify(value: unknown): Classified {
  if (!isObject(value)) return { type: 'invalid', id: null, reason: 'message must be an object' };
  const fast = classifyFast(value);
  if (fast) return fast;
  const idResult = RequestIdSchema.safeParse(value.id);
  const id = idResult.success ? idResult.data : null;
  if (value.jsonrpc !== '2.0') return { type: 'invalid', id, reason: 'jsonrpc must be "2.0"' };
  if ('method' in value) {
    if ('id' in value && value.id !== undefined) {
      const r = JsonRpcRequestSchema.safeParse(value);
      return r.success
        ? { type: 'request', message: r.data }
        : { type: 'invalid', id, reason: r.error.message };
    }
    const n = JsonRpcNotificationSchema.safeParse(value);
    return n.success
      ? { type: 'notification', message: n.data }
      : { type: 'invalid', id, reason: n.error.message };
  }
  if ('result' in value) {
    const r = JsonRpcSuccessSchema.safeParse(value);
    return r.success
      ? { type: 'response', message: r.data }
      : { type: 'invalid', id, reason: r.error.message };
  }
  if ('error' in value) {
    const r = JsonRpcErrorResponseSchema.safeParse(value);
    return r.success
      ? { type: 'response', message: r.data }
      : { type: 'invalid', id, reason: r.error.message };
  }
  return { type: 'invalid', id, reason: 'not a request, notification or response' };
}

/** Builds a request object. */
export function request(id: RequestId, method: string, params?: unknown): JsonRpcRequest {
  return params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params };
}

/** Builds a notification object. */
export function notification(method: string, params?: unknown): JsonRpcNotification {
  return params === undefined ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', method, params };
}

/** Builds a success response. */
export function success(id: RequestId, result: unknown): JsonRpcSuccess {
  return { jsonrpc: '2.0', id, result: result === undefined ? null : result };
}

/** Builds an error response. */
export function failure(id: RequestId | null, error: JsonRpcErrorObject): JsonRpcErrorResponse {
  return { jsonrpc: '2.0', id, error };
}
