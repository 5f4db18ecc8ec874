// Partitions section (issue 14): one model per entity. The public flights-3m table (vega-datasets@3.2.1, U.S. Bureau
// of Transportation Statistics: public domain; the package BSD-3-Clause), its rows of the 100 busiest origin
// airports, one regression forest of the departure delay per origin (100 trees, min_samples_leaf 50 as the categorical
// section's flights run; features: the departure time's 5 date features, distance, destination as a category).
// Canopy: `canopy train <csv> --label delay --partition-by origin --trees 100 --workers 2 --json`, from dist, in a
// fresh process (wall time and peak RSS, beside the input's size). scikit-learn: a loop over the groups of the same
// rows (numpy's grouping of the same partition column: pandas is not in the bench's venv), one
// RandomForestRegressor(n_estimators=100, min_samples_leaf=50, n_jobs=2) per origin, fit on the same training rows
// and scored on the same held-out rows (each partition's own seeded 25% split, as `canopy train` on that
// partition's rows alone holds out). Target: Canopy ≤ 0.5× the loop's time.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { partitionKey, splitRows } from "@canopy/core";
import { fileSource, openTable } from "@canopy/core/ingest";
import { TableBuilder, type CellValue } from "@canopy/forest";
import { ensureFlights } from "./ingest.ts";
import { check, type Section, type SectionContext, type SectionResult } from "./section.ts";
import { runChild } from "./sklearn.ts";
import type { Table } from "./table.ts";

const BIN = "packages/cli/bin/canopy.mjs";
const SCRIPT = join("bench", "partitions_bench.py");
const TREES = 100;
const MIN_LEAF = 50;
const TEST_FRACTION = 0.25;
const SEED = 0;
const MB = 1024 * 1024;

interface Prepared {
  csv: string;
  caseDir: string;
  partitions: number;
  rows: number;
  csvBytes: number;
}

/** A cell as CSV text (dates as `YYYY-MM-DD HH:MM`, what the categorical and ingest sections write). */
const cellText = (v: CellValue) => (v === null || v === undefined ? "" : v instanceof Date ? v.toISOString().slice(0, 16).replace("T", " ") : String(v));

/**
 * The rows of the `partitions` busiest origins (of the first `limit` rows) as a CSV for Canopy, and the same rows as
 * arrays for Python: X.f64 (row-major, the features `canopy train` reads, origin dropped; destination as its code,
 * which sklearn takes as an ordinal number), y.f64, group.u32 (partition per row) and test.u8 (1: held out by its
 * partition's split, splitRows(partition rows, 0.25, seed 0) over the partition's rows in file order). Written once.
 */
async function prepare(ctx: SectionContext, partitions: number, limit: number): Promise<Prepared> {
  const dir = join(ctx.cacheDir, "partitions", `flights-${partitions}x${limit}`);
  const csv = join(dir, "flights.csv");
  const meta = join(dir, "meta.json");
  if (existsSync(meta)) return { ...(JSON.parse(readFileSync(meta, "utf8")) as Omit<Prepared, "csvBytes">), csvBytes: statSync(csv).size };
  mkdirSync(dir, { recursive: true });
  const parquet = ensureFlights(ctx);
  let header: string[] = [];
  const rows: CellValue[][] = [];
  await (await openTable(fileSource(parquet))).read({
    header: (names) => void (header = names),
    row: (values) => {
      if (rows.length < limit) rows.push(values);
    },
  });
  const at = header.indexOf("origin");
  const counts = new Map<string, number>();
  for (const r of rows) {
    const key = partitionKey(r[at]);
    if (key !== undefined) counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const busiest = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, partitions).map(([k]) => k);
  const index = new Map([...busiest].sort().map((k, i) => [k, i]));
  const kept = rows.filter((r) => index.has(partitionKey(r[at])!));
  ctx.log(`partitions: ${kept.length} rows of the ${busiest.length} busiest origins (of ${rows.length})`);
  const lines = [header.join(","), ...kept.map((r) => r.map(cellText).join(","))];
  writeFileSync(csv, `${lines.join("\n")}\n`);

  // The features as Canopy's table reader types them, over all kept rows (the destination's codes are global here).
  const builder = new TableBuilder({ label: "delay", drop: ["origin"] });
  builder.header(header);
  kept.forEach((r, i) => builder.row(r.map(cellText), i + 2));
  const { dataset } = builder.finish();
  const nf = dataset.columns.length;
  const X = new Float64Array(kept.length * nf);
  for (let f = 0; f < nf; f++) for (let r = 0; r < kept.length; r++) X[r * nf + f] = dataset.columns[f]![r]!;
  const y = dataset.target.task === "regression" ? dataset.target.values : Float64Array.from(dataset.target.codes);
  const group = Uint32Array.from(kept, (r) => index.get(partitionKey(r[at])!)!);
  const test = new Uint8Array(kept.length);
  const members: number[][] = busiest.map(() => []);
  group.forEach((g, r) => members[g]!.push(r));
  for (const m of members) for (const i of splitRows(m.length, TEST_FRACTION, SEED).test) test[m[i]!] = 1;
  const caseDir = join(dir, "arrays");
  mkdirSync(caseDir, { recursive: true });
  writeFileSync(join(caseDir, "X.f64"), new Uint8Array(X.buffer));
  writeFileSync(join(caseDir, "y.f64"), new Uint8Array(y.buffer, y.byteOffset, y.byteLength));
  writeFileSync(join(caseDir, "group.u32"), new Uint8Array(group.buffer));
  writeFileSync(join(caseDir, "test.u8"), test);
  writeFileSync(join(caseDir, "meta.json"), JSON.stringify({ nRows: kept.length, nFeatures: nf, groups: busiest.length, features: dataset.featureNames }));
  const prepared = { csv, caseDir, partitions: busiest.length, rows: kept.length };
  writeFileSync(meta, JSON.stringify(prepared));
  return { ...prepared, csvBytes: statSync(csv).size };
}

interface CanopyRun {
  wallSeconds: number;
  maxRssMb: number;
  /** The run's JSON report as printed (its shape is the training side's). */
  report: Record<string, unknown>;
}

/**
 * `canopy train --partition-by` from dist in a fresh process under GNU time (its %M: the process's peak RSS, worker
 * threads included). Needs the training side of issue 14 (`--partition-by`): before it is merged the CLI refuses the
 * option and this throws its one line.
 */
function canopyRun(ctx: SectionContext, p: Prepared): CanopyRun {
  const root = mkdtempSync(join(ctx.cacheDir, "partitions-run-"));
  const rss = join(root, "rss.txt");
  try {
    const args = ["train", p.csv, "--label", "delay", "--partition-by", "origin", "--trees", String(TREES), "--min-samples-leaf", String(MIN_LEAF)];
    args.push("--seed", String(SEED), "--test-fraction", String(TEST_FRACTION), "--workers", "2", "--root", join(root, "store"), "--json");
    const started = performance.now();
    const run = spawnSync("/usr/bin/time", ["-f", "%M", "-o", rss, process.execPath, BIN, ...args], { encoding: "utf8", env: ctx.env, maxBuffer: 256 * MB });
    const wallSeconds = (performance.now() - started) / 1000;
    if (run.status !== 0) throw new Error(`canopy train --partition-by failed (exit ${run.status}): ${run.stderr.trim().split("\n").pop()}`);
    const maxRssMb = Number(readFileSync(rss, "utf8").trim().split("\n").pop()) / 1024;
    return { wallSeconds, maxRssMb, report: JSON.parse(run.stdout) as Record<string, unknown> };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

interface SklearnRun {
  seconds: number;
  fitSeconds: number;
  maxRssMb: number;
  groups: number;
  /** Per partition: held-out R² and rows. */
  r2: number[];
  rows: number[];
  version: string;
}

/** A number at `path` in the run's JSON, if there is one (the training side's report: its row-weighted R², when it has one). */
function numberAt(json: unknown, path: string[]): number | undefined {
  let at: unknown = json;
  for (const key of path) at = at !== null && typeof at === "object" ? (at as Record<string, unknown>)[key] : undefined;
  return typeof at === "number" ? at : undefined;
}

export const partitionsSection: Section = async (ctx): Promise<SectionResult> => {
  const partitions = ctx.quick ? 20 : 100;
  const limit = ctx.quick ? 300_000 : 3_000_000;
  const p = await prepare(ctx, partitions, limit);
  const label = `flights-3m${ctx.quick ? ", first 300k rows" : ""}: the ${p.partitions} busiest origins, ${p.rows.toLocaleString("en-US")} rows`;

  ctx.log(`partitions: scikit-learn loop over ${p.partitions} groups (n_jobs=2)`);
  const out = await runChild(ctx.python, [SCRIPT, p.caseDir, "--trees", String(TREES), "--min-leaf", String(MIN_LEAF), "--jobs", "2", "--seed", String(SEED)]);
  const sk = JSON.parse(out.trim().split("\n").pop()!) as SklearnRun;
  const skR2 = sk.r2.reduce((a, r, i) => a + r * sk.rows[i]!, 0) / sk.rows.reduce((a, b) => a + b, 0);

  let canopy: CanopyRun | undefined;
  let failure: string | undefined;
  ctx.log(`partitions: canopy train --partition-by origin (2 workers)`);
  try {
    canopy = canopyRun(ctx, p);
  } catch (err) {
    failure = (err as Error).message;
    ctx.log(`partitions: ${failure}`);
  }
  const canopyR2 = canopy ? (numberAt(canopy.report, ["metrics", "r2"]) ?? numberAt(canopy.report, ["aggregate", "r2"])) : undefined;
  const ratio = canopy ? canopy.wallSeconds / sk.seconds : undefined;
  // The run's own clock: from its record (after the input was read and every partition packed) to its completion.
  const created = canopy ? numberAt(canopy.report, ["createdAt"]) : undefined;
  const completed = canopy ? numberAt(canopy.report, ["completedAt"]) : undefined;
  const trainSeconds = created !== undefined && completed !== undefined ? (completed - created) / 1000 : undefined;
  const inputMb = p.csvBytes / MB;

  const tables: Table[] = [
    {
      title: `Per-entity models: ${label}, one regression forest per origin (${TREES} trees, min_samples_leaf ${MIN_LEAF}), 2 workers / n_jobs=2`,
      headers: ["run", "wall s", "peak RSS MB", "held-out R² (row-weighted)"],
      rows: [
        [
          "canopy train --partition-by origin --workers 2 (read, pack per partition, train, merge, evaluate)",
          canopy ? canopy.wallSeconds.toFixed(1) : "not run",
          canopy ? canopy.maxRssMb.toFixed(0) : "-",
          canopyR2 !== undefined ? canopyR2.toFixed(4) : "-",
        ],
        ...(canopy && trainSeconds !== undefined
          ? [
              ["  of which: start, read the CSV once, pack each partition", (canopy.wallSeconds - trainSeconds).toFixed(1), "-", "-"],
              ["  of which: train, merge and evaluate every partition (the run's record, created to completed)", trainSeconds.toFixed(1), "-", "-"],
            ]
          : []),
        [`sklearn ${sk.version}: a loop over the ${sk.groups} groups, RandomForestRegressor(n_jobs=2) each (fit + score)`, sk.seconds.toFixed(1), sk.maxRssMb.toFixed(0), skR2.toFixed(4)],
      ],
      notes: [
        `Input: ${p.csv.split("/").pop()} ${inputMb.toFixed(1)} MB of CSV (the Parquet's rows of these origins). Canopy's time is the whole CLI run in a fresh process; sklearn's is the loop alone on arrays already in memory (its RSS includes them; loading them took no time counted).`,
        "The same rows, partitions and held-out rows on both sides; sklearn reads the destination's codes as ordinal numbers (as in the categorical section), Canopy splits it into sets of categories.",
        ...(failure ? [`Canopy not run: ${failure}`] : []),
      ],
    },
  ];
  const quick = ctx.quick ? ` [quick run: ${p.partitions} partitions of the first 300k rows]` : "";
  return {
    title: "Per-entity models (--partition-by, issue 14)",
    tables,
    targets: [
      check(
        `${p.partitions} partitions of flights-3m, 100 trees each: canopy train --partition-by on 2 workers ≤ 0.5× a scikit-learn loop over groupby with RandomForestRegressor(n_jobs=2)`,
        canopy ? `${ratio!.toFixed(2)}× (${canopy.wallSeconds.toFixed(1)} s vs ${sk.seconds.toFixed(1)} s)${quick}` : `not measured: ${failure}`,
        canopy && !ctx.quick ? ratio! <= 0.5 : undefined,
      ),
      check(
        "peak memory of the embedded run vs the input size (reported, no target)",
        canopy ? `${canopy.maxRssMb.toFixed(0)} MB peak RSS for ${inputMb.toFixed(1)} MB of CSV (${(canopy.maxRssMb / inputMb).toFixed(1)}×)${quick}` : "not measured",
        undefined,
      ),
    ],
    raw: { partitions: p.partitions, rows: p.rows, csvBytes: p.csvBytes, canopy: canopy ? { wallSeconds: canopy.wallSeconds, trainSeconds, maxRssMb: canopy.maxRssMb, r2: canopyR2 } : { failure }, sklearn: { ...sk, r2Weighted: skR2 } },
  };
};
