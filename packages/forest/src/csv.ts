import { parse } from "csv-parse/sync";
import { CsvError, OptionsError } from "./errors.ts";
import type { Dataset, Target, Task } from "./types.ts";

export interface ParseCsvOptions {
  /** Name of the label column; default the last column. */
  label?: string;
  /** Force the task; default auto-detect from the label values. */
  task?: Task;
}

/** Cells (trimmed, lower-cased) that mean "missing". */
const MISSING = new Set(["", "na", "nan", "n/a", "null"]);
/** Plain decimal notation only: no hex/binary/octal, no Infinity, no thousands separators. */
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
/** Auto-detect: integer labels with at most this many distinct values are classes. */
const MAX_AUTO_CLASSES = 50;
const MAX_CLASSES = 65535;
const MAX_LISTED_COLUMNS = 20;

/** Marks a cell that is neither a number nor a missing-value spelling. */
const INVALID = Symbol("invalid");

/** Strict cell → number: NaN for a missing cell, INVALID for anything that is not plain decimal notation. */
function parseCell(cell: string): number | typeof INVALID {
  // Fast path for the common case (an unpadded decimal number); Number() alone is too lenient
  // ("" → 0, "0x10" → 16), hence the first-character and prefix checks.
  const c0 = cell.charCodeAt(0);
  if ((c0 >= 48 && c0 <= 57) || c0 === 45) {
    const v = Number(cell);
    if (v - v === 0) {
      const c1 = c0 === 48 ? cell.charCodeAt(1) | 32 : 0; // lower-cased second char
      if (c1 !== 120 && c1 !== 98 && c1 !== 111) return v; // not 0x / 0b / 0o
    }
  }
  const t = cell.trim();
  if (MISSING.has(t.toLowerCase())) return NaN;
  if (!DECIMAL.test(t)) return INVALID;
  const v = Number(t);
  return Number.isFinite(v) ? v : INVALID;
}

function listColumns(names: string[]): string {
  if (names.length <= MAX_LISTED_COLUMNS) return names.join(", ");
  return `${names.slice(0, MAX_LISTED_COLUMNS).join(", ")}, … (${names.length} columns)`;
}

function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function asBuffer(input: Uint8Array | string): Buffer {
  if (typeof input === "string") return Buffer.from(input, "utf8");
  // Zero-copy view: csv-parse needs Buffer methods, not just a Uint8Array.
  return Buffer.from(input.buffer, input.byteOffset, input.byteLength);
}

/**
 * Parses a CSV with a header row into a numeric Dataset. Feature cells must be plain decimal numbers or a
 * missing-value spelling (empty, NA, NaN, N/A, null; case-insensitive) which becomes NaN. Row numbers in
 * errors are 1-based with the header as row 1 (blank lines are skipped and not counted).
 */
export function parseCsv(input: Uint8Array | string, options: ParseCsvOptions = {}): Dataset {
  const { label, task } = options;
  if (task !== undefined && task !== "classification" && task !== "regression") {
    throw new OptionsError(`task must be "classification" or "regression", got ${JSON.stringify(task)}`);
  }
  const buf = asBuffer(input);
  const totalBytes = buf.byteLength;

  let header: string[] | undefined;
  let nCols = 0;
  let labelIndex = -1;
  let labelName = "";
  let featureNames: string[] = [];
  // Feature f lives in column position featurePos[f] of each record.
  let featurePos: number[] = [];
  let columns: Float64Array[] = [];
  let capacity = 0;
  let nRows = 0;
  let headerBytes = 0;
  // Labels are interned: distinct trimmed texts, their first row (for messages), and a provisional code per row.
  const labelIds = new Map<string, number>();
  const labelTexts: string[] = [];
  const labelFirstRow: number[] = [];
  let rowLabel = new Uint32Array(0);

  const grow = (min: number) => {
    const next = Math.max(min, Math.ceil(capacity * 1.5), 64);
    for (let f = 0; f < columns.length; f++) {
      const col = new Float64Array(next);
      col.set(columns[f]!.subarray(0, nRows));
      columns[f] = col;
    }
    const labels = new Uint32Array(next);
    labels.set(rowLabel.subarray(0, nRows));
    rowLabel = labels;
    capacity = next;
  };

  const onHeader = (record: string[], bytes: number) => {
    const names = record.map((name) => name.trim());
    const seen = new Map<string, number>();
    names.forEach((name, i) => {
      if (name === "") throw new CsvError(`header row: column ${i + 1} has an empty name`, 1);
      const prev = seen.get(name);
      if (prev !== undefined) {
        throw new CsvError(`header row: duplicate column name "${name}" (columns ${prev + 1} and ${i + 1})`, 1, name);
      }
      seen.set(name, i);
    });
    if (label === undefined) {
      labelIndex = names.length - 1;
    } else {
      labelIndex = names.indexOf(label.trim());
      if (labelIndex < 0) {
        throw new CsvError(`label column "${label}" not found; columns are: ${listColumns(names)}`, 1, label);
      }
    }
    labelName = names[labelIndex]!;
    if (names.length < 2) {
      throw new CsvError(`CSV has no feature columns: the only column is the label "${labelName}"`, 1, labelName);
    }
    header = names;
    nCols = names.length;
    featurePos = names.map((_, i) => i).filter((i) => i !== labelIndex);
    featureNames = featurePos.map((i) => names[i]!);
    columns = featureNames.map(() => new Float64Array(0));
    headerBytes = bytes;
    grow(64);
  };

  const onRecord = (record: string[], info: { bytes: number }): null => {
    if (header === undefined) {
      // Whitespace-only lines before the header are blank lines too.
      if (record.every((cell) => cell.trim() === "")) return null;
      onHeader(record, info.bytes);
      return null;
    }
    const row = nRows + 2;
    if (record.length !== nCols) {
      throw new CsvError(`row ${row} has ${record.length} fields, expected ${nCols}`, row);
    }
    if (nRows === capacity) {
      // Size from the average row length so far, so wide files rarely need to copy their columns again.
      const perRow = (info.bytes - headerBytes) / nRows;
      const estimate = Math.ceil((nRows + (totalBytes - info.bytes) / perRow) * 1.02) + 16;
      grow(nRows >= 64 ? estimate : nRows * 2);
    }
    for (let f = 0; f < featurePos.length; f++) {
      const cell = record[featurePos[f]!]!;
      const v = parseCell(cell);
      if (v === INVALID) {
        const name = featureNames[f]!;
        throw new CsvError(`row ${row}, column "${name}": ${JSON.stringify(cell)} is not a number`, row, name);
      }
      columns[f]![nRows] = v;
    }
    const text = record[labelIndex]!.trim();
    let id = labelIds.get(text);
    if (id === undefined) {
      if (MISSING.has(text.toLowerCase())) {
        throw new CsvError(`row ${row}, column "${labelName}": the label is missing`, row, labelName);
      }
      id = labelTexts.length;
      labelIds.set(text, id);
      labelTexts.push(text);
      labelFirstRow.push(row);
    }
    rowLabel[nRows] = id;
    nRows++;
    return null;
  };

  try {
    parse(buf, {
      bom: true,
      skip_empty_lines: true,
      relax_column_count: true, // we report ragged rows ourselves, with the row number
      on_record: onRecord,
    });
  } catch (err) {
    if (err instanceof CsvError || err instanceof OptionsError) throw err;
    // csv-parse's own errors (unclosed or stray quotes, ...): keep its one-line message.
    const e = err as { message?: string; records?: number };
    const row = header === undefined ? 1 : nRows + 2;
    throw new CsvError(`row ${row}: malformed CSV: ${String(e.message ?? err).split("\n")[0]}`, row);
  }

  if (header === undefined) throw new CsvError("CSV is empty: expected a header row and data rows");
  if (nRows === 0) throw new CsvError(`CSV has a header row but no data rows (columns: ${listColumns(header)})`);

  for (let f = 0; f < columns.length; f++) {
    if (columns[f]!.length !== nRows) columns[f] = columns[f]!.slice(0, nRows);
  }
  const target = buildTarget(labelTexts, labelFirstRow, rowLabel.subarray(0, nRows), labelName, nRows, task);
  return { featureNames, labelName, nRows, columns, target };
}

function buildTarget(
  texts: string[],
  firstRow: number[],
  rowLabel: Uint32Array,
  labelName: string,
  nRows: number,
  task: Task | undefined,
): Target {
  const values = texts.map((t) => parseCell(t));
  const allNumeric = values.every((v) => v !== INVALID);
  if (task === undefined) {
    const integral = allNumeric && values.every((v) => Number.isInteger(v));
    task =
      !allNumeric || (integral && texts.length <= MAX_AUTO_CLASSES && texts.length <= nRows / 2)
        ? "classification"
        : "regression";
  }

  if (task === "regression") {
    let bad = -1;
    values.forEach((v, i) => {
      if (v === INVALID && (bad < 0 || firstRow[i]! < firstRow[bad]!)) bad = i;
    });
    if (bad >= 0) {
      const row = firstRow[bad]!;
      throw new CsvError(
        `row ${row}, column "${labelName}": ${JSON.stringify(texts[bad])} is not a number (regression needs numeric labels)`,
        row,
        labelName,
      );
    }
    const out = new Float64Array(nRows);
    for (let r = 0; r < nRows; r++) out[r] = values[rowLabel[r]!] as number;
    return { task: "regression", values: out };
  }

  if (texts.length > MAX_CLASSES) {
    throw new CsvError(
      `label column "${labelName}" has ${texts.length} distinct classes; at most ${MAX_CLASSES} are supported`,
      undefined,
      labelName,
    );
  }
  const order = texts.map((_, i) => i);
  if (allNumeric) {
    // Numeric order so "2" < "10"; texts with equal values ("1" vs "1.0") fall back to text order.
    order.sort((a, b) => (values[a] as number) - (values[b] as number) || compareCodeUnits(texts[a]!, texts[b]!));
  } else {
    order.sort((a, b) => compareCodeUnits(texts[a]!, texts[b]!));
  }
  const rank = new Uint32Array(texts.length);
  order.forEach((id, k) => (rank[id] = k));
  const codes = new Uint16Array(nRows);
  for (let r = 0; r < nRows; r++) codes[r] = rank[rowLabel[r]!]!;
  return { task: "classification", classes: order.map((id) => texts[id]!), codes };
}
