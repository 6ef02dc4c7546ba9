/**
 * Worker for scenario 6, started fresh for every sample: times `import` + start of an embedded mesh
 * node (or of a bare `ws` server, the baseline) until it listens, then reports idle RSS.
 * Imports are dynamic so that the timer starts before any of them is loaded. The harness compiles
 * this file to plain JavaScript and runs it on plain Node.js (no tsx loader), importing the node's
 * compiled build: what `npm start`, the CLI and the container run.
 */
const firstLineMs = performance.now();
const { serve } = await import('../lib/child.js');
type Commands = import('./commands.js').ColdStartCommands;

let close: (() => Promise<void>) | undefined;

serve<Commands>(
  {
    async start(a) {
      const t0 = performance.now();
      let importMs: number;
      let t1: number;
      if (a.mode === 'mesh') {
        const { createMeshNode } = (await import(a.entry)) as typeof import('../../src/index.js');
        t1 = performance.now();
        importMs = t1 - t0;
        const node = await createMeshNode({ port: 0 });
        close = () => node.close();
      } else {
        const [{ createServer }, { WebSocketServer }] = await Promise.all([
          import('node:http'),
          import('ws'),
        ]);
        t1 = performance.now();
        importMs = t1 - t0;
        const server = createServer();
        const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 1024 * 1024 });
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        close = async () => {
          wss.close();
          server.close();
        };
      }
      const t2 = performance.now();
      return {
        importMs,
        startMs: t2 - t1,
        totalMs: t2 - t0,
        firstLineMs,
        nodeUptimeMs: process.uptime() * 1000,
      };
    },
  },
  async () => {
    await close?.();
  },
);
