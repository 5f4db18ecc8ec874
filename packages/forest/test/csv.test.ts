import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseCsv } from "../src/csv.ts";
import { CsvError, OptionsError } from "../src/errors.ts";
import type { Dataset } from "../src/types.ts";

const fixture = (name: string) => readFileSync(new URL(`../../../test/fixtures/${name}`, import.meta.url));

function classesOf(ds: Dataset): { classes: string[]; codes: Uint16Array } {
  if (ds.target.task !== "classification") throw new Error(`expected classification, got ${ds.target.task}`);
  return ds.target;
}

function valuesOf(ds: Dataset): Float64Array {
  if (ds.target.task !== "regression") throw new Error(`expected regression, got ${ds.target.task}`);
  return ds.target.values;
}

/** Runs parseCsv expecting a CsvError; returns it for field assertions. */
function csvError(input: string | Uint8Array, options?: Parameters<typeof parseCsv>[1]): CsvError {
  try {
    parseCsv(input, options);
  } catch (err) {
    expect(err).toBeInstanceOf(CsvError);
    return err as CsvError;
  }
  throw new Error("parseCsv did not throw");
}

/** Splits a fixture into header names and rows of raw cells (fixtures have no quoted fields). */
function rawCells(buf: Buffer): { header: string[]; rows: string[][] } {
  const lines = buf.toString("utf8").trim().split(/\r?\n/);
  return { header: lines[0]!.split(","), rows: lines.slice(1).map((l) => l.split(",")) };
}

describe("parseCsv: format", () => {
  it("reads quoted fields containing commas, quotes and newlines", () => {
    const ds = parseCsv('x,"y, z",label\n"1.5",2,"a, ""b"""\n3,"4","multi\nline"\n');
    expect(ds.featureNames).toEqual(["x", "y, z"]);
    expect(Array.from(ds.columns[0]!)).toEqual([1.5, 3]);
    expect(Array.from(ds.columns[1]!)).toEqual([2, 4]);
    const { classes, codes } = classesOf(ds);
    expect(classes).toEqual(['a, "b"', "multi\nline"]);
    expect(Array.from(codes)).toEqual([0, 1]);
  });

  it("handles CRLF line endings", () => {
    const ds = parseCsv("a,b,label\r\n1,2,x\r\n3,4,y\r\n");
    expect(ds.featureNames).toEqual(["a", "b"]);
    expect(ds.labelName).toBe("label");
    expect(Array.from(ds.columns[1]!)).toEqual([2, 4]);
    expect(classesOf(ds).classes).toEqual(["x", "y"]);
  });

  it("strips a UTF-8 BOM from strings and bytes", () => {
    const text = "\uFEFFa,label\n1,x\n2,y\n";
    for (const input of [text, new TextEncoder().encode(text)]) {
      const ds = parseCsv(input);
      expect(ds.featureNames).toEqual(["a"]);
      expect(Array.from(ds.columns[0]!)).toEqual([1, 2]);
    }
  });

  it("reads a Uint8Array view that starts inside a larger buffer", () => {
    const bytes = new TextEncoder().encode("garbage\na,label\n7,x\n8,y\n");
    const ds = parseCsv(bytes.subarray("garbage\n".length));
    expect(ds.featureNames).toEqual(["a"]);
    expect(Array.from(ds.columns[0]!)).toEqual([7, 8]);
  });

  it("skips blank lines and does not count them as rows", () => {
    const ds = parseCsv("a,label\n\n1,x\n\n2,y\n\n");
    expect(ds.nRows).toBe(2);
    expect(Array.from(ds.columns[0]!)).toEqual([1, 2]);
  });

  it("trims header names", () => {
    const ds = parseCsv("a , b,label\n1,2,x\n3,4,y\n", { label: " label " });
    expect(ds.featureNames).toEqual(["a", "b"]);
    expect(ds.labelName).toBe("label");
  });

  it("returns one Float64Array of length nRows per feature", () => {
    const ds = parseCsv("a,b,c,label\n" + Array.from({ length: 200 }, (_, i) => `${i},${2 * i},,${i % 2}`).join("\n"));
    expect(ds.nRows).toBe(200);
    expect(ds.columns).toHaveLength(3);
    for (const col of ds.columns) {
      expect(col).toBeInstanceOf(Float64Array);
      expect(col.length).toBe(200);
    }
    expect(ds.columns[0]![199]).toBe(199);
    expect(ds.columns[1]![150]).toBe(300);
    expect(Number.isNaN(ds.columns[2]![0]!)).toBe(true);
  });
});

describe("parseCsv: cells", () => {
  it.each(["", "NA", "na", "NaN", "nan", "NAN", "N/A", "n/a", "null", "NULL", "Null", "  NA  ", " ", "?", " ? "])(
    "reads missing cell %j as NaN",
    (cell) => {
      const ds = parseCsv(`a,b,label\n"${cell}",5,x\n1,${cell},y\n`);
      expect(Number.isNaN(ds.columns[0]![0]!)).toBe(true);
      expect(ds.columns[0]![1]).toBe(1);
      expect(ds.columns[1]![0]).toBe(5);
      expect(Number.isNaN(ds.columns[1]![1]!)).toBe(true);
    },
  );

  it.each([
    ["1e3", 1000],
    ["-0.5", -0.5],
    [" 2 ", 2],
    ["+3", 3],
    [".25", 0.25],
    ["5.", 5],
    ["1.5E-2", 0.015],
    ["007", 7],
    ["0", 0],
  ])("parses %j as %d", (cell, value) => {
    const ds = parseCsv(`a,label\n"${cell}",x\n0,y\n`);
    expect(ds.columns[0]![0]).toBe(value);
  });

  it.each(["12abc", "1,5", "abc", "0x10", "0b1", "Infinity", "-inf", "1e", "1 000", "--1", "1e400"])(
    "rejects %j with the row and column",
    (cell) => {
      const err = csvError(`a,petal_width,label\n1,2,x\n3,4,y\n5,"${cell}",z\n`);
      expect(err.message).toBe(`row 4, column "petal_width": ${JSON.stringify(cell)} is not a number`);
      expect(err.row).toBe(4);
      expect(err.column).toBe("petal_width");
    },
  );

  it("keeps class labels as their trimmed text", () => {
    const { classes, codes } = classesOf(parseCsv("a,label\n1, cat \n2,dog\n3,cat\n4,dog\n"));
    expect(classes).toEqual(["cat", "dog"]);
    expect(Array.from(codes)).toEqual([0, 1, 0, 1]);
  });
});

describe("parseCsv: label column", () => {
  it("defaults to the last column", () => {
    const ds = parseCsv("a,b,c\n1,2,x\n3,4,y\n");
    expect(ds.labelName).toBe("c");
    expect(ds.featureNames).toEqual(["a", "b"]);
  });

  it("selects a middle column by name and keeps the other columns in file order", () => {
    const ds = parseCsv("a,kind,b,c\n1,x,2,3\n4,y,5,6\n7,x,8,9\n", { label: "kind" });
    expect(ds.labelName).toBe("kind");
    expect(ds.featureNames).toEqual(["a", "b", "c"]);
    expect(Array.from(ds.columns[0]!)).toEqual([1, 4, 7]);
    expect(Array.from(ds.columns[1]!)).toEqual([2, 5, 8]);
    expect(Array.from(ds.columns[2]!)).toEqual([3, 6, 9]);
    const { classes, codes } = classesOf(ds);
    expect(classes).toEqual(["x", "y"]);
    expect(Array.from(codes)).toEqual([0, 1, 0]);
  });

  it("reports a missing label column with the available columns", () => {
    const err = csvError("a,b,c\n1,2,3\n", { label: "foo" });
    expect(err.message).toBe('label column "foo" not found; columns are: a, b, c');
    expect(err.row).toBe(1);
    expect(err.column).toBe("foo");
  });

  it("truncates a long column list in that message", () => {
    const names = Array.from({ length: 30 }, (_, i) => `f${i}`);
    const err = csvError(`${names.join(",")}\n${names.map(() => "1").join(",")}\n`, { label: "foo" });
    expect(err.message).toBe(`label column "foo" not found; columns are: ${names.slice(0, 20).join(", ")}, … (30 columns)`);
  });
});

describe("parseCsv: fixtures", () => {
  it("iris: 150 rows, 4 features, 3 string classes sorted", () => {
    const buf = fixture("iris.csv");
    const ds = parseCsv(buf);
    const { header, rows } = rawCells(buf);
    expect(ds.nRows).toBe(150);
    expect(ds.featureNames).toEqual(header.slice(0, 4));
    expect(ds.labelName).toBe("species");
    const { classes, codes } = classesOf(ds);
    expect(classes).toEqual(["setosa", "versicolor", "virginica"]);
    rows.forEach((cells, r) => {
      for (let f = 0; f < 4; f++) expect(ds.columns[f]![r]).toBe(Number(cells[f]));
      expect(classes[codes[r]!]).toBe(cells[4]);
    });
  });

  it("digits: numeric labels become 10 classes in numeric order", () => {
    const buf = fixture("digits.csv");
    const ds = parseCsv(buf);
    const { rows } = rawCells(buf);
    expect(ds.nRows).toBe(rows.length);
    expect(ds.featureNames).toHaveLength(64);
    const { classes, codes } = classesOf(ds);
    expect(classes).toEqual(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    rows.forEach((cells, r) => expect(classes[codes[r]!]).toBe(cells[64]));
    expect(ds.columns[12]![rows.length - 1]).toBe(Number(rows[rows.length - 1]![12]));
  });

  it("diabetes: non-integer numeric labels are detected as regression", () => {
    const buf = fixture("diabetes.csv");
    const ds = parseCsv(buf);
    const { rows } = rawCells(buf);
    expect(ds.nRows).toBe(442);
    expect(ds.labelName).toBe("progression");
    expect(ds.featureNames).toHaveLength(10);
    const values = valuesOf(ds);
    rows.forEach((cells, r) => expect(values[r]).toBe(Number(cells[10])));
  });
});

describe("parseCsv: task", () => {
  it("sorts numeric classes numerically, not as text", () => {
    const { classes, codes } = classesOf(parseCsv("a,y\n1,10\n2,2\n3,1\n4,10\n5,2\n6,1\n"));
    expect(classes).toEqual(["1", "2", "10"]);
    expect(Array.from(codes)).toEqual([2, 1, 0, 2, 1, 0]);
  });

  it("sorts string classes by code unit", () => {
    const { classes } = classesOf(parseCsv("a,y\n1,b\n2,B\n3,a\n4,10\n5,9\n"));
    expect(classes).toEqual(["10", "9", "B", "a", "b"]);
  });

  it("treats integral labels written with decimals as classes named by their canonical spelling", () => {
    const { classes } = classesOf(parseCsv("a,y\n1,1.0\n2,2.0\n3,1.0\n4,2.0\n"));
    expect(classes).toEqual(["1", "2"]);
  });

  it("compares numeric labels as numbers: 1, 1.0 and +1 are one class", () => {
    const { classes, codes } = classesOf(parseCsv("a,y\n1,1\n2,1.0\n3,2\n4,2.00\n5,+1\n6,2e0\n7,10\n8,1e1\n9,-0\n10,0\n"));
    expect(classes).toEqual(["0", "1", "2", "10"]);
    expect(Array.from(codes)).toEqual([1, 1, 2, 2, 1, 2, 3, 3, 0, 0]);
  });

  it("counts distinct numbers, not spellings, when detecting the task", () => {
    // Two classes spelled four ways in 6 rows: still classification (2 <= 6 / 2).
    expect(classesOf(parseCsv("a,y\n1,1\n2,1.0\n3,2\n4,2.0\n5,1\n6,2\n")).classes).toEqual(["1", "2"]);
  });

  it("keeps text labels as text when any label is not a number", () => {
    expect(classesOf(parseCsv("a,y\n1,1\n2,1.0\n3,x\n")).classes).toEqual(["1", "1.0", "x"]);
  });

  it("auto-detects regression when integer labels are not repeated enough", () => {
    // 3 distinct values in 4 rows: more than half the rows.
    expect(Array.from(valuesOf(parseCsv("a,y\n1,1\n2,2\n3,3\n4,1\n")))).toEqual([1, 2, 3, 1]);
  });

  it("auto-detects regression for more than 50 distinct integer labels", () => {
    const rows = Array.from({ length: 102 }, (_, i) => `${i},${i % 51}`);
    expect(parseCsv(`a,y\n${rows.join("\n")}\n`).target.task).toBe("regression");
    const rows50 = Array.from({ length: 100 }, (_, i) => `${i},${i % 50}`);
    expect(classesOf(parseCsv(`a,y\n${rows50.join("\n")}\n`)).classes).toHaveLength(50);
  });

  it("auto-detects regression for fractional labels", () => {
    expect(Array.from(valuesOf(parseCsv("a,y\n1,0.5\n2,0.5\n3,1\n4,1\n")))).toEqual([0.5, 0.5, 1, 1]);
  });

  it("honours task: regression for integer class-like labels", () => {
    const values = valuesOf(parseCsv("a,y\n1,1\n2,0\n3,1\n4,0\n", { task: "regression" }));
    expect(Array.from(values)).toEqual([1, 0, 1, 0]);
  });

  it("honours task: classification for fractional labels", () => {
    const { classes, codes } = classesOf(parseCsv("a,y\n1,0.5\n2,1.25\n3,-2\n", { task: "classification" }));
    expect(classes).toEqual(["-2", "0.5", "1.25"]);
    expect(Array.from(codes)).toEqual([1, 2, 0]);
  });

  it("rejects non-numeric labels for regression, naming the first bad row", () => {
    const err = csvError("a,target\n1,2.5\n2,high\n3,low\n4,high\n", { task: "regression" });
    expect(err.message).toBe('row 3, column "target": "high" is not a number (regression needs numeric labels)');
    expect(err.row).toBe(3);
    expect(err.column).toBe("target");
  });

  it("rejects an unknown task option", () => {
    expect(() => parseCsv("a,y\n1,x\n", { task: "ranking" as never })).toThrow(OptionsError);
  });

  it("rejects more than 65535 classes", () => {
    const rows = Array.from({ length: 65536 }, (_, i) => `${i},c${i}`);
    const err = csvError(`a,y\n${rows.join("\n")}\n`);
    expect(err.message).toBe('label column "y" has 65536 distinct classes; at most 65535 are supported');
    expect(err.column).toBe("y");
  });
});

describe("parseCsv: errors", () => {
  it.each(["", "NA", "null", "  ", "?"])("rejects a missing label %j with its row", (cell) => {
    const err = csvError(`a,b,species\n1,2,x\n3,4,"${cell}"\n`);
    expect(err.message).toBe('row 3, column "species": the label is missing');
    expect(err.row).toBe(3);
    expect(err.column).toBe("species");
  });

  it("rejects an empty file", () => {
    expect(csvError("").message).toBe("CSV is empty: expected a header row and data rows");
    expect(csvError(new Uint8Array(0)).message).toBe("CSV is empty: expected a header row and data rows");
    expect(csvError("\n\n  \n").message).toBe("CSV is empty: expected a header row and data rows");
    expect(csvError("\r\n\r\n").message).toBe("CSV is empty: expected a header row and data rows");
  });

  it("rejects a header without data rows", () => {
    expect(csvError("a,b,c\n").message).toBe("CSV has a header row but no data rows (columns: a, b, c)");
    expect(csvError("a,b,c").message).toBe("CSV has a header row but no data rows (columns: a, b, c)");
  });

  it("rejects rows with too few or too many fields", () => {
    const short = csvError("a,b,c,d,e\n1,2,3,4,x\n1,2,3,4,x\n1,2,3,4,x\n1,2,x\n");
    expect(short.message).toBe("row 5 has 3 fields, expected 5");
    expect(short.row).toBe(5);
    expect(csvError("a,b,c\n1,2,x\n1,2,3,x\n").message).toBe("row 3 has 4 fields, expected 3");
  });

  it("rejects duplicate and empty header names", () => {
    const dup = csvError("a,b,a,y\n1,2,3,x\n");
    expect(dup.message).toBe('header row: duplicate column name "a" (columns 1 and 3)');
    expect(dup.row).toBe(1);
    expect(dup.column).toBe("a");
    expect(csvError("a,,y\n1,2,x\n").message).toBe("header row: column 2 has an empty name");
    expect(csvError('a," ",y\n1,2,x\n').message).toBe("header row: column 2 has an empty name");
  });

  it("rejects a file with only the label column", () => {
    expect(csvError("y\nx\n").message).toBe('CSV has no feature columns: the only column is the label "y"');
  });

  it.each<[string, number[], RegExp]>([
    ["gzip", [0x1f, 0x8b, 0x08, 0x00, 0x41, 0x42], /^not CSV: the data is gzip-compressed data; canopy reads CSV text/],
    ["Parquet", [...Buffer.from("PAR1"), 0x15, 0x04], /^not CSV: the data is a Parquet file;/],
    ["ZIP", [...Buffer.from("PK\x03\x04"), 0x14, 0x00], /^not CSV: the data is a ZIP archive/],
    ["UTF-16", [0xff, 0xfe, 0x61, 0x00, 0x2c, 0x00], /^not CSV: the data is UTF-16 text; save it as UTF-8$/],
    ["NUL bytes", [...Buffer.from("a,b\n1,"), 0x00, 0x02, 0x0a], /^not CSV: the data is binary data \(it holds NUL bytes\)/],
  ])("refuses %s data in one line without echoing its bytes", (_name, bytes, message) => {
    const err = csvError(Uint8Array.from(bytes));
    expect(err.message).toMatch(message);
    expect(err.message).not.toMatch(/[\x00-\x1f\x7f-\x9f\ufffd]/);
  });

  it("refuses invalid UTF-8 with the row and column", () => {
    const latin1 = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));
    const header = csvError(latin1("size,caf\xe9,y\n1,2,x\n"));
    expect(header.message).toBe("row 1, column 2: invalid UTF-8 (byte 0xE9); canopy reads UTF-8 text: save the file as UTF-8");
    expect(header.row).toBe(1);
    const cell = csvError(latin1("a,city,b\n1,Paris,3\n\n2,S\xe3o Paulo,4\n"), { label: "city" });
    expect(cell.message).toBe('row 3, column "city": invalid UTF-8 (byte 0xE3); canopy reads UTF-8 text: save the file as UTF-8');
    expect([cell.row, cell.column]).toEqual([3, "city"]);
    // A real U+FFFD (valid UTF-8) is text like any other.
    expect(classesOf(parseCsv("a,y\n1,\uFFFD\n2,b\n")).classes).toEqual(["b", "\uFFFD"]);
  });

  it("escapes control characters of names and cells in messages", () => {
    const err = csvError("a,\u001b[2Jb,y\n1,2,x\n3,\u009b31m,y\n");
    expect(err.message).toBe('row 3, column "\\x1b[2Jb": "\\x9b31m" is not a number');
    expect(err.column).toBe("\u001b[2Jb");
    expect(csvError("a,b\n1,2\n", { label: "\u001b]0;x\u0007" }).message).toMatch(/^label column "\\x1b\]0;x\\x07" not found/);
  });

  it("wraps csv-parse syntax errors as one-line CsvErrors", () => {
    const err = csvError('a,y\n1,x\n2,"unterminated\n');
    expect(err.message).toMatch(/^row 3: malformed CSV: /);
    expect(err.message).not.toContain("\n");
    expect(err.row).toBe(3);
    expect(csvError('a,y\n1,x\n2,"ab"c\n').message).toMatch(/^row 3: malformed CSV: Invalid Closing Quote/);
  });
});
