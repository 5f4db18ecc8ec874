// Issue 9 (items 1, 2, 5, 6) end to end, through the real CLI and HTTP server: damaged models, groves and packs
// are refused by name; 1 and 1.0 are one class; control characters never reach the terminal; binary files and
// invalid UTF-8 are refused in one line; "?" is missing in labels and features alike. A refused command leaves
// the store and --out exactly as they were.
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import { serveInBackground } from "../serving/support.ts";
import { canopy, exists, fixture, interruptedBuild, refused, snapshot, tempDir } from "./support.ts";

const IRIS = fixture("iris.csv");

let dir: string;
let irisBuild: string;

/**
 * Runs a command that must be refused in `dir` (which holds a finished build in .canopy) with `--out out` when it
 * trains; the store and out/ must hold exactly what they held before.
 */
async function refusedLeavingStore(args: string[]): Promise<string> {
  const before = await snapshot(dir);
  const line = refused(await canopy(args, dir));
  expect(await snapshot(dir)).toEqual(before);
  expect(await exists(join(dir, "out"))).toBe(false);
  return line;
}

beforeAll(async () => {
  dir = await tempDir();
  const run = await canopy(["train", IRIS, "--trees", "6", "--grove-size", "3", "--seed", "1", "--json"], dir);
  expect(run.code, run.stderr).toBe(0);
  irisBuild = (JSON.parse(run.stdout) as { buildId: string }).buildId;
});

/** Offset of the first tree's first threshold (a float64) in a binary model of either version. */
function firstThreshold(model: Uint8Array): number {
  const view = new DataView(model.buffer, model.byteOffset, model.byteLength);
  const preamble = view.getUint32(8, true) === 1 ? 16 : 24;
  return Math.ceil((preamble + view.getUint32(12, true)) / 8) * 8;
}

/** The model with its first threshold's sign and exponent byte changed: it still parses, but predicts otherwise. */
function withDamagedThreshold(model: Uint8Array): Uint8Array {
  const bad = model.slice();
  bad[firstThreshold(bad) + 7] ^= 0xc0;
  return bad;
}

describe("issue 9.1: a damaged model, grove or pack is refused, naming it", () => {
  it("predict and inspect refuse a damaged model file in one line naming the file (exit 2)", async () => {
    const model = await readFile(join(dir, ".canopy", "builds", irisBuild, "model.canopy"));
    await writeFile(join(dir, "damaged.canopy"), withDamagedThreshold(model));
    const predict = refused(await canopy(["predict", "--model", "damaged.canopy", IRIS], dir));
    expect(predict).toMatch(/^canopy: error: damaged\.canopy: corrupt model: checksum mismatch \(CRC-32 0x[0-9a-f]{8}, recorded 0x[0-9a-f]{8}\): the file is damaged$/);
    expect(refused(await canopy(["inspect", "damaged.canopy"], dir))).toBe(predict);
  });

  it("serve answers 500 naming the model for a damaged model, and keeps serving the others", async () => {
    const other = await canopy(["train", IRIS, "--trees", "4", "--grove-size", "2", "--seed", "2", "--json"], dir);
    const damagedBuild = (JSON.parse(other.stdout) as { buildId: string }).buildId;
    const path = join(dir, ".canopy", "builds", damagedBuild, "model.canopy");
    await writeFile(path, withDamagedThreshold(await readFile(path)));
    const server = await serveInBackground(["--model", irisBuild], dir);
    try {
      const csv = "sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n";
      const ask = (query: string) => fetch(`${server.url}/predict${query}`, { method: "POST", headers: { "content-type": "text/csv" }, body: csv });
      const bad = await ask(`?model=${damagedBuild}&proba=1`);
      expect(bad.status).toBe(500);
      const body = (await bad.json()) as { error: string };
      expect(body.error).toMatch(new RegExp(`^model ${damagedBuild} cannot be loaded: FormatError: corrupt model: checksum mismatch`));
      expect(body.error).not.toContain("\n");
      const good = await ask("?proba=1");
      expect(good.status).toBe(200);
      expect(((await good.json()) as { predictions: string[] }).predictions).toEqual(["setosa", "virginica"]);
    } finally {
      await server.stop();
    }
  });

  it("a damaged grove in the store fails the build on --resume, naming the grove; no model is written", async () => {
    const { cwd, buildId } = await interruptedBuild();
    const groves = join(cwd, ".canopy", "builds", buildId, "groves");
    // A grove the ledger counts as landed (a trainer holds two, so a written file may not have landed yet, and would be
    // trained again on resume).
    const record = JSON.parse(await readFile(join(cwd, ".canopy", "ledger", `${buildId}.json`), "utf8")) as { landed: number[] };
    const grove = record.landed[0]!;
    const first = `${String(grove).padStart(5, "0")}.grove`;
    await writeFile(join(groves, first), withDamagedThreshold(await readFile(join(groves, first))));
    const run = await canopy(["train", "--resume", buildId, "--out", "out"], cwd);
    expect(run.code, run.stderr).toBe(1);
    const last = run.stderr.trimEnd().split("\n").at(-1)!;
    // The digest its trainer recorded at landing catches it before the format's own checksum would.
    expect(last).toMatch(
      new RegExp(
        `^canopy: error: build ${buildId} failed: aggregation failed: AggregationError: grove ${grove} \\(builds/${buildId}/groves/${first.replace(".", "\\.")}\\) ` +
          "is not the grove that landed: its SHA-256 is [0-9a-f]{12}\\.\\.\\., the trainer recorded [0-9a-f]{12}\\.\\.\\.$",
      ),
    );
    expect(await exists(join(cwd, ".canopy", "builds", buildId, "model.canopy"))).toBe(false);
    expect(await exists(join(cwd, "out"))).toBe(false);
  });

  it("a damaged pack in the store is refused on --resume in one line naming its key; nothing else changes", async () => {
    const { cwd, buildId } = await interruptedBuild();
    const packs = join(cwd, ".canopy", "packs");
    const [pack] = await readdir(packs);
    const original = await readFile(join(packs, pack!));
    const key = `packs/${pack!}`.replace(/\./g, "\\.");
    // One bin of the last row (the pack still decodes, its hash gives it away), then one byte of its header.
    const cases: [number, RegExp][] = [
      [original.length - 1, new RegExp(`^canopy: error: dataset pack ${key} is damaged: it has hash [0-9a-f]{64} \\(the SHA-256 of its bytes\\), expected ${pack!.slice(0, 64)}$`)],
      [17, new RegExp(`^canopy: error: dataset pack ${key} is damaged: dataset pack header is corrupt$`)],
    ];
    for (const [at, message] of cases) {
      const bytes = original.slice();
      bytes[at] ^= 1;
      await writeFile(join(packs, pack!), bytes);
      const before = await snapshot(cwd);
      expect(refused(await canopy(["train", "--resume", buildId], cwd))).toMatch(message);
      expect(await snapshot(cwd)).toEqual(before);
    }
  });
});

describe("issue 9.2: numeric labels are compared as numbers", () => {
  it("iris with species spelled 0/0.0, 1/1.0, 2/2.0 trains 3 classes named 0, 1, 2", async () => {
    const text = await readFile(IRIS, "utf8");
    const [header, ...rows] = text.trimEnd().split(/\r?\n/);
    const code = { setosa: 0, versicolor: 1, virginica: 2 } as Record<string, number>;
    const mixed = rows.map((row, i) => {
      const cells = row.split(",");
      const c = code[cells[4]!]!;
      return [...cells.slice(0, 4), i % 2 === 0 ? String(c) : `${c}.0`].join(",");
    });
    await writeFile(join(dir, "iris-mixed.csv"), `${header}\n${mixed.join("\n")}\n`);
    const run = await canopy(["train", "iris-mixed.csv", "--trees", "20", "--grove-size", "10", "--json"], dir);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as { buildId: string; dataset: { classes: string[] }; metrics: { accuracy: number } };
    expect(report.dataset.classes).toEqual(["0", "1", "2"]);
    expect(report.metrics.accuracy).toBeGreaterThan(0.9);
    const predicted = await canopy(["predict", "--model", report.buildId, "iris-mixed.csv"], dir);
    expect(predicted.code, predicted.stderr).toBe(0);
    expect(new Set(predicted.stdout.trimEnd().split("\n").slice(1))).toEqual(new Set(["0", "1", "2"]));
  });
});

describe("issue 9.5: nothing from the input reaches the terminal raw; binary files are refused in one line", () => {
  const ESC = "\u001b";

  it("an ANSI escape in a column name is printed escaped in errors", async () => {
    await writeFile(join(dir, "ansi.csv"), `a,${ESC}[2J${ESC}[Hb,y\n1,2,x\n3,four,y\n`);
    // Text in a column makes it categorical; read as numbers (--numeric), the cell is an error naming the column.
    const line = await refusedLeavingStore(["train", "ansi.csv", "--numeric", `${ESC}[2J${ESC}[Hb`, "--out", "out"]);
    expect(line).toBe('canopy: error: row 3, column "\\x1b[2J\\x1b[Hb": "four" is not a number (--numeric \\x1b[2J\\x1b[Hb)');
    const unknown = await refusedLeavingStore(["train", "ansi.csv", "--label", `${ESC}]0;pwned${ESC}\\`, "--out", "out"]);
    expect(unknown).toMatch(/^canopy: error: label column "\\x1b\]0;pwned\\x1b\\\\" not found; columns are: a, \\x1b\[2J\\x1b\[Hb, y$/);
  });

  it("a model trained on such names prints them escaped in the summary and in inspect", async () => {
    const own = await tempDir();
    const rows = Array.from({ length: 40 }, (_, i) => `${i % 7},${(i * 3) % 5},${i % 2 ? "yes" : "no"}`);
    await writeFile(join(own, "names.csv"), `plain,${ESC}[31mred\u009b1m,${ESC}[2Jlabel\n${rows.join("\n")}\n`);
    const train = await canopy(["train", "names.csv", "--trees", "4", "--grove-size", "2", "--out", "out"], own);
    expect(train.code, train.stderr).toBe(0);
    expect(train.stdout + train.stderr).not.toMatch(/[\u001b\u009b]/);
    expect(train.stdout).toContain('label "\\x1b[2Jlabel"');
    const inspect = await canopy(["inspect", "out"], own);
    expect(inspect.code).toBe(0);
    expect(inspect.stdout).not.toMatch(/[\u001b\u009b]/);
    expect(inspect.stdout).toContain("\\x1b[31mred\\x9b1m");
    expect(inspect.stdout).toContain("label     \\x1b[2Jlabel");
  });

  const READ = "canopy reads CSV \\(UTF-8 text\\), gzip-compressed CSV \\(\\.csv\\.gz\\) and Parquet$";
  it.each<[string, () => Uint8Array, RegExp]>([
    ["an .xlsx (ZIP)", () => Buffer.concat([Buffer.from("PK\u0003\u0004"), Buffer.alloc(60, 7)]), new RegExp(`^canopy: error: data\\.bin: the data is a ZIP archive \\(an \\.xlsx workbook is one\\); ${READ}`)],
    ["random binary bytes", () => Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 256), new RegExp(`^canopy: error: data\\.bin: the data is binary data \\(it holds NUL bytes\\); ${READ}`)],
    ["a model file", () => new Uint8Array(0), new RegExp(`^canopy: error: data\\.bin: the data is a Canopy model; ${READ}`)],
  ])("%s given as data is refused in one line naming the file, by train and by predict", async (name, make, message) => {
    const bytes = name === "a model file" ? await readFile(join(dir, ".canopy", "builds", irisBuild, "model.canopy")) : make();
    await writeFile(join(dir, "data.bin"), bytes);
    expect(await refusedLeavingStore(["train", "data.bin", "--out", "out"])).toMatch(message);
    expect(await refusedLeavingStore(["predict", "--model", irisBuild, "data.bin"])).toMatch(message);
  });

  it("a .csv.gz is read (by its content, whatever its name), for training and prediction", async () => {
    const own = await tempDir();
    await writeFile(join(own, "iris.data"), gzipSync(await readFile(IRIS)));
    const run = await canopy(["train", "iris.data", "--trees", "4", "--grove-size", "2", "--json"], own);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).dataset.classes).toEqual(["setosa", "versicolor", "virginica"]);
    const predicted = await canopy(["predict", "--model", JSON.parse(run.stdout).buildId, "iris.data"], own);
    expect(predicted.code, predicted.stderr).toBe(0);
    expect(predicted.stdout.trimEnd().split("\n")).toHaveLength(151);
  });
  it.each<[string, (gz: Buffer) => Buffer]>([
    ["an unknown compression method", (gz) => Buffer.concat([gz.subarray(0, 2), Buffer.from([0x07]), gz.subarray(3)])],
    ["a byte changed in the compressed data", (gz) => Buffer.concat([gz.subarray(0, 100), Buffer.from([gz[100]! ^ 0xff]), gz.subarray(101)])],
    ["a wrong checksum at the end", (gz) => Buffer.concat([gz.subarray(0, gz.length - 8), Buffer.from([gz[gz.length - 8]! ^ 0xff]), gz.subarray(gz.length - 7)])],
    ["cut short", (gz) => gz.subarray(0, Math.floor(gz.length / 2))],
  ])("a damaged .csv.gz (%s) is refused in one line naming the file, by train and by predict", async (_, damage) => {
    await writeFile(join(dir, "damaged.csv.gz"), damage(gzipSync(await readFile(IRIS))));
    const message = /^canopy: error: damaged\.csv\.gz: the gzip data is damaged \([^)]+\)$/;
    expect(await refusedLeavingStore(["train", "damaged.csv.gz", "--out", "out"])).toMatch(message);
    expect(await refusedLeavingStore(["predict", "--model", irisBuild, "damaged.csv.gz"])).toMatch(message);
  });
});

describe("issue 9.6: one rule for labels and features; invalid UTF-8 is refused with the row and column", () => {
  it('"?" is a missing value: a missing label is refused with its row, a missing feature cell is trained on', async () => {
    const text = (await readFile(IRIS, "utf8")).trimEnd().split(/\r?\n/);
    const withLabel = [...text];
    withLabel[7] = withLabel[7]!.replace(/,[a-z]+$/, ",?");
    await writeFile(join(dir, "label-q.csv"), `${withLabel.join("\n")}\n`);
    expect(await refusedLeavingStore(["train", "label-q.csv", "--out", "out"])).toBe('canopy: error: row 8, column "species": the label is missing');

    const withFeature = [...text];
    withFeature[7] = withFeature[7]!.replace(/^[^,]+,/, "?,");
    await writeFile(join(dir, "feature-q.csv"), `${withFeature.join("\n")}\n`);
    const run = await canopy(["train", "feature-q.csv", "--trees", "4", "--grove-size", "2", "--json"], dir);
    expect(run.code, run.stderr).toBe(0);
    expect((JSON.parse(run.stdout) as { dataset: { classes: string[] } }).dataset.classes).toEqual(["setosa", "versicolor", "virginica"]);
  });

  it("a latin-1 header or cell is refused naming the row and column", async () => {
    const latin1 = (text: string) => Buffer.from(text, "latin1");
    await writeFile(join(dir, "latin1-header.csv"), latin1("size,caf\u00e9,y\n1,2,x\n3,4,y\n"));
    expect(await refusedLeavingStore(["train", "latin1-header.csv", "--out", "out"])).toBe(
      "canopy: error: row 1, column 2: invalid UTF-8 (byte 0xE9); canopy reads UTF-8 text: save the file as UTF-8",
    );
    await writeFile(join(dir, "latin1-cell.csv"), latin1("size,city\n1,Paris\n2,S\u00e3o Paulo\n3,Paris\n"));
    expect(await refusedLeavingStore(["train", "latin1-cell.csv", "--out", "out"])).toBe(
      'canopy: error: row 3, column "city": invalid UTF-8 (byte 0xE3); canopy reads UTF-8 text: save the file as UTF-8',
    );
  });
});
