/** Load for scenario 7: JSON-RPC `SendMessage` POSTs over one HTTP/2 (h2c) session, `concurrency` streams in flight. */
import { connect } from 'node:http2';
import { sleep } from '../lib/rawAgent.js';

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
  let running = true;
  let completed = 0;
  let errors = 0;
  let firstError: string | undefined;
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
  const chains = Array.from({ length: a.concurrency }, async () => {
    while (running) {
      try {
        await post();
        completed++;
      } catch (error) {
        errors++;
        firstError ??= error instanceof Error ? error.message : String(error);
        await sleep(5);
      }
    }
  });
  await sleep(a.warmupMs);
  const c0 = completed;
  const t0 = performance.now();
  await sleep(a.durationMs);
  const c1 = completed;
  const seconds = (performance.now() - t0) / 1000;
  running = false;
  await Promise.race([Promise.all(chains), sleep(5_000)]);
  session.close();
  return {
    completed: c1 - c0,
    seconds,
    rate: (c1 - c0) / seconds,
    errors,
    ...(firstError === undefined ? {} : { firstError }),
  };
}
