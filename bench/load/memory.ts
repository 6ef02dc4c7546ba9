/** Load for scenario 4: many idle connections (mesh agents after `mesh/hello`, or bare `ws` sockets). */
import { mapLimit, openSocket, RawAgent } from '../lib/rawAgent.js';

let sockets: { close(): void }[] = [];

export async function memoryConnect(a: {
  mode: 'mesh' | 'ws';
  url: string;
  count: number;
  concurrency: number;
  prefix: string;
}): Promise<{ connected: number; ms: number; failures: number; firstError?: string }> {
  const t0 = performance.now();
  let failures = 0;
  let firstError: string | undefined;
  const ids = Array.from({ length: a.count }, (_, i) => `${a.prefix}-${i}`);
  await mapLimit(
    ids,
    a.concurrency,
    async (id) => {
      try {
        if (a.mode === 'mesh') sockets.push(await RawAgent.connect(a.url, id));
        else {
          const ws = await openSocket(a.url, []);
          sockets.push({ close: () => ws.terminate() });
        }
      } catch (error) {
        failures++;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
    },
    Date.now() + 60_000,
  );
  return {
    connected: a.count - failures,
    ms: performance.now() - t0,
    failures,
    ...(firstError === undefined ? {} : { firstError }),
  };
}

export function memoryClose(): void {
  for (const s of sockets) s.close();
  sockets = [];
}
