/**
 * A gini tree's work as WebAssembly (see wasm.ts), for nodes read from a row copy (at most SWEEP_MAX samples), on one
 * memory that holds the bootstrap's weights, the partition's samples and row copies, and the splitter's arrays:
 * - sweepGini: a small node's feature sorted by bin (a counting sort) and swept one sample at a time, each boundary
 *   between bins scored by gini's proxy, as HistogramSplitter's countingSort or insertionSort, then sweepSorted with
 *   Gini's addSample and proxyHere, do;
 * - histScanGini: a larger node's feature's histogram filled as histogramFromBlock does, then scanned bin by bin as
 *   evaluate and scan (Gini's addBin and proxyHere) do for a numeric feature without missing values;
 * - searchNode: findBestSplit around them (the feature draws with the tree's generator, gatherRows, the constant
 *   features), stopping for the splitter's JavaScript at missing values and categorical features;
 * - splitRows, copyRows, setNode: the partition's split, its row copies, a node's samples where the kernels read them;
 * - drawRows, keepDrawn, placeSamples: sampleWeights' uniform bootstrap and the partition's first arrays;
 * - growSubtree: builder.ts's loop for a whole subtree where no feature is categorical, stopping as searchNode does for
 *   the splitter to score a feature with missing values.
 * The arithmetic is the JavaScript's: the same float64 operations in the same order (WebAssembly never fuses them), the
 * same float32 roundings, the same integers from the generator, so the trees are the same to the bit; the JavaScript
 * remains for the other criteria and cases, and tests compare the two (counted.test.ts).
 *
 * Why: V8 runs a fresh process's JavaScript slowly until it has compiled it, which was most of a small fit, and these
 * loops are most of a large one. Digits, 10 trees, a fresh process's pack + first fit (medians of 12-16 processes): 60
 * -> 56 ms with the sweep; 42 -> 40 with the gather, split and copy; 37 -> 31 with the node search; 32 -> 27 with the
 * bootstrap and samples; 29 -> 21 with whole subtrees (digits with 5% missing values in a third of its columns, the
 * subtrees stopping for them: 44 -> 34 ms, three processes each). FM 60k, 10 trees, one thread: fit 3.05-3.17 -> 2.58-2.70
 * s with the sweep, 2.13-2.19 s with the histogram too, 1.93-1.98 s with the gather, split and copy, 1.86-1.94 s after.
 */
import {
  add, and, assemble, block, Body, br, brIf, call, ctz, eq, eqz, F64, f64add, f64const, f64convertU, f64div, f64floor, f64gt, f64load, f64loadAt, f64mul,
  f64ne, f64store, f64storeAt, f64sub, forRange, geU, get, gtU, I32, i32, i32truncU, i32wrap, I64, i64const, i64extendU, i64mul, i64shrU, ifElse, ifThen,
  instantiate, leS, leU, load, load16, load16At, load8, load8At, loop, ltS, ltU, memoryCopy, mul, ne, or, remU, ret, rotl, set, shl, shrU, store, store16,
  store16At, store8, store8At, sub, tee, xor, f64le, f64lt, f32store, demote, geS, unreachable, type Code, type WasmMemory,
} from "./wasm.ts";
import { SPLIT_KERNELS } from "./kernel-bytes.ts";
import type { BootstrapMemory } from "./bootstrap.ts";
import { SUBTREE_LEVELS, type PartitionMemory } from "./partition.ts";
import type { Rng } from "./rng.ts";
import type { SubtreeNodes } from "./tree-arrays.ts";

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
/** Where the splitter's and the partition's arrays are (i32 byte addresses, set once per splitter), and their sizes. */
const CONFIG_AT = RIGHT_WEIGHTS_AT + 8 * SWEEP_MAX;
const [C_BLOCK, C_BATCH, C_GATHERED, C_FEATURES, C_CONSTANTS, C_TOP, C_CATEGORICAL, C_CNT, C_HIST, C_NF, C_MAXF, C_WIDTH, C_IDX, C_CODES, C_WEIGHTS] =
  Array.from({ length: 15 }, (_, i) => CONFIG_AT + 4 * i);
const [C_TRAIN_ROWS, C_DRAWN, C_PACK_CODES] = Array.from({ length: 3 }, (_, i) => CONFIG_AT + 4 * (15 + i));
const [C_STACK, C_POOL, C_RIGHT_STATS, C_OUT_FEATURE, C_OUT_BIN, C_OUT_THRESHOLD, C_OUT_RIGHT, C_OUT_MISSING, C_OUT_GAIN, C_OUT_VALUES, C_EDGES, C_EDGE_START, C_LEVELS] =
  Array.from({ length: 13 }, (_, i) => CONFIG_AT + 4 * (18 + i));
/** searchNode's state between its calls for one node (i32s), and the feature of the best split it found in the last. */
const STATE_AT = CONFIG_AT + 128;
const [S_DRAWN, S_TOTAL, S_POOL_END, S_VISITED, S_FOUND, S_NB, S_J, S_BEST_F, S_LEAVES] = Array.from({ length: 9 }, (_, i) => STATE_AT + 4 * i);
/** The tree's random number generator's state while searchNode draws (see Rng.saveTo). */
const RNG_AT = STATE_AT + 64;
/**
 * growSubtree's state while the splitter scores a feature its node's search stopped at: the node's weight, impurity,
 * best proxy so far (f64), its samples and best split's feature (i32; the splitter writes a better split's), the rest.
 */
const GROW_AT = RNG_AT + 16;
const [G_WEIGHT, G_IMPURITY, G_NODE_BEST] = [GROW_AT, GROW_AT + 8, GROW_AT + 16];
const [G_SAMPLES, G_BEST_F, G_OTHERS] = [GROW_AT + 24, GROW_AT + 28, GROW_AT + 32];
const TOTAL_AT = GROW_AT + 80;

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
 * splitRows(rows, n, nF, f, tb, ml, start): the partition's split (SamplePartition.split) of the node's n samples (rows
 * at IDX_AT, codes at CODES_AT, weights at WEIGHTS_AT: setNode's copy of the partition's from `start`) by feature f of
 * the row copy at `rows`: those with bin <= tb, and the missing bin's when ml is 1, first in their order, then the
 * others in theirs (through the RIGHT_ arrays), written back to the partition. Returns the left count.
 */
function splitRowsFunction(): number[] {
  const [rows, n, nF, f, tb, ml, start] = [0, 1, 2, 3, 4, 5, 6];
  const b = new Body(7);
  const [i, r, bn, mid, nr] = b.locals(5);
  /** memory.copy of `count` elements of `size` bytes from `from` to the partition's array at C_ (from position `at`). */
  const back = (array: number, size: number, at: Code[], from: number, count: number): Code[] => [
    i32(0), load(array), at, i32(Math.log2(size)), shl, add, i32(from), get(count), i32(Math.log2(size)), shl, memoryCopy,
  ];
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
    // Back into the partition: the left samples, then the right ones.
    ...back(C_IDX, 4, [get(start)], IDX_AT, mid),
    ...back(C_IDX, 4, [get(start), get(mid), add], RIGHT_IDX_AT, nr),
    ...back(C_CODES, 2, [get(start)], CODES_AT, mid),
    ...back(C_CODES, 2, [get(start), get(mid), add], RIGHT_CODES_AT, nr),
    ...back(C_WEIGHTS, 8, [get(start)], WEIGHTS_AT, mid),
    ...back(C_WEIGHTS, 8, [get(start), get(mid), add], RIGHT_WEIGHTS_AT, nr),
    get(mid),
  ]);
}

/**
 * copyRows(from, to, n, nF, start): the rows of the partition's samples [start, start + n) in the row copy at `from` to
 * rows 0..n-1 at `to` (nF bytes a row); the samples' rows become 0..n-1.
 */
function copyRowsFunction(): number[] {
  const [from, to, n, nF, start] = [0, 1, 2, 3, 4];
  const b = new Body(5);
  const [i, at] = b.locals(2);
  return b.encode([
    i32(0), load(C_IDX), get(start), i32(2), shl, add, set(at),
    ...forRange(i, i32(0), get(n), [
      get(to), get(i), get(nF), mul, add,
      get(from), get(at), load(0), get(nF), mul, add,
      get(nF), memoryCopy,
      get(at), get(i), store(0),
      get(at), i32(4), add, set(at),
    ]),
  ]);
}

/** setNode(start, n): the partition's samples [start, start + n) (rows, codes, weights) to IDX_AT, CODES_AT, WEIGHTS_AT. */
function setNodeFunction(): number[] {
  const [start, n] = [0, 1];
  const b = new Body(2);
  const copy = (to: number, array: number, size: number): Code[] => [
    i32(to), i32(0), load(array), get(start), i32(Math.log2(size)), shl, add, get(n), i32(Math.log2(size)), shl, memoryCopy,
  ];
  return b.encode([...copy(IDX_AT, C_IDX, 4), ...copy(CODES_AT, C_CODES, 2), ...copy(WEIGHTS_AT, C_WEIGHTS, 8)]);
}

/** The locals the generator's code uses: its state, scratch, and nextInt's bound n and result k. */
interface RngLocals {
  ra: number;
  rb: number;
  rc: number;
  rd: number;
  x: number;
  t: number;
  /** An i64 local. */
  m: number;
  n: number;
  k: number;
}

/** The tree's generator (rng.ts's Rng) as code on locals: x = nextU32(), and k = nextInt(n), the same numbers. */
function rngCode({ ra, rb, rc, rd, x, t, m, n, k }: RngLocals): { load: Code[]; save: Code[]; nextInt: Code[] } {
  /** x = Rng.nextU32() (xoshiro128**). */
  const nextU32 = [
    get(rb), i32(5), mul, i32(7), rotl, i32(9), mul, set(x),
    get(rb), i32(9), shl, set(t),
    get(rc), get(ra), xor, set(rc),
    get(rd), get(rb), xor, set(rd),
    get(rb), get(rc), xor, set(rb),
    get(ra), get(rd), xor, set(ra),
    get(rc), get(t), xor, set(rc),
    get(rd), i32(11), rotl, set(rd),
  ];
  /** k = Rng.nextInt(n): Lemire's method with its rejection, the same integers as the JavaScript's. */
  const nextInt = [
    get(n), i32(1), leU,
    ifElse(0x40, [i32(0), set(k)], [
      get(n), i32(0x20_0000), geU,
      ifElse(0x40, [
        ...nextU32,
        get(x), f64convertU, f64const(0x1_0000_0000), f64div, get(n), f64convertU, f64mul, f64floor, i32truncU, set(k),
      ], [
        block(loop(
          ...nextU32,
          get(x), i64extendU, get(n), i64extendU, i64mul, tee(m), i64const(32), i64shrU, i32wrap, set(k),
          get(m), i32wrap, tee(t), get(n), geU, brIf(1),
          get(t), i32(0), get(n), sub, get(n), remU, geU, brIf(1),
          br(0),
        )),
      ]),
    ]),
  ];
  const state = [ra, rb, rc, rd];
  return {
    load: state.flatMap((l, i) => [i32(0), load(RNG_AT + 4 * i), set(l)]),
    save: state.flatMap((l, i) => [i32(0), get(l), store(RNG_AT + 4 * i)]),
    nextInt,
  };
}

/**
 * drawRows(rows, m, draws, weight): sampleWeights' uniform bootstrap with the tree's generator (RNG_AT): draws times,
 * weight[rows[nextInt(m)]] += 1 (rows: m i32s; weight: float64 per pack row).
 */
function drawRowsFunction(): number[] {
  const [rows, mRows, draws, weight] = [0, 1, 2, 3];
  const b = new Body(4);
  const [i, k, x, t, ra, rb, rc, rd, a] = b.locals(9);
  const m = b.local(I64);
  const rng = rngCode({ ra, rb, rc, rd, x, t, m, n: mRows, k });
  return b.encode([
    ...rng.load,
    ...forRange(i, i32(0), get(draws), [
      ...rng.nextInt,
      get(weight), get(rows), get(k), i32(2), shl, add, load(0), i32(3), shl, add, tee(a),
      get(a), f64load, f64const(1), f64add, f64store,
    ]),
    ...rng.save,
  ]);
}

/** keepDrawn(m): the partition's samples, the training rows (m at C_TRAIN_ROWS) with a positive weight, in their order; returns their count. */
function keepDrawnFunction(): number[] {
  const [m] = [0];
  const b = new Body(1);
  const [i, r, n, rows, drawn, idx] = b.locals(6);
  return b.encode([
    i32(0), load(C_TRAIN_ROWS), set(rows), i32(0), load(C_DRAWN), set(drawn), i32(0), load(C_IDX), set(idx),
    ...forRange(i, i32(0), get(m), [
      get(rows), get(i), i32(2), shl, add, load(0), set(r),
      get(drawn), get(r), i32(3), shl, add, f64load, f64const(0), f64gt,
      ifThen(get(idx), get(n), i32(2), shl, add, get(r), store(0), get(n), i32(1), add, set(n)),
    ]),
    get(n),
  ]);
}

/** placeSamples(n): each of the partition's n samples' weight (C_DRAWN) and class code (C_PACK_CODES) by its pack row. */
function placeSamplesFunction(): number[] {
  const [n] = [0];
  const b = new Body(1);
  const [i, r, idx, codes, weights, drawn, packCodes] = b.locals(7);
  return b.encode([
    ...[[C_IDX, idx], [C_CODES, codes], [C_WEIGHTS, weights], [C_DRAWN, drawn], [C_PACK_CODES, packCodes]].flatMap(([at, l]) => [i32(0), load(at), set(l)]),
    ...forRange(i, i32(0), get(n), [
      get(idx), get(i), i32(2), shl, add, load(0), set(r),
      get(weights), get(i), i32(3), shl, add, get(drawn), get(r), i32(3), shl, add, f64load, f64store,
      get(codes), get(i), i32(1), shl, add, get(packCodes), get(r), i32(1), shl, add, load16, store16,
    ]),
  ]);
}

/** The module's functions, in order: searchNode and growSubtree call the others by their index here. */
const [SWEEP_GINI, HIST_SCAN_GINI, GATHER_ROWS, SPLIT_ROWS, COPY_ROWS, SET_NODE, SEARCH_NODE] = [0, 1, 2, 3, 4, 5, 6];

/** A subtree grown here has fewer samples than a row copy holds: at most this many nodes, and a stack this deep. */
export const SUBTREE_MAX_NODES = 2 * SWEEP_MAX;
const SUBTREE_STACK = SWEEP_MAX + 2;
/** A stack entry: start, end, depth, parent, is right (i32s), the node's known constants, its weight (f64). */
const ENTRY = 32;
/** Below this, sklearn treats a node as pure (builder.ts's EPSILON). */
const EPSILON = 2.220446049250313e-16;

/**
 * growSubtree(start, end, depth, nKnown, w, rows, id0, leaf0, maxDepth, minSplit, minLeaf, countedMax, minDecrease):
 * builder.ts's fitTree loop for the subtree of the node [start, end) at `depth` (its known constants nKnown, weight w,
 * class totals in the stack's first stats slot), read from the row copy at `rows` (rowsOf done for it): depth-first,
 * each node's rows (rowsOf, the levels at C_LEVELS), impurity and stopping rules, searchNode, the decrease against
 * minDecrease, splitRows, and the children's statistics and stack entries, as there. The nodes go to the C_OUT_ arrays
 * by position (ids from id0, leaf values by leaf from leaf0), with the same float64 arithmetic as the JavaScript's and
 * its float32 roundings. Where searchNode stops (missing values), it keeps its state (GROW_AT) and returns -status; the
 * splitter scores that feature (writing a better split where the kernels record theirs, and its feature at G_BEST_F)
 * and calls again with `outcome` (its outcome; -1 starts a subtree) and `bestIn` (the node's best proxy). Not for packs
 * with categorical features (the kernels do not split by sets). Returns the nodes grown; S_LEAVES their leaves.
 */
function growSubtreeFunction(): number[] {
  const [start0, end0, depth0, nKnown0, w0, rows0, id0, leaf0, maxDepth, minSplit, minLeaf, countedMax, minDecrease, outcome, bestIn] =
    Array.from({ length: 15 }, (_, i) => i);
  const b = new Body(15);
  const [sp, nodes, leaves, st, e0, d, par, nk, id, n, rows, f, tb, ml, mid, c, at, level, finer, k, width, nF, bestLeft, stack, pool, rs] = b.locals(26);
  const [sA, levels, o, searchable, status, bestF, resuming] = b.locals(7);
  const [wn, imp, lw, dec, sq, li, ri, nodeBest] = [F64, F64, F64, F64, F64, F64, F64, F64].map((t) => b.local(t));
  /** The state kept while the splitter scores a feature the search stopped at (G_ slots: the node's weight, samples, best). */
  const kept: [number, number, boolean][] = [
    [wn, G_WEIGHT, true], [imp, G_IMPURITY, true], [nodeBest, G_NODE_BEST, true], [n, G_SAMPLES, false], [bestF, G_BEST_F, false],
    ...[sp, nodes, leaves, st, e0, d, nk, id, rows, sA, o].map((l, i): [number, number, boolean] => [l, G_OTHERS + 4 * i, false]),
  ];
  const save = kept.flatMap(([l, at, wide]) => [i32(0), get(l), wide ? f64storeAt(at) : store(at)]);
  const restore = kept.flatMap(([l, at, wide]) => [i32(0), wide ? f64loadAt(at) : load(at), set(l)]);
  const cfg = (at: number): Code[] => [i32(0), load(at)];
  /** Leaves gini's impurity of the width sums at `stats` and weight w (Gini.impurity) in `into`. */
  const impurity = (stats: Code[], w: Code[], into: number): Code[] => [
    f64const(0), set(sq),
    ...forRange(c, i32(0), get(width), [get(sq), stats, get(c), i32(3), shl, add, f64load, tee(dec), get(dec), f64mul, f64add, set(sq)]),
    w, f64const(0), f64le, ifElse(F64, [f64const(0)], [f64const(1), get(sq), w, w, f64mul, f64div, f64sub]), set(into),
  ];
  /** Address of level k's field (0 start, 4 end, 8 limit, 12 buffer). */
  const lv = (k: Code[], field: number): Code[] => [get(levels), k, i32(4), shl, add, i32(field), add];
  /** SamplePartition.rowsOf for node [sA, e0) of n samples: rows = the innermost copy holding it, made first if finer. */
  const rowsOf = [
    i32(-1), set(level),
    i32(2), set(k),
    block(loop(
      get(sA), ...lv([get(k)], 0), load(0), geS, get(e0), ...lv([get(k)], 4), load(0), leS, and,
      ifThen(get(k), set(level), br(2)),
      get(k), eqz, brIf(1),
      get(k), i32(1), sub, set(k),
      br(0),
    )),
    get(level), i32(0), ltS, ifThen(unreachable),
    ...lv([get(level)], 12), load(0), set(rows),
    get(level), i32(1), add, set(finer),
    block(loop(
      get(finer), i32(1), add, i32(3), geS, brIf(1),
      get(n), ...lv([get(finer), i32(1), add], 8), load(0), geS, brIf(1),
      get(finer), i32(1), add, set(finer),
      br(0),
    )),
    get(finer), i32(3), ltS,
    ifThen(
      get(n), ...lv([get(finer)], 8), load(0), ltS,
      ifThen(
        get(rows), ...lv([get(finer)], 12), load(0), get(n), get(nF), get(sA), call(COPY_ROWS),
        ...lv([get(finer)], 12), load(0), set(rows),
        ...lv([get(finer)], 0), get(sA), store(0),
        ...lv([get(finer)], 4), get(e0), store(0),
        ...forRange(k, [get(finer), i32(1), add], i32(3), [...lv([get(k)], 0), i32(-1), store(0), ...lv([get(k)], 4), i32(-1), store(0)]),
      ),
    ),
  ];
  /** Pushes a stack entry at sp (start, end, depth d + 1, parent id, right, known constants nk, weight). */
  const push = (startV: Code[], endV: Code[], right: number, weight: Code[]): Code[] => [
    get(stack), get(sp), i32(5), shl, add, set(at),
    get(at), startV, store(0), get(at), endV, store(4), get(at), get(d), i32(1), add, store(8), get(at), get(id), store(12),
    get(at), i32(right), store(16), get(at), get(nk), store(20), get(at), weight, f64storeAt(24),
    get(sp), i32(1), add, set(sp),
  ];
  const out = (array: number, size: number): Code[] => [...cfg(array), get(o), i32(Math.log2(size)), shl, add];
  return b.encode([
    ...cfg(C_WIDTH), set(width), ...cfg(C_NF), set(nF), ...cfg(C_STACK), set(stack), ...cfg(C_POOL), set(pool),
    ...cfg(C_RIGHT_STATS), set(rs), ...cfg(C_LEVELS), set(levels),
    i32(TOTAL_AT), get(width), i32(4), shl, add, set(bestLeft),
    get(outcome), i32(0), ltS,
    ifElse(0x40, [
      // The subtree's root: its stats are in slot 0, its rows at rows0.
      get(stack), get(start0), store(0), get(stack), get(end0), store(4), get(stack), get(depth0), store(8),
      get(stack), i32(0), store(16), get(stack), get(nKnown0), store(20), get(stack), get(w0), f64storeAt(24),
      i32(1), set(sp),
      get(rows0), set(rows),
    ], [...restore, i32(1), set(resuming)]),
    block(loop(
      get(resuming),
      ifElse(0x40, [
        // Back from the splitter's scoring of the feature the node's search stopped at: the search goes on.
        i32(0), set(resuming), i32(1), set(searchable),
        get(sA), get(n), get(rows), get(nk), get(wn), get(minLeaf), get(n), i32(32), leU, get(n), get(countedMax), leU, or,
        get(bestIn), get(outcome), call(SEARCH_NODE), set(status),
      ], [
        get(sp), eqz, brIf(2),
        get(sp), i32(1), sub, tee(sp), i32(5), shl, get(stack), add, set(at),
        get(at), load(0), set(sA), get(at), load(4), set(e0), get(at), load(8), set(d), get(at), load(12), set(par),
        get(at), load(20), set(nk), get(at), f64loadAt(24), set(wn),
        get(pool), get(sp), get(width), mul, i32(3), shl, add, set(st),
        get(id0), get(nodes), add, set(id), get(nodes), set(o),
        get(at), load(16), ifThen(...cfg(C_OUT_RIGHT), get(par), get(id0), sub, i32(2), shl, add, get(id), store(0)),
        get(nodes), i32(1), add, set(nodes),
        get(e0), get(sA), sub, set(n),
        get(nodes), i32(1), ne, ifThen(...rowsOf),
        ...impurity([get(st)], [get(wn)], imp),
        i32(-1), set(bestF), f64const(-Infinity), set(nodeBest), i32(SEARCHED), set(status),
        get(d), get(maxDepth), ltS, get(n), get(minSplit), geS, and, get(imp), f64const(EPSILON), f64gt, and, tee(searchable),
        ifThen(
          i32(TOTAL_AT), get(st), get(width), i32(3), shl, memoryCopy,
          get(sA), get(n), get(rows), get(nk), get(wn), get(minLeaf), get(n), i32(32), leU, get(n), get(countedMax), leU, or,
          f64const(-Infinity), i32(-1), call(SEARCH_NODE), set(status),
        ),
      ]),
      // The node's best split so far: the search's, unless the splitter's scoring found a better one (it writes it
      // where the kernels record theirs, and its feature in the kept state).
      get(searchable), i32(0), load(S_BEST_F), i32(0), geS, and,
      ifThen(i32(0), load(S_BEST_F), set(bestF), i32(0), f64loadAt(OUT_AT), set(nodeBest)),
      get(status), ifThen(...save, i32(0), get(status), sub, ret),
      get(bestF), set(f),
      get(f), i32(0), geS,
      ifThen(
        i32(0), f64loadAt(OUT_AT + 8), set(lw),
        ...forRange(c, i32(0), get(width), [
          get(rs), get(c), i32(3), shl, tee(at), add, get(st), get(at), add, f64load, get(bestLeft), get(at), add, f64load, f64sub, f64store,
        ]),
        ...impurity([get(bestLeft)], [get(lw)], li),
        ...impurity([get(rs)], [get(wn), get(lw), f64sub], ri),
        get(wn), get(imp), f64mul, get(lw), get(li), f64mul, f64sub, get(wn), get(lw), f64sub, get(ri), f64mul, f64sub, set(dec),
        get(dec), get(minDecrease), f64lt, ifThen(i32(-1), set(f)),
      ),
      get(f), i32(0), ltS,
      ifThen(
        // A leaf: its values, the class shares (float32), and its leaf number.
        ...out(C_OUT_FEATURE, 4), i32(-1), store(0),
        ...out(C_OUT_RIGHT, 4), get(leaf0), get(leaves), add, store(0),
        ...out(C_OUT_BIN, 4), i32(0), store(0),
        ...out(C_OUT_THRESHOLD, 8), f64const(0), f64store,
        ...out(C_OUT_MISSING, 1), i32(0), store8,
        ...out(C_OUT_GAIN, 4), f64const(0), demote, f32store,
        ...forRange(c, i32(0), get(width), [
          ...cfg(C_OUT_VALUES), get(leaves), get(width), mul, get(c), add, i32(2), shl, add,
          get(st), get(c), i32(3), shl, add, f64load, get(wn), f64div, demote, f32store,
        ]),
        get(leaves), i32(1), add, set(leaves),
        br(1),
      ),
      // A split: the node's record, then its samples split and its children pushed, right first.
      i32(0), load(OUT_AT + 16), set(tb), i32(0), load(OUT_AT + 20), set(ml),
      ...out(C_OUT_FEATURE, 4), get(f), store(0),
      ...out(C_OUT_BIN, 4), get(tb), store(0),
      ...out(C_OUT_THRESHOLD, 8),
      get(tb), ...cfg(C_EDGE_START), get(f), i32(1), add, i32(2), shl, add, load(0), ...cfg(C_EDGE_START), get(f), i32(2), shl, add, load(0), sub, ltU,
      ifElse(F64, [...cfg(C_EDGES), ...cfg(C_EDGE_START), get(f), i32(2), shl, add, load(0), get(tb), add, i32(3), shl, add, f64load], [f64const(Number.MAX_VALUE)]),
      f64store,
      ...out(C_OUT_MISSING, 1), get(ml), store8,
      ...out(C_OUT_GAIN, 4), get(dec), demote, f32store,
      get(sA), get(rows), get(n), get(nF), get(f), get(tb), get(ml), get(sA), call(SPLIT_ROWS), add, set(mid),
      i32(0), load(S_TOTAL), set(nk),
      get(st), get(rs), get(width), i32(3), shl, memoryCopy,
      get(st), get(width), i32(3), shl, add, get(bestLeft), get(width), i32(3), shl, memoryCopy,
      ...push([get(mid)], [get(e0)], 1, [get(wn), get(lw), f64sub]),
      ...push([get(sA)], [get(mid)], 0, [get(lw)]),
      br(0),
    )),
    i32(0), get(leaves), store(S_LEAVES),
    get(nodes),
  ]);
}

/** searchNode's returns: the node searched; or stopped at a feature for the splitter's JavaScript (see searchNode). */
export const [SEARCHED, EVALUATE, CATEGORICAL] = [0, 1, 2];

/**
 * searchNode(start, n, rows, nKnown, w, minLeaf, sweep, best, outcome): HistogramSplitter.findBestSplit for a node of
 * n samples from `start` read from the row copy at `rows`, without carried histograms: draws features with the tree's
 * generator (RNG_AT, as Rng.nextInt), gathers them (gatherRows) and scores each with sweepGini (`sweep` 1: a small
 * node) or histScanGini, tracks the constant features as findBestSplit does (the features array, the first nKnown of
 * which are known constants, and the constants array), and restores the known prefix at the end. It stops, saving its
 * state, at a feature its kernels leave to the splitter: EVALUATE (missing values: the histogram is filled) or
 * CATEGORICAL (nothing filled); the splitter handles that feature and calls again with its outcome (1 a split was
 * scored, 0 constant; -1 starts a node). `best` is the best proxy so far; S_BEST_F holds the feature of a better split
 * found in this call (-1 none), its split at OUT_AT and its left sums at the best left sums, as the kernels record it.
 * Returns SEARCHED, EVALUATE or CATEGORICAL.
 */
function searchNodeFunction(): number[] {
  const [start, n, rows, nKnown, w, minLeaf, sweep, bestIn, outcome] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const b = new Body(9);
  const [drawn, total, poolEnd, visited, found, nb, j, f, k, p, t, undrawn, budget, s, bestF, status] = b.locals(16);
  const [nF, maxF, features, batch, blockAt, width, x, ra, rb, rc, rd] = b.locals(11);
  const best = b.local(F64);
  const m = b.local(I64);
  /** Address of features[i]. */
  const feature = (i: Code[]): Code[] => [get(features), i, i32(2), shl, add];
  /** The outcome `s` of feature f (batch[j]): a split scored, or a constant moved into the constant prefix. */
  const apply = [
    get(s), i32(1), eq,
    ifElse(0x40, [get(found), i32(1), add, set(found)], [
      get(poolEnd), set(p),
      block(loop(...feature([get(p)]), load(0), get(f), eq, brIf(1), get(p), i32(1), add, set(p), br(0))),
      ...feature([get(p)]), ...feature([get(poolEnd)]), load(0), store(0),
      ...feature([get(poolEnd)]), get(f), store(0),
      get(poolEnd), i32(1), add, set(poolEnd),
      ...feature([get(poolEnd), i32(1), sub]), ...feature([get(total)]), load(0), store(0),
      ...feature([get(total)]), get(f), store(0),
      get(total), i32(1), add, set(total),
    ]),
  ];
  const rng = rngCode({ x, t, m, ra, rb, rc, rd, k, n: undrawn });
  const config = (at: number, local: number): Code[] => [i32(0), load(at), set(local)];
  const saveState = [
    ...[[S_DRAWN, drawn], [S_TOTAL, total], [S_POOL_END, poolEnd], [S_VISITED, visited], [S_FOUND, found], [S_NB, nb], [S_J, j], [S_BEST_F, bestF]].flatMap(
      ([at, l]) => [i32(0), get(l), store(at)],
    ),
    ...rng.save,
  ];
  return b.encode([
    ...config(C_NF, nF), ...config(C_MAXF, maxF), ...config(C_FEATURES, features), ...config(C_BATCH, batch),
    ...config(C_BLOCK, blockAt), ...config(C_WIDTH, width),
    ...rng.load,
    get(outcome), i32(0), ltS,
    ifElse(0x40, [
      get(start), get(n), call(SET_NODE),
      get(nKnown), set(total), get(nF), set(poolEnd),
    ], [
      ...[[S_DRAWN, drawn], [S_TOTAL, total], [S_POOL_END, poolEnd], [S_VISITED, visited], [S_FOUND, found], [S_NB, nb], [S_J, j]].flatMap(
        ([at, l]) => [i32(0), load(at), set(l)],
      ),
      get(batch), get(j), i32(2), shl, add, load(0), set(f),
      get(outcome), set(s),
      ...apply,
      get(j), i32(1), add, set(j),
    ]),
    i32(-1), set(bestF),
    get(bestIn), set(best),
    block( // 2: stopped at a feature (status set)
      block( // 1: searched
        loop( // 0: a batch's remaining features, then the next batch
          block(loop( // the batch: loop 0, its block 1, main loop 2, searched 3, stopped 4
            get(j), get(nb), geU, brIf(1),
            get(batch), get(j), i32(2), shl, add, load(0), set(f),
            i32(0), load(C_CATEGORICAL), get(f), add, load8, ifThen(i32(CATEGORICAL), set(status), br(5)),
            i32(-1), set(s),
            get(sweep), ifThen(get(blockAt), get(j), get(n), mul, add, get(n), get(width), get(w), get(minLeaf), get(best), call(SWEEP_GINI), set(s)),
            get(s), i32(0), ltS,
            ifThen(
              get(blockAt), get(j), get(n), mul, add, get(n), get(width), get(w), get(minLeaf), get(best),
              i32(0), load(C_TOP), get(f), i32(2), shl, add, load(0), i32(0), load(C_CNT), i32(0), load(C_HIST), call(HIST_SCAN_GINI), set(s),
              get(s), i32(-2), eq, ifThen(i32(EVALUATE), set(status), br(6)),
            ),
            get(s), i32(2), eq, ifThen(i32(0), f64loadAt(OUT_AT), set(best), get(f), set(bestF), i32(1), set(s)),
            ...apply,
            get(j), i32(1), add, set(j),
            br(0),
          )),
          // The next batch, while features remain and the budget is not spent or nothing was found.
          get(poolEnd), get(total), gtU, get(visited), get(maxF), ltU, get(found), eqz, or, and, eqz, brIf(1),
          get(visited), get(maxF), ltU, ifElse(I32, [get(maxF), get(visited), sub], [i32(1)]), set(budget),
          i32(0), set(nb),
          block(loop(
            get(nb), get(budget), geU, brIf(1),
            get(poolEnd), get(total), leU, brIf(1),
            get(visited), i32(1), add, set(visited),
            get(nKnown), get(drawn), sub, get(poolEnd), get(total), sub, add, set(undrawn),
            ...rng.nextInt,
            get(k), get(nKnown), get(drawn), sub, ltU,
            ifElse(0x40, [
              // A known constant: swapped into the drawn ones.
              get(drawn), get(k), add, set(p),
              ...feature([get(drawn)]), load(0), set(t),
              ...feature([get(drawn)]), ...feature([get(p)]), load(0), store(0),
              ...feature([get(p)]), get(t), store(0),
              get(drawn), i32(1), add, set(drawn),
            ], [
              get(total), get(k), get(nKnown), get(drawn), sub, sub, add, set(p),
              get(poolEnd), i32(1), sub, set(poolEnd),
              ...feature([get(p)]), load(0), set(f),
              ...feature([get(p)]), ...feature([get(poolEnd)]), load(0), store(0),
              ...feature([get(poolEnd)]), get(f), store(0),
              get(batch), get(nb), i32(2), shl, add, get(f), store(0),
              get(nb), i32(1), add, set(nb),
            ]),
            br(0),
          )),
          i32(0), set(j),
          get(nb), ifThen(
            ...forRange(k, i32(0), get(nb), [i32(0), load(C_GATHERED), get(k), i32(2), shl, add, get(k), store(0)]),
            get(rows), get(n), get(nF), get(nb), get(blockAt), get(batch), i32(0), load(C_GATHERED), call(GATHER_ROWS),
          ),
          br(0),
        ),
      ),
      // Searched: the known constants' prefix restored, the new constants recorded (see findBestSplit).
      get(features), i32(0), load(C_CONSTANTS), get(nKnown), i32(2), shl, memoryCopy,
      i32(0), load(C_CONSTANTS), get(nKnown), i32(2), shl, add, get(features), get(nKnown), i32(2), shl, add,
      get(total), get(nKnown), sub, i32(2), shl, memoryCopy,
      i32(SEARCHED), set(status),
    ),
    ...saveState,
    get(status),
  ]);
}

export function splitKernelBytes(): Uint8Array {
  return assemble([
    { name: "sweepGini", params: [I32, I32, I32, F64, I32, F64], results: [I32], body: sweepGiniFunction() },
    { name: "histScanGini", params: [I32, I32, I32, F64, I32, F64, I32, I32, I32], results: [I32], body: histScanGiniFunction() },
    { name: "gatherRows", params: [I32, I32, I32, I32, I32, I32, I32], results: [], body: gatherRowsFunction() },
    { name: "splitRows", params: [I32, I32, I32, I32, I32, I32, I32], results: [I32], body: splitRowsFunction() },
    { name: "copyRows", params: [I32, I32, I32, I32, I32], results: [], body: copyRowsFunction() },
    { name: "setNode", params: [I32, I32], results: [], body: setNodeFunction() },
    { name: "searchNode", params: [I32, I32, I32, I32, F64, I32, I32, F64, I32], results: [I32], body: searchNodeFunction() },
    { name: "drawRows", params: [I32, I32, I32, I32], results: [], body: drawRowsFunction() },
    { name: "keepDrawn", params: [I32], results: [I32], body: keepDrawnFunction() },
    { name: "placeSamples", params: [I32], results: [], body: placeSamplesFunction() },
    { name: "growSubtree", params: [I32, I32, I32, I32, F64, I32, I32, I32, I32, I32, I32, I32, F64, I32, F64], results: [I32], body: growSubtreeFunction() },
  ]);
}

interface Kernels {
  sweepGini(col: number, n: number, width: number, w: number, minLeaf: number, best: number): number;
  histScanGini(col: number, n: number, width: number, w: number, minLeaf: number, best: number, top: number, hcnt: number, hist: number): number;
  gatherRows(rows: number, n: number, nF: number, m: number, block: number, batch: number, gathered: number): void;
  splitRows(rows: number, n: number, nF: number, f: number, tb: number, ml: number, start: number): number;
  copyRows(from: number, to: number, n: number, nF: number, start: number): void;
  setNode(start: number, n: number): void;
  searchNode(start: number, n: number, rows: number, nKnown: number, w: number, minLeaf: number, sweep: number, best: number, outcome: number): number;
  drawRows(rows: number, m: number, draws: number, weight: number): void;
  keepDrawn(m: number): number;
  placeSamples(n: number): void;
  growSubtree(
    start: number, end: number, depth: number, nKnown: number, w: number, rows: number, id0: number, leaf0: number, maxDepth: number, minSplit: number,
    minLeaf: number, countedMax: number, minDecrease: number, outcome: number, best: number,
  ): number;
}

/** growSubtree's stopping rules (the builder's): maxDepth (0x7fffffff for none), min samples to split and per leaf, min decrease. */
export interface SubtreeRules {
  maxDepth: number;
  minSplit: number;
  minLeaf: number;
  /** The splitter's countedMax: up to this many samples (or 32), a node's features are sorted and swept. */
  countedMax: number;
  minDecrease: number;
}

/** A subtree grown by growSubtree: its root's class totals (set before), then its nodes as TreeArrays.addSubtree takes them. */
export interface Subtree extends SubtreeNodes {
  readonly stats: Float64Array;
  leaves: number;
}

/** What GiniKernels.of sizes its memory for: a splitter's and its partition's. */
export interface KernelSizes {
  /** Classes (gini's width). */
  width: number;
  /** Features drawn per split (the batch) and the pack's features. */
  maxFeatures: number;
  nFeatures: number;
  /** The tree's training rows (the partition's arrays hold those drawn: at most as many), and the pack's rows. */
  n: number;
  nRows: number;
  /** The pack's rows' bytes (row-major bins) when the kernels keep a copy (see PACK_ROWS_MAX), else 0. */
  packRowBytes: number;
  /** Each feature's bin edges (the pack's), when subtrees are grown here (growSubtree), else null. */
  edges: Float64Array[] | null;
  /** The partition's row copies' bytes (see rowCopyBytes). */
  rowBytes: number[];
  /** Per feature: 1 if categorical; and its bins with the missing one (the pack's edges + 1). */
  categorical: Uint8Array;
  binCounts: Int32Array;
}

/**
 * The kernels and, in their memory, the splitter's gathered block and 8-bit histogram (which its JavaScript fills and
 * scans too, for the nodes and features the kernels leave to it), its feature arrays, and the partition's samples and
 * row copies (PartitionMemory): the kernels search a node, split it and copy its rows where the JavaScript reads them.
 */
export class GiniKernels implements PartitionMemory, BootstrapMemory {
  /** The splitter's gathered block (see HistogramSplitter.gather). */
  readonly block: Uint8Array;
  /** The splitter's histogram: counts per bin, and class weights per bin (width each); zero between features. */
  readonly cnt: Int32Array;
  readonly hist: Float64Array;
  /** The splitter's feature batch, the batch positions gather copies, its features and its constants (see findBestSplit). */
  readonly batch: Int32Array;
  readonly gathered: Int32Array;
  readonly features: Int32Array;
  readonly constants: Int32Array;
  /** The partition's samples: rows, class codes, weights (see SamplePartition). */
  readonly idx: Uint32Array;
  readonly codeAt: Uint16Array;
  readonly weightAt: Float64Array;
  /** The partition's row copies, one per level. */
  readonly buffers: Uint8Array[];
  /** The tree's generator's state while searchNode draws (Rng.saveTo / loadFrom). */
  readonly rngState: Int32Array;
  /** The tree's training rows and sample weights per pack row, as the bootstrap draws them (see drawUniform). */
  private readonly trainRows: Uint32Array;
  private readonly drawn: Float64Array;
  /** The partition's levels (start, end, limit, buffer address each) while growSubtree runs (SamplePartition.saveLevels, loadLevels). */
  readonly levels: Int32Array;
  /** growSubtree's input statistics and its output, or null when the kernels do not grow subtrees (KernelSizes.edges). */
  readonly subtree: Subtree | null;
  /** The pack's class codes, and its rows' bins when kept here (empty otherwise). */
  private readonly packCodes: Uint16Array;
  private readonly packRows: Uint8Array;
  private readonly buffer: ArrayBuffer;
  private readonly total: Float64Array;
  private readonly bestLeft: Float64Array;
  private readonly out: Float64Array;
  private readonly outBins: Int32Array;
  private readonly state: Int32Array;
  /** growSubtree's kept state: the node's weight, impurity, best proxy; its samples and best feature (G_ slots). */
  private readonly grownF64: Float64Array;
  private readonly grown: Int32Array;
  private readonly blockAt: number;
  private readonly nFeatures: number;

  private constructor(
    private readonly k: Kernels,
    memory: WasmMemory,
    sizes: KernelSizes,
    layout: Layout,
  ) {
    const buffer = memory.buffer;
    this.buffer = buffer;
    const { width, maxFeatures, nFeatures, n } = sizes;
    this.nFeatures = nFeatures;
    this.blockAt = layout.blockAt;
    this.total = new Float64Array(buffer, TOTAL_AT, width);
    this.bestLeft = new Float64Array(buffer, layout.bestLeftAt, width);
    this.out = new Float64Array(buffer, OUT_AT, 2);
    this.outBins = new Int32Array(buffer, OUT_AT + 16, 3);
    this.state = new Int32Array(buffer, STATE_AT, 9);
    this.rngState = new Int32Array(buffer, RNG_AT, 4);
    this.grownF64 = new Float64Array(buffer, G_WEIGHT, 3);
    this.grown = new Int32Array(buffer, G_SAMPLES, 2);
    this.block = new Uint8Array(buffer, this.blockAt, maxFeatures * SWEEP_MAX);
    this.cnt = new Int32Array(buffer, layout.cntAt, BINS);
    this.hist = new Float64Array(buffer, layout.histAt, BINS * width);
    this.batch = new Int32Array(buffer, layout.batchAt, maxFeatures);
    this.gathered = new Int32Array(buffer, layout.gatheredAt, maxFeatures);
    this.features = new Int32Array(buffer, layout.featuresAt, nFeatures);
    this.constants = new Int32Array(buffer, layout.constantsAt, nFeatures);
    this.idx = new Uint32Array(buffer, layout.idxAt, n);
    this.codeAt = new Uint16Array(buffer, layout.codesAt, n);
    this.weightAt = new Float64Array(buffer, layout.weightsAt, n);
    this.buffers = sizes.rowBytes.map((bytes, level) => new Uint8Array(buffer, layout.rowsAt[level], bytes));
    this.trainRows = new Uint32Array(buffer, layout.trainRowsAt, n);
    this.drawn = new Float64Array(buffer, layout.drawnAt, sizes.nRows);
    this.packCodes = new Uint16Array(buffer, layout.packCodesAt, sizes.nRows);
    this.packRows = new Uint8Array(buffer, layout.packRowsAt, sizes.packRowBytes);
    const top = new Int32Array(buffer, layout.topAt, nFeatures);
    for (let f = 0; f < nFeatures; f++) top[f] = Math.min(sizes.binCounts[f], MISSING_BIN);
    new Uint8Array(buffer, layout.categoricalAt, nFeatures).set(sizes.categorical);
    const config = new Int32Array(buffer, CONFIG_AT, 31);
    config.set([layout.blockAt, layout.batchAt, layout.gatheredAt, layout.featuresAt, layout.constantsAt, layout.topAt, layout.categoricalAt]);
    config.set([layout.cntAt, layout.histAt, nFeatures, maxFeatures, width, layout.idxAt, layout.codesAt, layout.weightsAt], 7);
    config.set([layout.trainRowsAt, layout.drawnAt, layout.packCodesAt], 15);
    config.set([layout.stackAt, layout.poolAt, layout.rightStatsAt, layout.outFeatureAt, layout.outBinAt, layout.outThresholdAt, layout.outRightAt], 18);
    config.set([layout.outMissingAt, layout.outGainAt, layout.outValuesAt, layout.edgesAt, layout.edgeStartAt, layout.levelsAt], 25);
    this.levels = new Int32Array(buffer, layout.levelsAt, 4 * sizes.rowBytes.length);
    this.levels.set(sizes.rowBytes.flatMap((_, k) => [-1, -1, SUBTREE_LEVELS[k], layout.rowsAt[k]]));
    this.subtree = null;
    if (sizes.edges !== null) {
      const starts = new Int32Array(buffer, layout.edgeStartAt, nFeatures + 1);
      let at = 0;
      sizes.edges.forEach((e, f) => {
        new Float64Array(buffer, layout.edgesAt + 8 * at, e.length).set(e);
        starts[f] = at;
        at += e.length;
      });
      starts[nFeatures] = at;
      this.subtree = {
        stats: new Float64Array(buffer, layout.poolAt, width),
        feature: new Int32Array(buffer, layout.outFeatureAt, SUBTREE_MAX_NODES),
        bin: new Int32Array(buffer, layout.outBinAt, SUBTREE_MAX_NODES),
        threshold: new Float64Array(buffer, layout.outThresholdAt, SUBTREE_MAX_NODES),
        right: new Int32Array(buffer, layout.outRightAt, SUBTREE_MAX_NODES),
        missingLeft: new Uint8Array(buffer, layout.outMissingAt, SUBTREE_MAX_NODES),
        gain: new Float32Array(buffer, layout.outGainAt, SUBTREE_MAX_NODES),
        values: new Float32Array(buffer, layout.outValuesAt, SWEEP_MAX * width),
        leaves: 0,
      };
    }
  }

  /**
   * Kernels for a splitter and a partition of these sizes, or null when their memory cannot be had. The memory made
   * last is kept and used again while it is large enough (a tree's splitter uses it while the tree grows, the next
   * tree's after), up to KEEP_MAX bytes: a memory and an instance per tree cost a small tree's fit more than the kernels
   * saved.
   */
  static of(sizes: KernelSizes): GiniKernels | null {
    const layout = layoutOf(sizes);
    const bytes = layout.end;
    let made: { memory: WasmMemory; exports: Kernels } | null = kept !== null && kept.bytes >= bytes ? kept : null;
    if (made === null) {
      made = instantiate<Kernels>(cache, SPLIT_KERNELS, bytes);
      if (made === null) return null;
      if (bytes <= KEEP_MAX) kept = { ...made, bytes };
    }
    // Zero, as a new memory: the last splitter (at another width, or stopped by a throw) may have left numbers there.
    new Uint8Array(made.memory.buffer, 0, PERM_AT).fill(0);
    const kernels = new GiniKernels(made.exports, made.memory, sizes, layout);
    kernels.cnt.fill(0);
    kernels.hist.fill(0);
    return kernels;
  }

  weights(rows: Uint32Array): Float64Array {
    this.trainRows.set(rows);
    return this.drawn.fill(0);
  }

  drawUniform(m: number, draws: number, rng: Rng): void {
    rng.saveTo(this.rngState);
    this.k.drawRows(this.trainRows.byteOffset, m, draws, this.drawn.byteOffset);
    rng.loadFrom(this.rngState);
  }

  drawnRows(m: number): Uint32Array {
    return this.idx.subarray(0, this.k.keepDrawn(m));
  }

  placeSamples(idx: Uint32Array, weight: Float64Array, codes: Uint16Array): boolean {
    if (weight !== this.drawn) return false;
    if (idx.buffer !== this.buffer || idx.byteOffset !== this.idx.byteOffset) this.idx.set(idx);
    this.packCodes.set(codes);
    this.k.placeSamples(idx.length);
    return true;
  }

  rowsOfPack(rowBins: Uint8Array): Uint8Array {
    if (this.packRows.length !== rowBins.length || rowBins.length === 0) return rowBins;
    this.packRows.set(rowBins);
    return this.packRows;
  }

  /**
   * Grows the subtree of the node [start, end) (see growSubtree; its class totals in subtree.stats, the partition's
   * levels in `levels`, the tree's generator in rngState), its nodes numbered from id0 and its leaves from leaf0;
   * `outcome` -1 starts it, else resumes it after a stop with the splitter's outcome and the node's best proxy. Returns
   * the nodes grown (their records in `subtree`, the leaves in subtree.leaves), or -EVALUATE when the node in `stop`
   * stopped at a feature with missing values (batch[pending]; its histogram filled).
   */
  grow(start: number, end: number, depth: number, nKnown: number, w: number, rows: Uint8Array, id0: number, leaf0: number, rules: SubtreeRules, outcome: number, best: number): number {
    const r = rules;
    const nodes = this.k.growSubtree(start, end, depth, nKnown, w, rows.byteOffset, id0, leaf0, r.maxDepth, r.minSplit, r.minLeaf, r.countedMax, r.minDecrease, outcome, best);
    if (nodes >= 0) this.subtree!.leaves = this.state[(S_LEAVES - STATE_AT) >> 2];
    return nodes;
  }

  /** The node growSubtree stopped at: its samples, weight and class totals, and its best split so far (feature -1: none). */
  get stop(): { n: number; w: number; total: Float64Array; bestFeature: number; bestProxy: number } {
    return { n: this.grown[0], w: this.grownF64[0], total: this.total, bestFeature: this.grown[1], bestProxy: this.grownF64[2] };
  }

  /** Records the splitter's better split (numeric) for the stopped node, where growSubtree reads the node's best. */
  recordBest(best: RecordedSplit): void {
    this.out[0] = best.proxy;
    this.out[1] = best.leftWeight;
    this.outBins[0] = best.thresholdBin;
    this.outBins[1] = best.missingLeft ? 1 : 0;
    this.outBins[2] = best.leftCount;
    this.bestLeft.set(best.leftStats);
    this.grown[1] = best.feature;
    this.grownF64[2] = best.proxy;
  }

  /** Whether `rows` (a row copy) is in the kernels' memory. */
  holds(rows: Uint8Array): boolean {
    return rows.buffer === this.buffer;
  }

  /** Sets the partition's samples [start, end) (at most SWEEP_MAX) where the kernels read a node's, and its class totals. */
  setNode(start: number, end: number, total: Float64Array): void {
    this.k.setNode(start, end - start);
    this.total.set(total);
  }

  /**
   * Searches the node [start, end) read from `rows` (one of `buffers`) with class totals `total` (see searchNode):
   * outcome -1 starts it; the splitter's outcome for the feature the last call stopped at resumes it. Returns
   * SEARCHED, EVALUATE or CATEGORICAL (the feature: batch[pending]); a better split found is in `best`.
   */
  search(start: number, end: number, rows: Uint8Array, total: Float64Array, nKnown: number, w: number, minLeaf: number, sweep: boolean, best: SplitSink, outcome: number): number {
    if (outcome < 0) this.total.set(total);
    const status = this.k.searchNode(start, end - start, rows.byteOffset, nKnown, w, minLeaf, sweep ? 1 : 0, best.proxy, outcome);
    const f = this.state[(S_BEST_F - STATE_AT) >> 2];
    if (f >= 0) best.record(f, this.outBins[0], this.outBins[1] === 1, this.out[0], this.out[1], this.outBins[2], this.bestLeft);
    return status;
  }

  /** The batch position of the feature the last search stopped at. */
  get pending(): number {
    return this.state[(S_J - STATE_AT) >> 2];
  }

  /** The node's constant features (known and found) after a search. */
  get nTotalConstants(): number {
    return this.state[(S_TOTAL - STATE_AT) >> 2];
  }

  /** The splitter's gather of the node's n samples (set by setNode) from `rows`, one of `buffers`: see gatherRows. */
  gather(rows: Uint8Array, n: number, m: number): void {
    this.k.gatherRows(rows.byteOffset, n, this.nFeatures, m, this.blockAt, this.batch.byteOffset, this.gathered.byteOffset);
  }

  /** SamplePartition.split of the node [start, end) set by setNode or search, by feature f of `rows` (one of `buffers`): see splitRows. */
  split(rows: Uint8Array, f: number, thresholdBin: number, missingLeft: boolean, start: number, end: number): number {
    return start + this.k.splitRows(rows.byteOffset, end - start, this.nFeatures, f, thresholdBin, missingLeft ? 1 : 0, start);
  }

  copyRows(from: Uint8Array, to: Uint8Array, start: number, count: number): boolean {
    if (from.buffer !== this.buffer) return false;
    this.k.copyRows(from.byteOffset, to.byteOffset, count, this.nFeatures, start);
    return true;
  }
}

interface Layout {
  bestLeftAt: number;
  blockAt: number;
  cntAt: number;
  histAt: number;
  batchAt: number;
  gatheredAt: number;
  featuresAt: number;
  constantsAt: number;
  topAt: number;
  categoricalAt: number;
  rowsAt: number[];
  idxAt: number;
  codesAt: number;
  weightsAt: number;
  trainRowsAt: number;
  drawnAt: number;
  packCodesAt: number;
  packRowsAt: number;
  stackAt: number;
  poolAt: number;
  rightStatsAt: number;
  outFeatureAt: number;
  outBinAt: number;
  outThresholdAt: number;
  outRightAt: number;
  outMissingAt: number;
  outGainAt: number;
  outValuesAt: number;
  edgesAt: number;
  edgeStartAt: number;
  levelsAt: number;
  end: number;
}

/**
 * Where each of the kernels' arrays starts, and the memory's end, for a splitter's and partition's sizes. After the
 * class totals (TOTAL_AT) come the left sums and the best split's, width each, as the kernels find them (giniStart).
 */
function layoutOf({ width, maxFeatures, nFeatures, n, nRows, rowBytes, packRowBytes, edges }: KernelSizes): Layout {
  let at = TOTAL_AT + 16 * width;
  /** The next array of `bytes`, 8-byte aligned. */
  const next = (bytes: number) => {
    const start = at;
    at += (bytes + 7) & ~7;
    return start;
  };
  const bestLeftAt = next(8 * width);
  const blockAt = next(maxFeatures * SWEEP_MAX);
  const cntAt = next(4 * BINS);
  const histAt = next(8 * BINS * width);
  const batchAt = next(4 * maxFeatures);
  const gatheredAt = next(4 * maxFeatures);
  const featuresAt = next(4 * nFeatures);
  const constantsAt = next(4 * nFeatures);
  const topAt = next(4 * nFeatures);
  const categoricalAt = next(nFeatures);
  const rowsAt = rowBytes.map(next);
  const idxAt = next(4 * n);
  const codesAt = next(2 * n);
  const weightsAt = next(8 * n);
  const trainRowsAt = next(4 * n);
  const drawnAt = next(8 * nRows);
  const packCodesAt = next(2 * nRows);
  const packRowsAt = next(packRowBytes);
  // growSubtree's stack, statistics, output and edges (none without edges).
  const grows = edges !== null ? 1 : 0;
  const stackAt = next(grows * SUBTREE_STACK * ENTRY);
  const poolAt = next(grows * (SUBTREE_STACK + 1) * 8 * width);
  const rightStatsAt = next(grows * 8 * width);
  const outFeatureAt = next(grows * 4 * SUBTREE_MAX_NODES);
  const outBinAt = next(grows * 4 * SUBTREE_MAX_NODES);
  const outThresholdAt = next(grows * 8 * SUBTREE_MAX_NODES);
  const outRightAt = next(grows * 4 * SUBTREE_MAX_NODES);
  const outMissingAt = next(grows * SUBTREE_MAX_NODES);
  const outGainAt = next(grows * 4 * SUBTREE_MAX_NODES);
  const outValuesAt = next(grows * 4 * SWEEP_MAX * width);
  const edgesAt = next(8 * (edges?.reduce((total, e) => total + e.length, 0) ?? 0));
  const edgeStartAt = next(grows * 4 * (nFeatures + 1));
  const levelsAt = next(16 * rowBytes.length);
  return {
    bestLeftAt, blockAt, cntAt, histAt, batchAt, gatheredAt, featuresAt, constantsAt, topAt, categoricalAt, rowsAt, idxAt, codesAt, weightsAt, trainRowsAt,
    drawnAt, packCodesAt, packRowsAt, stackAt, poolAt, rightStatsAt, outFeatureAt, outBinAt, outThresholdAt, outRightAt, outMissingAt, outGainAt,
    outValuesAt, edgesAt, edgeStartAt, levelsAt, end: at,
  };
}

/** A numeric split the splitter recorded (splitter.ts's SplitRecord), as recordBest reads it. */
export interface RecordedSplit {
  readonly feature: number;
  readonly thresholdBin: number;
  readonly missingLeft: boolean;
  readonly proxy: number;
  readonly leftWeight: number;
  readonly leftCount: number;
  readonly leftStats: Float64Array;
}

/** The splitter's best split so far (splitter.ts's SplitRecord): its proxy, and how a better one is recorded. */
export interface SplitSink {
  readonly proxy: number;
  record(f: number, b: number, missingLeft: boolean, p: number, lw: number, ln: number, stats: Float64Array): void;
}

const cache: { module?: object } = {};
/** The largest memory kept for the next tree (64 MB: the partition's arrays of some 4 million samples). */
const KEEP_MAX = 64 << 20;
/** The memory GiniKernels.of made last, and its size (one per thread: each has its own module). */
let kept: { memory: WasmMemory; exports: Kernels; bytes: number } | null = null;
