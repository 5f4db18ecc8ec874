import { createHash } from "node:crypto";
import { Rng, type ForestOptions } from "@canopy/forest";
import { SpecError } from "./errors.ts";
import type { MetricsSummary } from "./ledger.ts";
import { buildIdFor, planGroves, type PackSummary } from "./plan.ts";
import { canonicalJson, forestOptionsShape, groveCount, MAX_CV_SPLITS, parseBuildSpec, show, type BuildSpec } from "./spec.ts";

/**
 * A study: many candidate forests, each scored by K-fold cross-validation on the training rows, ranked as
 * scikit-learn 1.9.1's GridSearchCV / RandomizedSearchCV rank them (`mean_test_score`, `std_test_score`,
 * `rank_test_score`, `best_params_`). Every candidate x fold is an ordinary build over the one shared pack.
 */
export interface StudySpec {
  /** Every train option, fixed across candidates (the dataset, label, trees, seed, test_fraction, ...). */
  base: BuildSpec;
  /** ParameterGrid: every combination of these values (keys sorted, the last one varying fastest, as sklearn). */
  grid?: Record<string, ParamValue[]>;
  /** RandomizedSearchCV: `n_iter` draws (seeded by base.seed) from these distributions and value lists. */
  random?: { n_iter: number; params: Record<string, ParamDistribution> };
  /** A scikit-learn scorer name; greater is better for each (the losses are negated, as sklearn's). */
  scoring: Scoring;
  /** K of the K folds (StratifiedKFold for classification, KFold for regression); 1 with `oob` (one score per candidate). */
  cv: number;
  /**
   * Out-of-bag scoring instead of folds: each candidate is ONE build over every training row with oob_score, scored
   * by its out-of-bag decision function (sklearn 1.9.1's oob_score_: accuracy or R²; f1_macro and
   * neg_mean_squared_error as a callable oob_score computes them). `cv` is then 1.
   */
  oob?: true;
  /**
   * The study's final model (sklearn's refit=True): after ranking, the base spec with best_params_ is built over the
   * training rows and evaluated once on the held-out rows (never used for selection); the study completes with it.
   * Absent: the study ends at its ranking (`canopy tune` asks for it unless --no-refit).
   */
  refit?: true;
  /**
   * Successive halving over trees (HalvingGridSearchCV with resource="n_estimators", max_resources = base.n_estimators):
   * every candidate starts with few trees, the best 1/factor are extended (extendBuild: nothing retrained) each round.
   * `min_resources` absent: sklearn's "exhaust".
   */
  halving?: { factor: number; min_resources?: number };
}

/** One round of successive halving: trees per build and how many candidates take part. */
export interface HalvingRound {
  trees: number;
  candidates: number;
}

/**
 * The rounds scikit-learn 1.9.1's successive halving runs (aggressive_elimination=False): n_required = 1 +
 * floor(log_factor(candidates)); min_resources "exhaust" = max(1, max // factor^(n_required - 1)); n_possible = 1 +
 * floor(log_factor(max // min)); rounds = min of both; round i has min * factor^i resources (at most max) and
 * ceil(candidates / factor^i) candidates (each round keeps the ceiling of a factor-th of the previous).
 */
export function halvingRounds(candidates: number, maxResources: number, factor: number, minResources?: number): HalvingRound[] {
  const log = (x: number) => Math.floor(Math.log(x) / Math.log(factor) + 1e-9);
  const required = 1 + log(candidates);
  const min = minResources ?? Math.max(1, Math.floor(maxResources / factor ** (required - 1)));
  const possible = 1 + log(Math.floor(maxResources / min));
  const rounds: HalvingRound[] = [];
  let n = candidates;
  for (let i = 0; i < Math.min(required, possible); i++) {
    rounds.push({ trees: Math.min(Math.floor(factor ** i * min), maxResources), candidates: n });
    n = Math.ceil(n / factor);
  }
  return rounds;
}

/** The ledger record of round `round` of a halving study: the study's own for round 0. */
export function roundIdFor(studyId: string, round: number): string {
  if (round === 0) return studyId;
  return `s-${createHash("sha256").update(`canopy-study-round-v1\n${studyId}\n${round}`).digest("hex").slice(0, 16)}`;
}

/** The ledger record of a study's final stage (its final build, after the ranking): one per study, derived from its id. */
export function finalStageIdFor(studyId: string): string {
  return `s-${createHash("sha256").update(`canopy-study-final-v1\n${studyId}`).digest("hex").slice(0, 16)}`;
}

export type ParamValue = number | string | boolean | null;
export type ParamDistribution = { values: ParamValue[] } | { int: [number, number] } | { float: [number, number] };
export type Params = Record<string, ParamValue>;

export const SCORINGS = ["accuracy", "f1_macro", "neg_log_loss", "r2", "neg_mean_squared_error"] as const;
export type Scoring = (typeof SCORINGS)[number];
const CLASSIFICATION_SCORINGS: readonly Scoring[] = ["accuracy", "f1_macro", "neg_log_loss"];

/** sklearn's default scoring is the estimator's `score`: accuracy for a classifier, R² for a regressor. */
export function defaultScoring(task: "classification" | "regression"): Scoring {
  return task === "classification" ? "accuracy" : "r2";
}

/** A scorer's value from a build's held-out metrics (sklearn's sign: greater is better); NaN when absent. */
export function scoreOf(scoring: Scoring, metrics: MetricsSummary | null | undefined): number {
  const get = (key: string) => (typeof metrics?.[key] === "number" ? (metrics[key] as number) : Number.NaN);
  switch (scoring) {
    case "accuracy":
      return get("accuracy");
    case "f1_macro":
      return get("macro_f1");
    case "neg_log_loss":
      return -get("log_loss");
    case "r2":
      return get("r2");
    case "neg_mean_squared_error":
      return -get("mse");
  }
}

/**
 * Limits a study is checked against before anything is written. Every member build is one ledger counter and each
 * grove one SQS message; SQS holds at most 120,000 in-flight messages per standard queue, so a study's groves stay
 * below that with room for other builds. The study's counter has one entry per member build.
 */
export const STUDY_LIMITS = { maxBuilds: 10_000, maxGroves: 100_000, maxCandidates: 2_000 } as const;

/** The options a grid or a distribution may vary: the forest's (sklearn's RandomForest constructor names). */
export const SEARCHABLE = Object.keys(forestOptionsShape) as (keyof ForestOptions)[];

const bad = (path: string, message: string) => new SpecError([{ path, message }]);

/** Checks a study spec's own fields (the base is parsed as a build spec); throws SpecError naming the field. */
export function parseStudySpec(
  input: { base: unknown; grid?: unknown; random?: unknown; scoring?: unknown; cv?: unknown; halving?: unknown; oob?: unknown; refit?: unknown },
  task?: "classification" | "regression",
): StudySpec {
  const base = parseBuildSpec(input.base);
  if (base.cv) throw bad("cv", "the base spec of a study names no fold: the study makes one build per fold");
  if (input.oob !== undefined && typeof input.oob !== "boolean") throw bad("oob", `must be true or false (got ${show(input.oob)})`);
  if (input.refit !== undefined && typeof input.refit !== "boolean") throw bad("refit", `must be true or false (got ${show(input.refit)})`);
  const oob = input.oob === true;
  // A parsed OOB spec carries cv 1 (one score per candidate); anything else next to oob is a second way to score.
  if (oob && input.cv !== undefined && input.cv !== 1) throw bad("oob", "--cv and --oob are exclusive: a candidate is scored by K folds or by its out-of-bag rows, not both");
  if (oob && base.bootstrap === false) throw bad("oob", "needs the bootstrap (out-of-bag rows are the ones a tree's bootstrap sample left out); drop --no-bootstrap or use --cv K");
  const cv = oob ? 1 : (input.cv ?? 5);
  if (!oob && (typeof cv !== "number" || !Number.isInteger(cv) || cv < 2 || cv > MAX_CV_SPLITS)) throw bad("cv", `must be an integer 2..${MAX_CV_SPLITS} (got ${show(cv)})`);
  const resolved = task ?? (base.task === "auto" ? undefined : base.task);
  const scoring = input.scoring ?? (resolved ? defaultScoring(resolved) : undefined);
  if (scoring !== undefined && !(SCORINGS as readonly unknown[]).includes(scoring))
    throw bad("scoring", `must be one of ${SCORINGS.join(", ")} (got ${show(scoring)})`);
  if (resolved && scoring && CLASSIFICATION_SCORINGS.includes(scoring as Scoring) !== (resolved === "classification"))
    throw bad("scoring", `${scoring} does not score ${resolved}; use ${SCORINGS.filter((s) => CLASSIFICATION_SCORINGS.includes(s) === (resolved === "classification")).join(", ")}`);
  if (oob && scoring === "neg_log_loss")
    throw bad("oob", "--scoring neg_log_loss and --oob do not go together: an out-of-bag score is computed on class predictions (sklearn's oob_score), not probabilities; use --cv K or another --scoring");
  const grid = input.grid === undefined ? undefined : parseGrid(input.grid);
  const random = input.random === undefined ? undefined : parseRandom(input.random);
  if (!grid && !random) throw bad("grid", "a study needs a search space: --grid name=v1,v2 or --random N --param ...");
  const halving = input.halving === undefined ? undefined : parseHalving(input.halving, base.n_estimators);
  const spec: StudySpec = {
    base,
    ...(grid ? { grid } : {}),
    ...(random ? { random } : {}),
    scoring: (scoring ?? "accuracy") as Scoring,
    cv: cv as number,
    ...(halving ? { halving } : {}),
    ...(oob ? { oob: true as const } : {}),
    ...(input.refit === true ? { refit: true as const } : {}),
  };
  if (halving && studyRounds(spec).length < 2)
    throw bad("halving", `${studyCandidates(spec).length} candidates and ${base.n_estimators} trees make one round: nothing to halve (more candidates or trees, or a smaller min_resources)`);
  // Every candidate must be a valid build: a value of the wrong type is named by its parameter.
  for (const params of studyCandidates(spec)) memberSpec(spec, params, 0);
  return spec;
}

function parseHalving(input: unknown, trees: number): NonNullable<StudySpec["halving"]> {
  const h = input as { factor?: unknown; min_resources?: unknown };
  if (typeof h !== "object" || h === null) throw bad("halving", `must be { factor, min_resources? } (got ${show(input)})`);
  const factor = h.factor ?? 3;
  if (typeof factor !== "number" || !Number.isInteger(factor) || factor < 2) throw bad("halving.factor", `must be an integer >= 2 (got ${show(factor)})`);
  const min = h.min_resources;
  if (min !== undefined && (typeof min !== "number" || !Number.isInteger(min) || min < 1 || min >= trees))
    throw bad("halving.min_resources", `must be an integer 1..${trees - 1}: the trees of the first round, below --trees (got ${show(min)})`);
  return { factor, ...(min !== undefined ? { min_resources: min } : {}) };
}

/** The rounds of a study: one (every candidate at base.n_estimators trees) without halving. */
export function studyRounds(spec: Pick<StudySpec, "halving" | "base" | "grid" | "random">): HalvingRound[] {
  const n = studyCandidates(spec).length;
  if (!spec.halving) return [{ trees: spec.base.n_estimators, candidates: n }];
  return halvingRounds(n, spec.base.n_estimators, spec.halving.factor, spec.halving.min_resources);
}

function checkName(name: string, path: string): void {
  if (!(SEARCHABLE as string[]).includes(name))
    throw bad(path, `${show(name)} is not a forest option; a study searches ${SEARCHABLE.join(", ")} (the other train options are fixed)`);
}

function parseGrid(input: unknown): Record<string, ParamValue[]> {
  if (typeof input !== "object" || input === null || Array.isArray(input)) throw bad("grid", `must be an object of value lists (got ${show(input)})`);
  const out: Record<string, ParamValue[]> = {};
  for (const [name, values] of Object.entries(input)) {
    checkName(name, `grid.${name}`);
    if (!Array.isArray(values) || values.length === 0) throw bad(`grid.${name}`, `must be a non-empty list of values (got ${show(values)})`);
    out[name] = values as ParamValue[];
  }
  if (Object.keys(out).length === 0) throw bad("grid", "is empty: name at least one option and its values");
  return out;
}

function parseRandom(input: unknown): NonNullable<StudySpec["random"]> {
  const r = input as { n_iter?: unknown; params?: unknown };
  if (typeof r !== "object" || r === null) throw bad("random", `must be { n_iter, params } (got ${show(input)})`);
  if (typeof r.n_iter !== "number" || !Number.isInteger(r.n_iter) || r.n_iter < 1 || r.n_iter > STUDY_LIMITS.maxCandidates)
    throw bad("random.n_iter", `must be an integer 1..${STUDY_LIMITS.maxCandidates} (got ${show(r.n_iter)})`);
  if (typeof r.params !== "object" || r.params === null || Object.keys(r.params).length === 0)
    throw bad("random.params", "name at least one option and its distribution (--param name=int:1..20)");
  const params: Record<string, ParamDistribution> = {};
  for (const [name, d] of Object.entries(r.params as Record<string, unknown>)) {
    checkName(name, `random.params.${name}`);
    const dist = d as Partial<Record<"values" | "int" | "float", unknown>>;
    if (Array.isArray(dist?.values) && dist.values.length > 0) params[name] = { values: dist.values as ParamValue[] };
    else if (isRange(dist?.int, true)) params[name] = { int: dist.int };
    else if (isRange(dist?.float, false)) params[name] = { float: dist.float };
    else throw bad(`random.params.${name}`, `must be a value list, int:LO..HI or float:LO..HI with LO <= HI (got ${show(d)})`);
  }
  return { n_iter: r.n_iter, params };
}

function isRange(x: unknown, integer: boolean): x is [number, number] {
  return Array.isArray(x) && x.length === 2 && x.every((v) => typeof v === "number" && Number.isFinite(v) && (!integer || Number.isInteger(v))) && x[0] <= x[1];
}

/**
 * The candidates in the order sklearn 1.9.1 evaluates them: ParameterGrid (names sorted, the last varying fastest)
 * or, for a random search, `n_iter` draws seeded by the base seed (each name in sorted order: a value list picks
 * uniformly, int:LO..HI a uniform integer, float:LO..HI a uniform float; sklearn's own draws need numpy's generator,
 * so a random study's candidates are Canopy's own, reproducible from the spec).
 */
export function studyCandidates(spec: Pick<StudySpec, "grid" | "random" | "base">): Params[] {
  if (spec.grid) {
    const names = Object.keys(spec.grid).sort();
    let out: Params[] = [{}];
    for (const name of names) out = out.flatMap((p) => spec.grid![name].map((v) => ({ ...p, [name]: v })));
    return out;
  }
  const { n_iter, params } = spec.random!;
  const rng = new Rng((spec.base.seed ^ 0x53545544) >>> 0); // "STUD": a stream apart from the trees' and the split's
  const names = Object.keys(params).sort();
  return Array.from({ length: n_iter }, () => {
    const p: Params = {};
    for (const name of names) {
      const d = params[name];
      if ("values" in d) p[name] = d.values[rng.nextInt(d.values.length)];
      else if ("int" in d) p[name] = d.int[0] + rng.nextInt(d.int[1] - d.int[0] + 1);
      else p[name] = d.float[0] + rng.nextDouble() * (d.float[1] - d.float[0]);
    }
    return p;
  });
}

/** The build spec of a candidate (the base with its parameters), validated; errors name the parameter's values. */
export function candidateSpec(spec: Pick<StudySpec, "base">, params: Params, fold?: { n_splits: number; fold: number }, trees?: number): BuildSpec {
  try {
    const built = parseBuildSpec({ ...spec.base, ...params, ...(fold ? { cv: fold } : {}), ...(trees !== undefined ? { n_estimators: trees, grove_size: Math.min(spec.base.grove_size, trees) } : {}) });
    // None where the option's default is None (max_depth): left out, as `canopy train` leaves it, so the candidate is
    // the very build (id and bytes) train gives with the same options.
    const defaults = parseBuildSpec(spec.base) as unknown as Record<string, unknown>;
    for (const [name, value] of Object.entries(params)) if (value === null && defaults[name] === undefined) delete (built as unknown as Record<string, unknown>)[name];
    return built;
  } catch (err) {
    if (!(err instanceof SpecError)) throw err;
    throw new SpecError(err.issues.map((i) => ({ path: i.path, message: `${i.message} (candidate ${showParams(params)})` })));
  }
}

/**
 * The build of candidate `params` on `fold`: with folds, the candidate's spec on that fold; out of bag, the candidate's
 * spec with oob_score over every training row (fold 0, the only one). `trees`: a halving round's.
 */
export function memberSpec(spec: Pick<StudySpec, "base" | "cv" | "oob">, params: Params, fold: number, trees?: number): BuildSpec {
  if (spec.oob) return candidateSpec({ base: { ...spec.base, oob_score: true } }, params, undefined, trees);
  return candidateSpec(spec, params, { n_splits: spec.cv, fold }, trees);
}

/**
 * The study's final build: the base spec with the best parameters over the training rows, evaluated on the held-out
 * rows, as `canopy train` of that spec builds it (the same id, the same bytes). Out of bag it keeps oob_score, so it is
 * the best candidate's own build (nothing retrained).
 */
export function finalSpec(spec: Pick<StudySpec, "base" | "oob">, params: Params): BuildSpec {
  return candidateSpec(spec.oob ? { base: { ...spec.base, oob_score: true } } : spec, params);
}

/**
 * What a member scored: its held-out metrics on its fold, or out of bag its report's OOB scores (oob_score_ for
 * accuracy and r2, the OOB decision function's macro F1 or MSE otherwise); NaN when absent.
 */
export function memberScore(spec: Pick<StudySpec, "scoring" | "oob">, report: { metrics?: unknown; oob_score?: number; oob?: { metrics?: Record<string, number> } }): number {
  if (!spec.oob) return scoreOf(spec.scoring, report.metrics as MetricsSummary | null | undefined);
  const metric = spec.scoring === "accuracy" || spec.scoring === "r2" ? { [spec.scoring]: report.oob_score ?? Number.NaN } : report.oob?.metrics;
  return scoreOf(spec.scoring, metric);
}

export function showParams(params: Params): string {
  return Object.entries(params)
    .map(([k, v]) => `${k}=${v === null ? "none" : String(v)}`)
    .join(" ");
}

/** One member build of a study: candidate c scored on fold f. Member index = c * K + f. */
export interface StudyMember {
  buildId: string;
  candidate: number;
  fold: number;
  groves: number;
  /** A later round's member: the build of the round before that it extends. */
  extends?: string;
}

/** builds/…'s sibling for a study: studies/<id>/study.json. */
export interface StudyManifest {
  v: 1;
  studyId: string;
  spec: StudySpec;
  task: "classification" | "regression";
  packKey: string;
  packHash: string;
  candidates: Params[];
  members: StudyMember[];
  /** Groves of the members, for progress. */
  groves: number;
  createdAt: number;
  /** Successive halving: the rounds planned (round 0's manifest), or which round this record counts (later rounds). */
  rounds?: HalvingRound[];
  round?: { index: number; root: string; trees: number };
  /**
   * The final stage's record (refit): its one member is the final build (members[0], candidate = the best); its ledger
   * record counts two, the final build (0) and the ranking (1, landed as the stage starts, its digest the SHA-256 of
   * the ranked report at `rankedKey`), so a failed final build still triggers the stage's aggregation.
   */
  final?: { root: string; candidate: number; rankedKey: string };
}

/** Same data + same study spec = same id (the dataset reference aside), as buildIdFor. */
export function studyIdFor(packHash: string, spec: StudySpec): string {
  const { dataset: _ignored, ...base } = spec.base;
  const digest = createHash("sha256").update(`canopy-study-v1\n${packHash}\n${canonicalJson({ ...spec, base })}`).digest("hex");
  return `s-${digest.slice(0, 16)}`;
}

/** The study's members and their build ids, checked against the limits before anything is written. */
export function planStudy(spec: StudySpec, pack: PackSummary): { studyId: string; candidates: Params[]; members: StudyMember[]; groves: number; specs: BuildSpec[] } {
  const candidates = studyCandidates(spec);
  if (candidates.length > STUDY_LIMITS.maxCandidates)
    throw bad("grid", `${candidates.length} candidates; a study has at most ${STUDY_LIMITS.maxCandidates}`);
  const builds = candidates.length * spec.cv;
  // With halving the first round's trees; the later rounds extend fewer builds (their groves are checked then).
  const trees = studyRounds(spec)[0].trees;
  const grovesEach = groveCount(trees, Math.min(spec.base.grove_size, trees));
  const groves = builds * grovesEach;
  if (builds > STUDY_LIMITS.maxBuilds || groves > STUDY_LIMITS.maxGroves)
    throw bad(
      "grid",
      `${candidates.length} candidates x ${spec.cv} folds x ${grovesEach} groves = ${builds} builds and ${groves} groves; a study is at most ` +
        `${STUDY_LIMITS.maxBuilds} builds and ${STUDY_LIMITS.maxGroves} groves (SQS holds 120,000 messages in flight per queue): fewer candidates, folds or bigger groves`,
    );
  const members: StudyMember[] = [];
  const specs: BuildSpec[] = [];
  candidates.forEach((params, candidate) => {
    for (let fold = 0; fold < spec.cv; fold++) {
      const s = memberSpec(spec, params, fold, spec.halving ? trees : undefined);
      specs.push(s);
      members.push({ buildId: buildIdFor(pack.hash, s), candidate, fold, groves: planGroves(s.n_estimators, s.grove_size).length });
    }
  });
  return { studyId: studyIdFor(pack.hash, spec), candidates, members, groves, specs };
}
