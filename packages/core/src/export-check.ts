import { MISSING_BIN, type DatasetPack, type Forest } from "@canopy/forest";
import { splitRows } from "./plan.ts";

/**
 * Does an ml-random-forest export predict what the model predicts? Measured on the build's held-out rows (all its
 * rows when none were held out), by evaluating the exported JSON the way ml-random-forest 2.1 / ml-cart 2.1 do
 * (node_modules/ml-cart/src/TreeNode.js `classify`, DecisionTreeClassifier `predict`, ml-array-mode,
 * RandomForestRegression's `mean`):
 * - a node sends a row left iff `row[splitColumn] < splitValue`, so a missing value (NaN) always goes right,
 *   where a Canopy split may send it left;
 * - a classifier tree votes the index of its leaf distribution's largest value (the first on ties), and the forest
 *   takes the class whose vote count first reaches the final maximum, scanning trees in order: a majority vote,
 *   where Canopy averages the trees' probabilities (they differ where leaves are not pure, and on ties);
 * - a regression forest returns the mean of its trees' leaf values, as Canopy does.
 */

interface MlrfNode {
  splitValue?: number;
  splitColumn?: number;
  left?: MlrfNode;
  right?: MlrfNode;
  distribution?: number[][] | number;
}

interface MlrfJson {
  name: string;
  baseModel: { estimators: { root: MlrfNode }[]; indexes: number[][] };
}

export interface ExportAgreement {
  /** The rows compared: the build's held-out rows, or all its rows when none were held out. */
  rows: number;
  heldOut: boolean;
  /** Rows whose prediction differs (classification: another class; regression: beyond 1e-9 relative). */
  differ: number;
  /** Rows with at least one missing feature value, and how many of those differ. */
  missingRows: number;
  missingDiffer: number;
  /** The score on those rows, of the model and of the export: accuracy, or R² for regression. */
  metric: "accuracy" | "r2";
  model: number;
  exported: number;
}

/**
 * The raw feature values of pack rows, in feature order, one value per bin: the bin's upper edge (any value of the
 * bin routes the same through every split, whose thresholds are bin edges), a value above the last edge for the
 * top bin, NaN for a missing cell.
 */
export function packRowsMatrix(pack: DatasetPack, rows: Uint32Array): { data: Float64Array; nRows: number; nCols: number } {
  const nCols = pack.nFeatures;
  const data = new Float64Array(rows.length * nCols);
  for (let f = 0; f < nCols; f++) {
    const edges = pack.edges[f]!;
    const last = edges.length > 0 ? edges[edges.length - 1]! : 0;
    const above = last + Math.max(1, Math.abs(last));
    const bins = pack.bins.subarray(f * pack.nRows, (f + 1) * pack.nRows);
    for (let i = 0; i < rows.length; i++) {
      const b = bins[rows[i]!]!;
      data[i * nCols + f] = b === MISSING_BIN ? NaN : b < edges.length ? edges[b]! : above;
    }
  }
  return { data, nRows: rows.length, nCols };
}

function leaf(node: MlrfNode, row: Float64Array, base: number, columns: number[]): MlrfNode {
  let at = node;
  while (at.left && at.right) at = row[base + columns[at.splitColumn!]!]! < at.splitValue! ? at.left : at.right;
  return at;
}

/** What ml-random-forest predicts with this exported JSON: class indices (classifier) or values (regression). */
export function predictMlrfExport(json: object, X: { data: Float64Array; nRows: number; nCols: number }): Float64Array {
  const model = json as MlrfJson;
  const classifier = model.name === "RFClassifier";
  const trees = model.baseModel.estimators;
  const out = new Float64Array(X.nRows);
  for (let r = 0; r < X.nRows; r++) {
    const base = r * X.nCols;
    if (!classifier) {
      let sum = 0;
      trees.forEach((t, i) => (sum += leaf(t.root, X.data, base, model.baseModel.indexes[i]!).distribution as number));
      out[r] = sum / trees.length;
      continue;
    }
    const counts = new Map<number, number>();
    let best = 0;
    let bestCount = 0;
    trees.forEach((t, i) => {
      const dist = (leaf(t.root, X.data, base, model.baseModel.indexes[i]!).distribution as number[][])[0]!;
      let vote = 0;
      for (let k = 1; k < dist.length; k++) if (dist[k]! > dist[vote]!) vote = k;
      const count = (counts.get(vote) ?? 0) + 1;
      counts.set(vote, count);
      if (count > bestCount) {
        bestCount = count;
        best = vote;
      }
    });
    out[r] = best;
  }
  return out;
}

/** The rows an export is checked on: the build's held-out split, or every row when nothing was held out. */
export function checkRows(pack: DatasetPack, testFraction: number, seed: number): { rows: Uint32Array; heldOut: boolean } {
  const { test } = splitRows(pack.nRows, testFraction, seed);
  return test.length > 0 ? { rows: test, heldOut: true } : { rows: Uint32Array.from({ length: pack.nRows }, (_, i) => i), heldOut: false };
}

/** Compares the model's predictions with its export's on `rows` of the build's pack. */
export function exportAgreement(forest: Forest, json: object, pack: DatasetPack, check: { rows: Uint32Array; heldOut: boolean }): ExportAgreement {
  const X = packRowsMatrix(pack, check.rows);
  const exported = predictMlrfExport(json, X);
  const n = check.rows.length;
  let differ = 0;
  let missingRows = 0;
  let missingDiffer = 0;
  const target = pack.target;
  let modelScore = 0;
  let exportScore = 0;
  const missingAt = (r: number) => X.data.subarray(r * X.nCols, (r + 1) * X.nCols).some((v) => v !== v);
  if (target.task === "classification") {
    const labels = forest.predict(X) as string[];
    const index = new Map(forest.classes.map((c, k) => [c, k]));
    for (let r = 0; r < n; r++) {
      const truth = target.codes[check.rows[r]!]!;
      const mine = index.get(labels[r]!)!;
      const theirs = exported[r]!;
      const missing = missingAt(r);
      if (missing) missingRows++;
      if (mine !== theirs) {
        differ++;
        if (missing) missingDiffer++;
      }
      if (mine === truth) modelScore++;
      if (theirs === truth) exportScore++;
    }
    return { rows: n, heldOut: check.heldOut, differ, missingRows, missingDiffer, metric: "accuracy", model: modelScore / n, exported: exportScore / n };
  }
  const values = forest.predict(X) as Float64Array;
  let mean = 0;
  for (let r = 0; r < n; r++) mean += target.values[check.rows[r]!]!;
  mean /= n;
  let total = 0;
  let mineErr = 0;
  let theirErr = 0;
  for (let r = 0; r < n; r++) {
    const truth = target.values[check.rows[r]!]!;
    const mine = values[r]!;
    const theirs = exported[r]!;
    const missing = missingAt(r);
    if (missing) missingRows++;
    if (Math.abs(mine - theirs) > 1e-9 * Math.max(1, Math.abs(mine))) {
      differ++;
      if (missing) missingDiffer++;
    }
    total += (truth - mean) ** 2;
    mineErr += (truth - mine) ** 2;
    theirErr += (truth - theirs) ** 2;
  }
  const r2 = (err: number) => (total > 0 ? 1 - err / total : err === 0 ? 1 : 0);
  return { rows: n, heldOut: check.heldOut, differ, missingRows, missingDiffer, metric: "r2", model: r2(mineErr), exported: r2(theirErr) };
}
