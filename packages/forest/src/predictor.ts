import { binOf } from "./pack.ts";
import type { Tree } from "./types.ts";

/** The bin of a missing value; a feature with more distinct thresholds than this is not binned. */
const MISSING = 255;
/** Integer inputs are binned through a lookup table when the thresholds span at most this many integers. */
const MAX_LOOKUP = 4096;

/** Integer-valued inputs in [lo, hi] are binned by table[x - lo]; below lo bin 0, above hi the last bin. */
interface Lookup {
  lo: number;
  hi: number;
  table: Uint8Array;
}

/**
 * A forest compiled for prediction on raw rows: each row is binned once by the thresholds the trees use, then
 * the trees compare bytes. Rows are binned a block at a time (a byte per feature, so a block of a thousand
 * 784-feature rows stays in cache while every tree walks it); a tree's nodes sit in one array, a node's feature,
 * threshold rank and right child side by side; four rows walk a tree together so their memory reads overlap.
 *
 * Exactness: let t_0 < ... < t_{m-1} be the distinct thresholds of feature f's splits and bin(x) the first k
 * with x <= t_k (m if none). For a non-NaN x, x <= t_j iff bin(x) <= j: if x <= t_j then bin(x) <= j; if
 * bin(x) = k <= j then x <= t_k <= t_j; if no k exists, x > t_j. So a node with threshold t_j sends x left iff
 * bin(x) <= j, exactly as the stored comparison does, infinities and values outside the training range
 * included (they bin by the same comparisons). NaN gets bin 255, above every rank (m <= 254), and goes by the
 * node's missingLeft. Integer inputs read bin(x) from a table filled by the same search. Leaf values are added
 * tree by tree in the model's order, so predictions are the same to the last bit.
 *
 * Forests this cannot hold exactly in bytes (categorical set splits, a feature with more than 254 distinct
 * thresholds, a NaN threshold), and forests whose walks are shorter than binning a row (fewer levels through all
 * the trees than twice the features used), are not compiled: `of` returns null and the caller walks the stored trees.
 */
export class BinnedTrees {
  private constructor(
    /** Per feature the thresholds its splits use, ascending and distinct (empty for a form on a pack's bins). */
    private readonly cuts: Float64Array[],
    private readonly lookups: (Lookup | null)[],
    /** Features some split uses: the only ones binned. */
    private readonly used: Int32Array,
    /** Per node two words: [feature << 8 | threshold rank, or ~valueOffset for a leaf; right child | missingLeft << 31]. */
    private readonly nodes: Int32Array,
    /** Every tree's leaf values, concatenated. */
    private readonly values: Float32Array,
    /** Per tree: its root in `nodes`. */
    private readonly roots: Int32Array,
  ) {}

  /** The form for raw rows (rank = the threshold's place among its feature's thresholds), or null. */
  static of(trees: Tree[], nFeatures: number, width: number): BinnedTrees | null {
    if (nFeatures >= 1 << 23 || trees.some((t) => t.categorical !== undefined)) return null;
    const cuts = distinctThresholds(trees, nFeatures);
    if (cuts === null) return null;
    const used = Int32Array.from(cuts.flatMap((c, f) => (c.length > 0 ? [f] : [])));
    // Binning a row costs about as much as walking a tree level per feature used; it pays back when the walks
    // are at least twice as long (100 FM trees: ~1,800 levels for 784 features, 2.4× faster; 10 FM trees: ~180
    // levels, 2.5× slower; 10 digits trees: 78 levels for ~60 features, 10% slower).
    if (meanLevels(trees) < 2 * used.length) return null;
    const [nodes, values, roots] = layout(trees, width, (t, i) => rank(cuts[t.feature[i]], t.threshold[i]));
    return new BinnedTrees(cuts, cuts.map(lookupOf), used, nodes, values, roots);
  }

  /**
   * The form for rows of a pack's 8-bit bins (rank = the split's bin threshold, compared with the row's bin as
   * the stored tree does), or null when a tree has categorical sets or a 16-bit threshold.
   */
  static onPackBins(trees: Tree[], nFeatures: number, width: number): BinnedTrees | null {
    if (nFeatures >= 1 << 23 || trees.some((t) => t.categorical !== undefined)) return null;
    for (const t of trees) for (let i = 0; i < t.nodeCount; i++) if (t.feature[i] >= 0 && t.thresholdBin[i] >= MISSING) return null;
    const [nodes, values, roots] = layout(trees, width, (t, i) => t.thresholdBin[i]);
    return new BinnedTrees([], [], new Int32Array(0), nodes, values, roots);
  }

  /** Bins rows r0..r1 of `data` (nCols per row) into block[(r - r0) * nCols + f], for the features splits use. */
  bin(data: Float64Array, nCols: number, r0: number, r1: number, block: Uint8Array): void {
    const { cuts, lookups, used } = this;
    for (let u = 0; u < used.length; u++) {
      const f = used[u];
      const c = cuts[f];
      const m = c.length;
      const lookup = lookups[f];
      for (let r = r0; r < r1; r++) {
        const x = data[r * nCols + f];
        let b: number;
        if (lookup !== null && (x | 0) === x) b = x < lookup.lo ? 0 : x > lookup.hi ? m : lookup.table[x - lookup.lo];
        else if (x !== x) b = MISSING;
        else b = rank(c, x);
        block[(r - r0) * nCols + f] = b;
      }
    }
  }

  /**
   * Adds tree k's leaf values for the block's rows r0..r1 to `out` (`width` per row); row r's bins are
   * block[(r - r0) * nCols, ...).
   */
  addLeaves(k: number, block: Uint8Array, nCols: number, r0: number, r1: number, out: Float64Array, width: number): void {
    const { nodes, values } = this;
    const root = this.roots[k];
    let r = r0;
    for (; r + 4 <= r1; r += 4) {
      const b0 = (r - r0) * nCols;
      const b1 = b0 + nCols;
      const b2 = b1 + nCols;
      const b3 = b2 + nCols;
      let i0 = root;
      let i1 = root;
      let i2 = root;
      let i3 = root;
      let a0 = nodes[2 * root];
      let a1 = a0;
      let a2 = a0;
      let a3 = a0;
      // Until all four reach a leaf (a negative word): the sign bit of the AND is set only then.
      while ((a0 & a1 & a2 & a3) >= 0) {
        if (a0 >= 0) {
          const b = block[b0 + (a0 >>> 8)];
          const n = nodes[2 * i0 + 1];
          i0 = b <= (a0 & 0xff) || (b === MISSING && n < 0) ? i0 + 1 : n & 0x7fffffff;
          a0 = nodes[2 * i0];
        }
        if (a1 >= 0) {
          const b = block[b1 + (a1 >>> 8)];
          const n = nodes[2 * i1 + 1];
          i1 = b <= (a1 & 0xff) || (b === MISSING && n < 0) ? i1 + 1 : n & 0x7fffffff;
          a1 = nodes[2 * i1];
        }
        if (a2 >= 0) {
          const b = block[b2 + (a2 >>> 8)];
          const n = nodes[2 * i2 + 1];
          i2 = b <= (a2 & 0xff) || (b === MISSING && n < 0) ? i2 + 1 : n & 0x7fffffff;
          a2 = nodes[2 * i2];
        }
        if (a3 >= 0) {
          const b = block[b3 + (a3 >>> 8)];
          const n = nodes[2 * i3 + 1];
          i3 = b <= (a3 & 0xff) || (b === MISSING && n < 0) ? i3 + 1 : n & 0x7fffffff;
          a3 = nodes[2 * i3];
        }
      }
      addValues(out, r * width, values, ~a0, width);
      addValues(out, (r + 1) * width, values, ~a1, width);
      addValues(out, (r + 2) * width, values, ~a2, width);
      addValues(out, (r + 3) * width, values, ~a3, width);
    }
    for (; r < r1; r++) {
      const b0 = (r - r0) * nCols;
      let i = root;
      let a = nodes[2 * root];
      while (a >= 0) {
        const b = block[b0 + (a >>> 8)];
        const n = nodes[2 * i + 1];
        i = b <= (a & 0xff) || (b === MISSING && n < 0) ? i + 1 : n & 0x7fffffff;
        a = nodes[2 * i];
      }
      addValues(out, r * width, values, ~a, width);
    }
  }
}

/**
 * Per feature the distinct thresholds of its splits, ascending; null if a threshold is NaN or a feature has
 * MISSING or more. Typed arrays and a numeric sort: a 100-tree FM model has a million nodes.
 */
function distinctThresholds(trees: Tree[], nFeatures: number): Float64Array[] | null {
  const counts = new Int32Array(nFeatures + 1);
  for (const t of trees) for (let i = 0; i < t.nodeCount; i++) if (t.feature[i] >= 0) counts[t.feature[i] + 1]++;
  for (let f = 0; f < nFeatures; f++) counts[f + 1] += counts[f];
  const all = new Float64Array(counts[nFeatures]);
  const fill = counts.slice(0, nFeatures);
  for (const t of trees) {
    for (let i = 0; i < t.nodeCount; i++) {
      const f = t.feature[i];
      if (f < 0) continue;
      if (Number.isNaN(t.threshold[i])) return null;
      all[fill[f]++] = t.threshold[i];
    }
  }
  const cuts: Float64Array[] = [];
  for (let f = 0; f < nFeatures; f++) {
    const sorted = all.subarray(counts[f], counts[f + 1]).sort();
    let m = 0;
    for (let k = 0; k < sorted.length; k++) if (m === 0 || sorted[k] !== sorted[m - 1]) sorted[m++] = sorted[k];
    if (m >= MISSING) return null;
    cuts.push(sorted.slice(0, m));
  }
  return cuts;
}

/** The levels a row walks through all the trees, estimated by each tree's mean leaf depth. */
function meanLevels(trees: Tree[]): number {
  let levels = 0;
  let depth = new Int32Array(0);
  for (const t of trees) {
    if (depth.length < t.nodeCount) depth = new Int32Array(t.nodeCount);
    let sum = 0;
    let leaves = 0;
    depth[0] = 0;
    // Pre-order: both children come after their parent.
    for (let i = 0; i < t.nodeCount; i++) {
      if (t.feature[i] < 0) {
        sum += depth[i];
        leaves++;
        continue;
      }
      depth[i + 1] = depth[i] + 1;
      depth[t.right[i]] = depth[i] + 1;
    }
    levels += sum / leaves;
  }
  return levels;
}

/** Every tree's nodes in one array (see BinnedTrees.nodes), with `rankOf` a split's threshold rank. */
function layout(trees: Tree[], width: number, rankOf: (t: Tree, i: number) => number): [Int32Array, Float32Array, Int32Array] {
  let nodeCount = 0;
  let valueCount = 0;
  for (const t of trees) {
    nodeCount += t.nodeCount;
    valueCount += t.values.length;
  }
  const nodes = new Int32Array(2 * nodeCount);
  const values = new Float32Array(valueCount);
  const roots = new Int32Array(trees.length);
  let nb = 0;
  let vb = 0;
  trees.forEach((t, k) => {
    roots[k] = nb;
    const { feature, right, missingLeft } = t;
    for (let i = 0; i < t.nodeCount; i++) {
      const j = nb + i;
      if (feature[i] < 0) {
        nodes[2 * j] = ~(vb + right[i] * width);
        continue;
      }
      nodes[2 * j] = (feature[i] << 8) | rankOf(t, i);
      nodes[2 * j + 1] = (nb + right[i]) | (missingLeft[i] << 31);
    }
    values.set(t.values, vb);
    nb += t.nodeCount;
    vb += t.values.length;
  });
  return [nodes, values, roots];
}

/** The first k with x <= cuts[k], or cuts.length, for an x that is not NaN: a pack's bin under these edges. */
const rank = binOf;

/** A table of rank(cuts, x) for the integers x from just below the first threshold to just above the last. */
function lookupOf(cuts: Float64Array): Lookup | null {
  if (cuts.length === 0) return null;
  const lo = Math.ceil(cuts[0]) - 1;
  const hi = Math.floor(cuts[cuts.length - 1]) + 1;
  if (!(hi - lo < MAX_LOOKUP) || lo < -(2 ** 31) || hi >= 2 ** 31) return null;
  const table = new Uint8Array(hi - lo + 1);
  for (let x = lo; x <= hi; x++) table[x - lo] = rank(cuts, x);
  return { lo, hi, table };
}

function addValues(out: Float64Array, d: number, values: Float32Array, o: number, width: number): void {
  for (let c = 0; c < width; c++) out[d + c] += values[o + c];
}
