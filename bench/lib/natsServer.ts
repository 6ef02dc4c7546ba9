import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The benchmark's own nats-server (never the shared one on 4222): a config with `port: -1` and
 * `ports_file_dir`, then poll for the ports file, failing early with the server's stderr if it exits.
 * JetStream with file storage in a temp dir that `stop()` removes. Same approach as nats.js's `nst`.
 */

const BINARY = process.env.NATS_SERVER_BIN ?? 'nats-server';
const START_TIMEOUT_MS = 10_000;

/** A running nats-server started for one scenario. */
export interface BenchNatsServer {
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

/** `nats-server --version`, or "not installed". */
export function natsServerVersion(): string {
  try {
    return execFileSync(BINARY, ['--version'], { encoding: 'utf8', timeout: 5000 }).trim();
  } catch {
    return 'not installed';
  }
}

/** Starts nats-server with JetStream (file storage) on 127.0.0.1 and a free port. */
export async function startNatsServer(): Promise<BenchNatsServer> {
  const dir = await mkdtemp(join(tmpdir(), 'a2a-mesh-bench-nats-'));
  const conf = [
    'host: "127.0.0.1"',
    'port: -1',
    `ports_file_dir: ${JSON.stringify(dir)}`,
    'jetstream {',
    `  store_dir: ${JSON.stringify(join(dir, 'store'))}`,
    '  max_file_store: 1073741824',
    '  max_memory_store: 268435456',
    '}',
  ].join('\n');
  const confFile = join(dir, 'server.conf');
  await writeFile(confFile, conf);
  const child: ChildProcess = spawn(BINARY, ['-c', confFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-8000);
  });
  let exitInfo: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = `exited with ${signal ?? `code ${code}`}`;
      resolve();
    });
    child.once('error', (err) => {
      exitInfo = `failed to spawn ${BINARY}: ${err.message}`;
      resolve();
    });
  });
  const cleanup = async () => {
    if (exitInfo === undefined) {
      child.kill('SIGKILL');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  const portsFile = join(dir, `nats-server_${child.pid}.ports`);
  const deadline = Date.now() + START_TIMEOUT_MS;
  let url: string | undefined;
  while (url === undefined) {
    if (exitInfo !== undefined) {
      await cleanup();
      throw new Error(`nats-server ${exitInfo} before it was ready:\n${stderr}`);
    }
    const ports = await readFile(portsFile, 'utf8').then(
      (t) => JSON.parse(t) as { nats?: string[] },
      () => undefined,
    );
    const first = ports?.nats?.[0];
    if (first) {
      const port = /:(\d+)$/.exec(first)?.[1];
      url = `nats://127.0.0.1:${port}`;
      break;
    }
    if (Date.now() > deadline) {
      await cleanup();
      throw new Error(`nats-server did not write its ports file within ${START_TIMEOUT_MS} ms:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  let stopping: Promise<void> | undefined;
  return {
    url,
    pid: child.pid ?? 0,
    stop() {
      stopping ??= (async () => {
        if (exitInfo === undefined) {
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          child.kill('SIGTERM');
          await exited;
          clearTimeout(timer);
        }
        await rm(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
    kill: cleanup,
  };
}
