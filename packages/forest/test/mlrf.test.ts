import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { RandomForestClassifier, RandomForestRegression } from "ml-random-forest";
import { describe, expect, it } from "vitest";
import { OptionsError } from "../src/errors.ts";
import { exportMlrf, fitTreeMlrf, hardVote, nextUp, type MlrfPack } from "../src/mlrf.ts";
import type { Tree } from "../src/types.ts";

// ---- hand-built trees -------------------------------------------------------------------------------------

type Spec = { f: number; t: number; missingLeft?: boolean; l: Spec; r: Spec } | { v: number[] };

/** Flattens a nested spec into a Canopy Tree (DFS pre-order, left child = i + 1). */
function tree(index: number, spec: Spec): Tree {
  const feature: number[] = [];
  const threshold: number[] = [];
  const right: number[] = [];
  const missingLeft: number[] = [];
  const values: number[] = [];
  let width = 0;
  const walk = (s: Spec): void => {
    const i = feature.length;
    if ("v" in s) {
      width = s.v.length;
      feature.push(-1);
      threshold.push(0);
      missingLeft.push(0);
      right.push(values.length / width);
      values.push(...s.v);
      return;
    }
    feature.push(s.f);
    threshold.push(s.t);
    missingLeft.push(s.missingLeft ? 1 : 0);
    right.push(-1);
    walk(s.l);
    right[i] = feature.length;
    walk(s.r);
  };
  walk(spec);
  const n = feature.length;
  return {
    index,
    nodeCount: n,
    feature: Int32Array.from(feature),
    threshold: Float64Array.from(threshold),
    thresholdBin: new Uint8Array(n),
    right: Int32Array.from(right),
    missingLeft: Uint8Array.from(missingLeft),
    gain: Float32Array.from(feature, (f) => (f === -1 ? 0 : 1)),
    values: Float32Array.from(values),
  };
}

const leaf = (...v: number[]): Spec => ({ v });

const classForest = {
  task: "classification" as const,
  classes: ["x", "y", "z"],
  featureNames: ["a", "b"],
  trees: [
    tree(0, { f: 0, t: 1.5, l: leaf(0.9, 0.1, 0), r: { f: 1, t: 0.25, l: leaf(0.2, 0.5, 0.3), r: leaf(0, 0.3, 0.7) } }),
    tree(1, { f: 1, t: -1, l: leaf(0, 1, 0), r: leaf(0.5, 0.5, 0) }),
    tree(2, { f: 0, t: 0.1, l: leaf(0.1, 0.2, 0.7), r: { f: 0, t: 3, l: leaf(0, 1, 0), r: leaf(1, 0, 0) } }),
  ],
};

/** Deterministic rows that hit every threshold exactly, one float either side, and values in between. */
function probeRows(thresholds: number[], nFeatures: number, count: number): number[][] {
  const pool: number[] = [-1e300, -7, 0, 2.5, 1e300];
  for (const t of thresholds) pool.push(t, nextUp(t), -nextUp(-t));
  let s = 12345;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0);
  const rows: number[][] = [];
  for (let r = 0; r < count; r++) rows.push(Array.from({ length: nFeatures }, () => pool[next() % pool.length]));
  return rows;
}

const roundTrip = (model: object) => JSON.parse(JSON.stringify(model));

describe("exportMlrf (classification)", () => {
  it("mlrf predicts the same hard votes, including rows exactly on thresholds", () => {
    const json = roundTrip(exportMlrf(classForest));
    const mlrf = RandomForestClassifier.load(json);
    const X = probeRows([1.5, 0.25, -1, 0.1, 3], 2, 400);
    expect(mlrf.predict(X)).toEqual(Array.from(hardVote(classForest, X)));
  });

  it("hard votes follow x <= threshold and the tie rules worked out by hand", () => {
    // [1.5, 0.25]: tree0 left → x; tree1 b > -1 → (0.5, 0.5) tie → x; tree2 0.1 < a <= 3 → y. Votes x,x,y → x.
    // [0.1, 0.26]: tree0 → x; tree1 → x; tree2 a <= 0.1 → z. → x.
    // [1.6, 0.25]: tree0 right, b <= 0.25 → y; tree1 → x; tree2 → y. → y.
    // [5, -1]: tree0 right, b <= 0.25 → y; tree1 b <= -1 → y; tree2 a > 3 → x. → y.
    // [5, 1]: tree0 → z; tree1 → x; tree2 → x. → x.
    // [2, 1]: tree0 → z; tree1 → x; tree2 → y: three-way tie, the first tree's vote wins (ml-array-mode) → z.
    const X = [
      [1.5, 0.25],
      [0.1, 0.26],
      [1.6, 0.25],
      [5, -1],
      [5, 1],
      [2, 1],
    ];
    expect(Array.from(hardVote(classForest, X))).toEqual([0, 0, 1, 1, 0, 2]);
    expect(RandomForestClassifier.load(roundTrip(exportMlrf(classForest))).predict(X)).toEqual([0, 0, 1, 1, 0, 2]);
  });

  it("the nextUp conversion matters: raw thresholds would flip rows on the boundary", () => {
    const json = roundTrip(exportMlrf(classForest));
    const root = json.baseModel.estimators[0].root;
    expect(root.splitValue).toBeGreaterThan(1.5);
    root.splitValue = 1.5; // what a naive export would write
    const X = [[1.5, 1]];
    expect(hardVote(classForest, X)[0]).toBe(0);
    // The boundary row now goes right in tree 0 (z), giving a z, x, y tie that z wins.
    expect(RandomForestClassifier.load(json).predict(X)).toEqual([2]);
  });

  it("matches mlrf's mode on ties between whole trees", () => {
    const constant = (k: number, i: number) => tree(i, leaf(...[0, 1, 2].map((c) => (c === k ? 1 : 0))));
    const forest = { ...classForest, trees: [1, 0, 0, 1, 2].map(constant) };
    // counts reach 2 first for class 0 (third tree); class 1 only ties it later.
    expect(Array.from(hardVote(forest, [[0, 0]]))).toEqual([0]);
    expect(RandomForestClassifier.load(roundTrip(exportMlrf(forest))).predict([[0, 0]])).toEqual([0]);
  });

  it("accepts a row-major Float64Array matrix", () => {
    const X = probeRows([1.5, 0.25, -1, 0.1, 3], 2, 50);
    const flat = { data: Float64Array.from(X.flat()), nRows: X.length, nCols: 2 };
    expect(Array.from(hardVote(classForest, flat))).toEqual(Array.from(hardVote(classForest, X)));
  });

  it("reports missing-left splits; NaN rows agree only where missing goes right", () => {
    const withMissing = {
      ...classForest,
      trees: [
        tree(0, { f: 0, t: 1.5, missingLeft: true, l: leaf(1, 0, 0), r: leaf(0, 0, 1) }),
        tree(1, { f: 1, t: 0, l: leaf(1, 0, 0), r: leaf(0, 0, 1) }),
      ],
    };
    const json = roundTrip(exportMlrf(withMissing));
    expect(json.canopy.missingLeftSplits).toBe(1);
    expect(roundTrip(exportMlrf(classForest)).canopy.missingLeftSplits).toBe(0);
    const mlrf = RandomForestClassifier.load(json);
    // NaN in b: both send it right (z, z). NaN in a: Canopy sends it left (x, then z: tie → x), ml-cart right (z).
    expect(Array.from(hardVote(withMissing, [[2, NaN]]))).toEqual([2]);
    expect(mlrf.predict([[2, NaN]])).toEqual([2]);
    expect(Array.from(hardVote(withMissing, [[NaN, 1]]))).toEqual([0]);
    expect(mlrf.predict([[NaN, 1]])).toEqual([2]);
  });

  it("keeps the class names and rejects empty forests", () => {
    const json = roundTrip(exportMlrf(classForest));
    expect(json.name).toBe("RFClassifier");
    expect(json.canopy.classes).toEqual(["x", "y", "z"]);
    expect(() => exportMlrf({ ...classForest, trees: [] })).toThrow(/no trees/);
  });
});

describe("exportMlrf (regression)", () => {
  const regForest = {
    task: "regression" as const,
    classes: [],
    featureNames: ["a", "b", "c"],
    trees: [
      tree(0, { f: 2, t: -0.5, l: leaf(1.5), r: { f: 0, t: 10, l: leaf(4.25), r: leaf(-2) } }),
      tree(1, { f: 1, t: 0.3, l: { f: 2, t: 7, l: leaf(0.5), r: leaf(8) }, r: leaf(3) }),
    ],
  };

  it("mlrf predicts the mean of the trees, worked out by hand", () => {
    const mlrf = RandomForestRegression.load(roundTrip(exportMlrf(regForest)));
    // [10, 0.3, -0.5]: tree0 c <= -0.5 → 1.5; tree1 b <= 0.3, c <= 7 → 0.5. Mean 1.
    // [10.5, 0.4, 0]: tree0 c > -0.5, a > 10 → -2; tree1 b > 0.3 → 3. Mean 0.5.
    // [10, 0, 7.5]: tree0 → 4.25; tree1 b <= 0.3, c > 7 → 8. Mean 6.125.
    expect(
      mlrf.predict([
        [10, 0.3, -0.5],
        [10.5, 0.4, 0],
        [10, 0, 7.5],
      ]),
    ).toEqual([1, 0.5, 6.125]);
  });

  it("agrees with a direct traversal on boundary rows", () => {
    const mlrf = RandomForestRegression.load(roundTrip(exportMlrf(regForest)));
    const X = probeRows([-0.5, 10, 0.3, 7], 3, 300);
    const ours = X.map((row) => {
      let sum = 0;
      for (const t of regForest.trees) {
        let i = 0;
        while (t.feature[i] !== -1) i = row[t.feature[i]] <= t.threshold[i] ? i + 1 : t.right[i];
        sum += t.values[t.right[i]];
      }
      return sum / regForest.trees.length;
    });
    expect(mlrf.predict(X)).toEqual(ours);
  });
});

// ---- second engine ----------------------------------------------------------------------------------------

const fixture = (name: string) => fileURLToPath(new URL(`../../../test/fixtures/${name}`, import.meta.url));

/** Reads a numeric fixture CSV (label last) into raw columns. */
function readFixture(name: string): { header: string[]; X: number[][]; labels: string[] } {
  const lines = readFileSync(fixture(name), "utf8").trim().split(/\r?\n/);
  const header = lines[0].split(",");
  const X: number[][] = [];
  const labels: string[] = [];
  for (const line of lines.slice(1)) {
    const cells = line.split(",");
    labels.push(cells.pop() as string);
    X.push(cells.map(Number));
  }
  return { header, X, labels };
}

/** A pack whose edges are the sorted distinct values (thinned to 254 edges when there are more). */
function packOf(X: number[][], target: MlrfPack["target"]): MlrfPack {
  const nRows = X.length;
  const nFeatures = X[0].length;
  const bins = new Uint8Array(nRows * nFeatures);
  const edges: Float64Array[] = [];
  for (let f = 0; f < nFeatures; f++) {
    const distinct = Float64Array.from(new Set(X.map((r) => r[f]))).sort();
    const upper = distinct.subarray(0, distinct.length - 1);
    const e = upper.length <= 254 ? upper : Float64Array.from({ length: 254 }, (_, b) => upper[Math.floor((b * upper.length) / 254)]);
    edges.push(e);
    for (let r = 0; r < nRows; r++) {
      const b = e.findIndex((edge) => X[r][f] <= edge);
      bins[f * nRows + r] = b === -1 ? e.length : b;
    }
  }
  return { nRows, nFeatures, bins, edges, target };
}

function irisPack() {
  const { X, labels } = readFixture("iris.csv");
  const classes = [...new Set(labels)].sort();
  const codes = Uint16Array.from(labels, (l) => classes.indexOf(l));
  return { X, classes, pack: packOf(X, { task: "classification", classes, codes }) };
}

const allRows = (n: number) => Uint32Array.from({ length: n }, (_, i) => i);

/** Leaf slot reached by a raw row and, separately, by the pack's bins of that row. */
function leafRaw(t: Tree, row: number[]): number {
  let i = 0;
  while (t.feature[i] !== -1) i = row[t.feature[i]] <= t.threshold[i] ? i + 1 : t.right[i];
  return t.right[i];
}
function leafBin(t: Tree, pack: MlrfPack, r: number): number {
  let i = 0;
  while (t.feature[i] !== -1) i = pack.bins[t.feature[i] * pack.nRows + r] <= t.thresholdBin[i] ? i + 1 : t.right[i];
  return t.right[i];
}

describe("fitTreeMlrf", () => {
  const { X, classes, pack } = irisPack();
  const rows = allRows(pack.nRows);

  it("trains an iris tree that fits its training rows, with raw and bin thresholds in agreement", () => {
    const t = fitTreeMlrf(pack, rows, {}, 7, 3);
    expect(t.index).toBe(3);
    const forest = { task: "classification" as const, classes, featureNames: ["a", "b", "c", "d"], trees: [t] };
    const predicted = hardVote(forest, X);
    let correct = 0;
    for (let r = 0; r < X.length; r++) if (predicted[r] === (pack.target as { codes: Uint16Array }).codes[r]) correct++;
    expect(correct / X.length).toBeGreaterThanOrEqual(0.9);
    for (let r = 0; r < X.length; r++) expect(leafBin(t, pack, r)).toBe(leafRaw(t, X[r]));
    // Leaves hold K probabilities summing to 1; missing values (bin 255) sort last in ml-cart, so they go right.
    expect(t.values.length % 3).toBe(0);
    for (let s = 0; s < t.values.length; s += 3) expect(t.values[s] + t.values[s + 1] + t.values[s + 2]).toBeCloseTo(1, 5);
    expect(Array.from(t.missingLeft).every((m) => m === 0)).toBe(true);
  });

  it("is deterministic per seed and varies across seeds", () => {
    const a = fitTreeMlrf(pack, rows, {}, 11, 0);
    expect(fitTreeMlrf(pack, rows, {}, 11, 0)).toEqual(a);
    const others = [12, 13, 14].map((s) => fitTreeMlrf(pack, rows, {}, s, 0));
    for (const o of others) expect(o).not.toEqual(a);
  });

  it("samples max_features once per tree (sqrt(4) = 2), and 1 really means one feature", () => {
    for (const seed of [1, 2, 3, 4]) {
      const two = fitTreeMlrf(pack, rows, {}, seed, 0);
      expect(new Set(Array.from(two.feature).filter((f) => f >= 0)).size).toBeLessThanOrEqual(2);
      const one = fitTreeMlrf(pack, rows, { max_features: 1 }, seed, 0);
      expect(new Set(Array.from(one.feature).filter((f) => f >= 0)).size).toBe(1);
    }
  });

  it("without bootstrap the root gain is the weighted gini decrease over all rows", () => {
    const t = fitTreeMlrf(pack, rows, { bootstrap: false, max_features: "all", max_depth: 1 }, 5, 0);
    expect(t.nodeCount).toBe(3);
    const codes = (pack.target as { codes: Uint16Array }).codes;
    const weightedGini = (idx: number[]) => {
      const c = [0, 0, 0];
      for (const r of idx) c[codes[r]]++;
      return idx.length - (c[0] ** 2 + c[1] ** 2 + c[2] ** 2) / idx.length;
    };
    const all = Array.from(rows);
    const left = all.filter((r) => X[r][t.feature[0]] <= t.threshold[0]);
    const right = all.filter((r) => X[r][t.feature[0]] > t.threshold[0]);
    expect(t.gain[0]).toBeCloseTo(weightedGini(all) - weightedGini(left) - weightedGini(right), 3);
    // Iris' best first split isolates setosa: 50 rows on one side, pure.
    expect([left.length, right.length]).toContain(50);
  });

  it("honours max_depth and min_samples_split", () => {
    const depthOf = (t: Tree): number => {
      const d = (i: number): number => (t.feature[i] === -1 ? 0 : 1 + Math.max(d(i + 1), d(t.right[i])));
      return d(0);
    };
    expect(depthOf(fitTreeMlrf(pack, rows, { max_depth: 2 }, 9, 0))).toBeLessThanOrEqual(2);
    // min_samples_split larger than the sample: the root cannot split.
    expect(fitTreeMlrf(pack, rows, { min_samples_split: 151 }, 9, 0).nodeCount).toBe(1);
  });

  it("rejects options ml-random-forest has no equivalent for", () => {
    expect(() => fitTreeMlrf(pack, rows, { criterion: "entropy" }, 1, 0)).toThrow(OptionsError);
    expect(() => fitTreeMlrf(pack, rows, { min_samples_leaf: 3 }, 1, 0)).toThrow(OptionsError);
    expect(() => fitTreeMlrf(pack, rows, { max_features: 9 }, 1, 0)).toThrow(OptionsError);
  });

  it("trains a regression tree on diabetes that beats the mean", () => {
    const { X: D, labels } = readFixture("diabetes.csv");
    const y = Float64Array.from(labels, Number);
    const p = packOf(D, { task: "regression", values: y });
    const t = fitTreeMlrf(p, allRows(p.nRows), { max_depth: 4 }, 3, 0);
    expect(t.values.length).toBeGreaterThan(1);
    const mean = y.reduce((a, b) => a + b, 0) / y.length;
    let sse = 0;
    let sst = 0;
    for (let r = 0; r < D.length; r++) {
      sse += (t.values[leafRaw(t, D[r])] - y[r]) ** 2;
      sst += (mean - y[r]) ** 2;
      expect(leafBin(t, p, r)).toBe(leafRaw(t, D[r]));
    }
    expect(1 - sse / sst).toBeGreaterThan(0.3);
    expect(Array.from(t.gain).some((g) => g > 0)).toBe(true);
  });
});
