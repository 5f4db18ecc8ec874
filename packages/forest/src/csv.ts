import { canonicalNumber, INVALID, isMissingCell, parseCell, printable, quoted } from "./cells.ts";
import { readCsvRecords } from "./csv-text.ts";
import { CsvError, OptionsError } from "./errors.ts";
import type { Dataset, Target, Task } from "./types.ts";

export interface ParseCsvOptions {
  /** Name of the label column; default the last column. */
  label?: string;
  /** Force the task; default auto-detect from the label values. */
  task?: Task;
}

/** Auto-detect: integer labels with at most this many distinct values are classes. */
const MAX_AUTO_CLASSES = 50;
const MAX_CLASSES = 65535;
const MAX_LISTED_COLUMNS = 20;

function listColumns(names: string[]): string {
  const shown = names.slice(0, MAX_LISTED_COLUMNS).map((n) => printable(n));
  return names.length <= MAX_LISTED_COLUMNS ? shown.join(", ") : `${shown.join(", ")}, … (${names.length} columns)`;
}

function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Parses a CSV with a header row into a numeric Dataset. Feature cells must be plain decimal numbers or a
 * missing-value spelling (empty, NA, NaN, N/A, null, ?; case-insensitive) which becomes NaN. Row numbers in
 * errors are 1-based with the header as row 1 (blank lines are skipped and not counted).
 */
export function parseCsv(input: Uint8Array | string, options: ParseCsvOptions = {}): Dataset {
  const { label, task } = options;
  if (task !== undefined && task !== "classification" && task !== "regression") {
    throw new OptionsError(`task must be "classification" or "regression", got ${JSON.stringify(task)}`);
  }
  const totalBytes = typeof input === "string" ? Buffer.byteLength(input, "utf8") : input.byteLength;

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
  let labels = new LabelColumn("");

  const grow = (min: number) => {
    const next = Math.max(min, Math.ceil(capacity * 1.5), 64);
    for (let f = 0; f < columns.length; f++) {
      const col = new Float64Array(next);
      col.set(columns[f]!.subarray(0, nRows));
      columns[f] = col;
    }
    labels.reserve(next);
    capacity = next;
  };

  const onHeader = (record: string[], bytes: number) => {
    const h = readHeader(record, label);
    const names = h.names;
    labelIndex = h.labelIndex;
    labelName = names[labelIndex]!;
    labels = new LabelColumn(labelName);
    header = names;
    nCols = names.length;
    featurePos = names.map((_, i) => i).filter((i) => i !== labelIndex);
    featureNames = featurePos.map((i) => names[i]!);
    columns = featureNames.map(() => new Float64Array(0));
    headerBytes = bytes;
    grow(64);
  };

  const onRecord = (record: string[], row: number, bytes: number): void => {
    if (header === undefined) {
      onHeader(record, bytes);
      return;
    }
    if (record.length !== nCols) {
      throw new CsvError(`row ${row} has ${record.length} fields, expected ${nCols}`, row);
    }
    if (nRows === capacity) {
      // Size from the average row length so far, so wide files rarely need to copy their columns again.
      const perRow = (bytes - headerBytes) / nRows;
      const estimate = Math.ceil((nRows + (totalBytes - bytes) / perRow) * 1.02) + 16;
      grow(nRows >= 64 ? estimate : nRows * 2);
    }
    for (let f = 0; f < featurePos.length; f++) {
      const cell = record[featurePos[f]!]!;
      const v = parseCell(cell);
      if (v === INVALID) {
        const name = featureNames[f]!;
        throw new CsvError(`row ${row}, column ${quoted(name)}: ${quoted(cell)} is not a number`, row, name);
      }
      columns[f]![nRows] = v;
    }
    labels.add(record[labelIndex]!.trim(), nRows, row);
    nRows++;
  };

  readCsvRecords(input, onRecord);

  if (header === undefined) throw new CsvError("CSV is empty: expected a header row and data rows");
  if (nRows === 0) throw new CsvError(`CSV has a header row but no data rows (columns: ${listColumns(header)})`);

  for (let f = 0; f < columns.length; f++) {
    if (columns[f]!.length !== nRows) columns[f] = columns[f]!.slice(0, nRows);
  }
  return { featureNames, labelName, nRows, columns, target: labels.target(nRows, task) };
}

/**
 * The header row: names trimmed, none empty or repeated, the label found (default the last column) and at
 * least one other column. Throws CsvError (row 1) naming the problem.
 */
export function readHeader(record: string[], label: string | undefined): { names: string[]; labelIndex: number } {
  const names = record.map((name) => name.trim());
  const seen = new Map<string, number>();
  names.forEach((name, i) => {
    if (name === "") throw new CsvError(`header row: column ${i + 1} has an empty name`, 1);
    const prev = seen.get(name);
    if (prev !== undefined) {
      throw new CsvError(`header row: duplicate column name ${quoted(name)} (columns ${prev + 1} and ${i + 1})`, 1, name);
    }
    seen.set(name, i);
  });
  let labelIndex = names.length - 1;
  if (label !== undefined) {
    labelIndex = names.indexOf(label.trim());
    if (labelIndex < 0) throw new CsvError(`label column ${quoted(label)} not found; columns are: ${listColumns(names)}`, 1, label);
  }
  if (names.length < 2) {
    throw new CsvError(`CSV has no feature columns: the only column is the label ${quoted(names[labelIndex]!)}`, 1, names[labelIndex]);
  }
  return { names, labelIndex };
}

/** The label column while rows stream in: texts are interned (with their first row, for messages). */
export class LabelColumn {
  private readonly ids = new Map<string, number>();
  private readonly texts: string[] = [];
  private readonly firstRow: number[] = [];
  private rowLabel = new Uint32Array(64);

  constructor(readonly name: string) {}

  /** Room for `capacity` rows. */
  reserve(capacity: number): void {
    if (capacity <= this.rowLabel.length) return;
    const next = new Uint32Array(capacity);
    next.set(this.rowLabel);
    this.rowLabel = next;
  }

  /** Row index `r` (0-based) has the trimmed label `text`; `row` is its number in messages. */
  add(text: string, r: number, row: number): void {
    let id = this.ids.get(text);
    if (id === undefined) {
      if (isMissingCell(text)) throw new CsvError(`row ${row}, column ${quoted(this.name)}: the label is missing`, row, this.name);
      id = this.texts.length;
      this.ids.set(text, id);
      this.texts.push(text);
      this.firstRow.push(row);
    }
    if (r >= this.rowLabel.length) this.reserve(Math.max(64, Math.ceil(this.rowLabel.length * 1.5), r + 1));
    this.rowLabel[r] = id;
  }

  target(nRows: number, task: Task | undefined): Target {
    return buildTarget(this.texts, this.firstRow, this.rowLabel.subarray(0, nRows), this.name, nRows, task);
  }
}

/**
 * The target from the interned label texts. Labels that are all numbers are compared as numbers: "1" and "1.0"
 * are one class, named by its canonical spelling ("1"), and classes sort numerically. Otherwise labels are
 * their trimmed text, sorted by code unit.
 */
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
  // Class names: the canonical number for numeric labels, else the text.
  const names = allNumeric ? values.map((v) => canonicalNumber(v as number)) : texts;
  const distinct = new Set(names).size;
  if (task === undefined) {
    const integral = allNumeric && values.every((v) => Number.isInteger(v));
    task = !allNumeric || (integral && distinct <= MAX_AUTO_CLASSES && distinct <= nRows / 2) ? "classification" : "regression";
  }

  if (task === "regression") {
    let bad = -1;
    values.forEach((v, i) => {
      if (v === INVALID && (bad < 0 || firstRow[i]! < firstRow[bad]!)) bad = i;
    });
    if (bad >= 0) {
      const row = firstRow[bad]!;
      throw new CsvError(
        `row ${row}, column ${quoted(labelName)}: ${quoted(texts[bad]!)} is not a number (regression needs numeric labels)`,
        row,
        labelName,
      );
    }
    const out = new Float64Array(nRows);
    for (let r = 0; r < nRows; r++) out[r] = values[rowLabel[r]!] as number;
    return { task: "regression", values: out };
  }

  if (distinct > MAX_CLASSES) {
    throw new CsvError(
      `label column ${quoted(labelName)} has ${distinct} distinct classes; at most ${MAX_CLASSES} are supported`,
      undefined,
      labelName,
    );
  }
  const classes = [...new Set(names)];
  if (allNumeric) {
    const valueOf = new Map(names.map((n, i) => [n, values[i] as number]));
    classes.sort((a, b) => valueOf.get(a)! - valueOf.get(b)!); // "2" < "10"
  } else classes.sort(compareCodeUnits);
  const code = new Map(classes.map((c, k) => [c, k]));
  const rank = Uint32Array.from(names, (n) => code.get(n)!);
  const codes = new Uint16Array(nRows);
  for (let r = 0; r < nRows; r++) codes[r] = rank[rowLabel[r]!]!;
  return { task: "classification", classes, codes };
}
