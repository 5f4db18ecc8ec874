import type { BuildStatus, BuildSummary, MetricsSummary } from "./ledger.ts";
import { keys } from "./keys.ts";
import type { Params, Scoring, StudySpec } from "./study-spec.ts";

/** One candidate of a study, with scikit-learn 1.9.1's cv_results_ names for its scores. */
export interface StudyCandidate {
  index: number;
  params: Params;
  /** Its member builds, fold 0 first. */
  buildIds: string[];
  /** Score on each fold (sklearn's split<k>_test_score); NaN (null in JSON) for a fold whose build failed. */
  split_test_scores: number[];
  mean_test_score: number;
  std_test_score: number;
  rank_test_score: number;
  /** FAILED when one of its builds failed (its scores are then NaN, as sklearn's error_score=nan). */
  status: "COMPLETED" | "FAILED";
  error?: string;
  /** Trees over its fold builds, their submission -> report time summed, and their estimated USD summed. */
  trees: number;
  timeMs: number;
  usd: number;
}

/**
 * The study's final model (spec refit): the base spec with best_params_ built over the training rows and evaluated once
 * on the held-out rows, which chose nothing. Its own report is reportKey; `metrics` are its held-out scalars.
 */
export interface StudyFinal {
  buildId: string;
  reportKey: string;
  modelKey: string;
  /** Held-out metrics (accuracy, macro_f1, log_loss / mse, mae, r2); null when nothing was held out (test_fraction 0). */
  metrics: MetricsSummary | null;
  trainRows: number;
  testRows: number;
  model: { bytes: number; trees: number; nodes: number };
  /** Its estimated cost (0 when it is a member's build, counted there: out of bag, the best candidate's own). */
  usd: number;
}

/** studies/<id>/report.json: a finished study, ranked. */
export interface StudyReport {
  v: 1;
  kind: "study";
  studyId: string;
  status: "COMPLETED";
  /** The base spec (fixed options) and the search space. */
  spec: StudySpec;
  task: "classification" | "regression";
  scoring: Scoring;
  /** sklearn's scorers are all "greater is better" (the losses are negated). */
  greaterIsBetter: true;
  cv: number;
  packKey: string;
  candidates: StudyCandidate[];
  best_index_: number;
  best_params_: Params;
  best_score_: number;
  builds: { total: number; completed: number; failed: number };
  /** Successive halving: every round's trees and candidates (the last round's are `candidates`). */
  rounds?: { round: number; trees: number; candidates: StudyCandidate[] }[];
  /** The final model (spec refit): absent for a study that ends at its ranking. */
  final?: StudyFinal;
  /** The builds' estimated cost (the final build's included in usd) and billed Lambda GB-seconds summed (0 when trained off Lambda), and the study aggregator's run. */
  cost: { buildsUsd: number; billedGbS: number; aggregateMs: number; usd: number };
  tags: Record<string, string>;
  createdAt: number;
  completedAt: number;
}

/** The one message published when a study ends. Versioned; schemas/study-notification.v1.json. */
export interface StudyNotification {
  v: 1;
  type: "study.completed" | "study.failed";
  studyId: string;
  status: BuildStatus;
  tags: Record<string, string>;
  scoring?: Scoring;
  cv?: number;
  /** The candidates were scored out of bag (cv is 1). */
  oob?: true;
  candidates?: number;
  builds?: { total: number; completed: number; failed: number };
  best_params_?: Params;
  best_score_?: number;
  /** The top candidates (at most MAX_NOTIFIED_CANDIDATES), best first; the report has them all. */
  ranking?: { index: number; params: Params; mean_test_score: number | null; std_test_score: number | null; rank_test_score: number }[];
  cost?: { usd: number };
  /** The study's final model (refit): its build, model and held-out (test) metrics. */
  final?: { buildId: string; modelKey: string; metrics: MetricsSummary | null; testRows: number };
  reportKey?: string;
  reason?: string;
}

export const MAX_NOTIFIED_CANDIDATES = 10;

/** JSON has no NaN: a failed candidate's score is null. */
const finite = (x: number): number | null => (Number.isFinite(x) ? x : null);

export function studyCompletedNotification(report: StudyReport): StudyNotification {
  const ranking = [...report.candidates]
    .sort((a, b) => a.rank_test_score - b.rank_test_score || a.index - b.index)
    .slice(0, MAX_NOTIFIED_CANDIDATES)
    .map((c) => ({ index: c.index, params: c.params, mean_test_score: finite(c.mean_test_score), std_test_score: finite(c.std_test_score), rank_test_score: c.rank_test_score }));
  return {
    v: 1,
    type: "study.completed",
    studyId: report.studyId,
    status: "COMPLETED",
    tags: report.tags,
    scoring: report.scoring,
    cv: report.cv,
    ...(report.spec.oob ? { oob: true as const } : {}),
    candidates: report.candidates.length,
    builds: report.builds,
    best_params_: report.best_params_,
    best_score_: report.best_score_,
    ranking,
    cost: { usd: report.cost.usd },
    ...(report.final ? { final: { buildId: report.final.buildId, modelKey: report.final.modelKey, metrics: report.final.metrics, testRows: report.final.testRows } } : {}),
    reportKey: keys.studyReport(report.studyId),
  };
}

export function studyFailedNotification(summary: BuildSummary, reason: string): StudyNotification {
  return { v: 1, type: "study.failed", studyId: summary.buildId, status: "FAILED", tags: summary.tags, reason };
}
