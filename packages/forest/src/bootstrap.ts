import type { ResolvedParams } from "./options.ts";
import type { DatasetPack } from "./pack.ts";
import type { Rng } from "./rng.ts";

/**
 * Sample weights of one tree, as scikit-learn's forest draws them (sklearn/ensemble/_forest.py,
 * `_parallel_build_trees`): bootstrap draw counts (or 1) over the training rows, times balanced class weights.
 * Returns the weights per pack row and the rows with a positive weight, ascending.
 */
export function sampleWeights(pack: DatasetPack, rows: Uint32Array, params: ResolvedParams, rng: Rng): { weight: Float64Array; idx: Uint32Array } {
  const weight = new Float64Array(pack.nRows);
  const m = rows.length;
  if (params.bootstrap) {
    const draws = params.max_samples === null ? m : Math.max(1, countOrFractionRound(params.max_samples, m));
    for (let k = 0; k < draws; k++) weight[rows[rng.nextInt(m)]] += 1;
  } else {
    for (let i = 0; i < m; i++) weight[rows[i]] = 1;
  }
  if (params.class_weight === "balanced" && pack.target.task === "classification") {
    const { codes, classes } = pack.target;
    const counts = new Float64Array(classes.length);
    for (let i = 0; i < m; i++) counts[codes[rows[i]]]++;
    let present = 0;
    for (const c of counts) if (c > 0) present++;
    // sklearn: n_samples / (n_classes * bincount(y)), over the classes present in y.
    for (let i = 0; i < m; i++) {
      const r = rows[i];
      weight[r] *= m / (present * counts[codes[r]]);
    }
  }
  let n = 0;
  for (let i = 0; i < m; i++) if (weight[rows[i]] > 0) n++;
  const idx = new Uint32Array(n);
  let k = 0;
  for (let i = 0; i < m; i++) if (weight[rows[i]] > 0) idx[k++] = rows[i];
  return { weight, idx };
}

/** sklearn's max_samples: an integer count, or round(fraction * n). */
function countOrFractionRound(v: number, n: number): number {
  return Number.isInteger(v) && v >= 1 ? Math.min(v, Number.MAX_SAFE_INTEGER) : Math.round(v * n);
}
