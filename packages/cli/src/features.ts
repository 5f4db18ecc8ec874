import { parse } from "csv-parse/sync";
import { CsvError } from "@canopy/forest";

/** Missing-value spellings and number syntax exactly as the engine's CSV reader accepts them. */
const MISSING = new Set(["", "na", "nan", "n/a", "null"]);
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** Rows to predict, row-major in the model's feature order. */
export interface FeatureMatrix {
  data: Float64Array;
  nRows: number;
  nCols: number;
}

function cellValue(cell: string): number | undefined {
  const t = cell.trim();
  if (MISSING.has(t.toLowerCase())) return NaN;
  if (!DECIMAL.test(t)) return undefined;
  const v = Number(t);
  return Number.isFinite(v) ? v : undefined;
}

/**
 * Reads a CSV for prediction: columns are matched to the model's features BY NAME, so their order does not
 * matter and extra columns (the label, ids) are ignored. A feature the CSV lacks is an error naming it.
 * Rows are 1-based with the header as row 1, as in the engine's messages.
 */
export function readFeatureCsv(input: Uint8Array | string, featureNames: readonly string[]): FeatureMatrix {
  let records: string[][];
  try {
    records = parse(typeof input === "string" ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength), {
      bom: true,
      skip_empty_lines: true,
      relax_column_count: true,
    }) as string[][];
  } catch (err) {
    throw new CsvError(`malformed CSV: ${String((err as Error).message).split("\n")[0]}`);
  }
  while (records.length > 0 && records[0].every((c) => c.trim() === "")) records.shift();
  if (records.length === 0) throw new CsvError("CSV is empty: expected a header row");
  const header = records[0].map((name) => name.trim());
  const position = new Map<string, number>();
  header.forEach((name, i) => {
    if (position.has(name) && name !== "") throw new CsvError(`header row: duplicate column name "${name}"`, 1, name);
    position.set(name, i);
  });
  const missing = featureNames.filter((name) => !position.has(name));
  if (missing.length > 0) {
    const list = missing.length <= 5 ? missing.join(", ") : `${missing.slice(0, 5).join(", ")}, … (${missing.length} in all)`;
    throw new CsvError(`the CSV lacks feature column${missing.length > 1 ? "s" : ""} the model needs: ${list}`, 1, missing[0]);
  }
  const cols = featureNames.map((name) => position.get(name)!);
  const nRows = records.length - 1;
  const nCols = featureNames.length;
  const data = new Float64Array(nRows * nCols);
  for (let r = 0; r < nRows; r++) {
    const record = records[r + 1];
    const row = r + 2;
    if (record.length !== header.length) throw new CsvError(`row ${row} has ${record.length} fields, expected ${header.length}`, row);
    for (let f = 0; f < nCols; f++) {
      const cell = record[cols[f]];
      const v = cellValue(cell);
      if (v === undefined) throw new CsvError(`row ${row}, column "${featureNames[f]}": ${JSON.stringify(cell)} is not a number`, row, featureNames[f]);
      data[r * nCols + f] = v;
    }
  }
  return { data, nRows, nCols };
}

/** One CSV field: quoted when it holds a comma, quote, or line break (RFC 4180). */
export function csvField(text: string): string {
  return /[",\r\n]/.test(text) || text !== text.trim() ? `"${text.replace(/"/g, '""')}"` : text;
}
