import { createPublicKey, type KeyObject } from 'node:crypto';
import { IdSchema, MeshError } from '@a2a-mesh/protocol';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
} from 'jose';
import { AuthError, type AuthFailure } from './authError.js';
import { type Authenticator, readConfigFile } from './authenticator.js';
import type { Principal } from './principal.js';

/** Signature algorithms a node accepts; `none` is never among them. */
export type JwtAlgorithm = 'HS256' | 'RS256' | 'ES256';
const ALGORITHMS: readonly JwtAlgorithm[] = ['HS256', 'RS256', 'ES256'];

/** JWT settings. Give exactly one key source: `secret`/`secretFile`, `publicKey`/`publicKeyFile`, or `jwksUrl`. */
export interface JwtOptions {
  /** HS256 shared secret (at least 32 bytes). */
  secret?: string | Uint8Array;
  /** File holding the HS256 secret (trailing whitespace ignored). */
  secretFile?: string;
  /** RS256/ES256 public key: PEM (SPKI), a JWK or a JWK Set (JSON text). */
  publicKey?: string;
  /** File holding such a public key. */
  publicKeyFile?: string;
  /** A JWK Set URL; keys are cached and re-fetched when a token names an unknown `kid` (rotation). */
  jwksUrl?: string;
  /** Accepted algorithms (default: those the key source can verify: HS256 for a secret, else RS256 and ES256). */
  algorithms?: readonly JwtAlgorithm[];
  /** Required `iss` (one of). */
  issuer?: string | readonly string[];
  /** Required `aud` (one of). */
  audience?: string | readonly string[];
  /** Tolerance on `exp`, `nbf` and `iat`, in ms (default 30000). */
  clockSkewMs?: number;
  /** Claim holding the agent id (default `sub`); its value must be a valid agent id. */
  identityClaim?: string;
  /** Refuse tokens without `exp` (default true). */
  requireExpiry?: boolean;
  /** Least time between two JWKS fetches, in ms (default 30000). */
  jwksCooldownMs?: number;
  /** How long fetched keys are trusted without a re-fetch, in ms (default 600000). */
  jwksCacheMaxAgeMs?: number;
  /** JWKS fetch timeout, in ms (default 5000). */
  jwksTimeoutMs?: number;
}

type KeySource = Uint8Array | KeyObject | JWTVerifyGetKey;

/** JWT bearer tokens verified with `jose`: signature, algorithm allow-list, `iss`, `aud`, `exp`, `nbf`. */
export class JwtAuthenticator implements Authenticator {
  readonly method = 'jwt';
  readonly required = true;

  private constructor(
    readonly key: KeySource,
    readonly algorithms: readonly JwtAlgorithm[],
    readonly remote: boolean,
    readonly options: JwtOptions,
  ) {}

  /** Loads the key source named in `options`. Throws MeshError `bad_config`. */
  static async create(options: JwtOptions): Promise<JwtAuthenticator> {
    const sources = [
      options.secret !== undefined || options.secretFile !== undefined,
      options.publicKey !== undefined || options.publicKeyFile !== undefined,
      options.jwksUrl !== undefined,
    ].filter(Boolean).length;
    if (sources !== 1)
      throw new MeshError('bad_config', 'auth jwt: give exactly one of a secret, a public key, a JWKS URL');
    for (const alg of options.algorithms ?? []) {
      if (!ALGORITHMS.includes(alg))
        throw new MeshError('bad_config', `auth jwt: algorithm ${alg} is not supported`);
    }
    if (options.secret !== undefined || options.secretFile !== undefined) {
      const raw =
        options.secret ?? (await readConfigFile(options.secretFile!, 'JWT secret file')).replace(/\s+$/, '');
      const secret = typeof raw === 'string' ? new TextEncoder().encode(raw) : raw;
      if (secret.byteLength < 32)
        throw new MeshError('bad_config', 'auth jwt: an HS256 secret needs at least 32 bytes');
      return new JwtAuthenticator(secret, pick(options, ['HS256']), false, options);
    }
    if (options.jwksUrl !== undefined) {
      let url: URL;
      try {
        url = new URL(options.jwksUrl);
      } catch (cause) {
        throw new MeshError('bad_config', 'auth jwt: the JWKS URL is not a URL', { cause });
      }
      const jwks = createRemoteJWKSet(url, {
        cooldownDuration: options.jwksCooldownMs ?? 30_000,
        cacheMaxAge: options.jwksCacheMaxAgeMs ?? 600_000,
        timeoutDuration: options.jwksTimeoutMs ?? 5000,
      });
      return new JwtAuthenticator(jwks, pick(options, ['RS256', 'ES256']), true, options);
    }
    const text = options.publicKey ?? (await readConfigFile(options.publicKeyFile!, 'JWT public key file'));
    return new JwtAuthenticator(publicKeySource(text), pick(options, ['RS256', 'ES256']), false, options);
  }

  async authenticate(credential: string | undefined): Promise<Principal> {
    if (credential === undefined || credential === '')
      throw new AuthError('missing', 'a bearer token is required');
    const o = this.options;
    let payload: JWTPayload;
    try {
      const verifyOptions = {
        algorithms: [...this.algorithms],
        clockTolerance: (o.clockSkewMs ?? 30_000) / 1000,
        ...(o.issuer === undefined ? {} : { issuer: o.issuer as string | string[] }),
        ...(o.audience === undefined ? {} : { audience: o.audience as string | string[] }),
        ...(o.requireExpiry === false ? {} : { requiredClaims: ['exp'] }),
      };
      const key = this.key;
      const result =
        typeof key === 'function'
          ? await jwtVerify(credential, key, verifyOptions)
          : await jwtVerify(credential, key, verifyOptions);
      payload = result.payload;
    } catch (error) {
      throw this.#refusal(error);
    }
    const claim = o.identityClaim ?? 'sub';
    const agentId = payload[claim];
    if (typeof agentId !== 'string' || !IdSchema.safeParse(agentId).success) {
      throw new AuthError('no_identity', `claim ${claim} is not a valid agent id`);
    }
    return Object.freeze({
      method: 'jwt',
      agentId,
      claims: Object.freeze({ ...payload }),
      ...(typeof payload.exp === 'number' ? { expiresAt: payload.exp * 1000 } : {}),
    });
  }

  #refusal(error: unknown): AuthError {
    const failure = failureOf(error, this.remote);
    return new AuthError(failure, messages[failure], { cause: error });
  }
}

function pick(options: JwtOptions, possible: JwtAlgorithm[]): JwtAlgorithm[] {
  const wanted = options.algorithms ?? possible;
  const algs = wanted.filter((a) => possible.includes(a));
  if (algs.length === 0)
    throw new MeshError('bad_config', `auth jwt: this key source verifies only ${possible.join(', ')}`);
  return algs;
}

/** A verification key from PEM (SPKI), a JWK or a JWK Set. */
function publicKeySource(text: string): KeyObject | JWTVerifyGetKey {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch (cause) {
      throw new MeshError('bad_config', 'auth jwt: the public key is neither PEM nor JSON', { cause });
    }
    const set = (
      typeof value === 'object' && value !== null && 'keys' in value ? value : { keys: [value] }
    ) as JSONWebKeySet;
    try {
      return createLocalJWKSet(set);
    } catch (cause) {
      throw new MeshError('bad_config', 'auth jwt: invalid JWK Set', { cause });
    }
  }
  try {
    const key = createPublicKey(trimmed);
    if (key.type !== 'public') throw new Error('not a public key');
    return key;
  } catch (cause) {
    throw new MeshError('bad_config', 'auth jwt: the public key cannot be read (PEM SPKI, JWK or JWK Set)', {
      cause,
    });
  }
}

const messages: Record<AuthFailure, string> = {
  missing: 'a bearer token is required',
  malformed: 'the token is not a valid JWT',
  unknown_key: 'the token is signed with an unknown key',
  bad_signature: 'the token signature is invalid',
  algorithm_not_allowed: 'the token algorithm is not allowed',
  expired: 'the token has expired',
  not_yet_valid: 'the token is not valid yet',
  bad_issuer: 'the token issuer is not accepted',
  bad_audience: 'the token audience is not accepted',
  bad_claims: 'the token claims are not accepted',
  no_identity: 'the token names no valid agent id',
  keys_unavailable: 'the signing keys cannot be fetched now',
};

function failureOf(error: unknown, remote: boolean): AuthFailure {
  if (error instanceof errors.JWTExpired) return 'expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'aud') return 'bad_audience';
    if (error.claim === 'iss') return 'bad_issuer';
    if (error.claim === 'nbf') return 'not_yet_valid';
    return 'bad_claims';
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported)
    return 'algorithm_not_allowed';
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys)
    return 'unknown_key';
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return 'malformed';
  if (error instanceof errors.JWKSTimeout) return 'keys_unavailable';
  if (error instanceof errors.JWKInvalid || error instanceof errors.JWKSInvalid)
    return remote ? 'keys_unavailable' : 'unknown_key';
  // Anything else while keys come from a URL is the fetch failing (network, HTTP status).
  return remote ? 'keys_unavailable' : 'malformed';
}
