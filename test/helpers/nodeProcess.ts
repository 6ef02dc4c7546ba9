import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { onTestFailed, onTestFinished } from 'vitest';

const BIN = fileURLToPath(new URL('../../bin/a2a-mesh.js', import.meta.url));

/** A mesh node running as its own process (`a2a-mesh node`), for crash and drain tests. */
export interface NodeProcess {
  readonly nodeId: string;
  readonly url: string;
  readonly pid: number;
  /** Resolves with the exit code (or signal name) once the process ended. */
  readonly exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
  /** Everything the process printed. */
  output(): string;
}

/**
 * Starts `a2a-mesh node --port 0 ...args` and resolves once it logs that it listens. `entry` is the
 * CLI script to run: the package's bin by default, or a compiled `cli.js`.
 */
export async function startNodeProcess(
  nodeId: string,
  args: string[],
  timeoutMs = 20_000,
  entry = BIN,
): Promise<NodeProcess> {
  const child: ChildProcess = spawn(
    process.execPath,
    [entry, 'node', '--port', '0', '--node-id', nodeId, '--log-level', 'info', ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LOG_LEVEL: 'info' },
    },
  );
  let out = '';
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`node ${nodeId} did not start in ${timeoutMs} ms:\n${out}`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      for (const line of out.split('\n')) {
        if (!line.includes('mesh node listening')) continue;
        try {
          const { url: u } = JSON.parse(line) as { url: string };
          clearTimeout(timer);
          resolve(u);
          return;
        } catch {
          // partial line; wait for more
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (c: Buffer) => {
      out += c.toString();
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`node ${nodeId} exited (${code}) before listening:\n${out}`));
    });
  });
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  onTestFailed(() => {
    const tail = out
      .split('\n')
      .filter((l) => /"level":(4|5)0/.test(l))
      .slice(-15);
    console.error(`--- node ${nodeId} warnings/errors (last ${tail.length}) ---\n${tail.join('\n')}`);
  });
  onTestFinished(() => kill('SIGKILL').then(() => undefined));
  return { nodeId, url, pid: child.pid!, exited, kill, output: () => out };
}
