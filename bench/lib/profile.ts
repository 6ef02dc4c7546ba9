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
}

interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Sums self time per function (name + script + line) over a V8 `.cpuprofile`. */
export function summarizeProfile(profile: CpuProfile, file: string, topN = 15): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const self = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    const frame = byId.get(profile.samples[i]!);
    if (!frame) continue;
    total += dt;
    if (frame.functionName === '(idle)') {
      idle += dt;
      continue;
    }
    const url = frame.url.startsWith('file://') ? relative(REPO_ROOT, frame.url.slice(7)) : frame.url;
    const key = `${frame.functionName || '(anonymous)'}\u0000${url ? `${url}:${frame.lineNumber + 1}` : ''}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  const busy = total - idle;
  const top = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, topN)
    .map(([key, ms]) => {
      const [fn, where] = key.split('\u0000') as [string, string];
      return { function: fn, where, selfMs: Math.round(ms), selfPercent: busy > 0 ? (100 * ms) / busy : 0 };
    });
  return { file, totalMs: Math.round(total), busyMs: Math.round(busy), top };
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

/** Prints a summary as an indented text table. */
export function profileText(s: ProfileSummary): string {
  const lines = [`  ${s.file}: ${s.busyMs} ms busy of ${s.totalMs} ms sampled; top self time:`];
  for (const e of s.top)
    lines.push(
      `    ${e.selfPercent.toFixed(1).padStart(5)}%  ${String(e.selfMs).padStart(6)} ms  ${e.function}  ${e.where}`,
    );
  return lines.join('\n');
}
