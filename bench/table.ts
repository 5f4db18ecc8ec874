// Plain-text and Markdown rendering of result tables.

export interface Table {
  title: string;
  headers: string[];
  rows: string[][];
  /** Footnotes printed under the table. */
  notes?: string[];
}

const numeric = /^[-+<>≤≥~]?\s*[\d.,]+(e[-+]?\d+)?\s*(s|x|×|%|\/s|B|KB|MB|GB)?$/i;

/** Columns padded to their widest cell; numbers right-aligned, text left-aligned. */
export function formatTable(t: Table): string {
  const cols = t.headers.length;
  for (const r of t.rows) if (r.length !== cols) throw new Error(`table "${t.title}": row has ${r.length} cells, expected ${cols}`);
  const width = t.headers.map((h, c) => Math.max(h.length, ...t.rows.map((r) => r[c].length)));
  const right = t.headers.map((_, c) => t.rows.length > 0 && t.rows.every((r) => r[c] === "" || r[c] === "-" || numeric.test(r[c])));
  const line = (cells: string[]) =>
    cells.map((s, c) => (right[c] ? s.padStart(width[c]) : s.padEnd(width[c]))).join("  ").trimEnd();
  const out = [t.title, line(t.headers), width.map((w) => "-".repeat(w)).join("  "), ...t.rows.map(line)];
  for (const n of t.notes ?? []) out.push(`  ${n}`);
  return out.join("\n");
}

export function markdownTable(t: Table): string {
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  const out = [`| ${t.headers.map(esc).join(" | ")} |`, `|${t.headers.map(() => " --- ").join("|")}|`];
  for (const r of t.rows) out.push(`| ${r.map(esc).join(" | ")} |`);
  return out.join("\n");
}

// Number formatting shared by sections.
export function fmtSeconds(s: number | undefined): string {
  if (s === undefined) return "-";
  return s < 10 ? s.toFixed(3) : s < 100 ? s.toFixed(2) : s.toFixed(1);
}
export function fmtInt(n: number | undefined): string {
  return n === undefined ? "-" : Math.round(n).toLocaleString("en-US");
}
export function fmtFixed(n: number | undefined, digits: number): string {
  return n === undefined || !Number.isFinite(n) ? "-" : n.toFixed(digits);
}
export function fmtBytes(n: number | undefined): string {
  if (n === undefined) return "-";
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 ** 2).toFixed(2)} MB`;
}
