import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, onTestFinished } from 'vitest';

/**
 * Real `nats-server` processes for tests, launched the way nats.js's `nst` launcher does it: a config
 * file with `port: -1` and `ports_file_dir`, then poll for the ports file, failing early (with the
 * server's stderr) if the process exits. Teardown is registered here, never left to the test:
 * a server started inside a test is stopped when that test finishes (pass or fail), and every server
 * still running when the test file ends is killed by an `afterAll` hook. Clients handed to `track()`
 * are closed before their server is killed.
 */

const BINARY = process.env.NATS_SERVER_BIN ?? 'nats-server';
const START_TIMEOUT_MS = 10_000;

/** Something to close before the server goes away (a bus, a connection). */
export interface Closeable {
  close(): Promise<unknown>;
}

/** Options for one server. */
export interface NatsServerOptions {
  /** Enable JetStream with file storage in the server's temp dir (default true). */
  jetstream?: boolean;
  /** Extra top-level config entries (objects become config blocks). */
  config?: Record<string, unknown>;
  /** Print the server's log lines to stderr. */
  debug?: boolean;
}

/** A running (or stopped, restartable) nats-server. */
export interface NatsServer {
  /** `nats://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** Monitoring port (`/varz`, `/jsz`). */
  readonly httpPort: number;
  /** Process id of the current incarnation. */
  readonly pid: number;
  /** `server_name` (cluster members only). */
  readonly name: string | undefined;
  /** JetStream store directory; survives `restart()`. */
  readonly storeDir: string;
  /** True while the process runs. */
  readonly running: boolean;
  /** Closes tracked clients, then stops the server (SIGTERM, SIGKILL after 5 s) and removes its temp dir. */
  stop(): Promise<void>;
  /** Sends a signal and waits for the process to exit (SIGKILL by default); keeps the temp dir for `restart()`. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again on the same ports with the same store dir (kills it first if running). */
  restart(): Promise<void>;
  /** Everything the server wrote to stderr so far. */
  log(): string;
  /** Registers a client to close before this server is stopped; returns it. */
  track<T extends Closeable>(client: T): T;
  /** GET a monitoring endpoint (`varz`, `jsz`, ...) as JSON. */
  monitor<T = unknown>(endpoint: string): Promise<T>;
}

/** A JetStream cluster of real servers. */
export interface NatsCluster {
  readonly servers: readonly NatsServer[];
  /** Client URLs of every member. */
  readonly urls: string[];
  /** Registers a client to close before the cluster is stopped; returns it. */
  track<T extends Closeable>(client: T): T;
  /** Stops every member (clients first). */
  stop(): Promise<void>;
  /** Waits until all running members agree on a JetStream meta leader; resolves with its name. */
  waitForMetaLeader(timeoutMs?: number): Promise<string>;
}

const live = new Set<ServerProcess>();

afterAll(async () => {
  await Promise.all([...live].map((s) => s.stop()));
});

function registerTeardown(fn: () => Promise<void>): void {
  try {
    onTestFinished(fn);
  } catch {
    // Not inside a running test (e.g. beforeAll): the file-level afterAll above covers it.
  }
}

/** Picks a free TCP port on 127.0.0.1 by listening on port 0 (used for cluster routes). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Renders a JS object as nats-server config (JSON-like syntax the server accepts). */
function toConf(value: Record<string, unknown>, indent = ''): string {
  const lines: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    if (v === undefined) continue;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      lines.push(`${indent}${key} {`, toConf(v as Record<string, unknown>, `${indent}  `), `${indent}}`);
    } else {
      lines.push(`${indent}${key}: ${JSON.stringify(v)}`);
    }
  }
  return lines.join('\n');
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

interface Ports {
  nats: string[];
  monitoring?: string[];
  cluster?: string[];
}

function portOf(url: string | undefined): number {
  const m = url ? /:(\d+)$/.exec(url) : null;
  if (!m) throw new Error(`no port in ${url}`);
  return Number(m[1]);
}

class ServerProcess implements NatsServer {
  readonly #dir: string;
  readonly #config: Record<string, unknown>;
  readonly #debug: boolean;
  readonly #clients = new Set<Closeable>();
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #stderr: string[] = [];
  #port = 0;
  #httpPort = 0;
  #removed = false;

  constructor(dir: string, config: Record<string, unknown>, debug: boolean) {
    this.#dir = dir;
    this.#config = config;
    this.#debug = debug;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.#port}`;
  }
  get port(): number {
    return this.#port;
  }
  get httpPort(): number {
    return this.#httpPort;
  }
  get pid(): number {
    return this.#child?.pid ?? 0;
  }
  get name(): string | undefined {
    return this.#config.server_name as string | undefined;
  }
  get storeDir(): string {
    return join(this.#dir, 'store');
  }
  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  log(): string {
    return this.#stderr.join('');
  }

  track<T extends Closeable>(client: T): T {
    this.#clients.add(client);
    return client;
  }

  async start(): Promise<void> {
    const confFile = join(this.#dir, 'server.conf');
    await writeFile(confFile, toConf(this.#config));
    const child = spawn(BINARY, ['-c', confFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#child = child;
    this.#stderr = [];
    live.add(this);
    let exitInfo: string | undefined;
    this.#exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        exitInfo = `exited with ${signal ?? `code ${code}`}`;
        resolve();
      });
      child.once('error', (err) => {
        exitInfo = `failed to spawn ${BINARY}: ${err.message}`;
        resolve();
      });
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      this.#stderr.push(chunk);
      if (this.#debug) process.stderr.write(chunk);
    });

    const portsFile = join(this.#dir, `nats-server_${child.pid}.ports`);
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (exitInfo !== undefined) {
        live.delete(this);
        throw new Error(`nats-server ${exitInfo} before it was ready:\n${this.log()}`);
      }
      const ports = await readFile(portsFile, 'utf8').then(
        (t) => JSON.parse(t) as Ports,
        () => undefined,
      );
      if (ports?.nats?.length) {
        this.#port = portOf(ports.nats[0]);
        if (ports.monitoring?.length) this.#httpPort = portOf(ports.monitoring[0]);
        // Freeze the chosen ports so that restart() comes back on the same ones.
        this.#config.port = this.#port;
        if (this.#httpPort) this.#config.http = `127.0.0.1:${this.#httpPort}`;
        return;
      }
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(
          `nats-server did not write ${portsFile} within ${START_TIMEOUT_MS} ms:\n${this.log()}`,
        );
      }
      await sleep(20);
    }
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.#child;
    if (child && this.running) {
      child.kill(signal);
      await this.#exited;
    }
    // A killed server leaves its ports file behind; the next incarnation has another pid.
    if (child?.pid) await rm(join(this.#dir, `nats-server_${child.pid}.ports`), { force: true });
  }

  async restart(): Promise<void> {
    if (this.#removed) throw new Error('server was stopped for good');
    await this.kill();
    await this.start();
  }

  async stop(): Promise<void> {
    const clients = [...this.#clients];
    this.#clients.clear();
    await Promise.allSettled(clients.map((c) => c.close()));
    if (this.running) {
      const timer = setTimeout(() => this.#child?.kill('SIGKILL'), 5_000);
      await this.kill('SIGTERM');
      clearTimeout(timer);
    }
    live.delete(this);
    if (!this.#removed) {
      this.#removed = true;
      await rm(this.#dir, { recursive: true, force: true });
    }
  }

  async monitor<T = unknown>(endpoint: string): Promise<T> {
    if (!this.#httpPort) throw new Error('monitoring is not enabled');
    const res = await fetch(`http://127.0.0.1:${this.#httpPort}/${endpoint}`);
    return (await res.json()) as T;
  }
}

async function launch(config: Record<string, unknown>, options: NatsServerOptions): Promise<ServerProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'a2a-mesh-nats-'));
  const full: Record<string, unknown> = {
    host: '127.0.0.1',
    port: -1,
    http: '127.0.0.1:-1',
    ports_file_dir: dir,
    ...config,
    ...options.config,
  };
  if (options.jetstream !== false) {
    full.jetstream = { store_dir: join(dir, 'store'), max_file_store: 1 << 30, max_memory_store: 1 << 28 };
  }
  const server = new ServerProcess(dir, full, options.debug ?? false);
  try {
    await server.start();
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return server;
}

/**
 * Starts one nats-server on 127.0.0.1 with a random port (JetStream with file storage by default).
 * Stopped when the current test finishes, or at the end of the file when started outside a test.
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const server = await launch({}, options);
  registerTeardown(() => server.stop());
  return server;
}

interface Jsz {
  meta_cluster?: { leader?: string };
}

/**
 * Starts a JetStream cluster of `size` members (default 3) on 127.0.0.1 and resolves once every member
 * agrees on a meta leader. Torn down like `startNatsServer`.
 */
export async function startNatsCluster(size = 3, options: NatsServerOptions = {}): Promise<NatsCluster> {
  // Route ports are picked free and bound by the servers a moment later; another process can take
  // one in between (seen in CI: "bind: address already in use"). Start again on new ports, twice at most.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startClusterOnce(size, options);
    } catch (err) {
      if (attempt >= 3 || !String((err as Error).message).includes('address already in use')) throw err;
    }
  }
}

async function startClusterOnce(size: number, options: NatsServerOptions): Promise<NatsCluster> {
  const clusterName = `mesh-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const routePorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routes = routePorts.map((p) => `nats-route://127.0.0.1:${p}`);
  const members: ServerProcess[] = [];
  const clients = new Set<Closeable>();
  const stop = async (): Promise<void> => {
    const list = [...clients];
    clients.clear();
    await Promise.allSettled(list.map((c) => c.close()));
    await Promise.all(members.map((m) => m.stop()));
  };
  try {
    const started = await Promise.allSettled(
      routePorts.map((port, i) =>
        launch(
          {
            server_name: `n${i + 1}`,
            cluster: {
              name: clusterName,
              listen: `127.0.0.1:${port}`,
              routes: routes.filter((_, j) => j !== i),
            },
          },
          options,
        ),
      ),
    );
    for (const r of started) if (r.status === 'fulfilled') members.push(r.value);
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  } catch (err) {
    await stop();
    throw err;
  }
  const cluster: NatsCluster = {
    servers: members,
    urls: members.map((m) => m.url),
    track: (client) => {
      clients.add(client);
      return client;
    },
    stop,
    waitForMetaLeader: async (timeoutMs = 20_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const running = members.filter((m) => m.running);
        const leaders = await Promise.all(
          running.map((m) =>
            m.monitor<Jsz>('jsz').then(
              (j) => j.meta_cluster?.leader ?? '',
              () => '',
            ),
          ),
        );
        const first = leaders[0];
        if (first && leaders.every((l) => l === first)) return first;
        if (Date.now() > deadline)
          throw new Error(`no JetStream meta leader after ${timeoutMs} ms: ${leaders}`);
        await sleep(100);
      }
    },
  };
  registerTeardown(stop);
  try {
    await cluster.waitForMetaLeader();
  } catch (err) {
    await stop();
    throw err;
  }
  return cluster;
}
