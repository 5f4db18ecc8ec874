import type { RowSink } from "@canopy/core";
import { CsvError, numericSchema, printable, quoted, readCsvRecords, RowEncoder, type CellValue, type TableSchema } from "@canopy/forest";

/** Rows to predict, row-major in the model's feature order. */
export interface FeatureMatrix {
  data: Float64Array;
  nRows: number;
  nCols: number;
}

/**
 * Rows to predict, from any table reader: columns are matched to the model's input columns BY NAME, so their
 * order does not matter and extra columns (the label, ids) are ignored. A column the table lacks is an error
 * naming it. Each cell goes through the model's schema (numbers, categories, dates, booleans), as in training;
 * rows are 1-based with the header as row 1, as in the engine's messages. A list of names stands for numeric
 * columns of those names.
 */
export class FeatureReader implements RowSink {
  private readonly encoder: RowEncoder;
  private readonly nCols: number;
  private width = 0;
  private cols: number[] = [];
  private data: Float64Array;
  private nRows = 0;
  private sawHeader = false;

  constructor(schema: TableSchema | readonly string[]) {
    this.encoder = new RowEncoder(isSchema(schema) ? schema : numericSchema(schema, ""));
    this.nCols = this.encoder.nFeatures;
    this.data = new Float64Array(64 * this.nCols);
  }

  header(record: string[]): void {
    this.sawHeader = true;
    const names = this.encoder.columnNames;
    const header = record.map((name) => name.trim());
    const position = new Map<string, number>();
    header.forEach((name, i) => {
      if (position.has(name) && name !== "") throw new CsvError(`header row: duplicate column name ${quoted(name)}`, 1, name);
      position.set(name, i);
    });
    const missing = names.filter((name) => !position.has(name));
    if (missing.length > 0) {
      const shown = missing.slice(0, 5).map((n) => printable(n));
      const list = missing.length <= 5 ? shown.join(", ") : `${shown.join(", ")}, … (${missing.length} in all)`;
      throw new CsvError(`the CSV lacks feature column${missing.length > 1 ? "s" : ""} the model needs: ${list}`, 1, missing[0]);
    }
    this.cols = names.map((name) => position.get(name)!);
    this.width = header.length;
  }

  row(values: CellValue[], row: number): void {
    if (values.length !== this.width) throw new CsvError(`row ${row} has ${values.length} fields, expected ${this.width}`, row);
    const nCols = this.nCols;
    if ((this.nRows + 1) * nCols > this.data.length) {
      const grown = new Float64Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    for (let c = 0; c < this.cols.length; c++) this.encoder.encode(c, values[this.cols[c]!]!, this.data, this.nRows * nCols, { row });
    this.nRows++;
  }

  result(): FeatureMatrix {
    if (!this.sawHeader) throw new CsvError("CSV is empty: expected a header row");
    return { data: this.data.subarray(0, this.nRows * this.nCols), nRows: this.nRows, nCols: this.nCols };
  }
}

/** CSV bytes or text read for prediction (see FeatureReader). */
export function readFeatureCsv(input: Uint8Array | string, schema: TableSchema | readonly string[]): FeatureMatrix {
  const reader = new FeatureReader(schema);
  readCsvRecords(input, (record, row) => (row === 1 ? reader.header(record) : reader.row(record, row)));
  return reader.result();
}

function isSchema(s: TableSchema | readonly string[]): s is TableSchema {
  return !Array.isArray(s);
}

/** One CSV field: quoted when it holds a comma, quote, or line break (RFC 4180). */
export function csvField(text: string): string {
  return /[",\r\n]/.test(text) || text !== text.trim() ? `"${text.replace(/"/g, '""')}"` : text;
}
