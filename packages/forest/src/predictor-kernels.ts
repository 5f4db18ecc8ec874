/**
 * The binned predictor's two loops (see BinnedTrees) as WebAssembly: binning rows of numbers into bytes, and walking
 * every tree over a block of binned rows, adding each row's leaf values. The module is 8.2 KB, compiled once per
 * process.
 *
 * Why: both loops are a few operations per step, and V8's code for the same JavaScript checks every typed-array index
 * and keeps fewer rows in registers. 100 FM trees over 10k rows: binning 45 -> 28 ms, walking and adding 165 -> 83 ms
 * (predict 215 -> 115 ms in all, 46k -> 87k rows/s).
 * The arithmetic is the JavaScript's: the same comparisons, and leaf values widened from float32 and added in float64,
 * tree by tree in the model's order, so predictions are the same to the last bit.
 */
import { add, and, assemble, block, Body, br, brIf, convertS, eq, ifElse, F64, f32load, f64add, f64eq, f64ge, f64le, f64load, f64loadAt, f64lt, f64ne, f64store, f64x2add, f64x2promote, geS, geU, get, gtU, I32, i32, ifThen, instantiate, load, load8, loop, ltU, mul, ne, promote, set, shl, shrU, store8, sub, tee, truncS, truncSatS, v128load, v128load64zero, v128store, xor, type Code, type WasmMemory } from "./wasm.ts";
import { PREDICTOR_KERNELS } from "./kernel-bytes.ts";

/**
 * Rows walked at once: their memory reads overlap. 100 FM trees, 10k rows: 6 lanes 107 ms, 8 100 ms, 10 107 ms, 12 108 ms
 * (with lanes that all waited for the last to reach a leaf; with pages, values by slot and pure leaves, 6 to 12 lanes
 * that take the next row, see CHECK, gave 74-77 ms).
 */
export const LANES = 8;
/**
 * Steps of every lane between looks for lanes on a leaf, which add it and take the next row. A FM row reaches a leaf
 * in 18 steps on average, but the slowest of eight in 27: lanes that all waited for it stepped a third of the time
 * in place. Looking at every step cost more than it saved (119 against 100 ms, when leaves still read their values);
 * 100 FM trees over 10k rows, waiting for all 81 ms, looking every 3 steps 76, 4 75.5, 5 77, 6 74, 8 76.
 */
const CHECK = 4;
/** A leaf's first word (see BinnedTrees.nodes). */
const LEAF = 0xff;
/**
 * In a leaf's first word: the leaf is pure, its values 1 for class word >>> 9 and +0 for the others. A step on a leaf
 * still reads a bin, at that class's place in the row (past a short row, into the sums behind every block and
 * copy): whatever it reads, the leaf's rank keeps the row.
 */
export const PURE = 0x100;
/**
 * Bytes per used feature's binning record: i32 feature and cuts (for the binary search); for a table (see BinnedTrees),
 * f64 lo and hi, its ends; i32 cut count; for a table, its base (integer x's bin is at base + x) and the bins at and
 * below lo and at and above hi.
 */
export const RECORD_BYTES = 40;

/**
 * bin(rows, nRows, nCols, records, nUsed, block, nTables): for each of nRows float64 rows (nCols each, from byte
 * `rows`) and each used feature's record, block[r * nCols + f] = the feature's bin, as BinnedTrees documents: integers
 * within a table's range read it (clamped to its ends), NaN is 255, any other value the first cut >= it by binary
 * search. The first nTables records have a table: a loop of their own, with no test for one. Returns 1 if a value was
 * NaN, else 0 (the walk without the missing term then serves). 10k FM rows: 28 ms; 24 with lo and hi as float64, the
 * ends' bins and the table's base in the record and NaN left to fail the table's tests; 20.5 ms with the records with a
 * table in a loop of their own.
 */
function binFunction(): number[] {
  const [rows, nRows, nCols, records, nUsed, blockAt, nTables] = [0, 1, 2, 3, 4, 5, 6];
  const b = new Body(7);
  const [r, src, dst, u, rec, f, xi, bin, a, z, cuts, mid, missing] = b.locals(13);
  const x = b.local(F64);
  /** Bins the value x of record `rec` into `bin`: by its table if `table`, else NaN or the binary search. */
  const binOne = (table: boolean): Code[] => [
    get(rec), load(0), set(f),
    get(src), get(f), i32(3), shl, add, f64load, set(x),
    block(
      ...(table
        ? [
            // At or below lo, the first bin; at or above hi, the last: the table's ends, for any number. (Without these
            // branches, clamping by f64.min and f64.max, binning 10k FM rows took 35 ms instead of 28.) Between, an
            // integer reads the table. NaN fails every test here: the saturating truncation cannot trap on it.
            get(x), get(rec), f64loadAt(8), f64le,
            ifThen(get(rec), load(32), set(bin), br(1)),
            get(x), get(rec), f64loadAt(16), f64ge,
            ifThen(get(rec), load(36), set(bin), br(1)),
            get(x), truncSatS, tee(xi), convertS, get(x), f64eq,
            ifThen(get(rec), load(28), get(xi), add, load8, set(bin), br(1)),
          ]
        : []),
      get(x), get(x), f64ne,
      ifThen(i32(255), set(bin), i32(1), set(missing), br(1)),
      // The first k with x <= cuts[k] (binOf): cuts[mid] < x moves right.
      i32(0), set(a), get(rec), load(24), set(z), get(rec), load(4), set(cuts),
      block(loop(
        get(a), get(z), geU, brIf(1),
        get(a), get(z), add, i32(1), shrU, tee(mid), i32(3), shl, get(cuts), add, f64load, get(x), f64lt,
        ifElse(I32, [get(mid), i32(1), add, set(a), get(z)], [get(mid)]), set(z),
        br(0),
      )),
      get(a), set(bin),
    ),
    get(dst), get(f), add, get(bin), store8,
    get(u), i32(1), add, set(u), get(rec), i32(RECORD_BYTES), add, set(rec),
  ];
  return b.encode([
    i32(0), set(r),
    block(loop(
      get(r), get(nRows), geU, brIf(1),
      get(rows), get(r), get(nCols), mul, i32(3), shl, add, set(src),
      get(blockAt), get(r), get(nCols), mul, add, set(dst),
      i32(0), set(u), get(records), set(rec),
      // The records with a table come first.
      block(loop(get(u), get(nTables), geU, brIf(1), ...binOne(true), br(0))),
      block(loop(get(u), get(nUsed), geU, brIf(1), ...binOne(false), br(0))),
      get(r), i32(1), add, set(r),
      br(0),
    )),
    get(missing),
  ]);
}

/**
 * walk(nTrees, roots, nRows, nCols, block, out, values, width): for each tree k (its root's byte address at
 * roots[k]), each row r of the block (bins at block + r * nCols) walks from the root to a leaf, LANES rows at a time,
 * and out[r * width + c] += v[c] for the leaf's float32 values v, at byte values + node / 2 × width (node: the leaf's
 * byte address; i32 arithmetic wraps, so `values` may be below zero, see PackRowSums). out holds a spare row nRows
 * (see CHECK). Nodes two words each: a step is node = word1 + 8 × goesRight(word0, bin), and a leaf keeps a row on
 * itself.
 *
 * A leaf's values sit at its node's place scaled by the width, not behind an array of addresses by node: reading that
 * address was a cache miss of its own, one per row and tree. 100 FM trees over 10k rows: 105 -> 100 ms. A pure leaf
 * (PURE in its first word) adds 1 to its class and reads no values at all: a fully grown classifier's leaves almost
 * all are, and reading their values was another miss per row and tree: 100 -> 81 ms.
 *
 * goesRight(w, b) = (((w & 0xff) - b) >>> 31) & ~((w >>> 8) & ((b + 1) >>> 8)): 1 if the row's bin b is above the
 * node's threshold rank, unless b is the missing bin (255) and the node sends missing values left. Branch-free: it
 * is the walk's one unpredictable choice. Without `missing`, for blocks where no bin the trees read is 255, the
 * second term (then all ones) is left out: ((w & 0xff) - b) >>> 31 alone, and a leaf's rank 255 still holds every
 * row. 100 FM trees over 10k rows: 92 -> 83 ms.
 */
function walkFunction(missing: boolean): number[] {
  const [nTrees, roots, nRows, nCols, blockAt, out, values, width] = [0, 1, 2, 3, 4, 5, 6, 7];
  const b = new Body(8);
  const [t, root, w, r, bin, v, o, e, active] = b.locals(9);
  const rowOf = b.locals(LANES);
  const base = b.locals(LANES);
  const node = b.locals(LANES);
  const word = b.locals(LANES);
  /** One step of lane j: its bin for the node's feature (word >>> 9), then node = word1 + 8 × goesRight. */
  const step = (j: number): Code[] => [
    get(base[j]), get(word[j]), i32(9), shrU, add, load8, set(bin),
    get(node[j]), load(4),
    get(word[j]), i32(0xff), and, get(bin), sub, i32(31), shrU,
    ...(missing ? [get(word[j]), i32(8), shrU, get(bin), i32(1), add, i32(8), shrU, and, i32(-1), xor, and] : []),
    i32(3), shl, add, tee(node[j]), load(0), set(word[j]),
  ];
  /** out[row] += the leaf's values, row given by `row`: 1 to its class for a pure leaf, else its values. */
  const addLeaf = (row: Code[], j: number): Code[] => [
    ...row, get(width), mul, i32(3), shl, get(out), add, set(o),
    get(word[j]), i32(PURE), and,
    ifElse(0x40, [get(o), get(word[j]), i32(9), shrU, i32(3), shl, add, tee(o), get(o), f64load, i32(1), convertS, f64add, f64store], addValues(j)),
  ];
  const addValues = (j: number): Code[] => [
    get(node[j]), i32(1), shrU, get(width), mul, get(values), add, set(v),
    get(o), get(width), i32(3), shl, add, set(e),
    // Two values at a time (float32 pairs widened to float64 and added lane by lane: the same sums), then an odd last.
    block(loop(
      get(o), i32(16), add, get(e), gtU, brIf(1),
      get(o), get(o), v128load, get(v), v128load64zero, f64x2promote, f64x2add, v128store,
      get(o), i32(16), add, set(o), get(v), i32(8), add, set(v),
      br(0),
    )),
    get(o), get(e), ltU,
    ifThen(get(o), get(o), f64load, get(v), f32load, promote, f64add, f64store),
  ];
  const lanes = Array.from({ length: LANES }, (_, j) => j);
  const steps = lanes.map((j) => step(j));
  /** Lane j takes row `row` (its bins' address), at the root. */
  const take = (j: number, row: Code[]): Code[] => [...row, tee(rowOf[j]), get(nCols), mul, get(blockAt), add, set(base[j]), get(root), set(node[j]), get(w), set(word[j])];
  return b.encode([
    i32(0), set(t),
    block(loop(
      get(t), get(nTrees), geU, brIf(1),
      get(roots), get(t), i32(2), shl, add, load(0), tee(root), load(0), set(w),
      i32(0), set(r),
      get(nRows), i32(LANES), geU,
      ifThen(
        ...lanes.flatMap((j) => take(j, [i32(j)])),
        i32(LANES), set(r), i32(LANES), set(active),
        // CHECK steps of every lane, then each lane on a leaf adds it and takes the next row; once none is left, the
        // lane takes the spare row nRows, whose sums nobody reads, and no longer counts as active.
        loop(
          // The same steps CHECK times: made once (making code costs time in a process's first run).
          Array.from({ length: CHECK }, () => steps),
          ...lanes.map((j) =>
            block(
              get(word[j]), i32(LEAF), and, i32(LEAF), ne, brIf(0),
              ...addLeaf([get(rowOf[j])], j),
              get(r), get(nRows), ltU,
              ifElse(0x40, [...take(j, [get(r)]), get(r), i32(1), add, set(r)], [get(active), get(rowOf[j]), get(nRows), ne, sub, set(active), get(nRows), set(rowOf[j])]),
            ),
          ),
          get(active), brIf(0),
        ),
      ),
      // Fewer rows than lanes: one at a time.
      block(loop(
        get(r), get(nRows), geU, brIf(1),
        get(r), get(nCols), mul, get(blockAt), add, set(base[0]), get(root), set(node[0]), get(w), set(word[0]),
        block(loop(get(word[0]), i32(LEAF), and, i32(LEAF), eq, brIf(1), ...step(0), br(0))),
        ...addLeaf([get(r)], 0),
        get(r), i32(1), add, set(r),
        br(0),
      )),
      get(t), i32(1), add, set(t),
      br(0),
    )),
  ]);
}

/** The module as assembled here; the kernels run the copy stored in kernel-bytes.ts, which a test checks is the same. */
export function predictorKernelBytes(): Uint8Array {
  const walkParams = Array.from({ length: 8 }, () => I32);
  return assemble([
    { name: "walk", params: walkParams, results: [], body: walkFunction(true) },
    { name: "bin", params: Array.from({ length: 7 }, () => I32), results: [I32], body: binFunction() },
    { name: "walkNoMissing", params: walkParams, results: [], body: walkFunction(false) },
  ]);
}

export interface PredictorKernels {
  memory: WasmMemory;
  walk(nTrees: number, roots: number, nRows: number, nCols: number, block: number, out: number, values: number, width: number): void;
  /** walk for a block without the missing bin (255) among the bins the trees read. */
  walkNoMissing(nTrees: number, roots: number, nRows: number, nCols: number, block: number, out: number, values: number, width: number): void;
  /** Returns 1 if any value binned was NaN (bin 255), else 0. */
  bin(rows: number, nRows: number, nCols: number, records: number, nUsed: number, block: number, nTables: number): number;
}

const cache: { module?: object } = {};

/** The kernels on a fresh memory of at least `bytes` bytes, or null when that much cannot be had. */
export function predictorKernels(bytes: number): PredictorKernels | null {
  const made = instantiate<Omit<PredictorKernels, "memory">>(cache, PREDICTOR_KERNELS, bytes);
  if (made === null) return null;
  const { memory, exports } = made;
  return { memory, walk: exports.walk, walkNoMissing: exports.walkNoMissing, bin: exports.bin };
}
