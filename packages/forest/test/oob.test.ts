import { describe, expect, it } from "vitest";
import { fitForest, allRows } from "../src/fit.ts";
import { OobSums, outOfBagRows, OOB_FRACTION_BITS } from "../src/oob.ts";
import { resolveParams } from "../src/options.ts";
import { buildPack } from "../src/pack.ts";
import { packLeaves } from "../src/forest.ts";
import type { FeatureInfo } from "../src/schema.ts";
import { classification, fixture, regression, random } from "./fixtures/data.ts";

const iris = buildPack(fixture("iris"));
const irisCodes = iris.target.task === "classification" ? iris.target.codes : new Uint16Array(0);
const diabetes = buildPack(fixture("diabetes"));
const rowsOf = (n: number, keep: (i: number) => boolean) => Uint32Array.from(Array.from({ length: n }, (_, i) => i).filter(keep));

describe("out-of-bag sums", () => {
  it("a tree's out-of-bag rows are exactly the rows its bootstrap left out: it fits the others perfectly", () => {
    // A fully grown tree predicts every row of its sample with probability 1 for the row's class (iris's rows
    // that share features share a class but two), so the rows it gets wrong or unsure are out of bag.
    const rows = allRows(iris.nRows);
    const params = resolveParams({ n_estimators: 5, random_state: 3 }, "classification");
    const forest = fitForest(iris, params);
    for (const tree of forest.trees) {
      const oob = new Set(outOfBagRows(iris, rows, params, tree.index));
      // About e^-1 of the rows are left out by a draw of n among n.
      expect(oob.size).toBeGreaterThan(35);
      expect(oob.size).toBeLessThan(75);
      const inBag = rowsOf(iris.nRows, (i) => !oob.has(i));
      const one = fitForest(iris, params, { treeIndices: [tree.index] });
      const proba = one.predictPackProba(iris, inBag);
      let sure = 0;
      for (let r = 0; r < inBag.length; r++) if (proba[r * 3 + irisCodes[inBag[r]]] === 1) sure++;
      expect(sure).toBeGreaterThanOrEqual(inBag.length - 2);
    }
  });

  it("sums merge exactly: groves in any order give the bytes of one piece", () => {
    for (const pack of [iris, diabetes]) {
      const rows = rowsOf(pack.nRows, (i) => i % 4 !== 0);
      const params = { n_estimators: 12, random_state: 9 };
      const whole = OobSums.of(pack, rows);
      fitForest(pack, params, { rows, oob: whole });
      const parts = [[0, 1, 2, 3, 4], [5, 6], [7, 8, 9, 10, 11]].map((treeIndices) => {
        const part = OobSums.of(pack, rows);
        fitForest(pack, params, { rows, treeIndices, oob: part });
        return part;
      });
      const merged = OobSums.of(pack, rows);
      for (const i of [2, 0, 1]) merged.merge(OobSums.load(parts[i].toBinary()));
      expect(merged.toBinary()).toEqual(whole.toBinary());
      expect(merged.counts.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    }
  });

  it("the decision function is the mean out-of-bag prediction, within the quantum", () => {
    const rows = allRows(diabetes.nRows);
    const params = resolveParams({ n_estimators: 8, random_state: 1 }, "regression");
    const sums = OobSums.of(diabetes, rows);
    const forest = fitForest(diabetes, params, { oob: sums });
    const expected = new Float64Array(rows.length);
    const counts = new Uint32Array(rows.length);
    for (const tree of forest.trees) {
      const oob = outOfBagRows(diabetes, rows, params, tree.index);
      const one = fitForest(diabetes, params, { treeIndices: [tree.index] });
      const pred = one.predictPack(diabetes, oob) as Float64Array;
      oob.forEach((r, k) => {
        expected[r] += pred[k];
        counts[r]++;
      });
    }
    const got = sums.decisionFunction();
    expect(Array.from(sums.counts)).toEqual(Array.from(counts));
    const unit = 2 ** (sums.exponent - OOB_FRACTION_BITS);
    let never = 0;
    for (let r = 0; r < rows.length; r++) {
      if (counts[r] === 0) {
        never++;
        expect(got[r]).toBe(0);
      } else expect(Math.abs(got[r] - expected[r] / counts[r])).toBeLessThanOrEqual(unit);
    }
    expect(sums.rowsWithoutOob).toBe(never);
    // A row is in all 8 bootstrap samples with probability (1 - 1/e)^8, about 2.6%.
    expect(never).toBeGreaterThan(0);
    expect(never).toBeLessThan(rows.length / 15);
    // The quantum is the least power of two covering |y|.
    const max = Math.max(...Array.from(diabetes.target.task === "regression" ? diabetes.target.values : []));
    expect(2 ** sums.exponent).toBeGreaterThanOrEqual(max);
    expect(2 ** (sums.exponent - 1)).toBeLessThan(max);
  });

  it("scores like sklearn's oob_score_: accuracy on separable classes, R² on a signal, chance on noise", () => {
    const rows = allRows(iris.nRows);
    const sums = OobSums.of(iris, rows);
    fitForest(iris, { n_estimators: 50, random_state: 0 }, { oob: sums });
    expect(sums.rowsWithoutOob).toBe(0);
    expect(sums.score(iris, rows)).toBeGreaterThan(0.9);

    const rnd = random(5);
    const x = Array.from({ length: 400 }, () => rnd());
    const noise = buildPack(regression([x], x.map(() => rnd())));
    const signal = buildPack(regression([x], x.map((v) => 10 * v + rnd() * 0.1)));
    const score = (pack: typeof noise) => {
      const s = OobSums.of(pack, allRows(400));
      fitForest(pack, { n_estimators: 30, random_state: 2 }, { oob: s });
      return s.score(pack, allRows(400));
    };
    expect(score(signal)).toBeGreaterThan(0.99);
    expect(score(noise)).toBeLessThan(0.05);
  });

  it("refuses without bootstrap samples, as sklearn does", () => {
    const sums = OobSums.of(iris, allRows(iris.nRows));
    expect(() => fitForest(iris, { n_estimators: 2, bootstrap: false }, { oob: sums })).toThrow(/only available if bootstrap=True/);
  });
});

describe("a tree's leaves for pack rows (packLeaves, which the OOB sums walk)", () => {
  it("are the same read from the pack's row-major bins, which a fit makes, as from its columns: categorical splits and missing values too", () => {
    const rnd = random(3);
    const xs = [0, 1, 2, 3].map((k) => Array.from({ length: 3000 }, () => (k === 1 && rnd() < 0.1 ? NaN : Math.floor(rnd() * 20))));
    const ds = classification(xs, xs[0].map((x, i) => String((x + xs[2][i]) % 4)));
    const features: FeatureInfo[] = ds.featureNames.map((name, f) =>
      f === 0 ? { name, kind: "categorical", column: f, categories: Array.from({ length: 20 }, (_, c) => `c${c}`) } : { name, kind: "numeric", column: f },
    );
    const pack = buildPack({ ...ds, features });
    const rows = rowsOf(3000, (i) => i % 3 !== 1);
    const forest = fitForest(pack, { n_estimators: 4, random_state: 1 });
    const rowBins = pack.rowBins;
    expect(rowBins).toBeDefined();
    for (const numeric of [false, true]) {
      const trees = forest.trees.filter((t) => (t.categorical === undefined) === numeric);
      if (!numeric) expect(trees.length).toBeGreaterThan(0);
      for (const t of trees) {
        const byRows = new Int32Array(rows.length);
        const byColumns = new Int32Array(rows.length);
        pack.rowBins = rowBins;
        packLeaves(t, pack, rows, null, byRows);
        pack.rowBins = undefined;
        packLeaves(t, pack, rows, null, byColumns);
        expect(byRows).toEqual(byColumns);
        expect(new Set(byRows).size).toBeGreaterThan(10);
      }
    }
    pack.rowBins = rowBins;
  });
});
