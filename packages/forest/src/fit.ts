import { fitTree } from "./builder.ts";
import { OptionsError } from "./errors.ts";
import { Forest } from "./forest.ts";
import { resolveParams, type FitParams, type ResolvedParams } from "./options.ts";
import type { DatasetPack } from "./pack.ts";
import { treeSeed } from "./rng.ts";
import type { OobSums } from "./oob.ts";
import type { Tree } from "./types.ts";

export interface FitOptions {
  /** Training rows of the pack (ascending); default all rows. */
  rows?: Uint32Array;
  /** Which trees of the build to grow; default 0..n_estimators-1. A grove passes its own range. */
  treeIndices?: number[];
  /** Accumulates each tree's out-of-bag predictions on `rows` (sized for them: OobSums.of(pack, rows)). */
  oob?: OobSums;
}

export function allRows(n: number): Uint32Array {
  const rows = new Uint32Array(n);
  for (let i = 0; i < n; i++) rows[i] = i;
  return rows;
}

/** Validates the tree indices of a fit against the build's n_estimators. */
export function resolveTreeIndices(params: ResolvedParams, treeIndices?: number[]): number[] {
  const indices = treeIndices ?? Array.from({ length: params.n_estimators }, (_, i) => i);
  for (const t of indices) {
    if (!Number.isInteger(t) || t < 0 || t >= params.n_estimators) {
      throw new OptionsError(`tree index ${t} is outside the build's ${params.n_estimators} trees`);
    }
  }
  return [...new Set(indices)].sort((a, b) => a - b);
}

/** Grows one tree of a build: its seed depends only on (random_state, index). `onSample`: see fitTree. */
export function growTree(pack: DatasetPack, rows: Uint32Array, params: ResolvedParams, index: number, onSample?: (weight: Float64Array) => void): Tree {
  return fitTree(pack, rows, params, treeSeed(params.random_state, index), index, onSample);
}

export function checkRows(pack: DatasetPack, rows: Uint32Array): void {
  if (rows.length === 0) throw new OptionsError("no training rows");
  for (let i = 0; i < rows.length; i++) {
    if (rows[i] >= pack.nRows) throw new OptionsError(`training row ${rows[i]} is outside the dataset's ${pack.nRows} rows`);
  }
}

/** Trains a forest — or a grove, when `treeIndices` names some of the build's trees — on one thread. */
export function fitForest(pack: DatasetPack, params: FitParams = {}, options: FitOptions = {}): Forest {
  const resolved = resolveParams(params, pack.target.task);
  const rows = options.rows ?? allRows(pack.nRows);
  checkRows(pack, rows);
  const { oob } = options;
  // A tree's out-of-bag rows come from the weights its fit drew, not from drawing them again (a third of the OOB cost).
  let weight: Float64Array | undefined;
  const keep = oob ? (w: Float64Array) => (weight = w) : undefined;
  const trees = resolveTreeIndices(resolved, options.treeIndices).map((t) => {
    const tree = growTree(pack, rows, resolved, t, keep);
    oob?.addTree(pack, rows, resolved, tree, weight);
    return tree;
  });
  return forestOf(pack, resolved, trees);
}

export function forestOf(pack: DatasetPack, params: ResolvedParams, trees: Tree[]): Forest {
  const classes = pack.target.task === "classification" ? pack.target.classes : [];
  return new Forest(pack.target.task, pack.featureNames, pack.labelName, classes, params, trees);
}
