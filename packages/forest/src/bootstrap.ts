import type { ResolvedParams } from "./options.ts";
import type { DatasetPack } from "./pack.ts";
import type { Rng } from "./rng.ts";

/** Weights kept elsewhere than in an array of sampleWeights' own: the split kernels' memory (split-kernels.ts). */
export interface BootstrapMemory {
  /** A zeroed weight per pack row for a tree on the training `rows`, valid until the next tree of this thread. */
  weights(rows: Uint32Array): Float64Array;
  /** The uniform bootstrap into weights(): draws times, weight[rows[rng.nextInt(m)]] += 1 (m: the rows). */
  drawUniform(m: number, draws: number, rng: Rng): void;
  /** The m rows with a positive weight, in their order (valid as weights()). */
  drawnRows(m: number): Uint32Array;
}

/**
 * Sample weights of one tree, as scikit-learn 1.9.1's forest gives them (sklearn/ensemble/_forest.py, `fit` and
 * `_parallel_build_trees`). The rows' weights are the pack's sample weights (1 without them) times the balanced
 * class weights; then
 * - with a bootstrap, rows are drawn with those weights as probabilities (uniformly without any weights) and a
 *   tree's weights are the draw counts alone (sklearn 1.9 changed this: it used to draw uniformly and multiply
 *   the counts by the weights, which leaves a rare class rarely drawn);
 * - without one, a tree's weights are the rows' weights.
 * Returns the weights per pack row and the rows with a positive weight, ascending.
 */
export function sampleWeights(
  pack: DatasetPack,
  rows: Uint32Array,
  params: ResolvedParams,
  rng: Rng,
  /** Where the weights are kept and uniform draws made (the split kernels), or null for an array of their own. */
  memory: BootstrapMemory | null = null,
): { weight: Float64Array; idx: Uint32Array } {
  const m = rows.length;
  const rowWeight = rowWeights(pack, rows, params);
  const weight = memory?.weights(rows) ?? new Float64Array(pack.nRows);
  if (params.bootstrap) {
    const total = rowWeight === null ? m : sum(rowWeight);
    const draws = bootstrapDraws(params.max_samples, m, total);
    if (rowWeight === null) {
      if (memory !== null) memory.drawUniform(m, draws, rng);
      else for (let k = 0; k < draws; k++) weight[rows[rng.nextInt(m)]] += 1;
    } else {
      // numpy's choice(p=w / sum(w)): the first row whose cumulative weight exceeds a uniform draw.
      const cumulative = new Float64Array(m);
      let acc = 0;
      for (let i = 0; i < m; i++) cumulative[i] = acc += rowWeight[i];
      for (let k = 0; k < draws; k++) {
        const u = rng.nextDouble() * acc;
        let lo = 0;
        let hi = m - 1;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (cumulative[mid] > u) hi = mid;
          else lo = mid + 1;
        }
        weight[rows[lo]] += 1;
      }
    }
  } else {
    for (let i = 0; i < m; i++) weight[rows[i]] = rowWeight === null ? 1 : rowWeight[i];
  }
  if (memory !== null) return { weight, idx: memory.drawnRows(m) };
  let n = 0;
  for (let i = 0; i < m; i++) if (weight[rows[i]] > 0) n++;
  const idx = new Uint32Array(n);
  let k = 0;
  for (let i = 0; i < m; i++) if (weight[rows[i]] > 0) idx[k++] = rows[i];
  return { weight, idx };
}

/**
 * Per training row (aligned with `rows`): sample weight × balanced class weight, or null when every row weighs 1.
 * sklearn's "balanced": sum(w) / (n_classes * sum of w per class), over the classes present in the rows.
 */
export function rowWeights(pack: DatasetPack, rows: Uint32Array, params: ResolvedParams): Float64Array | null {
  const m = rows.length;
  const sampleWeight = pack.weights;
  const balanced = params.class_weight === "balanced" && pack.target.task === "classification";
  if (sampleWeight === undefined && !balanced) return null;
  const out = new Float64Array(m);
  for (let i = 0; i < m; i++) out[i] = sampleWeight === undefined ? 1 : sampleWeight[rows[i]];
  if (balanced && pack.target.task === "classification") {
    const { codes, classes } = pack.target;
    const perClass = new Float64Array(classes.length);
    const present = new Uint8Array(classes.length);
    for (let i = 0; i < m; i++) {
      perClass[codes[rows[i]]] += out[i];
      present[codes[rows[i]]] = 1;
    }
    let nPresent = 0;
    for (const p of present) nPresent += p;
    const total = sum(out);
    for (let i = 0; i < m; i++) {
      const c = codes[rows[i]];
      out[i] = perClass[c] > 0 ? out[i] * (total / (nPresent * perClass[c])) : 0;
    }
  }
  return out;
}

function sum(a: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
}

/**
 * sklearn 1.9.1's `_get_n_samples_bootstrap`: all the rows (None), an integer count, or a fraction of the sum of
 * the weights, max(int(fraction × sum), 1) (the number of rows when unweighted).
 */
function bootstrapDraws(maxSamples: number | null, m: number, weightSum: number): number {
  if (maxSamples === null) return m;
  if (Number.isInteger(maxSamples) && maxSamples >= 1) return Math.min(maxSamples, Number.MAX_SAFE_INTEGER);
  return Math.max(Math.floor(maxSamples * weightSum), 1);
}
