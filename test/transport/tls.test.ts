import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { MeshClient } from '@a2a-mesh/client';
import { http2Transport } from '@a2a-mesh/client/node';
import { describe, expect, it, onTestFinished } from 'vitest';
import WebSocket from 'ws';
import { startNode } from '../helpers/node.js';
import { rawH2 } from './h2Raw.js';

/** A self-signed certificate for 127.0.0.1 and localhost, in a temporary directory. */
function selfSigned(): { certFile: string; keyFile: string; ca: Buffer; key: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-tls-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: 'ignore' },
  );
  return { certFile, keyFile, ca: readFileSync(certFile), key: readFileSync(keyFile) };
}

describe('TLS port', () => {
  it('negotiates h2 by ALPN, and serves HTTP/1.1 and WebSocket on the same port', async () => {
    const { certFile, keyFile, ca } = selfSigned();
    const node = await startNode({ tls: { certFile, keyFile } });
    expect(node.httpUrl).toBe(`https://127.0.0.1:${node.port}`);
    expect(node.url).toBe(`wss://127.0.0.1:${node.port}/mesh`);

    const h2 = rawH2(node.httpUrl, { ca });
    await new Promise((r) => h2.session.once('connect', r));
    expect(h2.session.alpnProtocol).toBe('h2');
    const sid = await h2.hello('tls-agent');
    const ping = await h2.rpc({ jsonrpc: '2.0', id: 1, method: 'mesh/ping' }, sid);
    expect(ping.json).toMatchObject({ id: 1, result: { at: expect.any(Number) } });

    const get = (alpn: string[] | undefined) =>
      new Promise<{ status: number; alpn: string | false | null; body: string }>((resolve, reject) => {
        // ALPNProtocols reaches tls.connect; the https typings just do not list it.
        const options = { ca, agent: false, ...(alpn ? { ALPNProtocols: alpn } : {}) } as RequestOptions;
        const req = httpsRequest(`${node.httpUrl}/health`, options, (res) => {
          let body = '';
          res.on('data', (d) => {
            body += d;
          });
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, alpn: (res.socket as TLSSocket).alpnProtocol, body }),
          );
        });
        req.on('error', reject);
        req.end();
      });
    const health = await get(['http/1.1']);
    // A client that offers no ALPN at all speaks HTTP/1.1 too.
    expect(await get(undefined)).toMatchObject({ status: 200, alpn: false });
    expect(health).toMatchObject({ status: 200, alpn: 'http/1.1' });
    expect(JSON.parse(health.body)).toMatchObject({ status: 'ok', nodeId: node.nodeId });

    class TrustingWebSocket extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { ca });
      }
    }
    const overWs = new MeshClient({
      url: node.url,
      agentId: 'ws-agent',
      WebSocket: TrustingWebSocket,
      reconnect: false,
    });
    const overH2 = new MeshClient({
      url: node.httpUrl,
      agentId: 'h2-agent',
      transport: http2Transport({ tls: { ca } }),
      reconnect: false,
    });
    onTestFinished(() => Promise.all([overWs.close(), overH2.close()]).then(() => undefined));
    await Promise.all([overWs.connect(), overH2.connect()]);
    overH2.onConversation(async (turn) => `over h2: ${turn.message.parts[0]?.text}`);
    const { reply } = await overWs.startConversation({ to: { agentId: 'h2-agent' }, message: 'hello' });
    expect(reply.parts).toEqual([{ text: 'over h2: hello' }]);
  });

  it('asks for client certificates signed by caFile (mutual TLS)', async () => {
    const server = selfSigned();
    const agent = selfSigned();
    const node = await startNode({
      tls: { certFile: server.certFile, keyFile: server.keyFile, caFile: agent.certFile },
    });
    const anonymous = new MeshClient({
      url: node.httpUrl,
      transport: http2Transport({ tls: { ca: server.ca } }),
      reconnect: false,
    });
    await expect(anonymous.connect()).rejects.toMatchObject({ code: 'connection_lost' });
    const known = new MeshClient({
      url: node.httpUrl,
      agentId: 'known',
      transport: http2Transport({ tls: { ca: server.ca, cert: agent.ca, key: agent.key } }),
      reconnect: false,
    });
    onTestFinished(() => known.close());
    expect((await known.connect()).agentId).toBe('known');
  });

  it('refuses clients that do not trust the certificate', async () => {
    const { certFile, keyFile } = selfSigned();
    const node = await startNode({ tls: { certFile, keyFile } });
    const client = new MeshClient({ url: node.httpUrl, transport: http2Transport(), reconnect: false });
    await expect(client.connect()).rejects.toMatchObject({ code: 'connection_lost' });
  });
});
