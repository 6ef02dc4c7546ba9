/** How a principal proved who it is. */
export type AuthMethod = 'none' | 'apikey' | 'jwt';

/**
 * Who is on the other end of a session, as its credential says. With `none` there is no credential:
 * `agentId` is undefined and the agent names itself in `mesh/hello`.
 */
export interface Principal {
  readonly method: AuthMethod;
  /** The agent id bound by the credential (`sub` or the configured claim; the API key's agent). */
  readonly agentId: string | undefined;
  /** The credential's claims (JWT payload, or the API key's configured claims); never the credential itself. */
  readonly claims: Readonly<Record<string, unknown>>;
  /** When the credential stops being valid (ms since the epoch), if it says. */
  readonly expiresAt?: number;
}

/** The principal of every session when authentication is off. */
export const ANONYMOUS: Principal = Object.freeze({
  method: 'none',
  agentId: undefined,
  claims: Object.freeze({}),
});
