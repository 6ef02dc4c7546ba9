/** Helpers shared by the scenarios. */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { cpuPercent } from '../lib/ipc.js';
import { type BenchNatsServer, natsServerVersion, startNatsServer } from '../lib/natsServer.js';
import { sleep } from '../lib/rawAgent.js';
import type { ScenarioContext } from '../lib/types.js';
import type { Worker } from '../lib/workers.js';
import type { MeshNodeCommands } from '../procs/commands.js';

/** A short random token for unique agent ids, subjects and prefixes. */
export function token(): string {
  return randomBytes(4).toString('hex');
}

/** Throws when the scenario's budget is spent (loops call this between steps). */
export function checkBudget(ctx: ScenarioContext): void {
  if (ctx.signal.aborted || Date.now() > ctx.deadline) throw new Error('time budget spent');
}

/** The reason a NATS scenario cannot run here, if any. */
export function natsUnavailable(): string | undefined {
  return natsServerVersion() === 'not installed'
    ? 'nats-server is not installed (set NATS_SERVER_BIN)'
    : undefined;
}

/** Starts the scenario's own nats-server (a free port, never the shared 4222) and tracks it. */
export async function startNats(ctx: ScenarioContext): Promise<BenchNatsServer> {
  const server = await startNatsServer();
  ctx.workers.adopt(
    { pid: server.pid, role: 'nats-server (JetStream, file storage)', what: 'nats-server' },
    server,
  );
  return server;
}

/** Starts mesh nodes A and B as worker processes on `natsUrl` (one fresh prefix); their ws URLs too. */
export async function startNatsNodePair(
  ctx: ScenarioContext,
  natsUrl: string,
): Promise<{ nodes: Worker<MeshNodeCommands>[]; urls: string[] }> {
  const prefix = `bench${token()}`;
  const nodes = await Promise.all(
    ['A', 'B'].map((n) =>
      ctx.workers.start<MeshNodeCommands>({ role: `mesh node ${n} (NATS bus)`, script: 'meshNode.ts' }),
    ),
  );
  const urls: string[] = [];
  for (const [i, n] of nodes.entries()) {
    const r = await n.call('start', {
      bus: 'nats',
      servers: natsUrl,
      prefix,
      nodeId: `bench-${'AB'[i]}-${token()}`,
    });
    urls.push(r.url);
  }
  return { nodes, urls };
}

/**
 * Measures the CPU use (% of one core) of `workers` over a window that starts `delayMs` from now and
 * lasts `durationMs`, while something else drives the load. Keyed by role.
 */
export async function cpuDuring(
  workers: readonly Pick<Worker, 'role' | 'usage'>[],
  delayMs: number,
  durationMs: number,
): Promise<Record<string, number>> {
  await sleep(delayMs);
  const before = await Promise.all(workers.map((w) => w.usage()));
  await sleep(durationMs);
  const after = await Promise.all(workers.map((w) => w.usage()));
  const out: Record<string, number> = {};
  workers.forEach((w, i) => {
    out[w.role] = Math.round(cpuPercent(before[i]!, after[i]!));
  });
  return out;
}

/** "node 97%, load generator 64%" */
export function cpuText(cpu: Record<string, number>): string {
  return Object.entries(cpu)
    .map(([role, pct]) => `${role} ${pct}%`)
    .join(', ');
}

/** The median of one field over trial records. */
export function medianOf<T>(trials: readonly T[], pick: (t: T) => number): number {
  const xs = trials.map(pick).filter((x) => Number.isFinite(x));
  if (xs.length === 0) return Number.NaN;
  const s = xs.sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Runs `fn`; when the harness profiles (`--profile`), records a CPU profile of each of `nodes` for
 * exactly that span (e.g. one mesh trial) into the scenario's profile directory, named after `label`.
 */
export async function profiled<T>(
  ctx: ScenarioContext,
  nodes: readonly Worker<MeshNodeCommands>[],
  label: string,
  fn: () => Promise<T>,
): Promise<T> {
  const dir = ctx.profileDir;
  if (!dir) return fn();
  await mkdir(dir, { recursive: true });
  await Promise.all(nodes.map((n) => n.call('profileStart', null)));
  try {
    return await fn();
  } finally {
    await Promise.all(
      nodes.map((n) =>
        n.call('profileStop', { file: join(dir, `${safeName(label)}--${safeName(n.role)}.cpuprofile`) }),
      ),
    );
  }
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '');
}
