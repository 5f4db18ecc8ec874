// Issue 12 (ingest): public tables as users bring them (categorical, date and missing values; CSV, .csv.gz,
// Parquet) are trained, predicted, inspected and served through the real CLI and HTTP server. Fixtures and their
// licences: test/fixtures/README.md.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileSource, openTable } from "@canopy/core/ingest";
import type { CellValue, TableSchema } from "@canopy/forest";
import { beforeAll, describe, expect, it } from "vitest";
import { serveInBackground } from "../serving/support.ts";
import { canopy, csvRows, exists, fixture, tempDir } from "./support.ts";

interface Case {
  file: string;
  label: string;
  format: string;
  task: "classification" | "regression";
  /** Column -> kind expected in the inferred schema (a subset). */
  kinds: Record<string, string>;
  excluded?: Record<string, string>;
}

const CASES: Case[] = [
  {
    file: "penguins.csv",
    label: "Species",
    format: "csv",
    task: "classification",
    kinds: { Island: "categorical", Sex: "categorical", "Body Mass (g)": "numeric", "Beak Length (mm)": "numeric" },
  },
  {
    file: "movies.csv",
    label: "Production Budget",
    format: "csv",
    task: "regression",
    kinds: { "Release Date": "datetime", Distributor: "categorical", "Major Genre": "categorical", "MPAA Rating": "categorical", "IMDB Rating": "numeric" },
    excluded: { Title: "identifier" },
  },
  {
    file: "birdstrikes.csv",
    label: "Phase of flight",
    format: "csv",
    task: "classification",
    kinds: { "Airport Name": "categorical", "Aircraft Airline Operator": "categorical", "Flight Date": "datetime", "Speed IAS in knots": "numeric" },
  },
  {
    file: "seattle-weather.csv.gz",
    label: "weather",
    format: "csv.gz",
    task: "classification",
    kinds: { date: "datetime", precipitation: "numeric", wind: "numeric" },
  },
  {
    file: "flights.parquet",
    label: "delay",
    format: "parquet",
    task: "regression",
    kinds: { date: "datetime", origin: "categorical", destination: "categorical", distance: "numeric" },
  },
];

let dir: string;
beforeAll(async () => {
  dir = await tempDir();
});

/** The first rows of a fixture, read with the ingest reader, as CSV text and as JSON records. */
async function firstRows(path: string, n: number): Promise<{ csv: string; records: Record<string, string | number | null>[]; header: string[] }> {
  let header: string[] = [];
  const rows: CellValue[][] = [];
  const table = await openTable(fileSource(path));
  await table.read({
    header: (names) => (header = names.map((h) => h.trim())),
    row: (values) => {
      if (rows.length < n) rows.push(values);
    },
  });
  const text = (v: CellValue) => (v === null || v === undefined ? "" : v instanceof Date ? v.toISOString() : String(v));
  const field = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const csv = [header.map(field).join(","), ...rows.map((r) => r.map((v) => field(text(v))).join(","))].join("\n") + "\n";
  const records = rows.map((r) =>
    Object.fromEntries(header.map((h, i) => [h, typeof r[i] === "number" ? (r[i] as number) : r[i] === null || r[i] === "" ? null : text(r[i]!)])),
  );
  return { csv, records, header };
}

describe.each(CASES)("$file", (c) => {
  const out = () => join(dir, `out-${c.file}`);
  let report: { buildId: string; dataset: { task: string; schema: TableSchema; classes: string[]; nRows: number } };

  beforeAll(async () => {
    const run = await canopy(["train", fixture(c.file), "--label", c.label, "--trees", "10", "--grove-size", "5", "--json", "--out", out()], dir);
    expect(run.code, run.stderr).toBe(0);
    report = JSON.parse(run.stdout);
  });

  it(`trains: the schema is inferred from the ${c.format} data and stored with the model`, () => {
    const { schema } = report.dataset;
    expect(report.dataset.task).toBe(c.task);
    const kinds = Object.fromEntries(schema.columns.map((col) => [col.name, col.kind]));
    expect(kinds).toMatchObject(c.kinds);
    for (const [name, reason] of Object.entries(c.excluded ?? {})) expect(schema.excluded).toContainEqual({ name, reason });
    expect(schema.label).toBe(c.label);
  });

  it("predicts every row of the same file (any format) through the schema", async () => {
    const run = await canopy(["predict", "--model", out(), fixture(c.file)], dir);
    expect(run.code, run.stderr).toBe(0);
    const lines = csvRows(run.stdout);
    expect(lines).toHaveLength(report.dataset.nRows + 1);
    if (c.task === "classification") for (const [p] of lines.slice(1)) expect(report.dataset.classes).toContain(p);
    else for (const [p] of lines.slice(1)) expect(Number.isFinite(Number(p))).toBe(true);
  });

  it("inspect shows the schema (text and --json)", async () => {
    const json = await canopy(["inspect", out(), "--json"], dir);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout).schema).toEqual(report.dataset.schema);
    const text = await canopy(["inspect", out()], dir);
    expect(text.stdout).toMatch(new RegExp(`^columns +${report.dataset.schema.columns.length} used: `, "m"));
  });

  it("serve answers CSV and JSON records of raw values with the same predictions as canopy predict", async () => {
    const sample = await firstRows(fixture(c.file), 4);
    const path = join(dir, `sample-${c.file}.csv`);
    await writeFile(path, sample.csv);
    const local = await canopy(["predict", "--model", out(), path], dir);
    expect(local.code, local.stderr).toBe(0);
    const expected = csvRows(local.stdout).slice(1).map(([p]) => (c.task === "regression" ? Number(p) : p));
    const server = await serveInBackground(["--model", join(out(), "model.canopy")], dir);
    try {
      const summary = (await (await fetch(server.url)).json()) as { model: { schema: TableSchema } };
      expect(summary.model.schema).toEqual(report.dataset.schema);
      const byCsv = await fetch(`${server.url}/predict`, { method: "POST", headers: { "content-type": "text/csv" }, body: sample.csv });
      expect(byCsv.status).toBe(200);
      expect(((await byCsv.json()) as { predictions: unknown[] }).predictions).toEqual(expected);
      const byJson = await fetch(`${server.url}/predict`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ records: sample.records }),
      });
      expect(byJson.status, await byJson.clone().text()).toBe(200);
      expect(((await byJson.json()) as { predictions: unknown[] }).predictions).toEqual(expected);
    } finally {
      await server.stop();
    }
  });
});

describe("bad tables: one line, exit 2, nothing written", () => {
  async function refused(args: string[], message: RegExp): Promise<void> {
    const own = await tempDir();
    const run = await canopy([...args, "--out", "out"], own);
    expect(run.code, run.stderr).toBe(2);
    const lines = run.stderr.trimEnd().split("\n");
    expect(lines, run.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(await exists(join(own, "out"))).toBe(false);
    expect(await exists(join(own, ".canopy", "packs"))).toBe(false);
    expect(await exists(join(own, ".canopy", "builds"))).toBe(false);
  }

  it("an unknown column in --categorical / --drop, or the label under --numeric", async () => {
    await refused(["train", fixture("penguins.csv"), "--label", "Species", "--categorical", "Isle"], /^canopy: error: --categorical: no column "Isle"; columns are: Species, Island, /);
    await refused(["train", fixture("penguins.csv"), "--label", "Species", "--drop", "Sex,Colour"], /^canopy: error: --drop: no column "Colour"/);
    await refused(["train", fixture("penguins.csv"), "--label", "Species", "--numeric", "Species"], /^canopy: error: --numeric: "Species" is the label column$/);
  });

  it("--numeric on a text column names the row and column", async () => {
    await refused(["train", fixture("penguins.csv"), "--label", "Species", "--numeric", "Island"], /^canopy: error: row 2, column "Island": "Torgersen" is not a number \(--numeric Island\)$/);
  });

  it("a damaged Parquet file, or a file in a format that is not read", async () => {
    const own = await tempDir();
    const parquet = await readFile(fixture("flights.parquet"));
    await writeFile(join(own, "cut.parquet"), parquet.subarray(0, 4096));
    const run = await canopy(["train", "cut.parquet", "--label", "delay"], own);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/^canopy: error: cut\.parquet: not a readable Parquet file \(.+\)\n$/);
    await writeFile(join(own, "book.xlsx"), Buffer.concat([Buffer.from("PK\u0003\u0004"), Buffer.alloc(64, 1)]));
    await refused(["train", join(own, "book.xlsx")], /: the data is a ZIP archive \(an \.xlsx workbook is one\); canopy reads CSV \(UTF-8 text\), gzip-compressed CSV \(\.csv\.gz\) and Parquet$/);
  });
});
