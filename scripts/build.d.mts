/** Source directories whose files dist/ is compared against. */
export const SOURCE_DIRS: string[];
/** True when dist/ is missing or older than a source file, package.json or the build script. */
export function distIsStale(root?: string): Promise<boolean>;
/** Builds dist/ (or `outdir`, relative to `root`) and returns a one-line summary. */
export function buildDist(root?: string, outdir?: string): Promise<string>;
/** Dependencies left as imports from node_modules in every compiled program. */
export const EXTERNAL: string[];
/** The esbuild options shared by dist/ and the benchmark's compiled workers. */
export const NODE_BUNDLE: import('esbuild').BuildOptions;
