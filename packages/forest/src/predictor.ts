import { binOf, copyRowBins, MISSING_BIN as MISSING, packRowCopy, type DatasetPack, type PackRowCopy } from "./pack.ts";
import type { Tree } from "./types.ts";
import { LANES, predictorKernels, PURE, RECORD_BYTES, type PredictorKernels } from "./predictor-kernels.ts";

// MISSING (the pack's missing bin, 255) is also the most distinct thresholds a binned feature may have.
/** Integer inputs are binned through a lookup table when the thresholds span at most this many integers. */
const MAX_LOOKUP = 4096;
/** The most memory a binned form takes (its addresses stay positive 32-bit integers); a larger forest walks its stored trees. */
const MAX_MEMORY = 2 ** 31 - 2 ** 16;
/**
 * Rows of bins walked together: up to 4 MB of them (5,349 rows of 784 features), and of their sums. Each tree's
 * nodes come from memory once per block, and that, more than where the block sits in the caches, sets the pace:
 * predicting 10k FM rows with 100 trees took 137 ms in blocks of 2 MB, 115 ms in 4 MB and 8 MB, 113 ms in 16 MB
 * (blocks hold at most 8,192 rows).
 */
const BLOCK_BYTES = 4 << 20;
/**
 * Raw rows are copied into the kernels' memory and binned this many bytes of numbers at a time: 64 KB, 256 KB and
 * 1 MB binned 10k FM rows in the same time, and the least keeps the memory small.
 */
const RAW_BYTES = 1 << 16;

/** Byte addresses in the kernels' memory of the model: nodes at 0 (see predictor-kernels.ts's walk), then these, to `end`. */
interface ModelAddresses {
  /** Leaf values by node slot, `width` float32 each (see layout). */
  values: number;
  roots: number;
  records: number;
  cuts: number;
  tables: number;
  end: number;
}

/** Byte addresses of the scratch after the model, for a block of `rows` rows: bins, raw rows, sums; to `end`. */
interface Scratch {
  rows: number;
  block: number;
  raw: number;
  out: number;
  end: number;
}

/**
 * A forest compiled for prediction on raw rows: each row is binned once by the thresholds the trees use, then the
 * trees compare bytes. Rows are binned a block at a time (a byte per feature, so a block of a thousand 784-feature
 * rows stays in cache while every tree walks it); a tree's nodes sit in one array with each node's children side by
 * side, so a step is the left child's place plus 0 or 1, with no branch, and in pages of subtrees (see layout), so a
 * row's path reads a few pages instead of a cache line per level; LANES rows walk a tree together so their memory
 * reads overlap. Both loops run as WebAssembly (predictor-kernels.ts) on one memory holding the nodes, the leaf
 * values, the binning tables and a block of rows.
 *
 * Exactness: let t_0 < ... < t_{m-1} be the distinct thresholds of feature f's splits and bin(x) the first k
 * with x <= t_k (m if none). For a non-NaN x, x <= t_j iff bin(x) <= j: if x <= t_j then bin(x) <= j; if
 * bin(x) = k <= j then x <= t_k <= t_j; if no k exists, x > t_j. So a node with threshold t_j sends x left iff
 * bin(x) <= j, exactly as the stored comparison does, infinities and values outside the training range
 * included (they bin by the same comparisons). NaN gets bin 255, above every rank (m <= 254), and goes by the
 * node's missingLeft. Integer inputs read bin(x) from a table filled by the same search. Leaf values are added
 * tree by tree in the model's order (a pure leaf's 1 alone, see pureClass), so predictions are the same to the last
 * bit.
 *
 * Forests this cannot hold exactly in bytes (categorical set splits, a feature with more than 254 distinct
 * thresholds, a NaN threshold), forests whose walks are shorter than binning a row (fewer levels through all
 * the trees than half the features used), and forests too large for the memory are not compiled: `of` returns
 * null and the caller walks the stored trees.
 */
export class BinnedTrees {
  private constructor(
    private kernels: PredictorKernels,
    private readonly at: ModelAddresses,
    private scratch: Scratch,
    private readonly nTrees: number,
    private readonly nFeatures: number,
    private readonly width: number,
    /** Features some split uses: the only ones binned (0 for a form on a pack's bins). */
    private readonly nUsed: number,
    /** Used features binned by a table (their records come first). */
    private readonly nTables: number,
    private readonly raw: boolean,
  ) {}

  /**
   * The form for raw rows (rank = the threshold's place among its feature's thresholds), or null; its first block holds
   * `rows` rows (a larger batch later grows it, see reserve).
   */
  static of(trees: Tree[], nFeatures: number, width: number, rows = 0): BinnedTrees | null {
    if (nFeatures >= 1 << 22 || trees.some((t) => t.categorical !== undefined)) return null;
    const cuts = distinctThresholds(trees, nFeatures);
    if (cuts === null) return null;
    const used = Int32Array.from(cuts.flatMap((c, f) => (c.length > 0 ? [f] : [])));
    // Binning a row costs about as much as walking a tree level for every two features used; the binned form pays
    // once the walks through all the trees are at least half as many levels as there are features used. FM 20k's
    // 10k test rows: 30 trees (~510 levels for 784 features) 50 ms binned against 64 ms walking the stored trees, 10
    // trees (~170 levels) 39 against 20 ms; digits' 450 test rows: 10 trees (~78 levels for ~60 features) 0.14
    // against 0.34 ms, 3 trees 0.08 either way.
    if (meanLevels(trees) < 0.5 * used.length) return null;
    return BinnedTrees.make(trees, nFeatures, width, (t, i) => rank(cuts[t.feature[i]], t.threshold[i]), { cuts, used }, rows);
  }

  /**
   * The form for rows of a pack's 8-bit bins (rank = the split's bin threshold, compared with the row's bin as
   * the stored tree does), or null when a tree has categorical sets or a 16-bit threshold.
   */
  static onPackBins(trees: Tree[], nFeatures: number, width: number, rows = 0): BinnedTrees | null {
    if (nFeatures >= 1 << 22 || !trees.every(walksOnPackBins)) return null;
    return BinnedTrees.make(trees, nFeatures, width, (t, i) => t.thresholdBin[i], null, rows);
  }

  /** Lays the trees (and for raw rows the binning records, cuts and tables) out in a memory for the kernels. */
  private static make(
    trees: Tree[],
    nFeatures: number,
    width: number,
    rankOf: (t: Tree, i: number) => number,
    raw: { cuts: Float64Array[]; used: Int32Array } | null,
    rows: number,
  ): BinnedTrees | null {
    let slots = 0;
    for (const t of trees) slots += slotsOf(t);
    const used = raw?.used ?? new Int32Array(0);
    const tables = raw === null ? null : tablesOf(raw.cuts, used);
    const nCuts = used.reduce((n, f) => n + raw!.cuts[f].length, 0);
    let end = 0;
    const take = (bytes: number): number => {
      const start = end;
      end = start + align8(bytes);
      return start;
    };
    take(8 * slots);
    const at: ModelAddresses = {
      values: take(4 * width * slots),
      roots: take(4 * trees.length),
      records: take(RECORD_BYTES * used.length),
      cuts: take(8 * nCuts),
      tables: take(tables?.bytes.length ?? 0),
      end,
    };
    const scratch = scratchOf(at.end, Math.min(blockRowsMost(nFeatures, width), Math.max(LANES, rows)), nFeatures, width, raw !== null);
    if (scratch.end > MAX_MEMORY) return null;
    const kernels = predictorKernels(scratch.end);
    if (kernels === null) return null;
    const heap = kernels.memory.buffer;
    layout(trees, width, rankOf, new Int32Array(heap, 0, 2 * slots), new Float32Array(heap, at.values, width * slots), new Int32Array(heap, at.roots, trees.length));
    if (raw !== null && tables !== null) {
      const records = new DataView(heap, at.records, RECORD_BYTES * used.length);
      const cuts = new Float64Array(heap, at.cuts, nCuts);
      new Uint8Array(heap, at.tables, tables.bytes.length).set(tables.bytes);
      let c = 0;
      // The records of features with a table first (the kernel's first loop), then the others.
      const order = [...used.keys()].sort((a, b) => Number(tables.of[a] === null) - Number(tables.of[b] === null) || a - b);
      order.forEach((u, k) => {
        const f = used[u];
        const r = RECORD_BYTES * k;
        const t = tables.of[u];
        records.setInt32(r, f, true);
        records.setInt32(r + 4, at.cuts + 8 * c, true);
        records.setInt32(r + 24, raw.cuts[f].length, true);
        if (t !== null) {
          records.setFloat64(r + 8, t.lo, true);
          records.setFloat64(r + 16, t.hi, true);
          records.setInt32(r + 28, (at.tables + t.offset - t.lo) | 0, true);
          records.setInt32(r + 32, tables.bytes[t.offset], true);
          records.setInt32(r + 36, tables.bytes[t.offset + t.hi - t.lo], true);
        }
        cuts.set(raw.cuts[f], c);
        c += raw.cuts[f].length;
      });
    }
    const nTables = tables?.of.filter((t) => t !== null).length ?? 0;
    return new BinnedTrees(kernels, at, scratch, trees.length, nFeatures, width, used.length, nTables, raw !== null);
  }

  /**
   * Makes the block hold a batch of nRows rows, up to blockRowsMost: a model's form is made at its first batch, and
   * a server's batches are small, so the block starts at that batch's size and grows (at least fourfold) when a larger
   * one comes, on a new memory with the model copied over (a memory that grows in place would detach its buffer, and a
   * process where one ArrayBuffer was ever detached checks for it at every typed-array access: training 20% slower).
   * If the larger memory cannot be had, the block stays as it is, which is slower, not wrong.
   */
  private reserve(nRows: number): void {
    const most = blockRowsMost(this.nFeatures, this.width);
    if (nRows <= this.scratch.rows || this.scratch.rows >= most) return;
    const scratch = scratchOf(this.at.end, Math.min(most, Math.max(nRows, 4 * this.scratch.rows)), this.nFeatures, this.width, this.raw);
    const kernels = scratch.end > MAX_MEMORY ? null : predictorKernels(scratch.end);
    if (kernels === null) return;
    new Uint8Array(kernels.memory.buffer, 0, this.at.end).set(new Uint8Array(this.kernels.memory.buffer, 0, this.at.end));
    this.kernels = kernels;
    this.scratch = scratch;
  }

  /** Every tree's leaf values summed, `width` per row, for nRows raw rows of `data` (nFeatures numbers each). */
  sumRaw(data: Float64Array, nRows: number): Float64Array {
    this.reserve(nRows);
    const { kernels, at, scratch, nFeatures } = this;
    const blockRows = scratch.rows;
    const out = new Float64Array(nRows * this.width);
    const step = Math.min(blockRows, rawRows(nFeatures));
    const raw = new Float64Array(kernels.memory.buffer, scratch.raw, step * nFeatures);
    for (let r0 = 0; r0 < nRows; r0 += blockRows) {
      const r1 = Math.min(nRows, r0 + blockRows);
      let missing = 0;
      for (let s0 = r0; s0 < r1; s0 += step) {
        const s1 = Math.min(r1, s0 + step);
        raw.set(data.subarray(s0 * nFeatures, s1 * nFeatures));
        missing |= kernels.bin(scratch.raw, s1 - s0, nFeatures, at.records, this.nUsed, scratch.block + (s0 - r0) * nFeatures, this.nTables);
      }
      this.walk(r0, r1, out, missing !== 0);
    }
    return out;
  }

  /** Every tree's leaf values summed, `width` per row, for the pack's rows `rows` (a form made by onPackBins). */
  sumPack(pack: DatasetPack, rows: Uint32Array): Float64Array {
    this.reserve(rows.length);
    const { kernels, scratch, nFeatures } = this;
    const blockRows = scratch.rows;
    const out = new Float64Array(rows.length * this.width);
    const block = new Uint8Array(kernels.memory.buffer, scratch.block, blockRows * nFeatures);
    for (let i0 = 0; i0 < rows.length; i0 += blockRows) {
      const i1 = Math.min(rows.length, i0 + blockRows);
      copyRowBins(pack, rows, i0, i1, block);
      // The missing bin anywhere in the rows (a feature no split reads included) takes the walk that handles it.
      this.walk(i0, i1, out, block.subarray(0, (i1 - i0) * nFeatures).includes(MISSING));
    }
    return out;
  }

  /**
   * Walks every tree over the block's rows (rows r0..r1 of the batch) and writes their sums into `out`; `missing`: some
   * bin in the block may be the missing one.
   */
  private walk(r0: number, r1: number, out: Float64Array, missing: boolean): void {
    const { kernels, at, scratch, width } = this;
    const sums = new Float64Array(kernels.memory.buffer, scratch.out, (r1 - r0) * width);
    sums.fill(0);
    (missing ? kernels.walk : kernels.walkNoMissing)(this.nTrees, at.roots, r1 - r0, this.nFeatures, scratch.block, scratch.out, at.values, width);
    out.set(sums, r0 * width);
  }
}

/**
 * Rows of a pack and their running sums in the kernels' memory, walked one tree at a time by the binned walk (on the
 * pack's bins, as BinnedTrees.onPackBins): the trees curve's held-out rows (core's TreeEvaluator), whose sums are read
 * after every tree. The rows' bins are the walk's row copy (see PackRowCopy), made once; each tree is laid out behind
 * them and walked over all the rows. The sums are the stored trees' walk's to the last bit: the same comparisons, and
 * leaf values widened and added tree by tree. The curve of 100 FM 20k trees over 6,667 held-out rows (100 points):
 * 140 ms with the stored trees walked on the row copy, 95 ms so.
 *
 * Memory: [rows' bins | sums, a spare row | one tree's nodes, values by slot and root]; a tree larger than the last
 * moves all of it to a larger memory (a memory that grows in place would detach its buffer, see BinnedTrees.reserve).
 */
export class PackRowSums {
  private kernels: PredictorKernels;
  /** Bytes from treeAt on, for one tree. */
  private room: number;
  private view: { sums: Float64Array; copy: PackRowCopy };

  private constructor(
    kernels: PredictorKernels,
    readonly rows: Uint32Array,
    private readonly nFeatures: number,
    private readonly width: number,
    private readonly sumsAt: number,
    private readonly treeAt: number,
    /** Some row has the missing bin: the walk with the missing term. */
    private readonly missing: boolean,
    room: number,
  ) {
    this.kernels = kernels;
    this.room = room;
    this.view = this.views();
  }

  /**
   * The pack's rows `rows` copied in, sums at zero, `treeBytes` of room for a tree to start with; null for 16-bit
   * features or a memory that cannot be had.
   */
  static of(pack: DatasetPack, rows: Uint32Array, width: number, treeBytes = 1 << 16): PackRowSums | null {
    const nFeatures = pack.nFeatures;
    if (pack.wideColumn !== undefined || nFeatures >= 1 << 22) return null;
    const sumsAt = align8(rows.length * nFeatures);
    // The sums and the walk's spare row.
    const treeAt = sumsAt + 8 * (rows.length + 1) * width;
    if (treeAt + treeBytes > MAX_MEMORY) return null;
    const kernels = predictorKernels(treeAt + treeBytes);
    if (kernels === null) return null;
    const bins = new Uint8Array(kernels.memory.buffer, 0, rows.length * nFeatures);
    packRowCopy(pack, rows, bins);
    return new PackRowSums(kernels, rows, nFeatures, width, sumsAt, treeAt, bins.includes(MISSING), treeBytes);
  }

  /** Every tree added so far: its leaf values summed, `width` per row (a view of the memory: read it after each add). */
  get sums(): Float64Array {
    return this.view.sums;
  }

  /** The rows' bins side by side, for a tree walked the stored way (add returned false). */
  get copy(): PackRowCopy {
    return this.view.copy;
  }

  /**
   * Adds the tree's leaf values to the sums; false, adding nothing, for a tree the walk cannot hold (categorical sets, a
   * 16-bit threshold): the caller walks it on `copy` into `sums`.
   */
  add(tree: Tree): boolean {
    if (!walksOnPackBins(tree)) return false;
    const slots = slotsOf(tree);
    const valuesAt = this.treeAt + 8 * slots;
    const rootAt = valuesAt + align8(4 * this.width * slots);
    if (!this.reserve(rootAt + 8 - this.treeAt)) return false;
    const heap = this.kernels.memory.buffer;
    const nodeBase = this.treeAt / 8;
    layout([tree], this.width, (t, i) => t.thresholdBin[i], new Int32Array(heap, this.treeAt, 2 * slots), new Float32Array(heap, valuesAt, this.width * slots), new Int32Array(heap, rootAt, 1), nodeBase);
    // The walk reads node n's values at values + n / 2 × width (n its byte address, from node nodeBase on).
    (this.missing ? this.kernels.walk : this.kernels.walkNoMissing)(1, rootAt, this.rows.length, this.nFeatures, 0, this.sumsAt, (valuesAt - 4 * this.width * nodeBase) | 0, this.width);
    return true;
  }

  private views(): { sums: Float64Array; copy: PackRowCopy } {
    const heap = this.kernels.memory.buffer;
    return { sums: new Float64Array(heap, this.sumsAt, this.rows.length * this.width), copy: { rows: this.rows, bins: new Uint8Array(heap, 0, this.rows.length * this.nFeatures) } };
  }

  /** At least `bytes` for a tree (a memory with twice the room at least, the rows and sums copied over); false if it cannot be had. */
  private reserve(bytes: number): boolean {
    if (bytes <= this.room) return true;
    const room = Math.max(bytes, 2 * this.room);
    const kernels = this.treeAt + room > MAX_MEMORY ? null : predictorKernels(this.treeAt + room);
    if (kernels === null) return false;
    new Uint8Array(kernels.memory.buffer, 0, this.treeAt).set(new Uint8Array(this.kernels.memory.buffer, 0, this.treeAt));
    this.kernels = kernels;
    this.room = room;
    this.view = this.views();
    return true;
  }
}

const align8 = (n: number) => Math.ceil(n / 8) * 8;

/** Whether the binned walk holds a tree on a pack's 8-bit bins: no categorical sets, every threshold below the missing bin. */
function walksOnPackBins(t: Tree): boolean {
  if (t.categorical !== undefined) return false;
  for (let i = 0; i < t.nodeCount; i++) if (t.feature[i] >= 0 && t.thresholdBin[i] >= MISSING) return false;
  return true;
}

/** The most rows a block holds: BLOCK_BYTES of bins, and of sums. */
function blockRowsMost(nFeatures: number, width: number): number {
  return Math.max(LANES, Math.min(8192, Math.floor(BLOCK_BYTES / Math.max(1, nFeatures)), Math.floor(BLOCK_BYTES / (8 * width))));
}

/**
 * The scratch after a model ending at byte `start`, for blocks of `rows` rows (raw rows only for the raw form); the
 * sums have the walk's spare row.
 */
function scratchOf(start: number, rows: number, nFeatures: number, width: number, raw: boolean): Scratch {
  const block = start;
  const rawAt = block + align8(rows * nFeatures);
  const out = rawAt + (raw ? Math.min(rows, rawRows(nFeatures)) * nFeatures * 8 : 0);
  return { rows, block, raw: rawAt, out, end: out + (rows + 1) * width * 8 };
}

/** Raw rows binned at once: RAW_BYTES of numbers. */
function rawRows(nFeatures: number): number {
  return Math.max(1, Math.floor(RAW_BYTES / (8 * Math.max(1, nFeatures))));
}

/** A leaf's first word: threshold rank 255, above every bin but the missing one, which has no missingLeft to follow. */
const LEAF = 0xff;

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
 * Writes every tree's nodes into `nodes` (see predictor-kernels.ts's walk: two words per node, children by byte
 * address; nodes[0] is the memory's node nodeBase, at byte 8 × nodeBase), with `rankOf` a split's threshold rank; a
 * leaf's values into `values` at its slot (slot × width), unless it is pure (its class in its first word), and each
 * tree's root. A tree takes slotsOf(tree) slots: its root, a free slot, then its pairs of siblings page by page (pages
 * from the tree's start, so a tree smaller than a page takes no more room than its nodes). A page starts with the
 * first pair waiting (the pages go breadth-first) and fills with that pair's descendants breadth-first, then with
 * further waiting pairs; descendants it has no room for wait.
 */
function layout(
  trees: Tree[],
  width: number,
  rankOf: (t: Tree, i: number) => number,
  nodes: Int32Array,
  values: Float32Array,
  roots: Int32Array,
  nodeBase = 0,
): void {
  const most = trees.reduce((m, t) => Math.max(m, t.nodeCount), 0);
  const place = new Int32Array(most);
  /** Pairs of siblings by their parent's stored id: waiting for a page, and filling the current one. */
  const waiting = new Int32Array(most);
  const filling = new Int32Array(most);
  let nb = 0;
  // One loop over the trees, not a callback per tree: V8 optimises the loop once, where a callback's code was dropped
  // again and again for a leaf the first trees did not have (an impure one).
  for (let k = 0; k < trees.length; k++) {
    const t = trees[k];
    roots[k] = 8 * (nodeBase + nb);
    const { feature, right, missingLeft } = t;
    place[0] = nb;
    let head = 0;
    let tail = 0;
    if (feature[0] >= 0) waiting[tail++] = 0;
    let slot = nb + 2;
    while (head < tail) {
      let fh = 0;
      let ft = 0;
      do {
        if (fh === ft) {
          if (head === tail) break;
          filling[ft++] = waiting[head++];
        }
        const p = filling[fh++];
        place[p + 1] = slot;
        place[right[p]] = slot + 1;
        slot += 2;
        if (feature[p + 1] >= 0) filling[ft++] = p + 1;
        if (feature[right[p]] >= 0) filling[ft++] = right[p];
      } while ((slot - nb) % PAGE_SLOTS !== 0);
      for (let q = fh; q < ft; q++) waiting[tail++] = filling[q];
    }
    for (let i = 0; i < t.nodeCount; i++) {
      const j = place[i];
      if (feature[i] < 0) {
        // A leaf points at itself: every bin is <= its rank 255, so a step keeps a row that reached it there.
        const at = right[i] * width;
        const c = pureClass(t.values, at, width);
        nodes[2 * j] = c < 0 ? LEAF : (c << 9) | PURE | LEAF;
        nodes[2 * j + 1] = 8 * (nodeBase + j);
        if (c < 0) values.set(t.values.subarray(at, at + width), j * width);
        continue;
      }
      nodes[2 * j] = (feature[i] << 9) | (missingLeft[i] << 8) | rankOf(t, i);
      nodes[2 * j + 1] = 8 * (nodeBase + place[i + 1]);
    }
    nb += slotsOf(t);
  }
}

/**
 * Node slots per page of the binned layout: 1 KB. A row walks 18 levels of a FM tree on average; laid out level by
 * level, each level past the first few is a cache line of its own. 100 FM trees over 10k rows: breadth-first 116 ms;
 * pages of 8 slots (a cache line) 115, 16 110, 32 108, 64 107, 128 105, 256 to 1024 105-106.
 */
const PAGE_SLOTS = 128;

/** A tree's node slots in the binned layout: its nodes and the free slot beside its root. */
const slotsOf = (t: Tree) => t.nodeCount + 1;

/**
 * The class of a leaf (its `width` values at `at`) whose values are 1 for it and +0 for the others, else -1. Adding
 * only that 1 leaves every sum as adding all the values would: sums start at +0 and never become -0 (only -0 + -0
 * is), so adding +0 changes none.
 */
function pureClass(values: Float32Array, at: number, width: number): number {
  // Read in place: a view per leaf is an allocation, and a 100-tree FM model has 700,000 leaves.
  let c = -1;
  for (let k = 0; k < width; k++) {
    const v = values[at + k];
    if (v === 1 && c < 0) c = k;
    else if (!Object.is(v, 0)) return -1;
  }
  return c;
}

/** The first k with x <= cuts[k], or cuts.length; MISSING for NaN: a pack's bin under these edges. */
const rank = binOf;

/** A used feature's table: rank(cuts, x) for the integers x in [lo, hi] at bytes[offset + x - lo]. */
interface Table {
  offset: number;
  lo: number;
  hi: number;
}

/**
 * The tables of rank(cuts, x) for integer x, per used feature whose thresholds span fewer than MAX_LOOKUP integers
 * (null for the others), in one array: from lo, just below the first threshold (bin 0, as every integer below it),
 * to hi, just above the last (the last bin, as every integer above it), so clamping an integer to [lo, hi] bins it.
 */
function tablesOf(cuts: Float64Array[], used: Int32Array): { of: (Table | null)[]; bytes: Uint8Array } {
  let size = 0;
  const of = Array.from(used, (f): Table | null => {
    const c = cuts[f];
    const lo = Math.ceil(c[0]) - 1;
    const hi = Math.floor(c[c.length - 1]) + 1;
    if (!(hi - lo < MAX_LOOKUP) || lo < -(2 ** 31) || hi >= 2 ** 31) return null;
    const table = { offset: size, lo, hi };
    size += hi - lo + 1;
    return table;
  });
  const bytes = new Uint8Array(size);
  used.forEach((f, u) => {
    const t = of[u];
    if (t !== null) for (let x = t.lo; x <= t.hi; x++) bytes[t.offset + x - t.lo] = rank(cuts[f], x);
  });
  return { of, bytes };
}
