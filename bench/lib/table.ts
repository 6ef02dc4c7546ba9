import type { Row, Target } from './types.js';

/** Formats a figure for the table: thousands separators for large numbers, 2-3 significant digits for small. */
export function fmt(x: number | null, unit = ''): string {
  if (x === null || !Number.isFinite(x)) return 'n/a';
  const abs = Math.abs(x);
  let s: string;
  if (abs >= 1000) s = Math.round(x).toLocaleString('en-US');
  else if (abs >= 100) s = x.toFixed(0);
  else if (abs >= 10) s = x.toFixed(1);
  else if (abs >= 1) s = x.toFixed(2);
  else s = x.toPrecision(2);
  return unit ? `${s} ${unit}` : s;
}

/** "ratio ≥ 0.9", "≤ 2 ms", ... */
export function targetText(t: Target | null, unit: string): string {
  if (!t) return '—';
  switch (t.type) {
    case 'ratioAtLeast':
      return `ratio ≥ ${t.value}`;
    case 'ratioAtMost':
      return `ratio ≤ ${t.value}`;
    case 'meshAtLeast':
      return `≥ ${fmt(t.value, unit)}`;
    case 'meshAtMost':
      return `≤ ${fmt(t.value, unit)}`;
  }
}

function metText(r: Row): string {
  if (r.met === null) return r.target ? 'n/a' : '—';
  return r.met ? 'yes' : 'NO';
}

/** The table's cells: figure, baseline, mesh, ratio, target, met. */
export function tableCells(rows: readonly Row[]): string[][] {
  return rows.map((r) => [
    r.figure,
    r.baseline === null ? 'n/a' : `${fmt(r.baseline, r.unit)} (${r.baselineLabel})`,
    r.mesh === null ? `n/a${r.note ? `: ${r.note}` : ''}` : fmt(r.mesh, r.unit),
    r.ratio === null ? '—' : r.ratio.toFixed(2),
    targetText(r.target, r.unit),
    metText(r),
  ]);
}

const HEADER = ['figure', 'baseline', 'mesh', 'ratio', 'target', 'met?'];

/** A plain-text table for the terminal. */
export function textTable(rows: readonly Row[]): string {
  const cells = [HEADER, ...tableCells(rows)];
  const widths = HEADER.map((_, i) => Math.max(...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => x.padEnd(widths[i]!)).join(' | ');
  return [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('-+-'), ...cells.slice(1).map(line)].join(
    '\n',
  );
}

/** A Markdown table (for docs/performance.md). */
export function markdownTable(rows: readonly Row[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    `| ${HEADER.join(' | ')} |`,
    `|${HEADER.map(() => '---').join('|')}|`,
    ...tableCells(rows).map((c) => `| ${c.map(esc).join(' | ')} |`),
  ].join('\n');
}
