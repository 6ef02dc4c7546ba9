import pino, { type Logger } from 'pino';
import type { AuthFailure } from '../auth/authError.js';
import type { AuthMethod } from '../auth/principal.js';

/** Where a session came from. */
export type AuditTransport = 'websocket' | 'http2' | 'memory' | 'a2a';

/**
 * One audit record. Fields are ids, names and counts only: never a credential, a claim value, a
 * message body, shared content or state.
 */
export type AuditEvent =
  | {
      event: 'auth_failed';
      transport: AuditTransport;
      remoteAddress: string;
      failure: AuthFailure;
    }
  | {
      event: 'authenticated';
      agentId: string;
      method: AuthMethod;
      transport: AuditTransport;
      remoteAddress: string;
      sessionId: string;
    }
  | { event: 'identity_mismatch'; agentId: string; claimed: string; remoteAddress: string }
  | { event: 'credential_expired'; agentId: string; sessionId: string }
  | { event: 'denied'; agentId: string; action: string; resource: string; reason: string }
  | { event: 'collaboration_started'; agentId: string; collaborationId: string; visibility: string }
  | { event: 'collaboration_ended'; agentId: string; collaborationId: string }
  | {
      event: 'member_invited';
      agentId: string;
      collaborationId: string;
      member: string;
      role: string;
      previousRole?: string;
    }
  | { event: 'member_removed'; agentId: string; collaborationId: string; member: string }
  | { event: 'quota_exceeded'; agentId: string; quota: string; limit: number }
  | {
      event: 'rate_limit_close';
      agentId?: string;
      remoteAddress: string;
      limit: 'requests' | 'bytes';
    }
  | { event: 'connection_refused'; remoteAddress: string; reason: 'rate_limited' };

/** Name of an audit event. */
export type AuditEventName = AuditEvent['event'];

const WARN: ReadonlySet<AuditEventName> = new Set([
  'auth_failed',
  'identity_mismatch',
  'denied',
  'rate_limit_close',
  'connection_refused',
  'quota_exceeded',
]);

/** Settings of the audit trail. */
export interface AuditOptions {
  /** Write audit records to this logger (e.g. a pino logger on its own destination). */
  logger?: Logger;
  /** Append audit records (JSON lines) to this file instead. */
  file?: string;
}

/**
 * The audit trail: one JSON record per security-relevant event (`audit: <event>`), on its own pino
 * logger, so it can be shipped and kept apart from operational logs.
 */
export class AuditLog {
  constructor(readonly logger: Logger) {}

  /** Writes one record; denials, failures and abuse at `warn`, the rest at `info`. */
  record(e: AuditEvent): void {
    const { event, ...fields } = e;
    const level = WARN.has(event) ? 'warn' : 'info';
    this.logger[level]({ audit: event, ...fields }, `audit ${event}`);
  }
}

/**
 * The audit log of a node: `options.logger`; else a JSON-lines file (`options.file`); else a child of the
 * node's logger tagged `component: "audit"`.
 */
export function createAuditLog(
  options: AuditOptions | false | undefined,
  root: Logger,
  nodeId: string,
): AuditLog {
  if (options === false) return new AuditLog(pino({ level: 'silent' }));
  if (options?.logger) return new AuditLog(options.logger.child({ nodeId }));
  if (options?.file) {
    const dest = pino.destination({ dest: options.file, mkdir: true, sync: false });
    return new AuditLog(pino({ level: 'info', base: { nodeId, component: 'audit' } }, dest));
  }
  return new AuditLog(root.child({ component: 'audit' }));
}
