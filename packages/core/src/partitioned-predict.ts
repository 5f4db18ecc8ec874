import { Forest, numericSchema, printable, quoted, RowEncoder, type CellValue, type Matrix } from "@canopy/forest";
import { sha256Hex } from "./digest.ts";
import { inShort, InputError, InternalError } from "./errors.ts";
import { partitionKey, type PartitionedModel, type PartitionModelRef } from "./partitioned-model.ts";

/**
 * Predicting with a partitioned model, the one routing rule `canopy predict`, `canopy serve` and the predict
 * function share: each row goes to the model of `partitionKey(row[partitionBy])`, a value without one to the
 * fallback if there is one, else it is unknown. Rows are grouped by partition and each group predicted in one
 * batch with its forest (loaded through a callback, so only the partitions a request names are read), then put
 * back in row order. Each partition's model reads its cells through its own schema (categories are a partition's own).
 */

/** Rows by column name, before a model's schema reads them: a table's header and cells, or JSON records. */
export interface NamedRows {
  columns: readonly string[];
  /** Cells per row, aligned with `columns`. */
  rows: readonly (readonly CellValue[])[];
  /** Records may lack a field: then `undefined` marks a cell not given (null is a missing value). A table row never does. */
  mayLack?: boolean;
  /**
   * Names row `r` (and a column of it) in messages: `row 7` / `row 7, column "x"` (a table, header = row 1), or
   * `records[6]` / `records[6].x`.
   */
  where(r: number, column?: string): string;
}

/** Where a row goes: a partition's key, or the fallback. */
export type PartitionRoute = { key: string; ref: PartitionModelRef & { value: string } } | { key: undefined; ref: PartitionModelRef };

/** A row no model serves: its partition value (undefined: empty or missing) and where it is. */
export interface UnknownRow {
  row: number;
  value: string | undefined;
}

/** Unknown partition values and no fallback: the request names what it has no model for (an input error: 400, exit 2). */
export class UnknownPartitionError extends InputError {
  constructor(
    message: string,
    readonly unknown: UnknownRow[],
  ) {
    super(message);
  }
}

export interface PartitionedPrediction {
  /** Labels (classification) or values (regression), in row order; null for a row left out (unknown, skipped). */
  predictions: (string | number | null)[];
  /** With proba: every class any served partition knows (sorted as the engine sorts classes) and each row's probabilities over them. */
  classes?: string[];
  probabilities?: (number[] | null)[];
  /** Rows left out because no model serves their value (with skipUnknown), in row order. */
  unknown: UnknownRow[];
  /** Which model served how many rows: by partition value (null: the fallback). */
  served: { value: string | null; build: string; rows: number }[];
  /** The label's name in the first model that served a row (what a prediction column is named); none when none did. */
  label?: string;
}

export interface PartitionedPredictOptions {
  proba?: boolean;
  /** Leave rows of unknown values out (null prediction, listed in `unknown`) instead of refusing the whole input. */
  skipUnknown?: boolean;
}

/** Loads a partition's forest (the fallback's when `key` is undefined); checked with `checkPartitionModel`. */
export type PartitionLoader = (ref: PartitionModelRef, key: string | undefined) => Promise<Forest>;

const SHOWN_UNKNOWN = 3;

/** How an unknown value is shown: quoted in short, or "an empty value". */
function shownValue(value: string | undefined): string {
  return value === undefined ? "an empty value" : inShort(value, 40);
}

/** What rows no model serves: the first few values with the first row of each, and the count of rows. */
export function unknownPartitionMessage(partitionBy: string, unknown: UnknownRow[], where: (r: number) => string): string {
  const first = new Map<string | undefined, number>();
  for (const u of unknown) if (!first.has(u.value)) first.set(u.value, u.row);
  const shown = [...first].slice(0, SHOWN_UNKNOWN).map(([value, row]) => `${shownValue(value)} (${where(row)})`);
  const more = first.size > SHOWN_UNKNOWN ? ` and ${first.size - SHOWN_UNKNOWN} other value${first.size - SHOWN_UNKNOWN > 1 ? "s" : ""}` : "";
  const rows = `${unknown.length} row${unknown.length > 1 ? "s" : ""}`;
  return `no model for ${quoted(partitionBy)} ${shown.join(", ")}${more}: ${rows} in all`;
}

/**
 * The model file of a partition, checked against the manifest's size and SHA-256 before it is decoded: a file that
 * is not the one the run wrote is refused by name (an internal fault: the store, not the request, is wrong).
 */
export function checkPartitionModel(bytes: Uint8Array, ref: PartitionModelRef, source: string): Uint8Array {
  if (bytes.byteLength !== ref.bytes || sha256Hex(bytes) !== ref.sha256)
    throw new InternalError(`${source} is not the model the partitioned model names (${ref.bytes} bytes, sha256 ${ref.sha256.slice(0, 12)}…): it was changed or replaced`);
  return bytes;
}

/** The columns a partitioned model's input needs: its features and the column rows are routed by, last. */
export function partitionedInputColumns(model: Pick<PartitionedModel, "features" | "partitionBy">): string[] {
  return [...model.features, model.partitionBy];
}

/** Classes in the engine's order: numerically when all are numbers, else by code unit (the union of a request's partitions). */
export function classOrder(classes: Iterable<string>): string[] {
  const list = [...new Set(classes)];
  if (list.every((c) => c.trim() !== "" && Number.isFinite(Number(c)))) return list.sort((a, b) => Number(a) - Number(b));
  return list.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export class PartitionedPredictor {
  constructor(
    readonly model: PartitionedModel,
    private readonly load: PartitionLoader,
  ) {}

  /** Where a row with this partition cell goes; undefined when no model serves it. */
  routeOf(value: unknown): PartitionRoute | undefined {
    const key = partitionKey(value);
    const ref = key === undefined ? undefined : this.model.partitions[key];
    if (key !== undefined && ref !== undefined && Object.hasOwn(this.model.partitions, key)) return { key, ref };
    return this.model.fallback ? { key: undefined, ref: this.model.fallback } : undefined;
  }

  /**
   * Predicts every row. Unknown values are refused before anything is loaded (UnknownPartitionError naming the
   * first few and the count), unless `skipUnknown`. Partitions are predicted one after another, so a request's
   * forests need not all be in memory at once.
   */
  async predict(input: NamedRows, options: PartitionedPredictOptions = {}): Promise<PartitionedPrediction> {
    const { partitionBy } = this.model;
    const at = input.columns.indexOf(partitionBy);
    if (at < 0) throw new InputError(`the input has no column ${quoted(partitionBy)}, which the partitioned model routes rows by`);
    const n = input.rows.length;
    const groups = new Map<string | undefined, { route: PartitionRoute; rows: number[] }>();
    const unknown: UnknownRow[] = [];
    for (let r = 0; r < n; r++) {
      const cell = input.rows[r]![at];
      const route = this.routeOf(cell);
      if (!route) {
        unknown.push({ row: r, value: partitionKey(cell) });
        continue;
      }
      const group = groups.get(route.key);
      if (group) group.rows.push(r);
      else groups.set(route.key, { route, rows: [r] });
    }
    if (unknown.length > 0 && !options.skipUnknown)
      throw new UnknownPartitionError(`${unknownPartitionMessage(partitionBy, unknown, (r) => input.where(r))}, and the partitioned model has no fallback`, unknown);
    if (options.proba && this.model.task !== "classification") throw new InputError("proba needs a classification model; this partitioned model is regression");

    const predictions: (string | number | null)[] = new Array(n).fill(null);
    const proba: { classes: string[]; p: Float64Array; rows: number[] }[] = [];
    const served: PartitionedPrediction["served"] = [];
    let label: string | undefined;
    for (const { route, rows } of groups.values()) {
      const forest = await this.load(route.ref, route.key);
      label ??= forest.labelName;
      const X = encodeRows(forest, input, rows, partitionBy);
      if (options.proba) {
        const p = forest.predictProba(X);
        const k = forest.classes.length;
        rows.forEach((r, i) => {
          let best = 0;
          for (let c = 1; c < k; c++) if (p[i * k + c]! > p[i * k + best]!) best = c; // the engine's argmax: ties go to the first class
          predictions[r] = forest.classes[best]!;
        });
        proba.push({ classes: forest.classes, p, rows });
      } else {
        const out = forest.predict(X);
        rows.forEach((r, i) => (predictions[r] = out[i]!));
      }
      served.push({ value: route.key === undefined ? null : route.ref.value, build: route.ref.build, rows: rows.length });
    }
    const result: PartitionedPrediction = { predictions, unknown, served, ...(label !== undefined ? { label } : {}) };
    if (options.proba) {
      const classes = classOrder(proba.flatMap((g) => g.classes));
      const position = new Map(classes.map((c, i) => [c, i]));
      const probabilities: (number[] | null)[] = new Array(n).fill(null);
      for (const g of proba) {
        const k = g.classes.length;
        const slots = g.classes.map((c) => position.get(c)!);
        g.rows.forEach((r, i) => {
          const row = new Array<number>(classes.length).fill(0);
          for (let c = 0; c < k; c++) row[slots[c]!] = g.p[i * k + c]!;
          probabilities[r] = row;
        });
      }
      result.classes = classes;
      result.probabilities = probabilities;
    }
    return result;
  }
}

/**
 * The rows `rows` of `input` as `forest` reads them: its input columns by name, each cell through its schema (a
 * forest of numeric columns only reads numbers). Other columns (the partition column, the label, ids) are ignored.
 */
export function encodeRows(forest: Forest, input: NamedRows, rows: readonly number[], partitionBy: string): Matrix {
  const schema = forest.schema ?? numericSchema(forest.featureNames, forest.labelName);
  const encoder = new RowEncoder(schema);
  const names = encoder.columnNames;
  const position = new Map<string, number>();
  input.columns.forEach((name, i) => {
    if (!position.has(name)) position.set(name, i);
  });
  const missing = names.filter((name) => !position.has(name));
  if (missing.length > 0) {
    const list = missing.slice(0, 5).map((m) => printable(m)).join(", ") + (missing.length > 5 ? `, … (${missing.length} in all)` : "");
    throw new InputError(`the input lacks column${missing.length > 1 ? "s" : ""} ${list}, which the model for ${quoted(partitionBy)} needs`);
  }
  const cols = names.map((name) => position.get(name)!);
  const nCols = encoder.nFeatures;
  const data = new Float64Array(rows.length * nCols);
  rows.forEach((r, i) => {
    const cells = input.rows[r]!;
    for (let c = 0; c < cols.length; c++) {
      const value = cells[cols[c]!];
      if (input.mayLack && value === undefined) throw new InputError(`${input.where(r)} lacks column ${quoted(names[c]!)} (use null for a missing value)`);
      encoder.encode(c, value, data, i * nCols, { path: input.where(r, names[c]) });
    }
  });
  return { data, nRows: rows.length, nCols };
}

/**
 * A table's rows (a header and its records, e.g. CSV) by name; rows are numbered from `firstRow` (2: after the
 * header), or by the reader's own row numbers when given a list.
 */
export function tableRows(header: readonly string[], rows: readonly (readonly CellValue[])[], firstRow: number | readonly number[] = 2): NamedRows {
  const number = (r: number) => (typeof firstRow === "number" ? r + firstRow : firstRow[r]!);
  return {
    columns: header.map((h) => h.trim()),
    rows,
    where: (r, column) => `row ${number(r)}${column === undefined ? "" : `, column ${quoted(column)}`}`,
  };
}

/**
 * JSON records (objects of column -> scalar) by name: the columns are every field any record has, in the order
 * they are first seen; a record without a field leaves that cell undefined (`mayLack`). `name` is the array's
 * name in messages (`records[3].x`). A record that is not an object, or a value that is an object or array, is refused.
 */
export function recordRows(records: readonly unknown[], name = "records"): NamedRows {
  const position = new Map<string, number>();
  const rows: CellValue[][] = records.map((rec, r) => {
    if (rec === null || typeof rec !== "object" || Array.isArray(rec)) throw new InputError(`${name}[${r}] is not an object of column names to values`);
    const cells: CellValue[] = [];
    for (const [key, value] of Object.entries(rec as Record<string, unknown>)) {
      if (value !== null && typeof value === "object") throw new InputError(`${name}[${r}].${printable(key)}: ${Array.isArray(value) ? "an array" : "an object"} is not a value`);
      let c = position.get(key);
      if (c === undefined) position.set(key, (c = position.size));
      cells[c] = value as CellValue;
    }
    return cells;
  });
  return { columns: [...position.keys()], rows, mayLack: true, where: (r, column) => `${name}[${r}]${column === undefined ? "" : `.${printable(column)}`}` };
}
