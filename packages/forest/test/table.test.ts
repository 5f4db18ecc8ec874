import { describe, expect, it } from "vitest";
import { CsvError } from "../src/errors.ts";
import { fitForest } from "../src/fit.ts";
import { Forest } from "../src/forest.ts";
import { buildPack, decodePack, MISSING_BIN } from "../src/pack.ts";
import { dateOf, OTHER_CATEGORY, RowEncoder, type CellValue } from "../src/schema.ts";
import { MAX_CATEGORY_CODES, TableBuilder, type TableOptions } from "../src/table.ts";

/** Builds a table from a header and rows of cells (strings, or typed values as Parquet gives them). */
function table(header: string[], rows: CellValue[][], options: TableOptions = {}) {
  const builder = new TableBuilder(options);
  builder.header(header);
  rows.forEach((r, i) => builder.row(r, i + 2));
  return builder.finish();
}

function tableError(header: string[], rows: CellValue[][], options: TableOptions = {}): CsvError {
  try {
    table(header, rows, options);
  } catch (err) {
    expect(err).toBeInstanceOf(CsvError);
    return err as CsvError;
  }
  throw new Error("no error");
}

const n = 40;
const rows = Array.from({ length: n }, (_, i): CellValue[] => [
  String(i % 7), // numeric
  i % 3 === 0 ? "yes" : "No", // boolean
  `2024-01-${String(1 + (i % 28)).padStart(2, "0")}`, // datetime (dates only)
  ["red", "green", "blue"][i % 3]!, // categorical
  `user-${i}`, // identifier
  "same", // constant
  "", // empty
  i % 2 ? "a" : "b", // label
]);
const header = ["num", "flag", "day", "colour", "id", "const", "blank", "y"];

describe("TableBuilder: column kinds", () => {
  it("types numeric, boolean, datetime and categorical columns; excludes identifiers, constants and empty columns", () => {
    const { schema, dataset } = table(header, rows);
    expect(schema.columns.map((c) => [c.name, c.kind])).toEqual([
      ["num", "numeric"],
      ["flag", "boolean"],
      ["day", "datetime"],
      ["colour", "categorical"],
    ]);
    expect(schema.excluded).toEqual([
      { name: "id", reason: "identifier" },
      { name: "const", reason: "constant" },
      { name: "blank", reason: "empty" },
    ]);
    expect(schema.notes).toEqual([
      'column "id": excluded, an identifier (40 of 40 sampled values distinct); --categorical id keeps it',
      'column "const": excluded, every value is "same" (or missing)',
      'column "blank": excluded, every value is missing',
    ]);
    expect(dataset.featureNames).toEqual(["num", "flag", "day", "day.year", "day.month", "day.day_of_week", "colour"]);
    expect(dataset.features!.map((f) => f.kind)).toEqual(["numeric", "numeric", "numeric", "numeric", "numeric", "numeric", "categorical"]);
    expect(Array.from(dataset.columns[1]!.subarray(0, 4))).toEqual([1, 0, 0, 1]);
    // 2024-01-01 is a Monday: day_of_week 0, as pandas; epoch days 19723.
    expect([dataset.columns[2]![0], dataset.columns[3]![0], dataset.columns[4]![0], dataset.columns[5]![0]]).toEqual([19723, 2024, 1, 0]);
    // Categories by frequency, ties by name: blue/green/red have 13/13/14 rows.
    expect(schema.columns[3]!.categories).toEqual(["red", "blue", "green"]);
    expect(Array.from(dataset.columns[6]!.subarray(0, 3))).toEqual([0, 2, 1]);
  });

  it("adds an hour feature when the training data has times of day, and reads every documented date spelling", () => {
    const spellings = ["2024-03-05T13:45:00Z", "2024-03-05 13:45:00", "2024/03/05", "Mar 05 2024", "March 5, 2024 13:45", "2024-03-05T15:45:00+02:00"];
    const { schema, dataset } = table(["t", "y"], spellings.map((t, i) => [t, i % 2 ? "a" : "b"]));
    expect(schema.columns[0]).toEqual({ name: "t", kind: "datetime", parts: ["year", "month", "day_of_week", "hour"] });
    expect(Array.from(dataset.columns[4]!)).toEqual([13, 13, 0, 0, 13, 13]);
    expect(dateOf("2024-02-30")).toBe(dateOf("Feb 30 2024"));
    expect(typeof dateOf("2024-02-30")).toBe("symbol"); // not a date
  });

  it("reads fixed-width dates (the fast path) exactly as the general pattern reads the same date", () => {
    // A trailing Z (offset 0) sends the same text through the general pattern: both must agree, valid or not.
    let state = 12345;
    const next = (n: number) => ((state = (state * 1103515245 + 12345) % 2 ** 31), state % n);
    const pad = (x: number, w: number) => String(x).padStart(w, "0");
    for (let i = 0; i < 2000; i++) {
      const date = `${pad(next(2100), 4)}${"-/"[next(2)]}${pad(next(14), 2)}${"-/"[next(2)]}${pad(next(33), 2)}`;
      const time = `${"T t"[next(3)]}${pad(next(26), 2)}:${pad(next(61), 2)}`;
      for (const text of [date, date + time, `${date + time}:${pad(next(62), 2)}`]) expect(dateOf(text)).toBe(dateOf(`${text}Z`));
    }
    expect(dateOf(" 2001-01-01 00:01 ")).toBe(Date.UTC(2001, 0, 1, 0, 1));
    expect(dateOf("0050-06-15")).toBe(dateOf("0050-6-15"));
    for (const bad of ["2001-01-0x", "2001-01-01 0a:00", "2001-01-01 00-01", "2001.01.01", "2001-01-01 00:01:0"]) expect(typeof dateOf(bad)).toBe("symbol");
  });

  it("a column is datetime only if every sampled value is a date (numbers among them make it categorical)", () => {
    const { schema } = table(["d", "y"], [["5", "a"], ["2024-01-01", "b"], ["2024-01-02", "a"], ["2024-01-03", "b"]]);
    expect(schema.columns[0]).toMatchObject({ name: "d", kind: "categorical" });
  });

  it("reads typed values (Parquet): numbers, bigints, booleans, dates", () => {
    const { schema, dataset } = table(
      ["a", "b", "c", "d", "y"],
      Array.from({ length: 6 }, (_, i) => [i, BigInt(i * 10), i % 2 === 0, new Date(Date.UTC(2020, 0, 1 + i)), i % 2 ? "p" : "q"]),
    );
    expect(schema.columns.map((c) => c.kind)).toEqual(["numeric", "numeric", "boolean", "datetime"]);
    expect(Array.from(dataset.columns[1]!)).toEqual([0, 10, 20, 30, 40, 50]);
  });
});

describe("TableBuilder: the full stream confirms the sample", () => {
  it("a numeric column that meets text after the sample becomes categorical, earlier values by canonical spelling", () => {
    const data = [...Array.from({ length: 10 }, (_, i): CellValue[] => [i % 3 === 0 ? "1.0" : String(i % 3), "x"]), ["A7", "y"], ["2", "x"]];
    const { schema, dataset } = table(["code", "y"], data, { sampleRows: 5 });
    expect(schema.columns[0]!.kind).toBe("categorical");
    expect(schema.columns[0]!.categories!.sort()).toEqual(["1", "2", "A7"]);
    expect(schema.notes![0]).toBe('column "code": read as numeric from its first rows, categorical from row 12 on ("A7"); earlier values are named by their canonical spelling');
    const code = new Map(schema.columns[0]!.categories!.map((c, i) => [c, i]));
    expect(dataset.columns[0]![0]).toBe(code.get("1"));
  });

  it("cells spelled differently name the same category, and missing spellings stay missing, past the spellings it remembers", () => {
    // 6,000 spellings (more than the builder remembers), each category spelled 3 ways, then every spelling again.
    const spellings = (k: number) => [`c${k}`, ` c${k}`, `c${k} `];
    const cells = ["1", "1.0", " 1", "NA", "", "?", "n/a", ...Array.from({ length: 2000 }, (_, k) => spellings(k)).flat()];
    const data = [...cells, ...cells.slice().reverse()].map((c, i): CellValue[] => [c, i % 2 ? "x" : "y"]);
    const { schema, dataset } = table(["cat", "y"], data, { sampleRows: 100 });
    const names = schema.columns[0]!.categories!;
    expect(names).toHaveLength(2001);
    data.forEach(([cell], r) => {
      const t = (cell as string).trim();
      const want = ["NA", "", "?", "n/a"].includes(t) ? undefined : t === "1.0" ? "1" : t;
      const got = dataset.columns[0]![r]!;
      expect(Number.isNaN(got) ? undefined : names[got], `row ${r + 2}: ${JSON.stringify(cell)}`).toBe(want);
    });
  });

  it("--numeric forbids that: the cell is an error naming the row and column", () => {
    const data = Array.from({ length: 8 }, (_, i): CellValue[] => [i === 6 ? "abc" : String(i), "x"]);
    const err = tableError(["n", "y"], data, { numeric: ["n"], sampleRows: 3 });
    expect(err.message).toBe('row 8, column "n": "abc" is not a number (--numeric n)');
    expect([err.row, err.column]).toEqual([8, "n"]);
  });

  it("a datetime column that meets a value that is not a date is an error naming the row and column", () => {
    const data = Array.from({ length: 8 }, (_, i): CellValue[] => [i === 5 ? "soon" : `2020-01-0${i + 1}`, "x"]);
    expect(tableError(["d", "y"], data, { sampleRows: 3 }).message).toMatch(
      /^row 7, column "d": "soon" is not a date\/time \(.*\); the column was read as dates from its first rows: --categorical d or --drop d$/,
    );
  });

  it("keeps more than 255 categories (a 16-bit feature); --min-category-rows groups the rare ones as (other)", () => {
    const data: CellValue[][] = [];
    for (let c = 0; c < 300; c++) for (let k = 0; k < (c < 10 ? 3 : 1); k++) data.push([`c${c}`, c % 2 ? "a" : "b"]);
    const all = table(["city", "y"], data, { categorical: ["city"] });
    expect(all.schema.columns[0]!.categories).toHaveLength(300);
    expect(all.schema.columns[0]!.other).toBeUndefined();
    expect(all.schema.notes ?? []).toEqual([]);
    const pack = buildPack(all.dataset);
    expect(pack.features[0]).toMatchObject({ kind: "categorical", bits: 16 });
    expect(Array.from(pack.wideBins!.subarray(0, 3))).toEqual([0, 0, 0]);
    expect(Math.max(...pack.wideBins!)).toBe(299);

    const { schema, dataset } = table(["city", "y"], data, { categorical: ["city"], minCategoryRows: 2 });
    const city = schema.columns[0]!;
    expect(city.categories).toEqual(Array.from({ length: 10 }, (_, c) => `c${c}`));
    expect(city.other).toBe(true);
    expect(dataset.features![0]!.categories).toHaveLength(11);
    expect(dataset.features![0]!.categories![10]).toBe(OTHER_CATEGORY);
    expect(Math.max(...dataset.columns[0]!)).toBe(10);
    expect(schema.notes![0]).toBe('column "city": 300 categories; the 10 seen in at least 2 rows (--min-category-rows) are kept and the other 290 grouped as (other)');
    expect(buildPack(dataset).features[0]).toMatchObject({ kind: "categorical", bits: 8 });
  });

  it(`beyond ${MAX_CATEGORY_CODES} codes, the most frequent keep one and the rest are grouped as (other)`, () => {
    const n = MAX_CATEGORY_CODES + 9;
    const data: CellValue[][] = Array.from({ length: n }, (_, i) => [`k${i}`, i % 2 ? "a" : "b"]);
    data.push(["k7", "a"], ["k3", "b"]);
    const { schema } = table(["key", "y"], data, { categorical: ["key"] });
    const key = schema.columns[0]!;
    expect(key.categories).toHaveLength(MAX_CATEGORY_CODES - 1);
    expect(key.categories!.slice(0, 2)).toEqual(["k3", "k7"]);
    expect(key.other).toBe(true);
    expect(schema.notes![0]).toBe(`column "key": ${n} categories; the ${MAX_CATEGORY_CODES - 1} most frequent are kept and the other 10 grouped as (other)`);
  });

  it("--min-category-rows must be an integer >= 1", () => {
    for (const bad of [0, 1.5, -2]) expect(() => new TableBuilder({ minCategoryRows: bad })).toThrow(/^--min-category-rows: must be an integer >= 1/);
  });
});

describe("TableBuilder: overrides", () => {
  it("--categorical reads numbers as categories (by canonical spelling); --drop leaves a column out", () => {
    const data = Array.from({ length: 6 }, (_, i): CellValue[] => [i % 2 ? "1" : "2.0", String(i), "z"]);
    const { schema } = table(["code", "n", "y"], data, { categorical: ["code"], drop: ["n"] });
    expect(schema.columns).toEqual([{ name: "code", kind: "categorical", categories: ["1", "2"] }]);
    expect(schema.excluded).toEqual([{ name: "n", reason: "dropped" }]);
  });

  it("unknown names, the label, or one column under two flags are errors", () => {
    expect(tableError(["a", "y"], [["1", "x"]], { categorical: ["b"] }).message).toBe('--categorical: no column "b"; columns are: a, y');
    expect(tableError(["a", "y"], [["1", "x"]], { drop: ["y"] }).message).toBe('--drop: "y" is the label column');
    expect(tableError(["a", "b", "y"], [["1", "2", "x"]], { numeric: ["a"], categorical: ["a"] }).message).toBe(
      'column "a" is named by both --categorical and --numeric',
    );
  });
});

describe("schema through the pack and the model", () => {
  const data = Array.from({ length: 60 }, (_, i): CellValue[] => [
    ["red", "green", "blue"][i % 3]!,
    String(i % 10),
    `2023-0${1 + (i % 9)}-1${i % 10}`,
    i % 3 === 0 ? "yes" : i % 3 === 1 ? "no" : "maybe-not",
  ]);
  const { dataset, schema } = table(["colour", "n", "when", "y"], data);

  it("a categorical feature's bins are its category codes; the pack records kinds, categories and the schema", () => {
    const pack = buildPack(dataset);
    expect(pack.features[0]).toEqual({ kind: "categorical", categories: ["blue", "green", "red"], bits: 8 });
    expect(pack.features[1]).toEqual({ kind: "numeric", bits: 8 });
    for (let r = 0; r < pack.nRows; r++) expect(pack.bins[r]).toBe(dataset.columns[0]![r]);
    const back = decodePack(pack.bytes.slice());
    expect(back.features).toEqual(pack.features);
    expect(back.schema).toEqual(schema);
    expect(back.hash).toBe(pack.hash);
  });

  it("missing categories take the missing bin", () => {
    const withGap = table(["c", "y"], [["a", "x"], ["", "y"], ["b", "x"], ["NA", "y"]], { categorical: ["c"] });
    const pack = buildPack(withGap.dataset);
    expect(Array.from(pack.bins)).toEqual([0, MISSING_BIN, 1, MISSING_BIN]);
  });

  it("the model carries the schema (binary and JSON), and RowEncoder turns raw rows into the same features", () => {
    const forest = fitForest(buildPack(dataset), { n_estimators: 3, random_state: 1 }).withSchema(schema);
    for (const loaded of [Forest.load(forest.toBinary()), Forest.load(JSON.stringify(forest.toJSON()))]) {
      expect(loaded.schema).toEqual(schema);
      // Version 4: its trees split the categorical column into sets of categories.
      expect(loaded.version).toBe(4);
    }
    const encoder = new RowEncoder(schema);
    const out = new Float64Array(encoder.nFeatures);
    data.slice(0, 5).forEach((row, r) => {
      for (let c = 0; c < 3; c++) encoder.encode(c, row[c]!, out, 0, { row: r + 2 });
      expect(Array.from(out)).toEqual(dataset.columns.map((col) => col[r]));
    });
    encoder.encode(0, "purple", out, 0, { row: 9 }); // unseen, and no (other) code: missing
    expect(out[0]).toBeNaN();
    expect(() => encoder.encode(2, "later", out, 0, { path: "records[0].when" })).toThrow(/^records\[0\]\.when: "later" is not a date\/time/);
    expect(() => encoder.encode(1, "ten", out, 0, { row: 4 })).toThrow('row 4, column "n": "ten" is not a number');
  });
});
