// Impurity criteria, in scikit-learn's Criterion role (sklearn/tree/_criterion.pyx): node impurity, the proxy
// that ranks the splits of one node, a left-to-right sweep over split positions, and leaf values.
//
// Statistics are weighted sufficient statistics of a set of samples: per-class weight sums for classification
// (width K), [sum w, sum w*y, sum w*y^2] for regression (width 3). The splitter builds them per histogram bin;
// a criterion only reads them, so each criterion's arithmetic lives here and nowhere else.
//
// The splitter calls a criterion once per bin or per sample position of a sweep (as sklearn's update()), never
// inside a per-sample histogram loop; the sweep state lives in plain fields, so a call site that only ever sees
// one criterion class stays monomorphic and inlinable.

export type CriterionName = "gini" | "entropy" | "squared_error";

/** The tree's samples as the criterion reads them, aligned with the partition's sample order (they move with it). */
export interface SampleTargets {
  /** Class code of the i-th sample (classification), else null. */
  codeAt: Uint16Array | null;
  /** Target value of the i-th sample (regression), else null. */
  valueAt: Float64Array | null;
  /** Weight of the i-th sample (bootstrap count × class weight). */
  weightAt: Float64Array;
}

export interface Criterion {
  readonly name: CriterionName;
  /** Statistics per sample set: K class weights, or 3 for regression. */
  readonly width: number;
  /** Values a leaf stores: K class probabilities, or 1 mean. */
  readonly valueWidth: number;
  /**
   * True when proxyHere() is O(1) after addSample(), so sweeping a small node's samples one at a time beats a
   * histogram (gini, squared error); entropy needs O(K) logarithms per position.
   */
  readonly constantTimeProxy: boolean;
  /** Left statistics at the current sweep position. */
  readonly left: Float64Array;
  /** Left weight at the current sweep position. */
  leftWeight: number;

  /** Statistics of samples [start, end) into `out` (zeroed first); returns their weight. */
  nodeStats(start: number, end: number, out: Float64Array): number;
  /** Impurity of a sample set from its statistics `s` and weight `w`. Entropy is in bits, as sklearn. */
  impurity(s: Float64Array, w: number): number;
  /**
   * Proxy improvement of a split with left statistics `left` out of `total`: larger is better, and ranking by it
   * ranks by weighted impurity decrease (the node's own impurity is a constant).
   */
  proxy(left: Float64Array, total: Float64Array, lw: number, rw: number): number;
  /** Weight of the statistics at s[o, o + width). */
  weightOf(s: Float64Array, o: number): number;
  /** Leaf values of a sample set into out[o, o + valueWidth). */
  nodeValue(s: Float64Array, w: number, out: Float32Array, o: number): void;

  /** Starts a sweep of a node with statistics `total` and weight `w`: nothing on the left yet. */
  reset(total: Float64Array, w: number): void;
  /** Moves one histogram bin's statistics, s[o, o + width), to the left. */
  addBin(s: Float64Array, o: number): void;
  /** Moves sample i (a position in SampleTargets) to the left. */
  addSample(i: number): void;
  /** proxy() of the current sweep position. */
  proxyHere(): number;

  /**
   * Keys that order a categorical feature's categories before they are scanned as if ordered: keys[b] for each
   * bin b in order[0, nb), from the histogram's statistics at hist[b * width, (b + 1) * width).
   */
  categoryKeys(hist: Float64Array, order: Int32Array, nb: number, keys: Float64Array): void;
}

export function createCriterion(name: CriterionName, nClasses: number, samples: SampleTargets): Criterion {
  if (name === "squared_error") return new SquaredError(samples);
  return name === "gini" ? new Gini(nClasses, samples) : new Entropy(nClasses, samples);
}

/** The sweep state every criterion keeps: left statistics and weight, and the node's totals. */
abstract class SweepingCriterion {
  readonly left: Float64Array;
  // Weights start as NaN (set by reset): a double from the first store, so V8 never turns these fields from small
  // integers into doubles in the middle of a fit, a change that throws away the code compiled for them.
  leftWeight = NaN;
  protected total: Float64Array;
  protected totalWeight = NaN;

  constructor(
    readonly width: number,
    protected readonly weightAt: Float64Array,
  ) {
    this.left = new Float64Array(width);
    this.total = this.left;
  }

  abstract proxy(left: Float64Array, total: Float64Array, lw: number, rw: number): number;

  reset(total: Float64Array, w: number): void {
    this.total = total;
    this.totalWeight = w;
    const left = this.left;
    for (let c = 0; c < left.length; c++) left[c] = 0;
    this.leftWeight = 0;
  }

  proxyHere(): number {
    return this.proxy(this.left, this.total, this.leftWeight, this.totalWeight - this.leftWeight);
  }
}

/** Per-class weight sums, shared by gini and entropy. */
abstract class ClassificationCriterion extends SweepingCriterion {
  readonly valueWidth: number;
  protected readonly codeAt: Uint16Array;

  constructor(nClasses: number, samples: SampleTargets) {
    if (samples.codeAt === null) throw new Error("a classification criterion needs class codes");
    super(nClasses, samples.weightAt);
    this.valueWidth = nClasses;
    this.codeAt = samples.codeAt;
  }

  nodeStats(start: number, end: number, out: Float64Array): number {
    out.fill(0);
    const { codeAt, weightAt } = this;
    let w = 0;
    for (let i = start; i < end; i++) {
      const v = weightAt[i];
      w += v;
      out[codeAt[i]] += v;
    }
    return w;
  }

  weightOf(s: Float64Array, o: number): number {
    let w = 0;
    for (let c = 0; c < this.width; c++) w += s[o + c];
    return w;
  }

  nodeValue(s: Float64Array, w: number, out: Float32Array, o: number): void {
    for (let c = 0; c < this.width; c++) out[o + c] = s[c] / w;
  }

  /**
   * Two classes: the share of the second class (this order holds the best gini or entropy split into two sets;
   * Breiman et al., Classification and Regression Trees, 1984, 9.4). More classes: the categories' class shares
   * projected on their first principal component (weighted by the categories' weights), the rule of Coppersmith,
   * Hong and Hosking (Partitioning nominal attributes in decision trees, 1999), also ranger's for classification.
   */
  categoryKeys(hist: Float64Array, order: Int32Array, nb: number, keys: Float64Array): void {
    const K = this.width;
    if (K === 2) {
      for (let i = 0; i < nb; i++) {
        const o = order[i] * 2;
        keys[order[i]] = hist[o + 1] / (hist[o] + hist[o + 1]);
      }
      return;
    }
    const axis = this.principalAxis(hist, order, nb);
    for (let i = 0; i < nb; i++) {
      const o = order[i] * K;
      let wb = 0;
      let dot = 0;
      for (let c = 0; c < K; c++) {
        wb += hist[o + c];
        dot += axis[c] * hist[o + c];
      }
      keys[order[i]] = dot / wb;
    }
  }

  private cov: Float64Array | null = null;
  private axis: Float64Array | null = null;
  private axisNext: Float64Array | null = null;

  /**
   * The first eigenvector of the weighted covariance of the categories' class shares, by power iteration from
   * the axis of largest variance (deterministic; zero if the shares do not vary).
   */
  private principalAxis(hist: Float64Array, order: Int32Array, nb: number): Float64Array {
    const K = this.width;
    const cov = (this.cov ??= new Float64Array(K * K + K));
    const axis = (this.axis ??= new Float64Array(K));
    const next = (this.axisNext ??= new Float64Array(K));
    cov.fill(0);
    const mean = cov.subarray(K * K);
    let W = 0;
    for (let i = 0; i < nb; i++) {
      const o = order[i] * K;
      for (let c = 0; c < K; c++) {
        mean[c] += hist[o + c];
        W += hist[o + c];
      }
    }
    for (let c = 0; c < K; c++) mean[c] /= W;
    for (let i = 0; i < nb; i++) {
      const o = order[i] * K;
      let wb = 0;
      for (let c = 0; c < K; c++) wb += hist[o + c];
      for (let c = 0; c < K; c++) {
        const dc = hist[o + c] / wb - mean[c];
        if (dc === 0) continue;
        for (let d = c; d < K; d++) cov[c * K + d] += wb * dc * (hist[o + d] / wb - mean[d]);
      }
    }
    let start = 0;
    for (let c = 0; c < K; c++) {
      for (let d = 0; d < c; d++) cov[c * K + d] = cov[d * K + c];
      if (cov[c * K + c] > cov[start * K + start]) start = c;
    }
    axis.fill(0);
    if (!(cov[start * K + start] > 0)) return axis;
    axis[start] = 1;
    for (let iter = 0; iter < 100; iter++) {
      let norm = 0;
      for (let c = 0; c < K; c++) {
        let v = 0;
        for (let d = 0; d < K; d++) v += cov[c * K + d] * axis[d];
        next[c] = v;
        norm += v * v;
      }
      norm = Math.sqrt(norm);
      if (!(norm > 0)) break;
      let change = 0;
      for (let c = 0; c < K; c++) {
        const v = next[c] / norm;
        change += Math.abs(v - axis[c]);
        axis[c] = v;
      }
      if (change < 1e-12) break;
    }
    return axis;
  }
}

/** Gini impurity 1 - sum p_c^2. The sweep keeps sum_c L_c^2 and sum_c R_c^2 up to date, so a position costs O(1). */
export class Gini extends ClassificationCriterion implements Criterion {
  readonly name = "gini";
  readonly constantTimeProxy = true;
  /** NaN until reset, as SweepingCriterion's weights. */
  private sqLeft = NaN;
  private sqRight = NaN;

  impurity(s: Float64Array, w: number): number {
    if (w <= 0) return 0;
    let sq = 0;
    for (let c = 0; c < this.width; c++) sq += s[c] * s[c];
    return 1 - sq / (w * w);
  }

  proxy(left: Float64Array, total: Float64Array, lw: number, rw: number): number {
    let sl = 0;
    let sr = 0;
    for (let c = 0; c < this.width; c++) {
      const l = left[c];
      const r = total[c] - l;
      sl += l * l;
      sr += r * r;
    }
    return sl / lw + sr / rw;
  }

  override reset(total: Float64Array, w: number): void {
    super.reset(total, w);
    let sq = 0;
    for (let c = 0; c < this.width; c++) sq += total[c] * total[c];
    this.sqLeft = 0;
    this.sqRight = sq;
  }

  addBin(s: Float64Array, o: number): void {
    const { left, total, width } = this;
    let sqL = this.sqLeft;
    let sqR = this.sqRight;
    let lw = this.leftWeight;
    for (let c = 0; c < width; c++) {
      const v = s[o + c];
      if (v !== 0) {
        const l = left[c];
        sqL += v * (2 * l + v);
        sqR += v * (v - 2 * (total[c] - l));
        left[c] = l + v;
        lw += v;
      }
    }
    this.sqLeft = sqL;
    this.sqRight = sqR;
    this.leftWeight = lw;
  }

  addSample(i: number): void {
    const c = this.codeAt[i];
    const v = this.weightAt[i];
    const l = this.left[c];
    this.sqLeft += v * (2 * l + v);
    this.sqRight += v * (v - 2 * (this.total[c] - l));
    this.left[c] = l + v;
    this.leftWeight += v;
  }

  override proxyHere(): number {
    return this.sqLeft / this.leftWeight + this.sqRight / (this.totalWeight - this.leftWeight);
  }
}

/** Shannon entropy in bits; the proxy is -(sum over children of n·H) in nats, which ranks splits the same way. */
export class Entropy extends ClassificationCriterion implements Criterion {
  readonly name = "entropy";
  readonly constantTimeProxy = false;

  impurity(s: Float64Array, w: number): number {
    if (w <= 0) return 0;
    let h = 0;
    for (let c = 0; c < this.width; c++) {
      const p = s[c] / w;
      if (p > 0) h -= p * Math.log2(p);
    }
    return h;
  }

  proxy(left: Float64Array, total: Float64Array, lw: number, rw: number): number {
    let e = -lw * Math.log(lw) - rw * Math.log(rw);
    for (let c = 0; c < this.width; c++) {
      const l = left[c];
      const r = total[c] - l;
      if (l > 0) e += l * Math.log(l);
      if (r > 0) e += r * Math.log(r);
    }
    return e;
  }

  addBin(s: Float64Array, o: number): void {
    const { left, width } = this;
    let lw = this.leftWeight;
    for (let c = 0; c < width; c++) {
      const v = s[o + c];
      left[c] += v;
      lw += v;
    }
    this.leftWeight = lw;
  }

  addSample(i: number): void {
    const v = this.weightAt[i];
    this.left[this.codeAt[i]] += v;
    this.leftWeight += v;
  }
}

/** Adds a regression sample (weight w, target y) to the statistics at s[o, o + 3). */
export function addRegressionSample(s: Float64Array, o: number, w: number, y: number): void {
  const wy = w * y;
  s[o] += w;
  s[o + 1] += wy;
  s[o + 2] += wy * y;
}

/** Mean squared error (sklearn's MSE): the variance of the targets; the proxy is sum over children of S^2 / n. */
export class SquaredError extends SweepingCriterion implements Criterion {
  readonly name = "squared_error";
  readonly valueWidth = 1;
  readonly constantTimeProxy = true;
  private readonly valueAt: Float64Array;

  constructor(samples: SampleTargets) {
    if (samples.valueAt === null) throw new Error("a regression criterion needs target values");
    super(3, samples.weightAt);
    this.valueAt = samples.valueAt;
  }

  nodeStats(start: number, end: number, out: Float64Array): number {
    out.fill(0);
    const { valueAt, weightAt } = this;
    let w = 0;
    for (let i = start; i < end; i++) {
      const v = weightAt[i];
      w += v;
      addRegressionSample(out, 0, v, valueAt[i]);
    }
    return w;
  }

  impurity(s: Float64Array, w: number): number {
    if (w <= 0) return 0;
    const mean = s[1] / w;
    const v = s[2] / w - mean * mean;
    return v > 0 ? v : 0;
  }

  proxy(left: Float64Array, total: Float64Array, lw: number, rw: number): number {
    const sl = left[1];
    const sr = total[1] - sl;
    return (sl * sl) / lw + (sr * sr) / rw;
  }

  weightOf(s: Float64Array, o: number): number {
    return s[o];
  }

  nodeValue(s: Float64Array, w: number, out: Float32Array, o: number): void {
    out[o] = s[1] / w;
  }

  addBin(s: Float64Array, o: number): void {
    const left = this.left;
    this.leftWeight += s[o];
    left[0] += s[o];
    left[1] += s[o + 1];
    left[2] += s[o + 2];
  }

  addSample(i: number): void {
    const v = this.weightAt[i];
    addRegressionSample(this.left, 0, v, this.valueAt[i]);
    this.leftWeight += v;
  }

  /** The categories' mean targets: this order holds the best squared-error split into two sets (Fisher 1958). */
  categoryKeys(hist: Float64Array, order: Int32Array, nb: number, keys: Float64Array): void {
    for (let i = 0; i < nb; i++) {
      const o = order[i] * 3;
      keys[order[i]] = hist[o + 1] / hist[o];
    }
  }
}
