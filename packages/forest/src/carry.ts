import { addRegressionSample } from "./criterion.ts";
import { MISSING_BIN } from "./pack.ts";
import type { SamplePartition } from "./partition.ts";

/** Bins of an 8-bit feature's histogram, its missing bin included. */
const BINS = 256;

/**
 * A carried node's histograms stop being carried below this many samples: filling a histogram costs a pass over the
 * node's samples, deriving one costs a pass over its 256 bins (and a copy), so below a few hundred samples the
 * fill is the cheaper. Measured on flights partitions (7 features, regression), training time with the carry over
 * without: 64, 128 and 256 samples 0.68, 0.67 and 0.68 (within noise), 512 samples 0.73.
 */
export const CARRY_MIN_SAMPLES = 128;

/** A carried set is not kept above this many bytes (features × 256 bins × (width + 1) numbers). */
const CARRY_MAX_BYTES = 4 << 20;

/**
 * The sets a tree may hold at once, in bytes: one per pending child of 128 samples or more, so a balanced tree holds
 * a few per level of depth, but splits that peel a small child off a large node again and again would hold one per
 * peeled child. Past the budget a node fills its histograms as without the carry.
 */
export const CARRY_BUDGET_BYTES = 64 << 20;

/** One node's histograms of its 8-bit features, dense: feature f's bins at f * 256. */
export interface NodeHistograms {
  hist: Float64Array;
  cnt: Int32Array;
  /** 1 where feature f's histogram is held. */
  held: Uint8Array;
}

/**
 * Histogram subtraction (LightGBM's main saving, there for boosted trees): a node's histograms are the sum of its
 * children's, so once a node is split, only the smaller child's histograms are filled from its samples and the
 * larger child's are the node's minus the smaller's. A random forest draws features per node, so this pays only
 * when every node draws every feature (max_features "all", the regression default): then each node's features
 * are among its parent's.
 *
 * It must not change a tree: the split search reads the same numbers from a derived histogram as from a filled
 * one only when the statistics are exact. They are when every weight is an integer (bootstrap counts, no sample or
 * class weights) and, for regression, every target is an integer and the sum of w·y² stays below 2^52: every sum
 * and difference of such integers is exact in any order. `of` checks that once per tree and returns null
 * otherwise (and for 16-bit features, or a table whose histograms would be too large to keep a few of).
 * Categorical features are carried too: the split search pools rare categories in its own copy (load), and a
 * node keeps a histogram as filled, before that.
 */
export class HistogramCarry {
  private readonly free: NodeHistograms[] = [];
  private made = 0;

  private constructor(
    private readonly samples: SamplePartition,
    private readonly width: number,
    /** Per feature its bins below the missing bin: only those and the missing bin are copied and subtracted. */
    private readonly top: Int32Array,
    /** The most sets held at once (CARRY_BUDGET_BYTES). */
    private readonly most: number,
  ) {}

  static of(samples: SamplePartition, width: number, maxFeatures: number, binCounts: Int32Array, budgetBytes = CARRY_BUDGET_BYTES): HistogramCarry | null {
    const nFeatures = samples.nFeatures;
    if (maxFeatures < nFeatures || samples.nWide > 0) return null;
    const setBytes = nFeatures * BINS * (width * 8 + 4);
    if (setBytes > CARRY_MAX_BYTES) return null;
    if (!exactStatistics(samples)) return null;
    return new HistogramCarry(samples, width, binCounts.map((b) => Math.min(b, MISSING_BIN)), Math.max(1, Math.floor(budgetBytes / setBytes)));
  }

  /** An empty set (nothing held), or null when the budget is spent. */
  take(): NodeHistograms | null {
    const h = this.free.pop();
    if (h !== undefined) {
      h.held.fill(0);
      return h;
    }
    if (this.made >= this.most) return null;
    this.made++;
    const n = this.samples.nFeatures;
    return { hist: new Float64Array(n * BINS * this.width), cnt: new Int32Array(n * BINS), held: new Uint8Array(n) };
  }

  give(h: NodeHistograms | null): void {
    if (h !== null) this.free.push(h);
  }

  /** Keeps feature f's histogram (hist, cnt: its bins and the missing bin) in h. */
  keep(h: NodeHistograms, f: number, hist: Float64Array, cnt: Int32Array): void {
    const w = this.width;
    const top = this.top[f];
    const ho = f * BINS;
    h.hist.set(hist.subarray(0, top * w), ho * w);
    h.hist.set(hist.subarray(MISSING_BIN * w, BINS * w), (ho + MISSING_BIN) * w);
    h.cnt.set(cnt.subarray(0, top), ho);
    h.cnt[ho + MISSING_BIN] = cnt[MISSING_BIN];
    h.held[f] = 1;
  }

  /** Copies feature f's histogram from h into hist, cnt (they were all zero). */
  load(h: NodeHistograms, f: number, hist: Float64Array, cnt: Int32Array): void {
    const w = this.width;
    const top = this.top[f];
    const ho = f * BINS;
    hist.set(h.hist.subarray(ho * w, (ho + top) * w));
    hist.set(h.hist.subarray((ho + MISSING_BIN) * w, (ho + BINS) * w), MISSING_BIN * w);
    cnt.set(h.cnt.subarray(ho, ho + top));
    cnt[MISSING_BIN] = h.cnt[ho + MISSING_BIN];
  }

  /**
   * After node `parent` split: fills the histograms of samples [start, end) (its smaller child, still in the
   * node's row space: `rows` is what rowsOf gave the node, or null for the pack's columns) for the features
   * `parent` holds, into a new set, and subtracts them from `parent`, which becomes its larger child's. Returns
   * the smaller child's set, or null (and `parent` untouched) when the budget is spent.
   */
  splitOff(parent: NodeHistograms, start: number, end: number, rows: Uint8Array | null): NodeHistograms | null {
    const child = this.take();
    if (child === null) return null;
    const { idx, codeAt, valueAt, weightAt, bins, nRows, nFeatures } = this.samples;
    const w = this.width;
    for (let f = 0; f < nFeatures; f++) {
      if (parent.held[f] === 0) continue;
      child.held[f] = 1;
      const hist = child.hist;
      const cnt = child.cnt;
      const ho = f * BINS;
      const src = rows ?? bins;
      const stride = rows !== null ? nFeatures : 1;
      const col = rows !== null ? f : f * nRows;
      const top = this.top[f];
      // A set from take() may have held other nodes' histograms: clear this feature's bins before filling.
      clear(hist, cnt, ho, top, w);
      if (codeAt !== null) {
        for (let i = start; i < end; i++) {
          const b = ho + src[col + idx[i] * stride];
          cnt[b]++;
          hist[b * w + codeAt[i]] += weightAt[i];
        }
      } else {
        for (let i = start; i < end; i++) {
          const b = ho + src[col + idx[i] * stride];
          cnt[b]++;
          addRegressionSample(hist, b * 3, weightAt[i], valueAt![i]);
        }
      }
      subtract(parent.hist, parent.cnt, hist, cnt, ho, top, w);
      subtract(parent.hist, parent.cnt, hist, cnt, ho + MISSING_BIN, 1, w);
    }
    return child;
  }
}

/** Zeroes bins [ho, ho + top) and the missing bin of the feature whose bins start at ho. */
function clear(hist: Float64Array, cnt: Int32Array, ho: number, top: number, w: number): void {
  cnt.fill(0, ho, ho + top);
  hist.fill(0, ho * w, (ho + top) * w);
  cnt[ho + MISSING_BIN] = 0;
  hist.fill(0, (ho + MISSING_BIN) * w, (ho + BINS) * w);
}

/** Bins [b0, b0 + n) of (hist, cnt) minus the same bins of (subHist, subCnt), in place. */
function subtract(hist: Float64Array, cnt: Int32Array, subHist: Float64Array, subCnt: Int32Array, b0: number, n: number, w: number): void {
  for (let b = b0; b < b0 + n; b++) cnt[b] -= subCnt[b];
  for (let k = b0 * w; k < (b0 + n) * w; k++) hist[k] -= subHist[k];
}

/** Integer weights, and for regression integer targets with sum(w·y²) below 2^52: every histogram sum is exact. */
export function exactStatistics(samples: SamplePartition): boolean {
  const { weightAt, valueAt } = samples;
  let total = 0;
  for (let i = 0; i < weightAt.length; i++) {
    const w = weightAt[i];
    if (!Number.isInteger(w)) return false;
    if (valueAt === null) {
      total += w;
      continue;
    }
    const y = valueAt[i];
    if (!Number.isInteger(y)) return false;
    total += w * y * y + w;
  }
  return total < 2 ** 52;
}
