/**
 * A small WebAssembly assembler: the binary format's encodings and the instructions Canopy's kernels use (WebAssembly
 * 1.0, plus SIMD of 2.0, in Node since 16), so the kernels (pack-, split- and predictor-kernels.ts) are written in
 * TypeScript as instruction lists, with no toolchain. A process runs the modules as stored in kernel-bytes.ts, which
 * `npm run kernels` writes from those lists and a test checks against them: assembling them on first use took 5 ms of
 * a fresh process's 42 ms digits fit (the assembler's code runs cold, once).
 *
 * Why WebAssembly at all: loops of a few operations per element run about twice as fast as V8's code for the same
 * JavaScript (which checks every typed-array index), and run fast from their first call (no warm-up in the
 * interpreter). Each module imports its memory, which the caller sizes and never grows: growing a memory detaches its
 * buffer, and one detached buffer makes V8 check every later typed-array access in the process.
 */

// ---- encoding ----

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
}

const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const vector = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const name = (s: string): number[] => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];

/** Value types. */
export const [I32, I64, F64, V128] = [0x7f, 0x7e, 0x7c, 0x7b];
// Instructions are Code (see below), nested rather than spread: a kernel makes thousands of them in a process's first,
// unoptimised run, and most immediates fit one byte.
/** An unsigned immediate: the byte itself below 128. */
const u = (n: number): Code => (n >= 0 && n < 128 ? n : uleb(n));
/** A signed immediate: one byte from -64 to 63. */
const s = (n: number): Code => (n >= -64 && n < 64 ? n & 0x7f : sleb(n));
export const get = (l: number): Code[] => [0x20, u(l)];
export const set = (l: number): Code[] => [0x21, u(l)];
export const tee = (l: number): Code[] => [0x22, u(l)];
export const i32 = (n: number): Code[] => [0x41, s(n)];
export const f64const = (x: number): Code[] => [0x44, ...new Uint8Array(Float64Array.of(x).buffer)];

/** Loads and stores: alignment exponent, then the byte offset added to the address. */
export const load = (offset = 0): Code[] => [0x28, 2, u(offset)];
export const store = (offset = 0): Code[] => [0x36, 2, u(offset)];
export const load8 = [0x2d, 0, 0];
export const load8At = (offset: number): Code[] => [0x2d, 0, u(offset)];
export const load16At = (offset: number): Code[] => [0x2f, 1, u(offset)];
export const load16 = [0x2f, 1, 0];
export const store8 = [0x3a, 0, 0];
export const store8At = (offset: number): Code[] => [0x3a, 0, u(offset)];
export const store16At = (offset: number): Code[] => [0x3b, 1, u(offset)];
export const store16 = [0x3b, 1, 0];
export const f32load = [0x2a, 2, 0];
export const f64load = [0x2b, 3, 0];
export const f64loadAt = (offset: number): Code[] => [0x2b, 3, u(offset)];
export const f64store = [0x39, 3, 0];
export const f32store = [0x38, 2, 0];
export const f64storeAt = (offset: number): Code[] => [0x39, 3, u(offset)];

export const [eqz, eq, ne, ltS, ltU, gtS, gtU, leS, leU, geS, geU] = [[0x45], [0x46], [0x47], [0x48], [0x49], [0x4a], [0x4b], [0x4c], [0x4d], [0x4e], [0x4f]];
export const ctz = [0x68];
export const [remU, rotl] = [[0x70], [0x77]];
/** i64, for exact 32 x 32 -> 64-bit products: extend an unsigned i32, multiply, shift right, wrap back to i32. */
export const [i64extendU, i64mul, i64shrU, i32wrap] = [[0xad], [0x7e], [0x88], [0xa7]];
export const i64const = (n: number): Code[] => [0x42, s(n)];
export const [f64floor, f64convertU, i32truncU] = [[0x9c], [0xb8], [0xab]];
/** Calls function `index` of the module (its position in assemble's list). */
export const call = (index: number): Code[] => [0x10, u(index)];
export const [add, sub, mul, and, or, xor, shl, shrU] = [[0x6a], [0x6b], [0x6c], [0x71], [0x72], [0x73], [0x74], [0x76]];
export const [f64eq, f64ne, f64lt, f64gt, f64le, f64ge] = [[0x61], [0x62], [0x63], [0x64], [0x65], [0x66]];
export const [f64trunc, f64add, f64sub, f64mul, f64div, f64min, f64max] = [[0x9d], [0xa0], [0xa1], [0xa2], [0xa3], [0xa4], [0xa5]];
/** i32.trunc_f64_s: traps on NaN and out of range, so only for numbers known to be in range. */
export const truncS = [0xaa];
export const [convertS, promote, demote] = [[0xb7], [0xbb], [0xb6]];
/** Traps: a state the code never reaches (an internal fault, thrown to JavaScript as a RuntimeError). */
export const unreachable = [0x00];
/** i32.trunc_sat_f64_s: NaN to 0, out of range to the nearest end; never traps. */
export const truncSatS = [0xfc, 2];
/** memory.copy (bulk memory, in Node since 12): destination, source and byte count from the stack. */
export const memoryCopy = [0xfc, 10, 0, 0];

/** SIMD (WebAssembly 2.0, in every engine since 2021). */
const simd = (op: number, memarg: number[] = []) => [0xfd, ...uleb(op), ...memarg];
export const v128load = simd(0, [3, 0]);
export const v128loadAt = (offset: number) => simd(0, [3, ...uleb(offset)]);
export const v128store = simd(11, [3, 0]);
export const v128load64zero = simd(93, [3, 0]);
export const v128i32 = (...lanes: [number, number, number, number]) => [...simd(12), ...new Uint8Array(Int32Array.from(lanes).buffer)];
export const [i32x4splat, f64x2splat] = [simd(17), simd(20)];
export const i32x4lane = (j: number) => [...simd(27), j];
export const f64x2lane = (j: number) => [...simd(33), j];
export const [f64x2ne, v128andnot, v128or, v128anyTrue] = [simd(72), simd(79), simd(80), simd(83)];
export const [f64x2promote, f64x2trunc, i32x4shl, i32x4add] = [simd(95), simd(122), simd(171), simd(174)];
export const [f64x2add, f64x2sub, f64x2pmin, f64x2pmax] = [simd(240), simd(241), simd(246), simd(247)];
/** i8x16.shuffle: the 16 bytes of two vectors picked by index (0-15 the first's, 16-31 the second's). */
export const i8x16shuffle = (lanes: number[]) => [...simd(13), ...lanes];
export const v128storeAt = (offset: number) => simd(11, [3, ...uleb(offset)]);
/** i32x4.trunc_sat_f64x2_s_zero: two float64 lanes to the low two int32 lanes, saturating (never traps). */
export const truncSatZero = simd(252);

/**
 * Code as the kernels write it: instructions nested as they are built (a block holds its body as one element), laid
 * flat once per function; flattening at every block costs milliseconds of a process's first, unoptimised run.
 */
export type Code = number | Code[];
const flatten = (code: Code[]): number[] => code.flat(Infinity as 1) as number[];

/** Structured control: `block` and `loop` without results; br / br_if count enclosing blocks outwards from 0. */
export const block = (...code: Code[]): Code[] => [0x02, 0x40, code, 0x0b];
export const loop = (...code: Code[]): Code[] => [0x03, 0x40, code, 0x0b];
export const ifThen = (...code: Code[]): Code[] => [0x04, 0x40, code, 0x0b];
/** if/else; `type` 0x40 for no value, or the value type both arms leave. */
export const ifElse = (type: number, then: Code[], otherwise: Code[]): Code[] => [0x04, type, then, 0x05, otherwise, 0x0b];
export const br = (depth: number): Code[] => [0x0c, u(depth)];
export const brIf = (depth: number): Code[] => [0x0d, u(depth)];
/** Returns from the function (with the values its type returns, from the stack). */
export const ret = [0x0f];
/**
 * for (i = from; i < end; i += step) body, `end` compared unsigned and read at every step; inside `body`, br(0)
 * leaves the body only if it opens a block of its own, and br(1) / br(2) are this loop's.
 */
export const forRange = (i: number, from: Code[], end: Code[], body: Code[], step = 1): Code[] => [
  from, set(i),
  block(loop(get(i), end, geU, brIf(1), body, get(i), i32(step), add, set(i), br(0))),
];

/** A function body: its locals (i32 unless asked) numbered after its `params` parameters. */
export class Body {
  private readonly types: number[] = [];
  constructor(private readonly params: number) {}
  local(type = I32): number {
    this.types.push(type);
    return this.params + this.types.length - 1;
  }
  locals(n: number): number[] {
    return Array.from({ length: n }, () => this.local());
  }
  /** The body as the code section holds it: size, locals as runs of one type, code, end. */
  encode(code: Code[]): number[] {
    const runs: number[][] = [];
    for (let i = 0; i < this.types.length; ) {
      let j = i;
      while (j < this.types.length && this.types[j] === this.types[i]) j++;
      runs.push([...uleb(j - i), this.types[i]]);
      i = j;
    }
    const body = [...vector(runs), ...flatten(code), 0x0b];
    return [...uleb(body.length), ...body];
  }
}

/** A function of a module: its export name, parameter and result types, and its body (Body.encode). */
interface WasmFunction {
  name: string;
  params: number[];
  results: number[];
  body: number[];
}

/** A module of `functions`, each exported under its name, on a memory imported as ("m", "memory"). */
export function assemble(functions: WasmFunction[]): Uint8Array {
  const types = functions.map((f) => [0x60, ...vector(f.params.map((t) => [t])), ...vector(f.results.map((t) => [t]))]);
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, vector(types)),
    // (import "m" "memory" (memory 0)): the caller sizes it.
    ...section(2, vector([[...name("m"), ...name("memory"), 0x02, 0x00, 0x00]])),
    ...section(3, vector(functions.map((_, i) => uleb(i)))),
    ...section(7, vector(functions.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]))),
    ...section(10, vector(functions.map((f) => f.body))),
  ]);
}

/** The parts of WebAssembly's JavaScript API used here (this project's lib settings leave it undeclared). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Memory: new (descriptor: { initial: number }) => WasmMemory;
  Instance: new (module: object, imports: object) => { exports: object };
}
const WASM = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/**
 * An instance of the module `stored` (kernel-bytes.ts: compiled once per process, cached by `cache`) on a fresh memory
 * of at least `size` bytes; null when that much memory cannot be had.
 */
export function instantiate<T>(cache: { module?: object }, stored: string, size: number): { memory: WasmMemory; exports: T } | null {
  cache.module ??= new WASM.Module(fromBase64(stored));
  let memory: WasmMemory;
  try {
    memory = new WASM.Memory({ initial: Math.ceil(size / 65536) });
  } catch {
    return null;
  }
  return { memory, exports: new WASM.Instance(cache.module, { m: { memory } }).exports as T };
}

/** kernel-bytes.ts's base64 as bytes: Node's decoder (a JavaScript one ran cold, and was compiled, in every fresh process). */
export function fromBase64(text: string): Uint8Array {
  return Buffer.from(text, "base64");
}
