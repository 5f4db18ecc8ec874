import { binOf } from "./pack.ts";
import type { Tree } from "./types.ts";

/** The bin of a missing value; a feature with more distinct thresholds than this is not binned. */
const MISSING = 255;
/** Integer inputs are binned through a lookup table when the thresholds span at most this many integers. */
const MAX_LOOKUP = 4096;

/**
 * Per used feature, how integer inputs are binned: one flat table for all of them, so the binning loop reads
 * typed arrays only (an object per feature cost a fifth more: 57 against 45 ms for 10k FM rows). A feature u with a table bins an
 * integer x in [lo[u], lo[u] + span[u]] as table[offset[u] + x - lo[u]]; below it bin 0, above it the last bin,
 * which are the table's first and last entries (see lookupsOf).
 */
interface Lookups {
  /** Per used feature: its table's start in `table`, or -1 when it has none. */
  offset: Int32Array;
  lo: Int32Array;
  span: Int32Array;
  table: Uint8Array;
}

/**
 * A forest compiled for prediction on raw rows: each row is binned once by the thresholds the trees use, then
 * the trees compare bytes. Rows are binned a block at a time (a byte per feature, so a block of a thousand
 * 784-feature rows stays in cache while every tree walks it); a tree's nodes sit in one array in breadth-first
 * order with each node's children side by side, so the levels every row walks first share a few cache lines and a
 * step is the left child's place plus 0 or 1, with no branch; four rows walk a tree together so their memory reads
 * overlap.
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
    /** Features some split uses: the only ones binned. */
    private readonly used: Int32Array,
    private readonly lookups: Lookups,
    /**
     * Per node two words: [feature << 9 | missingLeft << 8 | threshold rank; left child (the right one follows it)].
     * A leaf is [LEAF; itself]: every bin is <= its rank 255, so a step keeps a row that reached it there.
     */
    private readonly nodes: Int32Array,
    /** Per node: a leaf's offset in `values`. */
    private readonly leafValue: Int32Array,
    /** Every tree's leaf values, concatenated. */
    private readonly values: Float32Array,
    /** Per tree: its root in `nodes`. */
    private readonly roots: Int32Array,
  ) {}

  /** The form for raw rows (rank = the threshold's place among its feature's thresholds), or null. */
  static of(trees: Tree[], nFeatures: number, width: number): BinnedTrees | null {
    if (nFeatures >= 1 << 22 || trees.some((t) => t.categorical !== undefined)) return null;
    const cuts = distinctThresholds(trees, nFeatures);
    if (cuts === null) return null;
    const used = Int32Array.from(cuts.flatMap((c, f) => (c.length > 0 ? [f] : [])));
    // Binning a row costs about as much as walking a tree level per feature used; it pays back when the walks
    // are at least twice as long (100 FM trees: ~1,800 levels for 784 features, 2.4× faster; 10 FM trees: ~180
    // levels, 2.5× slower; 10 digits trees: 78 levels for ~60 features, 10% slower).
    if (meanLevels(trees) < 2 * used.length) return null;
    const [nodes, leafValue, values, roots] = layout(trees, width, (t, i) => rank(cuts[t.feature[i]], t.threshold[i]));
    return new BinnedTrees(cuts, used, lookupsOf(cuts, used), nodes, leafValue, values, roots);
  }

  /**
   * The form for rows of a pack's 8-bit bins (rank = the split's bin threshold, compared with the row's bin as
   * the stored tree does), or null when a tree has categorical sets or a 16-bit threshold.
   */
  static onPackBins(trees: Tree[], nFeatures: number, width: number): BinnedTrees | null {
    if (nFeatures >= 1 << 22 || trees.some((t) => t.categorical !== undefined)) return null;
    for (const t of trees) for (let i = 0; i < t.nodeCount; i++) if (t.feature[i] >= 0 && t.thresholdBin[i] >= MISSING) return null;
    const [nodes, leafValue, values, roots] = layout(trees, width, (t, i) => t.thresholdBin[i]);
    const none = new Int32Array(0);
    return new BinnedTrees([], none, { offset: none, lo: none, span: none, table: new Uint8Array(0) }, nodes, leafValue, values, roots);
  }

  /**
   * Bins rows r0..r1 of `data` (nCols per row) into block[(r - r0) * nCols + f], for the features splits use. Row
   * by row: the rows are read in order (a feature at a time read one number per row, a cache line each).
   */
  bin(data: Float64Array, nCols: number, r0: number, r1: number, block: Uint8Array): void {
    const { cuts, used } = this;
    const { offset, lo, span, table } = this.lookups;
    const nUsed = used.length;
    for (let r = r0; r < r1; r++) {
      const src = r * nCols;
      const dst = (r - r0) * nCols;
      for (let u = 0; u < nUsed; u++) {
        const f = used[u];
        const x = data[src + f];
        const o = offset[u];
        const xi = x | 0;
        // Clamping to the table's ends bins the integers beyond it (see lookupsOf).
        block[dst + f] = o >= 0 && xi === x ? table[o + Math.min(Math.max(xi - lo[u], 0), span[u])] : rank(cuts[f], x);
      }
    }
  }

  /**
   * Adds tree k's leaf values for the block's rows r0..r1 to `out` (`width` per row); row r's bins are
   * block[(r - r0) * nCols, ...).
   */
  addLeaves(k: number, block: Uint8Array, nCols: number, r0: number, r1: number, out: Float64Array, width: number): void {
    const { nodes, leafValue, values } = this;
    const root = this.roots[k];
    const w = nodes[2 * root];
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
      let w0 = w;
      let w1 = w;
      let w2 = w;
      let w3 = w;
      // Until all four reach a leaf (rank LEAF: the AND of the four ranks is LEAF only then).
      while ((w0 & w1 & w2 & w3 & LEAF) !== LEAF) {
        i0 = nodes[2 * i0 + 1] + goesRight(w0, block[b0 + (w0 >>> 9)]);
        i1 = nodes[2 * i1 + 1] + goesRight(w1, block[b1 + (w1 >>> 9)]);
        i2 = nodes[2 * i2 + 1] + goesRight(w2, block[b2 + (w2 >>> 9)]);
        i3 = nodes[2 * i3 + 1] + goesRight(w3, block[b3 + (w3 >>> 9)]);
        w0 = nodes[2 * i0];
        w1 = nodes[2 * i1];
        w2 = nodes[2 * i2];
        w3 = nodes[2 * i3];
      }
      addValues(out, r * width, values, leafValue[i0], width);
      addValues(out, (r + 1) * width, values, leafValue[i1], width);
      addValues(out, (r + 2) * width, values, leafValue[i2], width);
      addValues(out, (r + 3) * width, values, leafValue[i3], width);
    }
    for (; r < r1; r++) {
      const b0 = (r - r0) * nCols;
      let i = root;
      let wi = w;
      while ((wi & LEAF) !== LEAF) {
        i = nodes[2 * i + 1] + goesRight(wi, block[b0 + (wi >>> 9)]);
        wi = nodes[2 * i];
      }
      addValues(out, r * width, values, leafValue[i], width);
    }
  }
}

/** A leaf's first word: threshold rank 255, above every bin but the missing one, which has no missingLeft to follow. */
const LEAF = 0xff;

/**
 * 1 if a row with bin b goes right at a node whose first word is w, else 0: b above the threshold rank, unless b is
 * the missing bin and the node sends missing values left. Branch-free: the walk's one unpredictable choice.
 */
function goesRight(w: number, b: number): number {
  return (((w & 0xff) - b) >>> 31) & ~((w >>> 8) & ((b + 1) >>> 8));
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

/**
 * Every tree's nodes in one array (see BinnedTrees.nodes), each tree breadth-first with siblings side by side, with
 * `rankOf` a split's threshold rank; and per node its leaf value offset, the values and each tree's root.
 */
function layout(trees: Tree[], width: number, rankOf: (t: Tree, i: number) => number): [Int32Array, Int32Array, Float32Array, Int32Array] {
  let nodeCount = 0;
  let valueCount = 0;
  let most = 0;
  for (const t of trees) {
    nodeCount += t.nodeCount;
    valueCount += t.values.length;
    most = Math.max(most, t.nodeCount);
  }
  const nodes = new Int32Array(2 * nodeCount);
  const leafValue = new Int32Array(nodeCount);
  const values = new Float32Array(valueCount);
  const roots = new Int32Array(trees.length);
  /** Stored node ids in breadth-first order, and each one's place in `nodes`. */
  const queue = new Int32Array(most);
  const place = new Int32Array(most);
  let nb = 0;
  let vb = 0;
  trees.forEach((t, k) => {
    roots[k] = nb;
    const { feature, right, missingLeft } = t;
    queue[0] = 0;
    place[0] = nb;
    let next = nb + 1;
    let tail = 1;
    for (let h = 0; h < tail; h++) {
      const i = queue[h];
      const j = place[i];
      if (feature[i] < 0) {
        nodes[2 * j] = LEAF;
        nodes[2 * j + 1] = j;
        leafValue[j] = vb + right[i] * width;
        continue;
      }
      nodes[2 * j] = (feature[i] << 9) | (missingLeft[i] << 8) | rankOf(t, i);
      nodes[2 * j + 1] = next;
      // Pre-order storage: the left child is i + 1.
      place[i + 1] = next;
      place[right[i]] = next + 1;
      queue[tail++] = i + 1;
      queue[tail++] = right[i];
      next += 2;
    }
    values.set(t.values, vb);
    nb += t.nodeCount;
    vb += t.values.length;
  });
  return [nodes, leafValue, values, roots];
}

/** The first k with x <= cuts[k], or cuts.length; MISSING for NaN: a pack's bin under these edges. */
const rank = binOf;

/**
 * The tables of rank(cuts, x) for integer x, per used feature whose thresholds span fewer than MAX_LOOKUP integers:
 * from lo, just below the first threshold (bin 0, as every integer below it), to just above the last (the last bin,
 * as every integer above it).
 */
function lookupsOf(cuts: Float64Array[], used: Int32Array): Lookups {
  const offset = new Int32Array(used.length).fill(-1);
  const lo = new Int32Array(used.length);
  const span = new Int32Array(used.length);
  let size = 0;
  used.forEach((f, u) => {
    const c = cuts[f];
    const first = Math.ceil(c[0]) - 1;
    const last = Math.floor(c[c.length - 1]) + 1;
    if (!(last - first < MAX_LOOKUP) || first < -(2 ** 31) || last >= 2 ** 31) return;
    offset[u] = size;
    lo[u] = first;
    span[u] = last - first;
    size += last - first + 1;
  });
  const table = new Uint8Array(size);
  used.forEach((f, u) => {
    for (let k = 0; offset[u] >= 0 && k <= span[u]; k++) table[offset[u] + k] = rank(cuts[f], lo[u] + k);
  });
  return { offset, lo, span, table };
}

function addValues(out: Float64Array, d: number, values: Float32Array, o: number, width: number): void {
  for (let c = 0; c < width; c++) out[d + c] += values[o + c];
}
