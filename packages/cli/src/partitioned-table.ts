import type { CellValue } from "@canopy/forest";
import { UsageError } from "./errors.ts";
import { csvField } from "./features.ts";

/** A table as a partitioned model's predict reads it (local or --remote): its header, its cells as read, their row numbers. */
export interface NamedTable {
  header: string[];
  rows: CellValue[][];
  numbers: number[];
}

export async function readNamedTable(data: string): Promise<NamedTable> {
  const ingest = await import("@canopy/core/ingest");
  let header: string[] | undefined;
  const rows: CellValue[][] = [];
  const numbers: number[] = [];
  await (await ingest.openTable(ingest.fileSource(data))).read({
    header: (names) => void (header = names),
    row: (values, row) => {
      rows.push(values);
      numbers.push(row);
    },
  });
  if (header === undefined) throw new UsageError(`${data} is empty: expected a header row`);
  return { header, rows, numbers };
}

/**
 * A partitioned model's predictions as the CSV lines `predict` prints: one column named after the label (empty for a
 * row no model serves), or one probability column per class (empty cells for such a row).
 */
export function partitionedPredictionLines(
  proba: boolean,
  r: { predictions: (string | number | null)[]; label?: string | null; classes?: string[]; probabilities?: (number[] | null)[] },
): string[] {
  const lines: string[] = [];
  if (proba) {
    const classes = r.classes ?? [];
    lines.push(classes.map(csvField).join(","));
    for (const p of r.probabilities ?? []) lines.push(p === null ? ",".repeat(Math.max(0, classes.length - 1)) : p.map(String).join(","));
  } else {
    lines.push(csvField(r.label ?? "prediction"));
    for (const p of r.predictions) lines.push(p === null ? "" : typeof p === "number" ? String(p) : csvField(p));
  }
  return lines;
}
