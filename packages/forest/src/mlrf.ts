/**
 * ml-random-forest (mljs) interop: export a Canopy forest as JSON that `RandomForestClassifier.load` /
 * `RandomForestRegression.load` accept. Plain JSON: this module does not import ml-random-forest.
 *
 * ml-cart facts this module relies on (ml-cart 2.1, ml-random-forest 2.1):
 * - a node goes left iff `row[splitColumn] < splitValue`; NaN therefore always goes right;
 * - a node is internal iff it has both `left` and `right`, a leaf iff it has `distribution`
 *   (classifier: a 1×K row of class frequencies, K = largest class code in the leaf + 1; regression: the mean);
 * - a classifier tree votes argmax(distribution) (first index on ties), the forest takes the mode of the votes
 *   (ml-array-mode: the class whose count first reaches the final maximum, scanning trees in order);
 * - a regression forest returns sum(tree predictions) / nTrees;
 * - tree i sees the column sub-matrix `indexes[i]`, so `splitColumn` indexes that subset.
 */
import { CanopyError, FormatError } from "./errors.ts";
import type { Task, Tree } from "./types.ts";

/** The parts of a forest the export needs (a `Forest` satisfies it). */
export interface MlrfExportable {
  task: Task;
  classes: string[];
  featureNames: string[];
  trees: Tree[];
}

/** Rows to predict: nested arrays or a row-major Float64Array; NaN = missing. */
export type MlrfMatrix = number[][] | { data: Float64Array; nRows: number; nCols: number };

interface MlrfNodeJSON {
  splitValue?: number;
  splitColumn?: number;
  gain?: number;
  left?: MlrfNodeJSON;
  right?: MlrfNodeJSON;
  distribution?: number[][] | number;
}

/** Bit-level helpers for the next float64 above x. */
const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);

/** Smallest float64 greater than x, so that `v < nextUp(t)` ⇔ `v <= t` for every non-NaN v (t finite). */
export function nextUp(x: number): number {
  if (Number.isNaN(x) || x === Infinity) return x;
  if (x === 0) return Number.MIN_VALUE; // covers -0 as well
  f64[0] = x;
  u64[0] = x > 0 ? u64[0] + 1n : u64[0] - 1n;
  return f64[0];
}

function valueWidth(forest: { task: Task; classes: string[] }): number {
  if (forest.task === "regression") return 1;
  if (forest.classes.length < 1) throw new FormatError("classification forest has no classes");
  return forest.classes.length;
}

function checkTree(tree: Tree, width: number, nFeatures: number): void {
  const n = tree.nodeCount;
  if (!(n >= 1) || tree.feature.length < n || tree.threshold.length < n || tree.right.length < n) {
    throw new FormatError(`tree ${tree.index} has inconsistent node arrays`);
  }
  for (let i = 0; i < n; i++) {
    const f = tree.feature[i];
    if (f === -1) {
      const slot = tree.right[i];
      if (slot < 0 || (slot + 1) * width > tree.values.length) {
        throw new FormatError(`tree ${tree.index} node ${i}: leaf slot ${slot} is outside values`);
      }
    } else if (f < 0 || f >= nFeatures) {
      throw new FormatError(`tree ${tree.index} node ${i}: feature ${f} is outside 0..${nFeatures - 1}`);
    } else if (!(tree.right[i] > i + 1 && tree.right[i] < n)) {
      throw new FormatError(`tree ${tree.index} node ${i}: right child ${tree.right[i]} is not after the left subtree`);
    } else if (Number.isNaN(tree.threshold[i])) {
      throw new FormatError(`tree ${tree.index} node ${i}: threshold ${tree.threshold[i]} cannot be exported`);
    }
  }
}

/**
 * ml-cart JSON for one tree. `x <= t` becomes `x < nextUp(t)`. When nextUp(t) is +Infinity (t = Number.MAX_VALUE,
 * the learner's "every finite value" threshold) JSON cannot hold it, so Number.MAX_VALUE is written: only
 * inputs >= Number.MAX_VALUE (MAX_VALUE itself, +Infinity) can then differ.
 */
function treeToMlrf(tree: Tree, width: number, classification: boolean): { root: MlrfNodeJSON; depth: number } {
  let depth = 0;
  const build = (i: number, d: number): MlrfNodeJSON => {
    if (d > depth) depth = d;
    const f = tree.feature[i];
    if (f === -1) {
      const slot = tree.right[i];
      if (!classification) return { distribution: tree.values[slot] };
      return { distribution: [Array.from(tree.values.subarray(slot * width, slot * width + width))] };
    }
    const up = nextUp(tree.threshold[i]);
    return {
      splitValue: up === Infinity ? Number.MAX_VALUE : up,
      splitColumn: f,
      gain: tree.gain[i],
      left: build(i + 1, d + 1),
      right: build(tree.right[i], d + 1),
    };
  };
  return { root: build(0, 0), depth };
}

/**
 * JSON for `RandomForestClassifier.load` (classification: predicts class codes, names in `canopy.classes`) or
 * `RandomForestRegression.load` (regression: mean of trees). Hard votes and means equal Canopy's on rows without
 * missing values. ml-cart sends NaN right at every split, so rows with NaN may differ wherever a Canopy split
 * sends missing values left; `canopy.missingLeftSplits` counts those splits (0 means NaN rows agree too).
 */
export function exportMlrf(forest: MlrfExportable): object {
  const classification = forest.task === "classification";
  const width = valueWidth(forest);
  const nFeatures = forest.featureNames.length;
  if (forest.trees.length === 0) throw new FormatError("cannot export a forest with no trees to ml-random-forest");
  const sets = forest.trees.find((t) => t.categorical !== undefined);
  if (sets !== undefined) {
    throw new CanopyError(
      `cannot export to ml-random-forest: tree ${sets.index} splits a categorical feature into two sets of categories, which ml-cart's numeric thresholds cannot express`,
    );
  }
  const allFeatures = Array.from({ length: nFeatures }, (_, f) => f);
  let missingLeftSplits = 0;
  let maxDepth = 0;
  const estimators = forest.trees.map((tree) => {
    checkTree(tree, width, nFeatures);
    for (let i = 0; i < tree.nodeCount; i++) if (tree.feature[i] !== -1 && tree.missingLeft[i]) missingLeftSplits++;
    const { root, depth } = treeToMlrf(tree, width, classification);
    if (depth > maxDepth) maxDepth = depth;
    return { name: classification ? "DTClassifier" : "DTRegression", options: treeOptions(classification, depth), root };
  });
  const baseModel = {
    // Every tree sees all columns, so splitColumn is the Canopy feature index.
    indexes: forest.trees.map(() => allFeatures),
    n: nFeatures,
    replacement: false,
    maxFeatures: nFeatures,
    nEstimators: forest.trees.length,
    treeOptions: treeOptions(classification, maxDepth),
    isClassifier: classification,
    useSampleBagging: true,
    estimators,
  };
  const canopy = {
    format: "canopy-mlrf-export",
    version: 1,
    task: forest.task,
    classes: forest.classes,
    featureNames: forest.featureNames,
    treeIndices: forest.trees.map((t) => t.index),
    missingLeftSplits,
    missingValues:
      "ml-cart sends NaN right at every split; rows with missing values may predict differently where Canopy sends them left",
    limits: "splits at Number.MAX_VALUE are written as `< Number.MAX_VALUE`: inputs >= Number.MAX_VALUE may differ",
  };
  return classification
    ? { name: "RFClassifier", baseModel, canopy }
    : { name: "RFRegression", selectionMethod: "mean", baseModel, canopy };
}

/** Options stored with exported trees; they only matter if someone retrains the loaded model. */
function treeOptions(classification: boolean, maxDepth: number): object {
  return classification
    ? { kind: "classifier", gainFunction: "gini", splitFunction: "mean", minNumSamples: 1, maxDepth, gainThreshold: 0 }
    : { kind: "regression", gainFunction: "regression", splitFunction: "mean", minNumSamples: 1, maxDepth };
}

function rowAccessor(X: MlrfMatrix, nFeatures: number): { nRows: number; get: (r: number, f: number) => number } {
  if (Array.isArray(X)) {
    for (let r = 0; r < X.length; r++) {
      if (X[r].length < nFeatures) throw new CanopyError(`row ${r} has ${X[r].length} values, expected ${nFeatures}`);
    }
    return { nRows: X.length, get: (r, f) => X[r][f] };
  }
  if (X.nCols < nFeatures) throw new CanopyError(`matrix has ${X.nCols} columns, expected ${nFeatures}`);
  if (X.data.length < X.nRows * X.nCols) throw new CanopyError("matrix data is shorter than nRows × nCols");
  return { nRows: X.nRows, get: (r, f) => X.data[r * X.nCols + f] };
}

/**
 * Canopy's own majority vote, with ml-random-forest's tie rules: each tree votes the argmax of its leaf
 * probabilities (lowest class on ties), the forest takes the class whose count first reaches the maximum while
 * scanning trees in order. Returns class codes (indices into `forest.classes`).
 */
export function hardVote(forest: MlrfExportable, X: MlrfMatrix): Int32Array {
  if (forest.task !== "classification") throw new CanopyError("hardVote needs a classification forest");
  const K = valueWidth(forest);
  const { nRows, get } = rowAccessor(X, forest.featureNames.length);
  const out = new Int32Array(nRows);
  const counts = new Int32Array(K);
  for (let r = 0; r < nRows; r++) {
    counts.fill(0);
    let best = -1;
    let bestCount = 0;
    for (const tree of forest.trees) {
      let i = 0;
      while (tree.feature[i] !== -1) {
        const x = get(r, tree.feature[i]);
        const left = Number.isNaN(x) ? tree.missingLeft[i] === 1 : x <= tree.threshold[i];
        i = left ? i + 1 : tree.right[i];
      }
      const base = tree.right[i] * K;
      let vote = 0;
      for (let k = 1; k < K; k++) if (tree.values[base + k] > tree.values[base + vote]) vote = k;
      if (++counts[vote] > bestCount) {
        bestCount = counts[vote];
        best = vote;
      }
    }
    out[r] = best;
  }
  return out;
}
