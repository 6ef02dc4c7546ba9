/**
 * `npm run bench [-- [--quick] [--profile] [--out DIR] [scenario ...]]`
 *
 * Runs every scenario (or the named ones: a name like `fanout` or a number like `1`), each bounded in
 * time, with its baseline and the mesh interleaved; prints a table per scenario and writes
 * `bench/results/<scenario>-<timestamp>.json`. Exit code 1 when a scenario failed to run (not when a
 * target was missed: speed is reported, never asserted).
 */
import { DEFAULT_OUT_DIR, runBench, SCENARIOS } from './harness.js';

const USAGE = `usage: npm run bench -- [--quick] [--profile] [--out DIR] [scenario ...]
  --quick    tiny sizes (what the smoke test runs)
  --profile  CPU-profile the mesh nodes during the last mesh trial of each case (cold start: the whole
             process, --cpu-prof) and print their top functions; figures of a profiled run are lower
  --out DIR  where to write results (default ${DEFAULT_OUT_DIR})
scenarios:
${SCENARIOS.map((s) => `  ${s.id} ${s.name.padEnd(10)} ${s.title}`).join('\n')}`;

async function main(argv: string[]): Promise<number> {
  const names: string[] = [];
  let quick = false;
  let profile = false;
  let outDir: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') quick = true;
    else if (a === '--profile') profile = true;
    else if (a === '--out') outDir = argv[++i];
    else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      return 0;
    } else if (a.startsWith('-')) {
      console.error(`unknown option ${a}\n${USAGE}`);
      return 2;
    } else names.push(a);
  }
  const results = await runBench({
    scenarios: names,
    quick,
    profile,
    ...(outDir === undefined ? {} : { outDir }),
  });
  const failed = results.filter((r) => r.status === 'failed');
  console.log(
    `${results.length} scenario(s): ${results.filter((r) => r.status === 'ok').length} ran, ` +
      `${results.filter((r) => r.status === 'unavailable').length} not available, ${failed.length} failed`,
  );
  return failed.length > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  },
);
