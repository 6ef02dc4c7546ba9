import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { REPO_ROOT } from './workers.js';

/** One function's share of a CPU profile. */
export interface ProfileEntry {
  function: string;
  /** Script (relative to the repository when inside it) and line. */
  where: string;
  selfMs: number;
  selfPercent: number;
}

/** Top functions of one `.cpuprofile` by self time. */
export interface ProfileSummary {
  file: string;
  totalMs: number;
  /** Time not spent idle (program + GC + functions). */
  busyMs: number;
  top: ProfileEntry[];
  /** The project's own functions (src/, packages/) by inclusive time: themselves and what they call. */
  ownInclusive: ProfileEntry[];
}

interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Sums self time per function (name + script + line) over a V8 `.cpuprofile`. */
export function summarizeProfile(profile: CpuProfile, file: string, topN = 15): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const keyOf = (frame: CpuProfile['nodes'][number]['callFrame']) => {
    const url = frame.url.startsWith('file://') ? relative(REPO_ROOT, frame.url.slice(7)) : frame.url;
    return `${frame.functionName || '(anonymous)'}\u0000${url ? `${url}:${frame.lineNumber + 1}` : ''}`;
  };
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    const id = profile.samples[i]!;
    const frame = byId.get(id);
    if (!frame) continue;
    total += dt;
    if (frame.functionName === '(idle)') {
      idle += dt;
      continue;
    }
    const key = keyOf(frame);
    self.set(key, (self.get(key) ?? 0) + dt);
    // Each function on this sample's stack once (recursion counted once).
    const onStack = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur);
      if (f && (f.url.includes('/src/') || f.url.includes('/packages/'))) onStack.add(keyOf(f));
    }
    for (const k of onStack) inclusive.set(k, (inclusive.get(k) ?? 0) + dt);
  }
  const busy = total - idle;
  const entries = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, topN)
      .map(([key, ms]) => {
        const [fn, where] = key.split('\u0000') as [string, string];
        return { function: fn, where, selfMs: Math.round(ms), selfPercent: busy > 0 ? (100 * ms) / busy : 0 };
      });
  return {
    file,
    totalMs: Math.round(total),
    busyMs: Math.round(busy),
    top: entries(self),
    ownInclusive: entries(inclusive),
  };
}

/** Summaries of every `.cpuprofile` under `dir` (one level of subdirectories). */
export async function summarizeProfiles(dir: string, topN = 15): Promise<ProfileSummary[]> {
  const out: ProfileSummary[] = [];
  const walk = async (d: string, depth: number): Promise<void> => {
    const entries = await readdir(d, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory() && depth < 2) await walk(p, depth + 1);
      else if (e.name.endsWith('.cpuprofile')) {
        const profile = JSON.parse(await readFile(p, 'utf8')) as CpuProfile;
        out.push(summarizeProfile(profile, relative(REPO_ROOT, p), topN));
      }
    }
  };
  await walk(dir, 0);
  return out;
}

/** Prints a summary as indented text tables (percentages of busy time). */
export function profileText(s: ProfileSummary, ownN = 10): string {
  const line = (e: ProfileEntry) =>
    `    ${e.selfPercent.toFixed(1).padStart(5)}%  ${String(e.selfMs).padStart(6)} ms  ${e.function}  ${e.where}`;
  return [
    `  ${s.file}: ${s.busyMs} ms busy of ${s.totalMs} ms sampled; top self time:`,
    ...s.top.map(line),
    '   project functions by inclusive time (self + callees):',
    ...s.ownInclusive.slice(0, ownN).map(line),
  ].join('\n');
}
