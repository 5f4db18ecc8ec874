import { describe, expect, it } from "vitest";
import { argmaxRow, quantile, scalingExponent } from "../stats.ts";

describe("scalingExponent", () => {
  it("recovers k from t = c·n^k", () => {
    for (const k of [0.8, 1, 1.37]) {
      const pts = [5000, 20000, 60000].map((n) => ({ n, t: 0.002 * n ** k }));
      expect(scalingExponent(pts)).toBeCloseTo(k, 10);
    }
  });
  it("is the least-squares slope when the points are not on one line", () => {
    // log-log points (0,0), (1,1), (2,3): slope = 1.5.
    const pts = [0, 1, 2].map((x, i) => ({ n: Math.exp(x), t: Math.exp([0, 1, 3][i]) }));
    expect(scalingExponent(pts)).toBeCloseTo(1.5, 10);
  });
  it("needs two distinct sizes", () => {
    expect(() => scalingExponent([{ n: 5, t: 1 }, { n: 5, t: 2 }])).toThrow(/two distinct sizes/);
  });
});

describe("argmaxRow", () => {
  it("picks the largest column of the row, first on ties", () => {
    const m = [0.1, 0.7, 0.2, 0.4, 0.2, 0.4];
    expect(argmaxRow(m, 3, 0)).toBe(1);
    expect(argmaxRow(m, 3, 1)).toBe(0);
  });
});

describe("quantile", () => {
  it("is the nearest-rank quantile and leaves its input alone", () => {
    const xs = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
    expect(quantile(xs, 0.5)).toBe(5);
    expect(quantile(xs, 0.99)).toBe(10);
    expect(quantile(xs, 0.1)).toBe(1);
    expect(quantile(xs, 0)).toBe(1);
    expect(xs[0]).toBe(5);
  });
  it("needs a value", () => {
    expect(() => quantile([], 0.5)).toThrow(/no values/);
  });
});
