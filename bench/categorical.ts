// Categorical section (issue 12): Canopy's categorical set splits against scikit-learn's RandomForest on ordinal
// codes and LightGBM's random-forest mode with native categoricals, 100 trees each on the same splits of public
// tables with categorical columns; then the 3-million-row flights table (two ~300-value string columns and a
// timestamp, Parquet) trained by the embedded pipeline on 2 workers, beside both on the same split: wall time and
// peak RSS. Every engine reads the same typed columns: Canopy's table reader writes them for Python.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { splitRows } from "@canopy/core";
import { fileSource, openTable } from "@canopy/core/ingest";
import { buildPack, evaluate, fitForest, TableBuilder, type Dataset } from "@canopy/forest";
import { ensureFlights, writeCsv } from "./ingest.ts";
import { check, type Section, type SectionContext, type TargetCheck } from "./section.ts";
import { runChild } from "./sklearn.ts";
import { ensurePythonPackage } from "./setup.ts";
import type { Table } from "./table.ts";

const SCRIPT = join("bench", "categorical_bench.py");
const TREES = 100;
const MB = 1024 * 1024;

interface Case {
  id: string;
  label: string;
  file: string;
  target: string;
  /** Read only the first rows of the file. */
  limit?: number;
  splits: number;
}

interface EngineRun {
  engine: string;
  metrics: number[];
  fitSeconds: number;
  maxRssMb?: number;
  version?: string;
}

/** The table through Canopy's reader (schema inferred as `canopy train` does), at most `limit` rows. */
async function readTable(file: string, label: string, limit = Infinity): Promise<Dataset> {
  const builder = new TableBuilder({ label });
  const table = await openTable(fileSource(file));
  let n = 0;
  await table.read({
    header: (names) => builder.header(names),
    row: (values, row) => {
      if (n++ < limit) builder.row(values, row);
    },
  });
  return builder.finish().dataset;
}

/** The dataset row-major as float64 (codes for categories, NaN missing), its target, and each split's rows. */
function writeCase(dir: string, ds: Dataset, splits: { train: Uint32Array; test: Uint32Array }[]): void {
  mkdirSync(dir, { recursive: true });
  const { nRows, columns } = ds;
  const nf = columns.length;
  const X = new Float64Array(nRows * nf);
  for (let f = 0; f < nf; f++) for (let r = 0; r < nRows; r++) X[r * nf + f] = columns[f][r];
  writeFileSync(join(dir, "X.f64"), new Uint8Array(X.buffer));
  const y = ds.target.task === "classification" ? Float64Array.from(ds.target.codes) : ds.target.values;
  writeFileSync(join(dir, "y.f64"), new Uint8Array(y.buffer, y.byteOffset, y.byteLength));
  splits.forEach((s, k) => {
    writeFileSync(join(dir, `train-${k}.u32`), new Uint8Array(s.train.buffer, s.train.byteOffset, s.train.byteLength));
    writeFileSync(join(dir, `test-${k}.u32`), new Uint8Array(s.test.buffer, s.test.byteOffset, s.test.byteLength));
  });
  const categorical = (ds.features ?? []).flatMap((f, i) => (f.kind === "categorical" ? [i] : []));
  const meta = { nRows, nFeatures: nf, task: ds.target.task, categorical, splits: splits.length, features: ds.featureNames };
  writeFileSync(join(dir, "meta.json"), JSON.stringify(meta, null, 2));
}

async function python(ctx: SectionContext, dir: string, engine: string, jobs: number, minLeaf: number): Promise<EngineRun> {
  const out = await runChild(ctx.python, [SCRIPT, dir, "--engine", engine, "--trees", String(TREES), "--jobs", String(jobs), "--min-leaf", String(minLeaf)]);
  const j = JSON.parse(out.trim().split("\n").pop()!);
  const results = j.results as { metric: number; fitSeconds: number }[];
  return { engine, metrics: results.map((r) => r.metric), fitSeconds: results.reduce((a, r) => a + r.fitSeconds, 0) / results.length, maxRssMb: j.maxRssMb, version: j.version };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Accuracy of the three engines on one table, averaged over `splits` seeded 75/25 splits (seed k: split k). */
async function accuracyCase(ctx: SectionContext, c: Case): Promise<{ c: Case; task: string; runs: EngineRun[]; nRows: number; categorical: number }> {
  ctx.log(`categorical: ${c.label}`);
  const ds = await readTable(c.file, c.target, c.limit);
  const splits = Array.from({ length: c.splits }, (_, k) => splitRows(ds.nRows, 0.25, k));
  const dir = join(ctx.cacheDir, "categorical", c.id);
  writeCase(dir, ds, splits);
  const pack = buildPack(ds);
  const metrics: number[] = [];
  let seconds = 0;
  splits.forEach((s, k) => {
    const t0 = performance.now();
    const forest = fitForest(pack, { n_estimators: TREES, random_state: k }, { rows: s.train });
    seconds += (performance.now() - t0) / 1000;
    const m = evaluate(forest, pack, s.test);
    metrics.push(m.task === "classification" ? m.accuracy : m.r2);
  });
  const runs: EngineRun[] = [{ engine: "canopy", metrics, fitSeconds: seconds / splits.length }];
  for (const engine of ["sklearn", "lightgbm"]) runs.push(await python(ctx, dir, engine, 1, 1));
  const categorical = (ds.features ?? []).filter((f) => f.kind === "categorical").length;
  return { c, task: ds.target.task, runs, nRows: ds.nRows, categorical };
}

/** The embedded pipeline in a fresh process (2 workers): its wall time, peak RSS and R². */
function pipelineRun(ctx: SectionContext, file: string, minLeaf: number): { wallSeconds: number; maxRssMb: number; r2: number; buildId: string } {
  const run = spawnSync(process.execPath, ["--import", "tsx", "bench/categorical-child.ts", file, "delay", String(TREES), String(minLeaf)], {
    encoding: "utf8",
    env: ctx.env,
    maxBuffer: 16 * MB,
  });
  if (run.status !== 0) throw new Error(`embedded pipeline on ${file} failed: ${run.stderr.trim().split("\n").pop()}`);
  return JSON.parse(run.stdout.trim().split("\n").pop()!);
}

export const categoricalSection: Section = async (ctx) => {
  ensurePythonPackage(ctx.python, "lightgbm", ctx.log);
  const flights = ensureFlights(ctx);
  const cases: Case[] = [
    { id: "penguins", label: "penguins (species; island, sex)", file: "test/fixtures/penguins.csv", target: "Species", splits: 5 },
    { id: "birdstrikes", label: "birdstrikes (phase of flight; airport, operator, ...)", file: "test/fixtures/birdstrikes.csv", target: "Phase of flight", splits: 5 },
    { id: "movies", label: "movies (budget; distributor, genre, rating, ...)", file: "test/fixtures/movies.csv", target: "Production Budget", splits: 5 },
    { id: "flights-200k", label: "flights, first 200k rows (delay; origin, destination)", file: flights, target: "delay", limit: ctx.quick ? 50_000 : 200_000, splits: 1 },
  ];
  const done = [];
  for (const c of cases) done.push(await accuracyCase(ctx, c));

  const targets: TargetCheck[] = [];
  const rows: string[][] = [];
  for (const { c, task, runs, nRows, categorical } of done) {
    const [canopy, sk, lgb] = runs.map((r) => mean(r.metrics));
    const better = Math.max(sk, lgb);
    for (const r of runs) {
      rows.push([c.id, `${nRows}`, `${categorical}`, task === "classification" ? "accuracy" : "R²", r.engine, mean(r.metrics).toFixed(4), r.metrics.map((m) => m.toFixed(3)).join(" "), r.fitSeconds.toFixed(2)]);
    }
    targets.push(check(`${c.id}: Canopy within 0.01 of the better of sklearn (ordinal) and LightGBM-rf, or better`, `${canopy.toFixed(4)} vs ${better.toFixed(4)} (sklearn ${sk.toFixed(4)}, LightGBM ${lgb.toFixed(4)})`, canopy >= better - 0.01));
  }
  const accuracy: Table = {
    title: `Categorical columns: ${TREES}-tree forests, mean over seeded 75/25 splits (split k trains with seed k), one thread`,
    headers: ["table", "rows", "categorical", "metric", "engine", "mean", "per split", "fit s"],
    rows,
    notes: [
      "canopy: categorical features split into two sets of categories (defaults: max_features sqrt / all, fully grown trees).",
      "sklearn: RandomForestClassifier/Regressor on the category codes as ordinal numbers (OrdinalEncoder with categories by frequency), NaN native.",
      "LightGBM: boosting_type=rf with the categorical features declared, bagging_fraction 0.632 / bagging_freq 1, feature_fraction as max_features, num_leaves = training rows / min_child_samples (at most 4095), min_child_samples 1 (50 on the 3M table), histogram_pool_size 512 MB, other parameters default (so categorical splits as LightGBM configures them: max_cat_threshold 32, cat_smooth 10, min_data_per_group 100).",
    ],
  };

  // The 3M-row flights table: the embedded pipeline on 2 workers against both engines with 2 threads, one split.
  const big = ctx.quick ? 300_000 : 3_000_000;
  const minLeaf = 50;
  ctx.log(`categorical: flights ${big} rows, embedded pipeline (2 workers)`);
  let file = flights;
  if (big < 3_000_000) {
    file = join(ctx.cacheDir, `flights-${big}.csv`);
    await writeCsv(flights, file, big, false);
  }
  const pipe = pipelineRun(ctx, file, minLeaf);
  const ds = await readTable(file, "delay");
  const split = splitRows(ds.nRows, 0.25, 0);
  const dir = join(ctx.cacheDir, "categorical", `flights-${big}`);
  writeCase(dir, ds, [split]);
  const others: EngineRun[] = [];
  for (const engine of ["lightgbm", "sklearn"]) {
    ctx.log(`categorical: flights ${big} rows, ${engine} (2 threads)`);
    others.push(await python(ctx, dir, engine, 2, minLeaf));
  }
  const wall: Table = {
    title: `Flights, ${big.toLocaleString("en-US")} rows (date with time → 5 features, distance, origin and destination as categories; label delay), ${TREES} trees, min_samples_leaf ${minLeaf}, 2 workers / threads, one 75/25 split`,
    headers: ["engine", "wall s", "peak RSS MB", "R²"],
    rows: [
      ["canopy (embedded pipeline: read, pack, train, merge, evaluate)", pipe.wallSeconds.toFixed(1), pipe.maxRssMb.toFixed(0), pipe.r2.toFixed(4)],
      ...others.map((r) => [`${r.engine} ${r.version} (fit only)`, r.fitSeconds.toFixed(1), (r.maxRssMb ?? 0).toFixed(0), r.metrics[0].toFixed(4)]),
    ],
    notes: [
      "Canopy's wall time is the whole `canopy train` run in a fresh process (Parquet read, typing, binning, training, merging, evaluating); the others' is fit alone on arrays already in memory, their RSS includes those arrays.",
    ],
  };
  return {
    title: "Categorical splits (issue 12)",
    tables: [accuracy, wall],
    targets,
    raw: { cases: done.map((d) => ({ id: d.c.id, task: d.task, runs: d.runs })), flights: { rows: big, minLeaf, canopy: pipe, others } },
  };
};
