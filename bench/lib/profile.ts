import { readFileSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
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

/** Per compiled worker file: the bundle line where each module starts, and the module's path. */
const bundleMaps = new Map<string, { starts: number[]; paths: string[] } | null>();

/**
 * The source module a line of a compiled worker (`compileProc`) comes from: esbuild marks where each
 * bundled module starts with a `// <path>` comment line. Undefined when the file is gone or unmarked.
 */
function bundleModule(file: string, line: number): string | undefined {
  let map = bundleMaps.get(file);
  if (map === undefined) {
    map = null;
    try {
      const starts: number[] = [];
      const paths: string[] = [];
      const lines = readFileSync(file, 'utf8').split('\n');
      for (let i = 0; i < lines.length; i++) {
        const m = /^\/\/ ((?:src|packages|bench|node_modules)\/\S+\.[cm]?[jt]s)$/.exec(lines[i]!);
        if (m) {
          starts.push(i);
          paths.push(m[1]!);
        }
      }
      if (starts.length > 0) map = { starts, paths };
    } catch {
      // A profile read after its worker's bundle was removed: frames keep the bundle's path.
    }
    bundleMaps.set(file, map);
  }
  if (!map) return undefined;
  let lo = 0;
  let hi = map.starts.length - 1;
  if (line < map.starts[0]!) return undefined;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (map.starts[mid]! <= line) lo = mid;
    else hi = mid - 1;
  }
  return map.paths[lo];
}

/**
 * Names each frame of a compiled worker (`compileProc`) by the module it was bundled from, in place:
 * `file://<repo>/<module>` without a line (the bundle's lines are not the source's), so the profile
 * still reads once the bundle is gone. True when any frame changed.
 */
export function mapCompiledFrames(profile: CpuProfile): boolean {
  let changed = false;
  for (const { callFrame: f } of profile.nodes) {
    if (!f.url.startsWith('file://') || !f.url.includes('/.tmp/bench/procs-')) continue;
    const module = bundleModule(f.url.slice(7), f.lineNumber);
    if (!module) continue;
    f.url = `file://${join(REPO_ROOT, module)}`;
    f.lineNumber = -1;
    changed = true;
  }
  return changed;
}

/** A frame's script (relative to the repository when inside it) and line (none when unknown). */
function whereOf(frame: { url: string; lineNumber: number }): { script: string; line: string } {
  const script = frame.url.startsWith('file://') ? relative(REPO_ROOT, frame.url.slice(7)) : frame.url;
  return { script, line: script && frame.lineNumber >= 0 ? `:${frame.lineNumber + 1}` : '' };
}

/** Sums self time per function (name + script + line) over a V8 `.cpuprofile`. */
export function summarizeProfile(profile: CpuProfile, file: string, topN = 15): ProfileSummary {
  mapCompiledFrames(profile);
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const keyOf = (frame: CpuProfile['nodes'][number]['callFrame']) => {
    const { script, line } = whereOf(frame);
    return `${frame.functionName || '(anonymous)'}\u0000${script}${line}`;
  };
  const isProject = (frame: CpuProfile['nodes'][number]['callFrame']) => {
    const { script } = whereOf(frame);
    return script.startsWith('src/') || script.startsWith('packages/');
  };
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    // A sample lasts until the next one (as DevTools counts); the first delta is the time from
    // Profiler.start to the first sample, which is the profiler starting, not the program.
    const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000;
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
      if (f && isProject(f)) onStack.add(keyOf(f));
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
        if (mapCompiledFrames(profile)) await writeFile(p, JSON.stringify(profile));
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
