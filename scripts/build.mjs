#!/usr/bin/env node
// Compiles the node, its CLI and the workspace packages to plain JavaScript in dist/, so a node runs
// on plain Node.js without tsx's loader (which costs ~100 ms of start and ~25 MB of RSS).
// One esbuild pass: project code, @a2a-mesh/* and the pure-JavaScript dependencies on the start path
// (ws, zod, prom-client, fast-json-patch, commander) are bundled as ESM; code shared by the entry
// points goes into chunks and dynamic imports stay lazy chunks. Bundling those dependencies saves
// Node's module resolution and CommonJS export scanning at start (about 40% of the import's CPU
// time, and ~5 MB of RSS; docs/performance.md). `tsc --noEmit` (in `npm test`) is what
// type-checks; esbuild only strips types.
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Where the sources live; dist/ is stale when any file under these is newer than dist/cli.js. */
export const SOURCE_DIRS = ['src', 'packages/protocol/src', 'packages/client/src'];
const STAMP = 'dist/cli.js';
/**
 * Dependencies left as imports from node_modules: pino and its transports (they start worker threads
 * from files on disk), msgpackr (optional native extension), the NATS client and jose (loaded only
 * with --nats or JWT auth), ws's optional native add-ons, and the dev-time loaders.
 */
export const EXTERNAL = [
  'pino',
  'pino-pretty',
  'thread-stream',
  'msgpackr',
  '@nats-io/*',
  'jose',
  'bufferutil',
  'utf-8-validate',
  'tsx',
  'esbuild',
];

/**
 * zod re-exports all of its ~50 message locales (`z.locales`, 350 KB of source) although it uses
 * only English, which its schemas import directly: the bundle gets English alone (about 1 MB less
 * idle RSS and a faster import; docs/performance.md §6). Nothing here selects another locale.
 */
function zodEnglishOnly() {
  const en = fileURLToPath(new URL('../node_modules/zod/v4/locales/en.js', import.meta.url));
  return {
    name: 'zod-english-only',
    setup(build) {
      build.onResolve({ filter: /\/locales\/index\.js$/ }, (args) =>
        args.importer.includes('/node_modules/zod/')
          ? { path: 'locales', namespace: 'zod-english-only' }
          : undefined,
      );
      build.onLoad({ filter: /.*/, namespace: 'zod-english-only' }, () => ({
        contents: `export { default as en } from ${JSON.stringify(en)};`,
        resolveDir: '/',
      }));
    },
  };
}

/**
 * V8 keeps a module's source text in memory for as long as the module lives, one byte per character
 * when the text is Latin-1 and two when it is not: one `→` in a kept comment doubled the two big
 * chunks' resident source (1.7 MB instead of 0.9 MB). esbuild already escapes non-ASCII characters in
 * strings, templates, regular expressions and names (`charset: 'ascii'`), so what is left after it
 * is comment text; each such UTF-16 unit becomes `?`, one for one, which keeps the source maps'
 * columns exact. Needs `metafile` (to know the outputs) and `write: true`.
 */
function asciiOutputs() {
  return {
    name: 'ascii-outputs',
    setup(build) {
      const cwd = build.initialOptions.absWorkingDir ?? process.cwd();
      build.onEnd(async (result) => {
        if (!result.metafile) return;
        for (const file of Object.keys(result.metafile.outputs)) {
          if (!file.endsWith('.js') && !file.endsWith('.mjs')) continue;
          const path = resolve(cwd, file);
          const text = await readFile(path, 'utf8');
          if (!/[\u0080-\uffff]/.test(text)) continue;
          await writeFile(path, text.replace(/[\u0080-\uffff]/g, '?'));
        }
      });
    },
  };
}

/**
 * The esbuild options every compiled node program shares (dist/, and the benchmark's worker
 * processes): ESM for Node 20, workspace packages from their sources, EXTERNAL left to node_modules.
 */
export const NODE_BUNDLE = {
  plugins: [zodEnglishOnly(), asciiOutputs()],
  bundle: true,
  charset: 'ascii',
  metafile: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  conditions: ['source'],
  external: EXTERNAL,
  // Bundled CommonJS dependencies call require() for Node built-ins; give the ESM chunks one.
  banner: {
    js: "import { createRequire as __meshRequire } from 'node:module'; const require = __meshRequire(import.meta.url);",
  },
};

async function newestMtime(dir) {
  let newest = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const { mtimeMs } = await stat(`${entry.parentPath ?? entry.path}/${entry.name}`);
    if (mtimeMs > newest) newest = mtimeMs;
  }
  return newest;
}

/** True when dist/ is missing or older than a source file (or than package.json / this script). */
export async function distIsStale(root = ROOT) {
  let built;
  try {
    built = (await stat(`${root}/${STAMP}`)).mtimeMs;
  } catch {
    return true;
  }
  const inputs = await Promise.all([
    ...SOURCE_DIRS.map((d) => newestMtime(`${root}/${d}`).catch(() => 0)),
    stat(`${root}/package.json`).then((s) => s.mtimeMs),
    stat(`${root}/scripts/build.mjs`).then((s) => s.mtimeMs),
  ]);
  return Math.max(...inputs) > built;
}

/** Builds dist/ (or `outdir`, relative to `root`) and returns a one-line summary. */
export async function buildDist(root = ROOT, outdir = 'dist') {
  const { build } = await import('esbuild');
  const out = `${root}/${outdir}`;
  await rm(out, { recursive: true, force: true });
  const started = performance.now();
  const result = await build({
    ...NODE_BUNDLE,
    absWorkingDir: root,
    entryPoints: { cli: 'src/cli/main.ts', index: 'src/index.ts' },
    outdir: out,
    splitting: true,
    sourcemap: true,
    metafile: true,
    logLevel: 'warning',
  });
  const js = Object.entries(result.metafile.outputs).filter(([file]) => file.endsWith('.js'));
  const kb = js.reduce((sum, [, out]) => sum + out.bytes, 0) / 1024;
  return `built ${outdir}/ in ${Math.round(performance.now() - started)} ms: ${js.length} files, ${kb.toFixed(0)} KB of JavaScript`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const onlyIfStale = process.argv.includes('--if-stale');
  if (onlyIfStale && !(await distIsStale())) console.log('dist/ is up to date');
  else console.log(await buildDist());
}
