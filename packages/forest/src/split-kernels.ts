/**
 * The small-node sweep of the gini criterion as WebAssembly (see wasm.ts): a feature of a node of at most SWEEP_MAX
 * samples is sorted by bin (a counting sort) and swept one sample at a time, each boundary between bins scored by
 * gini's proxy, as HistogramSplitter's JavaScript path (countingSort or insertionSort, then sweepSorted with Gini's
 * addSample and proxyHere) does. The arithmetic is that path's: the same float64 operations in the same order (and
 * WebAssembly never fuses them), so the splits are the same to the bit.
 *
 * Why: that path is most of a small node's split search. FM 60k, 10 trees, one thread: fit 3.05-3.17 -> 2.58-2.70 s;
 * digits, 10 trees, a fresh process's first fit (where the JavaScript ran slow code until V8 had compiled it):
 * median of 16 processes 60 -> 56 ms.
 */
import { add, and, assemble, block, Body, br, brIf, ctz, eq, eqz, F64, f64add, f64const, f64div, f64gt, f64load, f64mul, f64store, f64storeAt, f64sub, geU, get, gtU, I32, i32, ifElse, ifThen, instantiate, load, load16At, load8, load8At, loop, ltU, or, ret, set, shl, shrU, store, store8At, sub, tee, xor, type WasmMemory } from "./wasm.ts";

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
const TOTAL_AT = WEIGHTS_AT + 8 * SWEEP_MAX;

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
  const [i, bn, a, k, nb, word, bits, at, c, left, bestLeft, ln, improved, last] = b.locals(14);
  const [sqL, sqR, lw, v, l, p, best] = [F64, F64, F64, F64, F64, F64, F64].map((t) => b.local(t));
  /** for (k = 0; k < nb; k++) cnt[order[k]] = 0 */
  const clearCounts = [
    i32(0), set(k),
    block(loop(
      get(k), get(nb), geU, brIf(1),
      get(k), i32(2), shl, load(ORDER_AT), i32(2), shl, i32(0), store(CNT_AT),
      get(k), i32(1), add, set(k),
      br(0),
    )),
  ];
  return b.encode([
    // Count the bins and mark them present.
    block(loop(
      get(i), get(n), geU, brIf(1),
      get(col), get(i), add, load8, set(bn),
      get(bn), i32(2), shl, tee(a), get(a), load(CNT_AT), i32(1), add, store(CNT_AT),
      get(bn), i32(5), shrU, i32(2), shl, tee(a), get(a), load(PRESENT_AT), i32(1), get(bn), shl, or, store(PRESENT_AT),
      get(i), i32(1), add, set(i),
      br(0),
    )),
    // The present bins in order, a word of presence bits at a time (cleared as read).
    block(loop(
      get(word), i32(BINS / 32), geU, brIf(1),
      get(word), i32(2), shl, tee(a), load(PRESENT_AT), set(bits),
      get(a), i32(0), store(PRESENT_AT),
      block(loop(
        get(bits), eqz, brIf(1),
        get(nb), i32(2), shl, get(word), i32(5), shl, get(bits), ctz, or, store(ORDER_AT),
        get(nb), i32(1), add, set(nb),
        get(bits), get(bits), i32(1), sub, and, set(bits),
        br(0),
      )),
      get(word), i32(1), add, set(word),
      br(0),
    )),
    // Missing values or a single bin: nothing to sweep.
    get(nb), i32(1), sub, i32(2), shl, load(ORDER_AT), i32(MISSING_BIN), eq, set(last),
    get(last), get(nb), i32(2), ltU, or,
    ifThen(...clearCounts, get(last), ifElse(I32, [i32(-1)], [i32(0)]), ret),
    // Each present bin's first position, then the samples placed.
    i32(0), set(k),
    block(loop(
      get(k), get(nb), geU, brIf(1),
      get(k), i32(2), shl, load(ORDER_AT), i32(2), shl, tee(a), load(CNT_AT), set(c),
      get(a), get(at), store(CNT_AT),
      get(at), get(c), add, set(at),
      get(k), i32(1), add, set(k),
      br(0),
    )),
    i32(0), set(i),
    block(loop(
      get(i), get(n), geU, brIf(1),
      get(col), get(i), add, load8, set(bn),
      get(bn), i32(2), shl, tee(a), load(CNT_AT), set(k),
      get(a), get(k), i32(1), add, store(CNT_AT),
      get(k), i32(2), shl, get(i), store(PERM_AT),
      get(k), get(bn), store8At(SBINS_AT),
      get(i), i32(1), add, set(i),
      br(0),
    )),
    ...clearCounts,
    // Gini's reset: left sums 0, the right's sum of squares that of the totals (class by class from 0).
    i32(TOTAL_AT), get(width), i32(3), shl, add, tee(left), get(width), i32(3), shl, add, set(bestLeft),
    i32(0), set(c),
    block(loop(
      get(c), get(width), geU, brIf(1),
      get(c), i32(3), shl, tee(a), i32(TOTAL_AT), add, f64load, tee(v), get(v), f64mul, get(sqR), f64add, set(sqR),
      get(left), get(a), add, f64const(0), f64store,
      get(c), i32(1), add, set(c),
      br(0),
    )),
    get(bestIn), set(best),
    // The sweep: add sample k, then score the boundary after it if the next bin differs.
    i32(0), set(k),
    block(loop(
      get(k), i32(1), add, get(n), geU, brIf(1),
      block(
        get(k), i32(2), shl, load(PERM_AT), set(i),
        get(i), i32(1), shl, load16At(CODES_AT), i32(3), shl, set(c),
        get(i), i32(3), shl, i32(WEIGHTS_AT), add, f64load, set(v),
        get(left), get(c), add, f64load, set(l),
        // sqL += v * (2 * l + v); sqR += v * (v - 2 * (total[c] - l)); left[c] = l + v; lw += v
        get(sqL), get(v), f64const(2), get(l), f64mul, get(v), f64add, f64mul, f64add, set(sqL),
        get(sqR), get(v), get(v), f64const(2), i32(TOTAL_AT), get(c), add, f64load, get(l), f64sub, f64mul, f64sub, f64mul, f64add, set(sqR),
        get(left), get(c), add, get(l), get(v), f64add, f64store,
        get(lw), get(v), f64add, set(lw),
        get(k), load8At(SBINS_AT + 1), get(k), load8At(SBINS_AT), eq, brIf(0),
        get(k), i32(1), add, set(ln),
        get(ln), get(minLeaf), ltU, brIf(0),
        get(n), get(ln), sub, get(minLeaf), ltU, brIf(0),
        // proxy: sqL / lw + sqR / (w - lw)
        get(sqL), get(lw), f64div, get(sqR), get(w), get(lw), f64sub, f64div, f64add, tee(p),
        get(best), f64gt,
        ifThen(
          get(p), set(best), i32(1), set(improved),
          i32(0), get(p), f64storeAt(OUT_AT),
          i32(0), get(lw), f64storeAt(OUT_AT + 8),
          i32(0), get(k), load8At(SBINS_AT), store(OUT_AT + 16),
          i32(0), get(n), get(ln), sub, get(ln), gtU, i32(1), xor, store(OUT_AT + 20),
          i32(0), get(ln), store(OUT_AT + 24),
          i32(0), set(c),
          block(loop(
            get(c), get(width), i32(3), shl, geU, brIf(1),
            get(bestLeft), get(c), add, get(left), get(c), add, f64load, f64store,
            get(c), i32(8), add, set(c),
            br(0),
          )),
        ),
      ),
      get(k), i32(1), add, set(k),
      br(0),
    )),
    i32(1), get(improved), add,
  ]);
}

function moduleBytes(): Uint8Array {
  return assemble([{ name: "sweepGini", params: [I32, I32, I32, F64, I32, F64], results: [I32], body: sweepGiniFunction() }]);
}

interface Kernels {
  sweepGini(col: number, n: number, width: number, w: number, minLeaf: number, best: number): number;
}

/** The sweep's kernel and views of its memory for a splitter of `width` classes and `blockBytes` of gathered bins. */
export class GiniSweep {
  /** The splitter's gathered block (see HistogramSplitter.gather), in the kernel's memory. */
  readonly block: Uint8Array;
  /** The node's class codes, weights and class totals, copied in by the splitter (setNode). */
  private readonly codes: Uint16Array;
  private readonly weights: Float64Array;
  private readonly total: Float64Array;
  private readonly bestLeft: Float64Array;
  private readonly out: Float64Array;
  private readonly outBins: Int32Array;
  private readonly blockAt: number;

  private constructor(
    private readonly k: Kernels,
    memory: WasmMemory,
    readonly width: number,
    blockBytes: number,
  ) {
    const buffer = memory.buffer;
    const leftAt = TOTAL_AT + 8 * width;
    this.blockAt = leftAt + 16 * width;
    this.codes = new Uint16Array(buffer, CODES_AT, SWEEP_MAX);
    this.weights = new Float64Array(buffer, WEIGHTS_AT, SWEEP_MAX);
    this.total = new Float64Array(buffer, TOTAL_AT, width);
    this.bestLeft = new Float64Array(buffer, leftAt + 8 * width, width);
    this.out = new Float64Array(buffer, OUT_AT, 2);
    this.outBins = new Int32Array(buffer, OUT_AT + 16, 3);
    this.block = new Uint8Array(buffer, this.blockAt, blockBytes);
  }

  /**
   * A sweep for `width` classes, or null when its memory cannot be had. The last one made is kept and given again
   * while it fits (a tree's splitter holds it while the tree grows; the next tree's takes it over): a memory and an
   * instance per tree cost a small tree's fit more than the sweep saved.
   */
  static of(width: number, blockBytes: number): GiniSweep | null {
    const last = kept;
    if (last !== null && last.width === width && last.block.length >= blockBytes) return last;
    const bytes = TOTAL_AT + 24 * width + blockBytes;
    const made = instantiate<Kernels>(cache, moduleBytes, bytes);
    if (made === null) return null;
    kept = new GiniSweep(made.exports, made.memory, width, blockBytes);
    return kept;
  }

  /** Copies in the node's samples [start, end) (at most SWEEP_MAX) and its class totals. */
  setNode(codeAt: Uint16Array, weightAt: Float64Array, start: number, end: number, total: Float64Array): void {
    this.codes.set(codeAt.subarray(start, end));
    this.weights.set(weightAt.subarray(start, end));
    this.total.set(total);
  }

  /**
   * Sorts and sweeps the block's feature j of the node's n samples (see sweepGini); on a better split than
   * `best.proxy`, writes it into `best` for feature f. Returns -1 (missing values), 0 (constant) or 1 (swept).
   */
  sweep(j: number, n: number, w: number, minLeaf: number, f: number, best: SweptSplit): number {
    const status = this.k.sweepGini(this.blockAt + j * n, n, this.width, w, minLeaf, best.proxy);
    if (status !== 2) return status;
    best.feature = f;
    best.thresholdBin = this.outBins[0];
    best.categorical = false;
    best.missingLeft = this.outBins[1] === 1;
    best.proxy = this.out[0];
    best.leftWeight = this.out[1];
    best.leftCount = this.outBins[2];
    best.leftStats.set(this.bestLeft);
    return 1;
  }
}

/** The fields of a split the sweep writes (splitter.ts's Split). */
export interface SweptSplit {
  feature: number;
  thresholdBin: number;
  categorical: boolean;
  missingLeft: boolean;
  proxy: number;
  leftWeight: number;
  leftCount: number;
  leftStats: Float64Array;
}

const cache: { module?: object } = {};
/** The sweep GiniSweep.of made last (one per thread: each has its own module). */
let kept: GiniSweep | null = null;
