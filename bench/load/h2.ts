/** Load for scenario 7's baseline: JSON-RPC POSTs over one HTTP/2 (h2c) session, `concurrency` streams in flight. */
import { connect } from 'node:http2';
import { sleep } from '../lib/rawAgent.js';

export async function h2Run(a: {
  url: string;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  payloadBytes: number;
}): Promise<{ completed: number; seconds: number; rate: number; errors: number }> {
  const session = connect(a.url);
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve());
    session.once('error', reject);
  });
  let running = true;
  let completed = 0;
  let errors = 0;
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
      const req = session.request({ ':method': 'POST', ':path': '/rpc', 'content-type': 'application/json' });
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        try {
          JSON.parse(Buffer.concat(chunks).toString());
          resolve();
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
      } catch {
        errors++;
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
  return { completed: c1 - c0, seconds, rate: (c1 - c0) / seconds, errors };
}
