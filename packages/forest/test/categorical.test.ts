// Categorical features split into two sets of categories: the learner's choice, the model format (version 4),
// prediction from raw codes and from a pack, and what cannot hold a set (ml-random-forest export).
import { describe, expect, it } from "vitest";
import { CanopyError, FormatError } from "../src/errors.ts";
import { fitForest } from "../src/fit.ts";
import { Forest, FOREST_VERSION } from "../src/forest.ts";
import { exportMlrf } from "../src/mlrf.ts";
import type { FitParams } from "../src/options.ts";
import { buildPack } from "../src/pack.ts";
import { MIN_CATEGORY_SUPPORT } from "../src/splitter.ts";
import type { FeatureInfo } from "../src/schema.ts";
import type { Dataset, Tree } from "../src/types.ts";
import { allRows } from "../src/fit.ts";
import { classification, leafValue, random, regression, rowsOf } from "./fixtures/data.ts";

/** Marks features of a dataset categorical, with `k` category names each (codes 0..k-1 are their values). */
function withCategorical(ds: Dataset, kinds: (number | null)[]): Dataset {
  const features: FeatureInfo[] = ds.featureNames.map((name, f) => {
    const k = kinds[f];
    return k == null ? { name, kind: "numeric", column: f } : { name, kind: "categorical", column: f, categories: Array.from({ length: k }, (_, c) => `c${c}`) };
  });
  return { ...ds, features };
}

/** Codes 0..k-1 of n rows, each category equally often, shuffled. */
function codes(n: number, k: number, rnd: () => number): number[] {
  const out = Array.from({ length: n }, (_, i) => i % k);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

const one = (ds: Dataset, params: FitParams = {}): Tree =>
  fitForest(buildPack(ds), { n_estimators: 1, bootstrap: false, max_features: "all", ...params }).trees[0];

/** The codes whose bit is set in node `node`'s set. */
function leftCodes(tree: Tree, node: number, k: number): number[] {
  const sets = tree.categorical!;
  const s = sets.set[node];
  expect(s).toBeGreaterThanOrEqual(0);
  const out: number[] = [];
  for (let c = 0; c < k; c++) if ((sets.bits[sets.bounds[s] + (c >>> 5)] >>> (c & 31)) & 1) out.push(c);
  return out;
}

const TEN = 10;
/** y = "in" for codes {1, 4, 7, 8} of a 10-category feature: no threshold on the codes separates it in one split. */
function scattered(): Dataset {
  const x = codes(200, TEN, random(3));
  return withCategorical(classification([x], x.map((c) => ([1, 4, 7, 8].includes(c) ? "in" : "out"))), [TEN]);
}

describe("categorical splits: the learner", () => {
  it("separates a scattered set of categories in one split (two classes: ordered by the share of the second class)", () => {
    const ds = scattered();
    const t = one(ds, { max_depth: 1 });
    expect(t.nodeCount).toBe(3);
    const left = leftCodes(t, 0, TEN);
    expect([left, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].filter((c) => !left.includes(c))]).toContainEqual([1, 4, 7, 8]);
    const forest = fitForest(buildPack(ds), { n_estimators: 1, bootstrap: false, max_depth: 1 });
    expect(forest.predict(rowsOf(ds))).toEqual(rowsOf(ds).map(([c]) => ([1, 4, 7, 8].includes(c) ? "in" : "out")));
  });

  it("the same codes read as numbers need more than one split", () => {
    const ds = scattered();
    const numeric: Dataset = { ...ds, features: undefined };
    const t = one(numeric, { max_depth: 1 });
    expect(t.categorical).toBeUndefined();
    const forest = fitForest(buildPack(numeric), { n_estimators: 1, bootstrap: false, max_depth: 1 });
    const predicted = forest.predict(rowsOf(numeric)) as string[];
    const classes = (ds.target as { classes: string[] }).classes;
    const codesOf = (ds.target as { codes: Uint16Array }).codes;
    expect(predicted.filter((p, r) => p !== classes[codesOf[r]]).length).toBeGreaterThan(0);
  });

  it("regression: categories ordered by their mean target, the best split into sets in one step", () => {
    const means = [5, -3, 8, 0, -7, 6, 1, -2];
    const x = codes(160, means.length, random(8));
    const y = x.map((c, i) => means[c] + (i % 2 ? 0.1 : -0.1));
    const ds = withCategorical(regression([x], y), [means.length]);
    const t = one(ds, { max_depth: 1 });
    const left = leftCodes(t, 0, means.length);
    // The split into two sets with the least squared error, by trying all of them.
    const sse = (set: number[]) => {
      const parts = [y.filter((_, i) => set.includes(x[i])), y.filter((_, i) => !set.includes(x[i]))];
      return parts.reduce((acc, p) => {
        const m = p.reduce((a, b) => a + b, 0) / p.length;
        return acc + p.reduce((a, v) => a + (v - m) ** 2, 0);
      }, 0);
    };
    let best: number[] = [];
    for (let mask = 1; mask < 1 << (means.length - 1); mask++) {
      const set = means.map((_, c) => c).filter((c) => (mask >>> c) & 1);
      if (best.length === 0 || sse(set) < sse(best)) best = set;
    }
    const sides = [left, means.map((_, c) => c).filter((c) => !left.includes(c))];
    expect(sides).toContainEqual(best);
    // Leaf values are the means of each side.
    const inLeft = (c: number) => left.includes(c);
    const mean = (side: boolean) => {
      const ys = y.filter((_, i) => inLeft(x[i]) === side);
      return ys.reduce((a, b) => a + b, 0) / ys.length;
    };
    expect(leafValue(t, 1, 1)[0]).toBeCloseTo(mean(true), 5);
    expect(leafValue(t, t.right[0], 1)[0]).toBeCloseTo(mean(false), 5);
  });

  it("more classes: ordered along the class shares' first principal component, so each class's categories group", () => {
    // Six categories, two per class, interleaved by code: a perfect tree needs two set splits.
    const classOf = [0, 1, 2, 0, 1, 2];
    const x = codes(300, classOf.length, random(4));
    const ds = withCategorical(classification([x], x.map((c) => `k${classOf[c]}`)), [classOf.length]);
    const t = one(ds, { max_depth: 2 });
    const sets = t.categorical!;
    expect(Array.from(sets.set).filter((s) => s >= 0)).toHaveLength(2);
    // Each split keeps the two categories of a class together.
    for (let node = 0; node < t.nodeCount; node++) {
      if (t.feature[node] < 0) continue;
      const left = leftCodes(t, node, classOf.length);
      for (const [a, b] of [[0, 3], [1, 4], [2, 5]]) expect(left.includes(a)).toBe(left.includes(b));
    }
    const forest = fitForest(buildPack(ds), { n_estimators: 1, bootstrap: false, max_depth: 2 });
    expect(forest.predict(rowsOf(ds))).toEqual(x.map((c) => `k${classOf[c]}`));
  });

  it("missing values, categories absent from a node and codes beyond the feature's follow the split's missing direction", () => {
    const rnd = random(5);
    const x = codes(240, 6, rnd).map((c) => (rnd() < 0.1 ? NaN : c));
    // Code 5 only ever appears with code 0's rows gone: train without it, so it is absent from every node.
    const keep = x.map((c) => c !== 5);
    const xs = x.filter((_, i) => keep[i]);
    const ys = xs.map((c) => (c === 1 || c === 3 ? "a" : Number.isNaN(c) ? "a" : "b"));
    const ds = withCategorical(classification([xs], ys), [6]);
    const forest = fitForest(buildPack(ds), { n_estimators: 1, bootstrap: false, max_depth: 1 });
    const t = forest.trees[0];
    expect(t.categorical).toBeDefined();
    const missingGoes = t.missingLeft[0] === 1 ? 1 : t.right[0];
    const leafOf = (v: number) => {
      const left = Number.isNaN(v) || !(v >= 0 && v < 32 && Number.isInteger(v)) ? t.missingLeft[0] === 1 : leftCodes(t, 0, 32).includes(v);
      return left ? 1 : t.right[0];
    };
    // Missing values were seen with class "a", and went with codes 1 and 3.
    expect(leafOf(NaN)).toBe(leafOf(1));
    expect(leafOf(5)).toBe(missingGoes);
    for (const v of [NaN, 5, 17, 1e6, -1, 2.5]) expect(leafOf(v)).toBe(missingGoes);
    const proba = forest.predictProba([[NaN], [5], [17], [1e6], [-1], [2.5]]);
    const expected = forest.predictProba([[NaN]]);
    for (let r = 0; r < 6; r++) expect([proba[2 * r], proba[2 * r + 1]]).toEqual([expected[0], expected[1]]);
  });

  it(`a category with fewer than ${MIN_CATEGORY_SUPPORT} samples at a node is not ordered on its own: one sample goes with the missing values, two are ordered`, () => {
    expect(MIN_CATEGORY_SUPPORT).toBe(2);
    // Codes 0-5: 40 rows each, "a" for 0-2. Code 6 has one row, code 7 two; both are "b", so ordered by their
    // own labels they side with 3-5. Missing values are "a".
    const x = [...codes(240, 6, random(6)), 6, 7, 7, NaN, NaN, NaN, NaN, NaN];
    const y = x.map((c) => (Number.isNaN(c) ? "a" : c >= 6 ? "b" : c < 3 ? "a" : "b"));
    const ds = withCategorical(classification([x], y), [8]);
    const forest = fitForest(buildPack(ds), { n_estimators: 1, bootstrap: false, max_depth: 1 });
    const t = forest.trees[0];
    const left = leftCodes(t, 0, 8);
    expect([left.filter((c) => c < 6), [0, 1, 2, 3, 4, 5].filter((c) => !left.includes(c))]).toContainEqual([0, 1, 2]);
    const sideOfA = left.includes(0);
    expect(t.missingLeft[0] === 1).toBe(sideOfA);
    // The rare code, missing values and a code never seen share one side: the one missing values went to.
    expect(left.includes(6)).toBe(sideOfA);
    // Two samples are enough to be keyed by their own labels: code 7 sides with 3-5.
    expect(left.includes(7)).toBe(!sideOfA);
    const p = forest.predictProba([[6], [NaN], [9], [7], [3]]);
    expect([p[2], p[3]]).toEqual([p[0], p[1]]);
    expect([p[4], p[5]]).toEqual([p[0], p[1]]);
    expect([p[6], p[7]]).toEqual([p[8], p[9]]);
    expect([p[6], p[7]]).not.toEqual([p[0], p[1]]);
  });

  it("mixes numeric and categorical features; predictPack on the bins agrees with predict on raw values", () => {
    const rnd = random(9);
    const n = 6000;
    const cat = codes(n, 40, rnd);
    const num = Array.from({ length: n }, () => (rnd() < 0.05 ? NaN : rnd()));
    const cat2 = codes(n, 7, rnd).map((c) => (rnd() < 0.05 ? NaN : c));
    const labels = cat.map((c, i) => ((c % 3 === 0) !== (num[i] > 0.6) || cat2[i] === 2 ? "p" : rnd() < 0.2 ? "q" : "r"));
    const ds = withCategorical(classification([cat, num, cat2], labels), [40, null, 7]);
    const pack = buildPack(ds);
    const forest = fitForest(pack, { n_estimators: 8, random_state: 2 });
    expect(forest.trees.every((t) => t.categorical !== undefined)).toBe(true);
    const rows = allRows(n);
    expect(forest.predictPackProba(pack, rows)).toEqual(forest.predictProba(rowsOf(ds)));
    const importances = forest.featureImportances();
    expect(importances[0]).toBeGreaterThan(0.1);
    expect(importances[2]).toBeGreaterThan(0.01);
  });
});

function mixed(): Dataset {
  const rnd = random(12);
  const n = 5000;
  const cat = codes(n, 30, rnd).map((c) => (rnd() < 0.03 ? NaN : c));
  const num = Array.from({ length: n }, () => rnd());
  const y = cat.map((c, i) => (Number.isNaN(c) ? 2 : (c * 7) % 5) + num[i] * 3 + rnd());
  return withCategorical(regression([cat, num], y), [30, null]);
}

describe("categorical splits: model format 4 and determinism", () => {
  const ds = mixed();
  const pack = buildPack(ds);
  const params: FitParams = { n_estimators: 12, random_state: 4, max_depth: 6 };
  const forest = fitForest(pack, params);
  const probe = [...rowsOf(ds).slice(0, 300), [NaN, 0.5], [29, NaN], [31, 0.2], [1000, 0.9]];

  it("is written as version 4 and reads back the same, binary and JSON", () => {
    const bin = forest.toBinary();
    expect(new DataView(bin.buffer, bin.byteOffset).getUint32(8, true)).toBe(FOREST_VERSION);
    expect(FOREST_VERSION).toBe(4);
    for (const back of [Forest.load(bin), Forest.load(JSON.stringify(forest.toJSON())), Forest.load(bin.slice())]) {
      expect(back.version).toBe(4);
      expect(back.trees).toEqual(forest.trees);
      expect(back.toBinary()).toEqual(bin);
      expect(back.predict(probe)).toEqual(forest.predict(probe));
    }
  });

  it("groves merged give the one-piece model byte for byte", () => {
    const bytes = forest.toBinary();
    const groves = [[0, 1, 2, 3, 4], [5, 6, 7], [8, 9, 10, 11]].map((treeIndices) => fitForest(buildPack(mixed()), params, { treeIndices }));
    expect(Forest.merge(groves.reverse().map((g) => Forest.load(g.toBinary()))).toBinary()).toEqual(bytes);
  });

  it("refuses category sets that are malformed, and category sets in a version 3 model", () => {
    const json = forest.toJSON();
    const tree = json.trees.find((t) => t.categorical)!;
    const edit = (f: (c: NonNullable<typeof tree.categorical>) => void) => {
      const t = structuredClone(tree);
      f(t.categorical!);
      return { ...json, trees: json.trees.map((x) => (x === tree ? t : x)) };
    };
    const cases = [
      edit((c) => (c.bounds[c.bounds.length - 1] += 1)),
      edit((c) => (c.set[c.set.indexOf(0)] = c.bounds.length + 3)),
      edit((c) => (c.set[c.set.findIndex((s, i) => s < 0 && tree.feature[i] < 0)] = 0)),
      edit((c) => (c.bits = c.bits.map(() => -1))),
      edit((c) => (c.set = c.set.slice(1))),
      { ...json, version: 3 },
    ];
    for (const bad of cases) expect(() => Forest.load(bad)).toThrow(FormatError);
  });

  it("ml-random-forest export refuses it in one line", () => {
    let caught: unknown;
    try {
      exportMlrf(forest);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(CanopyError);
    expect((caught as Error).message).toMatch(/^cannot export to ml-random-forest: tree \d+ splits a categorical feature into two sets of categories/);
    expect((caught as Error).message).not.toContain("\n");
  });
});
