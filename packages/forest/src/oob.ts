import { sampleWeights } from "./bootstrap.ts";
import { FormatError, OptionsError } from "./errors.ts";
import { packLeaves } from "./forest.ts";
import type { ResolvedParams } from "./options.ts";
import type { DatasetPack } from "./pack.ts";
import { Rng, treeSeed } from "./rng.ts";
import type { Task, Tree } from "./types.ts";

/**
 * Out-of-bag predictions as scikit-learn 1.9.1 makes them (sklearn/ensemble/_forest.py, `_compute_oob_predictions`
 * and the classes' `_set_oob_score_and_attributes`): each tree predicts the training rows its bootstrap sample left
 * out (class probabilities, or the regression value); a row's OOB decision function is the mean over the trees it
 * was out of bag for; oob_score_ is the accuracy of its argmax (classification) or the R² (regression). A row no
 * tree left out gets 0 (sklearn warns and divides by 1) and still counts in the score, as in sklearn.
 *
 * The sums are fixed-point integers so that adding them is exact and order-free: a tree's contribution is rounded
 * to a multiple of 2^(exponent - 32) (probabilities: 2^-32; regression: 2^e >= the largest |target| of the training
 * rows, which bounds every leaf value), held as an integer in a Float64Array. A tree adds at most 2^32 per cell and a
 * build has at most 100,000 < 2^17 trees, so every sum stays below 2^49 < 2^53: exact. Groves' sums then merge in
 * any order and any split into the same bytes, which float sums would not (they round differently per grouping).
 * The rounding error is at most 2^-33 of the unit per tree, far below any metric's precision.
 */
export const OOB_FRACTION_BITS = 32;

const MAGIC = 0x424f4f43; // "COOB"
const VERSION = 1;
const HEADER_BYTES = 24;

/**
 * Training rows (ascending, a subset of `rows`) that tree `index`'s bootstrap sample left out; `weight`: that sample's
 * weights per pack row, if the caller has them (fitTree's onSample), else drawn again.
 */
export function outOfBagRows(pack: DatasetPack, rows: Uint32Array, params: ResolvedParams, index: number, weight?: Float64Array): Uint32Array {
  requireBootstrap(params);
  // The same draw fitTree makes: the sample is the first use of the tree's generator (builder.ts).
  weight ??= sampleWeights(pack, rows, params, new Rng(treeSeed(params.random_state, index))).weight;
  let n = 0;
  for (let i = 0; i < rows.length; i++) if (weight[rows[i]] === 0) n++;
  const out = new Uint32Array(n);
  let k = 0;
  for (let i = 0; i < rows.length; i++) if (weight[rows[i]] === 0) out[k++] = rows[i];
  return out;
}

/** sklearn raises the same ValueError: without bootstrap samples no row is ever out of bag. */
export function requireBootstrap(params: Pick<ResolvedParams, "bootstrap">): void {
  if (!params.bootstrap) throw new OptionsError("oob_score: Out of bag estimation only available if bootstrap=True");
}

/**
 * The OOB sums of some trees over a build's training rows: per row, how many trees left it out (`counts`) and the
 * fixed-point sum of their predictions (`sums`, rows × width). A grove stores its trees' sums; the aggregator merges
 * them. Memory: rows × (4 + 8 × width) bytes.
 */
export class OobSums {
  readonly counts: Uint32Array;
  readonly sums: Float64Array;

  constructor(
    readonly task: Task,
    /** Training rows of the build. */
    readonly nRows: number,
    /** Classes (classification) or 1. */
    readonly width: number,
    /** One tree's prediction is rounded to a multiple of 2^(exponent - OOB_FRACTION_BITS). */
    readonly exponent: number,
    counts?: Uint32Array,
    sums?: Float64Array,
  ) {
    this.counts = counts ?? new Uint32Array(nRows);
    this.sums = sums ?? new Float64Array(nRows * width);
  }

  /** Empty sums for the training `rows` of `pack`. */
  static of(pack: DatasetPack, rows: Uint32Array): OobSums {
    const target = pack.target;
    if (target.task === "classification") return new OobSums("classification", rows.length, target.classes.length, 0);
    let max = 0;
    for (let i = 0; i < rows.length; i++) max = Math.max(max, Math.abs(target.values[rows[i]]));
    // The least e with 2^e >= max (log2 may round either way).
    let e = max === 0 ? 0 : Math.ceil(Math.log2(max));
    if (2 ** e < max) e++;
    return new OobSums("regression", rows.length, 1, e);
  }

  /**
   * Adds tree `tree`'s predictions on the training rows its bootstrap left out. `rows` are the build's training rows;
   * `weight`, the tree's sample weights if known (see outOfBagRows).
   */
  addTree(pack: DatasetPack, rows: Uint32Array, params: ResolvedParams, tree: Tree, weight?: Float64Array): void {
    if (rows.length !== this.nRows) throw new OptionsError(`OOB sums are for ${this.nRows} training rows, not ${rows.length}`);
    const oob = outOfBagRows(pack, rows, params, tree.index, weight);
    if (oob.length === 0) return;
    const { width, counts, sums } = this;
    const leaves = new Int32Array(oob.length);
    packLeaves(tree, pack, oob, null, leaves);
    // Each leaf's values in fixed point, once (a leaf serves several rows; a tree's prediction is its leaf's values),
    // listed without the zeros, which add nothing (most of a pure leaf's classes): leaf l's are at [start[l], start[l + 1]).
    const scale = 2 ** (OOB_FRACTION_BITS - this.exponent);
    const values = tree.values;
    const nLeaves = values.length / width;
    const start = new Int32Array(nLeaves + 1);
    const cell = new Int32Array(values.length);
    const fixed = new Float64Array(values.length);
    let e = 0;
    for (let l = 0; l < nLeaves; l++) {
      start[l] = e;
      for (let c = 0; c < width; c++) {
        const v = Math.round(values[l * width + c] * scale);
        if (v !== 0) {
          cell[e] = c;
          fixed[e++] = v;
        }
      }
    }
    start[nLeaves] = e;
    // rows is ascending, and so is oob: walk both to find each OOB row's position among the training rows.
    let j = 0;
    for (let k = 0; k < oob.length; k++) {
      while (rows[j] !== oob[k]) j++;
      counts[j]++;
      const l = leaves[k];
      for (let i = start[l]; i < start[l + 1]; i++) sums[j * width + cell[i]] += fixed[i];
    }
  }

  /** Adds another part's sums (another grove's): exact, so the order of merging does not matter. */
  merge(other: OobSums): void {
    if (other.task !== this.task || other.nRows !== this.nRows || other.width !== this.width || other.exponent !== this.exponent)
      throw new FormatError(
        `OOB sums of ${other.nRows} rows × ${other.width} (${other.task}, 2^${other.exponent}) cannot join sums of ${this.nRows} rows × ${this.width} (${this.task}, 2^${this.exponent})`,
      );
    for (let i = 0; i < this.counts.length; i++) this.counts[i] += other.counts[i];
    for (let i = 0; i < this.sums.length; i++) this.sums[i] += other.sums[i];
  }

  /** Rows no tree left out (sklearn warns "Some inputs do not have OOB scores"). */
  get rowsWithoutOob(): number {
    let n = 0;
    for (let i = 0; i < this.counts.length; i++) if (this.counts[i] === 0) n++;
    return n;
  }

  /**
   * sklearn's oob_decision_function_ (class probabilities, rows × classes) or oob_prediction_ (regression): the
   * mean OOB prediction per training row; 0 for a row never out of bag.
   */
  decisionFunction(): Float64Array {
    const out = new Float64Array(this.sums.length);
    const unit = 2 ** (this.exponent - OOB_FRACTION_BITS);
    for (let r = 0; r < this.nRows; r++) {
      const n = Math.max(this.counts[r], 1);
      for (let c = 0; c < this.width; c++) out[r * this.width + c] = (this.sums[r * this.width + c] * unit) / n;
    }
    return out;
  }

  /** sklearn's oob_score_: accuracy of the argmax (classification) or R² (regression) over all training rows. */
  score(pack: DatasetPack, rows: Uint32Array): number {
    return oobScore(pack, rows, this.decisionFunction(), this.width);
  }

  toBinary(): Uint8Array {
    const countBytes = this.nRows * 4;
    const pad = (HEADER_BYTES + countBytes) % 8;
    const sumsAt = HEADER_BYTES + countBytes + (pad === 0 ? 0 : 8 - pad);
    const out = new Uint8Array(sumsAt + this.sums.length * 8);
    const view = new DataView(out.buffer);
    view.setUint32(0, MAGIC, true);
    view.setUint32(4, VERSION, true);
    view.setUint32(8, this.task === "classification" ? 0 : 1, true);
    view.setUint32(12, this.nRows, true);
    view.setUint32(16, this.width, true);
    view.setInt32(20, this.exponent, true);
    for (let i = 0; i < this.nRows; i++) view.setUint32(HEADER_BYTES + i * 4, this.counts[i], true);
    for (let i = 0; i < this.sums.length; i++) view.setFloat64(sumsAt + i * 8, this.sums[i], true);
    return out;
  }

  static load(bytes: Uint8Array): OobSums {
    if (bytes.length < HEADER_BYTES) throw new FormatError(`OOB sums: ${bytes.length} bytes is shorter than the header`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (view.getUint32(0, true) !== MAGIC) throw new FormatError("OOB sums: not an OOB sums blob (bad magic)");
    const version = view.getUint32(4, true);
    if (version !== VERSION) throw new FormatError(`OOB sums: version ${version} is not supported (this reads ${VERSION})`);
    const taskCode = view.getUint32(8, true);
    if (taskCode > 1) throw new FormatError(`OOB sums: unknown task code ${taskCode}`);
    const nRows = view.getUint32(12, true);
    const width = view.getUint32(16, true);
    const exponent = view.getInt32(20, true);
    const countBytes = nRows * 4;
    const pad = (HEADER_BYTES + countBytes) % 8;
    const sumsAt = HEADER_BYTES + countBytes + (pad === 0 ? 0 : 8 - pad);
    if (width < 1 || bytes.length !== sumsAt + nRows * width * 8)
      throw new FormatError(`OOB sums: ${bytes.length} bytes do not hold ${nRows} rows × ${width}`);
    const counts = new Uint32Array(nRows);
    const sums = new Float64Array(nRows * width);
    for (let i = 0; i < nRows; i++) counts[i] = view.getUint32(HEADER_BYTES + i * 4, true);
    for (let i = 0; i < sums.length; i++) sums[i] = view.getFloat64(sumsAt + i * 8, true);
    return new OobSums(taskCode === 0 ? "classification" : "regression", nRows, width, exponent, counts, sums);
  }
}

/**
 * The OOB score of a decision function over training `rows` (aligned): accuracy of the argmax, first maximum on
 * ties as numpy's argmax, or R² = 1 - SS_res / SS_tot (sklearn's r2_score: 1 for a perfect fit of a constant, else 0).
 * Unweighted, as sklearn's oob_score_.
 */
export function oobScore(pack: DatasetPack, rows: Uint32Array, decision: Float64Array, width: number): number {
  const target = pack.target;
  if (target.task === "classification") {
    let right = 0;
    for (let r = 0; r < rows.length; r++) {
      let best = 0;
      for (let c = 1; c < width; c++) if (decision[r * width + c] > decision[r * width + best]) best = c;
      if (best === target.codes[rows[r]]) right++;
    }
    return right / rows.length;
  }
  let mean = 0;
  for (let r = 0; r < rows.length; r++) mean += target.values[rows[r]];
  mean /= rows.length;
  let res = 0;
  let tot = 0;
  for (let r = 0; r < rows.length; r++) {
    const y = target.values[rows[r]];
    res += (y - decision[r]) ** 2;
    tot += (y - mean) ** 2;
  }
  if (tot === 0) return res === 0 ? 1 : 0;
  return 1 - res / tot;
}
