/**
 * Worker for scenario 6, started fresh for every sample: times `import` + start of an embedded mesh
 * node (or of a bare `ws` server, the baseline) until it listens, then reports idle RSS.
 * Imports are dynamic so that the timer starts before any of them is loaded. The harness compiles
 * this file to plain JavaScript and runs it on plain Node.js (no tsx loader), importing the node's
 * compiled build: what `npm start`, the CLI and the container run.
 */
const firstLineMs = performance.now();
const { serve } = await import('../lib/child.js');
const { readFileSync } = await import('node:fs');
type Commands = import('./commands.js').ColdStartCommands;

let close: (() => Promise<void>) | undefined;

serve<Commands>(
  {
    async start(a) {
      const cpu0 = process.cpuUsage();
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
      const cpu = process.cpuUsage(cpu0);
      return {
        cpuMs: (cpu.user + cpu.system) / 1000,
        importMs,
        startMs: t2 - t1,
        totalMs: t2 - t0,
        firstLineMs,
        nodeUptimeMs: process.uptime() * 1000,
      };
    },
    smaps() {
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      gc?.();
      const kb = (field: string): number => {
        const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(
          readFileSync('/proc/self/smaps_rollup', 'utf8'),
        );
        return m ? Number(m[1]) : Number.NaN;
      };
      return {
        rssMb: kb('Rss') / 1024,
        pssMb: kb('Pss') / 1024,
        sharedCleanMb: kb('Shared_Clean') / 1024,
        privateDirtyMb: kb('Private_Dirty') / 1024,
        heapUsedMb: process.memoryUsage().heapUsed / 2 ** 20,
      };
    },
  },
  async () => {
    await close?.();
  },
);
