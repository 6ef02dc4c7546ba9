/**
 * Why a credential was refused. Stable strings: they reach the agent in `data.detail` of -32072 and
 * the audit log, and never carry any part of the credential.
 */
export type AuthFailure =
  | 'missing'
  | 'malformed'
  | 'unknown_key'
  | 'bad_signature'
  | 'algorithm_not_allowed'
  | 'expired'
  | 'not_yet_valid'
  | 'bad_issuer'
  | 'bad_audience'
  | 'bad_claims'
  | 'no_identity'
  | 'keys_unavailable';

/** A refused credential. `retryable` when the node, not the credential, is at fault (keys unreachable). */
export class AuthError extends Error {
  override readonly name = 'AuthError';

  constructor(
    readonly failure: AuthFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** True when the same credential may pass later (the JWKS could not be fetched). */
  get retryable(): boolean {
    return this.failure === 'keys_unavailable';
  }
}
