/** Source directories whose files dist/ is compared against. */
export const SOURCE_DIRS: string[];
/** True when dist/ is missing or older than a source file, package.json or the build script. */
export function distIsStale(root?: string): Promise<boolean>;
/** Builds dist/ (or `outdir`, relative to `root`) and returns a one-line summary. */
export function buildDist(root?: string, outdir?: string): Promise<string>;
