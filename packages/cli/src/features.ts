import { CsvError, INVALID, parseCell, printable, quoted, readCsvRecords } from "@canopy/forest";

/** Rows to predict, row-major in the model's feature order. */
export interface FeatureMatrix {
  data: Float64Array;
  nRows: number;
  nCols: number;
}

/**
 * Reads a CSV for prediction: columns are matched to the model's features BY NAME, so their order does not
 * matter and extra columns (the label, ids) are ignored. A feature the CSV lacks is an error naming it.
 * Cells follow the engine's grammar (parseCell); rows are 1-based with the header as row 1, as in its messages.
 */
export function readFeatureCsv(input: Uint8Array | string, featureNames: readonly string[]): FeatureMatrix {
  const nCols = featureNames.length;
  let width = 0;
  let cols: number[] = [];
  let data = new Float64Array(64 * nCols);
  let nRows = 0;
  const records = readCsvRecords(input, (record, row) => {
    if (row === 1) {
      const header = record.map((name) => name.trim());
      const position = new Map<string, number>();
      header.forEach((name, i) => {
        if (position.has(name) && name !== "") throw new CsvError(`header row: duplicate column name ${quoted(name)}`, 1, name);
        position.set(name, i);
      });
      const missing = featureNames.filter((name) => !position.has(name));
      if (missing.length > 0) {
        const shown = missing.slice(0, 5).map((n) => printable(n));
        const list = missing.length <= 5 ? shown.join(", ") : `${shown.join(", ")}, … (${missing.length} in all)`;
        throw new CsvError(`the CSV lacks feature column${missing.length > 1 ? "s" : ""} the model needs: ${list}`, 1, missing[0]);
      }
      cols = featureNames.map((name) => position.get(name)!);
      width = header.length;
      return;
    }
    if (record.length !== width) throw new CsvError(`row ${row} has ${record.length} fields, expected ${width}`, row);
    if ((nRows + 1) * nCols > data.length) {
      const grown = new Float64Array(data.length * 2);
      grown.set(data);
      data = grown;
    }
    for (let f = 0; f < nCols; f++) {
      const cell = record[cols[f]!]!;
      const v = parseCell(cell);
      if (v === INVALID) throw new CsvError(`row ${row}, column ${quoted(featureNames[f]!)}: ${quoted(cell)} is not a number`, row, featureNames[f]);
      data[nRows * nCols + f] = v;
    }
    nRows++;
  });
  if (records === 0) throw new CsvError("CSV is empty: expected a header row");
  return { data: data.subarray(0, nRows * nCols), nRows, nCols };
}

/** One CSV field: quoted when it holds a comma, quote, or line break (RFC 4180). */
export function csvField(text: string): string {
  return /[",\r\n]/.test(text) || text !== text.trim() ? `"${text.replace(/"/g, '""')}"` : text;
}
