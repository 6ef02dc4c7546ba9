import { createServer, IncomingMessage } from 'node:http';
import { type ClientHttp2Session, constants, Http2ServerRequest, connect as h2connect } from 'node:http2';
import pino from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { HttpRouter, readBody, sendJson } from '../../src/transport/httpRouter.js';
import { listenMesh } from '../../src/transport/listener.js';
import { eventually } from '../helpers/node.js';

/**
 * The node's router on its one port: stream routes (`addStream`) answer HTTP/2 requests on the
 * stream itself, without Node's compatibility objects, and HTTP/1.1 requests as usual; every other
 * route gets the compatibility API, made the way Node makes it (CONNECT, `Expect`).
 */
async function serve() {
  const errors: string[] = [];
  const seen: string[] = [];
  const router = new HttpRouter((error, path) => errors.push(`${path}: ${(error as Error).message}`));
  router.addStream('POST', '/echo/:name', async (req, res, params) => {
    seen.push(
      req instanceof IncomingMessage ? 'http1' : req instanceof Http2ServerRequest ? 'compat' : 'stream',
    );
    const body = await readBody(req, 64);
    sendJson(res, 200, { name: params.name, body: body.toString(), agent: req.headers['x-agent'] });
  });
  router.addStream('POST', '/throw', async (req) => {
    await readBody(req, 64);
    throw new Error('handler broke');
  });
  router.addStream('POST', '/hold', (req, res) => {
    // Answers only when the client is gone: nothing to write to.
    res.once('close', () => seen.push(`hold closed, ended ${res.writableEnded}`));
    req.on('data', () => {});
  });
  router.addStream('GET', '/big/:kib', (_req, res, params) => {
    // A body far over the client's flow-control window (64 KiB): its write completes only as the
    // client reads, and the stream is ended after it.
    sendJson(res, 200, { fill: 'x'.repeat(Number(params.kib) * 1024) });
  });
  router.add('GET', '/bigcompat/:kib', (_req, res, params) => {
    sendJson(res, 200, { fill: 'y'.repeat(Number(params.kib) * 1024) });
  });
  router.add('GET', '/q/:name', (_req, res, params, url) => {
    const answer = { name: params.name, q: url.searchParams.get('q'), path: url.pathname };
    // A handler that changes what it was given changes nothing for the next request.
    params.name = 'changed';
    url.searchParams.set('q', 'changed');
    sendJson(res, 200, answer);
  });
  router.add('GET', '/plain', (req, res) => {
    seen.push(req instanceof Http2ServerRequest ? 'compat' : 'http1');
    sendJson(res, 200, { plain: true });
  });
  const http1 = createServer((req, res) => router.handle(req, res));
  const listener = await listenMesh({
    host: '127.0.0.1',
    port: 0,
    http1,
    onHttp2Stream: (stream, headers) => router.handleStream(stream, headers),
    onHttp2Request: (req, res) => router.handle(req, res),
    logger: pino({ level: 'silent' }),
  });
  onTestFinished(async () => {
    listener.closeAllConnections();
    await listener.close();
  });
  const session = h2connect(`http://127.0.0.1:${listener.port}`);
  onTestFinished(() => {
    session.destroy();
  });
  return { base: `http://127.0.0.1:${listener.port}`, session, errors, seen };
}

interface H2Answer {
  status: number;
  headers: Record<string, unknown>;
  body: string;
  interim: number[];
}

function h2(session: ClientHttp2Session, headers: Record<string, string>, body?: string): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: body === undefined });
    const interim: number[] = [];
    let status = 0;
    let got: Record<string, unknown> = {};
    let text = '';
    req.on('headers', (h) => interim.push(Number(h[':status'])));
    req.on('response', (h) => {
      status = Number(h[':status']);
      got = h;
    });
    req.on('data', (d: Buffer) => {
      text += d;
    });
    req.on('end', () => resolve({ status, headers: got, body: text, interim }));
    req.on('error', reject);
    if (body !== undefined) req.end(body);
  });
}

describe('HTTP router: stream routes and the compatibility API', () => {
  it('answers a stream route on the HTTP/2 stream itself, and over HTTP/1.1 as usual', async () => {
    const { base, session, seen } = await serve();
    const a = await h2(session, { ':method': 'POST', ':path': '/echo/x%20y?q=1', 'x-agent': 'h2' }, 'hello');
    expect(a.status).toBe(200);
    expect(a.headers['content-type']).toBe('application/json');
    expect(JSON.parse(a.body)).toEqual({ name: 'x y', body: 'hello', agent: 'h2' });
    const b = await fetch(`${base}/echo/one`, {
      method: 'POST',
      body: 'world',
      headers: { 'x-agent': 'h1' },
    });
    expect(await b.json()).toEqual({ name: 'one', body: 'world', agent: 'h1' });
    const plain = await h2(session, { ':method': 'GET', ':path': '/plain' });
    expect(JSON.parse(plain.body)).toEqual({ plain: true });
    expect(seen).toEqual(['stream', 'http1', 'compat']);
  });

  it('leaves wrong methods and unknown paths to the compatibility API: 405 with allow, 404', async () => {
    const { session, seen } = await serve();
    const wrong = await h2(session, { ':method': 'GET', ':path': '/echo/x' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.allow).toBe('POST');
    const missing = await h2(session, { ':method': 'POST', ':path': '/nowhere' }, '');
    expect(missing.status).toBe(404);
    expect(seen).toEqual([]);
  });

  it('answers 500 when a stream handler throws, and tells onError the path', async () => {
    const { session, errors } = await serve();
    const a = await h2(session, { ':method': 'POST', ':path': '/throw' }, 'x');
    expect(a.status).toBe(500);
    expect(JSON.parse(a.body)).toEqual({ error: 'internal error' });
    expect(errors).toEqual(['/throw: handler broke']);
  });

  it('survives a client that resets a stream route with an error code, and tells the handler', async () => {
    const { session, seen } = await serve();
    const req = session.request({ ':method': 'POST', ':path': '/hold' });
    req.on('error', () => {});
    req.write('partial');
    await new Promise((r) => setTimeout(r, 50));
    req.close(constants.NGHTTP2_INTERNAL_ERROR);
    await eventually(() => expect(seen).toEqual(['hold closed, ended false']));
    // The session still serves.
    const a = await h2(session, { ':method': 'POST', ':path': '/echo/after' }, 'ok');
    expect(JSON.parse(a.body).body).toBe('ok');
  });

  it('ends a response after its body is written: small and large bodies arrive whole, with their length', async () => {
    const { session } = await serve();
    for (const path of ['/big/0', '/big/1', '/big/1024', '/bigcompat/0', '/bigcompat/1024']) {
      const a = await h2(session, { ':method': 'GET', ':path': path });
      expect(a.status).toBe(200);
      expect(Number(a.headers['content-length'])).toBe(Buffer.byteLength(a.body));
      const kib = Number(path.split('/')[2]);
      expect((JSON.parse(a.body) as { fill: string }).fill.length).toBe(kib * 1024);
    }
    // Many answers in flight on one session, each ended after its own write.
    const many = await Promise.all(
      Array.from({ length: 64 }, (_, i) =>
        h2(session, { ':method': 'POST', ':path': `/echo/n${i}` }, `body ${i}`),
      ),
    );
    expect(many.map((a) => JSON.parse(a.body).body)).toEqual(many.map((_, i) => `body ${i}`));
  });

  it('parses each request target as URL does, the same target again too, past the parsed-target cache', async () => {
    const { session, base } = await serve();
    const get = async (path: string) =>
      JSON.parse((await h2(session, { ':method': 'GET', ':path': path })).body);
    // The same target twice, and the same path with another query.
    expect(await get('/q/a%20b?q=1')).toEqual({ name: 'a b', q: '1', path: '/q/a%20b' });
    expect(await get('/q/a%20b?q=1')).toEqual({ name: 'a b', q: '1', path: '/q/a%20b' });
    expect(await get('/q/a%20b?q=2')).toEqual({ name: 'a b', q: '2', path: '/q/a%20b' });
    expect(await get('/q/a%20b')).toEqual({ name: 'a b', q: null, path: '/q/a%20b' });
    // URL's normalisation: dot segments resolved, empty segments skipped.
    expect(await get('/q/x/../y?q=3')).toEqual({ name: 'y', q: '3', path: '/q/y' });
    expect(await get('/q//z')).toEqual({ name: 'z', q: null, path: '/q//z' });
    // More distinct targets than the router keeps parsed, then the first ones again.
    for (let round = 0; round < 2; round++) {
      const answers = await Promise.all(Array.from({ length: 600 }, (_, i) => get(`/q/n${i}?q=${i}`)));
      expect(answers.map((a) => `${a.name}:${a.q}`)).toEqual(answers.map((_, i) => `n${i}:${i}`));
    }
    // HTTP/1.1 goes the same way.
    const h1 = await fetch(`${base}/q/one?q=h1`);
    expect(await h1.json()).toEqual({ name: 'one', q: 'h1', path: '/q/one' });
  });

  it('survives a client that resets a stream while a large body is still being written', async () => {
    const { session } = await serve();
    for (const path of ['/big/1024', '/bigcompat/1024']) {
      const req = session.request({ ':method': 'GET', ':path': path });
      req.on('error', () => {});
      // Reads the first chunk only, then resets: the server's write is still pending.
      await new Promise<void>((resolve) => req.once('data', () => resolve()));
      req.close(constants.NGHTTP2_CANCEL);
    }
    const a = await h2(session, { ':method': 'POST', ':path': '/echo/after' }, 'ok');
    expect(JSON.parse(a.body).body).toBe('ok');
  });

  it('makes compatibility requests the way Node does: Expect 100-continue, other expectations 417, CONNECT 405', async () => {
    const { session } = await serve();
    const cont = await h2(session, { ':method': 'GET', ':path': '/plain', expect: '100-continue' });
    expect(cont.interim).toEqual([100]);
    expect(cont.status).toBe(200);
    const odd = await h2(session, { ':method': 'GET', ':path': '/plain', expect: 'something' });
    expect(odd.status).toBe(417);
    const tunnel = await h2(session, { ':method': 'CONNECT', ':authority': 'example.com:443' });
    expect(tunnel.status).toBe(405);
  });
});
