import { CanopyError } from "./errors.ts";

export interface ClassificationMetrics {
  task: "classification";
  n: number;
  accuracy: number;
  macro_f1: number;
  log_loss: number;
  classes: string[];
  /** confusion_matrix[true][predicted], rows and columns in `classes` order. */
  confusion_matrix: number[][];
}

export interface RegressionMetrics {
  task: "regression";
  n: number;
  mse: number;
  mae: number;
  r2: number;
}

export type Metrics = ClassificationMetrics | RegressionMetrics;

/** Probability clip for log loss, as scikit-learn's log_loss(eps=1e-15) before 1.5. */
const LOG_LOSS_EPS = 1e-15;

/**
 * Classification metrics with scikit-learn's definitions. The prediction for a row is the argmax of its
 * probabilities (ties → lowest class index, like numpy.argmax).
 * - macro_f1: mean per-class F1 over classes present in y_true ∪ y_pred (f1_score(average="macro")).
 * - log_loss: each row is clipped to [1e-15, 1 - 1e-15] and renormalised to sum 1, then the mean of
 *   -ln p(true class) — sklearn's log_loss before 1.5 (newer versions no longer renormalise).
 */
export function classificationMetrics(
  trueCodes: ArrayLike<number>,
  proba: Float64Array,
  classes: string[],
): ClassificationMetrics {
  const n = trueCodes.length;
  const k = classes.length;
  if (n === 0) throw new CanopyError("cannot compute metrics on 0 rows");
  if (k === 0) throw new CanopyError("cannot compute classification metrics without classes");
  if (proba.length !== n * k) {
    throw new CanopyError(`probabilities have ${proba.length} values, expected ${n} rows × ${k} classes`);
  }
  // Flat counts while counting (the curve of a 100-tree build scores its held-out rows 100 times).
  const counts = new Int32Array(k * k);
  const lo = LOG_LOSS_EPS;
  const hi = 1 - LOG_LOSS_EPS;
  let correct = 0;
  let logLoss = 0;
  for (let i = 0; i < n; i++) {
    const t = trueCodes[i]!;
    if (!Number.isInteger(t) || t < 0 || t >= k) {
      throw new CanopyError(`row ${i}: true class code ${t} is outside 0..${k - 1}`);
    }
    const base = i * k;
    let best = 0;
    let bestP = proba[base]!;
    let rowSum = 0;
    for (let c = 0; c < k; c++) {
      const p = proba[base + c]!;
      if (p > bestP) {
        best = c;
        bestP = p;
      }
      rowSum += Math.min(Math.max(p, lo), hi);
    }
    const pTrue = Math.min(Math.max(proba[base + t]!, lo), hi) / rowSum;
    logLoss -= Math.log(pTrue);
    counts[t * k + best]++;
    if (best === t) correct++;
  }
  const confusion: number[][] = Array.from({ length: k }, (_, c) => Array.from(counts.subarray(c * k, (c + 1) * k)));

  let f1Sum = 0;
  let present = 0;
  for (let c = 0; c < k; c++) {
    const tp = confusion[c]![c]!;
    let trueCount = 0; // tp + fn
    let predCount = 0; // tp + fp
    for (let j = 0; j < k; j++) {
      trueCount += confusion[c]![j]!;
      predCount += confusion[j]![c]!;
    }
    if (trueCount === 0 && predCount === 0) continue; // absent from y_true ∪ y_pred: not averaged
    present++;
    // Equals the harmonic mean of precision and recall, and 0 when tp = 0 (sklearn's zero_division=0).
    f1Sum += (2 * tp) / (trueCount + predCount);
  }

  return {
    task: "classification",
    n,
    accuracy: correct / n,
    macro_f1: f1Sum / present,
    log_loss: logLoss / n,
    classes: classes.slice(),
    confusion_matrix: confusion,
  };
}

/**
 * Regression metrics with scikit-learn's definitions. r2 = 1 − SS_res / SS_tot; when the true values are
 * constant (SS_tot = 0) it is 1 for a perfect prediction and 0 otherwise (r2_score's force_finite=True).
 */
export function regressionMetrics(yTrue: ArrayLike<number>, yPred: ArrayLike<number>): RegressionMetrics {
  const n = yTrue.length;
  if (yPred.length !== n) throw new CanopyError(`got ${yPred.length} predictions for ${n} true values`);
  if (n === 0) throw new CanopyError("cannot compute metrics on 0 rows");
  let mean = 0;
  for (let i = 0; i < n; i++) mean += yTrue[i]!;
  mean /= n;
  let ssRes = 0;
  let absSum = 0;
  let ssTot = 0;
  for (let i = 0; i < n; i++) {
    const d = yTrue[i]! - yPred[i]!;
    ssRes += d * d;
    absSum += Math.abs(d);
    const m = yTrue[i]! - mean;
    ssTot += m * m;
  }
  const r2 = ssTot === 0 ? (ssRes === 0 ? 1 : 0) : 1 - ssRes / ssTot;
  return { task: "regression", n, mse: ssRes / n, mae: absSum / n, r2 };
}
