import { RandomForestClassifier, RandomForestRegression } from "ml-random-forest";
import { describe, expect, it } from "vitest";
import { fitForest } from "../src/fit.ts";
import { exportMlrf, hardVote, nextUp } from "../src/mlrf.ts";
import type { FitParams } from "../src/options.ts";
import { buildPack, type DatasetPack } from "../src/pack.ts";
import { shuffledIndices } from "../src/rng.ts";
import type { Tree } from "../src/types.ts";
import { fixture, rowsOf, split } from "./fixtures/data.ts";

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

  it("writes the canopy engine's all-finite threshold (Number.MAX_VALUE) as a finite JSON split", () => {
    const forest = { ...classForest, trees: [tree(0, { f: 0, t: Number.MAX_VALUE, l: leaf(1, 0, 0), r: leaf(0, 0, 1) })] };
    const json = roundTrip(exportMlrf(forest));
    expect(json.baseModel.estimators[0].root.splitValue).toBe(Number.MAX_VALUE); // nextUp would be Infinity → null
    const X = [[1e308, 0], [-1e308, 0], [0, 0]];
    expect(RandomForestClassifier.load(json).predict(X)).toEqual(Array.from(hardVote(forest, X)));
    expect(Array.from(hardVote(forest, X))).toEqual([0, 0, 0]);
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

// ---- trained forests --------------------------------------------------------------------------------------

/** Held-out rows of a fixture: a seeded 75/25 split, the forest trained on the 75. */
function trainedForest(name: "iris" | "digits" | "diabetes", params: FitParams) {
  const ds = fixture(name);
  const pack = buildPack(ds);
  const { train, test } = split(shuffledIndices(ds.nRows, 17), 0.75);
  const forest = fitForest(pack, { n_estimators: 20, random_state: 3, ...params }, { rows: train });
  return { ds, pack, forest, heldOut: rowsOf(ds, test) };
}

describe("exportMlrf on trained forests", () => {
  for (const name of ["iris", "digits"] as const) {
    it(`${name}: a 20-tree forest loads in ml-random-forest with identical hard votes on every held-out row`, () => {
      const { forest, heldOut } = trainedForest(name, {});
      const json = roundTrip(exportMlrf(forest));
      expect(heldOut.flat().some(Number.isNaN)).toBe(false); // NaN rows may differ (see missingLeftSplits)
      const mlrf = RandomForestClassifier.load(json);
      const ours = hardVote(forest, heldOut);
      expect(mlrf.predict(heldOut)).toEqual(Array.from(ours));
      // Hard votes are real predictions: close to the soft-vote labels Forest.predict gives.
      const soft = forest.predict(heldOut) as string[];
      const agree = soft.filter((label, r) => forest.classes[ours[r]] === label).length;
      expect(agree / heldOut.length).toBeGreaterThan(0.9);
    });
  }

  it("diabetes: a 20-tree regression forest loads in ml-random-forest with the forest's mean predictions", () => {
    const { forest, heldOut } = trainedForest("diabetes", { max_depth: 6 });
    const mlrf = RandomForestRegression.load(roundTrip(exportMlrf(forest)));
    const theirs = mlrf.predict(heldOut);
    const ours = forest.predict(heldOut) as Float64Array;
    expect(theirs).toHaveLength(heldOut.length);
    theirs.forEach((v, r) => expect(v).toBeCloseTo(ours[r], 9));
  });
});
