import { createHash } from "node:crypto";
import { shuffledIndices, type DatasetPack } from "@canopy/forest";
import { SpecError } from "./errors.ts";
import { foldSplit, kFoldAssignment, stratifiedKFoldAssignment } from "./folds.ts";
import { canonicalJson, forestOptionIssues, groveCount, type BuildSpec } from "./spec.ts";

export interface GrovePlan {
  grove: number;
  /** Trees [treeStart, treeEnd). */
  treeStart: number;
  treeEnd: number;
}

export interface RowSplit {
  train: Uint32Array;
  test: Uint32Array;
}

export interface BuildPlan {
  buildId: string;
  groves: GrovePlan[];
  split: RowSplit;
}

/** What planning needs from a pack; the full pack fits. A CV build's split needs the labels (the full pack's target). */
export type PackSummary = Pick<DatasetPack, "hash" | "nRows"> & { target: { task: DatasetPack["target"]["task"] } | DatasetPack["target"] };

/**
 * Same data + same spec = same id, so re-submitting is idempotent. The dataset reference is left out (the
 * pack hash already names the data, wherever it was read from); everything else in the spec counts, tags included.
 */
export function buildIdFor(packHash: string, spec: BuildSpec): string {
  const { dataset: _ignored, ...rest } = spec;
  const digest = createHash("sha256").update(`canopy-build-v1\n${packHash}\n${canonicalJson(rest)}`).digest("hex");
  return `b-${digest.slice(0, 16)}`;
}

/** Cuts trees 0..n-1 into consecutive groves of grove_size (the last may be smaller). */
export function planGroves(nEstimators: number, groveSize: number): GrovePlan[] {
  const groves: GrovePlan[] = [];
  for (let g = 0; g < groveCount(nEstimators, groveSize); g++) {
    groves.push({ grove: g, treeStart: g * groveSize, treeEnd: Math.min(nEstimators, (g + 1) * groveSize) });
  }
  return groves;
}

/** Salt ("SPLT") so the split's random stream differs from the trees', which derive from the same seed. */
const SPLIT_SALT = 0x53504c54;

/**
 * The train/test split every trainer and the evaluator recompute (it is never shipped): the engine's seeded
 * Fisher-Yates shuffle, `shuffledIndices(nRows, seed ^ "SPLT")`; the first ceil(nRows * testFraction) shuffled
 * rows are the test set (scikit-learn's rounding). Both halves are returned ascending.
 */
export function splitRows(nRows: number, testFraction: number, seed: number): RowSplit {
  if (!Number.isInteger(nRows) || nRows < 0) throw new RangeError(`nRows must be an integer >= 0 (got ${nRows})`);
  if (!(testFraction >= 0 && testFraction < 1)) throw new RangeError(`testFraction must be in [0, 1) (got ${testFraction})`);
  const order = shuffledIndices(nRows, (seed ^ SPLIT_SALT) >>> 0);
  const nTest = Math.ceil(nRows * testFraction);
  return { test: order.slice(0, nTest).sort(), train: order.slice(nTest).sort() };
}

/**
 * The rows a build trains on and scores: the held-out split of `splitRows`, or for a CV build (`spec.cv`) fold k of
 * the training rows scored and the other folds trained on (StratifiedKFold on the labels for classification, KFold
 * for regression, as scikit-learn 1.9.1 without shuffling). The trainers, the aggregator and planning all call this.
 */
export function buildSplit(spec: Pick<BuildSpec, "test_fraction" | "seed" | "cv">, pack: Pick<PackSummary, "nRows" | "target">): RowSplit {
  const outer = splitRows(pack.nRows, spec.test_fraction, spec.seed);
  if (!spec.cv) return outer;
  const { n_splits: k, fold } = spec.cv;
  const target = pack.target;
  let assignment: Uint32Array;
  if (target.task === "classification") {
    if (!("codes" in target)) throw new RangeError("a stratified CV split needs the pack's labels");
    const labels = new Uint16Array(outer.train.length);
    for (let i = 0; i < labels.length; i++) labels[i] = target.codes[outer.train[i]];
    assignment = stratifiedKFoldAssignment(labels, k);
  } else assignment = kFoldAssignment(outer.train.length, k);
  return foldSplit(outer.train, assignment, fold);
}

/** Plans a build of `spec` over `pack`, checking what only the data can tell (the task, enough rows). */
export function planBuild(spec: BuildSpec, pack: PackSummary): BuildPlan {
  const task = pack.target.task;
  const issues: { path: string; message: string }[] = [];
  if (spec.task !== "auto" && spec.task !== task)
    issues.push({ path: "task", message: `is "${spec.task}" but the dataset was prepared for ${task}` });
  if (spec.task === "auto") {
    for (const issue of forestOptionIssues(spec, task)) issues.push({ ...issue, message: `${issue.message} (the label makes this ${task})` });
  }
  let split = splitRows(pack.nRows, spec.test_fraction, spec.seed);
  if (spec.cv && split.train.length > 0) {
    try {
      const folds = buildSplit(spec, pack);
      split = folds;
      if (folds.train.length === 0) issues.push({ path: "cv", message: `fold ${spec.cv.fold} of ${spec.cv.n_splits} leaves no rows to train on` });
    } catch (err) {
      if (!(err instanceof SpecError)) throw err;
      issues.push(...err.issues);
    }
  }
  if (split.train.length === 0)
    issues.push({ path: "test_fraction", message: `leaves no training rows out of ${pack.nRows}` });
  if (issues.length > 0) throw new SpecError(issues);
  return { buildId: buildIdFor(pack.hash, spec), groves: planGroves(spec.n_estimators, spec.grove_size), split };
}
