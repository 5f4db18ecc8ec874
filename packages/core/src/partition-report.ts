import type { BuildStatus, BuildSummary, MetricsSummary } from "./ledger.ts";
import { keys } from "./keys.ts";
import type { PartitionFallback } from "./partition-plan.ts";
import type { BuildSpec } from "./spec.ts";
import type { Params, Scoring } from "./study-spec.ts";
import type { StudyCandidate } from "./study-report.ts";

/** One partition (or the fallback) in a run's report. */
export interface PartitionOutcome {
  /** partitionKey(value); absent for the fallback. */
  key?: string;
  value?: string;
  fallback?: true;
  buildId: string;
  rows: number;
  status: "COMPLETED" | "FAILED";
  /** Held-out scalar metrics (null with test_fraction 0); absent when it failed. */
  metrics?: MetricsSummary | null;
  trainRows?: number;
  testRows?: number;
  trees?: number;
  modelBytes?: number;
  usd?: number;
  error?: string;
  /** A tuned run: the parameters its final build used (its own best, or the shared pick). */
  params?: Params;
}

/** One partition's ranking, as a study's report names it (scikit-learn 1.9.1's cv_results_ and best_*). */
export interface PartitionRanking {
  key: string;
  value: string;
  rows: number;
  candidates: StudyCandidate[];
  best_index_: number;
  best_params_: Params;
  /** NaN (null in JSON) when every candidate failed or scored NaN: the partition gets no model. */
  best_score_: number;
  builds: { total: number; completed: number; failed: number };
}

/** partitions/<p-id>/tuning.json, and the `tuning` part of the run's report. */
export interface PartitionTuningReport {
  v: 1;
  runId: string;
  mode: "independent" | "shared";
  scoring: Scoring;
  cv: number;
  oob?: true;
  candidates: Params[];
  partitions: PartitionRanking[];
  /**
   * shared: the one candidate every partition's final model uses, the highest mean over the ranked partitions of their
   * mean_test_score (NaN in any -> ranked last; ties -> the lower index); `mean_test_scores` per candidate.
   */
  shared?: { best_index_: number; best_params_: Params; best_score_: number; mean_test_scores: number[] };
  builds: { total: number; completed: number; failed: number };
  cost: { buildsUsd: number; billedGbS: number };
}

/** partitions/<p-id>/report.json: a finished partitioned run. */
export interface PartitionReport {
  v: 1;
  kind: "partitions";
  runId: string;
  status: "COMPLETED";
  partitionBy: string;
  spec: BuildSpec;
  task: "classification" | "regression";
  minPartitionRows: number;
  fallback?: PartitionFallback;
  /** Every member, partitions in key order then the fallback. */
  partitions: PartitionOutcome[];
  /** Not trained: fewer rows than minPartitionRows, or their build failed (served as unknown values are). */
  skipped: { value: string; rows: number; reason: string }[];
  counts: { partitions: number; completed: number; failed: number; skipped: number; rows: number; unkeyed: number };
  /** The completed partitions' held-out metrics averaged with their held-out rows as weights (fallback not included). */
  metrics: MetricsSummary;
  /** Absent for a tuned run with --no-refit (it ends at its rankings). */
  modelKey?: string;
  cost: { buildsUsd: number; billedGbS: number; aggregateMs: number; usd: number };
  /** `tune --partition-by`: each partition's ranking (candidates table, best_*), the mode and the shared pick. */
  tuning?: PartitionTuningReport;
  tags: Record<string, string>;
  createdAt: number;
  completedAt: number;
}

/** The one message published when a partitioned run ends. Versioned; schemas/partitions-notification.v1.json. */
export interface PartitionNotification {
  v: 1;
  type: "partitions.completed" | "partitions.failed";
  runId: string;
  status: BuildStatus;
  tags: Record<string, string>;
  partitionBy?: string;
  task?: "classification" | "regression";
  counts?: PartitionReport["counts"];
  /** Row-weighted held-out metrics over the completed partitions; the report has each partition's. */
  metrics?: MetricsSummary;
  fallback?: boolean;
  cost?: { usd: number };
  modelKey?: string;
  reportKey?: string;
  reason?: string;
  /** A tuned run (`tune --partition-by`): how it was tuned, and the shared parameters (mode shared). */
  tuning?: { mode: "independent" | "shared"; scoring: Scoring; cv?: number; oob?: true; refit: boolean; best_params_?: Params };
}

/**
 * The held-out metrics of several models as one: each numeric metric's mean over the outcomes that have it, weighted
 * by their held-out rows (`n`). For accuracy, log loss, MSE and MAE this is the metric over all held-out rows at
 * once; for R² and macro F1 it is a weighted mean of the partitions' values, not the pooled statistic.
 */
export function weightedMetrics(outcomes: Pick<PartitionOutcome, "metrics">[]): MetricsSummary {
  const sums = new Map<string, { sum: number; weight: number }>();
  let n = 0;
  let task: string | undefined;
  for (const o of outcomes) {
    const m = o.metrics;
    const w = typeof m?.n === "number" ? m.n : 0;
    if (!m || w <= 0) continue;
    n += w;
    if (typeof m.task === "string") task = m.task;
    for (const [key, value] of Object.entries(m)) {
      if (key === "n" || typeof value !== "number" || !Number.isFinite(value)) continue;
      const s = sums.get(key) ?? { sum: 0, weight: 0 };
      s.sum += value * w;
      s.weight += w;
      sums.set(key, s);
    }
  }
  const out: MetricsSummary = { ...(task !== undefined ? { task } : {}), n };
  for (const [key, s] of [...sums].sort(([a], [b]) => (a < b ? -1 : 1))) out[key] = s.sum / s.weight;
  return out;
}

export function partitionsCompletedNotification(report: PartitionReport): PartitionNotification {
  return {
    v: 1,
    type: "partitions.completed",
    runId: report.runId,
    status: "COMPLETED",
    tags: report.tags,
    partitionBy: report.partitionBy,
    task: report.task,
    counts: report.counts,
    metrics: report.metrics,
    fallback: report.fallback !== undefined,
    cost: { usd: report.cost.usd },
    ...(report.modelKey ? { modelKey: report.modelKey } : {}),
    reportKey: keys.partitionReport(report.runId),
    ...(report.tuning ? { tuning: tuningSummary(report.tuning, report.modelKey !== undefined) } : {}),
  };
}

function tuningSummary(t: PartitionTuningReport, refit: boolean): NonNullable<PartitionNotification["tuning"]> {
  return { mode: t.mode, scoring: t.scoring, ...(t.oob ? { oob: true as const } : { cv: t.cv }), refit, ...(t.shared ? { best_params_: t.shared.best_params_ } : {}) };
}

export function partitionsFailedNotification(summary: BuildSummary, reason: string): PartitionNotification {
  return { v: 1, type: "partitions.failed", runId: summary.buildId, status: "FAILED", tags: summary.tags, reason };
}
