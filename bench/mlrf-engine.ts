// ml-random-forest as a second engine, for comparisons: one tree trained by ml-random-forest on a pack's bin
// indices, with Canopy's bootstrap sample, converted to a Canopy Tree (so it predicts, merges and exports like
// any other). Not part of the product: the forest package trains with its own learner only.
import { RandomForestClassifier, RandomForestRegression } from "ml-random-forest";
import { CanopyError, Forest, OptionsError, resolveParams, treeSeed, type DatasetPack, type FitParams, type ForestOptions, type ResolvedParams, type Task, type Tree } from "@canopy/forest";
import { sampleWeights } from "../packages/forest/src/bootstrap.ts";
import { allRows, checkRows, forestOf, resolveTreeIndices, type FitOptions } from "../packages/forest/src/fit.ts";
import { countOrFraction, featuresPerSplit } from "../packages/forest/src/options.ts";
import { Rng } from "../packages/forest/src/rng.ts";

/**
 * fitForest with every tree grown by fitTreeMlrf: tree t is seeded by treeSeed(random_state, t) and sees the
 * same bootstrap sample as Canopy's tree t.
 */
export function fitForestMlrf(pack: DatasetPack, params: FitParams = {}, options: FitOptions = {}): Forest {
  const resolved = resolveParams(params, pack.target.task);
  const rows = options.rows ?? allRows(pack.nRows);
  checkRows(pack, rows);
  const trees = resolveTreeIndices(resolved, options.treeIndices).map((t) => fitTreeMlrf(pack, rows, resolved, treeSeed(resolved.random_state, t), t));
  return forestOf(pack, resolved, trees);
}

/** The trained ml-cart node, as ml-cart leaves it in memory. */
interface CartNode {
  splitValue?: number;
  splitColumn?: number;
  left?: CartNode;
  right?: CartNode;
  distribution?: number | { getRow(i: number): number[] };
}

function rejectUnsupported(p: ResolvedParams, task: Task): void {
  const criterion = task === "classification" ? "gini" : "squared_error";
  if (p.criterion !== criterion) {
    throw new OptionsError(`criterion: engine ml-random-forest supports only ${criterion} for ${task} (got "${p.criterion}")`);
  }
  if (p.min_samples_leaf !== 1) throw new OptionsError("min_samples_leaf: engine ml-random-forest supports only 1");
  if (p.class_weight !== null) throw new OptionsError("class_weight: engine ml-random-forest supports only null");
  if (p.min_impurity_decrease !== 0) throw new OptionsError("min_impurity_decrease: engine ml-random-forest supports only 0");
}

/**
 * Trains one tree with ml-random-forest (nEstimators 1) on the pack's bin indices and converts it to a Canopy Tree.
 * `options` are validated and defaulted by resolveParams, like Canopy's.
 *
 * Mapping: the row bootstrap is Canopy's own (sampleWeights with Rng(seed): the same draws as Canopy's tree with
 * this seed, sklearn's max_samples; mlrf's own maxSamples would keep the FIRST rows), so node sample sets and gains
 * are known; `seed` also seeds mlrf, which only picks the features. max_features becomes mlrf's per-TREE feature
 * subset (distinct features; mlrf does not resample per split, which is the point of comparison);
 * min_samples_split s → ml-cart minNumSamples s - 1 (it splits only nodes with more than minNumSamples rows);
 * max_depth → maxDepth; gainThreshold 0 (ml-cart's 0.01 default would silently prune). min_samples_leaf,
 * class_weight, min_impurity_decrease and entropy have no equivalent and are rejected.
 *
 * Splits come back in bin space: `bin < v` is thresholdBin ceil(v) - 1 and raw threshold edges[f][thresholdBin]
 * (Number.MAX_VALUE past the last edge, as Canopy's learner). Missing (bin 255) sorts above every bin, so it
 * always goes right (missingLeft 0). gain = n·impurity(node) − n_L·impurity(left) − n_R·impurity(right) over the
 * bootstrap sample (gini or squared error), Canopy's scale.
 */
export function fitTreeMlrf(pack: DatasetPack, rows: Uint32Array, options: ForestOptions, seed: number, index: number): Tree {
  const target = pack.target;
  const task = target.task;
  const classification = task === "classification";
  const F = pack.nFeatures;
  const nRows = pack.nRows;
  if (!Number.isInteger(seed)) throw new OptionsError(`seed: must be an integer (got ${seed})`);
  if (rows.length === 0) throw new OptionsError("no training rows");
  for (let i = 0; i < rows.length; i++) {
    if (rows[i] >= nRows) throw new OptionsError(`training row ${rows[i]} is outside the dataset's ${nRows} rows`);
  }
  const params = resolveParams(options, task);
  rejectUnsupported(params, task);
  const maxFeatures = featuresPerSplit(params.max_features, F);
  const minSplit = Math.max(countOrFraction(params.min_samples_split, rows.length), 2);
  const maxDepth = params.max_depth ?? Infinity;

  // The training sample: each row repeated by its bootstrap draw count, ascending row order.
  const { weight, idx } = sampleWeights(pack, rows, params, new Rng(seed));
  const X: number[][] = [];
  const y: number[] = [];
  for (const r of idx) {
    const row = new Array<number>(F);
    for (let f = 0; f < F; f++) row[f] = pack.bins[f * nRows + r];
    const label = classification ? target.codes[r] : target.values[r];
    for (let c = 0; c < weight[r]; c++) {
      X.push(row);
      y.push(label);
    }
  }
  const n = X.length;

  // mlrf treats maxFeatures 1 as the fraction 1.0 (all features); 1.5 / F floors to exactly one feature.
  const mlrfMaxFeatures = maxFeatures === 1 && F > 1 ? 1.5 / F : maxFeatures;
  const common = {
    nEstimators: 1,
    seed,
    noOOB: true,
    useSampleBagging: false,
    replacement: false,
    maxFeatures: mlrfMaxFeatures,
  };
  const model = classification
    ? new RandomForestClassifier({
        ...common,
        treeOptions: { gainFunction: "gini", minNumSamples: minSplit - 1, maxDepth, gainThreshold: 0 },
      })
    : new RandomForestRegression({ ...common, treeOptions: { minNumSamples: minSplit - 1, maxDepth } });
  model.train(X, y);
  const trained = model as unknown as { indexes: number[][]; estimators: { root: CartNode }[] };
  const used = trained.indexes[0];
  const root = trained.estimators[0].root;

  const K = classification ? target.classes.length : 1;
  const feature: number[] = [];
  const threshold: number[] = [];
  const thresholdBin: number[] = [];
  const right: number[] = [];
  const gain: number[] = [];
  const values: number[] = [];

  // Impurity × count of a node's samples (sample positions into X / y).
  const impurity = (idx: number[]): number => {
    if (classification) {
      const counts = new Float64Array(K);
      for (const s of idx) counts[y[s]]++;
      let sq = 0;
      for (const c of counts) sq += c * c;
      return idx.length - sq / idx.length;
    }
    let mean = 0;
    for (const s of idx) mean += y[s];
    mean /= idx.length;
    let sse = 0;
    for (const s of idx) sse += (y[s] - mean) * (y[s] - mean);
    return sse;
  };

  const visit = (node: CartNode, idx: number[]): void => {
    const i = feature.length;
    if (node.left && node.right) {
      const col = node.splitColumn as number;
      const v = node.splitValue as number;
      const f = used[col];
      const edges = pack.edges[f];
      // Largest bin b with b < v; past the last real bin the split only separates missing values.
      const tb = Math.min(Math.ceil(v) - 1, edges.length);
      feature.push(f);
      thresholdBin.push(tb);
      threshold.push(tb < edges.length ? edges[tb] : Number.MAX_VALUE);
      right.push(-1);
      gain.push(0);
      const li: number[] = [];
      const ri: number[] = [];
      for (const s of idx) (X[s][f] < v ? li : ri).push(s);
      const g = impurity(idx) - (li.length ? impurity(li) : 0) - (ri.length ? impurity(ri) : 0);
      gain[i] = Math.max(0, g); // rounding can leave a tiny negative
      visit(node.left, li);
      right[i] = feature.length;
      visit(node.right, ri);
      return;
    }
    feature.push(-1);
    threshold.push(0);
    thresholdBin.push(0);
    gain.push(0);
    right.push(values.length / K);
    const d = node.distribution;
    if (typeof d === "number") values.push(d);
    else if (d) {
      // ml-cart's row only spans classes up to the largest code in the leaf: pad to K.
      const p = d.getRow(0);
      for (let k = 0; k < K; k++) values.push(k < p.length ? p[k] : 0);
    } else throw new CanopyError("ml-random-forest returned a leaf without a distribution");
  };
  visit(
    root,
    Array.from({ length: n }, (_, s) => s),
  );

  const nodeCount = feature.length;
  return {
    index,
    nodeCount,
    feature: Int32Array.from(feature),
    threshold: Float64Array.from(threshold),
    thresholdBin: Uint8Array.from(thresholdBin),
    right: Int32Array.from(right),
    missingLeft: new Uint8Array(nodeCount),
    gain: Float32Array.from(gain),
    values: Float32Array.from(values),
  };
}
