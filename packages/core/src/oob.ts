import { classificationMetrics, Forest, FormatError, OobSums, oobScore, outOfBagRows, regressionMetrics, type DatasetPack, type ResolvedParams, type Task, type Tree } from "@canopy/forest";
import { curveTrees, MAX_CURVE_POINTS, type TreeCurve, type TreeCurvePoint } from "./curve.ts";
import { AggregationError } from "./errors.ts";

/**
 * Out-of-bag scores of a build (spec `oob_score: true`), as scikit-learn 1.9.1's oob_score_ (see @canopy/forest's
 * OobSums for the semantics and the fixed-point sums that make them the same bytes whatever the grove split):
 * - each trainer stores its grove's sums beside the grove (keys.groveOob), their digest in the grove's ledger stats;
 * - the aggregator merges them grove by grove (OobAggregation.addGrove), scores, and stores the per-row decision
 *   function as builds/<id>/oob.bin (encodeOobDecision); report.json gets oob_score and the `oob` summary;
 * - the OOB curve (the score of the first t trees) is computed tree by tree by the aggregator on a sample of at most
 *   MAX_OOB_CURVE_ROWS training rows, since a grove's sums cannot be split back into its trees.
 */

/** The OOB curve scores every step-th training row, at most this many. */
export const MAX_OOB_CURVE_ROWS = 2000;

/** sklearn's warning when some rows were in every tree's sample (their decision function is 0, as in sklearn). */
export const NO_OOB_WARNING = "Some inputs do not have OOB scores. This probably means too few trees were used to compute any reliable OOB estimates.";

/** report.json's `oob`: what oob_score is and where the per-row decision function is. */
export interface OobSummary {
  /** accuracy (classification) or r2 (regression), over the training rows, unweighted: sklearn's oob_score_. */
  metric: "accuracy" | "r2";
  score: number;
  /** Training rows scored (all of them). */
  rows: number;
  /** Rows no tree left out of its sample: predicted 0 and still scored, as sklearn does. */
  rowsWithoutOob: number;
  warning?: string;
  /**
   * Other scores of the same decision function, what scikit-learn 1.9.1 computes with a callable `oob_score`
   * (metric(y, argmax of oob_decision_function_) for a classifier, metric(y, oob_prediction_) for a regressor):
   * accuracy and macro_f1, or r2, mse and mae. A study scored out of bag (`--oob --scoring f1_macro`) ranks by them.
   */
  metrics?: Record<string, number>;
  /** builds/<id>/oob.bin: the decision function per training row (encodeOobDecision's format). */
  key: string;
  bytes: number;
}

export interface OobResult {
  summary: Omit<OobSummary, "key" | "bytes">;
  curve: TreeCurve;
  /** oob.bin's bytes. */
  decision: Uint8Array;
}

/**
 * The aggregator's OOB step, one grove and one tree at a time: memory is the merged sums (training rows × (4 + 8 ×
 * classes) bytes), the curve's sample sums and one grove's sums being read.
 */
export class OobAggregation {
  private readonly sums: OobSums;
  private readonly curve: OobCurve;

  constructor(
    private readonly pack: DatasetPack,
    /** The build's training rows, ascending. */
    private readonly rows: Uint32Array,
    nTrees: number,
  ) {
    this.sums = OobSums.of(pack, rows);
    this.curve = new OobCurve(pack, rows, nTrees);
  }

  /** A grove's stored sums (keys.groveOob), already checked against their digest. */
  addGrove(grove: number, key: string, bytes: Uint8Array): void {
    try {
      this.sums.merge(OobSums.load(bytes));
    } catch (err) {
      if (err instanceof FormatError) throw new AggregationError(`grove ${grove}'s OOB sums (${key}) are unusable: ${err.message}`);
      throw err;
    }
  }

  /** The next tree of the model, in order: for the curve. `params` are the build's (a grove's). */
  addTree(tree: Tree, params: ResolvedParams): void {
    this.curve.add(tree, params);
  }

  finish(): OobResult {
    const { sums, pack, rows } = this;
    const rowsWithoutOob = sums.rowsWithoutOob;
    const summary: OobResult["summary"] = {
      metric: sums.task === "classification" ? "accuracy" : "r2",
      score: sums.score(pack, rows),
      rows: rows.length,
      rowsWithoutOob,
      ...(rowsWithoutOob > 0 ? { warning: NO_OOB_WARNING } : {}),
      ...(rows.length > 0 ? { metrics: oobMetrics(pack, rows, sums.decisionFunction()) } : {}),
    };
    return { summary, curve: this.curve.finish(), decision: encodeOobDecision(rows, sums) };
  }
}

/** OobSummary.metrics: the held-out metrics' definitions (@canopy/forest's metrics) on the OOB decision function. */
function oobMetrics(pack: DatasetPack, rows: Uint32Array, decision: Float64Array): Record<string, number> {
  const target = pack.target;
  if (target.task === "classification") {
    const m = classificationMetrics(Uint16Array.from(rows, (r) => target.codes[r]), decision, target.classes);
    return { accuracy: m.accuracy, macro_f1: m.macro_f1 };
  }
  const m = regressionMetrics(Float64Array.from(rows, (r) => target.values[r]), decision);
  return { r2: m.r2, mse: m.mse, mae: m.mae };
}

/**
 * The OOB score of the first t trees on a fixed sample of training rows (every step-th): per tree, its sample rows
 * that were out of bag are predicted and added (float sums, in tree order, so the same trees give the same curve);
 * at each point the metric covers the sample rows that were out of bag for at least one of the t trees.
 */
export class OobCurve {
  private readonly sample: Uint32Array;
  private readonly position = new Map<number, number>();
  private readonly sums: Float64Array;
  private readonly counts: Uint32Array;
  private readonly width: number;
  private readonly task: Task;
  private readonly wanted: Set<number>;
  private readonly points: TreeCurvePoint[] = [];
  private added = 0;

  constructor(
    private readonly pack: DatasetPack,
    private readonly rows: Uint32Array,
    private readonly nTrees: number,
    maxRows = MAX_OOB_CURVE_ROWS,
  ) {
    const step = Math.max(1, Math.ceil(rows.length / maxRows));
    this.sample = Uint32Array.from({ length: Math.ceil(rows.length / step) }, (_, i) => rows[i * step]);
    this.sample.forEach((row, i) => this.position.set(row, i));
    this.task = pack.target.task;
    this.width = pack.target.task === "classification" ? pack.target.classes.length : 1;
    this.sums = new Float64Array(this.sample.length * this.width);
    this.counts = new Uint32Array(this.sample.length);
    this.wanted = new Set(curveTrees(nTrees, MAX_CURVE_POINTS));
  }

  add(tree: Tree, params: ResolvedParams): void {
    const oob = outOfBagRows(this.pack, this.rows, params, tree.index).filter((row) => this.position.has(row));
    if (oob.length > 0) {
      const one = oneTree(this.pack, params, tree);
      const values = this.task === "classification" ? one.predictPackProba(this.pack, oob) : (one.predictPack(this.pack, oob) as Float64Array);
      for (let k = 0; k < oob.length; k++) {
        const i = this.position.get(oob[k])!;
        this.counts[i]++;
        for (let c = 0; c < this.width; c++) this.sums[i * this.width + c] += values[k * this.width + c];
      }
    }
    const trees = ++this.added;
    if (this.wanted.has(trees)) this.points.push(this.point(trees));
  }

  private point(trees: number): TreeCurvePoint {
    const covered: number[] = [];
    for (let i = 0; i < this.sample.length; i++) if (this.counts[i] > 0) covered.push(i);
    const key = this.task === "classification" ? "accuracy" : "r2";
    if (covered.length === 0) return { trees, oob_rows: 0, [key]: Number.NaN };
    const decision = new Float64Array(covered.length * this.width);
    covered.forEach((i, k) => {
      for (let c = 0; c < this.width; c++) decision[k * this.width + c] = this.sums[i * this.width + c] / this.counts[i];
    });
    const rows = Uint32Array.from(covered, (i) => this.sample[i]);
    return { trees, oob_rows: covered.length, [key]: oobScore(this.pack, rows, decision, this.width) };
  }

  finish(): TreeCurve {
    if (this.added !== this.nTrees) throw new AggregationError(`OOB curve: ${this.added} trees added, expected ${this.nTrees}`);
    // A point without any row out of bag yet is left out (JSON has no NaN).
    return { rows: "oob", n: this.sample.length, points: this.points.filter((p) => p.oob_rows > 0) };
  }
}

/** A forest of one tree, to predict with it. */
function oneTree(pack: DatasetPack, params: ResolvedParams, tree: Tree): Forest {
  const classes = pack.target.task === "classification" ? pack.target.classes : [];
  return new Forest(pack.target.task, pack.featureNames, pack.labelName, classes, params, [tree]);
}

const DECISION_MAGIC = 0x444f4f43; // "COOD"
const DECISION_VERSION = 1;
const DECISION_HEADER = 20;

/**
 * builds/<id>/oob.bin, little-endian: "COOD", version 1, task (0 classification, 1 regression), n (training rows),
 * width (classes, or 1) as uint32; then n uint32 pack row numbers (the training rows, ascending); n uint32 counts
 * (trees the row was out of bag for); zero padding to a multiple of 8; n × width float64, the decision function
 * (sklearn's oob_decision_function_ / oob_prediction_; 0 where the count is 0). Class order is report.dataset.classes.
 */
export function encodeOobDecision(rows: Uint32Array, sums: OobSums): Uint8Array {
  const n = rows.length;
  const valuesAt = align8(DECISION_HEADER + 8 * n);
  const decision = sums.decisionFunction();
  const out = new Uint8Array(valuesAt + decision.length * 8);
  const view = new DataView(out.buffer);
  [DECISION_MAGIC, DECISION_VERSION, sums.task === "classification" ? 0 : 1, n, sums.width].forEach((v, i) => view.setUint32(i * 4, v, true));
  for (let i = 0; i < n; i++) {
    view.setUint32(DECISION_HEADER + i * 4, rows[i], true);
    view.setUint32(DECISION_HEADER + 4 * n + i * 4, sums.counts[i], true);
  }
  for (let i = 0; i < decision.length; i++) view.setFloat64(valuesAt + i * 8, decision[i], true);
  return out;
}

export interface OobDecision {
  task: Task;
  width: number;
  rows: Uint32Array;
  counts: Uint32Array;
  values: Float64Array;
}

/** Reads oob.bin (encodeOobDecision's format). */
export function decodeOobDecision(bytes: Uint8Array): OobDecision {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < DECISION_HEADER || view.getUint32(0, true) !== DECISION_MAGIC) throw new FormatError("oob.bin: not an OOB decision function");
  const version = view.getUint32(4, true);
  if (version !== DECISION_VERSION) throw new FormatError(`oob.bin: version ${version} is not supported (this reads ${DECISION_VERSION})`);
  const n = view.getUint32(12, true);
  const width = view.getUint32(16, true);
  const valuesAt = align8(DECISION_HEADER + 8 * n);
  if (bytes.length !== valuesAt + n * width * 8) throw new FormatError(`oob.bin: ${bytes.length} bytes do not hold ${n} rows × ${width}`);
  const rows = new Uint32Array(n);
  const counts = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    rows[i] = view.getUint32(DECISION_HEADER + i * 4, true);
    counts[i] = view.getUint32(DECISION_HEADER + 4 * n + i * 4, true);
  }
  const values = new Float64Array(n * width);
  for (let i = 0; i < values.length; i++) values[i] = view.getFloat64(valuesAt + i * 8, true);
  return { task: view.getUint32(8, true) === 0 ? "classification" : "regression", width, rows, counts, values };
}

const align8 = (n: number) => (n % 8 === 0 ? n : n + 8 - (n % 8));
