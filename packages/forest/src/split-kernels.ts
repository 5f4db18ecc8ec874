/**
 * Gini's split search over a node's gathered block as WebAssembly (see wasm.ts), for a node read from a row copy
 * (at most SWEEP_MAX samples):
 * - sweepGini: a small node's feature sorted by bin (a counting sort) and swept one sample at a time, each boundary
 *   between bins scored by gini's proxy, as HistogramSplitter's countingSort or insertionSort, then sweepSorted with
 *   Gini's addSample and proxyHere, do;
 * - histScanGini: a larger node's feature's histogram filled as histogramFromBlock does, then scanned bin by bin as
 *   evaluate and scan (Gini's addBin and proxyHere) do for a numeric feature without missing values (with missing
 *   values, the splitter scans the histogram itself).
 * The arithmetic is the JavaScript's: the same float64 operations in the same order (WebAssembly never fuses them), so
 * the splits are the same to the bit; the splitter's JavaScript remains for the other criteria and cases.
 * With them, the per-sample loops around the search, on the same memory (the partition's row copies live here):
 * - gatherRows: the splitter's gather of the node's drawn features into the block;
 * - splitRows: the partition's stable split of the node's samples, copied back to the partition after;
 * - copyRows: the partition's copy of a subtree's rows into a finer row copy.
 *
 * Why: these loops are most of the split search. FM 60k, 10 trees, one thread: fit 3.05-3.17 -> 2.58-2.70 s with the
 * sweep, 2.13-2.19 s with the histogram too, 2.07-2.11 -> 1.93-1.98 s with the gather, split and copy; digits, 10 trees:
 * a fresh process's first fit (where the JavaScript ran slow code until V8 had compiled it), median of 16 processes,
 * 60 -> 56 ms, and a second fit 25.5 -> 17 ms; with gather, split and copy, pack + fit 42.3 -> 40.2 ms (14 processes).
 */
import { add, and, assemble, block, Body, br, brIf, ctz, eq, eqz, F64, f64add, f64const, f64div, f64gt, f64load, f64mul, f64ne, f64store, f64storeAt, f64sub, forRange, geU, get, gtU, I32, i32, ifElse, ifThen, instantiate, load, load16At, load8, load8At, loop, leU, ltU, memoryCopy, mul, or, ret, set, shl, shrU, store, store16At, store8, store8At, sub, tee, xor, f64loadAt, type Code, type WasmMemory } from "./wasm.ts";
import { SPLIT_KERNELS } from "./kernel-bytes.ts";
import type { RowCopies } from "./partition.ts";

/** The largest node swept here: a node that reads its features from a subtree's row copy (COLUMN_PASS_MIN_SAMPLES). */
export const SWEEP_MAX = 4096;
/** Bins of an 8-bit feature; the last is the missing bin. */
const BINS = 256;
const MISSING_BIN = 255;

// The memory's layout: the counting sort's counters, presence bits and present bins; the result; the sorted samples
// and their bins; the node's class codes and weights and its class totals; then, by the width, the left sums and the
// best split's left sums; then the splitter's gathered block.
const CNT_AT = 0;
const PRESENT_AT = CNT_AT + 4 * BINS;
const ORDER_AT = PRESENT_AT + 4 * (BINS / 32);
/** The best split found: proxy (f64), left weight (f64), bin, missing values left (0/1), left count (i32). */
const OUT_AT = ORDER_AT + 4 * BINS;
const PERM_AT = OUT_AT + 32;
const SBINS_AT = PERM_AT + 4 * SWEEP_MAX;
const CODES_AT = SBINS_AT + SWEEP_MAX + 8;
const WEIGHTS_AT = CODES_AT + 2 * SWEEP_MAX;
/** The node's samples' rows in the row copy it reads (the partition's idx), then the right child's while splitting. */
const IDX_AT = WEIGHTS_AT + 8 * SWEEP_MAX;
const RIGHT_IDX_AT = IDX_AT + 4 * SWEEP_MAX;
const RIGHT_CODES_AT = RIGHT_IDX_AT + 4 * SWEEP_MAX;
const RIGHT_WEIGHTS_AT = RIGHT_CODES_AT + 2 * SWEEP_MAX;
const TOTAL_AT = RIGHT_WEIGHTS_AT + 8 * SWEEP_MAX;

/** The locals both kernels sweep with: their parameters' indices, and the criterion's sums. */
interface Gini {
  width: number;
  w: number;
  n: number;
  minLeaf: number;
  bestIn: number;
  /** Byte addresses of the left sums and of the best split's left sums. */
  left: number;
  bestLeft: number;
  /** A class's byte offset (class × 8), a scratch address, a class weight and its left sum. */
  c: number;
  a: number;
  v: number;
  l: number;
  sqL: number;
  sqR: number;
  lw: number;
  p: number;
  best: number;
  improved: number;
  ln: number;
}

function giniLocals(b: Body, params: Pick<Gini, "width" | "w" | "n" | "minLeaf" | "bestIn">): Gini {
  const [left, bestLeft, c, a, improved, ln] = b.locals(6);
  const [v, l, sqL, sqR, lw, p, best] = [F64, F64, F64, F64, F64, F64, F64].map((t) => b.local(t));
  return { ...params, left, bestLeft, c, a, v, l, sqL, sqR, lw, p, best, improved, ln };
}

/**
 * The sweep's start, as Gini's reset (criterion.ts): the left sums 0 and the right's sum of squares that of the class
 * totals, class by class from 0 (sqR and the others start at 0); the best proxy so far from the parameter.
 */
function giniStart(g: Gini): Code[] {
  return [
    i32(TOTAL_AT), get(g.width), i32(3), shl, add, tee(g.left), get(g.width), i32(3), shl, add, set(g.bestLeft),
    ...forRange(g.c, i32(0), get(g.width), [
      get(g.c), i32(3), shl, tee(g.a), i32(TOTAL_AT), add, f64load, tee(g.v), get(g.v), f64mul, get(g.sqR), f64add, set(g.sqR),
      get(g.left), get(g.a), add, f64const(0), f64store,
    ]),
    get(g.bestIn), set(g.best),
  ];
}

/** Gini's addSample / addBin for the class weight v of class byte offset c: the sums and left[c]. */
function giniAdd(g: Gini): Code[] {
  const { v, c, l, left, sqL, sqR, lw } = g;
  return [
    get(left), get(c), add, f64load, set(l),
    // sqL += v * (2 * l + v); sqR += v * (v - 2 * (total[c] - l)); left[c] = l + v; lw += v
    get(sqL), get(v), f64const(2), get(l), f64mul, get(v), f64add, f64mul, f64add, set(sqL),
    get(sqR), get(v), get(v), f64const(2), i32(TOTAL_AT), get(c), add, f64load, get(l), f64sub, f64mul, f64sub, f64mul, f64add, set(sqR),
    get(left), get(c), add, get(l), get(v), f64add, f64store,
    get(lw), get(v), f64add, set(lw),
  ];
}

/**
 * Scores the boundary with ln samples on the left, inside a block that it leaves (br 0) when either side has fewer than
 * minLeaf: Gini's proxyHere, sqL / lw + sqR / (w - lw); if it beats the best so far, records it at OUT_AT (the bin
 * `bin`, missing values left `ml`) and the left sums in the best ones.
 */
function giniScore(g: Gini, bin: Code[], ml: Code[]): Code[] {
  return [
    get(g.ln), get(g.minLeaf), ltU, brIf(0),
    get(g.n), get(g.ln), sub, get(g.minLeaf), ltU, brIf(0),
    get(g.sqL), get(g.lw), f64div, get(g.sqR), get(g.w), get(g.lw), f64sub, f64div, f64add, tee(g.p),
    get(g.best), f64gt,
    ifThen(
      get(g.p), set(g.best), i32(1), set(g.improved),
      i32(0), get(g.p), f64storeAt(OUT_AT),
      i32(0), get(g.lw), f64storeAt(OUT_AT + 8),
      i32(0), bin, store(OUT_AT + 16),
      i32(0), ml, store(OUT_AT + 20),
      i32(0), get(g.ln), store(OUT_AT + 24),
      ...forRange(g.c, i32(0), [get(g.width), i32(3), shl], [get(g.bestLeft), get(g.c), add, get(g.left), get(g.c), add, f64load, f64store], 8),
    ),
  ];
}

/**
 * sweepGini(col, n, width, w, minLeaf, best): sorts the n bins at col and sweeps the node's samples in that order
 * (codes and weights by position at CODES_AT and WEIGHTS_AT, class totals at TOTAL_AT, total weight w), recording
 * at OUT_AT and in the best left sums every boundary whose proxy beats `best` and leaves minLeaf samples a side.
 * Returns -1 if a bin is the missing one (nothing written but the cleared counters), 0 if one bin only, 1 if swept
 * without a better split, 2 if a better one was recorded.
 */
function sweepGiniFunction(): number[] {
  const [col, n, width, w, minLeaf, bestIn] = [0, 1, 2, 3, 4, 5];
  const b = new Body(6);
  const [i, bn, k, nb, word, bits, at, last] = b.locals(8);
  const g = giniLocals(b, { width, w, n, minLeaf, bestIn });
  const { a, c, v } = g;
  /** for (k = 0; k < nb; k++) cnt[order[k]] = 0 */
  const clearCounts = forRange(k, i32(0), get(nb), [get(k), i32(2), shl, load(ORDER_AT), i32(2), shl, i32(0), store(CNT_AT)]);
  return b.encode([
    // Count the bins and mark them present.
    ...forRange(i, i32(0), get(n), [
      get(col), get(i), add, load8, set(bn),
      get(bn), i32(2), shl, tee(a), get(a), load(CNT_AT), i32(1), add, store(CNT_AT),
      get(bn), i32(5), shrU, i32(2), shl, tee(a), get(a), load(PRESENT_AT), i32(1), get(bn), shl, or, store(PRESENT_AT),
    ]),
    // The present bins in order, a word of presence bits at a time (cleared as read).
    ...forRange(word, i32(0), i32(BINS / 32), [
      get(word), i32(2), shl, tee(a), load(PRESENT_AT), set(bits),
      get(a), i32(0), store(PRESENT_AT),
      block(loop(
        get(bits), eqz, brIf(1),
        get(nb), i32(2), shl, get(word), i32(5), shl, get(bits), ctz, or, store(ORDER_AT),
        get(nb), i32(1), add, set(nb),
        get(bits), get(bits), i32(1), sub, and, set(bits),
        br(0),
      )),
    ]),
    // Missing values or a single bin: nothing to sweep.
    get(nb), i32(1), sub, i32(2), shl, load(ORDER_AT), i32(MISSING_BIN), eq, set(last),
    get(last), get(nb), i32(2), ltU, or,
    ifThen(...clearCounts, get(last), ifElse(I32, [i32(-1)], [i32(0)]), ret),
    // Each present bin's first position, then the samples placed.
    ...forRange(k, i32(0), get(nb), [
      get(k), i32(2), shl, load(ORDER_AT), i32(2), shl, tee(a), load(CNT_AT), set(c),
      get(a), get(at), store(CNT_AT),
      get(at), get(c), add, set(at),
    ]),
    ...forRange(i, i32(0), get(n), [
      get(col), get(i), add, load8, set(bn),
      get(bn), i32(2), shl, tee(a), load(CNT_AT), set(k),
      get(a), get(k), i32(1), add, store(CNT_AT),
      get(k), i32(2), shl, get(i), store(PERM_AT),
      get(k), get(bn), store8At(SBINS_AT),
    ]),
    ...clearCounts,
    ...giniStart(g),
    // The sweep: add sample k, then score the boundary after it if the next bin differs.
    ...forRange(k, i32(0), [get(n), i32(1), sub], [
      block(
        get(k), i32(2), shl, load(PERM_AT), set(i),
        get(i), i32(1), shl, load16At(CODES_AT), i32(3), shl, set(c),
        get(i), i32(3), shl, i32(WEIGHTS_AT), add, f64load, set(v),
        ...giniAdd(g),
        get(k), load8At(SBINS_AT + 1), get(k), load8At(SBINS_AT), eq, brIf(0),
        get(k), i32(1), add, set(g.ln),
        ...giniScore(g, [get(k), load8At(SBINS_AT)], [get(n), get(g.ln), sub, get(g.ln), gtU, i32(1), xor]),
      ),
    ]),
    i32(1), get(g.improved), add,
  ]);
}

/**
 * histScanGini(col, n, width, w, minLeaf, best, top, hcnt, hist): fills the histogram (counts at hcnt, class
 * weights at hist, width per bin, zero before) of the n bins at col, as HistogramSplitter.histogramFromBlock does,
 * then, unless a bin is the missing one, scans the non-empty bins below `top` as its evaluate and scan do for a
 * numeric feature without missing values (unseen missing values follow the larger child) and clears the histogram.
 * Returns -2 if a bin is the missing one (the histogram left filled for the splitter's own scan), 0 if one bin only,
 * 1 if scanned without a better split, 2 if a better one was recorded (at OUT_AT, as sweepGini).
 */
function histScanGiniFunction(): number[] {
  const [col, n, width, w, minLeaf, bestIn, top, hcnt, hist] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const b = new Body(9);
  const [i, bn, k, nb, row] = b.locals(5);
  const g = giniLocals(b, { width, w, n, minLeaf, bestIn });
  const { a, c, v } = g;
  /** Clears the counts and class weights of the listed bins. */
  const clear = forRange(k, i32(0), get(nb), [
    get(k), i32(2), shl, load(ORDER_AT), set(bn),
    get(hcnt), get(bn), i32(2), shl, add, i32(0), store(0),
    get(hist), get(bn), get(width), mul, i32(3), shl, add, set(row),
    ...forRange(c, i32(0), [get(width), i32(3), shl], [get(row), get(c), add, f64const(0), f64store], 8),
  ]);
  return b.encode([
    // cnt[b]++; hist[b * width + code] += weight, sample by sample.
    ...forRange(i, i32(0), get(n), [
      get(col), get(i), add, load8, set(bn),
      get(hcnt), get(bn), i32(2), shl, add, tee(a), get(a), load(0), i32(1), add, store(0),
      get(hist), get(bn), get(width), mul, get(i), i32(1), shl, load16At(CODES_AT), add, i32(3), shl, add, tee(a),
      get(a), f64load, get(i), i32(3), shl, i32(WEIGHTS_AT), add, f64load, f64add, f64store,
    ]),
    get(hcnt), load(4 * MISSING_BIN), ifThen(i32(-2), ret),
    // The non-empty bins in order.
    ...forRange(bn, i32(0), get(top), [
      get(hcnt), get(bn), i32(2), shl, add, load(0),
      ifThen(get(nb), i32(2), shl, get(bn), store(ORDER_AT), get(nb), i32(1), add, set(nb)),
    ]),
    get(nb), i32(2), ltU, ifThen(...clear, i32(0), ret),
    ...giniStart(g),
    // Bin by bin (the last bin leaves no right child): add its class weights, then score the boundary after it.
    ...forRange(k, i32(0), [get(nb), i32(1), sub], [
      block(
        get(k), i32(2), shl, load(ORDER_AT), set(bn),
        get(hist), get(bn), get(width), mul, i32(3), shl, add, set(row),
        // Gini's addBin skips a class without weight.
        ...forRange(c, i32(0), [get(width), i32(3), shl], [
          get(row), get(c), add, f64load, tee(v), f64const(0), f64ne, ifThen(...giniAdd(g)),
        ], 8),
        get(g.ln), get(hcnt), get(bn), i32(2), shl, add, load(0), add, set(g.ln),
        ...giniScore(g, [get(bn)], [get(g.ln), get(n), get(g.ln), sub, geU]),
      ),
    ]),
    ...clear,
    i32(1), get(g.improved), add,
  ]);
}

/** The module as assembled here; the kernels run the copy stored in kernel-bytes.ts, which a test checks is the same. */
/**
 * gatherRows(rows, n, nF, m, block, batch, gathered): the splitter's gather (see HistogramSplitter.gather). For each
 * of the m positions j listed at `gathered`, block[j * n + i] = the bin of feature batch[j] in the row of the node's
 * i-th sample (row IDX_AT[i] of the row copy at `rows`, nF bytes a row). A row at a time: its features are near.
 */
function gatherRowsFunction(): number[] {
  const [rows, n, nF, m, blockAt, batch, gathered] = [0, 1, 2, 3, 4, 5, 6];
  const b = new Body(7);
  const [i, k, base, j] = b.locals(4);
  return b.encode([
    ...forRange(i, i32(0), get(n), [
      get(i), i32(2), shl, load(IDX_AT), get(nF), mul, get(rows), add, set(base),
      ...forRange(k, i32(0), get(m), [
        get(gathered), get(k), i32(2), shl, add, load(0), set(j),
        get(blockAt), get(j), get(n), mul, add, get(i), add,
        get(batch), get(j), i32(2), shl, add, load(0), get(base), add, load8,
        store8,
      ]),
    ]),
  ]);
}

/**
 * splitRows(rows, n, nF, f, tb, ml): the partition's split (SamplePartition.split) of the node's n samples (rows at
 * IDX_AT, codes at CODES_AT, weights at WEIGHTS_AT) by feature f of the row copy at `rows`: those with bin <= tb, and
 * the missing bin's when ml is 1, stay at the front in their order; the others go, in their order, to the RIGHT_
 * arrays. Returns the left count.
 */
function splitRowsFunction(): number[] {
  const [rows, n, nF, f, tb, ml] = [0, 1, 2, 3, 4, 5];
  const b = new Body(6);
  const [i, r, bn, mid, nr] = b.locals(5);
  return b.encode([
    ...forRange(i, i32(0), get(n), [
      get(i), i32(2), shl, load(IDX_AT), set(r),
      get(r), get(nF), mul, get(rows), add, get(f), add, load8, set(bn),
      get(bn), get(tb), leU, get(ml), get(bn), i32(MISSING_BIN), eq, and, or,
      ifElse(0x40, [
        get(mid), i32(2), shl, get(r), store(IDX_AT),
        get(mid), i32(1), shl, get(i), i32(1), shl, load16At(CODES_AT), store16At(CODES_AT),
        get(mid), i32(3), shl, get(i), i32(3), shl, f64loadAt(WEIGHTS_AT), f64storeAt(WEIGHTS_AT),
        get(mid), i32(1), add, set(mid),
      ], [
        get(nr), i32(2), shl, get(r), store(RIGHT_IDX_AT),
        get(nr), i32(1), shl, get(i), i32(1), shl, load16At(CODES_AT), store16At(RIGHT_CODES_AT),
        get(nr), i32(3), shl, get(i), i32(3), shl, f64loadAt(WEIGHTS_AT), f64storeAt(RIGHT_WEIGHTS_AT),
        get(nr), i32(1), add, set(nr),
      ]),
    ]),
    get(mid),
  ]);
}

/** copyRows(from, to, n, nF): the n rows at IDX_AT of the row copy at `from` to rows 0..n-1 at `to` (nF bytes a row). */
function copyRowsFunction(): number[] {
  const [from, to, n, nF] = [0, 1, 2, 3];
  const b = new Body(4);
  const [i] = b.locals(1);
  return b.encode([
    ...forRange(i, i32(0), get(n), [
      get(to), get(i), get(nF), mul, add,
      get(from), get(i), i32(2), shl, load(IDX_AT), get(nF), mul, add,
      get(nF), memoryCopy,
    ]),
  ]);
}

export function splitKernelBytes(): Uint8Array {
  return assemble([
    { name: "sweepGini", params: [I32, I32, I32, F64, I32, F64], results: [I32], body: sweepGiniFunction() },
    { name: "histScanGini", params: [I32, I32, I32, F64, I32, F64, I32, I32, I32], results: [I32], body: histScanGiniFunction() },
    { name: "gatherRows", params: [I32, I32, I32, I32, I32, I32, I32], results: [], body: gatherRowsFunction() },
    { name: "splitRows", params: [I32, I32, I32, I32, I32, I32], results: [I32], body: splitRowsFunction() },
    { name: "copyRows", params: [I32, I32, I32, I32], results: [], body: copyRowsFunction() },
  ]);
}

interface Kernels {
  sweepGini(col: number, n: number, width: number, w: number, minLeaf: number, best: number): number;
  histScanGini(col: number, n: number, width: number, w: number, minLeaf: number, best: number, top: number, hcnt: number, hist: number): number;
  gatherRows(rows: number, n: number, nF: number, m: number, block: number, batch: number, gathered: number): void;
  splitRows(rows: number, n: number, nF: number, f: number, tb: number, ml: number): number;
  copyRows(from: number, to: number, n: number, nF: number): void;
}

/**
 * The kernels and, in their memory, the splitter's gathered block and 8-bit histogram (which its JavaScript fills and
 * scans too, for the nodes and features the kernels leave to it), its feature batch, the partition's row copies (see
 * RowCopies), and the node's samples the kernels read.
 */
export class GiniKernels implements RowCopies {
  /** The splitter's gathered block (see HistogramSplitter.gather). */
  readonly block: Uint8Array;
  /** The splitter's histogram: counts per bin, and class weights per bin (width each); zero between features. */
  readonly cnt: Int32Array;
  readonly hist: Float64Array;
  /** The splitter's feature batch and the batch positions gather copies. */
  readonly batch: Int32Array;
  readonly gathered: Int32Array;
  /** The partition's row copies, one per level (see SamplePartition.useRowCopies). */
  readonly buffers: Uint8Array[];
  private readonly buffer: ArrayBuffer;
  private readonly idx: Uint32Array;
  private readonly codes: Uint16Array;
  private readonly weights: Float64Array;
  private readonly rightIdx: Uint32Array;
  private readonly rightCodes: Uint16Array;
  private readonly rightWeights: Float64Array;
  private readonly total: Float64Array;
  private readonly bestLeft: Float64Array;
  private readonly out: Float64Array;
  private readonly outBins: Int32Array;
  private readonly blockAt: number;
  private readonly cntAt: number;
  private readonly histAt: number;
  private readonly batchAt: number;
  private readonly gatheredAt: number;

  private constructor(
    private readonly k: Kernels,
    memory: WasmMemory,
    private readonly width: number,
    blockBytes: number,
    bins: number,
    features: number,
    rowBytes: number[],
    private readonly nFeatures: number,
  ) {
    const buffer = memory.buffer;
    this.buffer = buffer;
    const layout = layoutOf(width, blockBytes, bins, features, rowBytes);
    this.blockAt = layout.blockAt;
    this.cntAt = layout.cntAt;
    this.histAt = layout.histAt;
    this.batchAt = layout.batchAt;
    this.gatheredAt = layout.gatheredAt;
    this.idx = new Uint32Array(buffer, IDX_AT, SWEEP_MAX);
    this.codes = new Uint16Array(buffer, CODES_AT, SWEEP_MAX);
    this.weights = new Float64Array(buffer, WEIGHTS_AT, SWEEP_MAX);
    this.rightIdx = new Uint32Array(buffer, RIGHT_IDX_AT, SWEEP_MAX);
    this.rightCodes = new Uint16Array(buffer, RIGHT_CODES_AT, SWEEP_MAX);
    this.rightWeights = new Float64Array(buffer, RIGHT_WEIGHTS_AT, SWEEP_MAX);
    this.total = new Float64Array(buffer, TOTAL_AT, width);
    this.bestLeft = new Float64Array(buffer, layout.bestLeftAt, width);
    this.out = new Float64Array(buffer, OUT_AT, 2);
    this.outBins = new Int32Array(buffer, OUT_AT + 16, 3);
    this.block = new Uint8Array(buffer, this.blockAt, blockBytes);
    this.cnt = new Int32Array(buffer, this.cntAt, bins);
    this.hist = new Float64Array(buffer, this.histAt, bins * width);
    this.batch = new Int32Array(buffer, this.batchAt, features);
    this.gathered = new Int32Array(buffer, this.gatheredAt, features);
    this.buffers = rowBytes.map((bytes, level) => new Uint8Array(buffer, layout.rowsAt[level], bytes));
  }

  /**
   * Kernels for a splitter of `width` classes, `blockBytes` of block, a histogram of `bins` bins, a batch of `features`
   * and a partition whose row copies take `rowBytes` (rows of `nFeatures` bytes), or null when their memory cannot be
   * had. The memory made last is kept and used again while it is large enough (a tree's splitter uses it while the
   * tree grows, the next tree's after): a memory and an instance per tree cost a small tree's fit more than the
   * kernels saved.
   */
  static of(width: number, blockBytes: number, bins: number, features: number, rowBytes: number[], nFeatures: number): GiniKernels | null {
    const bytes = layoutOf(width, blockBytes, bins, features, rowBytes).end;
    if (kept === null || kept.bytes < bytes) {
      const made = instantiate<Kernels>(cache, SPLIT_KERNELS, bytes);
      if (made === null) return null;
      kept = { ...made, bytes };
    }
    const kernels = new GiniKernels(kept.exports, kept.memory, width, blockBytes, bins, features, rowBytes, nFeatures);
    // Zero, as a new memory: the last splitter (at another width, or stopped by a throw) may have left numbers there.
    new Uint8Array(kept.memory.buffer, 0, PERM_AT).fill(0);
    kernels.cnt.fill(0);
    kernels.hist.fill(0);
    return kernels;
  }

  /** Whether `rows` (a row copy) is in the kernels' memory. */
  holds(rows: Uint8Array): boolean {
    return rows.buffer === this.buffer;
  }

  /** Copies in the node's samples [start, end) (at most SWEEP_MAX: rows in its row copy, codes, weights) and its class totals. */
  setNode(idx: Uint32Array, codeAt: Uint16Array, weightAt: Float64Array, start: number, end: number, total: Float64Array): void {
    this.idx.set(idx.subarray(start, end));
    this.codes.set(codeAt.subarray(start, end));
    this.weights.set(weightAt.subarray(start, end));
    this.total.set(total);
  }

  /** The splitter's gather of the node's n samples (set by setNode) from `rows`, one of `buffers`: see gatherRows. */
  gather(rows: Uint8Array, n: number, m: number): void {
    this.k.gatherRows(rows.byteOffset, n, this.nFeatures, m, this.blockAt, this.batchAt, this.gatheredAt);
  }

  /**
   * SamplePartition.split of the node set by setNode, [start, end) of the partition's `idx`, `codeAt` and `weightAt`,
   * by feature f of `rows` (one of `buffers`): split in this memory (see splitRows), then copied back. Returns mid.
   */
  split(rows: Uint8Array, f: number, thresholdBin: number, missingLeft: boolean, idx: Uint32Array, codeAt: Uint16Array, weightAt: Float64Array, start: number, end: number): number {
    const n = end - start;
    const nLeft = this.k.splitRows(rows.byteOffset, n, this.nFeatures, f, thresholdBin, missingLeft ? 1 : 0);
    const mid = start + nLeft;
    idx.set(this.idx.subarray(0, nLeft), start);
    idx.set(this.rightIdx.subarray(0, n - nLeft), mid);
    codeAt.set(this.codes.subarray(0, nLeft), start);
    codeAt.set(this.rightCodes.subarray(0, n - nLeft), mid);
    weightAt.set(this.weights.subarray(0, nLeft), start);
    weightAt.set(this.rightWeights.subarray(0, n - nLeft), mid);
    return mid;
  }

  copyRows(from: Uint8Array, to: Uint8Array, idx: Uint32Array, start: number, count: number): boolean {
    if (from.buffer !== this.buffer) return false;
    this.idx.set(idx.subarray(start, start + count));
    this.k.copyRows(from.byteOffset, to.byteOffset, count, this.nFeatures);
    return true;
  }

  /**
   * Sorts and sweeps the block's feature j of the node's n samples (see sweepGini); on a better split than
   * `best.proxy`, writes it into `best` for feature f. Returns -1 (missing values), 0 (constant) or 1 (swept).
   */
  sweep(j: number, n: number, w: number, minLeaf: number, f: number, best: SplitSink): number {
    return this.take(this.k.sweepGini(this.blockAt + j * n, n, this.width, w, minLeaf, best.proxy), f, best);
  }

  /**
   * Fills the histogram of the block's feature j and scans its bins below `top` (see histScanGini); on a better
   * split, writes it into `best` for feature f. Returns -2 (missing values: the histogram is left filled for the
   * splitter to scan), 0 (constant) or 1 (scanned).
   */
  histScan(j: number, n: number, w: number, minLeaf: number, f: number, top: number, best: SplitSink): number {
    return this.take(this.k.histScanGini(this.blockAt + j * n, n, this.width, w, minLeaf, best.proxy, top, this.cntAt, this.histAt), f, best);
  }

  private take(status: number, f: number, best: SplitSink): number {
    if (status !== 2) return status;
    best.record(f, this.outBins[0], this.outBins[1] === 1, this.out[0], this.out[1], this.outBins[2], this.bestLeft);
    return 1;
  }
}

interface Layout {
  bestLeftAt: number;
  blockAt: number;
  cntAt: number;
  histAt: number;
  batchAt: number;
  gatheredAt: number;
  rowsAt: number[];
  end: number;
}

/**
 * Where the best split's left sums, the block, the counters, the histogram, the batch and the row copies start, and
 * the memory's end, for a splitter's sizes. After the class totals (TOTAL_AT) come the left sums and the best split's,
 * width each, as the kernels find them (giniStart).
 */
function layoutOf(width: number, blockBytes: number, bins: number, features: number, rowBytes: number[]): Layout {
  const bestLeftAt = TOTAL_AT + 16 * width;
  const blockAt = bestLeftAt + 8 * width;
  const cntAt = (blockAt + blockBytes + 7) & ~7;
  const histAt = cntAt + 4 * bins + (bins & 1 ? 4 : 0);
  const batchAt = histAt + 8 * bins * width;
  const gatheredAt = batchAt + 4 * features;
  let at = gatheredAt + 4 * features;
  const rowsAt = rowBytes.map((bytes) => {
    const start = at;
    at += (bytes + 7) & ~7;
    return start;
  });
  return { bestLeftAt, blockAt, cntAt, histAt, batchAt, gatheredAt, rowsAt, end: at };
}

/** The splitter's best split so far (splitter.ts's SplitRecord): its proxy, and how a better one is recorded. */
export interface SplitSink {
  readonly proxy: number;
  record(f: number, b: number, missingLeft: boolean, p: number, lw: number, ln: number, stats: Float64Array): void;
}

const cache: { module?: object } = {};
/** The memory GiniKernels.of made last, and its size (one per thread: each has its own module). */
let kept: { memory: WasmMemory; exports: Kernels; bytes: number } | null = null;
