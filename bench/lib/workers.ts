import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_BUNDLE } from '../../scripts/build.mjs';
import type { ChildMessage, CommandMap, Usage } from './ipc.js';
import type { ProcessInfo } from './types.js';

/** The repository root (bench/lib/../..). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;

/** How to start a worker process. */
export interface WorkerOptions {
  /** What it does, printed in the process split (e.g. "mesh node A (NATS bus)"). */
  role: string;
  /** Script under `bench/procs/`, e.g. `meshNode.ts`. */
  script: string;
  /** Raise the open-files soft limit to this in the spawned shell (`ulimit -n`) before exec'ing node. */
  nofile?: number;
  /** Start node with `--expose-gc` (for the `__gc` built-in). */
  exposeGc?: boolean;
  /** Write a V8 CPU profile (`--cpu-prof`) into this directory when the worker exits. */
  cpuProfDir?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /**
   * Run this JavaScript file (absolute path) on plain node. Absent, `script` is compiled the way
   * `npm run build` compiles the node (see `compileProc`), or runs under tsx with `BENCH_TSX=1`.
   */
  compiled?: string;
}

const compiledProcs = new Map<string, Promise<string>>();
let procsDir: string | undefined;

/** Removes the compiled workers of this process (the next `compileProc` compiles again). */
export function removeCompiledProcs(): void {
  if (procsDir) rmSync(procsDir, { recursive: true, force: true });
  procsDir = undefined;
  compiledProcs.clear();
}

/**
 * Compiles `bench/procs/<script>` and what it imports from the project (src/, the workspace
 * packages, bench/lib) into one plain-JavaScript file, with the esbuild options of `npm run build`,
 * so the workers run what production runs: plain Node.js, no tsx loader or keep-names helpers.
 * Once per script per harness process, into `.tmp/bench/procs-<pid>/` (removed when it exits).
 */
export function compileProc(script: string): Promise<string> {
  let compiled = compiledProcs.get(script);
  if (!compiled) {
    if (!procsDir) {
      procsDir = join(REPO_ROOT, '.tmp', 'bench', `procs-${process.pid}`);
      process.once('exit', removeCompiledProcs);
    }
    const outfile = join(procsDir, `${basename(script, '.ts')}.mjs`);
    compiled = import('esbuild').then(async ({ build }) => {
      await build({
        ...NODE_BUNDLE,
        absWorkingDir: REPO_ROOT,
        entryPoints: [join(REPO_ROOT, 'bench', 'procs', script)],
        outfile,
        logLevel: 'warning',
      });
      return outfile;
    });
    compiledProcs.set(script, compiled);
    compiled.catch(() => compiledProcs.delete(script));
  }
  return compiled;
}

/** A running worker process that answers typed commands over IPC. */
export class Worker<C extends CommandMap = CommandMap> {
  readonly role: string;
  readonly script: string;
  readonly #compiled: string | undefined;
  readonly pid: number;
  readonly nofile: number | undefined;
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  readonly #exited: Promise<void>;
  #exitInfo: string | undefined;
  #nextId = 1;

  private constructor(child: ChildProcess, opts: WorkerOptions, pid: number, nofile: number | undefined) {
    this.#child = child;
    this.role = opts.role;
    this.script = opts.script;
    this.#compiled = opts.compiled;
    this.pid = pid;
    this.nofile = nofile;
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exitInfo = `exited with ${signal ?? `code ${code}`}`;
        for (const p of this.#pending.values()) p.reject(new Error(`${this.role} ${this.#exitInfo}`));
        this.#pending.clear();
        resolve();
      });
    });
    child.on('message', (raw) => {
      const msg = raw as ChildMessage;
      if (msg.type === 'result') {
        const p = this.#pending.get(msg.id);
        if (!p) return;
        this.#pending.delete(msg.id);
        if (msg.ok) p.resolve(msg.value);
        else p.reject(new Error(`${this.role}: ${msg.error}`));
      } else if (msg.type === 'progress') {
        console.log(`    [${this.role} ${this.pid}] ${msg.text}`);
      }
    });
  }

  /**
   * Spawns `node [--expose-gc] [--cpu-prof ...] --import tsx bench/procs/<script>` (or
   * `node ... <compiled>`) and waits until it is ready.
   */
  static async start<C extends CommandMap>(opts: WorkerOptions, signal?: AbortSignal): Promise<Worker<C>> {
    const nodeArgs = [
      ...(opts.exposeGc ? ['--expose-gc'] : []),
      ...(opts.cpuProfDir
        ? ['--cpu-prof', `--cpu-prof-dir=${join(opts.cpuProfDir, profileDirName(opts.role))}`]
        : []),
      ...(opts.compiled
        ? [opts.compiled]
        : ['--import', 'tsx', join(REPO_ROOT, 'bench', 'procs', opts.script)]),
    ];
    const command = opts.nofile ? '/bin/sh' : process.execPath;
    const args = opts.nofile
      ? ['-c', 'ulimit -n "$0" 2>/dev/null; exec "$@"', String(opts.nofile), process.execPath, ...nodeArgs]
      : nodeArgs;
    const child = spawn(command, args, {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      serialization: 'advanced',
      env: { ...process.env, LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn', ...opts.env },
    });
    const ready = await new Promise<{ pid: number; nofile: number | undefined }>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${opts.role} (${opts.script}) was not ready within ${START_TIMEOUT_MS} ms`));
      }, START_TIMEOUT_MS);
      const onAbort = () => {
        child.kill('SIGKILL');
        reject(new Error(`aborted while starting ${opts.role}`));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      child.on('message', function onReady(raw) {
        const msg = raw as ChildMessage;
        if (msg.type !== 'ready') return;
        child.off('message', onReady);
        done();
        resolve({ pid: msg.pid, nofile: msg.nofile });
      });
      child.once('exit', (code, sig) => {
        done();
        reject(
          new Error(`${opts.role} (${opts.script}) exited with ${sig ?? `code ${code}`} before it was ready`),
        );
      });
      child.once('error', (err) => {
        done();
        reject(err);
      });
    });
    return new Worker<C>(child, opts, ready.pid, ready.nofile);
  }

  get running(): boolean {
    return this.#exitInfo === undefined;
  }

  /** Runs a command in the worker; rejects with the worker's error, on timeout, or if it exits. */
  call<K extends keyof C & string>(cmd: K, args: C[K]['args'], timeoutMs = 60_000): Promise<C[K]['result']> {
    return this.#call(cmd, args, timeoutMs) as Promise<C[K]['result']>;
  }

  /** CPU time and memory of the worker now. */
  usage(): Promise<Usage> {
    return this.#call('__usage', null, 10_000) as Promise<Usage>;
  }

  /** Collects garbage twice in the worker (needs `exposeGc`), then reports its usage. */
  usageAfterGc(): Promise<Usage> {
    return this.#call('__gc', null, 30_000) as Promise<Usage>;
  }

  #call(cmd: string, args: unknown, timeoutMs: number): Promise<unknown> {
    if (this.#exitInfo) return Promise.reject(new Error(`${this.role} ${this.#exitInfo}`));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.role}: ${cmd} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.#child.send({ type: 'call', id, cmd, args });
    });
  }

  /** Asks the worker to exit (so a CPU profile gets written), killing it if it does not within 5 s. */
  async stop(): Promise<void> {
    if (!this.running) return;
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    try {
      await this.#call('__exit', null, STOP_TIMEOUT_MS).catch(() => {});
      await this.#exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills the worker at once. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.#child.kill('SIGKILL');
    await this.#exited;
  }

  info(): ProcessInfo {
    return {
      pid: this.pid,
      role: this.role,
      what: this.#compiled
        ? `${relative(REPO_ROOT, this.#compiled)} (compiled ${this.script}, plain node)`
        : relative(REPO_ROOT, join(REPO_ROOT, 'bench', 'procs', this.script)),
      ...(this.nofile === undefined ? {} : { nofile: this.nofile }),
    };
  }
}

/** A directory name for one worker's profile: its role, made file-name safe, and a timestamp. */
export function profileDirName(role: string): string {
  return `${role.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '')}-${Date.now()}`;
}

/** Starts workers for one scenario, remembers every process for the printed split, and stops them all. */
export class WorkerPool {
  readonly #live = new Set<{ stop(): Promise<void>; kill(): Promise<void> }>();
  readonly #seen: ProcessInfo[] = [];
  readonly #signal: AbortSignal | undefined;

  constructor(signal?: AbortSignal) {
    this.#signal = signal;
  }

  /** Starts a worker process and prints which process runs what. */
  async start<C extends CommandMap>(opts: WorkerOptions): Promise<Worker<C>> {
    const compiled =
      opts.compiled ?? (process.env.BENCH_TSX === '1' ? undefined : await compileProc(opts.script));
    const w = await Worker.start<C>({ ...opts, ...(compiled ? { compiled } : {}) }, this.#signal);
    this.#live.add(w);
    this.#remember(w.info());
    return w;
  }

  /** Tracks a process started elsewhere (e.g. nats-server) so it appears in the split and is stopped. */
  adopt(info: ProcessInfo, handle: { stop(): Promise<void>; kill(): Promise<void> }): void {
    this.#live.add(handle);
    this.#remember(info);
  }

  /** Stops one worker now (its slot in the split stays). */
  async stop(handle: { stop(): Promise<void>; kill(): Promise<void> }): Promise<void> {
    this.#live.delete(handle);
    await handle.stop();
  }

  #remember(info: ProcessInfo): void {
    this.#seen.push(info);
    const limit = info.nofile === undefined ? '' : `, open-files limit ${info.nofile}`;
    console.log(`    process ${info.pid}: ${info.role} (${info.what}${limit})`);
  }

  /** Every process that took part, in start order. */
  processes(): ProcessInfo[] {
    return [...this.#seen];
  }

  /** Stops every live worker (gracefully, so profiles are written); kills those that hang. */
  async stopAll(): Promise<void> {
    const all = [...this.#live];
    this.#live.clear();
    await Promise.allSettled(all.map((w) => w.stop()));
  }

  /** Kills every live worker at once (scenario timed out). */
  async killAll(): Promise<void> {
    const all = [...this.#live];
    this.#live.clear();
    await Promise.allSettled(all.map((w) => w.kill()));
  }
}
