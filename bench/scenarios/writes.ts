/**
 * Scenario 3: write rate into one collaboration with contiguous offsets. One writer on one node, and
 * four writers on two nodes, over NATS JetStream; plus one writer on the embedded bus. Readers on
 * each node check that the offsets they receive are contiguous. Baseline: raw JetStream publishes into
 * one subject with the same number of writes in flight.
 */
import { type Row, row, type Scenario, type ScenarioContext, type ScenarioOutcome } from '../lib/types.js';
import type { Worker } from '../lib/workers.js';
import type {
  LoadGenCommands,
  MeshNodeCommands,
  NatsPeerCommands,
  WritesRunResult,
} from '../procs/commands.js';
import {
  checkBudget,
  cpuDuring,
  cpuText,
  medianOf,
  natsUnavailable,
  profiled,
  startNats,
  startNatsNodePair,
  token,
} from './common.js';

interface Case {
  label: string;
  /** Index of the node each writer connects to. */
  writerNodes: number[];
  windowPerWriter: number;
  nodes: Worker<MeshNodeCommands>[];
  urls: string[];
  /** JetStream baseline: connections × publishers with the same total in flight; none for the embedded bus. */
  baseline: { connections: number; publishers: number } | undefined;
  target: number;
}

export const writesScenario: Scenario = {
  id: 3,
  name: 'writes',
  title: 'Write rate into one collaboration (contiguous offsets) vs raw JetStream publish',
  budgetMs: 90_000,
  unavailable: natsUnavailable,
  async run(ctx: ScenarioContext): Promise<ScenarioOutcome> {
    const q = ctx.quick;
    const trialsEach = q ? 1 : 3;
    const warmupMs = q ? 100 : 300;
    const durationMs = q ? 400 : 1500;
    const nats = await startNats(ctx);
    const { nodes: natsNodes, urls: natsUrls } = await startNatsNodePair(ctx, nats.url);
    const embedded = await ctx.workers.start<MeshNodeCommands>({
      role: 'mesh node (embedded bus)',
      script: 'meshNode.ts',
    });
    const { url: embeddedUrl } = await embedded.call('start', { bus: 'embedded' });
    const publisher = await ctx.workers.start<NatsPeerCommands>({
      role: 'JetStream publisher',
      script: 'natsPeer.ts',
    });
    const load = await ctx.workers.start<LoadGenCommands>({ role: 'load generator', script: 'loadGen.ts' });
    const stream = `BENCH_${token().toUpperCase()}`;
    const subjectBase = `benchjs.${token()}`;
    await publisher.call('createStream', { servers: nats.url, stream, subject: `${subjectBase}.>` });

    const cases: Case[] = [
      {
        label: '1 writer, 1 node (NATS)',
        writerNodes: [0],
        windowPerWriter: 16,
        nodes: natsNodes,
        urls: natsUrls,
        baseline: { connections: 1, publishers: 1 },
        target: 5000,
      },
      {
        label: '4 writers on 2 nodes (NATS)',
        writerNodes: [0, 0, 1, 1],
        windowPerWriter: 4,
        nodes: natsNodes,
        urls: natsUrls,
        baseline: { connections: 2, publishers: 2 },
        target: 3000,
      },
      {
        label: '1 writer, embedded bus',
        writerNodes: [0],
        windowPerWriter: 16,
        nodes: [embedded],
        urls: [embeddedUrl],
        baseline: undefined,
        target: 5000,
      },
    ];
    const rows: Row[] = [];
    const notes: string[] = [];
    const trials: Record<string, unknown> = {};
    for (const c of cases) {
      const mesh: (WritesRunResult & { cpu: Record<string, number> })[] = [];
      const base: { rate: number; errors: number }[] = [];
      for (let i = 0; i < trialsEach; i++) {
        if (c.baseline) {
          checkBudget(ctx);
          const b = await publisher.call(
            'jsPublish',
            {
              servers: nats.url,
              subject: `${subjectBase}.${token()}`,
              connections: c.baseline.connections,
              publishers: c.baseline.publishers,
              window:
                (c.windowPerWriter * c.writerNodes.length) / (c.baseline.connections * c.baseline.publishers),
              payloadBytes: 120,
              warmupMs,
              durationMs,
            },
            60_000,
          );
          base.push(b);
          ctx.progress(
            `${c.label} baseline ${i + 1}/${trialsEach}: ${Math.round(b.rate).toLocaleString('en-US')} JetStream publishes/s`,
          );
        }
        checkBudget(ctx);
        // A fresh collaboration per trial; a reader on every node checks contiguity.
        await load.call('writesSetup', {
          writerUrls: c.writerNodes.map((n) => c.urls[n]!),
          readerUrls: c.urls,
          prefix: `wr-${token()}`,
        });
        const trial = async () => {
          const run = load.call('writesRun', { warmupMs, durationMs, window: c.windowPerWriter }, 60_000);
          const cpu = await cpuDuring([...c.nodes, load], warmupMs, durationMs);
          return { ...(await run), cpu };
        };
        const m =
          i === trialsEach - 1 ? await profiled(ctx, c.nodes, `writes ${c.label}`, trial) : await trial();
        mesh.push(m);
        await load.call('closeAll', null);
        ctx.progress(
          `${c.label} mesh ${i + 1}/${trialsEach}: ${Math.round(m.rate).toLocaleString('en-US')} writes/s ` +
            `(contiguous at every reader: ${m.contiguous}; ${m.errors} errors; last offset ${m.lastOffset}; cpu ${cpuText(m.cpu)})`,
        );
      }
      rows.push(
        row({
          figure: `writes into one collaboration, ${c.label}`,
          unit: '/s',
          baseline: c.baseline ? medianOf(base, (b) => b.rate) : null,
          baselineLabel: 'JetStream publish',
          mesh: medianOf(mesh, (m) => m.rate),
          target: { type: 'meshAtLeast', value: c.target },
          ...(c.baseline ? {} : { note: 'no NATS on this path' }),
        }),
      );
      const broken = mesh.filter((m) => !m.contiguous).length;
      notes.push(
        `${c.label}: ${c.windowPerWriter} shares in flight per writer; offsets contiguous at every reader in ${mesh.length - broken}/${mesh.length} trials`,
      );
      trials[c.label] = { mesh, baseline: base };
    }
    notes.push(
      'baseline: plain JetStream publishes (no expected-sequence header) into one subject of a file-storage stream, same total in flight',
    );
    // A node appends to one log one publish at a time; this is what that allows on this machine.
    checkBudget(ctx);
    const serial = await publisher.call(
      'jsPublish',
      {
        servers: nats.url,
        subject: `${subjectBase}.${token()}`,
        connections: 1,
        publishers: 1,
        window: 1,
        payloadBytes: 120,
        warmupMs,
        durationMs,
      },
      60_000,
    );
    notes.push(
      `JetStream publishes one at a time (1 in flight, as a node appends to one log): ${Math.round(serial.rate).toLocaleString('en-US')}/s`,
    );
    trials.serialPublish = serial;
    return { rows, notes, trials };
  },
};
