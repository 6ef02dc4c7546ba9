/**
 * Scenario 6: cold start of an embedded node. A fresh process per sample imports and starts either
 * an embedded mesh node or, as the baseline, a bare `ws` server, and reports how long until it
 * listens; then its memory twice, after two forced GCs each time: 1 s after listening (the start-up
 * transient) and once idle, SETTLE_MS after listening. Samples alternate baseline and mesh; each
 * process stays up, idle, until its idle reading, so the processes settle side by side.
 *
 * Why two readings: V8 grows the young generation while modules load (most of what a module makes
 * survives), and a forced GC empties it without shrinking it; V8 gives that memory back only when its
 * memory reducer runs, about 8 s after start's last full GC once the process allocates little (seen
 * at 8-10 s, docs/performance.md). The idle figure is the process at rest; the 1 s one is printed
 * beside it.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { buildDist } from '../../scripts/build.mjs';
import { row, type Scenario, type ScenarioContext, type ScenarioOutcome } from '../lib/types.js';
import { REPO_ROOT, type Worker } from '../lib/workers.js';
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

/** When the idle reading is taken, after listening: past V8's memory reducer (seen at 8-10 s). */
const SETTLE_MS = 15_000;

/** What a sample knows once its process listened and was read the first time. */
interface StartSample {
  importMs: number;
  startMs: number;
  totalMs: number;
  cpuMs: number;
  /** Harness: spawn of the process until the start command answered (Node + tsx boot included). */
  spawnToListeningMs: number;
  firstLineMs: number;
  /** 1 s after listening (200 ms with --quick). */
  earlyRssMb: number;
  earlyHeapMb: number;
  earlyPrivateDirtyMb: number;
}

interface Sample extends StartSample {
  /** SETTLE_MS after listening (1 s with --quick). */
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
    const earlyMs = ctx.quick ? 200 : 1000;
    const settleMs = ctx.quick ? 1000 : SETTLE_MS;
    const mesh: Sample[] = [];
    const base: Sample[] = [];
    const compiled = await compileWorker(ctx.progress);
    const entry = pathToFileURL(join(REPO_ROOT, 'dist', 'index.js')).href;
    type Held = {
      mode: 'ws' | 'mesh';
      i: number;
      w: Worker<ColdStartCommands>;
      listeningAt: number;
      sample: StartSample;
    };
    const held: Held[] = [];
    const sleepUntil = (t: number) =>
      new Promise((res) => setTimeout(res, Math.max(0, t - performance.now())));
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
        const listeningAt = performance.now();
        await sleepUntil(listeningAt + earlyMs);
        const m = await w.call('smaps', {});
        const sample = {
          importMs: r.importMs,
          startMs: r.startMs,
          totalMs: r.totalMs,
          cpuMs: r.cpuMs,
          spawnToListeningMs: listeningAt - t0,
          firstLineMs: r.firstLineMs,
          earlyRssMb: m.rssMb,
          earlyHeapMb: m.heapUsedMb,
          earlyPrivateDirtyMb: m.privateDirtyMb,
        };
        held.push({ mode, i, w, listeningAt, sample });
        ctx.progress(
          `${mode === 'mesh' ? 'mesh' : 'baseline'} ${i + 1}/${samples}: import ${sample.importMs.toFixed(0)} ms + start ${sample.startMs.toFixed(1)} ms; ` +
            `(CPU ${sample.cpuMs.toFixed(0)} ms); spawn → listening ${sample.spawnToListeningMs.toFixed(0)} ms; ` +
            `RSS ${earlyMs} ms after listening ${m.rssMb.toFixed(1)} MB (private ${m.privateDirtyMb.toFixed(1)} MB, heap ${m.heapUsedMb.toFixed(1)} MB)`,
        );
      }
    }
    ctx.progress(`idle readings ${settleMs / 1000} s after each process listened`);
    for (const h of held) {
      checkBudget(ctx);
      await sleepUntil(h.listeningAt + settleMs);
      const m = await h.w.call('smaps', {});
      await ctx.workers.stop(h.w);
      const s: Sample = {
        ...h.sample,
        idleRssMb: m.rssMb,
        idleHeapMb: m.heapUsedMb,
        idlePssMb: m.pssMb,
        idleSharedCleanMb: m.sharedCleanMb,
        idlePrivateDirtyMb: m.privateDirtyMb,
      };
      (h.mode === 'mesh' ? mesh : base).push(s);
      ctx.progress(
        `${h.mode === 'mesh' ? 'mesh' : 'baseline'} ${h.i + 1}/${samples} idle: RSS ${s.idleRssMb.toFixed(1)} MB = ${s.idleSharedCleanMb.toFixed(1)} shared + ${s.idlePrivateDirtyMb.toFixed(1)} private ` +
          `(PSS ${s.idlePssMb.toFixed(1)} MB, heap ${s.idleHeapMb.toFixed(1)} MB)`,
      );
    }
    // figure, unit, the sample field it reports, target
    const figures: [string, 'ms' | 'MB', keyof Sample, number | null][] = [
      ['import + createMeshNode() → listening', 'ms', 'totalMs', 250],
      ['CPU time of import + start (all threads)', 'ms', 'cpuMs', null],
      ['createMeshNode() → listening (modules loaded)', 'ms', 'startMs', null],
      ['process spawn → listening (node boot included)', 'ms', 'spawnToListeningMs', null],
      [`RSS ${earlyMs} ms after listening (start-up transient)`, 'MB', 'earlyRssMb', null],
      [`private memory ${earlyMs} ms after listening`, 'MB', 'earlyPrivateDirtyMb', null],
      [`idle RSS (${settleMs / 1000} s after listening)`, 'MB', 'idleRssMb', 60],
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
      `memory from /proc/self/smaps_rollup after two forced GCs, ${earlyMs} ms and ${settleMs / 1000} s after listening; the processes stay up between the two readings and settle side by side; "shared" is Shared_Clean (mostly the node binary's code pages, shared by every node process on the host)`,
      `the idle reading is taken after V8's memory reducer, which gives back the young generation grown while modules load (about 8 s after start; forced GCs empty that space without shrinking it)`,
      `Node boot before the script's first line: median ${medianOf([...mesh, ...base], (s) => s.firstLineMs).toFixed(0)} ms`,
    ];
    return { rows, notes, trials: { mesh, baseline: base } };
  },
};
