import { classificationMetrics, Forest, regressionMetrics, type DatasetPack, type Metrics } from "@canopy/forest";
import { AggregationError } from "./errors.ts";

/** One point of the metric-by-number-of-trees curve: the scalar metrics of the forest of the first `trees` trees. */
export interface TreeCurvePoint {
  trees: number;
  /** accuracy, macro_f1, log_loss (classification) or mse, mae, r2 (regression), as in Metrics. */
  [metric: string]: number;
}

/**
 * The held-out metrics of every prefix forest (trees 0..t-1, t = 1..T): whether more trees still help. The
 * points are every t up to MAX_CURVE_POINTS trees, then evenly spaced t (always ending at T).
 */
export interface TreeCurve {
  /** The rows scored: the held-out split (an out-of-bag curve would say "oob"). */
  rows: "test";
  /** How many rows. */
  n: number;
  points: TreeCurvePoint[];
}

/** Up to this many trees every prefix is a point; beyond, this many evenly spaced prefixes. */
export const MAX_CURVE_POINTS = 500;

/** Regression: at most this many held-out rows keep their (actual, predicted) pair in the report. */
export const MAX_PREDICTION_SAMPLE = 1000;

/** Actual and predicted values of held-out rows (regression), for predicted-vs-actual and residual plots. */
export interface PredictionSample {
  /** Held-out rows in all; the sample is every `step`-th of them, in row order. */
  n: number;
  step: number;
  actual: number[];
  predicted: number[];
}

export interface HeldOutEvaluation {
  /** Exactly what evaluate(forest, pack, rows) returns. */
  metrics: Metrics;
  curve: TreeCurve;
  /** Regression only. */
  predictions?: PredictionSample;
}

/** The prefix sizes that become curve points. */
export function curveTrees(nTrees: number, maxPoints = MAX_CURVE_POINTS): number[] {
  if (nTrees <= maxPoints) return Array.from({ length: nTrees }, (_, i) => i + 1);
  const out = new Set<number>();
  for (let i = 1; i <= maxPoints; i++) out.add(Math.max(1, Math.round((i * nTrees) / maxPoints)));
  return [...out];
}

function scalars(metrics: Metrics): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(metrics)) if (typeof value === "number" && key !== "n") out[key] = value;
  return out;
}

/**
 * Scores `forest` on `rows` of `pack` tree by tree: each tree's leaf values are added to running sums once, so
 * the curve costs one pass over the trees (O(trees × rows)), like a single evaluate. The sums are built in the
 * forest's own order and scaled as it scales them, so the last point's metrics are evaluate()'s, bit for bit.
 */
export function evaluateByTrees(forest: Forest, pack: DatasetPack, rows: Uint32Array, maxPoints = MAX_CURVE_POINTS): HeldOutEvaluation {
  if (rows.length === 0) throw new AggregationError("nothing to evaluate: no held-out rows");
  if (forest.nTrees === 0) throw new AggregationError("nothing to evaluate: the forest has no trees");
  const target = pack.target;
  if (target.task !== forest.task) throw new AggregationError(`a ${forest.task} model cannot be scored on ${target.task} data`);

  const wanted = new Set(curveTrees(forest.nTrees, maxPoints));
  const width = forest.valueWidth;
  const sums = new Float64Array(rows.length * width);
  const scaled = new Float64Array(rows.length * width);
  const points: TreeCurvePoint[] = [];
  let last: Metrics | undefined;

  const truthCodes = new Uint16Array(rows.length);
  const truthValues = new Float64Array(rows.length);
  if (target.task === "classification") {
    if (target.classes.join("\u0000") !== forest.classes.join("\u0000")) throw new AggregationError("the model's classes differ from the dataset's");
    for (let i = 0; i < rows.length; i++) truthCodes[i] = target.codes[rows[i]];
  } else {
    for (let i = 0; i < rows.length; i++) truthValues[i] = target.values[rows[i]];
  }

  forest.trees.forEach((tree, t) => {
    const one = new Forest(forest.task, forest.featureNames, forest.labelName, forest.classes, forest.params, [tree]);
    const values = forest.task === "classification" ? one.predictPackProba(pack, rows) : (one.predictPack(pack, rows) as Float64Array);
    for (let i = 0; i < sums.length; i++) sums[i] += values[i];
    const trees = t + 1;
    if (!wanted.has(trees)) return;
    const inv = 1 / trees;
    for (let i = 0; i < sums.length; i++) scaled[i] = sums[i] * inv;
    last = forest.task === "classification" ? classificationMetrics(truthCodes, scaled, forest.classes) : regressionMetrics(truthValues, scaled);
    points.push({ trees, ...scalars(last) });
  });

  const result: HeldOutEvaluation = { metrics: last!, curve: { rows: "test", n: rows.length, points } };
  if (forest.task === "regression") {
    const step = Math.max(1, Math.ceil(rows.length / MAX_PREDICTION_SAMPLE));
    const actual: number[] = [];
    const predicted: number[] = [];
    for (let i = 0; i < rows.length; i += step) {
      actual.push(truthValues[i]);
      predicted.push(scaled[i]);
    }
    result.predictions = { n: rows.length, step, actual, predicted };
  }
  return result;
}
