// Seeds and random numbers. Everything random in a tree derives from treeSeed(seed, index), so a tree is the
// same whichever grove trains it.

/** A 32-bit finaliser (murmur3 fmix32): good avalanche, cheap, exact in JS integer math. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Folds a non-negative safe integer (up to 2^53) into 32 bits without losing its high part. */
function fold53(x: number): number {
  const lo = x >>> 0;
  const hi = Math.floor(x / 0x1_0000_0000) >>> 0;
  return fmix32(lo ^ fmix32(hi + 0x9e3779b9));
}

/** The seed of tree `treeIndex` in a build seeded with `seed`. Depends on nothing else. */
export function treeSeed(seed: number, treeIndex: number): number {
  return fmix32(fold53(seed) ^ fmix32(Math.imul(treeIndex + 1, 0x9e3779b9) ^ 0x7f4a7c15));
}

/** xoshiro128** — fast, 32-bit, well-tested; seeded through splitmix32 so any 32-bit seed works. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      return fmix32(s);
    };
    // As int32 (the same bits): every later state is one, and a uint32 above 2^31 here would be a double, a field
    // representation the state's code is then deoptimised to take.
    this.a = next() | 0;
    this.b = next() | 0;
    this.c = next() | 0;
    this.d = next() | 0;
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /** Writes the state as four int32s, for the same sequence to go on elsewhere (split-kernels.ts's searchNode). */
  saveTo(state: Int32Array): void {
    state[0] = this.a;
    state[1] = this.b;
    state[2] = this.c;
    state[3] = this.d;
  }

  /** Takes the state back from saveTo's four int32s, as that sequence left them. */
  loadFrom(state: Int32Array): void {
    this.a = state[0];
    this.b = state[1];
    this.c = state[2];
    this.d = state[3];
  }

  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /**
   * Uniform integer in [0, n), n <= 2^32, without modulo bias (Lemire's method with rejection). The product's high and
   * low words come from one exact division by 2^32, and the rejection threshold ((2^32 - n) mod n, below n) is
   * computed only when the low word is below n: two floating-point remainders per call were most of a bootstrap's time.
   */
  nextInt(n: number): number {
    if (n <= 1) return 0;
    if (n >= 0x20_0000) return Math.floor((this.nextU32() / 0x1_0000_0000) * n);
    for (;;) {
      const m = this.nextU32() * n; // exact: x * n < 2^53 for n < 2^21
      const hi = Math.floor(m / 0x1_0000_0000);
      const lo = m - hi * 0x1_0000_0000;
      if (lo >= n || lo >= (0x1_0000_0000 - n) % n) return hi;
    }
  }

  /** Uniform float in [0, 1). */
  nextFloat(): number {
    return this.nextU32() / 0x1_0000_0000;
  }

  /** Uniform double in [0, 1) with 53 random bits (as numpy's random_sample). */
  nextDouble(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * 0x400_0000 + lo) / 0x20_0000_0000_0000;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** A seeded Fisher–Yates shuffle of 0..n-1. */
export function shuffledIndices(n: number, seed: number): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  const rng = new Rng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    const t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
  return out;
}
