import { Writable } from 'node:stream';
import { SignJWT } from 'jose';
import pino, { type Logger } from 'pino';
import WebSocket from 'ws';
import type { MeshNodeOptions } from '../../src/index.js';
import { startNode } from '../helpers/node.js';

/** The HS256 secret of the test nodes (32+ bytes). */
export const SECRET = 'test-secret-0123456789-abcdefghijklmnop';
export const ISSUER = 'https://issuer.test';
export const AUDIENCE = 'a2a-mesh';

/** Options of `token`. Times in seconds from now. */
export interface TokenOptions {
  sub?: string;
  expiresInS?: number;
  notBeforeInS?: number;
  audience?: string;
  issuer?: string;
  secret?: string;
  claims?: Record<string, unknown>;
}

/** An HS256 JWT for the test nodes. */
export async function token(o: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ ...o.claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt(now)
    .setIssuer(o.issuer ?? ISSUER)
    .setAudience(o.audience ?? AUDIENCE)
    .setExpirationTime(now + (o.expiresInS ?? 600));
  if (o.sub !== undefined) jwt.setSubject(o.sub);
  if (o.notBeforeInS !== undefined) jwt.setNotBefore(now + o.notBeforeInS);
  return jwt.sign(new TextEncoder().encode(o.secret ?? SECRET));
}

/** A JWT with `alg: none` (unsigned), as an attacker would forge it. */
export function unsignedToken(sub: string): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ sub, iss: ISSUER, aud: AUDIENCE, exp: now + 600 })}.`;
}

/** A pino logger that keeps every line it writes (at `level`). */
export interface CapturedLog {
  logger: Logger;
  lines: string[];
  records(): Record<string, unknown>[];
  /** The audit records (`audit` field), in order. */
  audit(): Record<string, unknown>[];
}

export function captureLog(level = 'trace'): CapturedLog {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(line);
      done();
    },
  });
  const logger = pino({ level }, sink);
  const records = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { logger, lines, records, audit: () => records().filter((r) => typeof r.audit === 'string') };
}

/** Starts a node with JWT (HS256) auth; its logs and audit records are captured. */
export async function startJwtNode(
  options: MeshNodeOptions = {},
): Promise<{ node: Awaited<ReturnType<typeof startNode>>; log: CapturedLog }> {
  const log = captureLog();
  const node = await startNode({
    auth: { mode: 'jwt', secret: SECRET, issuer: ISSUER, audience: AUDIENCE },
    logger: log.logger,
    ...options,
  });
  return { node, log };
}

type Msg = Record<string, unknown> & {
  result?: Record<string, unknown>;
  error?: { code: number; message: string; data: Record<string, unknown> & { reason: string } };
};

/** A frame-level client with handshake headers; keeps notifications and the close code. */
export interface WireClient {
  readonly ws: WebSocket;
  readonly notifications: { method: string; params: Record<string, unknown> }[];
  call(method: string, params?: unknown): Promise<Msg>;
  /** Sends a frame without waiting for anything. */
  send(frame: string | Buffer): void;
  readonly closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

/** Opens a WebSocket to `url` with `headers`; resolves once open (a node may close it right after). */
export async function wire(url: string, headers: Record<string, string> = {}): Promise<WireClient> {
  const ws = new WebSocket(url, ['a2a-mesh.v1.json'], { headers });
  const notifications: WireClient['notifications'] = [];
  const pending = new Map<unknown, (m: Msg) => void>();
  let nextId = 1;
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  ws.on('error', () => {});
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString()) as Msg;
    if ('method' in msg && !('id' in msg)) {
      notifications.push({ method: String(msg.method), params: msg.params as Record<string, unknown> });
      return;
    }
    pending.get(msg.id)?.(msg);
    pending.delete(msg.id);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
  return {
    ws,
    notifications,
    closed,
    call(method, params) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, resolve);
        if (ws.readyState !== ws.OPEN) {
          reject(new Error('socket closed'));
          return;
        }
        ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) }));
        void closed.then(() => reject(new Error('socket closed')));
      });
    },
    send: (frame) => ws.send(frame),
    close: () => ws.close(),
  };
}

/** A wire client authenticated with a fresh token for `sub`, hello done. */
export async function agent(url: string, sub: string, claims?: Record<string, unknown>): Promise<WireClient> {
  const c = await wire(url, {
    authorization: `Bearer ${await token({ sub, ...(claims ? { claims } : {}) })}`,
  });
  const hello = await c.call('mesh/hello', {});
  if (!hello.result) throw new Error(`hello failed: ${JSON.stringify(hello.error)}`);
  return c;
}

/** The collaboration's offsets and event types as the log holds them. */
export async function logOf(c: WireClient, collaborationId: string): Promise<string[]> {
  const r = await c.call('collaboration/history', { collaborationId, fromOffset: 1, limit: 1000 });
  const events = (r.result?.events ?? []) as { offset: number; type: string; from: string }[];
  return events.map((e) => `${e.offset}:${e.type}:${e.from}`);
}
