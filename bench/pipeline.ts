// The embedded pipeline (issue: "The pipeline, embedded") against scikit-learn with two cores, on FM 60k:
// the whole fan-out / fan-in build (planner, grove tasks, trainer threads, ledger, aggregation) with 2 workers
// vs RandomForestClassifier(n_jobs=2); 1 → 2 workers throughput; and the pipeline's overhead over engine-only
// training on one thread. Both sides train on the same rows: the pipeline's own seeded split is handed to sklearn.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { keys, splitRows } from "@canopy/core";
import { decodePack, evaluate, fitForest, rowMajorBins } from "@canopy/forest";
import { createLocalRuntime, type BuildOutcome } from "@canopy/runtime-local";
import { fingerprint, loadFashionMnist, writeCaseFiles, type BenchCase, type Part } from "./data.ts";
import { check, type Section, type SectionContext, type SectionResult } from "./section.ts";
import { runSklearn } from "./sklearn.ts";
import type { Table } from "./table.ts";

const SEED = 0;

interface PipelineRun {
  workers: number;
  /** Train wall (first grove started → last landed) + loading and merging the groves: sklearn's fit. */
  buildSeconds: number;
  prepareSeconds: number;
  evaluateSeconds: number;
  treesPerSecond: number;
  accuracy: number;
  parallelism: number;
}

/** The train and test images as one CSV (label last), written once into the cache. */
export function writeCsv(c: BenchCase, path: string): void {
  const all: Part[] = [c.train, c.test];
  const rows = c.train.nRows + c.test.nRows;
  if (existsSync(path) && statSync(path).size > rows * c.nFeatures) return;
  const chunks: string[] = [[...c.featureNames, c.labelName].join(",")];
  for (const part of all) {
    for (let r = 0; r < part.nRows; r++) {
      chunks.push(`${Array.from(part.X.subarray(r * c.nFeatures, (r + 1) * c.nFeatures)).join(",")},${part.y[r]}`);
    }
  }
  writeFileSync(path, chunks.join("\n") + "\n");
}

/** The same split the pipeline plans (core's splitRows), as a case sklearn can read. */
function caseForSplit(c: BenchCase, testFraction: number): BenchCase {
  const n = c.train.nRows + c.test.nRows;
  const F = c.nFeatures;
  const X = new Uint8Array(n * F);
  X.set(c.train.X);
  X.set(c.test.X, c.train.X.length);
  const y = new Uint8Array(n);
  y.set(c.train.y);
  y.set(c.test.y, c.train.nRows);
  const split = splitRows(n, testFraction, SEED);
  const part = (rows: Uint32Array): Part => {
    const px = new Uint8Array(rows.length * F);
    const py = new Uint8Array(rows.length);
    rows.forEach((r, i) => {
      px.set(X.subarray(r * F, (r + 1) * F), i * F);
      py[i] = y[r];
    });
    return { nRows: rows.length, X: px, y: py };
  };
  return { ...c, id: `${c.id}-pipeline-split`, train: part(split.train), test: part(split.test) };
}

async function runPipeline(csv: string, workers: number, trees: number, testFraction: number, ctx: SectionContext): Promise<{ run: PipelineRun; root: string; outcome: BuildOutcome }> {
  const root = mkdtempSync(join(ctx.cacheDir, `pipeline-${workers}w-`));
  const runtime = createLocalRuntime({ root, workers, onNotify: () => {}, onWarning: ctx.log });
  try {
    const outcome = await runtime.train({ dataset: csv, label: "label", n_estimators: trees, grove_size: 10, seed: SEED, test_fraction: testFraction });
    if (outcome.status !== "COMPLETED") throw new Error(`pipeline build failed: ${outcome.reason}`);
    const t = outcome.report.timings;
    const metrics = outcome.report.metrics;
    const run: PipelineRun = {
      workers,
      buildSeconds: (t.trainWallMs + t.loadGrovesMs + t.mergeMs) / 1000,
      prepareSeconds: (t.prepareMs ?? 0) / 1000,
      evaluateSeconds: t.evaluateMs / 1000,
      treesPerSecond: t.treesPerSecond,
      accuracy: metrics && metrics.task === "classification" ? metrics.accuracy : NaN,
      parallelism: t.parallelism,
    };
    ctx.log(`pipeline, ${workers} worker(s): build ${run.buildSeconds.toFixed(2)} s, ${run.treesPerSecond.toFixed(2)} trees/s, accuracy ${run.accuracy.toFixed(4)}`);
    return { run, root, outcome };
  } finally {
    await runtime.close();
  }
}

export const pipelineSection: Section = async (ctx): Promise<SectionResult> => {
  const nTrain = ctx.quick ? 5000 : 60000;
  const trees = ctx.quick ? 20 : 100;
  const fm = loadFashionMnist(nTrain);
  const total = fm.train.nRows + fm.test.nRows;
  // Hold out exactly the 10k test images' worth of rows (ceil(total × f) = 10000).
  const testFraction = (fm.test.nRows - 0.5) / total;
  const csv = join(ctx.cacheDir, `${fm.id}-with-test.csv`);
  ctx.log(`pipeline: writing ${csv}`);
  writeCsv(fm, csv);

  const two = await runPipeline(csv, 2, trees, testFraction, ctx);
  const one = await runPipeline(csv, 1, trees, testFraction, ctx);

  // Engine only, one thread, same pack and training rows: what the pipeline adds on top of training.
  const report = one.outcome.status === "COMPLETED" ? one.outcome.report : undefined;
  const pack = decodePack(new Uint8Array(readFileSync(join(one.root, keys.pack(report!.dataset.packHash)))));
  const split = splitRows(pack.nRows, testFraction, SEED);
  rowMajorBins(pack); // the pipeline makes this copy while preparing, outside its build time
  const t0 = performance.now();
  const forest = fitForest(pack, { n_estimators: trees, random_state: SEED }, { rows: split.train });
  const engineSeconds = (performance.now() - t0) / 1000;
  const engineMetrics = evaluate(forest, pack, split.test);
  const engineAccuracy = engineMetrics.task === "classification" ? engineMetrics.accuracy : NaN;
  ctx.log(`engine only, one thread: ${engineSeconds.toFixed(2)} s`);
  for (const r of [one.root, two.root]) rmSync(r, { recursive: true, force: true });

  const skCase = caseForSplit(fm, testFraction);
  const caseDir = writeCaseFiles(skCase, ctx.cacheDir);
  const sk = await runSklearn(ctx.python, caseDir, skCase.id, fingerprint(skCase), { trees, seed: SEED, predictRepeats: 1, jobs: 2 });
  ctx.log(`sklearn n_jobs=2: fit ${sk.fitSeconds!.toFixed(2)} s, accuracy ${sk.accuracy!.toFixed(4)}`);

  const ratio = two.run.buildSeconds / sk.fitSeconds!;
  const scaling = two.run.treesPerSecond / one.run.treesPerSecond;
  const overhead = one.run.buildSeconds / engineSeconds;
  const label = `${fm.label} (+10k test), ${trees} trees`;
  const table: Table = {
    title: `Embedded pipeline vs scikit-learn, ${label}, grove size 10 (build = train wall + load + merge groves)`,
    headers: ["run", "build s", "prepare s", "evaluate s", "trees/s", "parallelism", "accuracy"],
    rows: [
      ["canopy pipeline, 2 workers", two.run.buildSeconds.toFixed(2), two.run.prepareSeconds.toFixed(2), two.run.evaluateSeconds.toFixed(2), two.run.treesPerSecond.toFixed(2), two.run.parallelism.toFixed(2), two.run.accuracy.toFixed(4)],
      ["canopy pipeline, 1 worker", one.run.buildSeconds.toFixed(2), one.run.prepareSeconds.toFixed(2), one.run.evaluateSeconds.toFixed(2), one.run.treesPerSecond.toFixed(2), one.run.parallelism.toFixed(2), one.run.accuracy.toFixed(4)],
      ["canopy engine only, 1 thread", engineSeconds.toFixed(2), "-", "-", (trees / engineSeconds).toFixed(2), "1.00", engineAccuracy.toFixed(4)],
      ["scikit-learn, n_jobs=2 (fit)", sk.fitSeconds!.toFixed(2), "-", "-", (trees / sk.fitSeconds!).toFixed(2), "-", sk.accuracy!.toFixed(4)],
    ],
    notes: [
      "prepare = CSV parse + binning into the dataset pack (sklearn starts from arrays in memory, so it is not in 'build').",
      `pipeline 2 workers ÷ sklearn n_jobs=2: ${ratio.toFixed(2)}×; 1 → 2 workers throughput: ${scaling.toFixed(3)}×; pipeline (1 worker) ÷ engine only: ${overhead.toFixed(2)}×.`,
    ],
  };
  const quick = ctx.quick ? " [quick run: FM 5k, 20 trees]" : "";
  return {
    title: "Embedded pipeline",
    tables: [table],
    targets: [
      check(`FM 60k, 100 trees: pipeline with 2 workers ≤ 0.7× sklearn n_jobs=2, accuracy ≥ 0.875`, `${ratio.toFixed(2)}× (${two.run.buildSeconds.toFixed(1)} s vs ${sk.fitSeconds!.toFixed(1)} s), accuracy ${two.run.accuracy.toFixed(4)}${quick}`, ctx.quick ? undefined : ratio <= 0.7 && two.run.accuracy >= 0.875),
      check("1 → 2 workers throughput ≥ 1.85×", `${scaling.toFixed(3)}×${quick}`, ctx.quick ? undefined : scaling >= 1.85),
      check("pipeline overhead over engine-only training ≤ 1.10× (one worker)", `${overhead.toFixed(2)}×${quick}`, ctx.quick ? undefined : overhead <= 1.1),
    ],
    raw: { two: two.run, one: one.run, engineSeconds, engineAccuracy, sklearn: sk, testFraction, trees, nTrain },
  };
};
