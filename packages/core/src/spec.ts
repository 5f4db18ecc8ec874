import { z } from "zod";
import { MAX_WIDE_BINS, OptionsError, resolveParams, type FitParams, type ForestOptions } from "@canopy/forest";
import { inShort, SpecError } from "./errors.ts";

/** What a user asks for. Forest options sit at the top level with scikit-learn's names, like its constructor. */
export interface BuildSpec extends ForestOptions {
  /** Where the CSV lives: a path or an s3:// URL. The runtime resolves it; the core never reads it. */
  dataset: string;
  /** Label column; default the last one. */
  label?: string;
  task: "classification" | "regression" | "auto";
  n_estimators: number;
  grove_size: number;
  seed: number;
  test_fraction: number;
  tolerated_failures: number;
  tags?: Record<string, string>;
  /** Column kinds forced, or columns left out (--categorical, --numeric, --drop). */
  columns?: ColumnOverrides;
  /** The column of per-row sample weights (scikit-learn's fit(sample_weight=...)); not a feature. */
  weight_column?: string;
  /** Bins per numeric feature, 2-65535 (default 255); above 255 a feature's bins take 16 bits. */
  max_bins?: number;
  /** Categories seen in fewer rows are grouped as "(other)" (default 1: none are). */
  min_category_rows?: number;
  /**
   * Out-of-bag score, scikit-learn 1.9.1's oob_score=True: report.json's oob_score (accuracy or R² of each training
   * row predicted by the trees that did not draw it) and builds/<id>/oob.bin. Needs bootstrap. false is dropped, so
   * it names the same build as leaving it out. The model is the same bytes either way.
   */
  oob_score?: boolean;
  /**
   * A cross-validation build (a study's member): of the training rows (after the held-out split), fold `fold` of
   * `n_splits` is scored and the rest trains; folds as scikit-learn 1.9.1's StratifiedKFold (classification) or
   * KFold (regression) without shuffling (folds.ts).
   */
  cv?: CvFold;
}

export interface CvFold {
  n_splits: number;
  fold: number;
}

/** Most folds a study may ask for (scikit-learn has no cap; 20 keeps a study's fan-out within its limits). */
export const MAX_CV_SPLITS = 20;

export interface ColumnOverrides {
  categorical?: string[];
  numeric?: string[];
  drop?: string[];
}

export const MAX_TREES = 100_000;

const isInt = (x: number) => Number.isInteger(x);
/** A number field whose type and range errors share one message, so users see the rule, not zod's wording. */
const num = (message: string, ok: (x: number) => boolean) =>
  z.number({ error: message }).refine(ok, { error: message });
const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  num(`must be an integer >= ${min}`, (x) => isInt(x) && x >= min).refine((x) => x <= max, { error: `must be at most ${max}` });

/**
 * The engine's ForestOptions. Their rules (types, ranges, which criterion fits which task) belong to the engine
 * (`resolveParams`), so the schema only names them and `forestOptionIssues` asks the engine. Reused by the
 * task codec.
 */
export const forestOptionsShape = {
  criterion: z.unknown().optional(),
  max_depth: z.unknown().optional(),
  min_samples_split: z.unknown().optional(),
  min_samples_leaf: z.unknown().optional(),
  max_features: z.unknown().optional(),
  bootstrap: z.unknown().optional(),
  max_samples: z.unknown().optional(),
  class_weight: z.unknown().optional(),
  min_impurity_decrease: z.unknown().optional(),
} satisfies Record<keyof ForestOptions, z.ZodType>;

const FOREST_OPTIONS = Object.keys(forestOptionsShape) as (keyof ForestOptions)[];

/**
 * The engine's verdict on a spec's forest options, one issue per bad option. With task "auto" the options that
 * depend on the task (criterion, class_weight) wait until the data decides it (planBuild asks again).
 */
export function forestOptionIssues(spec: ForestOptions, task: BuildSpec["task"]): { path: string; message: string }[] {
  const issues: { path: string; message: string }[] = [];
  const engineTask = task === "regression" ? "regression" : "classification";
  const check = (options: ForestOptions, path?: string) => {
    try {
      resolveParams(options, engineTask);
      return true;
    } catch (error) {
      if (!(error instanceof OptionsError)) throw error;
      const [field, ...rest] = error.message.split(": ");
      issues.push({ path: path ?? field, message: rest.length > 0 ? rest.join(": ") : error.message });
      return false;
    }
  };
  let ok = true;
  for (const key of FOREST_OPTIONS) {
    if (spec[key] === undefined) continue;
    // Not knowing the task yet, a criterion or class weight is fine if some task takes it.
    if (task === "auto" && (key === "criterion" || key === "class_weight") && resolvesFor("regression", { [key]: spec[key] })) continue;
    ok = check({ [key]: spec[key] } as ForestOptions, key) && ok;
  }
  // Rules between options (max_samples needs bootstrap), once each is fine on its own.
  if (ok) {
    const all: ForestOptions = {};
    for (const key of FOREST_OPTIONS) {
      if (spec[key] === undefined || (task === "auto" && (key === "criterion" || key === "class_weight"))) continue;
      (all as Record<string, unknown>)[key] = spec[key];
    }
    check(all);
  }
  return issues;
}

function resolvesFor(task: "classification" | "regression", options: ForestOptions): boolean {
  try {
    resolveParams(options, task);
    return true;
  } catch {
    return false;
  }
}

const tagKey = /^[A-Za-z0-9_.:/=+@-]{1,128}$/;
const columnList = z.array(z.string().min(1, { error: "column names are non-empty" }), { error: "must be a list of column names" });

const specSchema = z
  .strictObject({
    dataset: z.string({ error: "must be a non-empty string" }).min(1, { error: "must be a non-empty string" }),
    label: z.string({ error: "must be a non-empty string" }).min(1, { error: "must be a non-empty string" }).optional(),
    task: z.enum(["classification", "regression", "auto"], { error: 'must be "classification", "regression" or "auto"' }).default("auto"),
    n_estimators: int(1, MAX_TREES).default(100),
    grove_size: int(1).default(10),
    seed: int(0, 0xffff_ffff).default(0),
    test_fraction: num("must be a number >= 0 and < 1", (x) => x >= 0 && x < 1).default(0.25),
    tolerated_failures: int(0).default(0),
    tags: z
      .record(
        z.string().regex(tagKey, { error: "tag names are 1-128 characters of letters, digits and _.:/=+@-" }),
        z.string({ error: "tag values must be strings" }).max(256, { error: "tag values are at most 256 characters" }),
        { error: "must be an object of string values" },
      )
      .refine((t) => Object.keys(t).length <= 50, { error: "at most 50 tags" })
      .optional(),
    columns: z
      .strictObject({
        categorical: columnList.optional(),
        numeric: columnList.optional(),
        drop: columnList.optional(),
      })
      .optional(),
    weight_column: z.string({ error: "must be a column name" }).min(1, { error: "must be a column name" }).optional(),
    max_bins: int(2, MAX_WIDE_BINS).optional(),
    min_category_rows: int(1).optional(),
    oob_score: z.boolean({ error: "must be true or false" }).optional(),
    cv: z.strictObject({ n_splits: int(2, MAX_CV_SPLITS), fold: int(0, MAX_CV_SPLITS - 1) }, { error: "must be { n_splits, fold }" }).optional(),
    ...forestOptionsShape,
  });

/** Rules that relate fields; checked only once every field is valid on its own. */
function crossFieldIssues(s: BuildSpec): { path: string; message: string }[] {
  const issues: { path: string; message: string }[] = [];
  const add = (path: string, message: string, got: unknown) => issues.push({ path, message: `${message} (got ${show(got)})` });
  const groves = groveCount(s.n_estimators, s.grove_size);
  if (s.grove_size > s.n_estimators) add("grove_size", `must be <= n_estimators (${s.n_estimators})`, s.grove_size);
  else if (s.tolerated_failures > Math.floor(groves / 2))
    add(
      "tolerated_failures",
      `must be at most half the groves (${Math.floor(groves / 2)} of ${groves}), so a completed model keeps at least half its trees`,
      s.tolerated_failures,
    );
  if (s.cv && s.cv.fold >= s.cv.n_splits) add("cv.fold", `must be below n_splits (${s.cv.n_splits})`, s.cv.fold);
  issues.push(...forestOptionIssues(s, s.task));
  // sklearn 1.9.1 raises the same: no row is out of bag when every tree sees every row.
  if (s.oob_score && s.bootstrap === false)
    issues.push({ path: "oob_score", message: "needs the bootstrap; scikit-learn: Out of bag estimation only available if bootstrap=True (bootstrap is false)" });
  return issues;
}

export function groveCount(nEstimators: number, groveSize: number): number {
  return Math.ceil(nEstimators / groveSize);
}

/** A value as short JSON for messages (at most 60 characters). */
export const show = (value: unknown): string => inShort(value);

/** Zod issues as "field: rule (got value)" lines, nested union issues collapsed into their field's message. */
export function issueLines(issues: readonly z.core.$ZodIssue[]): { path: string; message: string }[] {
  const out: { path: string; message: string }[] = [];
  for (const issue of issues) {
    const path = issue.path.map(String).join(".");
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) out.push({ path: path ? `${path}.${key}` : key, message: "unknown field" });
      continue;
    }
    const input = (issue as { input?: unknown }).input;
    if (input === undefined && issue.code === "invalid_type") {
      out.push({ path, message: "is required" });
      continue;
    }
    out.push({ path, message: `${issue.message} (got ${show(input)})` });
  }
  return out;
}

/** Validates and fills defaults. Throws SpecError listing every bad field, one per line. */
export function parseBuildSpec(input: unknown): BuildSpec {
  if (typeof input !== "object" || input === null || Array.isArray(input))
    throw new SpecError([{ path: "", message: `a build spec must be a JSON object (got ${show(input)})` }]);
  const result = specSchema.safeParse(input, { reportInput: true });
  if (!result.success) throw new SpecError(issueLines(result.error.issues));
  const spec = dropUndefined(result.data) as BuildSpec;
  if (spec.oob_score === false) delete spec.oob_score;
  const issues = crossFieldIssues(spec);
  if (issues.length > 0) throw new SpecError(issues);
  return spec;
}

/** The engine parameters for one build: everything but the data reference, split and bookkeeping. */
export function toFitParams(spec: BuildSpec): FitParams {
  const params: FitParams = { n_estimators: spec.n_estimators, random_state: spec.seed };
  for (const key of Object.keys(forestOptionsShape) as (keyof ForestOptions)[]) {
    if (spec[key] !== undefined) (params as Record<string, unknown>)[key] = spec[key];
  }
  return params;
}

/** JSON with keys sorted at every level, so equal specs hash equally whatever order they were written in. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value;
}

function dropUndefined<T extends object>(obj: T): T {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as T;
}
