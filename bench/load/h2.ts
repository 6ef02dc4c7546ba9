/** Load for scenario 7: JSON-RPC `SendMessage` POSTs over one HTTP/2 (h2c) session, `concurrency` streams in flight. */
import { connect } from 'node:http2';
import { closedLoop } from '../lib/closedLoop.js';

export async function h2Run(a: {
  url: string;
  path: string;
  headers: Record<string, string>;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  payloadBytes: number;
}): Promise<{ completed: number; seconds: number; rate: number; errors: number; firstError?: string }> {
  const session = connect(a.url);
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve());
    session.once('error', reject);
  });
  let nextId = 1;
  const text = 'x'.repeat(a.payloadBytes);
  const post = () =>
    new Promise<void>((resolve, reject) => {
      const body = JSON.stringify({
        jsonrpc: '2.0',
        id: nextId++,
        method: 'SendMessage',
        params: { message: { role: 'ROLE_USER', parts: [{ text }], messageId: `m${nextId}` } },
      });
      const req = session.request({
        ':method': 'POST',
        ':path': a.path,
        'content-type': 'application/json',
        ...a.headers,
      });
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        try {
          const reply = JSON.parse(Buffer.concat(chunks).toString()) as { result?: unknown; error?: unknown };
          if (reply.result === undefined) reject(new Error(`no result: ${JSON.stringify(reply.error)}`));
          else resolve();
        } catch (error) {
          reject(error);
        }
      });
      req.on('error', reject);
      req.end(body);
    });
  const loop = await closedLoop(
    Array.from({ length: a.concurrency }, () => post),
    { warmupMs: a.warmupMs, durationMs: a.durationMs, drainMs: 5_000 },
  );
  session.close();
  const { acked, ...rest } = loop;
  return { completed: acked, ...rest };
}
