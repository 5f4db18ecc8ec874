import { LedgerError } from "./errors.ts";

export type BuildStatus = "PENDING" | "TRAINING" | "AGGREGATING" | "COMPLETED" | "FAILED";
export const TERMINAL_STATUSES: readonly BuildStatus[] = ["COMPLETED", "FAILED"];

/** What a trainer measured for one grove. Times are epoch ms from the runtime's clock. */
export interface GroveStats {
  trees: number;
  nodes: number;
  /** Size of the stored grove blob. */
  bytes: number;
  queuedAt: number;
  startedAt: number;
  loadedAt: number;
  trainedAt: number;
  storedAt: number;
  landedAt: number;
  /** True when the pack came from the trainer's in-memory cache rather than the blob store. */
  packCached: boolean;
  /** Memory of the function that trained it (Lambda), for billed GB-seconds; absent elsewhere. */
  memoryMb?: number;
  /** Which trainer trained it: a worker thread, a Lambda container (its log stream). Absent when not told. */
  worker?: string;
  /**
   * The delivery that trained it when that was a retry (2, 3, ...: SQS's ApproximateReceiveCount); absent for
   * a first delivery. Absent rather than 1 because every byte counts in a DynamoDB item holding 2,000 groves.
   */
  attempt?: number;
  /**
   * True for a grove copied from the build this one extends instead of trained (see extend.ts): its times are the
   * copy's. Absent for a trained grove.
   */
  copied?: boolean;
}

/** Scalar metrics only (no confusion matrix): small enough for a DynamoDB item and an SNS message. */
export type MetricsSummary = Record<string, number | string>;

export interface BuildResult {
  modelKey: string;
  reportKey: string;
  metrics: MetricsSummary | null;
}

/**
 * One build's row in the ledger. `remaining` counts groves neither landed nor failed; the aggregation trigger
 * watches it reach 0. DynamoDB stores `status` (S) and `remaining` (N) as top-level attributes: the stream
 * filter below matches on them.
 */
export interface BuildRecord {
  buildId: string;
  status: BuildStatus;
  total: number;
  remaining: number;
  /** Landed grove numbers, ascending. */
  landed: number[];
  /** Groves given up on, ascending by grove. */
  failed: { grove: number; error: string }[];
  /** How many failed groves the build survives. */
  tolerated: number;
  createdAt: number;
  updatedAt: number;
  lastLandedAt?: number;
  /** Keyed by grove number (as a string in JSON). */
  groveStats: Record<number, GroveStats>;
  reason?: string;
  result?: BuildResult;
  tags: Record<string, string>;
}

export interface LandResult {
  /** False when nothing was written: a duplicate landing, a grove already failed, or a build not TRAINING. */
  landed: boolean;
  remaining: number;
}

export interface FailGroveResult {
  /** False when nothing was written: grove already landed or failed, or the build not TRAINING. */
  recorded: boolean;
  remaining: number;
  /** True only for the call whose failure took the build over its tolerance (it moved the build to FAILED). */
  buildFailed: boolean;
}

export interface LedgerChange {
  old?: BuildRecord;
  new: BuildRecord;
}

export function newBuildRecord(init: {
  buildId: string;
  total: number;
  tolerated: number;
  tags?: Record<string, string>;
  now: number;
}): BuildRecord {
  return {
    buildId: init.buildId,
    status: "PENDING",
    total: init.total,
    remaining: init.total,
    landed: [],
    failed: [],
    tolerated: init.tolerated,
    createdAt: init.now,
    updatedAt: init.now,
    groveStats: {},
    tags: { ...(init.tags ?? {}) },
  };
}

/** The aggregation trigger: remaining just reached 0 while the build is still TRAINING. */
export function isAggregationTrigger(change: LedgerChange): boolean {
  return change.new.status === "TRAINING" && change.new.remaining === 0 && change.old?.remaining !== 0;
}

/**
 * Lambda event-source filter for the ledger table's DynamoDB stream (NEW_AND_OLD_IMAGES): pass it as
 * `{ Pattern: JSON.stringify(AGGREGATION_TRIGGER_FILTER) }`. It cannot compare old and new images, but after
 * remaining reaches 0 the next write is the claim (status AGGREGATING), so in practice one event matches;
 * claimAggregation keeps it exactly-once regardless.
 */
export const AGGREGATION_TRIGGER_FILTER = {
  eventName: ["MODIFY"],
  dynamodb: {
    NewImage: {
      remaining: { N: ["0"] },
      status: { S: ["TRAINING"] },
    },
  },
} as const;

/** A rule's verdict: the record to write (undefined = write nothing) and what the caller returns. */
export interface Decision<R> {
  next?: BuildRecord;
  result: R;
}

function checkGrove(record: BuildRecord, grove: number): void {
  if (!Number.isInteger(grove) || grove < 0 || grove >= record.total)
    throw new LedgerError(`build ${record.buildId} has groves 0..${record.total - 1}; got ${grove}`);
}

function insertSorted(list: number[], value: number): number[] {
  const out = [...list, value];
  out.sort((a, b) => a - b);
  return out;
}

/**
 * The ledger's transitions as pure functions of the current record. In-process and disk ledgers apply them
 * under their lock; the DynamoDB ledger expresses the same rules as condition expressions, and the contract
 * suite checks both agree.
 */
export const ledgerRules = {
  startTraining(r: BuildRecord, now: number): Decision<boolean> {
    if (r.status !== "PENDING") return { result: false };
    return { next: { ...r, status: "TRAINING", updatedAt: now }, result: true };
  },

  landGrove(r: BuildRecord, grove: number, stats: GroveStats, now: number): Decision<LandResult> {
    checkGrove(r, grove);
    const seen = r.landed.includes(grove) || r.failed.some((f) => f.grove === grove);
    if (r.status !== "TRAINING" || seen) return { result: { landed: false, remaining: r.remaining } };
    const next: BuildRecord = {
      ...r,
      landed: insertSorted(r.landed, grove),
      remaining: r.remaining - 1,
      groveStats: { ...r.groveStats, [grove]: stats },
      lastLandedAt: now,
      updatedAt: now,
    };
    return { next, result: { landed: true, remaining: next.remaining } };
  },

  failGrove(r: BuildRecord, grove: number, error: string, now: number): Decision<FailGroveResult> {
    checkGrove(r, grove);
    const seen = r.landed.includes(grove) || r.failed.some((f) => f.grove === grove);
    if (r.status !== "TRAINING" || seen) return { result: { recorded: false, remaining: r.remaining, buildFailed: false } };
    const failed = [...r.failed, { grove, error }].sort((a, b) => a.grove - b.grove);
    const next: BuildRecord = { ...r, failed, remaining: r.remaining - 1, updatedAt: now };
    const buildFailed = failed.length > r.tolerated;
    if (buildFailed) {
      next.status = "FAILED";
      next.reason = `${failed.length} of ${r.total} groves failed (tolerated ${r.tolerated}); grove ${grove}: ${error}`;
    }
    return { next, result: { recorded: true, remaining: next.remaining, buildFailed } };
  },

  claimAggregation(r: BuildRecord, now: number): Decision<boolean> {
    if (r.status !== "TRAINING" || r.remaining !== 0) return { result: false };
    return { next: { ...r, status: "AGGREGATING", updatedAt: now }, result: true };
  },

  /**
   * AGGREGATING -> TRAINING (remaining stays 0), so the aggregation can be claimed again: for an aggregator
   * known to have died mid-way (the embedded runtime resuming a store it alone owns). Not an aggregation
   * trigger by itself: the caller aggregates.
   */
  reopenAggregation(r: BuildRecord, now: number): Decision<boolean> {
    if (r.status !== "AGGREGATING") return { result: false };
    return { next: { ...r, status: "TRAINING", updatedAt: now }, result: true };
  },

  complete(r: BuildRecord, result: BuildResult, now: number): Decision<boolean> {
    if (r.status !== "AGGREGATING") return { result: false };
    return { next: { ...r, status: "COMPLETED", result, updatedAt: now }, result: true };
  },

  fail(r: BuildRecord, reason: string, now: number): Decision<boolean> {
    if (TERMINAL_STATUSES.includes(r.status)) return { result: false };
    return { next: { ...r, status: "FAILED", reason, updatedAt: now }, result: true };
  },
};

export function buildNotFound(buildId: string): LedgerError {
  return new LedgerError(`build ${buildId} not found`, "not-found");
}
