import type { StageTimings } from "@canopy/core";
import type { TableSchema } from "@canopy/forest";

/** Metrics as one line: classification (accuracy, macro-F1, log-loss) or regression (R², MSE, MAE). */
export function metricsLine(metrics: Record<string, unknown> | null | undefined): string {
  if (!metrics) return "none (no held-out rows: --test-fraction 0)";
  const n = typeof metrics.n === "number" ? `  on ${metrics.n} held-out rows` : "";
  const num = (key: string, digits = 4) => (typeof metrics[key] === "number" ? (metrics[key] as number).toFixed(digits) : "?");
  if (metrics.task === "regression") return `R² ${num("r2")}  MSE ${num("mse")}  MAE ${num("mae")}${n}`;
  return `accuracy ${num("accuracy")}  macro-F1 ${num("macro_f1")}  log-loss ${num("log_loss")}${n}`;
}

export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "?";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - m * 60)).padStart(2, "0")}s`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** Stage timings as one line, in pipeline order. */
export function timingsLine(t: StageTimings): string {
  const parts = [
    t.prepareMs !== undefined ? `prepare ${duration(t.prepareMs)}` : undefined,
    `train ${duration(t.trainWallMs)} (${t.parallelism.toFixed(2)}× parallel, ${t.treesPerSecond.toFixed(1)} trees/s)`,
    `merge ${duration(t.loadGrovesMs + t.mergeMs)}`,
    `evaluate ${duration(t.evaluateMs)}`,
    `total ${duration(t.totalMs)}`,
  ];
  return parts.filter((p) => p !== undefined).join(", ");
}

/** Forest parameters as `name=value` pairs (null shown as none). */
export function paramsLine(params: object): string {
  return Object.entries(params)
    .map(([k, v]) => `${k}=${v === null ? "none" : String(v)}`)
    .join(" ");
}

/** Left-aligned two-column rows. */
export function table(rows: [string, string][], indent = ""): string {
  const width = Math.max(0, ...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${indent}${k.padEnd(width)}  ${v}`).join("\n");
}

/** Rows of cells (the first a header) in columns padded to their widest cell. */
export function columns(cells: string[][], indent = ""): string {
  const width = cells[0]!.map((_, c) => Math.max(...cells.map((row) => row[c]!.length)));
  return cells.map((row) => indent + row.map((cell, c) => cell.padEnd(width[c]!)).join("  ").trimEnd()).join("\n");
}

/** A column as the schema reads it: `name (kind …)`, names escaped with `printable`. */
function columnLine(c: TableSchema["columns"][number], printable: (s: string) => string): string {
  const name = printable(c.name);
  if (c.kind === "categorical") return `${name} (categorical, ${c.categories!.length}${c.other ? " + other" : ""})`;
  if (c.kind === "datetime") return `${name} (datetime: days, ${(c.parts ?? []).join(", ")})`;
  return `${name} (${c.kind})`;
}

/** The schema as summary rows: the columns used and how, the columns left out and why, and the notes. */
export function schemaRows(schema: TableSchema, printable: (s: string) => string): [string, string][] {
  const rows: [string, string][] = [["columns", `${schema.columns.length} used: ${schema.columns.map((c) => columnLine(c, printable)).join(", ")}`]];
  if (schema.excluded.length > 0) rows.push(["excluded", schema.excluded.map((e) => `${printable(e.name)} (${e.reason})`).join(", ")]);
  for (const note of schema.notes ?? []) rows.push(["note", printable(note)]);
  return rows;
}
