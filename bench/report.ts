/**
 * `npx tsx bench/report.ts [DIR]`: prints, as Markdown, the newest full-size, unprofiled result
 * of every scenario in DIR (default `bench/results`): one table with every row, then each scenario's
 * notes and process split. Used to write docs/performance.md from a run.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_OUT_DIR, SCENARIOS } from './harness.js';
import { markdownTable } from './lib/table.js';
import type { Row, ScenarioResult } from './lib/types.js';

async function newestResults(dir: string): Promise<ScenarioResult[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
  const newest = new Map<string, ScenarioResult>();
  for (const f of files) {
    const r = JSON.parse(await readFile(join(dir, f), 'utf8')) as ScenarioResult;
    if (r.quick || r.profiled !== false) continue;
    const seen = newest.get(r.scenario);
    if (!seen || seen.startedAt < r.startedAt) newest.set(r.scenario, r);
  }
  return SCENARIOS.map((s) => newest.get(s.name)).filter((r): r is ScenarioResult => r !== undefined);
}

async function main(dir: string): Promise<void> {
  const results = await newestResults(dir);
  if (results.length === 0) {
    console.error(`no full-size results in ${dir}; run npm run bench first`);
    process.exitCode = 1;
    return;
  }
  const rows: Row[] = results.flatMap((r) =>
    r.status === 'ok'
      ? r.rows.map((row) => ({ ...row, figure: `${r.id}. ${row.figure}` }))
      : [
          {
            figure: `${r.id}. ${r.title}`,
            unit: '',
            baseline: null,
            baselineLabel: '',
            mesh: null,
            ratio: null,
            target: null,
            met: null,
            note: `${r.status}: ${r.reason ?? ''}`,
          },
        ],
  );
  console.log(markdownTable(rows));
  console.log();
  for (const r of results) {
    const load = r.machine.loadAverage.join(' / ');
    const git = r.machine.git
      ? `, tree at ${r.machine.git.commit} +${r.machine.git.modifiedFiles} modified`
      : '';
    console.log(
      `**${r.id} ${r.scenario}** (${r.startedAt}, ${(r.durationMs / 1000).toFixed(1)} s, load average ${load} at start${git})`,
    );
    for (const n of r.notes) console.log(`- ${n}`);
    console.log(`- processes: ${r.processes.map((p) => `${p.role} (pid ${p.pid})`).join('; ')}`);
    console.log();
  }
}

void main(process.argv[2] ?? DEFAULT_OUT_DIR);
