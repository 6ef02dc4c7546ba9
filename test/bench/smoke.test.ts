import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBench, SCENARIOS } from '../../bench/harness.js';
import type { ScenarioResult } from '../../bench/lib/types.js';

/**
 * Runs every scenario of the benchmark harness at its tiny `--quick` size so the harness cannot rot.
 * Asserts only the shape of the results (positive, finite figures; JSON written; processes listed),
 * never speed: speed is reported by `npm run bench`, not asserted.
 */

let outDir: string;

beforeAll(async () => {
  outDir = await mkdtemp(join(tmpdir(), 'a2a-mesh-bench-smoke-'));
});

afterAll(async () => {
  await rm(outDir, { recursive: true, force: true });
});

function checkWellFormed(r: ScenarioResult): void {
  expect(r.status, r.reason).toBe('ok');
  expect(r.quick).toBe(true);
  expect(r.rows.length).toBeGreaterThan(0);
  expect(r.processes.length).toBeGreaterThan(0);
  for (const p of r.processes) expect(p.pid).toBeGreaterThan(0);
  // Workers run compiled on plain node, as production runs the node (BENCH_TSX=1 runs them under tsx).
  if (process.env.BENCH_TSX !== '1') {
    expect(r.processes.filter((p) => /\(compiled \w+\.ts, plain node\)/.test(p.what)).length).toBeGreaterThan(
      0,
    );
  }
  expect(r.machine.cpus).toBeGreaterThan(0);
  for (const row of r.rows) {
    expect(row.figure.length).toBeGreaterThan(0);
    if (row.baseline !== null) {
      expect(Number.isFinite(row.baseline)).toBe(true);
      expect(row.baseline).toBeGreaterThan(0);
    }
    if (row.mesh === null) {
      // Only a figure whose subsystem is missing may be absent, and it must say why.
      expect(row.note).toMatch(/not available/);
      expect(row.met).toBeNull();
      continue;
    }
    expect(Number.isFinite(row.mesh)).toBe(true);
    expect(row.mesh).toBeGreaterThan(0);
    if (row.baseline !== null) expect(row.ratio).toBeCloseTo(row.mesh / row.baseline, 6);
    if (row.target) expect(typeof row.met).toBe('boolean');
  }
}

describe('bench harness at --quick size', () => {
  for (const scenario of SCENARIOS) {
    it(`${scenario.id} ${scenario.name} produces well-formed results`, { timeout: 45_000 }, async () => {
      const [result] = await runBench({ scenarios: [scenario.name], quick: true, outDir });
      expect(result).toBeDefined();
      const r = result!;
      if (r.status === 'unavailable') {
        // e.g. no nats-server on this machine: the harness says so instead of failing.
        expect(r.reason).toBeTruthy();
        return;
      }
      checkWellFormed(r);
      const files = (await readdir(outDir)).filter(
        (f) => f.startsWith(`${scenario.name}-`) && f.endsWith('.json'),
      );
      expect(files.length).toBeGreaterThan(0);
      const written = JSON.parse(await readFile(join(outDir, files.at(-1)!), 'utf8')) as ScenarioResult;
      expect(written.scenario).toBe(scenario.name);
      expect(written.rows).toEqual(r.rows);
    });
  }

  it('gives the gateway row a figure, or says it is not available (never a made-up number)', async () => {
    const files = (await readdir(outDir)).filter((f) => f.startsWith('gateway-'));
    const r = JSON.parse(await readFile(join(outDir, files[0]!), 'utf8')) as ScenarioResult;
    const gatewayRow = r.rows[0]!;
    if (gatewayRow.mesh === null) expect(gatewayRow.note).toMatch(/not available/);
    else expect(gatewayRow.mesh).toBeGreaterThan(0);
  });

  it('runs the latency floor (raw relays, no mesh code) with every delivery received, as an untargeted row', async () => {
    const files = (await readdir(outDir)).filter((f) => f.startsWith('latency-'));
    const r = JSON.parse(await readFile(join(outDir, files[0]!), 'utf8')) as ScenarioResult & {
      trials: { floor: { expected: number; received: number; errors: number }[] };
    };
    if (r.status === 'unavailable') return;
    expect(r.trials.floor.length).toBeGreaterThan(0);
    for (const t of r.trials.floor) {
      expect(t.expected).toBeGreaterThan(0);
      expect(t.received).toBe(t.expected);
      expect(t.errors).toBe(0);
    }
    const floorP99 = r.rows.find((row) => row.figure.startsWith('floor: share → deliver p99'));
    expect(floorP99?.target).toBeNull();
    expect(floorP99!.mesh).toBeGreaterThan(0);
  });

  it('reads cold-start memory twice, with the 60 MB target on the reading at rest only', async () => {
    const files = (await readdir(outDir)).filter((f) => f.startsWith('coldstart-'));
    const r = JSON.parse(await readFile(join(outDir, files[0]!), 'utf8')) as ScenarioResult;
    const early = r.rows.find((row) =>
      /^RSS \d+ ms after listening \(start-up transient\)$/.test(row.figure),
    );
    const idle = r.rows.find((row) => /^idle RSS \([\d.]+ s after listening\)$/.test(row.figure));
    expect(early?.target).toBeNull();
    expect(idle?.target).toEqual({ type: 'meshAtMost', value: 60 });
    expect(idle!.mesh).toBeGreaterThan(0);
  });
});
