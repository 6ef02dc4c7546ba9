import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { IdSchema, MeshError } from '@a2a-mesh/protocol';
import { z } from 'zod';
import { AuthError } from './authError.js';
import type { Authenticator } from './authenticator.js';
import type { Principal } from './principal.js';

/** One configured API key: the agent it authenticates and the SHA-256 (hex) of the key. */
export interface ApiKeyEntry {
  agentId: string;
  /** Lower-case hex SHA-256 of the key (see `hashApiKey`). */
  sha256: string;
  /** Claims the key grants (e.g. `topics`), as a JWT would carry them. */
  claims?: Record<string, unknown>;
}

const ApiKeyEntrySchema = z.object({
  agentId: IdSchema,
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'sha256 is 64 lower-case hex digits'),
  claims: z.record(z.string(), z.unknown()).optional(),
});
const ApiKeyFileSchema = z.union([
  z.array(ApiKeyEntrySchema),
  z.object({ keys: z.array(ApiKeyEntrySchema) }),
]);

/** The stored form of an API key: lower-case hex SHA-256 of its UTF-8 bytes. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/**
 * A new random API key (256 bits, base64url, prefixed `mk_`). Keys this long need no slow hash:
 * SHA-256 of a 256-bit random secret cannot be reversed by guessing.
 */
export function generateApiKey(): string {
  return `mk_${randomBytes(32).toString('base64url')}`;
}

/** Parses an API key file (`{"keys": [...]}` or an array of entries). Throws MeshError `bad_config`. */
export function parseApiKeyFile(text: string, name: string): ApiKeyEntry[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new MeshError('bad_config', `API key file ${name} is not JSON`, { cause });
  }
  const parsed = ApiKeyFileSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new MeshError(
      'bad_config',
      `API key file ${name}: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}`,
    );
  }
  const entries = Array.isArray(parsed.data) ? parsed.data : parsed.data.keys;
  return entries.map((e) => ({
    agentId: e.agentId,
    sha256: e.sha256,
    ...(e.claims ? { claims: e.claims } : {}),
  }));
}

interface StoredKey {
  digest: Buffer;
  principal: Principal;
}

/** Static API keys: the presented key's SHA-256 is compared, in constant time, with every stored one. */
export class ApiKeyAuthenticator implements Authenticator {
  readonly method = 'apikey';
  readonly required = true;
  readonly #keys: StoredKey[];

  constructor(entries: readonly ApiKeyEntry[]) {
    this.#keys = entries.map((e) => {
      const parsed = ApiKeyEntrySchema.safeParse(e);
      if (!parsed.success)
        throw new MeshError('bad_config', `API key for ${e.agentId}: ${parsed.error.message}`);
      return {
        digest: Buffer.from(e.sha256, 'hex'),
        principal: Object.freeze({
          method: 'apikey',
          agentId: e.agentId,
          claims: Object.freeze({ ...e.claims }),
        }),
      };
    });
  }

  async authenticate(credential: string | undefined): Promise<Principal> {
    if (credential === undefined || credential === '')
      throw new AuthError('missing', 'an API key is required');
    const digest = createHash('sha256').update(credential, 'utf8').digest();
    let found: Principal | undefined;
    // Every stored key is compared, so the time taken does not tell which one (if any) came close.
    for (const key of this.#keys) {
      if (timingSafeEqual(digest, key.digest) && found === undefined) found = key.principal;
    }
    if (!found) throw new AuthError('unknown_key', 'unknown API key');
    return found;
  }
}
