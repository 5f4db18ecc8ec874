import { inShort, isBuildId, parseBuildSpec, SpecError, type BuildSpec, type DataNote, type ExtendRequest } from "@canopy/core";
import { UsageError } from "./errors.ts";

/** `canopy train` options that make up the build spec (commander's camelCase names). */
export interface SpecFlags {
  label?: string;
  categorical?: string[];
  numeric?: string[];
  drop?: string[];
  weightColumn?: string;
  maxBins?: number;
  minCategoryRows?: number;
  task?: "classification" | "regression" | "auto";
  trees?: number;
  groveSize?: number;
  seed?: number;
  maxDepth?: number;
  maxFeatures?: "sqrt" | "log2" | "all" | number;
  minSamplesLeaf?: number;
  minSamplesSplit?: number;
  classWeight?: "balanced";
  criterion?: "gini" | "entropy" | "squared_error";
  /** Only `false` is ever passed on (--no-bootstrap), so an unset option does not change the build id. */
  bootstrap?: boolean;
  maxSamples?: number;
  /** --oob-score: only `true` is passed on. */
  oobScore?: boolean;
  testFraction?: number;
  tolerateFailures?: number;
  tag?: Record<string, string>;
}

/** Build spec field -> the flag that sets it, so spec errors name what the user typed. */
export const FLAG_FOR_FIELD: Record<string, string> = {
  dataset: "<data.csv>",
  label: "--label",
  task: "--task",
  n_estimators: "--trees",
  grove_size: "--grove-size",
  seed: "--seed",
  max_depth: "--max-depth",
  max_features: "--max-features",
  min_samples_leaf: "--min-samples-leaf",
  min_samples_split: "--min-samples-split",
  class_weight: "--class-weight",
  criterion: "--criterion",
  bootstrap: "--no-bootstrap",
  max_samples: "--max-samples",
  oob_score: "--oob-score",
  test_fraction: "--test-fraction",
  tolerated_failures: "--tolerate-failures",
  tags: "--tag",
  columns: "--categorical/--numeric/--drop",
  weight_column: "--weight-column",
  max_bins: "--max-bins",
  min_category_rows: "--min-category-rows",
  partition_by: "--partition-by",
  min_partition_rows: "--min-partition-rows",
  fallback: "--fallback",
};

/** The raw spec object: only what the user set, so defaults stay the core's and equal runs share a build id. */
export function specInput(dataset: string, flags: SpecFlags): Record<string, unknown> {
  const input: Record<string, unknown> = { dataset };
  const set = (field: string, value: unknown) => {
    if (value !== undefined) input[field] = value;
  };
  set("label", flags.label);
  set("task", flags.task);
  set("n_estimators", flags.trees);
  set("grove_size", flags.groveSize);
  set("seed", flags.seed);
  set("max_depth", flags.maxDepth);
  set("max_features", flags.maxFeatures);
  set("min_samples_leaf", flags.minSamplesLeaf);
  set("min_samples_split", flags.minSamplesSplit);
  set("class_weight", flags.classWeight);
  set("criterion", flags.criterion);
  if (flags.bootstrap === false) input.bootstrap = false;
  set("max_samples", flags.maxSamples);
  if (flags.oobScore === true) input.oob_score = true;
  set("test_fraction", flags.testFraction);
  set("tolerated_failures", flags.tolerateFailures);
  set("tags", flags.tag);
  set("weight_column", flags.weightColumn);
  set("max_bins", flags.maxBins);
  set("min_category_rows", flags.minCategoryRows);
  if (flags.categorical || flags.numeric || flags.drop) {
    const columns: Record<string, string[]> = {};
    if (flags.categorical) columns.categorical = flags.categorical;
    if (flags.numeric) columns.numeric = flags.numeric;
    if (flags.drop) columns.drop = flags.drop;
    input.columns = columns;
  }
  return input;
}

/** A SpecError as one usage line, each bad field named by its flag. */
export function specUsageError(err: SpecError): UsageError {
  const lines = err.issues.map((i) => {
    const field = i.path.split(".")[0];
    const flag = FLAG_FOR_FIELD[field] ?? i.path;
    return `${flag}: ${i.message}`;
  });
  return new UsageError(lines.join("; "));
}

/** Validates with the core's schema; a SpecError becomes one usage line per bad flag, joined. */
export function buildSpec(dataset: string, flags: SpecFlags): BuildSpec {
  try {
    return parseBuildSpec(specInput(dataset, flags));
  } catch (err) {
    throw err instanceof SpecError ? specUsageError(err) : err;
  }
}

/**
 * `--extend <build-id> --trees N` (train and publish) as the runtime's request. The other spec flags the user typed
 * go along as `expect`: the core refuses those that differ from the build's (they would make another build).
 */
export function extendRequest(buildId: string, data: string | undefined, flags: SpecFlags): ExtendRequest {
  if (!isBuildId(buildId)) throw new UsageError(`--extend: ${inShort(buildId)} is not a build id (b- and 16 hex digits)`);
  if (data !== undefined) throw new UsageError(`--extend trains on the data of build ${buildId}; leave out ${data}`);
  if (flags.trees === undefined) throw new UsageError(`--extend needs --trees: how many trees build ${buildId} should have in all`);
  const { dataset: _dataset, n_estimators: _trees, ...expect } = specInput("", flags);
  return { extend: buildId, trees: flags.trees, ...(Object.keys(expect).length > 0 ? { expect } : {}) };
}

/** What the data made of the spec (core's data notes), one line each: a warning about an option names its flag. */
export function noteLines(notes: readonly DataNote[]): string[] {
  return notes.map((n) => {
    const flag = n.path !== undefined ? `${FLAG_FOR_FIELD[n.path] ?? n.path}: ` : "";
    return n.level === "warning" ? `warning: ${flag}${n.message}` : `${flag}${n.message}`;
  });
}
