import { type CallMessage, type ChildMessage, type CommandMap, openFileLimit, usageNow } from './ipc.js';

/** Handlers of a worker process, one per command of its map. */
export type Handlers<C extends CommandMap> = {
  [K in keyof C]: (args: C[K]['args']) => Promise<C[K]['result']> | C[K]['result'];
};

function send(message: ChildMessage): void {
  process.send?.(message);
}

/** Sends a progress line to the harness, which prints it with this process's role and pid. */
export function progress(text: string): void {
  send({ type: 'progress', text });
}

/**
 * Runs this process as a benchmark worker: answers the harness's calls with `handlers`, plus the
 * built-ins `__usage` (CPU and memory), `__gc` (collect twice, then usage; needs `--expose-gc`) and
 * `__exit`. Exits when the harness goes away, so no worker outlives a crashed run.
 */
export function serve<C extends CommandMap>(handlers: Handlers<C>, onExit?: () => Promise<void>): void {
  if (!process.send) throw new Error('a benchmark worker must be started by the harness (no IPC channel)');
  const table = handlers as Record<string, (args: unknown) => unknown>;
  let exiting = false;
  const exit = async (code: number): Promise<void> => {
    if (exiting) return;
    exiting = true;
    const timer = setTimeout(() => process.exit(code), 3000);
    timer.unref();
    try {
      await onExit?.();
    } catch {
      // Exiting anyway.
    }
    // process.exit (not a signal) so that --cpu-prof writes its profile.
    process.exit(code);
  };
  process.on('disconnect', () => void exit(1));
  process.on('message', (raw) => {
    const msg = raw as CallMessage;
    if (msg?.type !== 'call') return;
    void (async () => {
      try {
        let value: unknown;
        if (msg.cmd === '__usage') value = usageNow();
        else if (msg.cmd === '__gc') {
          const gc = (globalThis as { gc?: () => void }).gc;
          if (!gc) throw new Error('start the worker with exposeGc to use __gc');
          gc();
          gc();
          value = usageNow();
        } else if (msg.cmd === '__exit') {
          send({ type: 'result', id: msg.id, ok: true, value: null });
          await exit(0);
          return;
        } else {
          const handler = table[msg.cmd];
          if (!handler) throw new Error(`unknown command ${msg.cmd}`);
          value = await handler(msg.args);
        }
        send({ type: 'result', id: msg.id, ok: true, value });
      } catch (error) {
        const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
        send({ type: 'result', id: msg.id, ok: false, error: text });
      }
    })();
  });
  send({ type: 'ready', pid: process.pid, nofile: openFileLimit() });
}
