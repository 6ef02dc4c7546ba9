import { readFile } from 'node:fs/promises';
import { MeshError } from '@a2a-mesh/protocol';
import { ApiKeyAuthenticator, type ApiKeyEntry, parseApiKeyFile } from './apiKeys.js';
import { AuthError } from './authError.js';
import { JwtAuthenticator, type JwtOptions } from './jwt.js';
import { ANONYMOUS, type AuthMethod, type Principal } from './principal.js';

/** Turns a credential (a bearer token or API key) into a principal, or rejects with AuthError. */
export interface Authenticator {
  readonly method: AuthMethod;
  /** True when a session must present a credential (every mode but `none`). */
  readonly required: boolean;
  /** Checks `credential` (undefined: none was presented). Rejects with AuthError; never logs it. */
  authenticate(credential: string | undefined): Promise<Principal>;
}

/** How a node authenticates agents. `none` is for development on loopback only. */
export type AuthConfig =
  | { mode: 'none' }
  | {
      mode: 'apikey';
      /** Keys as stored: the agent each one names and the SHA-256 of the key, never the key itself. */
      keys?: readonly ApiKeyEntry[];
      /** A JSON file holding such entries (`{"keys": [...]}` or an array). */
      keysFile?: string;
    }
  | ({ mode: 'jwt' } & JwtOptions);

/** No authentication: every session is anonymous and names its own agent id. */
export class NoAuthenticator implements Authenticator {
  readonly method = 'none';
  readonly required = false;

  async authenticate(): Promise<Principal> {
    return ANONYMOUS;
  }
}

/** Builds the authenticator for a config, reading key files. Throws MeshError `bad_config` on bad config. */
export async function createAuthenticator(config: AuthConfig = { mode: 'none' }): Promise<Authenticator> {
  switch (config.mode) {
    case 'none':
      return new NoAuthenticator();
    case 'apikey': {
      const entries = [...(config.keys ?? [])];
      if (config.keysFile !== undefined) {
        const text = await readConfigFile(config.keysFile, 'API key file');
        entries.push(...parseApiKeyFile(text, config.keysFile));
      }
      if (entries.length === 0) throw new MeshError('bad_config', 'auth apikey: no keys configured');
      return new ApiKeyAuthenticator(entries);
    }
    case 'jwt':
      return JwtAuthenticator.create(config);
    default:
      throw new MeshError(
        'bad_config',
        `unknown auth mode ${JSON.stringify((config as { mode: unknown }).mode)}`,
      );
  }
}

/** Reads a config file, naming it (never its content) on failure. */
export async function readConfigFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    throw new MeshError('bad_config', `${what} ${path} cannot be read`, { cause });
  }
}

export { AuthError };
