import { classificationMetrics, Forest, PackRowSums, packRowCopy, regressionMetrics, type DatasetPack, type Metrics, type PackRowCopy, type Tree } from "@canopy/forest";
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
  /** The rows scored: the held-out split, or a sample of the training rows out of bag (see oob.ts). */
  rows: "test" | "oob";
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
  const evaluator = new TreeEvaluator(forest, pack, rows, forest.nTrees, maxPoints);
  for (const tree of forest.trees) evaluator.add(tree);
  return evaluator.finish();
}

/**
 * evaluateByTrees for trees that arrive a grove at a time (the aggregator merging a build without holding its
 * model): memory is the running sums over the held-out rows, whatever the number of trees. `model` is any forest of
 * the build (one grove): its task, classes and parameters; `nTrees` is how many trees will be added, in order.
 */
export class TreeEvaluator {
  private readonly wanted: Set<number>;
  /** The rows and their sums in the binned walk's memory (see PackRowSums), or null: sums and copy below. */
  private readonly walk: PackRowSums | null;
  private readonly ownSums: Float64Array | null;
  private readonly scaled: Float64Array;
  private readonly truthCodes: Uint16Array;
  private readonly truthValues: Float64Array;
  /** Without the walk, the rows' bins side by side (see PackRowCopy); null for a pack with 16-bit features. */
  private readonly ownCopy: PackRowCopy | null;
  private readonly points: TreeCurvePoint[] = [];
  private last?: Metrics;
  private added = 0;

  constructor(
    private readonly model: Forest,
    private readonly pack: DatasetPack,
    private readonly rows: Uint32Array,
    private readonly nTrees: number,
    maxPoints = MAX_CURVE_POINTS,
  ) {
    if (rows.length === 0) throw new AggregationError("nothing to evaluate: no held-out rows");
    if (nTrees === 0) throw new AggregationError("nothing to evaluate: the forest has no trees");
    const target = pack.target;
    if (target.task !== model.task) throw new AggregationError(`a ${model.task} model cannot be scored on ${target.task} data`);
    if (pack.nFeatures !== model.nFeatures) throw new AggregationError(`the dataset has ${pack.nFeatures} features; the model expects ${model.nFeatures}`);
    this.wanted = new Set(curveTrees(nTrees, maxPoints));
    const width = model.valueWidth;
    // One tree is walked on the pack's columns: copying the rows costs more than its walk.
    this.walk = nTrees > 1 ? PackRowSums.of(pack, rows, width) : null;
    this.ownCopy = this.walk === null && nTrees > 1 ? packRowCopy(pack, rows) : null;
    this.ownSums = this.walk === null ? new Float64Array(rows.length * width) : null;
    this.scaled = new Float64Array(rows.length * width);
    this.truthCodes = new Uint16Array(rows.length);
    this.truthValues = new Float64Array(rows.length);
    if (target.task === "classification") {
      if (target.classes.join("\u0000") !== model.classes.join("\u0000")) throw new AggregationError("the model's classes differ from the dataset's");
      for (let i = 0; i < rows.length; i++) this.truthCodes[i] = target.codes[rows[i]];
    } else {
      for (let i = 0; i < rows.length; i++) this.truthValues[i] = target.values[rows[i]];
    }
  }

  /** The next tree, in the model's order. */
  add(tree: Tree): void {
    const m = this.model;
    const { walk, scaled } = this;
    // The tree's leaf values straight into the sums: the same numbers as its one-tree forest's predictions (scaled by
    // 1) added to them, without a forest and an array per tree.
    if (walk === null) m.addPackLeaves(tree, this.pack, this.rows, this.ownCopy, this.ownSums!);
    else if (!walk.add(tree)) m.addPackLeaves(tree, this.pack, this.rows, walk.copy, walk.sums);
    const sums = walk === null ? this.ownSums! : walk.sums;
    const trees = ++this.added;
    if (!this.wanted.has(trees)) return;
    const inv = 1 / trees;
    for (let i = 0; i < sums.length; i++) scaled[i] = sums[i] * inv;
    this.last = m.task === "classification" ? classificationMetrics(this.truthCodes, scaled, m.classes) : regressionMetrics(this.truthValues, scaled);
    this.points.push({ trees, ...scalars(this.last) });
  }

  finish(): HeldOutEvaluation {
    if (this.added !== this.nTrees) throw new AggregationError(`evaluated ${this.added} trees, expected ${this.nTrees}`);
    const result: HeldOutEvaluation = { metrics: this.last!, curve: { rows: "test", n: this.rows.length, points: this.points } };
    if (this.model.task === "regression") {
      const step = Math.max(1, Math.ceil(this.rows.length / MAX_PREDICTION_SAMPLE));
      const actual: number[] = [];
      const predicted: number[] = [];
      for (let i = 0; i < this.rows.length; i += step) {
        actual.push(this.truthValues[i]);
        predicted.push(this.scaled[i]);
      }
      result.predictions = { n: this.rows.length, step, actual, predicted };
    }
    return result;
  }
}
