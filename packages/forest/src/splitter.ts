import type { HistogramCarry, NodeHistograms } from "./carry.ts";
import { addRegressionSample, type Criterion } from "./criterion.ts";
import type { ResolvedParams } from "./options.ts";
import { MISSING_BIN, MISSING_WIDE_BIN, type DatasetPack } from "./pack.ts";
import { COLUMN_PASS_MIN_SAMPLES, rowCopyBytes, type SamplePartition } from "./partition.ts";
import type { Rng } from "./rng.ts";
import { CATEGORICAL, EVALUATE, GiniKernels, SEARCHED, SWEEP_MAX, type SubtreeRules } from "./split-kernels.ts";

/**
 * The best split found at a node. Statistics of the left child are in `leftStats`. A numeric split sends bins
 * <= thresholdBin left; a categorical one sends the categories order[0..thresholdBin] left and the rest of the
 * node's categories, order(thresholdBin..nPresent), right.
 */
export interface Split {
  feature: number;
  thresholdBin: number;
  categorical: boolean;
  /** Categorical: the categories present at the node (non-missing), in the order they were scanned. */
  order: Int32Array;
  nPresent: number;
  missingLeft: boolean;
  proxy: number;
  leftWeight: number;
  leftCount: number;
  leftStats: Float64Array;
}

/**
 * The splitter's best split so far, one per splitter, rewritten at every node. A class rather than an object literal:
 * V8 generalises the field types of a literal's shape the second time the literal is made (the next tree's splitter),
 * and deoptimises the code that relied on them, which the first tree had just compiled. Digits, 10 trees, in a fresh
 * process: without such deoptimisations (this record, the splitter's own fields, SubtreeRows, the criterion's doubles,
 * the Rng's int32 state) the first fit took a median 67 ms instead of 83-86 ms, as with V8's field types turned off.
 */
class SplitRecord implements Split {
  feature = -1;
  thresholdBin = 0;
  categorical = false;
  readonly order: Int32Array;
  nPresent = 0;
  missingLeft = false;
  proxy = -Infinity;
  /** NaN until a split is recorded, for the reason SweepingCriterion gives (criterion.ts). */
  leftWeight = NaN;
  leftCount = 0;
  readonly leftStats: Float64Array;

  constructor(bins: number, width: number) {
    this.order = new Int32Array(bins);
    this.leftStats = new Float64Array(width);
  }

  /**
   * A better split of feature f at b (a bin, or a categorical split's position in its order: scan then marks it
   * categorical), missing values left or not, proxy p, left weight, count and sums.
   */
  record(f: number, b: number, missingLeft: boolean, p: number, lw: number, ln: number, stats: Float64Array): void {
    this.feature = f;
    this.thresholdBin = b;
    this.categorical = false;
    this.missingLeft = missingLeft;
    this.proxy = p;
    this.leftWeight = lw;
    this.leftCount = ln;
    this.leftStats.set(stats);
  }
}

export interface SplitterConfig {
  /**
   * The tree's samples, partitioned by the builder: pack rows (ascending within a node) for large nodes, and
   * row numbers in the subtree's row copy for small ones; targets and weights move with them.
   */
  samples: SamplePartition;
  criterion: Criterion;
  maxFeatures: number;
  minSamplesLeaf: number;
  rng: Rng;
  /** 1 for a categorical feature (its bins are category codes, split into two sets), 0 for a numeric one. */
  categorical: Uint8Array;
  /** Per feature: its bins below the missing bin (edges + 1); an 8-bit feature's histogram has no others. */
  binCounts: Int32Array;
  /** Histogram subtraction, when this tree's nodes can carry their histograms to their children (see HistogramCarry). */
  carry: HistogramCarry | null;
  /** Every statistic is an exact integer sum (see exactStatistics): a sweep may add samples or whole bins alike. */
  exact: boolean;
  /** The kernels whose memory holds the samples' arrays (kernelsFor), or null for the JavaScript alone. */
  kernels: GiniKernels | null;
}

/**
 * Up to this many bytes of row-major bins, the kernels copy the pack's rows into their memory for each tree, where they
 * make a subtree's first row copy too (digits: 92 KB, where each tree's first copy, a row at a time, ran in JavaScript
 * V8 had not compiled yet). Larger packs' first copies stay in JavaScript: their trees are long enough for it.
 */
const PACK_ROWS_MAX = 8 << 20;

/** Classes up to which the kernels grow whole subtrees (their statistics and leaf values take about 50 KB a class). */
const SUBTREE_MAX_WIDTH = 256;

/** Up to this many samples, the non-empty bins are tracked as they fill instead of found by a 255-bin sweep. */
const TRACK_TOUCHED_MAX_SAMPLES = 64;
/**
 * Up to this many samples, a feature is scored by sorting the samples by bin and sweeping them one at a time
 * (O(1) per sample for gini and squared error); histograms would cost more to clear than to fill.
 */
const SORTED_MAX_SAMPLES = 32;
/**
 * Up to this many samples per statistic (class or regression sum), a feature of a small node with exact statistics
 * is scored by a counting sort of its samples by bin and a sweep one sample at a time: O(samples + bins) instead of
 * the histogram's O(samples + non-empty bins × statistics) (see countingSort). FM 13k, 6 trees with max_features
 * 0.1, per statistic: 15 samples 1.05 s, 30 samples 1.04 s, 100 samples 1.09 s, never 1.10 s (before the bitmap; with
 * it, 30, 60 and 120 were within noise); FM 20k, 10 trees with sqrt: 1.03 s against 1.08 s. The same trees either
 * way (counted.test.ts).
 */
const COUNTED_MAX_SAMPLES_PER_STAT = 30;
/**
 * A category is ordered and scanned on its own only where the node has at least this many of its samples; rarer
 * ones join the missing values' side. A category alone with one sample is keyed by that sample's own target, so
 * ordering by the keys sorts those samples by their labels and a set split can isolate them on the label itself:
 * the target leakage of target statistics computed with the sample's own label (Prokhorenkova et al., CatBoost:
 * unbiased boosting with categorical features, 2018). Two samples are the least that average over more than one
 * label, as min_samples_split = 2 is the smallest node sklearn splits. scikit-learn's HistGradientBoosting keeps
 * MIN_CAT_SUPPORT = 10 (and LightGBM drops categories with fewer than cat_smooth = 10 samples) for boosted trees
 * whose leaves hold 20 samples by default; a forest grows its trees out to single samples, and 10 pooled away the
 * categories of every small node. Canopy's 100-tree forest, R² on the movies table of the bench (Director: almost
 * one category per film), mean of 5 splits: 0.362 with 1, 0.611 with 2, 0.600 with 3, 0.590 with 5, 0.578 with
 * 10 (scikit-learn on ordinal codes: 0.616); birdstrikes accuracy 0.548 with 2, 0.553 with 10
 * (sklearn 0.548); penguins 0.988 either way; flights, 200k rows: R² 0.221 with 2, 0.225 with 10 (sklearn 0.211).
 */
export const MIN_CATEGORY_SUPPORT = 2;
const BINS = 256;
/** Bins of a 16-bit feature, its missing bin included. */
const WIDE_BINS = 0x10000;

/**
 * Best-split search on binned features with bin × statistics histograms, in scikit-learn's Splitter role
 * (sklearn/tree/_splitter.pyx, BestSplitter). Feature sampling follows BestSplitter: up to max_features features
 * are drawn without replacement (known-constant ones count as drawn but cost nothing), drawing goes on until one
 * non-constant feature was seen, and features found constant are remembered for the subtree (they lead
 * `features`, the first `nTotalConstants` entries). Candidates are scored by the criterion.
 */
export class HistogramSplitter {
  readonly features: Int32Array;
  /** constantFeatures[0, nTotal) as left by each ancestor, to restore the prefix that swaps disturb. */
  private readonly constantFeatures: Int32Array;
  private readonly batch: Int32Array;
  private readonly hist: Float64Array;
  private readonly cnt: Int32Array;
  /** A second histogram for every other sample of a large node (see histogramFromColumn), or null (pairsHistograms). */
  private readonly hist2: Float64Array | null;
  private readonly cnt2: Int32Array | null;
  private readonly touched: Uint8Array;
  /** 16-bit features: the bins their histogram touched (it is always tracked: 65536 bins are too many to sweep). */
  private readonly touchedWide: Uint16Array | null;
  private readonly block: Uint8Array;
  /** The kernels, for gini (see usesKernels); null: the JavaScript alone. */
  private readonly giniKernels: GiniKernels | null;
  /** The batch positions gather copies (those whose histogram the node does not hold already). */
  private readonly gathered: Int32Array;
  private readonly order: Int32Array;
  /** insertionSort and countingSort: the node's samples in bin order (positions in the block), and their bins. */
  private readonly sortedPerm: Int32Array;
  private readonly sortedBins: Uint8Array;
  /** countingSort: a bit per 8-bit bin, set where the node has samples. */
  private readonly present = new Int32Array(8);
  /** The largest node countingSort sorts (0: never); a node of at most SORTED_MAX_SAMPLES is sorted whatever it is. */
  readonly countedMax: number;
  private readonly leftMissing: Float64Array;
  /** Per bin: the key categories are ordered by (their target statistic, see Criterion.categoryKeys). */
  private readonly catKey: Float64Array;
  private readonly best: SplitRecord;
  /** Total constants (known + newly found) after the last findBestSplit. */
  nTotalConstants = 0;
  /** Bins listed in `touched` by the last histogram, or -1 when it was not tracked. */
  private nTouched = -1;
  /** The node the last findBestSplit set in the kernels' memory ([setStart, setEnd)), or -1. */
  private setStart = -1;
  private setEnd = -1;

  /**
   * Whether a large node's histogram is filled as two, even and odd samples, then summed: for two classes with exact
   * statistics. Two classes put a column's samples in few histogram cells (FM's zero pixel: half the samples in two
   * cells), and each increment waits on the previous one to the same cell; two histograms halve those chains.
   * FM 60k, 5-9 against 0-4, 10 trees of depth 10: fit 1.18-1.26 s -> 1.02-1.04 s. Ten classes spread the same
   * samples over ten cells and gained nothing (FM 60k, 4 trees: 1.34-1.45 s either way). The sum is the one
   * histogram's to the bit only because every number in it is an integer.
   */
  static pairsHistograms(cfg: SplitterConfig): boolean {
    return cfg.exact && cfg.samples.codeAt !== null && cfg.criterion.width <= 2;
  }

  /**
   * Whether nodes read from a row copy are searched and split by the WebAssembly kernels (split-kernels.ts), and the
   * bootstrap drawn there, rather than by this class's and the partition's JavaScript: for gini, the criterion most
   * forests use, on 8-bit features. The same trees either way.
   */
  static usesKernels(params: ResolvedParams, pack: DatasetPack): boolean {
    return params.criterion === "gini" && pack.target.task === "classification" && (pack.wideBins === undefined || pack.wideBins.length === 0);
  }

  /**
   * The kernels (split-kernels.ts) for a tree of n training rows, when usesKernels: the bootstrap's weights, the
   * splitter's and the partition's arrays live in their memory, so the builder makes them first (sampleWeights',
   * SamplePartition's memory, SplitterConfig.kernels).
   */
  static kernelsFor(params: ResolvedParams, pack: DatasetPack, n: number, maxFeatures: number, categorical: Uint8Array, binCounts: Int32Array): GiniKernels | null {
    if (!HistogramSplitter.usesKernels(params, pack)) return null;
    const width = (pack.target as { classes: string[] }).classes.length;
    const { nFeatures } = pack;
    const packRowBytes = pack.nRows * nFeatures <= PACK_ROWS_MAX ? pack.nRows * nFeatures : 0;
    // Whole subtrees are grown by the kernels where no feature is categorical (they do not split by sets) and no node
    // carries histograms (HistogramCarry needs every feature drawn).
    const grows = maxFeatures < nFeatures && width <= SUBTREE_MAX_WIDTH && !categorical.includes(1);
    const edges = grows ? pack.edges : null;
    return GiniKernels.of({ width, maxFeatures, nFeatures, n, nRows: pack.nRows, packRowBytes, rowBytes: rowCopyBytes(n, nFeatures), categorical, binCounts, edges });
  }

  // The configuration's parts are fields of the splitter's own, not read through the object literal the builder passes:
  // V8 generalises a literal's field types when the literal is made a second time (the next tree), which threw away
  // the code compiled during the first tree (see the note on SplitRecord).
  private readonly samples: SamplePartition;
  private readonly criterion: Criterion;
  private readonly maxFeatures: number;
  private readonly minSamplesLeaf: number;
  private readonly rng: Rng;
  private readonly categorical: Uint8Array;
  private readonly binCounts: Int32Array;
  private readonly carry: HistogramCarry | null;

  constructor(cfg: SplitterConfig) {
    this.samples = cfg.samples;
    this.criterion = cfg.criterion;
    this.maxFeatures = cfg.maxFeatures;
    this.minSamplesLeaf = cfg.minSamplesLeaf;
    this.rng = cfg.rng;
    this.categorical = cfg.categorical;
    this.binCounts = cfg.binCounts;
    this.carry = cfg.carry;
    const { maxFeatures } = cfg;
    const { nFeatures } = cfg.samples;
    const { width } = cfg.criterion;
    const bins = cfg.samples.nWide > 0 ? WIDE_BINS : BINS;
    // The kernels hold the feature arrays, the block, the histogram and the batch in their memory (8-bit features
    // only: a 16-bit histogram is 256 times larger).
    const kernels = bins === BINS ? cfg.kernels : null;
    this.giniKernels = kernels;
    this.features = kernels?.features ?? new Int32Array(nFeatures);
    for (let f = 0; f < nFeatures; f++) this.features[f] = f;
    this.constantFeatures = kernels?.constants.fill(0) ?? new Int32Array(nFeatures);
    const blockBytes = maxFeatures * COLUMN_PASS_MIN_SAMPLES;
    this.batch = kernels?.batch ?? new Int32Array(maxFeatures);
    this.hist = this.giniKernels?.hist ?? new Float64Array(bins * width);
    this.cnt = this.giniKernels?.cnt ?? new Int32Array(bins);
    const paired = HistogramSplitter.pairsHistograms(cfg);
    this.hist2 = paired ? new Float64Array(BINS * width) : null;
    this.cnt2 = paired ? new Int32Array(BINS) : null;
    this.touched = new Uint8Array(BINS);
    this.touchedWide = cfg.samples.nWide > 0 ? new Uint16Array(WIDE_BINS) : null;
    this.block = this.giniKernels?.block ?? new Uint8Array(blockBytes);
    this.gathered = kernels?.gathered ?? new Int32Array(maxFeatures);
    this.order = new Int32Array(bins);
    this.countedMax = cfg.exact && cfg.criterion.constantTimeProxy ? Math.min(COLUMN_PASS_MIN_SAMPLES, COUNTED_MAX_SAMPLES_PER_STAT * width) : 0;
    this.sortedPerm = new Int32Array(Math.max(SORTED_MAX_SAMPLES, this.countedMax));
    this.sortedBins = new Uint8Array(Math.max(SORTED_MAX_SAMPLES, this.countedMax));
    this.leftMissing = new Float64Array(width);
    this.catKey = new Float64Array(bins);
    this.best = new SplitRecord(bins, width);
  }

  /**
   * Finds the best split of samples idx[start, end) (ascending rows) whose statistics are `total` and weight
   * `w`; the first `nKnownConstants` entries of `features` are constant here. `rows` is the row-major copy
   * idx refers to in a small subtree, or null to read the pack's columns. `held`: the node's carried
   * histograms (see HistogramCarry): those it holds are read instead of filled, and those filled here are kept in
   * it. Null if no valid split exists.
   */
  findBestSplit(
    start: number,
    end: number,
    total: Float64Array,
    w: number,
    nKnownConstants: number,
    rows: Uint8Array | null,
    held: NodeHistograms | null = null,
  ): Split | null {
    const { maxFeatures, rng, carry } = this;
    const { nFeatures } = this.samples;
    const features = this.features;
    const batch = this.batch;
    const best = this.best;
    best.feature = -1;
    best.proxy = -Infinity;

    const sorted = rows !== null && end - start <= SORTED_MAX_SAMPLES && this.criterion.constantTimeProxy;
    const counted = rows !== null && !sorted && held === null && end - start <= this.countedMax;
    // A node read from a row copy (at most SWEEP_MAX samples) is the kernels' to search; one with carried histograms
    // is searched here, the kernels gathering its features and splitting it.
    const kernels = rows !== null && end - start <= SWEEP_MAX ? this.giniKernels : null;
    this.setStart = this.setEnd = -1;
    if (kernels !== null && held === null) return this.searchInKernels(kernels, start, end, total, w, nKnownConstants, rows!, sorted || counted);
    if (kernels !== null) {
      kernels.setNode(start, end, total);
      this.setStart = start;
      this.setEnd = end;
    }

    // Undrawn features: known constants in [nDrawnKnown, nKnownConstants), others in [nTotal, poolEnd).
    let nDrawnKnown = 0;
    let nTotal = nKnownConstants;
    let poolEnd = nFeatures;
    let visited = 0;
    let found = 0; // non-constant features evaluated
    while (poolEnd > nTotal && (visited < maxFeatures || found === 0)) {
      // Draw a batch: the rest of the budget, or one at a time once the budget is spent on constants.
      const budget = visited < maxFeatures ? maxFeatures - visited : 1;
      let nb = 0;
      while (nb < budget && poolEnd > nTotal) {
        visited++;
        const undrawn = nKnownConstants - nDrawnKnown + (poolEnd - nTotal);
        const k = rng.nextInt(undrawn);
        if (k < nKnownConstants - nDrawnKnown) {
          const p = nDrawnKnown + k;
          const t = features[nDrawnKnown];
          features[nDrawnKnown] = features[p];
          features[p] = t;
          nDrawnKnown++;
          continue;
        }
        const p = nTotal + (k - (nKnownConstants - nDrawnKnown));
        poolEnd--;
        const f = features[p];
        features[p] = features[poolEnd];
        features[poolEnd] = f;
        batch[nb++] = f;
      }
      if (nb === 0) continue;
      if (rows !== null) this.gather(rows, start, end, nb, held, kernels);
      const categorical = this.categorical;
      const wide = this.samples.wideColumn;
      for (let j = 0; j < nb; j++) {
        const f = batch[j];
        let outcome: number;
        if (wide !== null && wide[f] >= 0) outcome = this.evaluateWide(f, start, end, total, w) ? 1 : 0;
        else if (categorical[f] === 1) outcome = -1;
        else if (sorted || counted) {
          // The sweep has one call site: inlined into each sort, V8 compiled it twice while a fresh process's first fit
          // ran slow code waiting for it (digits, 10 trees, median of 14 fresh processes: 68.5 -> 62 ms).
          outcome = sorted ? this.insertionSort(j, start, end) : this.countingSort(j, start, end);
          if (outcome === 1) this.sweepSorted(f, start, end - start, total, w);
        } else outcome = -1;
        if (outcome < 0) {
          if (held !== null && held.held[f] === 1) {
            carry!.load(held, f, this.hist, this.cnt);
            this.nTouched = -1;
          } else {
            if (rows !== null) this.histogramFromBlock(j, start, end);
            else this.histogramFromColumn(f, start, end);
            if (held !== null) carry!.keep(held, f, this.hist, this.cnt);
          }
          if (outcome < 0) outcome = this.evaluate(f, end - start, total, w) ? 1 : 0;
        }
        if (outcome === 1) {
          found++;
          continue;
        }
        // The children know it is constant and never draw it: nothing to carry.
        if (held !== null) held.held[f] = 0;
        // Constant here: move it from the drawn tail into the constant prefix.
        const p = features.indexOf(f, poolEnd);
        features[p] = features[poolEnd];
        features[poolEnd] = f;
        poolEnd++;
        features[poolEnd - 1] = features[nTotal];
        features[nTotal] = f;
        nTotal++;
      }
    }
    // As sklearn: drawing known constants swapped them within the prefix, and a subtree may since have moved
    // its own constants in there; siblings and children must see exactly this node's constants, so restore
    // the known prefix and record the newly found ones.
    features.set(this.constantFeatures.subarray(0, nKnownConstants));
    this.constantFeatures.set(features.subarray(nKnownConstants, nTotal), nKnownConstants);
    this.nTotalConstants = nTotal;
    return best.feature >= 0 ? best : null;
  }

  /**
   * findBestSplit for a node of the kernels' without carried histograms: searched in WebAssembly (see searchNode), the
   * splitter scoring only the features it stops at (missing values, categorical); the same draws, outcomes and split.
   */
  private searchInKernels(kernels: GiniKernels, start: number, end: number, total: Float64Array, w: number, nKnown: number, rows: Uint8Array, sweep: boolean): Split | null {
    const best = this.best;
    this.rng.saveTo(kernels.rngState);
    let status = kernels.search(start, end, rows, total, nKnown, w, this.minSamplesLeaf, sweep, best, -1);
    while (status !== SEARCHED) {
      const j = kernels.pending;
      if (status === CATEGORICAL) this.histogramFromBlock(j, start, end);
      else this.nTouched = -1;
      const outcome = this.evaluate(this.batch[j], end - start, total, w) ? 1 : 0;
      status = kernels.search(start, end, rows, total, nKnown, w, this.minSamplesLeaf, sweep, best, outcome);
    }
    this.rng.loadFrom(kernels.rngState);
    this.nTotalConstants = kernels.nTotalConstants;
    this.setStart = start;
    this.setEnd = end;
    return best.feature >= 0 ? best : null;
  }

  /**
   * Grows the subtree of node [start, end) by the kernels (see growSubtree; the builder's loop), scoring here the
   * features its nodes' searches stop at (missing values) as searchInKernels does; returns its nodes (kernels.subtree).
   */
  growSubtree(kernels: GiniKernels, start: number, end: number, depth: number, nKnown: number, w: number, rows: Uint8Array, id0: number, leaf0: number, rules: SubtreeRules): number {
    const best = this.best;
    this.rng.saveTo(kernels.rngState);
    let nodes = kernels.grow(start, end, depth, nKnown, w, rows, id0, leaf0, rules, -1, -Infinity);
    while (nodes < 0) {
      if (-nodes !== EVALUATE) throw new Error(`growSubtree stopped at a categorical feature (status ${-nodes})`);
      const stop = kernels.stop;
      best.feature = stop.bestFeature;
      best.proxy = stop.bestProxy;
      this.nTouched = -1;
      const outcome = this.evaluate(this.batch[kernels.pending], stop.n, stop.total, stop.w) ? 1 : 0;
      if (best.feature !== stop.bestFeature) kernels.recordBest(best);
      nodes = kernels.grow(start, end, depth, nKnown, w, rows, id0, leaf0, rules, outcome, best.proxy);
    }
    this.rng.loadFrom(kernels.rngState);
    return nodes;
  }

  /**
   * Splits node [start, end) as SamplePartition.split does (`rows`: what rowsOf gave for it): in the kernels' memory
   * when the last findBestSplit set the node there.
   */
  split(start: number, end: number, rows: Uint8Array | null, feature: number, thresholdBin: number, missingLeft: boolean): number {
    const kernels = this.giniKernels;
    const { samples } = this;
    if (kernels !== null && rows !== null && start === this.setStart && end === this.setEnd && kernels.holds(rows)) {
      return kernels.split(rows, feature, thresholdBin, missingLeft, start, end);
    }
    return samples.split(start, end, rows, feature, thresholdBin, missingLeft);
  }

  /**
   * block[j * n + i] = bin of batch feature j for the node's i-th sample, for the features `held` lacks: by the
   * kernels when they hold the node (set by setNode) and its row copy.
   */
  private gather(rows: Uint8Array, start: number, end: number, nb: number, held: NodeHistograms | null, kernels: GiniKernels | null): void {
    const { nFeatures, idx } = this.samples;
    const block = this.block;
    const batch = this.batch;
    const gathered = this.gathered;
    const n = end - start;
    let m = 0;
    for (let j = 0; j < nb; j++) if (held === null || n <= SORTED_MAX_SAMPLES || held.held[batch[j]] === 0) gathered[m++] = j;
    if (m === 0) return;
    if (kernels !== null && kernels.holds(rows)) {
      kernels.gather(rows, n, m);
      return;
    }
    // Four rows at a time: their reads, each likely a cache miss in a subtree's row copy, overlap. FM 60k, 3 trees
    // at sqrt: 0.93-0.99 -> 0.82-0.86 s; FM 13k, 6 trees at 0.1: 1.02-1.04 -> 0.90-0.95 s (eight rows: the same).
    let i = 0;
    for (; i + 3 < n; i += 4) {
      const base0 = idx[start + i] * nFeatures;
      const base1 = idx[start + i + 1] * nFeatures;
      const base2 = idx[start + i + 2] * nFeatures;
      const base3 = idx[start + i + 3] * nFeatures;
      for (let k = 0; k < m; k++) {
        const j = gathered[k];
        const f = batch[j];
        const d = j * n + i;
        block[d] = rows[base0 + f];
        block[d + 1] = rows[base1 + f];
        block[d + 2] = rows[base2 + f];
        block[d + 3] = rows[base3 + f];
      }
    }
    for (; i < n; i++) {
      const base = idx[start + i] * nFeatures;
      for (let k = 0; k < m; k++) {
        const j = gathered[k];
        block[j * n + i] = rows[base + batch[j]];
      }
    }
  }

  /** Histogram of the gathered block's feature j; tracks touched bins in small nodes. */
  private histogramFromBlock(j: number, start: number, end: number): void {
    const { codeAt, valueAt, weightAt } = this.samples;
    const { width } = this.criterion;
    const hist = this.hist;
    const cnt = this.cnt;
    const block = this.block;
    const n = end - start;
    const lo = j * n - start;
    if (n <= TRACK_TOUCHED_MAX_SAMPLES) {
      const touched = this.touched;
      let nt = 0;
      if (codeAt !== null) {
        for (let i = start; i < end; i++) {
          const b = block[lo + i];
          if (cnt[b]++ === 0) touched[nt++] = b;
          hist[b * width + codeAt[i]] += weightAt[i];
        }
      } else {
        for (let i = start; i < end; i++) {
          const b = block[lo + i];
          if (cnt[b]++ === 0) touched[nt++] = b;
          addRegressionSample(hist, b * 3, weightAt[i], valueAt![i]);
        }
      }
      this.nTouched = nt;
      return;
    }
    if (codeAt !== null) {
      for (let i = start; i < end; i++) {
        const b = block[lo + i];
        cnt[b]++;
        hist[b * width + codeAt[i]] += weightAt[i];
      }
    } else {
      for (let i = start; i < end; i++) {
        const b = block[lo + i];
        cnt[b]++;
        addRegressionSample(hist, b * 3, weightAt[i], valueAt![i]);
      }
    }
    this.nTouched = -1;
  }

  /** Adds the second histogram (every other sample) into the first and clears it. */
  private mergeSecondHistogram(f: number): void {
    const { width } = this.criterion;
    const hist = this.hist;
    const cnt = this.cnt;
    const hist2 = this.hist2!;
    const cnt2 = this.cnt2!;
    const top = Math.min(this.binCounts[f], MISSING_BIN);
    for (let b = 0; b <= MISSING_BIN; b = b + 1 === top ? MISSING_BIN : b + 1) {
      const c = cnt2[b];
      if (c === 0) continue;
      cnt[b] += c;
      cnt2[b] = 0;
      const o = b * width;
      for (let k = 0; k < width; k++) {
        hist[o + k] += hist2[o + k];
        hist2[o + k] = 0;
      }
    }
  }

  /** Histogram of feature f read from the pack's column (large nodes). */
  private histogramFromColumn(f: number, start: number, end: number): void {
    const { bins, nRows, idx, codeAt, valueAt, weightAt } = this.samples;
    const { width } = this.criterion;
    const hist = this.hist;
    const cnt = this.cnt;
    const col = f * nRows;
    const hist2 = this.hist2;
    const cnt2 = this.cnt2;
    if (codeAt !== null && hist2 !== null && cnt2 !== null) {
      // Even samples into one histogram, odd ones into the other (see pairsHistograms).
      let i = start;
      for (; i + 1 < end; i += 2) {
        const b0 = bins[col + idx[i]];
        const b1 = bins[col + idx[i + 1]];
        cnt[b0]++;
        hist[b0 * width + codeAt[i]] += weightAt[i];
        cnt2[b1]++;
        hist2[b1 * width + codeAt[i + 1]] += weightAt[i + 1];
      }
      if (i < end) {
        const b = bins[col + idx[i]];
        cnt[b]++;
        hist[b * width + codeAt[i]] += weightAt[i];
      }
      this.mergeSecondHistogram(f);
    } else if (codeAt !== null) {
      for (let i = start; i < end; i++) {
        const b = bins[col + idx[i]];
        cnt[b]++;
        hist[b * width + codeAt[i]] += weightAt[i];
      }
    } else {
      for (let i = start; i < end; i++) {
        const b = bins[col + idx[i]];
        cnt[b]++;
        addRegressionSample(hist, b * 3, weightAt[i], valueAt![i]);
      }
    }
    this.nTouched = -1;
  }

  /**
   * Sorts the gathered feature j of a small node by bin (insertion sort) into sortedPerm and sortedBins, for
   * sweepSorted (criteria with an O(1) proxy). Returns 1 if sorted, 0 if the feature is constant here, -1 if it has
   * missing values (the histogram path handles their two directions).
   */
  private insertionSort(j: number, start: number, end: number): number {
    const block = this.block;
    const perm = this.sortedPerm;
    const n = end - start;
    const lo = j * n;
    for (let i = 0; i < n; i++) {
      const b = block[lo + i];
      if (b === MISSING_BIN) return -1;
      let k = i;
      while (k > 0 && block[lo + perm[k - 1]] > b) {
        perm[k] = perm[k - 1];
        k--;
      }
      perm[k] = i;
    }
    if (block[lo + perm[0]] === block[lo + perm[n - 1]]) return 0;
    for (let k = 0; k < n; k++) this.sortedBins[k] = block[lo + perm[k]];
    return 1;
  }

  /**
   * Sorts the gathered feature j of a small node as insertionSort does, with a counting sort by bin: a pass counts
   * the bins (and marks them in a bitmap, which lists the present ones in order), one places the samples; sweepSorted
   * then scores them. The bitmap, instead of sweeps over the feature's bins, took FM 13k at max_features 0.1 from 1.05
   * to 1.00 s. Only for exact statistics: adding a bin's samples one at a time then leaves the same numbers as adding
   * the bin's histogram row, so the split is the histogram's to the bit.
   * Returns 1 if sorted, 0 if the feature is constant here, -1 if it has missing values (nothing left written).
   */
  private countingSort(j: number, start: number, end: number): number {
    const block = this.block;
    const cnt = this.cnt;
    const perm = this.sortedPerm;
    const sortedBins = this.sortedBins;
    const n = end - start;
    const lo = j * n;
    // A bit per bin marks the bins present, read back in order a word at a time: no sweeps of the 255 bins.
    const present = this.present;
    const order = this.order;
    for (let i = 0; i < n; i++) {
      const b = block[lo + i];
      cnt[b]++;
      present[b >>> 5] |= 1 << (b & 31);
    }
    let nb = 0;
    for (let word = 0; word < 8; word++) {
      let bits = present[word];
      present[word] = 0;
      while (bits !== 0) {
        const low = bits & -bits;
        order[nb++] = (word << 5) | (31 - Math.clz32(low));
        bits ^= low;
      }
    }
    const missing = order[nb - 1] === MISSING_BIN;
    if (missing || nb <= 1) {
      for (let k = 0; k < nb; k++) cnt[order[k]] = 0;
      return missing ? -1 : 0;
    }
    let at = 0;
    for (let k = 0; k < nb; k++) {
      const b = order[k];
      const c = cnt[b];
      cnt[b] = at;
      at += c;
    }
    for (let i = 0; i < n; i++) {
      const b = block[lo + i];
      const k = cnt[b]++;
      perm[k] = i;
      sortedBins[k] = b;
    }
    for (let k = 0; k < nb; k++) cnt[order[k]] = 0;
    return 1;
  }

  /**
   * Sweeps a small node's n samples in bin order, sortedPerm[0, n) (positions from `start`) with their bins in
   * sortedBins, one at a time into the criterion, scoring each boundary between bins into `best`.
   */
  private sweepSorted(f: number, start: number, n: number, total: Float64Array, w: number): void {
    const { criterion, minSamplesLeaf } = this;
    const perm = this.sortedPerm;
    const sortedBins = this.sortedBins;
    const best = this.best;
    criterion.reset(total, w);
    for (let k = 0; k < n - 1; k++) {
      criterion.addSample(start + perm[k]);
      const b = sortedBins[k];
      if (sortedBins[k + 1] === b) continue;
      const ln = k + 1;
      if (ln < minSamplesLeaf || n - ln < minSamplesLeaf) continue;
      const p = criterion.proxyHere();
      if (p > best.proxy) best.record(f, b, n - ln > ln ? false : true, p, criterion.leftWeight, ln, criterion.left);
    }
  }

  /** Scans the histogram just built for feature f into `best` and clears it; false if f is constant here. */
  private evaluate(f: number, n: number, total: Float64Array, w: number): boolean {
    const cnt = this.cnt;
    const order = this.order;
    const nt = this.nTouched;
    let nb = 0;
    if (nt < 0) {
      // Only the feature's own bins: digits' pixels have 17, not 255.
      const top = Math.min(this.binCounts[f], MISSING_BIN);
      for (let b = 0; b < top; b++) if (cnt[b] > 0) order[nb++] = b;
    } else {
      const touched = this.touched;
      for (let t = 0; t < nt; t++) {
        const b = touched[t];
        if (b === MISSING_BIN) continue;
        let k = nb++;
        while (k > 0 && order[k - 1] > b) {
          order[k] = order[k - 1];
          k--;
        }
        order[k] = b;
      }
    }
    return this.scanAndClear(f, nb, MISSING_BIN, n, total, w);
  }

  /**
   * A 16-bit feature: its histogram (from the node's row copy or the pack's column), with the touched bins
   * listed, scanned into `best` and cleared; false if the feature is constant here.
   */
  private evaluateWide(f: number, start: number, end: number, total: Float64Array, w: number): boolean {
    const { idx, codeAt, valueAt, weightAt, wideRows, wideBins, wideColumn, nWide, nRows } = this.samples;
    const { width } = this.criterion;
    const hist = this.hist;
    const cnt = this.cnt;
    const touched = this.touchedWide!;
    const src = wideRows ?? wideBins!;
    const stride = wideRows !== null ? nWide : 1;
    const col = wideRows !== null ? wideColumn![f] : wideColumn![f] * nRows;
    let nt = 0;
    if (codeAt !== null) {
      for (let i = start; i < end; i++) {
        const b = src[col + idx[i] * stride];
        if (cnt[b]++ === 0) touched[nt++] = b;
        hist[b * width + codeAt[i]] += weightAt[i];
      }
    } else {
      for (let i = start; i < end; i++) {
        const b = src[col + idx[i] * stride];
        if (cnt[b]++ === 0) touched[nt++] = b;
        addRegressionSample(hist, b * 3, weightAt[i], valueAt![i]);
      }
    }
    const order = this.order;
    let nb = 0;
    for (let t = 0; t < nt; t++) if (touched[t] !== MISSING_WIDE_BIN) order[nb++] = touched[t];
    if (this.categorical[f] === 0) order.subarray(0, nb).sort();
    return this.scanAndClear(f, nb, MISSING_WIDE_BIN, end - start, total, w);
  }

  /**
   * Scans the histogram's non-missing bins order[0, nb) (ascending; a categorical feature's are ordered here)
   * and its `missing` bin into `best`, then clears what the node wrote; false if the feature is constant here.
   */
  private scanAndClear(f: number, nb: number, missing: number, n: number, total: Float64Array, w: number): boolean {
    const { width } = this.criterion;
    const hist = this.hist;
    const cnt = this.cnt;
    const order = this.order;
    const categorical = this.categorical[f] === 1;
    if (categorical) nb = this.poolRareCategories(nb, missing);
    const nMissing = cnt[missing];
    const constant = nb + (nMissing > 0 ? 1 : 0) <= 1;
    if (!constant && categorical) this.orderCategories(nb);
    if (!constant) this.scan(f, nb, missing, nMissing, n, total, w, categorical);
    // Clear what this node wrote.
    for (let k = 0; k < nb; k++) {
      const h = order[k];
      cnt[h] = 0;
      const o = h * width;
      for (let c = 0; c < width; c++) hist[o + c] = 0;
    }
    if (nMissing > 0) {
      cnt[missing] = 0;
      const o = missing * width;
      for (let c = 0; c < width; c++) hist[o + c] = 0;
    }
    return !constant;
  }

  /**
   * Moves the categories of order[0, nb) with fewer than MIN_CATEGORY_SUPPORT samples here into the `missing`
   * bin (they go wherever missing values go) and clears their bins; returns how many categories remain.
   */
  private poolRareCategories(nb: number, missing: number): number {
    const { width } = this.criterion;
    const hist = this.hist;
    const cnt = this.cnt;
    const order = this.order;
    const mo = missing * width;
    let kept = 0;
    for (let k = 0; k < nb; k++) {
      const b = order[k];
      if (cnt[b] >= MIN_CATEGORY_SUPPORT) {
        order[kept++] = b;
        continue;
      }
      cnt[missing] += cnt[b];
      cnt[b] = 0;
      const o = b * width;
      for (let c = 0; c < width; c++) {
        hist[mo + c] += hist[o + c];
        hist[o + c] = 0;
      }
    }
    return kept;
  }

  /**
   * Orders a categorical feature's present categories, order[0, nb), by the criterion's key (the mean target, the
   * share of the second class, or the first principal component of the class shares), ties by code; scanning that
   * order as if it were a numeric feature's finds the best split into two sets (Breiman et al. 1984 for
   * regression and two classes; Coppersmith, Hong & Hosking 1999 for more classes).
   */
  private orderCategories(nb: number): void {
    const order = this.order;
    const key = this.catKey;
    this.criterion.categoryKeys(this.hist, order, nb, key);
    if (nb <= 16) {
      for (let i = 1; i < nb; i++) {
        const b = order[i];
        const kb = key[b];
        let k = i;
        while (k > 0 && (key[order[k - 1]] > kb || (key[order[k - 1]] === kb && order[k - 1] > b))) {
          order[k] = order[k - 1];
          k--;
        }
        order[k] = b;
      }
    } else {
      order.subarray(0, nb).sort((a, b) => key[a] - key[b] || a - b);
    }
  }

  /**
   * Sweeps the non-missing bins in `order` left to right; at each boundary, missing values go right, then left.
   * A numeric split records its bin; a categorical one its position in the order (kept with the split).
   */
  private scan(f: number, nb: number, missing: number, nMissing: number, n: number, total: Float64Array, w: number, categorical: boolean): void {
    const { criterion, minSamplesLeaf } = this;
    const { width } = criterion;
    const hist = this.hist;
    const cnt = this.cnt;
    const order = this.order;
    const left = criterion.left;
    const withMissing = this.leftMissing;
    const best = this.best;
    const mo = missing * width;
    const missingW = nMissing > 0 ? criterion.weightOf(hist, mo) : 0;
    criterion.reset(total, w);
    let ln = 0;
    for (let k = 0; k < nb; k++) {
      const b = order[k];
      criterion.addBin(hist, b * width);
      ln += cnt[b];
      const last = k === nb - 1;
      if (last && nMissing === 0) break;
      const lw = criterion.leftWeight;
      const at = categorical ? k : b;
      // Missing values to the right (also the only option once every non-missing bin is on the left).
      if (ln >= minSamplesLeaf && n - ln >= minSamplesLeaf) {
        const p = criterion.proxyHere();
        if (p > best.proxy) best.record(f, at, false, p, lw, ln, left);
      }
      if (nMissing > 0 && !last) {
        for (let c = 0; c < width; c++) withMissing[c] = left[c] + hist[mo + c];
        const mlw = lw + missingW;
        const mln = ln + nMissing;
        if (mln >= minSamplesLeaf && n - mln >= minSamplesLeaf) {
          const p = criterion.proxy(withMissing, total, mlw, w - mlw);
          if (p > best.proxy) best.record(f, at, true, p, mlw, mln, withMissing);
        }
      }
    }
    if (best.feature !== f) return;
    // With no missing values here, unseen missing values follow the larger child (as sklearn does).
    if (nMissing === 0) best.missingLeft = best.leftCount >= n - best.leftCount;
    best.categorical = categorical;
    if (categorical) {
      best.order.set(order.subarray(0, nb));
      best.nPresent = nb;
    }
  }

}
