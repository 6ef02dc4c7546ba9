import { RpcError } from '@a2a-mesh/protocol';

/** Counted limits (as opposed to rates). Each refusal is -32076 `quota_exceeded` with `data.quota` and `data.limit`. */
export interface QuotaOptions {
  /** Sessions one agent may hold open on one node (default 64). */
  maxConnectionsPerAgent: number;
  /** Members (any role, online or not) one collaboration may have (default 1000). */
  maxMembersPerCollaboration: number;
}

/** Quota names, as `data.quota` shows them. */
export type QuotaName = 'connections_per_agent' | 'subscriptions_per_session' | 'members_per_collaboration';

/** The defaults of `QuotaOptions`. */
export function quotaDefaults(given: Partial<QuotaOptions> = {}): QuotaOptions {
  return {
    maxConnectionsPerAgent: given.maxConnectionsPerAgent ?? 64,
    maxMembersPerCollaboration: given.maxMembersPerCollaboration ?? 1000,
  };
}

/** The QuotaExceeded error for `quota`. */
export function quotaExceeded(quota: QuotaName, limit: number, message: string): RpcError {
  return RpcError.of('QuotaExceeded', message, { quota, limit });
}
