/**
 * Scenario 6: cold start of an embedded node. A fresh process per sample imports and starts either
 * an embedded mesh node or, as the baseline, a bare `ws` server, and reports how long until it
 * listens; then its RSS after two GCs once idle. Samples alternate baseline and mesh.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { buildDist } from '../../scripts/build.mjs';
import { row, type Scenario, type ScenarioContext, type ScenarioOutcome } from '../lib/types.js';
import { REPO_ROOT } from '../lib/workers.js';
import type { ColdStartCommands } from '../procs/commands.js';
import { checkBudget, medianOf } from './common.js';

/**
 * Builds the node as production runs it (dist/, `npm run build`) and compiles the worker script to
 * plain JavaScript next to it, so both sides run on plain Node.js. Returns the worker's path.
 */
async function compileWorker(progress: (line: string) => void): Promise<string> {
  progress(await buildDist(REPO_ROOT));
  const outfile = join(REPO_ROOT, '.tmp', 'bench', 'coldStart.mjs');
  await build({
    absWorkingDir: REPO_ROOT,
    entryPoints: [join(REPO_ROOT, 'bench', 'procs', 'coldStart.ts')],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    logLevel: 'warning',
  });
  return outfile;
}

interface Sample {
  importMs: number;
  startMs: number;
  totalMs: number;
  cpuMs: number;
  /** Harness: spawn of the process until the start command answered (Node + tsx boot included). */
  spawnToListeningMs: number;
  firstLineMs: number;
  idleRssMb: number;
  idleHeapMb: number;
  idlePssMb: number;
  idleSharedCleanMb: number;
  idlePrivateDirtyMb: number;
}

export const coldStartScenario: Scenario = {
  id: 6,
  name: 'coldstart',
  title: 'Cold start of an embedded node to listening, and its idle RSS',
  budgetMs: 60_000,
  async run(ctx: ScenarioContext): Promise<ScenarioOutcome> {
    const samples = ctx.quick ? 1 : 5;
    const idleMs = ctx.quick ? 200 : 1000;
    const mesh: Sample[] = [];
    const base: Sample[] = [];
    const compiled = await compileWorker(ctx.progress);
    const entry = pathToFileURL(join(REPO_ROOT, 'dist', 'index.js')).href;
    for (let i = 0; i < samples; i++) {
      for (const mode of ['ws', 'mesh'] as const) {
        checkBudget(ctx);
        const t0 = performance.now();
        const w = await ctx.workers.start<ColdStartCommands>({
          role: mode === 'mesh' ? `embedded mesh node #${i + 1}` : `bare ws server #${i + 1}`,
          script: 'coldStart.ts',
          exposeGc: true,
          compiled,
          // With --profile: the whole life of the mesh processes, i.e. mostly the import.
          ...(ctx.profileDir && mode === 'mesh' ? { cpuProfDir: ctx.profileDir } : {}),
        });
        const r = await w.call('start', { mode, entry });
        const spawnToListeningMs = performance.now() - t0;
        await new Promise((res) => setTimeout(res, idleMs));
        const m = await w.call('smaps', {});
        await ctx.workers.stop(w);
        const s: Sample = {
          importMs: r.importMs,
          startMs: r.startMs,
          totalMs: r.totalMs,
          cpuMs: r.cpuMs,
          spawnToListeningMs,
          firstLineMs: r.firstLineMs,
          idleRssMb: m.rssMb,
          idleHeapMb: m.heapUsedMb,
          idlePssMb: m.pssMb,
          idleSharedCleanMb: m.sharedCleanMb,
          idlePrivateDirtyMb: m.privateDirtyMb,
        };
        (mode === 'mesh' ? mesh : base).push(s);
        ctx.progress(
          `${mode === 'mesh' ? 'mesh' : 'baseline'} ${i + 1}/${samples}: import ${s.importMs.toFixed(0)} ms + start ${s.startMs.toFixed(1)} ms; ` +
            `(CPU ${s.cpuMs.toFixed(0)} ms); spawn → listening ${s.spawnToListeningMs.toFixed(0)} ms; ` +
            `idle RSS ${s.idleRssMb.toFixed(1)} MB = ${s.idleSharedCleanMb.toFixed(1)} shared + ${s.idlePrivateDirtyMb.toFixed(1)} private ` +
            `(PSS ${s.idlePssMb.toFixed(1)} MB, heap ${s.idleHeapMb.toFixed(1)} MB)`,
        );
      }
    }
    // figure, unit, the sample field it reports, target
    const figures: [string, 'ms' | 'MB', keyof Sample, number | null][] = [
      ['import + createMeshNode() → listening', 'ms', 'totalMs', 250],
      ['CPU time of import + start (all threads)', 'ms', 'cpuMs', null],
      ['createMeshNode() → listening (modules loaded)', 'ms', 'startMs', null],
      ['process spawn → listening (node boot included)', 'ms', 'spawnToListeningMs', null],
      ['idle RSS after start', 'MB', 'idleRssMb', 60],
      ['idle RSS: file pages shared with other node processes', 'MB', 'idleSharedCleanMb', null],
      ['idle private memory (Private_Dirty)', 'MB', 'idlePrivateDirtyMb', null],
    ];
    const rows = figures.map(([figure, unit, field, atMost]) =>
      row({
        figure,
        unit,
        baseline: medianOf(base, (s) => s[field]),
        baselineLabel: 'bare ws server',
        mesh: medianOf(mesh, (s) => s[field]),
        target: atMost === null ? null : { type: 'meshAtMost', value: atMost },
      }),
    );
    const notes = [
      'each sample is a fresh plain `node --expose-gc` process (no tsx: the worker is compiled, and the mesh side imports the compiled node, dist/index.js, as `npm start` and the container run it); the timer starts before the dynamic import of the node (or of ws + node:http)',
      `idle RSS: ${idleMs} ms after listening, after two forced GCs, from /proc/self/smaps_rollup; "shared" is Shared_Clean (mostly the node binary's code pages, shared by every node process on the host)`,
      `Node boot before the script's first line: median ${medianOf([...mesh, ...base], (s) => s.firstLineMs).toFixed(0)} ms`,
    ];
    return { rows, notes, trials: { mesh, baseline: base } };
  },
};
