import { OptionsError } from "./errors.ts";
import type { ForestOptions, Task } from "./types.ts";

/** Everything that defines a forest build, with scikit-learn's names. */
export interface FitParams extends ForestOptions {
  /** Trees in the whole build. Default 100. */
  n_estimators?: number;
  /** Build seed; tree t is seeded by treeSeed(random_state, t). Default 0. */
  random_state?: number;
}

/** FitParams with every default filled in; stored in models so that merge can check groves agree. */
export interface ResolvedParams {
  n_estimators: number;
  random_state: number;
  criterion: "gini" | "entropy" | "squared_error";
  max_depth: number | null;
  min_samples_split: number;
  min_samples_leaf: number;
  max_features: "sqrt" | "log2" | "all" | number;
  bootstrap: boolean;
  max_samples: number | null;
  class_weight: "balanced" | null;
  min_impurity_decrease: number;
}

const KNOWN = new Set([
  "n_estimators",
  "random_state",
  "criterion",
  "max_depth",
  "min_samples_split",
  "min_samples_leaf",
  "max_features",
  "bootstrap",
  "max_samples",
  "class_weight",
  "min_impurity_decrease",
]);

function fail(name: string, rule: string, got: unknown): never {
  throw new OptionsError(`${name}: must be ${rule} (got ${JSON.stringify(got)})`);
}

const isInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v);
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

/**
 * Models and grove tasks written before the learner became the only engine carry `engine: "canopy"` in their
 * parameters; it is read and dropped. Any other engine is refused: its trees came from another learner.
 */
const LEGACY_ENGINE = "engine";

/** Validates params and fills scikit-learn's defaults for the task. Throws OptionsError naming the option. */
export function resolveParams(params: FitParams, task: Task): ResolvedParams {
  for (const key of Object.keys(params)) {
    if (!KNOWN.has(key) && key !== LEGACY_ENGINE) throw new OptionsError(`unknown option "${key}"`);
  }
  const p = { ...params } as Record<string, unknown>;
  for (const [k, v] of Object.entries(p)) if (v === undefined) delete p[k];
  if (LEGACY_ENGINE in p) {
    if (p[LEGACY_ENGINE] !== "canopy") fail(LEGACY_ENGINE, '"canopy", the only learner (ml-random-forest is an export format)', p[LEGACY_ENGINE]);
    delete p[LEGACY_ENGINE];
  }

  const n_estimators = p.n_estimators ?? 100;
  if (!isInt(n_estimators) || n_estimators < 1) fail("n_estimators", "an integer >= 1", n_estimators);
  const random_state = p.random_state ?? 0;
  if (!isInt(random_state) || random_state < 0 || random_state > Number.MAX_SAFE_INTEGER) {
    fail("random_state", "an integer >= 0", random_state);
  }
  const criterion = p.criterion ?? (task === "classification" ? "gini" : "squared_error");
  if (criterion === "squared_error" && task === "classification") {
    throw new OptionsError('criterion: "squared_error" is for regression; use "gini" or "entropy"');
  }
  if ((criterion === "gini" || criterion === "entropy") && task === "regression") {
    throw new OptionsError(`criterion: "${criterion}" is for classification; use "squared_error"`);
  }
  if (criterion !== "gini" && criterion !== "entropy" && criterion !== "squared_error") {
    fail("criterion", '"gini" or "entropy" (classification), "squared_error" (regression)', criterion);
  }

  const max_depth = p.max_depth ?? null;
  if (max_depth !== null && (!isInt(max_depth) || max_depth < 1)) fail("max_depth", "an integer >= 1 or null", max_depth);

  const min_samples_split = p.min_samples_split ?? 2;
  if (!isNum(min_samples_split) || (isInt(min_samples_split) ? min_samples_split < 2 : min_samples_split <= 0 || min_samples_split > 1)) {
    fail("min_samples_split", "an integer >= 2 or a fraction in (0, 1)", min_samples_split);
  }
  const min_samples_leaf = p.min_samples_leaf ?? 1;
  if (!isNum(min_samples_leaf) || (isInt(min_samples_leaf) ? min_samples_leaf < 1 : min_samples_leaf <= 0 || min_samples_leaf >= 1)) {
    fail("min_samples_leaf", "an integer >= 1 or a fraction in (0, 1)", min_samples_leaf);
  }

  let max_features = p.max_features === undefined ? (task === "classification" ? "sqrt" : "all") : p.max_features;
  if (max_features === null) max_features = "all";
  if (
    !(max_features === "sqrt" || max_features === "log2" || max_features === "all") &&
    !(isInt(max_features) && max_features >= 1) &&
    !(isNum(max_features) && !isInt(max_features) && max_features > 0 && max_features < 1)
  ) {
    fail("max_features", '"sqrt", "log2", "all", an integer >= 1 or a fraction in (0, 1)', max_features);
  }

  const bootstrap = p.bootstrap ?? true;
  if (typeof bootstrap !== "boolean") fail("bootstrap", "true or false", bootstrap);
  const max_samples = p.max_samples ?? null;
  if (max_samples !== null) {
    if (!bootstrap) fail("max_samples", "null when bootstrap is false", max_samples);
    if (!isNum(max_samples) || (isInt(max_samples) ? max_samples < 1 : max_samples <= 0 || max_samples > 1)) {
      fail("max_samples", "null, an integer count >= 1 or a fraction in (0, 1)", max_samples);
    }
  }
  const class_weight = p.class_weight ?? null;
  if (class_weight !== null) {
    if (class_weight !== "balanced") fail("class_weight", '"balanced" or null', class_weight);
    if (task !== "classification") throw new OptionsError("class_weight: is for classification only");
  }
  const min_impurity_decrease = p.min_impurity_decrease ?? 0;
  if (!isNum(min_impurity_decrease) || min_impurity_decrease < 0) fail("min_impurity_decrease", "a number >= 0", min_impurity_decrease);

  return {
    n_estimators: n_estimators as number,
    random_state: random_state as number,
    criterion: criterion as ResolvedParams["criterion"],
    max_depth: max_depth as number | null,
    min_samples_split: min_samples_split as number,
    min_samples_leaf: min_samples_leaf as number,
    max_features: max_features as ResolvedParams["max_features"],
    bootstrap: bootstrap as boolean,
    max_samples: max_samples as number | null,
    class_weight: class_weight as "balanced" | null,
    min_impurity_decrease: min_impurity_decrease as number,
  };
}

/** Number of features drawn per split (sklearn's rules; at least 1). */
export function featuresPerSplit(maxFeatures: ResolvedParams["max_features"], nFeatures: number): number {
  let k: number;
  if (maxFeatures === "all") k = nFeatures;
  else if (maxFeatures === "sqrt") k = Math.floor(Math.sqrt(nFeatures));
  else if (maxFeatures === "log2") k = Math.floor(Math.log2(nFeatures));
  else if (Number.isInteger(maxFeatures)) k = maxFeatures;
  else k = Math.floor(maxFeatures * nFeatures);
  return Math.min(nFeatures, Math.max(1, k));
}

/** sklearn: an integer is a count, a fraction is ceil(fraction * n). */
export function countOrFraction(value: number, n: number): number {
  return Number.isInteger(value) && value >= 1 ? value : Math.ceil(value * n);
}
