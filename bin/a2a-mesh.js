#!/usr/bin/env node
// Runs the compiled CLI (dist/, built by `npm run build`) when it is up to date with the sources;
// otherwise runs the TypeScript sources through tsx, so an edit is never shadowed by an old build.
// Without sources (the container image) it runs dist/.
import { existsSync } from 'node:fs';
import { distIsStale } from '../scripts/build.mjs';

const sources = new URL('../src/cli/main.ts', import.meta.url);
if (existsSync(sources) && (await distIsStale())) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(sources.href);
} else {
  await import('../dist/cli.js');
}
