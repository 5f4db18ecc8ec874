import type { Metrics } from "@canopy/forest";
import { keys } from "./keys.ts";
import type { BuildCost } from "./cost.ts";
import type { BuildRecord, BuildStatus, MetricsSummary } from "./ledger.ts";
import type { BuildReport, StageTimings } from "./report.ts";

/** The one message published when a build ends (SNS, stdout, ...). Versioned; consumers should check `v`. */
export interface BuildNotification {
  v: 1;
  type: "build.completed" | "build.failed";
  buildId: string;
  status: BuildStatus;
  tags: Record<string, string>;
  metrics?: MetricsSummary | null;
  timings?: StageTimings;
  /** Build totals of the report's cost (no per grove rows: they grow with the build). */
  cost?: Pick<BuildCost, "totals" | "requests" | "usd">;
  modelKey?: string;
  reportKey?: string;
  reason?: string;
  /**
   * Groves given up on: the reason a build failed, or the groves a completed build is missing. At most
   * MAX_NOTIFIED_FAILURES (lowest grove numbers first), so a message stays far below SNS's 256 KB whatever the build
   * tolerates; the report and the ledger have them all.
   */
  failedGroves?: { grove: number; error: string }[];
  /** How many more groves failed than failedGroves lists (absent when it lists them all). */
  failedGrovesOmitted?: number;
}

/** Most failed groves a notification lists (each error is at most 500 characters: about 27 KB in all). */
export const MAX_NOTIFIED_FAILURES = 50;

function failures(record: Pick<BuildRecord, "failed">): Pick<BuildNotification, "failedGroves" | "failedGrovesOmitted"> {
  if (record.failed.length === 0) return {};
  const omitted = record.failed.length - MAX_NOTIFIED_FAILURES;
  return { failedGroves: record.failed.slice(0, MAX_NOTIFIED_FAILURES), ...(omitted > 0 ? { failedGrovesOmitted: omitted } : {}) };
}

/**
 * Scalar metrics only: the confusion matrix and class list grow with the number of classes and would not fit
 * a DynamoDB item or an SNS message for large problems; the report keeps them.
 */
export function summarizeMetrics(metrics: Metrics | null): MetricsSummary | null {
  if (!metrics) return null;
  const out: MetricsSummary = {};
  for (const [key, value] of Object.entries(metrics)) {
    if (typeof value === "number" || typeof value === "string") out[key] = value;
  }
  return out;
}

export function failedNotification(record: BuildRecord, reason: string): BuildNotification {
  return {
    v: 1,
    type: "build.failed",
    buildId: record.buildId,
    status: "FAILED",
    tags: record.tags,
    reason,
    ...failures(record),
  };
}

export function completedNotification(record: BuildRecord, report: BuildReport): BuildNotification {
  return {
    v: 1,
    type: "build.completed",
    buildId: record.buildId,
    status: "COMPLETED",
    tags: record.tags,
    metrics: summarizeMetrics(report.metrics),
    timings: report.timings,
    cost: { totals: report.cost.totals, requests: report.cost.requests, usd: report.cost.usd },
    modelKey: report.model.key,
    reportKey: keys.report(record.buildId),
    ...failures(record),
  };
}
