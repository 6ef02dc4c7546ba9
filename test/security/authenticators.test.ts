import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MeshError } from '@a2a-mesh/protocol';
import { exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT } from 'jose';
import { describe, expect, it, onTestFinished } from 'vitest';
import { generateApiKey, hashApiKey, parseApiKeyFile } from '../../src/auth/apiKeys.js';
import { AuthError } from '../../src/auth/authError.js';
import { createAuthenticator } from '../../src/auth/authenticator.js';
import { bearerToken, isLoopbackHost } from '../../src/auth/bearer.js';
import { JwtAuthenticator } from '../../src/auth/jwt.js';
import { startNode } from '../helpers/node.js';
import { agent } from './helpers.js';

async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (error) {
    if (error instanceof AuthError) return error.failure;
    throw error;
  }
  throw new Error('expected an AuthError');
}

async function sign(
  key: Parameters<SignJWT['sign']>[0],
  alg: string,
  claims: Record<string, unknown>,
  kid?: string,
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ exp: now + 60, ...claims })
    .setProtectedHeader({ alg, ...(kid ? { kid } : {}) })
    .setIssuedAt(now)
    .sign(key);
}

describe('API keys', () => {
  it('stores SHA-256 only, matches in constant time, names the agent and its claims', async () => {
    const key = generateApiKey();
    expect(key).toMatch(/^mk_[A-Za-z0-9_-]{43}$/);
    expect(hashApiKey(key)).toMatch(/^[0-9a-f]{64}$/);
    const auth = await createAuthenticator({
      mode: 'apikey',
      keys: [{ agentId: 'alice', sha256: hashApiKey(key), claims: { team: 'blue' } }],
    });
    expect(auth.required).toBe(true);
    const p = await auth.authenticate(key);
    expect(p).toMatchObject({ method: 'apikey', agentId: 'alice', claims: { team: 'blue' } });
    expect(await failure(auth.authenticate(`${key}x`))).toBe('unknown_key');
    expect(await failure(auth.authenticate(undefined))).toBe('missing');
  });

  it('reads a key file and refuses a bad one without echoing it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mesh-keys-'));
    const file = join(dir, 'keys.json');
    const key = generateApiKey();
    await writeFile(file, JSON.stringify({ keys: [{ agentId: 'bob', sha256: hashApiKey(key) }] }));
    const auth = await createAuthenticator({ mode: 'apikey', keysFile: file });
    expect((await auth.authenticate(key)).agentId).toBe('bob');
    expect(() => parseApiKeyFile('{"keys":[{"agentId":"bob","sha256":"plaintext-key"}]}', 'k.json')).toThrow(
      /sha256/,
    );
    await expect(createAuthenticator({ mode: 'apikey', keys: [] })).rejects.toBeInstanceOf(MeshError);
  });
});

describe('JWT', () => {
  it('HS256: checks signature, iss, aud, exp, nbf with skew; names the agent by sub or a claim', async () => {
    const secret = new TextEncoder().encode('s'.repeat(32));
    const auth = await JwtAuthenticator.create({ secret, issuer: 'iss', audience: 'aud', clockSkewMs: 5000 });
    const now = Math.floor(Date.now() / 1000);
    const base = { iss: 'iss', aud: 'aud', sub: 'alice', exp: now + 60 };
    const ok = await auth.authenticate(await sign(secret, 'HS256', base));
    expect(ok).toMatchObject({ method: 'jwt', agentId: 'alice', expiresAt: (now + 60) * 1000 });
    // Within the skew: accepted; beyond it: refused.
    expect((await auth.authenticate(await sign(secret, 'HS256', { ...base, exp: now - 2 }))).agentId).toBe(
      'alice',
    );
    expect(await failure(auth.authenticate(await sign(secret, 'HS256', { ...base, exp: now - 30 })))).toBe(
      'expired',
    );
    expect(await failure(auth.authenticate(await sign(secret, 'HS256', { ...base, nbf: now + 30 })))).toBe(
      'not_yet_valid',
    );
    expect(await failure(auth.authenticate(await sign(secret, 'HS256', { ...base, aud: 'x' })))).toBe(
      'bad_audience',
    );
    expect(await failure(auth.authenticate(await sign(secret, 'HS256', { ...base, iss: 'x' })))).toBe(
      'bad_issuer',
    );
    const { exp: _exp, ...noExp } = base;
    expect(
      await failure(
        auth.authenticate(await new SignJWT(noExp).setProtectedHeader({ alg: 'HS256' }).sign(secret)),
      ),
    ).toBe('bad_claims');
    expect(
      await failure(auth.authenticate(await sign(secret, 'HS256', { ...base, sub: 'not an id!' }))),
    ).toBe('no_identity');
    const other = new TextEncoder().encode('t'.repeat(32));
    expect(await failure(auth.authenticate(await sign(other, 'HS256', base)))).toBe('bad_signature');
    // HS384 with the right secret is not on the allow-list.
    expect(await failure(auth.authenticate(await sign(secret, 'HS384', base)))).toBe('algorithm_not_allowed');

    const byClaim = await JwtAuthenticator.create({ secret, identityClaim: 'agent_id' });
    const p = await byClaim.authenticate(
      await sign(secret, 'HS256', { sub: 'user@example', agent_id: 'bot-1' }),
    );
    expect(p.agentId).toBe('bot-1');
    await expect(JwtAuthenticator.create({ secret: 'short' })).rejects.toThrow(/32 bytes/);
    await expect(JwtAuthenticator.create({ secret, jwksUrl: 'http://x' })).rejects.toThrow(/exactly one/);
  });

  it('RS256 and ES256 from PEM, JWK and JWK Set files; an RSA key does not verify ES256 and vice versa', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mesh-jwt-'));
    const rsa = await generateKeyPair('RS256', { extractable: true });
    const ec = await generateKeyPair('ES256', { extractable: true });
    const rsaPem = join(dir, 'rsa.pem');
    await writeFile(rsaPem, await exportSPKI(rsa.publicKey));
    const ecJwk = join(dir, 'ec.jwk');
    await writeFile(ecJwk, JSON.stringify(await exportJWK(ec.publicKey)));
    const set = join(dir, 'set.json');
    await writeFile(
      set,
      JSON.stringify({ keys: [{ ...(await exportJWK(rsa.publicKey)), kid: 'r1', alg: 'RS256' }] }),
    );
    const claims = { sub: 'carol' };
    const byPem = await createAuthenticator({ mode: 'jwt', publicKeyFile: rsaPem });
    expect((await byPem.authenticate(await sign(rsa.privateKey, 'RS256', claims))).agentId).toBe('carol');
    expect(await failure(byPem.authenticate(await sign(ec.privateKey, 'ES256', claims)))).not.toBe(undefined);
    const byJwk = await createAuthenticator({ mode: 'jwt', publicKeyFile: ecJwk });
    expect((await byJwk.authenticate(await sign(ec.privateKey, 'ES256', claims))).agentId).toBe('carol');
    const bySet = await createAuthenticator({ mode: 'jwt', publicKeyFile: set });
    expect((await bySet.authenticate(await sign(rsa.privateKey, 'RS256', claims, 'r1'))).agentId).toBe(
      'carol',
    );
    // A public-key node never accepts HS256 signed with the public key text (algorithm confusion).
    const pemText = new TextEncoder().encode(await exportSPKI(rsa.publicKey));
    expect(await failure(byPem.authenticate(await sign(pemText, 'HS256', claims)))).toBe(
      'algorithm_not_allowed',
    );
  });

  it('JWKS URL: keys are fetched, a rotated key is picked up, an unreachable set is retryable', async () => {
    const k1 = await generateKeyPair('RS256', { extractable: true });
    const k2 = await generateKeyPair('ES256', { extractable: true });
    const jwk = async (
      k: CryptoKey | import('node:crypto').KeyObject,
      kid: string,
      alg: string,
    ): Promise<JWK> => ({
      ...(await exportJWK(k)),
      kid,
      alg,
    });
    let keys: JWK[] = [await jwk(k1.publicKey, 'k1', 'RS256')];
    let fetches = 0;
    const server = createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    onTestFinished(() => new Promise<void>((r) => server.close(() => r())));
    const jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;

    const auth = await createAuthenticator({
      mode: 'jwt',
      jwksUrl,
      jwksCooldownMs: 0,
      jwksCacheMaxAgeMs: 60_000,
    });
    expect((await auth.authenticate(await sign(k1.privateKey, 'RS256', { sub: 'a' }, 'k1'))).agentId).toBe(
      'a',
    );
    expect(fetches).toBe(1);

    // Rotation: the issuer publishes k2 and drops k1. A token naming k2 makes the node re-fetch.
    keys = [await jwk(k2.publicKey, 'k2', 'ES256')];
    expect((await auth.authenticate(await sign(k2.privateKey, 'ES256', { sub: 'b' }, 'k2'))).agentId).toBe(
      'b',
    );
    expect(fetches).toBe(2);

    // Over sockets too: a node on this JWKS accepts agents signed with the new key.
    const node = await startNode({ auth: { mode: 'jwt', jwksUrl, jwksCooldownMs: 0 } });
    const c = await agent(node.url, 'ignored').catch(() => undefined);
    expect(c).toBeUndefined(); // helper signs with the HS256 test secret: refused
    const { wire } = await import('./helpers.js');
    const ws = await wire(node.url, {
      authorization: `Bearer ${await sign(k2.privateKey, 'ES256', { sub: 'rotated' }, 'k2')}`,
    });
    expect((await ws.call('mesh/hello', {})).result?.agentId).toBe('rotated');

    // The set goes away: a retryable failure, not a refusal.
    const gone = await createAuthenticator({ mode: 'jwt', jwksUrl: 'http://127.0.0.1:1/jwks.json' });
    const error = await gone
      .authenticate(await sign(k1.privateKey, 'RS256', { sub: 'a' }, 'k1'))
      .catch((e) => e);
    expect(error).toBeInstanceOf(AuthError);
    expect((error as AuthError).failure).toBe('keys_unavailable');
    expect((error as AuthError).retryable).toBe(true);
  });
});

describe('bearer headers and loopback', () => {
  it('parses Bearer tokens and refuses other schemes', () => {
    expect(bearerToken(undefined)).toBeUndefined();
    expect(bearerToken('Bearer abc.def-_~+/=')).toBe('abc.def-_~+/=');
    expect(bearerToken('bearer   xyz')).toBe('xyz');
    expect(() => bearerToken('Basic dXNlcjpwYXNz')).toThrow(AuthError);
    expect(() => bearerToken('Bearer ')).toThrow(AuthError);
  });

  it('knows loopback hosts', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]'])
      expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', 'example.com']) expect(isLoopbackHost(h), h).toBe(false);
  });
});
