import { canonicalNumber, INVALID, isMissingCell, parseCell, quoted } from "./cells.ts";
import { CsvError } from "./errors.ts";

/**
 * The table schema: how each input column becomes features. Inferred from the data at training time, stored
 * with the pack and the model, and applied unchanged to the rows a model predicts.
 *
 * - numeric: one feature, the number.
 * - boolean: one feature, 1 for true/yes/t/y, 0 for false/no/f/n (any case).
 * - categorical: one feature whose value is the category's code (its index in `categories`); a category not
 *   seen in training is the `other` code when the column has one (rare categories were grouped), else missing.
 * - datetime: `<name>` (days since 1970-01-01, with the time of day as a fraction), `<name>.year`,
 *   `<name>.month` (1-12), `<name>.day_of_week` (0 = Monday, as pandas), and `<name>.hour` when the training
 *   data had times of day. Times without a zone are taken as UTC.
 */
export type ColumnKind = "numeric" | "categorical" | "boolean" | "datetime";
export type DatePart = "year" | "month" | "day_of_week" | "hour";

export interface SchemaColumn {
  name: string;
  kind: ColumnKind;
  /** categorical: category names by code. */
  categories?: string[];
  /** categorical: code `categories.length` stands for every category not listed (grouped rare ones, or unseen). */
  other?: boolean;
  /** datetime: the calendar parts kept as features, after the epoch-days feature. */
  parts?: DatePart[];
}

export interface ExcludedColumn {
  name: string;
  /** "weight": the column of sample weights (--weight-column), read as weights instead of a feature. */
  reason: "identifier" | "constant" | "empty" | "dropped" | "weight";
}

export interface TableSchema {
  v: 1;
  label: string;
  /** Feature columns in file order. */
  columns: SchemaColumn[];
  /** Columns read but not used, with why. */
  excluded: ExcludedColumn[];
  /** What a user should know of how the columns were read (identifiers, constants, widened or grouped columns). */
  notes?: string[];
}

/** What a pack and the learner know of a feature. Categorical bins are category codes. */
export type FeatureKind = "numeric" | "categorical";

export interface FeatureInfo {
  name: string;
  kind: FeatureKind;
  /** Index into schema.columns. */
  column: number;
  /** categorical: names by code (the `other` code, if any, is named "(other)"). */
  categories?: string[];
}

export const OTHER_CATEGORY = "(other)";

/** The features a schema produces, in order. */
export function schemaFeatures(schema: TableSchema): FeatureInfo[] {
  const out: FeatureInfo[] = [];
  schema.columns.forEach((c, column) => {
    if (c.kind === "categorical") {
      const categories = [...c.categories!, ...(c.other ? [OTHER_CATEGORY] : [])];
      out.push({ name: c.name, kind: "categorical", column, categories });
    } else if (c.kind === "datetime") {
      out.push({ name: c.name, kind: "numeric", column });
      for (const part of c.parts ?? []) out.push({ name: `${c.name}.${part}`, kind: "numeric", column });
    } else out.push({ name: c.name, kind: "numeric", column });
  });
  return out;
}

/** The schema of a model that predates schemas: every feature a numeric column of its own name. */
export function numericSchema(featureNames: readonly string[], label: string): TableSchema {
  return { v: 1, label, columns: featureNames.map((name) => ({ name, kind: "numeric" })), excluded: [] };
}

/** Structural check of a schema read back from a pack or a model; returns a reason, or undefined if valid. */
export function schemaProblem(s: unknown): string | undefined {
  const schema = s as TableSchema;
  if (!schema || typeof schema !== "object" || schema.v !== 1 || typeof schema.label !== "string") return "bad schema header";
  if (!Array.isArray(schema.columns) || !Array.isArray(schema.excluded)) return "bad schema columns";
  for (const c of schema.columns) {
    if (!c || typeof c.name !== "string" || !["numeric", "categorical", "boolean", "datetime"].includes(c.kind)) return "bad schema column";
    if (c.kind === "categorical" && (!Array.isArray(c.categories) || !c.categories.every((x) => typeof x === "string"))) return "bad categories";
    if (c.kind === "datetime" && c.parts !== undefined && (!Array.isArray(c.parts) || !c.parts.every((p) => DATE_PARTS.includes(p)))) return "bad date parts";
  }
  return undefined;
}

export const DATE_PARTS: readonly DatePart[] = ["year", "month", "day_of_week", "hour"];

// ---------------------------------------------------------------------------------------------------------
// Cell values

/** A cell as a reader gives it: CSV text, or a typed value from Parquet or JSON. null is missing. */
export type CellValue = string | number | bigint | boolean | Date | null | undefined;

const TRUE = new Set(["true", "yes", "t", "y"]);
const FALSE = new Set(["false", "no", "f", "n"]);

export function isMissingValue(v: CellValue): boolean {
  if (v === null || v === undefined) return true;
  if (typeof v === "string") return isMissingCell(v);
  if (typeof v === "number") return Number.isNaN(v);
  if (v instanceof Date) return Number.isNaN(v.getTime());
  return false;
}

/** A value as a number, or INVALID. Missing values are NaN. */
export function numberOf(v: CellValue): number | typeof INVALID {
  if (typeof v === "string") return parseCell(v);
  if (typeof v === "number") return Number.isFinite(v) || Number.isNaN(v) ? v : INVALID;
  if (typeof v === "bigint") return Number(v);
  if (v === null || v === undefined) return NaN;
  return INVALID;
}

/** A value as 1/0, NaN if missing, or INVALID. */
export function booleanOf(v: CellValue): number | typeof INVALID {
  if (typeof v === "boolean") return v ? 1 : 0;
  if (isMissingValue(v)) return NaN;
  if (typeof v !== "string") return INVALID;
  const t = v.trim().toLowerCase();
  return TRUE.has(t) ? 1 : FALSE.has(t) ? 0 : INVALID;
}

/** The category name of a value: numbers (and numeric text) by their canonical spelling, so 1 and 1.0 agree. */
export function categoryOf(v: CellValue): string | undefined {
  if (isMissingValue(v)) return undefined;
  if (typeof v === "string") {
    const t = v.trim();
    const n = parseCell(t);
    return n === INVALID ? t : canonicalNumber(n);
  }
  if (typeof v === "number") return canonicalNumber(v);
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "boolean") return v ? "true" : "false";
  return (v as Date).toISOString();
}

// ---------------------------------------------------------------------------------------------------------
// Dates

const MONTH_NAMES = "january february march april may june july august september october november december".split(" ");
/** jan, january (and sept) -> 1-based month. */
const MONTH_NUMBER = new Map<string, number>([
  ...MONTH_NAMES.map((name, i): [string, number] => [name, i + 1]),
  ...MONTH_NAMES.map((name, i): [string, number] => [name.slice(0, 3), i + 1]),
  ["sept", 9],
]);
const TIME = String.raw`(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?`;
const ZONE = String.raw`(Z|[+-]\d{2}(?::?\d{2})?)?`;
/** 2024-01-31, 2024/01/31, with an optional time (T or space) and zone: ISO 8601 and `YYYY-MM-DD HH:MM:SS`. */
const YMD = new RegExp(String.raw`^(\d{4})[-/](\d{1,2})[-/](\d{1,2})${TIME}\s*${ZONE}$`, "i");
/** Jan 31 2024, January 31, 2024, with an optional time. */
const MDY = new RegExp(String.raw`^([A-Za-z]{3,9})\.? (\d{1,2}),? (\d{4})(?: (\d{1,2}):(\d{2})(?::(\d{2}))?)?$`);
/** Formats accepted, for messages. */
export const DATE_FORMATS = "ISO 8601 (2024-01-31, 2024-01-31T13:45:00Z), 2024-01-31 13:45:00, 2024/01/31, Jan 31 2024";

const MS_PER_DAY = 86_400_000;

const MONTH_DAYS = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
/** Days in month 1-12 of `year` as Date.UTC counts them (it reads a year 0-99 as 1900-1999), without a Date per cell. */
function daysInMonth(year: number, month: number): number {
  if (month !== 2) return MONTH_DAYS[month]!;
  const y = year >= 0 && year <= 99 ? year + 1900 : year;
  return y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28;
}

/** Epoch milliseconds of a date/time cell, NaN if missing, INVALID if not a date in a known format. */
export function dateOf(v: CellValue): number | typeof INVALID {
  if (v instanceof Date) return v.getTime();
  if (isMissingValue(v)) return NaN;
  if (typeof v !== "string") return INVALID;
  const t = v.trim();
  const fixed = fixedWidthDate(t);
  if (fixed !== undefined) return fixed;
  let y: number, mo: number, d: number, h = 0, mi = 0, s = 0, frac = 0, offset = 0;
  let m = YMD.exec(t);
  if (m) {
    [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (m[4] !== undefined) [h, mi, s] = [Number(m[4]), Number(m[5]), Number(m[6] ?? 0)];
    if (m[7] !== undefined) frac = Number(`0.${m[7]}`);
    if (m[8] !== undefined && m[8].toUpperCase() !== "Z") {
      const z = m[8].replace(":", "");
      offset = (z[0] === "-" ? -1 : 1) * (Number(z.slice(1, 3)) * 60 + Number(z.slice(3, 5) || 0));
    }
  } else if ((m = MDY.exec(t))) {
    mo = MONTH_NUMBER.get(m[1]!.toLowerCase()) ?? 0;
    [d, y] = [Number(m[2]), Number(m[3])];
    if (m[4] !== undefined) [h, mi, s] = [Number(m[4]), Number(m[5]), Number(m[6] ?? 0)];
  } else return INVALID;
  return utcOf(y, mo, d, h, mi, s, frac, offset);
}

/** A date's parts checked (a real day, a time of day) and as epoch milliseconds, or INVALID. */
function utcOf(y: number, mo: number, d: number, h: number, mi: number, s: number, frac: number, offset: number): number | typeof INVALID {
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) || h > 23 || mi > 59 || s > 60) return INVALID;
  return Date.UTC(y, mo - 1, d, h, mi, s) + Math.round(frac * 1000) - offset * 60_000;
}

/**
 * `2024-01-31`, `2024-01-31 13:45` or `2024-01-31 13:45:07` (T or space, - or /) read off their fixed places: the
 * forms most tables write, which YMD matches too, with the same parts and so the same value. A regular expression and
 * its match array per cell were most of the time of reading a dated table. Any other text: undefined.
 */
function fixedWidthDate(t: string): number | typeof INVALID | undefined {
  const n = t.length;
  if (n !== 10 && n !== 16 && n !== 19) return undefined;
  const sep1 = t.charCodeAt(4);
  const sep2 = t.charCodeAt(7);
  if ((sep1 !== 45 && sep1 !== 47) || (sep2 !== 45 && sep2 !== 47)) return undefined;
  const y = digits(t, 0, 4);
  const mo = digits(t, 5, 2);
  const d = digits(t, 8, 2);
  if (y < 0 || mo < 0 || d < 0) return undefined;
  let h = 0;
  let mi = 0;
  let s = 0;
  if (n > 10) {
    const sep = t.charCodeAt(10);
    // YMD is case-insensitive: t as well as T.
    if ((sep !== 32 && sep !== 84 && sep !== 116) || t.charCodeAt(13) !== 58) return undefined;
    h = digits(t, 11, 2);
    mi = digits(t, 14, 2);
    if (h < 0 || mi < 0) return undefined;
    if (n === 19) {
      if (t.charCodeAt(16) !== 58) return undefined;
      s = digits(t, 17, 2);
      if (s < 0) return undefined;
    }
  }
  return utcOf(y, mo, d, h, mi, s, 0, 0);
}

/** The decimal number of t[at, at + count), or -1 if one of them is not an ASCII digit. */
function digits(t: string, at: number, count: number): number {
  let x = 0;
  for (let i = at; i < at + count; i++) {
    const c = t.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    x = 10 * x + c;
  }
  return x;
}

function datePart(date: Date, part: DatePart): number {
  switch (part) {
    case "year":
      return date.getUTCFullYear();
    case "month":
      return date.getUTCMonth() + 1;
    case "day_of_week":
      return (date.getUTCDay() + 6) % 7;
    case "hour":
      return date.getUTCHours();
  }
}

/** Whether a time has a time of day other than midnight (decides the hour feature). */
export function hasTimeOfDay(ms: number): boolean {
  return ms === ms && ms % MS_PER_DAY !== 0;
}

/** The feature values of a datetime column: epoch days, then its parts. */
export function dateFeatures(ms: number, parts: readonly DatePart[], out: Float64Array, offset: number): void {
  out[offset] = ms / MS_PER_DAY;
  if (parts.length === 0) return;
  // One Date for all the parts of a cell (it was one per part: most of a date column's packing time).
  const date = ms === ms ? new Date(ms) : undefined;
  for (let i = 0; i < parts.length; i++) out[offset + 1 + i] = date === undefined ? NaN : datePart(date, parts[i]!);
}

// ---------------------------------------------------------------------------------------------------------
// Applying a schema to rows (prediction)

/** Where a bad value was, for messages: a CSV row, or a JSON path. */
export type Where = { row: number } | { path: string };

function place(where: Where, column: string): string {
  return "row" in where ? `row ${where.row}, column ${quoted(column)}` : where.path;
}

/**
 * Turns rows of input values into feature rows with a schema: the one conversion used by `canopy predict`,
 * serving and (for each column's kind) training. Throws CsvError naming the row and column of a bad value.
 */
export class RowEncoder {
  readonly features: FeatureInfo[];
  readonly nFeatures: number;
  /** Per schema column: its first feature slot. */
  private readonly slots: number[];
  private readonly codes: (Map<string, number> | undefined)[];

  constructor(readonly schema: TableSchema) {
    this.features = schemaFeatures(schema);
    this.nFeatures = this.features.length;
    this.slots = [];
    this.features.forEach((f, i) => {
      if (this.slots[f.column] === undefined) this.slots[f.column] = i;
    });
    this.codes = schema.columns.map((c) => (c.kind === "categorical" ? new Map(c.categories!.map((name, code) => [name, code])) : undefined));
  }

  /** Input column names, in schema order. */
  get columnNames(): string[] {
    return this.schema.columns.map((c) => c.name);
  }

  /** Writes column `column`'s features for one value into `out` at the row starting at `rowOffset`. */
  encode(column: number, value: CellValue, out: Float64Array, rowOffset: number, where: Where): void {
    const c = this.schema.columns[column]!;
    const at = rowOffset + this.slots[column]!;
    switch (c.kind) {
      case "numeric": {
        const v = numberOf(value);
        if (v === INVALID) throw new CsvError(`${place(where, c.name)}: ${shown(value)} is not a number`, rowOf(where), c.name);
        out[at] = v;
        return;
      }
      case "boolean": {
        const v = booleanOf(value);
        if (v === INVALID) throw new CsvError(`${place(where, c.name)}: ${shown(value)} is not true or false`, rowOf(where), c.name);
        out[at] = v;
        return;
      }
      case "categorical": {
        const name = categoryOf(value);
        if (name === undefined) {
          out[at] = NaN;
          return;
        }
        const code = this.codes[column]!.get(name);
        out[at] = code !== undefined ? code : c.other ? c.categories!.length : NaN;
        return;
      }
      case "datetime": {
        const ms = dateOf(value);
        if (ms === INVALID) throw new CsvError(`${place(where, c.name)}: ${shown(value)} is not a date/time (${DATE_FORMATS})`, rowOf(where), c.name);
        dateFeatures(ms, c.parts ?? [], out, at);
        return;
      }
    }
  }
}

function rowOf(where: Where): number | undefined {
  return "row" in where ? where.row : undefined;
}

function shown(v: CellValue): string {
  if (typeof v === "string") return quoted(v);
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Date) return v.toISOString();
  return String(v);
}
