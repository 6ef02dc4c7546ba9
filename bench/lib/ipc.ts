import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Commands a worker process answers: name → argument and result types. */
export type CommandMap = Record<string, { args: unknown; result: unknown }>;

/** Parent → child. */
export interface CallMessage {
  type: 'call';
  id: number;
  cmd: string;
  args: unknown;
}

/** Child → parent. */
export type ChildMessage =
  | { type: 'ready'; pid: number; nofile: number | undefined }
  | { type: 'result'; id: number; ok: true; value: unknown }
  | { type: 'result'; id: number; ok: false; error: string }
  | { type: 'progress'; text: string };

/** CPU time and memory of a process at one moment (answer of the built-in `__usage`). */
export interface Usage {
  /** `performance.timeOrigin + performance.now()`, ms. */
  atMs: number;
  cpuUserUs: number;
  cpuSystemUs: number;
  rss: number;
  heapUsed: number;
}

let clockTicks: number | undefined;

/**
 * CPU and RSS of another process (e.g. nats-server) from `/proc/<pid>/stat`, in the shape workers
 * report: utime and stime are in clock ticks (`getconf CLK_TCK`), RSS in pages. Heap is 0.
 */
export function procUsage(pid: number): Usage {
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces; fields are counted after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const usPerTick = 1e6 / clockTicks;
  return {
    atMs: performance.timeOrigin + performance.now(),
    cpuUserUs: Number(fields[11]) * usPerTick,
    cpuSystemUs: Number(fields[12]) * usPerTick,
    rss: Number(fields[21]) * 4096,
    heapUsed: 0,
  };
}

/** Soft limit on open files of this process (from /proc/self/limits), when readable. */
export function openFileLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

/** This process's CPU time and memory now. */
export function usageNow(): Usage {
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  return {
    atMs: performance.timeOrigin + performance.now(),
    cpuUserUs: cpu.user,
    cpuSystemUs: cpu.system,
    rss: mem.rss,
    heapUsed: mem.heapUsed,
  };
}

/** CPU use between two usage snapshots, as a percentage of one core. */
export function cpuPercent(a: Usage, b: Usage): number {
  const wallMs = b.atMs - a.atMs;
  if (wallMs <= 0) return 0;
  const cpuMs = (b.cpuUserUs - a.cpuUserUs + b.cpuSystemUs - a.cpuSystemUs) / 1000;
  return (100 * cpuMs) / wallMs;
}
