import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { buildDist, distIsStale, NODE_BUNDLE } from '../../scripts/build.mjs';
import { testClient } from '../helpers/meshClient.js';
import { startNodeProcess } from '../helpers/nodeProcess.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('compiled build (scripts/build.mjs)', () => {
  // Inside the repository, so that the bundle's imports of npm packages resolve to node_modules.
  const outdir = `.tmp/build-test-${process.pid}`;
  afterAll(() => rm(join(ROOT, outdir), { recursive: true, force: true }));

  it('builds a CLI that runs a node on plain Node.js, with no tsx loader', async () => {
    const summary = await buildDist(ROOT, outdir);
    expect(summary).toMatch(new RegExp(`^built ${outdir.replace(/[.]/g, '\\.')}/ in \\d+ ms`));
    const node = await startNodeProcess('built-node', [], 20_000, join(ROOT, outdir, 'cli.js'));
    // Plain `node cli.js`: a TypeScript import left in the bundle would fail to load here.
    const http = node.url.replace('ws://', 'http://').replace(/\/mesh$/, '');
    expect((await fetch(`${http}/health`)).status).toBe(200);
    const alice = testClient({ url: node.url, agentId: 'alice' });
    const bob = testClient({ url: node.url, agentId: 'bob' });
    await Promise.all([alice.connect(), bob.connect()]);
    const { collaborationId } = await alice.startCollaboration({
      topic: 'compiled',
      state: { ideas: [] },
      members: [{ agentId: 'bob' }],
    });
    const a = await alice.joinCollaboration(collaborationId);
    const b = await bob.joinCollaboration(collaborationId);
    await b.update([{ op: 'add', path: '/ideas/-', value: 'ship dist/' }]);
    await a.waitForOffset(b.offset, { timeoutMs: 2_000 });
    expect(a.state).toEqual({ ideas: ['ship dist/'] });
    // prom-client is bundled (CommonJS inside an ESM chunk): its registry must still render.
    const metrics = await (await fetch(`${http}/metrics`)).text();
    expect(metrics).toMatch(/^a2a_mesh_connections\{node="built-node"\} 2$/m);
    // zod's messages are English (the only locale bundled; the others are left out of the build).
    const bad = await fetch(`${http}/agents/alice/a2a`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'a2a-version': '1.0' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'SendMessage', params: { message: 5 } }),
    });
    expect(JSON.stringify(await bad.json())).toMatch(/Invalid input: expected object, received number/);
    const chunks = (await readdir(join(ROOT, outdir))).filter((f) => f.endsWith('.js'));
    for (const f of chunks) {
      const text = await readFile(join(ROOT, outdir, f), 'utf8');
      expect(text).not.toContain('erwartet instanceof');
      // ASCII only, so that V8 holds each module's source at one byte per character.
      expect(text.match(/[\u0080-\uffff]/)?.[0], f).toBeUndefined();
    }
    expect(await node.kill('SIGTERM')).toBe(0);
  });
});

describe('NODE_BUNDLE output', () => {
  it('is ASCII: strings escaped, comments esbuild keeps rewritten one unit for one', async () => {
    const dir = join(ROOT, `.tmp/ascii-test-${process.pid}`);
    await mkdir(dir, { recursive: true });
    try {
      // esbuild keeps a class field's doc comment; the string must keep its meaning.
      await writeFile(
        join(dir, 'entry.ts'),
        'export class A {\n  /** subject → count */\n  #m = new Map();\n  label = "a → b ✓";\n}\n',
      );
      const { build } = await import('esbuild');
      await build({ ...NODE_BUNDLE, absWorkingDir: dir, entryPoints: ['entry.ts'], outdir: 'out' });
      const text = await readFile(join(dir, 'out/entry.js'), 'utf8');
      expect(text.match(/[\u0080-\uffff]/)?.[0]).toBeUndefined();
      expect(text).toContain('/** subject ? count */');
      const { A } = await import(join(dir, 'out/entry.js'));
      expect(new A().label).toBe('a → b ✓');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('distIsStale', () => {
  it('is true when dist/ is missing, false when it is newer than every input, true after an edit', async () => {
    const root = await mkdtemp(join(tmpdir(), 'a2a-mesh-stale-'));
    try {
      for (const dir of ['src/a', 'packages/protocol/src', 'packages/client/src', 'scripts']) {
        await mkdir(join(root, dir), { recursive: true });
      }
      const files = [
        'package.json',
        'scripts/build.mjs',
        'src/a/deep.ts',
        'packages/protocol/src/x.ts',
        'packages/client/src/y.ts',
      ];
      const old = new Date(Date.now() - 60_000);
      for (const f of files) {
        await writeFile(join(root, f), '');
        await utimes(join(root, f), old, old);
      }
      expect(await distIsStale(root)).toBe(true);
      await mkdir(join(root, 'dist'));
      await writeFile(join(root, 'dist/cli.js'), '');
      expect(await distIsStale(root)).toBe(false);
      // A source file edited after the build, however deep.
      const later = new Date(Date.now() + 60_000);
      await utimes(join(root, 'src/a/deep.ts'), later, later);
      expect(await distIsStale(root)).toBe(true);
      await utimes(join(root, 'src/a/deep.ts'), old, old);
      await utimes(join(root, 'packages/client/src/y.ts'), later, later);
      expect(await distIsStale(root)).toBe(true);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
