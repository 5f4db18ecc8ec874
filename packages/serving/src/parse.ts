import { CsvError, CsvSyntaxError, numericSchema, printable, quoted, readCsvRecords, RowEncoder, type CellValue, type TableSchema } from "@canopy/forest";
import { inShort, recordRows, tableRows, type NamedRows } from "@canopy/core";
import { ServingError } from "./http.ts";

/**
 * What a body must be read against: the served model's features (and its label, which rows may carry), and its
 * table schema when it has one: then CSV columns and record fields are the model's input columns (text for
 * categories and dates), while "rows" stay feature vectors of numbers.
 */
export interface FeatureSchema {
  featureNames: readonly string[];
  labelName: string;
  schema?: TableSchema;
}

/** Rows to predict, row-major in the model's feature order; NaN marks a missing value. */
export interface RowMatrix {
  data: Float64Array;
  nRows: number;
  nCols: number;
}

export interface ParsedBody {
  X: RowMatrix;
  /** `"proba": true` in a JSON body; undefined when the body did not say. */
  proba?: boolean;
}

/** A body for a partitioned model: rows by column name, read by each partition's own schema later. */
export interface NamedBody {
  rows: NamedRows;
  proba?: boolean;
  /** `"skip_unknown": true` in a JSON body. */
  skipUnknown?: boolean;
}

export type BodyFormat = "json" | "csv";

const JSON_FIELDS = new Set(["rows", "records", "proba", "skip_unknown"]);
const USAGE = 'send JSON {"rows": [[...], ...]} or {"records": [{"feature": value, ...}, ...]}, or CSV with a header row';

const bad = (message: string) => new ServingError(400, message);

/**
 * The body's format from its content type: JSON or CSV. Without a telling type (none, curl's default form
 * encoding, octet-stream) the first character decides: `{` is JSON, anything else CSV. `text/plain` (and a
 * multipart form) is what a web page may send to any site without asking first, so it is read as CSV only: JSON
 * sent that way is refused (415) rather than read. Other types are refused (415).
 */
export function bodyFormat(contentType: string | undefined, text: string): BodyFormat {
  const type = (contentType ?? "").split(";")[0].trim().toLowerCase();
  if (type === "application/json" || type.endsWith("+json")) return "json";
  if (type === "text/csv" || type === "application/csv") return "csv";
  const json = text.trimStart().startsWith("{");
  if (type === "text/plain" || type === "multipart/form-data") {
    if (json) throw new ServingError(415, `JSON sent as ${type} is not read (a web page can send ${type} to any site): send it as application/json`);
    return "csv";
  }
  if (type === "" || type === "application/x-www-form-urlencoded" || type === "application/octet-stream") return json ? "json" : "csv";
  throw new ServingError(415, `unsupported content type ${inShort(type)}: ${USAGE}`);
}

function featureList(names: readonly string[]): string {
  const shown = names.slice(0, 8).map((n) => printable(n));
  return names.length <= 8 ? shown.join(", ") : `${shown.join(", ")}, … (${names.length} in all)`;
}

function tooMany(nRows: number, maxRows: number): ServingError {
  return new ServingError(413, `${nRows} rows in one request; the limit is ${maxRows}: split them over several requests`);
}

/** A JSON value as a feature value: a finite number, or null for a missing value. */
function jsonValue(v: unknown, where: string): number {
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw bad(`${where}: ${v} is not a finite number`);
    return v;
  }
  if (v === null) return NaN;
  const shown = typeof v === "string" ? inShort(v) : Array.isArray(v) ? "an array" : typeof v === "object" ? "an object" : String(v);
  throw bad(`${where}: ${shown} is not a number (use a JSON number, or null for a missing value)`);
}

function jsonBody(text: string, maxRows: number): { fields: Record<string, unknown>; key: "rows" | "records"; list: unknown[]; proba?: boolean; skipUnknown?: boolean } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw bad(`body is not valid JSON (${(err as Error).message.split("\n")[0]}): ${USAGE}`);
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) throw bad(`body must be a JSON object: ${USAGE}`);
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((k) => !JSON_FIELDS.has(k));
  if (unknown.length > 0) throw bad(`unknown field ${inShort(unknown[0])} in the body; expected "rows" or "records", and optionally "proba"`);
  if ("rows" in fields && "records" in fields) throw bad('send "rows" or "records", not both');
  const flag = (name: string): boolean | undefined => {
    if (!(name in fields)) return undefined;
    if (typeof fields[name] !== "boolean") throw bad(`"${name}" must be true or false; got ${inShort(fields[name])}`);
    return fields[name];
  };
  const proba = flag("proba");
  const skipUnknown = flag("skip_unknown");
  const key = "rows" in fields ? "rows" : "records" in fields ? "records" : undefined;
  if (!key) throw bad(`no "rows" or "records" in the body: ${USAGE}`);
  const list = fields[key];
  if (!Array.isArray(list)) throw bad(`"${key}" must be an array`);
  if (list.length === 0) throw bad(`"${key}" is empty: no rows to predict`);
  if (list.length > maxRows) throw tooMany(list.length, maxRows);
  return { fields, key, list, ...(proba !== undefined ? { proba } : {}), ...(skipUnknown !== undefined ? { skipUnknown } : {}) };
}

function parseJson(text: string, schema: FeatureSchema, maxRows: number): ParsedBody {
  const { key, list, proba } = jsonBody(text, maxRows);
  const X = key === "rows" ? rowsMatrix(list, schema) : schema.schema ? schemaRecordsMatrix(list, schema, schema.schema) : recordsMatrix(list, schema);
  return proba === undefined ? { X } : { X, proba };
}

function rowsMatrix(rows: unknown[], schema: FeatureSchema): RowMatrix {
  const nCols = schema.featureNames.length;
  const data = new Float64Array(rows.length * nCols);
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r];
    if (!Array.isArray(row)) throw bad(`rows[${r}] is not an array: "rows" holds one array of ${nCols} numbers per row (for one row: [[...]])`);
    if (row.length !== nCols)
      throw bad(`rows[${r}] has ${row.length} value${row.length === 1 ? "" : "s"}; the model expects ${nCols} features (${featureList(schema.featureNames)})`);
    for (let f = 0; f < nCols; f++) data[r * nCols + f] = jsonValue(row[f], `rows[${r}][${f}] (${quoted(schema.featureNames[f]!)})`);
  }
  return { data, nRows: rows.length, nCols };
}

function recordsMatrix(records: unknown[], schema: FeatureSchema): RowMatrix {
  const names = schema.featureNames;
  const nCols = names.length;
  const position = new Map(names.map((n, i) => [n, i]));
  const data = new Float64Array(records.length * nCols);
  for (let r = 0; r < records.length; r++) {
    const rec = records[r];
    if (rec === null || typeof rec !== "object" || Array.isArray(rec)) throw bad(`records[${r}] is not an object of feature names to values`);
    const fields = rec as Record<string, unknown>;
    let seen = 0;
    for (const key of Object.keys(fields)) {
      const f = position.get(key);
      if (f === undefined) {
        if (key === schema.labelName) continue; // rows often carry their label: ignored
        throw bad(`records[${r}] has unknown feature ${quoted(key)}; the model's features are ${featureList(names)}`);
      }
      data[r * nCols + f] = jsonValue(fields[key], `records[${r}].${key}`);
      seen++;
    }
    if (seen !== nCols) {
      const missing = names.filter((n) => !Object.hasOwn(fields, n));
      throw bad(`records[${r}] lacks feature${missing.length > 1 ? "s" : ""} ${featureList(missing)} (use null for a missing value)`);
    }
  }
  return { data, nRows: records.length, nCols };
}

/** Records of a model with a schema: fields are its input columns, values JSON scalars (null for missing). */
function schemaRecordsMatrix(records: unknown[], schema: FeatureSchema, table: TableSchema): RowMatrix {
  const encoder = new RowEncoder(table);
  const names = encoder.columnNames;
  const position = new Map(names.map((n, i) => [n, i]));
  const nCols = encoder.nFeatures;
  const data = new Float64Array(records.length * nCols);
  for (let r = 0; r < records.length; r++) {
    const rec = records[r];
    if (rec === null || typeof rec !== "object" || Array.isArray(rec)) throw bad(`records[${r}] is not an object of column names to values`);
    const fields = rec as Record<string, unknown>;
    let seen = 0;
    for (const key of Object.keys(fields)) {
      const c = position.get(key);
      if (c === undefined) {
        if (key === schema.labelName || table.excluded.some((e) => e.name === key)) continue;
        throw bad(`records[${r}] has unknown column ${quoted(key)}; the model's columns are ${featureList(names)}`);
      }
      const value = fields[key];
      const where = `records[${r}].${printable(key)}`;
      if (value !== null && typeof value === "object") throw bad(`${where}: ${Array.isArray(value) ? "an array" : "an object"} is not a value`);
      try {
        encoder.encode(c, value as CellValue, data, r * nCols, { path: where });
      } catch (err) {
        if (err instanceof CsvError) throw bad(err.message);
        throw err;
      }
      seen++;
    }
    if (seen !== names.length) {
      const missing = names.filter((n) => !Object.hasOwn(fields, n));
      throw bad(`records[${r}] lacks column${missing.length > 1 ? "s" : ""} ${featureList(missing)} (use null for a missing value)`);
    }
  }
  return { data, nRows: records.length, nCols };
}

/**
 * CSV with a header row; columns matched to features by name (any order). Rows are numbered with the header as
 * row 1. Records and cells are read by the engine's CSV reader and cell grammar (readCsvRecords, parseCell).
 */
function parseCsv(text: string, schema: FeatureSchema, maxRows: number): ParsedBody {
  const encoder = new RowEncoder(schema.schema ?? numericSchema(schema.featureNames, schema.labelName));
  const names = encoder.columnNames;
  const nCols = encoder.nFeatures;
  // Columns the model was trained without (identifiers, dropped ones) may come along and are ignored.
  const known = new Set([...names, ...(schema.schema?.excluded.map((e) => e.name) ?? [])]);
  let width = 0;
  let cols: number[] = [];
  let data = new Float64Array(16 * nCols);
  let nRows = 0;
  let records: number;
  try {
    records = readCsvRecords(text, (record, row) => {
      if (row === 1) {
        const header = record.map((name) => name.trim());
        const position = new Map<string, number>();
        header.forEach((name, i) => {
          if (position.has(name)) throw bad(`CSV header: duplicate column ${quoted(name)}`);
          if (!known.has(name) && name !== schema.labelName)
            throw bad(`CSV header: unknown feature ${quoted(name)}; the model's features are ${featureList(names)}`);
          position.set(name, i);
        });
        const missing = names.filter((n) => !position.has(n));
        if (missing.length > 0) throw bad(`CSV header lacks feature${missing.length > 1 ? "s" : ""} ${featureList(missing)}`);
        cols = names.map((n) => position.get(n)!);
        width = header.length;
        return;
      }
      if (row - 1 > maxRows) return; // counted, refused below with the total
      if (record.length !== width) throw bad(`CSV row ${row} has ${record.length} fields; the header has ${width}`);
      if ((nRows + 1) * nCols > data.length) {
        const grown = new Float64Array(data.length * 2);
        grown.set(data);
        data = grown;
      }
      for (let c = 0; c < cols.length; c++) encoder.encode(c, record[cols[c]!]!, data, nRows * nCols, { row });
      nRows++;
    });
  } catch (err) {
    if (err instanceof CsvSyntaxError) throw bad(`malformed CSV: ${err.detail}`);
    if (err instanceof CsvError) throw bad(`CSV ${err.message}`);
    throw err;
  }
  if (records === 0) throw bad(`empty CSV: ${USAGE}`);
  if (records === 1) throw bad("the CSV has a header but no rows to predict");
  if (records - 1 > maxRows) throw tooMany(records - 1, maxRows);
  return { X: { data: data.subarray(0, nRows * nCols), nRows, nCols } };
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The body as text; refuses bytes that are not UTF-8. */
export function bodyText(body: Uint8Array | string): string {
  if (typeof body === "string") return body;
  try {
    return utf8.decode(body);
  } catch {
    throw bad("body is not valid UTF-8 text");
  }
}

/** Reads rows to predict from a request body. Throws ServingError (400, 413, 415) naming what is wrong. */
export function parseBody(text: string, contentType: string | undefined, schema: FeatureSchema, maxRows: number): ParsedBody {
  if (text.trim() === "") throw bad(`empty body: ${USAGE}`);
  return bodyFormat(contentType, text) === "json" ? parseJson(text, schema, maxRows) : parseCsv(text, schema, maxRows);
}

/**
 * Reads rows for a partitioned model: JSON `{"records": [...]}` (optionally "proba", "skip_unknown") or CSV with a
 * header, as cells by column name; each partition's schema reads them once the rows are routed. JSON "rows" are
 * refused: feature vectors carry no column to route by.
 */
export function parseNamedBody(text: string, contentType: string | undefined, maxRows: number, partitionBy: string): NamedBody {
  if (text.trim() === "") throw bad(`empty body: ${USAGE}`);
  if (bodyFormat(contentType, text) === "json") {
    const { key, list, proba, skipUnknown } = jsonBody(text, maxRows);
    if (key === "rows")
      throw bad(`this is a partitioned model: send "records" (objects of column -> value, with ${quoted(partitionBy)}) or CSV with a header; "rows" carry no column to route by`);
    let rows: NamedRows;
    try {
      rows = recordRows(list);
    } catch (err) {
      throw bad((err as Error).message);
    }
    return { rows, ...(proba !== undefined ? { proba } : {}), ...(skipUnknown !== undefined ? { skipUnknown } : {}) };
  }
  let header: string[] | undefined;
  const records: string[][] = [];
  let count: number;
  try {
    count = readCsvRecords(text, (record, row) => {
      if (row === 1) {
        header = record.map((name) => name.trim());
        const seen = new Set<string>();
        for (const name of header) {
          if (seen.has(name)) throw bad(`CSV header: duplicate column ${quoted(name)}`);
          seen.add(name);
        }
        return;
      }
      if (row - 1 > maxRows) return; // counted, refused below with the total
      if (record.length !== header!.length) throw bad(`CSV row ${row} has ${record.length} fields; the header has ${header!.length}`);
      records.push(record);
    });
  } catch (err) {
    if (err instanceof CsvSyntaxError) throw bad(`malformed CSV: ${err.detail}`);
    if (err instanceof CsvError) throw bad(`CSV ${err.message}`);
    throw err;
  }
  if (count === 0 || header === undefined) throw bad(`empty CSV: ${USAGE}`);
  if (count === 1) throw bad("the CSV has a header but no rows to predict");
  if (count - 1 > maxRows) throw tooMany(count - 1, maxRows);
  return { rows: tableRows(header, records) };
}
