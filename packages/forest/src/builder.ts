import { sampleWeights } from "./bootstrap.ts";
import { CARRY_MIN_SAMPLES, exactStatistics, HistogramCarry, type NodeHistograms } from "./carry.ts";
import { createCriterion } from "./criterion.ts";
import { countOrFraction, featuresPerSplit, type ResolvedParams } from "./options.ts";
import { MISSING_BIN, type DatasetPack } from "./pack.ts";
import { SamplePartition } from "./partition.ts";
import { Rng } from "./rng.ts";
import { HistogramSplitter, type Split } from "./splitter.ts";
import { TreeArrays } from "./tree-arrays.ts";
import type { Tree } from "./types.ts";

/** Below this, sklearn treats a node as pure. */
const EPSILON = 2.220446049250313e-16;

/**
 * A node waiting on the builder's stack: its samples [start, end) and what its parent learnt about them. Its
 * statistics are slot `slot` of the builder's stats pool (the stack position it was pushed at), so growing a
 * tree allocates nothing per node.
 */
interface Pending {
  start: number;
  end: number;
  depth: number;
  parent: number;
  isRight: boolean;
  weight: number;
  nKnownConstants: number;
  /** The histograms its parent carried down to it (see HistogramCarry), or null. */
  held: NodeHistograms | null;
}

/** Node statistics by stack position: a node's children take its slot (right) and the next one (left). */
class StatsPool {
  private pool: Float64Array;

  constructor(private readonly width: number) {
    this.pool = new Float64Array(width * 64);
  }

  /** Slot k's statistics (a view, valid until the pool grows). */
  slot(k: number): Float64Array {
    const need = (k + 1) * this.width;
    if (need > this.pool.length) {
      const grown = new Float64Array(Math.max(need, this.pool.length * 2));
      grown.set(this.pool);
      this.pool = grown;
    }
    return this.pool.subarray(k * this.width, need);
  }
}

/**
 * Grows one tree depth-first on the pack's training `rows`, seeded by `seed` alone: scikit-learn's
 * DepthFirstTreeBuilder (sklearn/tree/_tree.pyx). The roles are sklearn's: the criterion scores, the splitter
 * finds a node's best split, the partition moves the node's samples to its children, the tree arrays record it;
 * this loop applies the stopping rules and keeps the stack.
 */
export function fitTree(
  pack: DatasetPack,
  rows: Uint32Array,
  params: ResolvedParams,
  seed: number,
  index: number,
  /** Given the tree's sample weights per pack row (its bootstrap draw counts), e.g. for its out-of-bag rows; valid until this thread's next tree starts. */
  onSample?: (weight: Float64Array) => void,
): Tree {
  const rng = new Rng(seed);
  const categorical = Uint8Array.from(pack.features, (f) => (f.kind === "categorical" ? 1 : 0));
  const maxFeatures = featuresPerSplit(params.max_features, pack.nFeatures);
  const binCounts = Int32Array.from(pack.edges, (e) => e.length + 1);
  const kernels = HistogramSplitter.kernelsFor(params, pack, rows.length, maxFeatures, categorical, binCounts);
  const { weight, idx } = sampleWeights(pack, rows, params, rng, kernels);
  onSample?.(weight);
  const samples = new SamplePartition(pack, idx, weight, kernels);
  const nClasses = pack.target.task === "classification" ? pack.target.classes.length : 0;
  const criterion = createCriterion(params.criterion, nClasses, samples);
  const minSamplesLeaf = countOrFraction(params.min_samples_leaf, rows.length);
  const minSamplesSplit = Math.max(countOrFraction(params.min_samples_split, rows.length), 2, 2 * minSamplesLeaf);
  const maxDepth = params.max_depth ?? Infinity;
  const carry = HistogramCarry.of(samples, criterion.width, maxFeatures, binCounts);
  const exact = exactStatistics(samples);
  const splitter = new HistogramSplitter({ samples, criterion, maxFeatures, minSamplesLeaf, rng, categorical, binCounts, carry, exact, kernels });
  const sets = new CategorySetBuilder();
  const tree = new TreeArrays(samples.size, criterion.valueWidth);
  const width = criterion.width;

  const pool = new StatsPool(width);
  const rootWeight = criterion.nodeStats(0, samples.size, pool.slot(0));
  const minDecrease = params.min_impurity_decrease * rootWeight;
  const stack: Pending[] = [{ start: 0, end: samples.size, depth: 0, parent: -1, isRight: false, weight: rootWeight, nKnownConstants: 0, held: null }];
  /** Whether a child of `n` samples and impurity `imp` at `depth` will be searched, and is large enough to carry to. */
  const carriedTo = (n: number, imp: number, depth: number) => depth < maxDepth && n >= minSamplesSplit && n >= CARRY_MIN_SAMPLES && imp > EPSILON;
  const rightStats = new Float64Array(width);

  // A node read from a row copy, with no histograms carried to it, has its whole subtree grown by the kernels where
  // they can (see growSubtree): this loop's rules in WebAssembly, the same nodes.
  const grows = kernels !== null && kernels.subtree !== null && carry === null ? kernels : null;
  const rules = { maxDepth: Math.min(maxDepth, 0x7fffffff), minSplit: minSamplesSplit, minLeaf: minSamplesLeaf, countedMax: splitter.countedMax, minDecrease };

  while (stack.length > 0) {
    const node = stack.pop()!;
    const slot = stack.length;
    const stats = pool.slot(slot);
    const { start, end, weight: w } = node;
    const nodeRows = samples.rowsOf(start, end);
    if (grows !== null && nodeRows !== null && node.held === null) {
      const subtree = grows.subtree!;
      subtree.stats.set(stats);
      samples.saveLevels(grows.levels);
      const count = splitter.growSubtree(grows, start, end, node.depth, node.nKnownConstants, w, nodeRows, tree.nodeCount, tree.leafCount, rules);
      samples.loadLevels(grows.levels);
      tree.addSubtree(node.parent, node.isRight, count, subtree);
      continue;
    }
    const id = tree.addNode(node.parent, node.isRight);
    const imp = criterion.impurity(stats, w);
    let split = null;
    // A node large enough for its children to be carried to keeps the histograms it fills (see HistogramCarry).
    let held = node.held;
    if (node.depth < maxDepth && end - start >= minSamplesSplit && imp > EPSILON) {
      if (held === null && carry !== null && end - start >= 2 * CARRY_MIN_SAMPLES) held = carry.take();
      split = splitter.findBestSplit(start, end, stats, w, node.nKnownConstants, nodeRows, held);
    }
    let decrease = 0;
    let leftImp = 0;
    let rightImp = 0;
    if (split !== null) {
      for (let c = 0; c < width; c++) rightStats[c] = stats[c] - split.leftStats[c];
      leftImp = criterion.impurity(split.leftStats, split.leftWeight);
      rightImp = criterion.impurity(rightStats, w - split.leftWeight);
      decrease = w * imp - split.leftWeight * leftImp - (w - split.leftWeight) * rightImp;
      if (decrease < minDecrease) split = null;
    }
    if (split === null) {
      carry?.give(held);
      criterion.nodeValue(stats, w, tree.values, tree.setLeaf(id));
      continue;
    }
    let mid: number;
    const f = split.feature;
    const wide = pack.wideColumn !== undefined && pack.wideColumn[f] >= 0;
    if (split.categorical) {
      const words = sets.words(split, pack.edges[f].length + 1, !wide);
      tree.setCategoricalSplit(id, f, words, split.missingLeft, decrease);
      mid = wide ? samples.splitWide(start, end, f, 0, split.missingLeft, words) : samples.splitBySet(start, end, nodeRows, f, sets.goesLeft);
    } else {
      tree.setSplit(id, f, split.thresholdBin, pack.edges[f], split.missingLeft, decrease);
      mid = wide
        ? samples.splitWide(start, end, f, split.thresholdBin, split.missingLeft, null)
        : splitter.split(start, end, nodeRows, f, split.thresholdBin, split.missingLeft);
    }
    const depth = node.depth + 1;
    const nConst = splitter.nTotalConstants;
    // The larger child's histograms are this node's minus the smaller's, filled here; a child that will not be
    // searched gets none.
    let heldLeft: NodeHistograms | null = null;
    let heldRight: NodeHistograms | null = null;
    if (held !== null) {
      const leftLarger = mid - start >= end - mid;
      const toLeft = carriedTo(mid - start, leftImp, depth);
      const toRight = carriedTo(end - mid, rightImp, depth);
      let smaller: NodeHistograms | null = null;
      if (leftLarger ? toLeft : toRight) smaller = leftLarger ? carry!.splitOff(held, mid, end, nodeRows) : carry!.splitOff(held, start, mid, nodeRows);
      if (smaller === null) carry!.give(held);
      else {
        if (!(leftLarger ? toRight : toLeft)) {
          carry!.give(smaller);
          smaller = null;
        }
        heldLeft = leftLarger ? held : smaller;
        heldRight = leftLarger ? smaller : held;
      }
    }
    // Right first, so the left child is popped next and gets id + 1. The right child takes this node's slot.
    stats.set(rightStats);
    pool.slot(slot + 1).set(split.leftStats);
    stack.push({ start: mid, end, depth, parent: id, isRight: true, weight: w - split.leftWeight, nKnownConstants: nConst, held: heldRight });
    stack.push({ start, end: mid, depth, parent: id, isRight: false, weight: split.leftWeight, nKnownConstants: nConst, held: heldLeft });
  }
  samples.release();
  return tree.toTree(index);
}

/**
 * A categorical split as the model stores it (a bitset over the feature's codes: the left categories set, the
 * categories absent from the node following the missing values) and as the partition applies it (per bin).
 */
class CategorySetBuilder {
  /** Per bin: 1 if its samples go left; the missing bin included. */
  readonly goesLeft = new Uint8Array(MISSING_BIN + 1);

  /** The split's set over the feature's `nCodes` codes; with `table`, also `goesLeft` (an 8-bit feature's). */
  words(split: Split, nCodes: number, table: boolean): Uint32Array {
    const fill = split.missingLeft ? 1 : 0;
    // Every code outside the node's two sets (absent here, or beyond the feature's codes) follows missing values.
    const words = new Uint32Array(Math.ceil(nCodes / 32)).fill(fill ? 0xffffffff : 0);
    if (table) this.goesLeft.fill(fill);
    for (let k = 0; k < split.nPresent; k++) {
      const c = split.order[k];
      const left = k <= split.thresholdBin ? 1 : 0;
      if (table) this.goesLeft[c] = left;
      if (left) words[c >>> 5] |= 1 << (c & 31);
      else words[c >>> 5] &= ~(1 << (c & 31));
    }
    return words;
  }
}
