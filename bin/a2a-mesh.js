#!/usr/bin/env node
// Runs the compiled CLI (dist/, built by `npm run build`) when it is up to date with the sources;
// otherwise runs the TypeScript sources through tsx, so an edit is never shadowed by an old build.
import { distIsStale } from '../scripts/build.mjs';

if (await distIsStale()) {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
} else {
  await import('../dist/cli.js');
}
