// Histogram subtraction (HistogramCarry): a tree grown with it is the tree grown without it, byte for byte, and it
// is used only where the statistics are exact.
import { afterEach, describe, expect, it, vi } from "vitest";
import { HistogramCarry } from "../src/carry.ts";
import { fitForest } from "../src/fit.ts";
import type { FitParams } from "../src/options.ts";
import { buildPack } from "../src/pack.ts";
import type { FeatureInfo } from "../src/schema.ts";
import type { Dataset } from "../src/types.ts";
import { classification, fixture, random, regression } from "./fixtures/data.ts";

/** Integer delays from a few integer features, a categorical one, and missing values in a numeric one. */
function delays(n: number, seed: number): Dataset {
  const rnd = random(seed);
  const hour = Array.from({ length: n }, () => Math.floor(rnd() * 24));
  const month = Array.from({ length: n }, () => 1 + Math.floor(rnd() * 12));
  const distance = Array.from({ length: n }, () => (rnd() < 0.05 ? NaN : Math.round(50 + rnd() * 2500)));
  const dest = Array.from({ length: n }, () => Math.floor(rnd() * 40));
  const y = hour.map((h, i) => Math.round(h * 1.5 + (month[i] % 4) * 3 + (dest[i] % 7) * 2 + (Number.isNaN(distance[i]) ? 20 : distance[i] / 300) + rnd() * 30 - 10));
  const ds = regression([hour, month, distance, dest], y, ["hour", "month", "distance", "dest"]);
  const features: FeatureInfo[] = ds.featureNames.map((name, f) =>
    f === 3 ? { name, kind: "categorical", column: f, categories: Array.from({ length: 40 }, (_, c) => `d${c}`) } : { name, kind: "numeric", column: f },
  );
  return { ...ds, features };
}

/** The forest's bytes with the carry as the learner chooses it, and with it turned off; and how often it split a node. */
function both(ds: Dataset, params: FitParams): { on: Uint8Array; off: Uint8Array; splits: number } {
  const pack = buildPack(ds);
  const splitOff = vi.spyOn(HistogramCarry.prototype, "splitOff");
  const on = fitForest(pack, params).toBinary();
  const splits = splitOff.mock.calls.length;
  splitOff.mockRestore();
  const of = vi.spyOn(HistogramCarry, "of").mockReturnValue(null);
  const off = fitForest(pack, params).toBinary();
  of.mockRestore();
  return { on, off, splits };
}

afterEach(() => vi.restoreAllMocks());

describe("histogram subtraction", () => {
  it("grows the same regression trees byte for byte (integer targets, a categorical feature, missing values)", () => {
    for (const params of [
      { n_estimators: 6, random_state: 3 },
      { n_estimators: 4, random_state: 5, min_samples_leaf: 20 },
      { n_estimators: 3, random_state: 8, max_depth: 5, bootstrap: false },
      { n_estimators: 3, random_state: 9, max_samples: 0.5 },
    ] satisfies FitParams[]) {
      const { on, off, splits } = both(delays(6000, 11), params);
      expect(splits).toBeGreaterThan(0);
      expect(Buffer.from(on).equals(Buffer.from(off))).toBe(true);
    }
  });

  it("falls back to filling when its budget of held sets is spent, and still grows the same trees", () => {
    const ds = delays(6000, 12);
    const params = { n_estimators: 3, random_state: 6 };
    const pack = buildPack(ds);
    const off = vi.spyOn(HistogramCarry, "of").mockReturnValue(null);
    const want = fitForest(pack, params).toBinary();
    off.mockRestore();
    const of = HistogramCarry.of.bind(HistogramCarry);
    // Two sets: a node's own and one child's, so every other split finds the budget spent.
    const setBytes = 4 * 256 * (3 * 8 + 4);
    vi.spyOn(HistogramCarry, "of").mockImplementation((samples, width, maxFeatures, binCounts) => of(samples, width, maxFeatures, binCounts, 2 * setBytes));
    const splitOff = vi.spyOn(HistogramCarry.prototype, "splitOff");
    const got = fitForest(pack, params).toBinary();
    const outcomes = splitOff.mock.results.map((r) => r.value);
    expect(outcomes.some((v) => v === null)).toBe(true);
    expect(outcomes.some((v) => v !== null)).toBe(true);
    expect(Buffer.from(got).equals(Buffer.from(want))).toBe(true);
  });

  it("grows the same classification trees when every feature is drawn at every node", () => {
    const { on, off, splits } = both(fixture("digits"), { n_estimators: 5, random_state: 2, max_features: "all" });
    expect(splits).toBeGreaterThan(0);
    expect(Buffer.from(on).equals(Buffer.from(off))).toBe(true);
  });

  it("is not used where a histogram could differ from its sum: fractional targets or weights, or drawn features", () => {
    const uses = (ds: Dataset, params: FitParams) => {
      const of = vi.spyOn(HistogramCarry, "of");
      fitForest(buildPack(ds), { n_estimators: 1, random_state: 1, ...params });
      const used = of.mock.results.some((r) => r.value !== null);
      of.mockRestore();
      return used;
    };
    const base = delays(3000, 4);
    expect(uses(base, {})).toBe(true);
    const t = base.target as { task: "regression"; values: Float64Array };
    expect(uses({ ...base, target: { ...t, values: t.values.map((v) => v + 0.5) } }, {})).toBe(false);
    // With the bootstrap, sample weights only weigh the draws: the weights grown on are counts.
    expect(uses({ ...base, weights: new Float64Array(base.nRows).fill(1.5) }, {})).toBe(true);
    expect(uses({ ...base, weights: new Float64Array(base.nRows).fill(1.5) }, { bootstrap: false })).toBe(false);
    expect(uses(base, { max_features: 3 })).toBe(false);
    const rnd = random(6);
    const xs = [0, 1, 2].map(() => Array.from({ length: 2000 }, () => rnd()));
    const labels = xs[0].map((x, i) => (x + xs[1][i] > 1 ? "a" : "b"));
    expect(uses(classification(xs, labels), { max_features: "all" })).toBe(true);
    expect(uses(classification(xs, labels), { max_features: "all", class_weight: "balanced", bootstrap: false })).toBe(false);
    expect(uses(classification(xs, labels), {})).toBe(false);
  });
});
