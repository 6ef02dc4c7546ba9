import { type JsonRpcErrorObject, RpcError } from '@a2a-mesh/protocol';

/** `google.rpc.ErrorInfo` and `google.rpc.BadRequest` type URLs (ProtoJSON `Any`). */
export const ERROR_INFO_TYPE = 'type.googleapis.com/google.rpc.ErrorInfo';
export const BAD_REQUEST_TYPE = 'type.googleapis.com/google.rpc.BadRequest';
/** ErrorInfo domain of the A2A errors (-32001..-32009) and JSON-RPC errors. */
export const A2A_ERROR_DOMAIN = 'a2a-protocol.org';
/** ErrorInfo domain of mesh errors (-32060..-32079). */
export const MESH_ERROR_DOMAIN = 'a2a-mesh';

/** Wire version a gateway request is answered in. */
export type A2AVersion = '1.0' | '0.3';

/**
 * An RpcError as the A2A JSON-RPC binding carries it. v1.0: `data` is an array of details with an
 * ErrorInfo first (reason in UPPER_SNAKE_CASE, metadata as strings) and, for invalid params, a
 * BadRequest with the field violations. v0.3: `data` is the mesh's `{reason, ...}` object.
 */
export function toA2AWire(error: RpcError, version: A2AVersion): JsonRpcErrorObject {
  if (version === '0.3') return error.toWire();
  const { reason, issues, ...rest } = error.data;
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(rest)) {
    if (v !== undefined) metadata[k] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  const a2a = error.code >= -32099 && error.code <= -32000 && !(error.code <= -32060 && error.code >= -32079);
  const details: Record<string, unknown>[] = [
    {
      '@type': ERROR_INFO_TYPE,
      reason: reason.toUpperCase(),
      domain: a2a || error.code <= -32600 ? A2A_ERROR_DOMAIN : MESH_ERROR_DOMAIN,
      ...(Object.keys(metadata).length > 0 ? { metadata } : {}),
    },
  ];
  if (Array.isArray(issues) && issues.length > 0) {
    details.push({
      '@type': BAD_REQUEST_TYPE,
      fieldViolations: (issues as { path: string; message: string }[]).map((i) => ({
        field: i.path,
        description: i.message,
      })),
    });
  }
  return { code: error.code, message: error.message, data: details };
}

/** Invalid params from zod issues, in the mesh's shape (`data.issues[{path, message}]`). */
export function invalidParams(
  what: string,
  issues: readonly { path: readonly PropertyKey[]; message: string }[],
): RpcError {
  const list = issues.slice(0, 10).map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
  const first = list[0];
  return RpcError.of(
    'InvalidParams',
    `invalid ${what}${first ? `: ${first.path || '(root)'}: ${first.message}` : ''}`,
    { issues: list },
  );
}

/** -32001 for a task id. */
export function taskNotFound(taskId: string): RpcError {
  return RpcError.of('TaskNotFound', `task ${taskId.slice(0, 256)} not found`, {
    taskId: taskId.slice(0, 256),
  });
}
