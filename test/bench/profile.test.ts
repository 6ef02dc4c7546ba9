import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { summarizeProfile, summarizeProfiles } from '../../bench/lib/profile.js';
import { REPO_ROOT } from '../../bench/lib/workers.js';

/**
 * The profile summary of a compiled benchmark worker: frames in the bundle are named by the module
 * esbuild bundled them from (its `// <path>` markers), and each sample lasts until the next one.
 */

const dir = join(REPO_ROOT, '.tmp', 'bench', `procs-test-${process.pid}`);
const bundle = join(dir, 'worker.mjs');

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const BUNDLE = [
  '// bench/procs/worker.ts', // line 0
  'serve();',
  '// src/a2a/taskStore.ts', // line 2
  'function append() {}',
  'function load() {}',
  '// node_modules/ws/lib/sender.js', // line 5
  'function frame() {}',
].join('\n');

/** root → append (line 3) → frame (line 6); root → load (line 4); plus idle. */
function profile() {
  const url = `file://${bundle}`;
  return {
    nodes: [
      { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 }, children: [2, 4, 5] },
      { id: 2, callFrame: { functionName: 'append', url, lineNumber: 3 }, children: [3] },
      { id: 3, callFrame: { functionName: 'frame', url, lineNumber: 6 } },
      { id: 4, callFrame: { functionName: 'load', url, lineNumber: 4 } },
      { id: 5, callFrame: { functionName: '(idle)', url: '', lineNumber: -1 } },
    ],
    startTime: 0,
    endTime: 110_000,
    // The first delta (profiler start to first sample) is not program time.
    samples: [3, 2, 4, 5],
    timeDeltas: [100_000, 4_000, 3_000, 2_000],
  };
}

describe('profile summaries of compiled workers', () => {
  it('names bundle frames by their source module and counts each sample until the next', async () => {
    await mkdir(dir, { recursive: true });
    await writeFile(bundle, BUNDLE);
    const s = summarizeProfile(profile(), 'p.cpuprofile');
    // frame: 4 ms (until the second sample), append: 3 ms, load: 2 ms, idle: the rest (0 ms).
    expect(s.busyMs).toBe(9);
    expect(s.top.map((e) => [e.function, e.where, e.selfMs])).toEqual([
      ['frame', 'node_modules/ws/lib/sender.js', 4],
      ['append', 'src/a2a/taskStore.ts', 3],
      ['load', 'src/a2a/taskStore.ts', 2],
    ]);
    // Project functions only (src/, packages/), with what they call.
    expect(s.ownInclusive.map((e) => [e.function, e.selfMs])).toEqual([
      ['append', 7],
      ['load', 2],
    ]);
  });

  it('rewrites a saved profile so it still reads after the bundle is gone', async () => {
    await mkdir(join(dir, 'profiles'), { recursive: true });
    await writeFile(bundle, BUNDLE);
    const file = join(dir, 'profiles', 'w.cpuprofile');
    await writeFile(file, JSON.stringify(profile()));
    const [first] = await summarizeProfiles(join(dir, 'profiles'));
    const saved = JSON.parse(await readFile(file, 'utf8')) as ReturnType<typeof profile>;
    expect(saved.nodes[1]!.callFrame).toEqual({
      functionName: 'append',
      url: `file://${join(REPO_ROOT, 'src/a2a/taskStore.ts')}`,
      lineNumber: -1,
    });
    await rm(bundle);
    const [again] = await summarizeProfiles(join(dir, 'profiles'));
    expect(again!.top).toEqual(first!.top);
    expect(again!.top[1]!.where).toBe('src/a2a/taskStore.ts');
  });
});
