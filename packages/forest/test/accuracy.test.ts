import { describe, expect, it } from "vitest";
import { evaluate } from "../src/evaluate.ts";
import { fitForest } from "../src/fit.ts";
import type { ClassificationMetrics, RegressionMetrics } from "../src/metrics.ts";
import { buildPack } from "../src/pack.ts";
import { shuffledIndices } from "../src/rng.ts";
import { fixture, rowsOf, split } from "./fixtures/data.ts";

/** Every split below: the first 75% of shuffledIndices(n, SPLIT_SEED) train, the rest test (both ascending). */
const SPLIT_SEED = 2024;

/**
 * scikit-learn's R² on the diabetes test split: RandomForestRegressor(n_estimators=100) with its defaults
 * (squared_error, max_features=1.0, bootstrap=True), trained on the same 332 training rows and scored on the same
 * 110 test rows, mean over random_state 0..9 (standard deviation 0.0099); scikit-learn 1.9.1, numpy 2.4.6.
 * The split indices were written from shuffledIndices(442, 2024) and read back in Python.
 */
const SKLEARN_DIABETES_R2 = 0.37;

describe("accuracy on the fixtures (fixed 75/25 splits)", () => {
  it("digits, 50 trees: accuracy >= 0.95", () => {
    const ds = fixture("digits");
    const pack = buildPack(ds);
    const { train, test } = split(shuffledIndices(ds.nRows, SPLIT_SEED), 0.75);
    const forest = fitForest(pack, { n_estimators: 50, random_state: 0 }, { rows: train });
    const m = evaluate(forest, pack, test) as ClassificationMetrics;
    expect(m.task).toBe("classification");
    expect(m.n).toBe(test.length);
    expect(m.accuracy).toBeGreaterThanOrEqual(0.95);
    expect(m.macro_f1).toBeGreaterThanOrEqual(0.94);
    // Raw rows through raw thresholds predict what the binned evaluation scored.
    const predicted = forest.predict(rowsOf(ds, test)) as string[];
    const codes = (ds.target as { codes: Uint16Array }).codes;
    const correct = predicted.filter((label, i) => label === forest.classes[codes[test[i]]]).length;
    expect(correct / test.length).toBe(m.accuracy);
  });

  it("diabetes regression, 100 trees: R² within 0.05 of scikit-learn's on the same split", () => {
    const ds = fixture("diabetes");
    const pack = buildPack(ds);
    const { train, test } = split(shuffledIndices(ds.nRows, SPLIT_SEED), 0.75);
    expect([train.length, test.length]).toEqual([332, 110]);
    const forest = fitForest(pack, { n_estimators: 100, random_state: 0 }, { rows: train });
    const m = evaluate(forest, pack, test) as RegressionMetrics;
    expect(m.task).toBe("regression");
    expect(Math.abs(m.r2 - SKLEARN_DIABETES_R2)).toBeLessThanOrEqual(0.05);
    // The forest must beat predicting the training mean by a wide margin.
    const y = (ds.target as { values: Float64Array }).values;
    const mean = train.reduce((s, r) => s + y[r], 0) / train.length;
    const baseline = test.reduce((s, r) => s + (y[r] - mean) ** 2, 0) / test.length;
    expect(m.mse).toBeLessThan(baseline * 0.75);
  });

  it("iris (string labels), 50 trees: accurate, and predicts class names", () => {
    const ds = fixture("iris");
    const pack = buildPack(ds);
    const { train, test } = split(shuffledIndices(ds.nRows, SPLIT_SEED), 0.75);
    const forest = fitForest(pack, { n_estimators: 50, random_state: 0 }, { rows: train });
    const m = evaluate(forest, pack, test) as ClassificationMetrics;
    // scikit-learn scores 0.89-0.92 on this 37-row test split (random_state 0..4).
    expect(m.accuracy).toBeGreaterThanOrEqual(0.85);
    expect(m.classes).toEqual(["setosa", "versicolor", "virginica"]);
    expect(forest.predict([[5.0, 3.4, 1.5, 0.2], [6.7, 3.0, 5.2, 2.3]])).toEqual(["setosa", "virginica"]);
  });
});
