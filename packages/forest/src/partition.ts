import type { SampleTargets } from "./criterion.ts";
import { MISSING_BIN, MISSING_WIDE_BIN, rowMajorBins, rowMajorWideBins, type DatasetPack } from "./pack.ts";

/**
 * Nodes with at least this many samples read each drawn feature's column of the pack directly (samples are in
 * ascending row order, so a column is read forwards); smaller ones read a row-major copy of their subtree's rows.
 */
export const COLUMN_PASS_MIN_SAMPLES = 4096;

/** Rows of at most this many 8-bit features are copied byte by byte in rowsOf, longer ones with set(). */
const NARROW_ROW = 32;

/** Sizes below which a subtree's rows are copied into a contiguous buffer (outermost first). */
export const SUBTREE_LEVELS = [COLUMN_PASS_MIN_SAMPLES, 512, 64];

/**
 * The row copies' 8-bit buffers a finished tree gave back (SamplePartition.release), one per level, for the next tree's
 * partition to take instead of allocating and zeroing its own: 3.6 MB for 784 features (4,096 + 512 + 64 rows). Their
 * bytes never carry over: a copy is read only within the rows rowsOf wrote into it. A study of 36 builds of 100 FM 20k
 * trees (many shallow) spent about 1 ms a tree on each trainer thread allocating them, and more in garbage collection.
 * One set per thread (each has its own module); a partition that is never released (a throw) only costs a new set.
 */
const spareRows: (Uint8Array | null)[] = SUBTREE_LEVELS.map(() => null);

/** A buffer of `size` bytes for level k's row copy: the spare one if it has that size, else a new one. */
function takeRows(k: number, size: number): Uint8Array {
  const spare = spareRows[k];
  spareRows[k] = null;
  return spare !== null && spare.length === size ? spare : new Uint8Array(size);
}

/**
 * A row-major copy of the rows of samples [start, end), or start = end = -1 when it holds nothing. A class, not an
 * object literal, for the reason SplitRecord gives (splitter.ts): each tree makes new ones.
 */
class SubtreeRows {
  start = -1;
  end = -1;
  /** Its buffer (`bytes` long): the partition memory's, or taken when first filled (see takeRows). */
  rows: Uint8Array | null = null;

  constructor(
    readonly limit: number,
    readonly bytes: number,
    /** The same rows' 16-bit features (nWide per row), when the pack has any. */
    readonly wide: Uint16Array | null,
  ) {}
}

/** The bytes of each level's row copy (8-bit features) for a tree of n samples of nFeatures features. */
export function rowCopyBytes(n: number, nFeatures: number): number[] {
  return SUBTREE_LEVELS.map((limit) => Math.min(n, limit) * nFeatures);
}

/**
 * The partition's arrays held elsewhere than in its own: in the split kernels' memory (split-kernels.ts), where the
 * kernels read the samples and row copies, and copy rows between the copies.
 */
export interface PartitionMemory {
  /** The samples' rows, class codes and weights (room for the tree's training rows: the partition takes the first n). */
  readonly idx: Uint32Array;
  readonly codeAt: Uint16Array;
  readonly weightAt: Float64Array;
  /** One buffer per level, of rowCopyBytes' sizes. */
  readonly buffers: Uint8Array[];
  /**
   * Copies the rows of samples [start, start + count) in `from` (a row copy, or the pack's rows) to rows 0..count-1 of
   * `to`, and makes the samples' rows 0..count-1; false, doing nothing, when `from` is not one of `buffers`.
   */
  copyRows(from: Uint8Array, to: Uint8Array, start: number, count: number): boolean;
  /**
   * Sets idx (its own, or copied in), codeAt and weightAt for the samples `idx` from `weight` and the pack's class
   * `codes`, as the partition's constructor does; false, doing nothing, when `weight` is not the memory's own.
   */
  placeSamples(idx: Uint32Array, weight: Float64Array, codes: Uint16Array): boolean;
  /** The pack's row-major bins as read by copyRows: a copy in the memory, or `rowBins` itself (too large to copy). */
  rowsOfPack(rowBins: Uint8Array): Uint8Array;
}

/**
 * The samples of one tree, in scikit-learn's Partitioner role (sklearn/tree/_partitioner.pyx): the builder grows
 * the tree depth-first, and the samples of every node are the contiguous range [start, end) of `idx`, split in
 * place into left then right when the node splits. Each sample's class code or target and its weight are kept
 * aligned with `idx`, so split searches read them sequentially.
 *
 * Large nodes read the pack's bins column by column (idx holds pack rows, ascending within a node). Nodes below
 * COLUMN_PASS_MIN_SAMPLES work on a row-major copy of their subtree's rows: one contiguous block instead of reads
 * scattered over the whole pack, copied again at smaller sizes so deep nodes stay in the inner caches. idx then
 * holds row numbers within the innermost copy.
 */
export class SamplePartition implements SampleTargets {
  readonly idx: Uint32Array;
  readonly codeAt: Uint16Array | null;
  readonly valueAt: Float64Array | null;
  readonly weightAt: Float64Array;
  /** Column-major bins of the pack: bins[f * nRows + r]. */
  readonly bins: Uint8Array;
  readonly nRows: number;
  readonly nFeatures: number;
  /** 16-bit features: their column-major bins, each feature's column in them (-1: 8-bit), and their count. */
  readonly wideBins: Uint16Array | null;
  readonly wideColumn: Int32Array | null;
  readonly nWide: number;
  /** The 16-bit features' row copy of the node last entered (rowsOf), or null when it reads the pack's columns. */
  wideRows: Uint16Array | null = null;
  private readonly rowWideBins: Uint16Array | null;
  private readonly rowBins: Uint8Array;
  private readonly levels: SubtreeRows[];
  private readonly memory: PartitionMemory | null;
  private readonly scratch: Uint32Array;
  private readonly scratchW: Float64Array;
  private readonly scratchC: Uint16Array | null;
  private readonly scratchV: Float64Array | null;

  /**
   * `idx`: the pack rows with a positive weight, ascending (it is partitioned in place, or its copy in `memory`);
   * `weight`: per pack row; `memory`: where the arrays are kept (a classification's), or null for arrays of its own.
   */
  constructor(pack: DatasetPack, idx: Uint32Array, weight: Float64Array, memory: PartitionMemory | null = null) {
    const n = idx.length;
    const target = pack.target;
    this.memory = memory;
    this.idx = memory?.idx.subarray(0, n) ?? idx;
    this.bins = pack.bins;
    this.nRows = pack.nRows;
    this.nFeatures = pack.nFeatures;
    this.codeAt = target.task === "classification" ? (memory?.codeAt.subarray(0, n) ?? new Uint16Array(n)) : null;
    this.valueAt = target.task === "classification" ? null : new Float64Array(n);
    this.weightAt = memory?.weightAt.subarray(0, n) ?? new Float64Array(n);
    if (memory === null || target.task !== "classification" || !memory.placeSamples(idx, weight, target.codes)) {
      if (memory !== null) this.idx.set(idx);
      for (let i = 0; i < n; i++) {
        const r = idx[i];
        this.weightAt[i] = weight[r];
        if (this.codeAt !== null) this.codeAt[i] = (target as { codes: Uint16Array }).codes[r];
        else this.valueAt![i] = (target as { values: Float64Array }).values[r];
      }
    }
    this.rowBins = memory?.rowsOfPack(rowMajorBins(pack)) ?? rowMajorBins(pack);
    this.wideBins = pack.wideBins ?? null;
    this.wideColumn = pack.wideColumn ?? null;
    this.nWide = this.wideBins === null ? 0 : this.wideBins.length / pack.nRows;
    this.rowWideBins = rowMajorWideBins(pack) ?? null;
    const nWide = this.nWide;
    const bytes = rowCopyBytes(n, pack.nFeatures);
    this.levels = SUBTREE_LEVELS.map((limit, k) => {
      const level = new SubtreeRows(limit, bytes[k], nWide > 0 ? new Uint16Array(Math.min(n, limit) * nWide) : null);
      if (memory !== null) level.rows = memory.buffers[k];
      return level;
    });
    this.scratch = new Uint32Array(n);
    this.scratchW = new Float64Array(n);
    this.scratchC = this.codeAt !== null ? new Uint16Array(n) : null;
    this.scratchV = this.valueAt !== null ? new Float64Array(n) : null;
  }

  get size(): number {
    return this.idx.length;
  }

  /** Writes each level's range (start, end) at 4k, 4k + 1 of `out`, for code that makes row copies elsewhere (growSubtree). */
  saveLevels(out: Int32Array): void {
    this.levels.forEach((level, k) => {
      out[4 * k] = level.start;
      out[4 * k + 1] = level.end;
    });
  }

  /** Takes the levels' ranges back from saveLevels' layout, as the code that made row copies left them. */
  loadLevels(from: Int32Array): void {
    this.levels.forEach((level, k) => {
      level.start = from[4 * k];
      level.end = from[4 * k + 1];
    });
  }

  /** Gives the row copies' buffers to the next partition of this thread: call once the tree is grown, then never use this one again. */
  release(): void {
    this.levels.forEach((level, k) => {
      if (this.memory === null && level.rows !== null) spareRows[k] = level.rows;
      level.start = level.end = -1;
    });
  }

  /**
   * Where node [start, end)'s bins are read: the innermost row copy holding it — made first, if the node has
   * become small enough for a finer one — or null for the pack's columns. Call on entering each node, in the
   * builder's depth-first order.
   */
  rowsOf(start: number, end: number): Uint8Array | null {
    const { levels, idx, nFeatures } = this;
    const count = end - start;
    let level = -1;
    for (let k = levels.length - 1; k >= 0; k--) {
      if (start >= levels[k].start && end <= levels[k].end) {
        level = k;
        break;
      }
    }
    const rows: Uint8Array | null = level >= 0 ? levels[level].rows : null;
    this.wideRows = level >= 0 ? levels[level].wide : null;
    let finer = level + 1;
    while (finer + 1 < levels.length && count < levels[finer + 1].limit) finer++;
    if (!(finer < levels.length && count < levels[finer].limit)) return rows;
    const from = rows ?? this.rowBins;
    const to = levels[finer];
    const fromWide = this.wideRows ?? this.rowWideBins;
    const nWide = this.nWide;
    const out = to.rows ?? (to.rows = takeRows(finer, to.bytes));
    const outWide = to.wide;
    if (nWide > 0 || this.memory === null || !this.memory.copyRows(from, out, start, count)) {
      // A narrow row is copied byte by byte: a subarray per row (an allocation) cost more than the copy itself on a
      // table of 8 columns (10% of a flights grove's time); wide rows (784 pixels) copy faster through set().
      for (let i = 0; i < count; i++) {
        const r = idx[start + i];
        if (nFeatures <= NARROW_ROW) for (let f = 0, s = r * nFeatures, d = i * nFeatures; f < nFeatures; f++) out[d + f] = from[s + f];
        else out.set(from.subarray(r * nFeatures, (r + 1) * nFeatures), i * nFeatures);
        if (nWide > 0) for (let f = 0, s = r * nWide, d = i * nWide; f < nWide; f++) outWide![d + f] = fromWide![s + f];
        idx[start + i] = i;
      }
    }
    this.wideRows = to.wide;
    to.start = start;
    to.end = end;
    for (let k = finer + 1; k < levels.length; k++) levels[k].start = levels[k].end = -1;
    return out;
  }

  /**
   * Splits node [start, end) in place, stably: samples with bin <= thresholdBin (and missing ones when
   * missingLeft) first, both sides keep their order. `rows` is what rowsOf returned for the node. Returns the
   * first position of the right child.
   */
  split(start: number, end: number, rows: Uint8Array | null, feature: number, thresholdBin: number, missingLeft: boolean): number {
    const { idx, weightAt, codeAt, valueAt, scratch, scratchW, scratchC, scratchV } = this;
    const src = rows ?? this.bins;
    const rowStride = rows !== null ? this.nFeatures : 1;
    const col = rows !== null ? feature : feature * this.nRows;
    const tb = thresholdBin;
    const ml = missingLeft;
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
    return this.placeRight(mid, nRight);
  }

  /**
   * Splits node [start, end) in place, stably, as split() does, by a lookup per bin: samples whose bin b has
   * goesLeft[b] === 1 first (a categorical split: a set of categories, and the missing bin's direction).
   */
  splitBySet(start: number, end: number, rows: Uint8Array | null, feature: number, goesLeft: Uint8Array): number {
    const src = rows ?? this.bins;
    const rowStride = rows !== null ? this.nFeatures : 1;
    const col = rows !== null ? feature : feature * this.nRows;
    return this.partitionBy(start, end, (r) => goesLeft[src[col + r * rowStride]] === 1);
  }

  /**
   * Splits node [start, end) of a 16-bit feature in place, stably: a numeric split (bin <= thresholdBin, missing
   * values by missingLeft) when `words` is null, else a categorical one (code c left iff bit c of `words`, missing
   * values by missingLeft). Reads the node's row copy from the last rowsOf, or the pack's 16-bit columns.
   */
  splitWide(start: number, end: number, feature: number, thresholdBin: number, missingLeft: boolean, words: Uint32Array | null): number {
    const rows = this.wideRows;
    const src = rows ?? this.wideBins!;
    const w = this.wideColumn![feature];
    const rowStride = rows !== null ? this.nWide : 1;
    const col = rows !== null ? w : w * this.nRows;
    return this.partitionBy(start, end, (r) => {
      const b = src[col + r * rowStride];
      return b === MISSING_WIDE_BIN ? missingLeft : words === null ? b <= thresholdBin : ((words[b >>> 5] >>> (b & 31)) & 1) === 1;
    });
  }

  /**
   * The stable in-place split of node [start, end) by `goesLeft(r)` of each sample's idx entry r: categorical and
   * 16-bit splits (the numeric 8-bit split, the most frequent, keeps its own loop in split()).
   */
  private partitionBy(start: number, end: number, goesLeft: (r: number) => boolean): number {
    const { idx, weightAt, codeAt, valueAt, scratch, scratchW, scratchC, scratchV } = this;
    let mid = start;
    let nRight = 0;
    for (let i = start; i < end; i++) {
      const r = idx[i];
      if (goesLeft(r)) {
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
    return this.placeRight(mid, nRight);
  }

  /** Copies the right child's samples, held in the scratch arrays, after the left child's; returns `mid`. */
  private placeRight(mid: number, nRight: number): number {
    const { idx, weightAt, codeAt, valueAt, scratch, scratchW, scratchC, scratchV } = this;
    idx.set(scratch.subarray(0, nRight), mid);
    weightAt.set(scratchW.subarray(0, nRight), mid);
    if (scratchC !== null) codeAt!.set(scratchC.subarray(0, nRight), mid);
    else valueAt!.set(scratchV!.subarray(0, nRight), mid);
    return mid;
  }
}
