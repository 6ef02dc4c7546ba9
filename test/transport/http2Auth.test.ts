import { MeshClient } from '@a2a-mesh/client';
import { http2Transport } from '@a2a-mesh/client/node';
import { SignJWT } from 'jose';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startNode } from '../helpers/node.js';
import { rawH2 } from './h2Raw.js';

const SECRET = 'http2-test-secret-0123456789-abcdefghij';
const ISSUER = 'https://issuer.test';
const AUDIENCE = 'a2a-mesh';

async function jwt(sub: string, secret = SECRET): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .sign(new TextEncoder().encode(secret));
}

const hello = (params: Record<string, unknown> = {}) => ({
  jsonrpc: '2.0',
  id: 'h',
  method: 'mesh/hello',
  params,
});
const json = { 'content-type': 'application/json' };

describe('HTTP sessions with authentication', () => {
  it('checks the hello Authorization header, binds the agent, and takes only requests that repeat it', async () => {
    const node = await startNode({
      auth: { mode: 'jwt', secret: SECRET, issuer: ISSUER, audience: AUDIENCE },
    });
    const h = rawH2(node.httpUrl);

    const forged = await h.request(
      'POST',
      '/mesh/rpc',
      { ...json, authorization: `Bearer ${await jwt('eve', 'x'.repeat(40))}` },
      JSON.stringify(hello()),
    );
    expect(forged.status).toBe(401);
    expect(forged.json).toMatchObject({
      id: 'h',
      error: { code: -32072, data: { reason: 'unauthenticated', closeCode: 4001 } },
    });

    const anonymous = await h.request('POST', '/mesh/rpc', json, JSON.stringify(hello({ agentId: 'anon' })));
    // A refused hello is a method error, as on a WebSocket: no session, no Mesh-Session header.
    expect(anonymous.status).toBe(200);
    expect(anonymous.headers['mesh-session']).toBeUndefined();
    expect(anonymous.json).toMatchObject({ id: 'h', error: { code: -32072 } });

    const authorization = `Bearer ${await jwt('alice')}`;
    const ok = await h.request('POST', '/mesh/rpc', { ...json, authorization }, JSON.stringify(hello()));
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ result: { agentId: 'alice' } });
    const sid = ok.headers['mesh-session'] as string;
    const ping = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'mesh/ping' });

    const bare = await h.request('POST', '/mesh/rpc', { ...json, 'mesh-session': sid }, ping);
    expect(bare.status).toBe(401);
    expect(bare.json).toMatchObject({ error: { code: -32072, data: { reason: 'unauthenticated' } } });
    const other = `Bearer ${await jwt('bob')}`;
    const stolen = await h.request('GET', '/mesh/stream', { 'mesh-session': sid, authorization: other });
    expect(stolen.status).toBe(401);
    const del = await h.request('DELETE', '/mesh/rpc', { 'mesh-session': sid });
    expect(del.status).toBe(401);

    const own = await h.request('POST', '/mesh/rpc', { ...json, 'mesh-session': sid, authorization }, ping);
    expect(own.status).toBe(200);
    expect(own.json).toMatchObject({ id: 1, result: { at: expect.any(Number) } });
  });

  it('lets MeshClient send the credential as a header or in hello, and stops for good on a refused one', async () => {
    const node = await startNode({
      auth: { mode: 'jwt', secret: SECRET, issuer: ISSUER, audience: AUDIENCE },
    });
    const byHeader = new MeshClient({
      url: node.httpUrl,
      transport: http2Transport({ headers: { authorization: `Bearer ${await jwt('carol')}` } }),
    });
    const byToken = new MeshClient({
      url: node.httpUrl,
      transport: http2Transport(),
      token: await jwt('dave'),
    });
    onTestFinished(() => Promise.all([byHeader.close(), byToken.close()]).then(() => undefined));
    expect((await byHeader.connect()).agentId).toBe('carol');
    expect((await byToken.connect()).agentId).toBe('dave');
    expect((await byHeader.getAgent('dave')).online).toBe(true);

    const refused = new MeshClient({
      url: node.httpUrl,
      transport: http2Transport({ headers: { authorization: 'Bearer not-a-jwt' } }),
      reconnect: { initialDelayMs: 10, maxDelayMs: 20 },
    });
    await expect(refused.connect()).rejects.toMatchObject({ message: expect.stringContaining('4001') });
    expect(await refused.closed()).toBeInstanceOf(Error);
  });
});
