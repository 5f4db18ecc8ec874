import { RandomForestClassifier } from "ml-random-forest";
import { describe, expect, it } from "vitest";
import { allRows, buildPack, exportMlrf, fitForest, hardVote, OptionsError, shuffledIndices, type DatasetPack, type Tree } from "@canopy/forest";
import { fixture, rowsOf, split } from "../../packages/forest/test/fixtures/data.ts";
import { fitForestMlrf, fitTreeMlrf } from "../mlrf-engine.ts";

const roundTrip = (model: object) => JSON.parse(JSON.stringify(model));

/** Leaf slot reached by a raw row and, separately, by the pack's bins of that row. */
function leafRaw(t: Tree, row: number[]): number {
  let i = 0;
  while (t.feature[i] !== -1) i = row[t.feature[i]] <= t.threshold[i] ? i + 1 : t.right[i];
  return t.right[i];
}
function leafBin(t: Tree, pack: DatasetPack, r: number): number {
  let i = 0;
  while (t.feature[i] !== -1) i = pack.bins[t.feature[i] * pack.nRows + r] <= t.thresholdBin[i] ? i + 1 : t.right[i];
  return t.right[i];
}

describe("fitTreeMlrf", () => {
  const ds = fixture("iris");
  const X = rowsOf(ds);
  const pack = buildPack(ds);
  const rows = allRows(pack.nRows);
  const codes = (pack.target as { codes: Uint16Array }).codes;

  it("trains an iris tree that fits its training rows, with raw and bin thresholds in agreement", () => {
    const t = fitTreeMlrf(pack, rows, {}, 7, 3);
    expect(t.index).toBe(3);
    const forest = { task: "classification" as const, classes: ds.target.task === "classification" ? ds.target.classes : [], featureNames: ds.featureNames, trees: [t] };
    const predicted = hardVote(forest, X);
    let correct = 0;
    for (let r = 0; r < X.length; r++) if (predicted[r] === codes[r]) correct++;
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

  it("trains on the canopy engine's bootstrap sample for the same seed", () => {
    // min_samples_split above the sample size: every tree is one leaf holding the bootstrap's class frequencies.
    const leafOf = (engine: "canopy" | "ml-random-forest", random_state: number) =>
      Array.from((engine === "canopy" ? fitForest : fitForestMlrf)(pack, { n_estimators: 1, min_samples_split: 151, random_state }).trees[0].values);
    const canopy = leafOf("canopy", 0);
    const mlrf = leafOf("ml-random-forest", 0);
    mlrf.forEach((p, k) => expect(p).toBeCloseTo(canopy[k], 6));
    // Another seed draws another sample.
    expect(leafOf("ml-random-forest", 1).some((p, k) => Math.abs(p - canopy[k]) > 1e-3)).toBe(true);
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

  it("rejects options ml-random-forest has no equivalent for, and invalid ones", () => {
    expect(() => fitTreeMlrf(pack, rows, { criterion: "entropy" }, 1, 0)).toThrow(OptionsError);
    expect(() => fitTreeMlrf(pack, rows, { min_samples_leaf: 3 }, 1, 0)).toThrow(OptionsError);
    expect(() => fitTreeMlrf(pack, rows, { class_weight: "balanced" }, 1, 0)).toThrow(OptionsError);
    expect(() => fitTreeMlrf(pack, rows, { max_features: 0 }, 1, 0)).toThrow(OptionsError);
  });

  it("fitForestMlrf: a forest that predicts held-out iris and exports", () => {
    const ds2 = fixture("iris");
    const { train, test } = split(shuffledIndices(ds2.nRows, 5), 0.7);
    const forest = fitForestMlrf(pack, { n_estimators: 10 }, { rows: train });
    expect(forest.nTrees).toBe(10);
    const heldOut = rowsOf(ds2, test);
    const labels = forest.predict(heldOut) as string[];
    const truth = Array.from(test, (r) => forest.classes[codes[r]]);
    expect(labels.filter((l, i) => l === truth[i]).length / labels.length).toBeGreaterThan(0.85);
    const mlrf = RandomForestClassifier.load(roundTrip(exportMlrf(forest)));
    expect(mlrf.predict(heldOut)).toEqual(Array.from(hardVote(forest, heldOut)));
  });

  it("trains a regression tree on diabetes that beats the mean", () => {
    const d = fixture("diabetes");
    const D = rowsOf(d);
    const y = (d.target as { values: Float64Array }).values;
    const p = buildPack(d);
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
