import { describe, expect, it } from "vitest";
import { CanopyError } from "../src/errors.ts";
import { classificationMetrics, regressionMetrics } from "../src/metrics.ts";

const EPS = 1e-15;

describe("classificationMetrics", () => {
  // 5 rows, 3 classes. Row 1 is a tie between a and b (argmax → a). Rows 3 and 4 are wrong.
  const trueCodes = [0, 0, 1, 1, 2];
  const proba = new Float64Array([
    0.7, 0.2, 0.1, //
    0.4, 0.4, 0.2, //
    0.1, 0.8, 0.1, //
    0.6, 0.3, 0.1, //
    0.2, 0.5, 0.3, //
  ]);

  it("computes accuracy, confusion matrix, macro F1 and log loss", () => {
    const m = classificationMetrics(trueCodes, proba, ["a", "b", "c"]);
    expect(m.task).toBe("classification");
    expect(m.n).toBe(5);
    expect(m.classes).toEqual(["a", "b", "c"]);
    // predicted: a a b a b
    expect(m.confusion_matrix).toEqual([
      [2, 0, 0],
      [1, 1, 0],
      [0, 1, 0],
    ]);
    expect(m.accuracy).toBeCloseTo(3 / 5, 15);
    // F1 = 2tp / (2tp + fp + fn): a = 4/5, b = 2/4, c = 0/1.
    expect(m.macro_f1).toBeCloseTo((0.8 + 0.5 + 0) / 3, 15);
    const expectedLoss = -(Math.log(0.7) + Math.log(0.4) + Math.log(0.8) + Math.log(0.3) + Math.log(0.3)) / 5;
    expect(m.log_loss).toBeCloseTo(expectedLoss, 12);
  });

  it("averages F1 only over classes present in y_true or y_pred", () => {
    // Same rows with a 4th class "d" that is never true nor predicted: it must not dilute the average.
    const p4 = new Float64Array(20);
    for (let i = 0; i < 5; i++) p4.set(proba.subarray(i * 3, i * 3 + 3), i * 4);
    const m = classificationMetrics(trueCodes, p4, ["a", "b", "c", "d"]);
    expect(m.macro_f1).toBeCloseTo((0.8 + 0.5 + 0) / 3, 15);
    expect(m.confusion_matrix[3]).toEqual([0, 0, 0, 0]);
  });

  it("counts a class that is predicted but never true, with F1 0", () => {
    // true: a a ; predicted: a b → a: tp 1, fn 1 → 2/3; b: fp 1 → 0.
    const m = classificationMetrics([0, 0], new Float64Array([0.9, 0.1, 0.2, 0.8]), ["a", "b"]);
    expect(m.macro_f1).toBeCloseTo((2 / 3 + 0) / 2, 15);
    expect(m.accuracy).toBe(0.5);
  });

  it("gives 1 for perfect predictions", () => {
    const m = classificationMetrics(new Uint16Array([1, 0, 1]), new Float64Array([0, 1, 1, 0, 0, 1]), ["x", "y"]);
    expect(m.accuracy).toBe(1);
    expect(m.macro_f1).toBe(1);
    // Each row clips 1 → 1 - 1e-15 and 0 → 1e-15; the row then sums to 1 again.
    expect(m.log_loss).toBeCloseTo(-Math.log(1 - EPS), 20);
    expect(m.log_loss).toBeGreaterThan(0);
  });

  it("clips zero probabilities to 1e-15 in the log loss", () => {
    const m = classificationMetrics([1], new Float64Array([1, 0]), ["x", "y"]);
    expect(m.log_loss).toBeCloseTo(-Math.log(EPS), 10);
    expect(m.log_loss).toBeCloseTo(15 * Math.LN10, 10); // -ln(1e-15)
  });

  it("renormalises rows that do not sum to 1 before the log loss", () => {
    // [0.2, 0.2] → [0.5, 0.5]; [0.3, 0.1] → [0.75, 0.25].
    const m = classificationMetrics([0, 1], new Float64Array([0.2, 0.2, 0.3, 0.1]), ["x", "y"]);
    expect(m.log_loss).toBeCloseTo((Math.log(2) + Math.log(4)) / 2, 12);
  });

  it("breaks argmax ties toward the lowest class index", () => {
    const m = classificationMetrics([2, 2], new Float64Array([0.25, 0.5, 0.5, 1 / 3, 1 / 3, 1 / 3]), ["a", "b", "c"]);
    expect(m.confusion_matrix[2]).toEqual([1, 1, 0]);
  });

  it("rejects inconsistent inputs with one-line errors", () => {
    expect(() => classificationMetrics([0, 1], new Float64Array(3), ["a", "b"])).toThrow(
      "probabilities have 3 values, expected 2 rows × 2 classes",
    );
    expect(() => classificationMetrics([0, 2], new Float64Array(4), ["a", "b"])).toThrow(
      "row 1: true class code 2 is outside 0..1",
    );
    expect(() => classificationMetrics([], new Float64Array(0), ["a"])).toThrow(CanopyError);
  });
});

describe("regressionMetrics", () => {
  it("computes mse, mae and r2", () => {
    const m = regressionMetrics([3, -0.5, 2, 7], new Float64Array([2.5, 0, 2, 8]));
    expect(m).toMatchObject({ task: "regression", n: 4 });
    // residuals 0.5, -0.5, 0, -1
    expect(m.mse).toBeCloseTo((0.25 + 0.25 + 0 + 1) / 4, 15);
    expect(m.mae).toBeCloseTo((0.5 + 0.5 + 0 + 1) / 4, 15);
    // mean 2.875; SS_tot = 0.125² + 3.375² + 0.875² + 4.125² = 29.1875; SS_res = 1.5
    expect(m.r2).toBeCloseTo(1 - 1.5 / 29.1875, 14);
  });

  it("gives a negative r2 for predictions worse than the mean", () => {
    const m = regressionMetrics([1, 2, 3], [3, 2, 1]);
    // SS_res = 8, SS_tot = 2
    expect(m.r2).toBeCloseTo(1 - 8 / 2, 14);
  });

  it("follows sklearn when the true values are constant", () => {
    expect(regressionMetrics([2, 2, 2], [2, 2, 2]).r2).toBe(1);
    const off = regressionMetrics([2, 2, 2], [2, 2, 3]);
    expect(off.r2).toBe(0);
    expect(off.mse).toBeCloseTo(1 / 3, 15);
    expect(off.mae).toBeCloseTo(1 / 3, 15);
  });

  it("rejects mismatched or empty inputs", () => {
    expect(() => regressionMetrics([1, 2], [1])).toThrow("got 1 predictions for 2 true values");
    expect(() => regressionMetrics([], [])).toThrow("cannot compute metrics on 0 rows");
  });
});
