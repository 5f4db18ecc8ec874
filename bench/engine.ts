// Canopy, in-process and single-threaded: Dataset from arrays → buildPack → fitForest → predictProba.
import { performance } from "node:perf_hooks";
import { buildPack, fitForest } from "@canopy/forest";
import type { Dataset, Forest } from "@canopy/forest";
import type { BenchCase, Part } from "./data.ts";
import type { EngineResult } from "./results.ts";
import { argmaxRow, quantile } from "./stats.ts";

/** Predict timing: repeated until this much time was spent (and at least predictRepeats times, at most PREDICT_MAX_REPEATS). */
export const PREDICT_MIN_SECONDS = 0.5;
export const PREDICT_MAX_REPEATS = 1000;

export interface RunOptions {
  trees: number;
  seed: number;
  /** predict is timed at least this many times (and for PREDICT_MIN_SECONDS); the best run counts (first runs pay JIT warm-up). */
  predictRepeats: number;
  /** scikit-learn's n_jobs (default 1). */
  jobs?: number;
  /** max_depth (default: none, fully grown trees). */
  maxDepth?: number;
  /** Also time a second pack + fit in the same process (the JIT warm), beside the first (default: no). */
  warm?: boolean;
  /** Single-row predict latency is measured over this many test rows, one call each (default: not measured). */
  latencyRows?: number;
}

/** Single-row predict latency in process: one predictProba call per row, after a warm-up. */
export interface Latency {
  p50Ms: number;
  p99Ms: number;
  rows: number;
}

/** Column-major float64 columns, the shape a Dataset wants (built outside the timed region). */
export function toDataset(c: BenchCase): Dataset {
  const { nRows, X, y } = c.train;
  const columns = Array.from({ length: c.nFeatures }, () => new Float64Array(nRows));
  for (let r = 0; r < nRows; r++) {
    const base = r * c.nFeatures;
    for (let f = 0; f < c.nFeatures; f++) columns[f][r] = X[base + f];
  }
  return {
    featureNames: c.featureNames,
    labelName: c.labelName,
    nRows,
    columns,
    target: { task: "classification", classes: c.classes, codes: Uint16Array.from(y) },
  };
}

export function toMatrix(p: Part, nFeatures: number): { data: Float64Array; nRows: number; nCols: number } {
  return { data: Float64Array.from(p.X), nRows: p.nRows, nCols: nFeatures };
}

export function runCanopy(c: BenchCase, opts: RunOptions): EngineResult {
  const dataset = toDataset(c);
  const test = toMatrix(c.test, c.nFeatures);

  const t0 = performance.now();
  const pack = buildPack(dataset);
  const t1 = performance.now();
  const params = { n_estimators: opts.trees, random_state: opts.seed, max_features: "sqrt" as const, bootstrap: true, max_depth: opts.maxDepth ?? null };
  const forest = fitForest(pack, params);
  const t2 = performance.now();
  let warm: { fitSeconds: number; packSeconds: number } | undefined;
  if (opts.warm) {
    const w0 = performance.now();
    const again = buildPack(dataset);
    const w1 = performance.now();
    fitForest(again, params);
    warm = { fitSeconds: (performance.now() - w0) / 1000, packSeconds: (w1 - w0) / 1000 };
  }

  let best = Infinity;
  let proba: Float64Array = new Float64Array(0);
  // At least predictRepeats runs, and on until PREDICT_MIN_SECONDS were spent: a small test set (digits: ~1 ms a
  // call) is otherwise timed before the JIT has compiled the walk. sklearn_bench.py follows the same rule.
  let spent = 0;
  for (let i = 0; i < Math.max(1, opts.predictRepeats) || (spent < PREDICT_MIN_SECONDS * 1000 && i < PREDICT_MAX_REPEATS); i++) {
    const s = performance.now();
    proba = forest.predictProba(test);
    const ms = performance.now() - s;
    best = Math.min(best, ms);
    spent += ms;
  }
  // Compare by class name: the forest's class order need not match ours.
  const k = forest.classes.length;
  let correct = 0;
  for (let r = 0; r < c.test.nRows; r++) {
    if (forest.classes[argmaxRow(proba, k, r)] === c.classes[c.test.y[r]]) correct++;
  }
  const predictSeconds = best / 1000;
  const latency = opts.latencyRows ? singleRowLatency(forest, c, opts.latencyRows) : undefined;
  return {
    engine: "canopy",
    caseId: c.id,
    trees: opts.trees,
    status: "ok",
    fitSeconds: (t2 - t0) / 1000,
    packSeconds: (t1 - t0) / 1000,
    predictSeconds,
    predictRowsPerSec: c.test.nRows / predictSeconds,
    accuracy: correct / c.test.nRows,
    modelBytes: forest.toBinary().byteLength,
    nodeCount: forest.nodeCount,
    ...(latency && { latency }),
    ...(warm && { warm }),
  };
}

/** p50 / p99 of predictProba on one row at a time (rows of the test set in turn; the first 10% are warm-up). */
function singleRowLatency(forest: Forest, c: BenchCase, n: number): Latency {
  const nf = c.nFeatures;
  const warm = Math.ceil(n / 10);
  const times: number[] = [];
  for (let i = 0; i < warm + n; i++) {
    const r = i % c.test.nRows;
    const row = { data: Float64Array.from(c.test.X.subarray(r * nf, (r + 1) * nf)), nRows: 1, nCols: nf };
    const s = performance.now();
    forest.predictProba(row);
    const t = performance.now() - s;
    if (i >= warm) times.push(t);
  }
  return { p50Ms: quantile(times, 0.5), p99Ms: quantile(times, 0.99), rows: n };
}
