import { impurity, type CriterionName } from "./criterion.ts";
import { countOrFraction, featuresPerSplit, type ResolvedParams } from "./options.ts";
import { MISSING_BIN, rowMajorBins, type DatasetPack } from "./pack.ts";
import { Rng } from "./rng.ts";
import { COLUMN_PASS_MIN_SAMPLES, HistogramSplitter } from "./splitter.ts";
import type { Tree } from "./types.ts";

/** Sizes below which a subtree's rows are copied into a contiguous buffer (outermost first). */
const SUBTREE_LEVELS = [COLUMN_PASS_MIN_SAMPLES, 512, 64];

/** Below this, sklearn treats a node as pure. */
const EPSILON = 2.220446049250313e-16;

interface Pending {
  start: number;
  end: number;
  depth: number;
  parent: number;
  isRight: boolean;
  stats: Float64Array;
  weight: number;
  nKnownConstants: number;
}

/** Largest finite double: the raw threshold of a split that only separates missing values. */
const ALL_FINITE = Number.MAX_VALUE;

/**
 * Sample weights of one tree: bootstrap draw counts (or 1) over the training rows, times balanced class weights.
 * Returns the weights per pack row and the rows with a positive weight, ascending.
 */
export function sampleWeights(pack: DatasetPack, rows: Uint32Array, params: ResolvedParams, rng: Rng): { weight: Float64Array; idx: Uint32Array } {
  const weight = new Float64Array(pack.nRows);
  const m = rows.length;
  if (params.bootstrap) {
    const draws = params.max_samples === null ? m : Math.max(1, countOrFractionRound(params.max_samples, m));
    for (let k = 0; k < draws; k++) weight[rows[rng.nextInt(m)]] += 1;
  } else {
    for (let i = 0; i < m; i++) weight[rows[i]] = 1;
  }
  if (params.class_weight === "balanced" && pack.target.task === "classification") {
    const { codes, classes } = pack.target;
    const counts = new Float64Array(classes.length);
    for (let i = 0; i < m; i++) counts[codes[rows[i]]]++;
    let present = 0;
    for (const c of counts) if (c > 0) present++;
    // sklearn: n_samples / (n_classes * bincount(y)), over the classes present in y.
    for (let i = 0; i < m; i++) {
      const r = rows[i];
      weight[r] *= m / (present * counts[codes[r]]);
    }
  }
  let n = 0;
  for (let i = 0; i < m; i++) if (weight[rows[i]] > 0) n++;
  const idx = new Uint32Array(n);
  let k = 0;
  for (let i = 0; i < m; i++) if (weight[rows[i]] > 0) idx[k++] = rows[i];
  return { weight, idx };
}

/** sklearn's max_samples: an integer count, or round(fraction * n). */
function countOrFractionRound(v: number, n: number): number {
  return Number.isInteger(v) && v >= 1 ? Math.min(v, Number.MAX_SAFE_INTEGER) : Math.round(v * n);
}

/** Grows one tree depth-first on the pack's training `rows`, seeded by `seed` alone. */
export function fitTree(pack: DatasetPack, rows: Uint32Array, params: ResolvedParams, seed: number, index: number): Tree {
  const rng = new Rng(seed);
  const { weight, idx } = sampleWeights(pack, rows, params, rng);
  const target = pack.target;
  const criterion: CriterionName = params.criterion;
  const classification = target.task === "classification";
  const width = classification ? target.classes.length : 3;
  const valueWidth = classification ? width : 1;
  const minSamplesLeaf = countOrFraction(params.min_samples_leaf, rows.length);
  const minSamplesSplit = Math.max(countOrFraction(params.min_samples_split, rows.length), 2, 2 * minSamplesLeaf);
  const maxDepth = params.max_depth ?? Infinity;
  const n = idx.length;
  // Per-sample target and weight, kept aligned with idx so split searches read them sequentially.
  const codeAt = classification ? new Uint16Array(n) : null;
  const valueAt = classification ? null : new Float64Array(n);
  const weightAt = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const r = idx[i];
    weightAt[i] = weight[r];
    if (codeAt !== null) codeAt[i] = (target as { codes: Uint16Array }).codes[r];
    else valueAt![i] = (target as { values: Float64Array }).values[r];
  }
  // Nodes below COLUMN_PASS_MIN_SAMPLES work on a copy of their subtree's rows: one contiguous block instead
  // of reads scattered over the whole pack, copied again at smaller sizes so deep nodes stay in the inner
  // caches. idx then holds row numbers within the innermost copy.
  const nFeatures = pack.nFeatures;
  const rowBins = rowMajorBins(pack);
  const levels = SUBTREE_LEVELS.map((limit) => ({
    limit,
    rows: new Uint8Array(Math.min(n, limit) * nFeatures),
    start: -1,
    end: -1,
  }));
  const splitter = new HistogramSplitter({
    bins: pack.bins,
    nRows: pack.nRows,
    nFeatures: pack.nFeatures,
    criterion,
    width,
    idx,
    codeAt,
    valueAt,
    weightAt,
    maxFeatures: featuresPerSplit(params.max_features, pack.nFeatures),
    minSamplesLeaf,
    rng,
  });

  const capacity = Math.max(1, 2 * n - 1);
  const feature = new Int32Array(capacity);
  const threshold = new Float64Array(capacity);
  const thresholdBin = new Uint8Array(capacity);
  const right = new Int32Array(capacity);
  const missingLeft = new Uint8Array(capacity);
  const gain = new Float32Array(capacity);
  const values = new Float32Array(Math.max(1, n) * valueWidth);
  let nodeCount = 0;
  let leafCount = 0;

  const rootStats = new Float64Array(width);
  let rootWeight = 0;
  for (let i = 0; i < n; i++) {
    const w = weightAt[i];
    rootWeight += w;
    if (codeAt !== null) rootStats[codeAt[i]] += w;
    else {
      const y = valueAt![i];
      rootStats[0] += w;
      rootStats[1] += w * y;
      rootStats[2] += w * y * y;
    }
  }
  const minDecrease = params.min_impurity_decrease * rootWeight;
  const stack: Pending[] = [{ start: 0, end: n, depth: 0, parent: -1, isRight: false, stats: rootStats, weight: rootWeight, nKnownConstants: 0 }];
  const bins = pack.bins;
  const nRows = pack.nRows;
  const scratch = new Uint32Array(n);
  const scratchW = new Float64Array(n);
  const scratchC = codeAt !== null ? new Uint16Array(n) : null;
  const scratchV = valueAt !== null ? new Float64Array(n) : null;

  while (stack.length > 0) {
    const node = stack.pop()!;
    const id = nodeCount++;
    if (node.isRight) right[node.parent] = id;
    const { start, end, stats, weight: w } = node;
    const count = end - start;
    // The innermost copy holding this node, then a finer one if the node has become small enough.
    let level = -1;
    for (let k = levels.length - 1; k >= 0; k--) {
      if (start >= levels[k].start && end <= levels[k].end) {
        level = k;
        break;
      }
    }
    let rows: Uint8Array | null = level >= 0 ? levels[level].rows : null;
    let finer = level + 1;
    while (finer + 1 < levels.length && count < levels[finer + 1].limit) finer++;
    if (finer < levels.length && count < levels[finer].limit) {
      const from = rows ?? rowBins;
      const to = levels[finer];
      for (let i = 0; i < count; i++) {
        const r = idx[start + i];
        to.rows.set(from.subarray(r * nFeatures, (r + 1) * nFeatures), i * nFeatures);
        idx[start + i] = i;
      }
      to.start = start;
      to.end = end;
      for (let k = finer + 1; k < levels.length; k++) levels[k].start = levels[k].end = -1;
      rows = to.rows;
    }
    const imp = impurity(criterion, stats, 0, width, w);
    let split = null;
    if (node.depth < maxDepth && count >= minSamplesSplit && imp > EPSILON) {
      split = splitter.findBestSplit(start, end, stats, w, node.nKnownConstants, rows);
    }
    let leftImp = 0;
    let rightImp = 0;
    let rightStats: Float64Array | null = null;
    if (split !== null) {
      rightStats = new Float64Array(width);
      for (let c = 0; c < width; c++) rightStats[c] = stats[c] - split.leftStats[c];
      leftImp = impurity(criterion, split.leftStats, 0, width, split.leftWeight);
      rightImp = impurity(criterion, rightStats, 0, width, w - split.leftWeight);
      const decrease = w * imp - split.leftWeight * leftImp - (w - split.leftWeight) * rightImp;
      if (decrease < minDecrease) split = null;
      else gain[id] = decrease;
    }
    if (split === null) {
      feature[id] = -1;
      right[id] = leafCount;
      const o = leafCount * valueWidth;
      if (classification) for (let c = 0; c < width; c++) values[o + c] = stats[c] / w;
      else values[o] = stats[1] / w;
      leafCount++;
      continue;
    }
    const f = split.feature;
    const tb = split.thresholdBin;
    const ml = split.missingLeft;
    feature[id] = f;
    thresholdBin[id] = tb;
    const edges = pack.edges[f];
    threshold[id] = tb < edges.length ? edges[tb] : ALL_FINITE;
    missingLeft[id] = ml ? 1 : 0;
    // Stable partition of idx[start, end): left samples first, both sides stay in ascending row order.
    const src = rows ?? bins;
    const rowStride = rows !== null ? nFeatures : 1;
    const col = rows !== null ? f : f * nRows;
    let mid = start;
    let nRight = 0;
    for (let i = start; i < end; i++) {
      const r = idx[i];
      const b = src[col + r * rowStride];
      if (b <= tb || (ml && b === MISSING_BIN)) {
        idx[mid] = r;
        weightAt[mid] = weightAt[i];
        if (codeAt !== null) codeAt[mid] = codeAt[i];
        else valueAt![mid] = valueAt![i];
        mid++;
      } else {
        scratch[nRight] = r;
        scratchW[nRight] = weightAt[i];
        if (scratchC !== null) scratchC[nRight] = codeAt![i];
        else scratchV![nRight] = valueAt![i];
        nRight++;
      }
    }
    idx.set(scratch.subarray(0, nRight), mid);
    weightAt.set(scratchW.subarray(0, nRight), mid);
    if (scratchC !== null) codeAt!.set(scratchC.subarray(0, nRight), mid);
    else valueAt!.set(scratchV!.subarray(0, nRight), mid);
    const depth = node.depth + 1;
    const nConst = splitter.nTotalConstants;
    const leftStats = split.leftStats.slice();
    // Right first, so the left child is popped next and gets id + 1.
    stack.push({ start: mid, end, depth, parent: id, isRight: true, stats: rightStats!, weight: w - split.leftWeight, nKnownConstants: nConst });
    stack.push({ start, end: mid, depth, parent: id, isRight: false, stats: leftStats, weight: split.leftWeight, nKnownConstants: nConst });
  }

  return {
    index,
    nodeCount,
    feature: feature.slice(0, nodeCount),
    threshold: threshold.slice(0, nodeCount),
    thresholdBin: thresholdBin.slice(0, nodeCount),
    right: right.slice(0, nodeCount),
    missingLeft: missingLeft.slice(0, nodeCount),
    gain: gain.slice(0, nodeCount),
    values: values.slice(0, leafCount * valueWidth),
  };
}
