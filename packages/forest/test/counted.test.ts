// Shortcuts the splitter takes, each growing the tree it would grow without: where every statistic is an exact integer
// sum, the counting-sort sweep of small nodes (countingSort) and paired histograms (pairsHistograms); and for gini, the
// node search in WebAssembly (split-kernels.ts).
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { fitForest } from "../src/fit.ts";
import type { FitParams } from "../src/options.ts";
import { buildPack } from "../src/pack.ts";
import type { FeatureInfo } from "../src/schema.ts";
import { CATEGORICAL, EVALUATE, GiniKernels, SEARCHED } from "../src/split-kernels.ts";
import { HistogramSplitter } from "../src/splitter.ts";
import type { Dataset } from "../src/types.ts";
import { classification, fixture, random, regression } from "./fixtures/data.ts";

type Outcome = -1 | 0 | 1;
const proto = HistogramSplitter.prototype as unknown as { countingSort: (...args: unknown[]) => Outcome };

/** The forest's bytes with the sweep as the splitter chooses it, with it turned off, and its outcomes (1 sorted and swept, 0 constant, -1 missing values). */
function both(ds: Dataset, params: FitParams): { on: Uint8Array; off: Uint8Array; outcomes: Outcome[] } {
  const pack = buildPack(ds);
  const spy = vi.spyOn(proto, "countingSort");
  const on = fitForest(pack, params).toBinary();
  const outcomes = spy.mock.results.map((r) => r.value as Outcome);
  spy.mockRestore();
  // -1 sends every feature to the histogram path, as a node with missing values does.
  const off = vi.spyOn(proto, "countingSort").mockReturnValue(-1);
  const without = fitForest(pack, params).toBinary();
  off.mockRestore();
  return { on, off: without, outcomes };
}

/** Integer targets from integer features, one with missing values. */
function counts(n: number, seed: number): Dataset {
  const rnd = random(seed);
  const xs = [0, 1, 2, 3].map((k) => Array.from({ length: n }, () => (k === 2 && rnd() < 0.1 ? NaN : Math.floor(rnd() * (k === 0 ? 300 : 40)))));
  const y = xs[0].map((x, i) => Math.round(x / 10 + (xs[1][i] % 5) * 3 + (Number.isNaN(xs[2][i]) ? 7 : xs[2][i] / 4) + rnd() * 8));
  return regression(xs, y, ["a", "b", "c", "d"]);
}

afterEach(() => vi.restoreAllMocks());

describe("the counting-sort sweep of small nodes", () => {
  // The JavaScript sweep: gini's is in WebAssembly otherwise (see below).
  beforeEach(() => vi.spyOn(HistogramSplitter, "usesKernels").mockReturnValue(false));

  it("grows the same classification trees byte for byte", () => {
    for (const params of [
      { n_estimators: 4, random_state: 1 },
      { n_estimators: 3, random_state: 2, min_samples_leaf: 3 },
      { n_estimators: 3, random_state: 4, max_depth: 9, criterion: "gini", bootstrap: false },
    ] satisfies FitParams[]) {
      const { on, off, outcomes } = both(fixture("digits"), params);
      expect(outcomes.filter((o) => o === 1).length).toBeGreaterThan(100);
      expect(outcomes.filter((o) => o === 0).length).toBeGreaterThan(0);
      expect(Buffer.from(on).equals(Buffer.from(off))).toBe(true);
    }
  });

  it("grows the same regression trees with integer targets, and leaves a node with missing values to the histogram", () => {
    const { on, off, outcomes } = both(counts(3000, 5), { n_estimators: 4, random_state: 3, max_features: 2 });
    expect(outcomes.filter((o) => o === 1).length).toBeGreaterThan(100);
    expect(outcomes.filter((o) => o === -1).length).toBeGreaterThan(0);
    expect(Buffer.from(on).equals(Buffer.from(off))).toBe(true);
  });

  it("is not used where adding samples one at a time could round differently: fractional weights or targets, entropy", () => {
    const runs = (ds: Dataset, params: FitParams) => {
      const spy = vi.spyOn(proto, "countingSort");
      fitForest(buildPack(ds), { n_estimators: 1, random_state: 1, ...params });
      const n = spy.mock.calls.length;
      spy.mockRestore();
      return n > 0;
    };
    const digits = fixture("digits");
    expect(runs(digits, {})).toBe(true);
    expect(runs(digits, { criterion: "entropy" })).toBe(false);
    const base = counts(2000, 8);
    expect(runs(base, { max_features: 2 })).toBe(true);
    const t = base.target as { task: "regression"; values: Float64Array };
    expect(runs({ ...base, target: { ...t, values: t.values.map((v) => v + 0.25) } }, { max_features: 2 })).toBe(false);
    const rnd = random(3);
    const xs = [0, 1].map(() => Array.from({ length: 1500 }, () => rnd()));
    const labels = xs[0].map((x, i) => (x > 0.7 * xs[1][i] ? "a" : "b"));
    const two = classification(xs, labels);
    expect(runs(two, {})).toBe(true);
    // With the bootstrap the weights are draw counts whatever the class weights (see sampleWeights).
    expect(runs(two, { class_weight: "balanced" })).toBe(true);
    expect(runs(two, { class_weight: "balanced", bootstrap: false })).toBe(false);
    expect(runs({ ...two, weights: new Float64Array(1500).fill(0.5) }, { bootstrap: false })).toBe(false);
  });
});

describe("paired histograms of large nodes (two classes)", () => {
  /** Two classes from integer features, one with a heavy zero (as FM's pixels), enough rows for column passes. */
  function twoClasses(n: number, seed: number): Dataset {
    const rnd = random(seed);
    const xs = [0, 1, 2, 3, 4, 5].map((k) => Array.from({ length: n }, () => (k < 3 && rnd() < 0.5 ? 0 : Math.floor(rnd() * 200))));
    const labels = xs[0].map((x, i) => (x + xs[1][i] * 0.5 + rnd() * 150 > 140 ? "yes" : "no"));
    return classification(xs, labels);
  }

  it("grows the same trees byte for byte, and is used only for two classes with exact statistics", () => {
    const ds = twoClasses(12000, 4);
    const pack = buildPack(ds);
    for (const params of [
      { n_estimators: 3, random_state: 5 },
      { n_estimators: 2, random_state: 6, max_depth: 6, max_features: "all" },
    ] satisfies FitParams[]) {
      const merge = vi.spyOn(HistogramSplitter.prototype as unknown as { mergeSecondHistogram: () => void }, "mergeSecondHistogram");
      const on = fitForest(pack, params).toBinary();
      expect(merge.mock.calls.length).toBeGreaterThan(10);
      merge.mockRestore();
      const off = vi.spyOn(HistogramSplitter, "pairsHistograms").mockReturnValue(false);
      const without = fitForest(pack, params).toBinary();
      off.mockRestore();
      expect(Buffer.from(on).equals(Buffer.from(without))).toBe(true);
    }
    const paired = (d: Dataset, params: FitParams) => {
      const spy = vi.spyOn(HistogramSplitter, "pairsHistograms");
      fitForest(buildPack(d), { n_estimators: 1, random_state: 1, ...params });
      const used = spy.mock.results.some((r) => r.value === true);
      spy.mockRestore();
      return used;
    };
    expect(paired(ds, {})).toBe(true);
    expect(paired(ds, { class_weight: "balanced", bootstrap: false })).toBe(false);
    expect(paired(fixture("digits"), {})).toBe(false);
    expect(paired(counts(2000, 8), {})).toBe(false);
  });
});

describe("gini's node search in WebAssembly", () => {
  /**
   * The forest's bytes with the kernels and with the splitter's JavaScript; the subtrees the kernels grew whole; what
   * each node search the builder's loop asked of them returned (SEARCHED, or the splitter called for missing values or
   * a categorical feature); and the nodes the splitter searched itself in their memory (nodes with carried histograms).
   */
  function wasmAndJs(ds: Dataset, params: FitParams): { wasm: Uint8Array; js: Uint8Array; subtrees: number; stops: number; searches: number[]; setNodes: number } {
    const pack = buildPack(ds);
    const grow = vi.spyOn(HistogramSplitter.prototype, "growSubtree");
    const grown = vi.spyOn(GiniKernels.prototype, "grow");
    const search = vi.spyOn(GiniKernels.prototype, "search");
    const setNode = vi.spyOn(GiniKernels.prototype, "setNode");
    const wasm = fitForest(pack, params).toBinary();
    const subtrees = grow.mock.calls.length;
    const stops = grown.mock.results.filter((r) => (r.value as number) < 0).length;
    const searches = search.mock.results.map((r) => r.value as number);
    const setNodes = setNode.mock.calls.length;
    vi.restoreAllMocks();
    const off = vi.spyOn(HistogramSplitter, "usesKernels").mockReturnValue(false);
    const js = fitForest(pack, params).toBinary();
    off.mockRestore();
    return { wasm, js, subtrees, stops, searches, setNodes };
  }

  /** Ten classes from integer features of a few hundred values, one with missing values, one constant where x0 < 125. */
  function tenClasses(n: number, seed: number): Dataset {
    const rnd = random(seed);
    const xs = [0, 1, 2, 3, 4].map((k) => Array.from({ length: n }, () => (k === 2 && rnd() < 0.1 ? NaN : Math.floor(rnd() * (k === 0 ? 250 : 30)))));
    xs.push(xs[0].map((x) => (x < 125 ? 0 : Math.floor(rnd() * 30))));
    const labels = xs[0].map((x, i) => String(Math.floor((x / 25 + (xs[1][i] % 7) + rnd() * 4) % 10)));
    return classification(xs, labels);
  }

  /** tenClasses with feature 4 categorical (30 categories). */
  function withCategory(n: number, seed: number): Dataset {
    const ds = tenClasses(n, seed);
    const features: FeatureInfo[] = ds.featureNames.map((name, f) =>
      f === 4 ? { name, kind: "categorical", column: f, categories: Array.from({ length: 30 }, (_, c) => `c${c}`) } : { name, kind: "numeric", column: f },
    );
    return { ...ds, features };
  }

  it("grows whole subtrees, the same trees byte for byte as the builder's and splitter's JavaScript", () => {
    for (const [ds, params] of [
      [fixture("digits"), { n_estimators: 4, random_state: 1 }],
      [fixture("digits"), { n_estimators: 3, random_state: 2, min_samples_leaf: 3, max_features: 0.5 }],
      [fixture("digits"), { n_estimators: 3, random_state: 4, max_depth: 9, bootstrap: false }],
      [fixture("digits"), { n_estimators: 3, random_state: 3, min_samples_split: 12, min_impurity_decrease: 0.0005 }],
      // Fractional weights: only nodes of up to 32 samples are swept one sample at a time (see insertionSort).
      [fixture("digits"), { n_estimators: 2, random_state: 6, class_weight: "balanced", bootstrap: false }],
      [fixture("iris"), { n_estimators: 5, random_state: 7 }],
    ] satisfies [Dataset, FitParams][]) {
      const { wasm, js, subtrees, stops, searches } = wasmAndJs(ds, params);
      expect(subtrees).toBeGreaterThan(0);
      expect(stops).toBe(0);
      expect(searches).toEqual([]);
      expect(Buffer.from(wasm).equals(Buffer.from(js))).toBe(true);
    }
  });

  it("stops a subtree at a feature with missing values for the splitter to score, and goes on: the same trees", () => {
    for (const [ds, params] of [
      [tenClasses(6000, 3), { n_estimators: 3, random_state: 5, max_features: 3 }],
      [tenClasses(6000, 4), { n_estimators: 3, random_state: 9, max_features: 3, min_samples_leaf: 40 }],
      [tenClasses(6000, 3), { n_estimators: 2, random_state: 8, max_features: 3, min_impurity_decrease: 0.0002 }],
    ] satisfies [Dataset, FitParams][]) {
      const { wasm, js, subtrees, stops, searches } = wasmAndJs(ds, params);
      expect(subtrees).toBeGreaterThan(0);
      expect(stops).toBeGreaterThan(20);
      expect(searches).toEqual([]);
      expect(Buffer.from(wasm).equals(Buffer.from(js))).toBe(true);
    }
  });

  it("searches nodes for the builder's loop where a feature is categorical, stopping for the splitter: the same trees", () => {
    for (const [ds, params] of [
      [withCategory(6000, 5), { n_estimators: 3, random_state: 3, max_features: 3 }],
      [withCategory(6000, 6), { n_estimators: 2, random_state: 8, max_features: 3, min_samples_leaf: 5 }],
    ] satisfies [Dataset, FitParams][]) {
      const { wasm, js, subtrees, searches } = wasmAndJs(ds, params);
      expect(subtrees).toBe(0);
      expect(searches.filter((s) => s === SEARCHED).length).toBeGreaterThan(20);
      // The search stops at missing values and at the categorical feature.
      expect(searches).toContain(EVALUATE);
      expect(searches).toContain(CATEGORICAL);
      expect(Buffer.from(wasm).equals(Buffer.from(js))).toBe(true);
    }
  });

  it("leaves nodes with carried histograms to the splitter, the same trees", () => {
    // All features drawn: large nodes carry their histograms to their children, and are searched by the JavaScript.
    for (const ds of [tenClasses(6000, 3), fixture("digits")]) {
      const { wasm, js, subtrees, searches, setNodes } = wasmAndJs(ds, { n_estimators: 2, random_state: 8, max_features: "all" });
      expect(subtrees).toBe(0);
      expect(searches.length).toBeGreaterThan(50);
      expect(setNodes).toBeGreaterThan(5);
      expect(Buffer.from(wasm).equals(Buffer.from(js))).toBe(true);
    }
  });

  it("makes a subtree's first row copy in JavaScript when the pack's rows are not in its memory (a large pack)", () => {
    const ds = fixture("digits");
    const params = { n_estimators: 2, random_state: 8, max_features: 3 } satisfies FitParams;
    const kept = vi.spyOn(GiniKernels.prototype, "copyRows");
    const { wasm } = wasmAndJs(ds, params);
    vi.spyOn(GiniKernels.prototype, "rowsOfPack").mockImplementation((rowBins) => rowBins);
    const copies = vi.spyOn(GiniKernels.prototype, "copyRows");
    const { wasm: large, js } = wasmAndJs(ds, params);
    expect(kept.mock.results.every((r) => r.value === true)).toBe(true);
    expect(copies.mock.results.some((r) => r.value === false)).toBe(true);
    expect(Buffer.from(large).equals(Buffer.from(wasm))).toBe(true);
    expect(Buffer.from(large).equals(Buffer.from(js))).toBe(true);
  });

  it("is used for gini only", () => {
    const used = (ds: Dataset, params: FitParams) => {
      const spy = vi.spyOn(GiniKernels, "of");
      fitForest(buildPack(ds), { n_estimators: 1, random_state: 1, ...params });
      const n = spy.mock.calls.length;
      spy.mockRestore();
      return n > 0;
    };
    expect(used(fixture("digits"), {})).toBe(true);
    expect(used(fixture("digits"), { criterion: "entropy" })).toBe(false);
    expect(used(counts(2000, 8), { max_features: 2 })).toBe(false);
  });
});
