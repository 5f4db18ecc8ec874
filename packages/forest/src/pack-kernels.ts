/**
 * The pack's column loops as WebAssembly (see wasm.ts): finding whether a column is small-range integers (and its
 * range), tallying its values, binning it through a lookup table, and transposing the bins to row-major for the
 * learner. FM 60k's 784 pixel columns: the pack 347 -> 215 ms (tally 160 -> 50 ms, binning 170 -> 35 ms; the rest is
 * copying columns in, the pack's hash and edges), the row-major copy 95 -> 39 ms.
 *
 * A column is copied into the kernels' memory a chunk at a time (the Dataset's columns are JavaScript arrays), so
 * the memory is fixed: 2.7 MB per pack made. Columns without NaN take the SIMD loops (two values per conversion); the
 * others skip NaN one value at a time. The results are the JavaScript's exactly: the same integers and counts, and
 * binOf's bins. The module is 3.5 KB.
 */
import { add, and, assemble, block, Body, br, brIf, F64, f64add, f64eq, f64load, f64loadAt, f64max, f64min, f64ne, f64storeAt, f64sub, f64trunc, f64x2add, f64x2lane, f64x2ne, f64x2pmax, f64x2pmin, f64x2splat, f64x2sub, f64x2trunc, geU, get, I32, i32, i32x4add, i32x4lane, i32x4shl, i32x4splat, ifElse, ifThen, instantiate, load, load16, loop, ltU, or, set, shl, store, store8, store8At, tee, truncS, truncSatZero, V128, v128andnot, v128anyTrue, v128i32, v128load, v128loadAt, v128or, v128store, i8x16shuffle, mul, load8, type Code } from "./wasm.ts";
import { PACK_KERNELS } from "./kernel-bytes.ts";

/** Rows of a column in the kernels' memory at once. */
const COLUMN_CHUNK = 1 << 16;
/** The widest integer range tallied (pack.ts's MAX_INTEGER_RANGE): values v0 - RANGE < v < v0 + RANGE. */
export const TALLY_RANGE = 1 << 16;

/** scan's result bits. */
const NOT_INTEGER = 1;
const HAS_NAN = 2;

/**
 * scan(src, n, state): folds the n float64s at src into min (state + 8) and max (state + 16), NaN left out, and
 * returns NOT_INTEGER if one is not an integer (infinities pass as integers: they fail the range instead) | HAS_NAN
 * if one is NaN. pmin and pmax keep the running value when the new one is NaN or equal (-0 after 0 keeps 0), as
 * JavaScript's `if (v < min) min = v` does.
 */
function scanFunction(): number[] {
  const [src, n, state] = [0, 1, 2];
  const b = new Body(3);
  const [i, e, flags] = b.locals(3);
  const [x, mn, mx, isNaN, nan, frac] = [V128, V128, V128, V128, V128, V128].map((t) => b.local(t));
  const v = b.local(F64);
  return b.encode([
    get(state), f64loadAt(8), f64x2splat, set(mn), get(state), f64loadAt(16), f64x2splat, set(mx),
    get(src), get(n), i32(-2), and, i32(3), shl, add, set(e),
    get(src), set(i),
    block(loop(
      get(i), get(e), geU, brIf(1),
      get(i), v128load, set(x),
      get(x), get(x), f64x2ne, tee(isNaN), get(nan), v128or, set(nan),
      get(x), f64x2trunc, get(x), f64x2ne, get(isNaN), v128andnot, get(frac), v128or, set(frac),
      get(mn), get(x), f64x2pmin, set(mn),
      get(mx), get(x), f64x2pmax, set(mx),
      get(i), i32(16), add, set(i),
      br(0),
    )),
    // An odd last value.
    get(n), i32(1), and,
    ifThen(
      get(e), f64load, set(v),
      get(v), get(v), f64eq,
      ifElse(0x40, [
        get(v), f64trunc, get(v), f64ne, ifThen(i32(NOT_INTEGER), set(flags)),
        get(mn), get(v), f64x2splat, f64x2pmin, set(mn), get(mx), get(v), f64x2splat, f64x2pmax, set(mx),
      ], [i32(HAS_NAN), set(flags)]),
    ),
    // The two lanes started equal, so f64.min / f64.max of them only differ from the scalar rule on -0 vs 0, which
    // index the tally alike.
    get(state), get(mn), f64x2lane(0), get(mn), f64x2lane(1), f64min, f64storeAt(8),
    get(state), get(mx), f64x2lane(0), get(mx), f64x2lane(1), f64max, f64storeAt(16),
    get(flags), get(frac), v128anyTrue, or, get(nan), v128anyTrue, i32(1), shl, or,
  ]);
}

/**
 * tally(src, n, counts, offset): for each value v of n (integers with 0 <= v + offset < 2 × TALLY_RANGE; NaN
 * skipped), adds 1 to one of the four int32 counters at counts + 16 × (v + offset), the one of its position mod 4:
 * runs of one value (the zero pixel) would otherwise wait on their own last increment.
 */
function tallyFunction(): number[] {
  const [src, n, counts, offset] = [0, 1, 2, 3];
  const b = new Body(4);
  const [i, a, e] = b.locals(3);
  const v = b.local(F64);
  const one = (slot: number) => [
    get(i), f64loadAt(8 * slot), tee(v), get(v), f64eq,
    ifThen(get(counts), get(v), get(offset), f64add, truncS, i32(4), shl, add, tee(a), get(a), load(4 * slot), i32(1), add, store(4 * slot)),
  ];
  return b.encode([
    get(src), get(n), i32(-4), and, i32(3), shl, add, set(e),
    get(src), set(i),
    block(loop(get(i), get(e), geU, brIf(1), ...one(0), ...one(1), ...one(2), ...one(3), get(i), i32(32), add, set(i), br(0))),
    get(src), get(n), i32(3), shl, add, set(e),
    block(loop(get(i), get(e), geU, brIf(1), ...one(0), get(i), i32(8), add, set(i), br(0))),
  ]);
}

/** tally for a chunk without NaN: two values per conversion. */
function tallyDenseFunction(): number[] {
  const [src, n, counts, offset] = [0, 1, 2, 3];
  const b = new Body(4);
  const [i, a, e] = b.locals(3);
  const [off, base01, base23, idx] = [V128, V128, V128, V128].map((t) => b.local(t));
  const bump = (j: number) => [get(idx), i32x4lane(j), tee(a), get(a), load(0), i32(1), add, store(0)];
  const pair = (at: number, base: number) => [
    get(i), v128loadAt(at), get(off), f64x2add, truncSatZero, i32(4), i32x4shl, get(base), i32x4add, set(idx),
    ...bump(0), ...bump(1),
  ];
  return b.encode([
    get(offset), f64x2splat, set(off),
    // Counter slots 0 and 1 for the first pair of four values, 2 and 3 for the second.
    get(counts), i32x4splat, v128i32(0, 4, 0, 0), i32x4add, set(base01),
    get(counts), i32x4splat, v128i32(8, 12, 0, 0), i32x4add, set(base23),
    get(src), get(n), i32(-4), and, i32(3), shl, add, set(e),
    get(src), set(i),
    block(loop(get(i), get(e), geU, brIf(1), ...pair(0, base01), ...pair(16, base23), get(i), i32(32), add, set(i), br(0))),
    get(src), get(n), i32(3), shl, add, set(e),
    block(loop(
      get(i), get(e), geU, brIf(1),
      get(counts), get(i), f64load, get(offset), f64add, truncS, i32(4), shl, add, tee(a), get(a), load(0), i32(1), add, store(0),
      get(i), i32(8), add, set(i),
      br(0),
    )),
  ]);
}

/** bin(src, n, min, lut, out, missing): out[r] = the uint16 lut[v - min] for each value v of n (integers in the lut's range), missing for NaN. */
function binFunction(): number[] {
  const [src, n, min, lut, out, missing] = [0, 1, 2, 3, 4, 5];
  const b = new Body(6);
  const [r] = b.locals(1);
  const x = b.local(F64);
  return b.encode([
    block(loop(
      get(r), get(n), geU, brIf(1),
      get(out), get(r), add,
      get(src), get(r), i32(3), shl, add, f64load, tee(x), get(x), f64eq,
      ifElse(I32, [get(lut), get(x), get(min), f64sub, truncS, i32(1), shl, add, load16], [get(missing)]),
      store8,
      get(r), i32(1), add, set(r),
      br(0),
    )),
  ]);
}

/** bin for a chunk without NaN: two values per conversion. */
function binDenseFunction(): number[] {
  const [src, n, min, lut, out] = [0, 1, 2, 3, 4];
  const b = new Body(5);
  const [r, e, o] = b.locals(3);
  const [mn, base, idx] = [V128, V128, V128].map((t) => b.local(t));
  return b.encode([
    get(min), f64x2splat, set(mn), get(lut), i32x4splat, set(base),
    get(n), i32(-2), and, set(e),
    block(loop(
      get(r), get(e), geU, brIf(1),
      get(src), get(r), i32(3), shl, add, v128load, get(mn), f64x2sub, truncSatZero, i32(1), i32x4shl, get(base), i32x4add, set(idx),
      get(out), get(r), add, tee(o), get(idx), i32x4lane(0), load16, store8,
      get(o), get(idx), i32x4lane(1), load16, store8At(1),
      get(r), i32(2), add, set(r),
      br(0),
    )),
    get(r), get(n), ltU,
    ifThen(get(out), get(r), add, get(lut), get(src), get(r), i32(3), shl, add, f64load, get(min), f64sub, truncS, i32(1), shl, add, load16, store8),
  ]);
}

/** Byte interleaves: the low (or high) halves of two vectors, a byte of each in turn. */
const LOW = Array.from({ length: 16 }, (_, i) => (i >> 1) + (i & 1 ? 16 : 0));
const HIGH = LOW.map((l) => l + 8);

/**
 * transpose(src, n, nF, dst): dst[r * nF + f] = src[f * n + r] for r < n, f < nF (a band of n rows of column-major
 * bins to row-major). 16 × 16 tiles in registers: four rounds of byte interleaves, each pairing vector k with k + 8,
 * carry row j of the tile's 16 features into vector j (Hacker's Delight's perfect shuffle, applied log2 16 times).
 * The rows and features outside whole tiles, one byte at a time.
 */
function transposeFunction(): number[] {
  const [src, n, nF, dst] = [0, 1, 2, 3];
  const b = new Body(4);
  const [f0, r0, n16, f16, at, r, f] = b.locals(7);
  const v = Array.from({ length: 16 }, () => b.local(V128));
  const round = (from: number[]): Code[] =>
    Array.from({ length: 8 }, (_, k) => [get(from[k]), get(from[k + 8]), i8x16shuffle(LOW), get(from[k]), get(from[k + 8]), i8x16shuffle(HIGH)]);
  /** dst[r * nF + f] = src[f * n + r] one byte at a time, over loops (local, from, to) outer and inner. */
  const bytes = ([o, oFrom, oTo]: [number, Code[], Code[]], [i, iFrom, iTo]: [number, Code[], Code[]]): Code[] => [
    oFrom, set(o),
    block(loop(
      get(o), oTo, geU, brIf(1),
      iFrom, set(i),
      block(loop(
        get(i), iTo, geU, brIf(1),
        get(dst), get(r), get(nF), mul, add, get(f), add, get(src), get(f), get(n), mul, add, get(r), add, load8, store8,
        get(i), i32(1), add, set(i),
        br(0),
      )),
      get(o), i32(1), add, set(o),
      br(0),
    )),
  ];
  // Rounds go through the stack: each round's 16 results are pushed, then popped into the 16 locals in reverse.
  const rounds: Code[] = [];
  for (let k = 0; k < 4; k++) rounds.push(...round(v), ...v.slice().reverse().map((l) => set(l)));
  return b.encode([
    get(n), i32(-16), and, set(n16), get(nF), i32(-16), and, set(f16),
    block(loop(
      get(f0), get(f16), geU, brIf(1),
      i32(0), set(r0),
      block(loop(
        get(r0), get(n16), geU, brIf(1),
        ...v.flatMap((l, i) => [get(src), get(f0), i32(i), add, get(n), mul, add, get(r0), add, v128load, set(l)]),
        ...rounds,
        get(dst), get(r0), get(nF), mul, add, get(f0), add, set(at),
        ...v.flatMap((l) => [get(at), get(l), v128store, get(at), get(nF), add, set(at)]),
        get(r0), i32(16), add, set(r0),
        br(0),
      )),
      get(f0), i32(16), add, set(f0),
      br(0),
    )),
    // Rows past the last whole tile (every feature), then features past it (the rows of whole tiles).
    ...bytes([r, get(n16), get(n)], [f, i32(0), get(nF)]),
    ...bytes([f, get(f16), get(nF)], [r, i32(0), get(n16)]),
  ]);
}

/** The module as assembled here; the kernels run the copy stored in kernel-bytes.ts, which a test checks is the same. */
export function packKernelBytes(): Uint8Array {
  return assemble([
    { name: "scan", params: [I32, I32, I32], results: [I32], body: scanFunction() },
    { name: "tally", params: [I32, I32, I32, F64], results: [], body: tallyFunction() },
    { name: "tallyDense", params: [I32, I32, I32, F64], results: [], body: tallyDenseFunction() },
    { name: "bin", params: [I32, I32, F64, I32, I32, I32], results: [], body: binFunction() },
    { name: "binDense", params: [I32, I32, F64, I32, I32], results: [], body: binDenseFunction() },
    { name: "transpose", params: [I32, I32, I32, I32], results: [], body: transposeFunction() },
  ]);
}

interface Kernels {
  scan(src: number, n: number, state: number): number;
  tally(src: number, n: number, counts: number, offset: number): void;
  tallyDense(src: number, n: number, counts: number, offset: number): void;
  bin(src: number, n: number, min: number, lut: number, out: number, missing: number): void;
  binDense(src: number, n: number, min: number, lut: number, out: number): void;
  transpose(src: number, n: number, nF: number, dst: number): void;
}

const cache: { module?: object } = {};

// The memory's layout: four counters per tallied value, scan's state, the lookup table, a chunk's bins and values.
const COUNTS_AT = 0;
const STATE_AT = 4 * 4 * 2 * TALLY_RANGE;
const LUT_AT = STATE_AT + 64;
const OUT_AT = LUT_AT + 2 * TALLY_RANGE;
const SRC_AT = OUT_AT + COLUMN_CHUNK;
const BYTES = SRC_AT + 8 * COLUMN_CHUNK;

/** One pack's column kernels and their memory (made per pack: 2.7 MB, left to the collector after). */
export class ColumnKernels {
  private readonly k: Kernels;
  private readonly state: Float64Array;
  private readonly src: Float64Array;
  /** Four counters per value v + offset, zero between columns (whoever reads them clears them). */
  readonly counts: Int32Array;
  /** The lookup table `bin` reads: bins of min, min + 1, ..., max. */
  readonly lut: Uint16Array;
  private readonly out: Uint8Array;
  /** What `src` holds: column[c0, c1) of this column. */
  private loaded: { column: Float64Array; c0: number; c1: number } | null = null;

  constructor() {
    const made = instantiate<Kernels>(cache, PACK_KERNELS, BYTES);
    if (made === null) throw new RangeError(`cannot allocate the pack's ${BYTES}-byte WebAssembly memory`);
    this.k = made.exports;
    const buffer = made.memory.buffer;
    this.counts = new Int32Array(buffer, COUNTS_AT, 4 * 2 * TALLY_RANGE);
    this.state = new Float64Array(buffer, STATE_AT, 3);
    this.lut = new Uint16Array(buffer, LUT_AT, TALLY_RANGE);
    this.out = new Uint8Array(buffer, OUT_AT, COLUMN_CHUNK);
    this.src = new Float64Array(buffer, SRC_AT, COLUMN_CHUNK);
  }

  /** Copies column[c0, c1) (at most COLUMN_CHUNK values) in, unless it is what the memory holds. */
  private load(column: Float64Array, c0: number, c1: number): number {
    const l = this.loaded;
    if (l === null || l.column !== column || l.c0 !== c0 || l.c1 !== c1) {
      this.src.set(column.subarray(c0, c1));
      this.loaded = { column, c0, c1 };
    }
    return c1 - c0;
  }

  /**
   * The min and max of column[first..] (NaN left out), starting from v0, and whether NaN occurred; null if a value
   * is not an integer or the range reaches TALLY_RANGE.
   */
  integerRange(column: Float64Array, first: number, v0: number): { min: number; max: number; hasNaN: boolean } | null {
    const { state } = this;
    state[1] = v0;
    state[2] = v0;
    let flags = 0;
    for (let c0 = first; c0 < column.length; c0 += COLUMN_CHUNK) {
      const n = this.load(column, c0, Math.min(column.length, c0 + COLUMN_CHUNK));
      flags |= this.k.scan(SRC_AT, n, STATE_AT);
      if ((flags & NOT_INTEGER) !== 0 || state[2] - state[1] >= TALLY_RANGE) return null;
    }
    return { min: state[1], max: state[2], hasNaN: (flags & HAS_NAN) !== 0 };
  }

  /** Counts column[first..]'s values into `counts` at v + offset (a column integerRange accepted). */
  tally(column: Float64Array, first: number, offset: number, hasNaN: boolean): void {
    for (let c0 = first; c0 < column.length; c0 += COLUMN_CHUNK) {
      const n = this.load(column, c0, Math.min(column.length, c0 + COLUMN_CHUNK));
      if (hasNaN) this.k.tally(SRC_AT, n, COUNTS_AT, offset);
      else this.k.tallyDense(SRC_AT, n, COUNTS_AT, offset);
    }
  }

  /** out[r] = lut[column[r] - min], or `missing` for NaN, for a column of integers within the lut's range. */
  bin(column: Float64Array, min: number, out: Uint8Array, missing: number, hasNaN: boolean): void {
    for (let c0 = 0; c0 < column.length; c0 += COLUMN_CHUNK) {
      const n = this.load(column, c0, Math.min(column.length, c0 + COLUMN_CHUNK));
      if (hasNaN) this.k.bin(SRC_AT, n, min, LUT_AT, OUT_AT, missing);
      else this.k.binDense(SRC_AT, n, min, LUT_AT, OUT_AT);
      out.set(this.out.subarray(0, n), c0);
    }
  }
}

/** Bytes of bins a band of rows holds, column-major in and row-major out. FM 60k: 256 KB 46 ms, 1 MB 42, 2 MB 39, 4 MB 43. */
const BAND_BYTES = 1 << 21;

/**
 * out[r * nFeatures + f] = bins[f * nRows + r]: a pack's bins row-major, a band of rows at a time (copied in
 * column by column, transposed, copied out: the kernel is 5 of FM 60k's 39 ms).
 */
export function transposeBins(bins: Uint8Array, nRows: number, nFeatures: number, out: Uint8Array, bandBytes = BAND_BYTES): void {
  const band = Math.max(16, Math.floor(bandBytes / Math.max(1, nFeatures)) & ~15);
  const rows = Math.min(band, nRows);
  const made = instantiate<Kernels>(cache, PACK_KERNELS, 2 * rows * nFeatures);
  if (made === null) throw new RangeError(`cannot allocate the ${2 * rows * nFeatures}-byte WebAssembly memory to transpose bins`);
  const buffer = made.memory.buffer;
  const outAt = rows * nFeatures;
  const bandIn = new Uint8Array(buffer, 0, rows * nFeatures);
  const bandOut = new Uint8Array(buffer, outAt, rows * nFeatures);
  for (let r0 = 0; r0 < nRows; r0 += rows) {
    const n = Math.min(rows, nRows - r0);
    for (let f = 0; f < nFeatures; f++) bandIn.set(bins.subarray(f * nRows + r0, f * nRows + r0 + n), f * n);
    made.exports.transpose(0, n, nFeatures, outAt);
    out.set(bandOut.subarray(0, n * nFeatures), r0 * nFeatures);
  }
}
