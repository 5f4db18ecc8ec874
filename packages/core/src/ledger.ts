import { LedgerError } from "./errors.ts";

export type BuildStatus = "PENDING" | "TRAINING" | "AGGREGATING" | "COMPLETED" | "FAILED";
export const TERMINAL_STATUSES: readonly BuildStatus[] = ["COMPLETED", "FAILED"];

/** What a trainer measured for one grove. Times are epoch ms from the runtime's clock. */
export interface GroveStats {
  trees: number;
  nodes: number;
  /** Size of the stored grove blob. */
  bytes: number;
  /**
   * SHA-256 (hex) of the grove blob the trainer stored. The aggregator merges a grove only if the blob it reads
   * has this digest, so a grove changed after landing fails the build by name instead of changing the model.
   */
  digest: string;
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
  /** The delivery that trained it when that was a retry (2, 3, ...: SQS's ApproximateReceiveCount); absent for a first delivery. */
  attempt?: number;
  /**
   * True for a grove copied from the build this one extends instead of trained (see extend.ts): its times are the
   * copy's. Absent for a trained grove.
   */
  copied?: boolean;
  /** A build with oob_score: the size and SHA-256 of the grove's out-of-bag sums (keys.groveOob), checked like the grove's. */
  oob?: { bytes: number; digest: string };
}

/** Scalar metrics only (no confusion matrix): small enough for a DynamoDB item and an SNS message. */
export type MetricsSummary = Record<string, number | string>;

export interface BuildResult {
  /** The model; absent for a study (its report names the candidates' builds). */
  modelKey?: string;
  reportKey: string;
  metrics: MetricsSummary | null;
}

/** One grove's entry in the ledger: landed with what its trainer measured, or given up on with the error. */
export type SettledGrove = { grove: number; outcome: "landed"; stats: GroveStats } | { grove: number; outcome: "failed"; error: string };

/** Longest error kept for a grove (and in a reason): whatever one grove says, the entries stay bounded. */
export const MAX_ERROR_CHARS = 500;

/**
 * A build's counter: everything about a build but its groves, of a size that does not grow with the build.
 * It is the fan-in's top half (the groves' entries are the other): `remaining` counts groves neither landed nor
 * failed, and the aggregation trigger watches it reach 0. DynamoDB stores it as one item whose `status` (S) and
 * `remaining` (N) are top-level attributes, which the stream filter below matches on.
 */
export interface BuildSummary {
  buildId: string;
  status: BuildStatus;
  total: number;
  remaining: number;
  /** How many failed groves the build survives. */
  tolerated: number;
  landedCount: number;
  failedCount: number;
  /** Trees in the landed groves. */
  treesLanded: number;
  /** Trees in the landed groves that were copied from the build this one extends (not trained); absent when none. */
  treesCopied?: number;
  createdAt: number;
  /** The last write of any kind: a landing, a failure, a claim, a re-trigger, a re-queue. */
  updatedAt: number;
  lastLandedAt?: number;
  /** The grove the last landing or failure settled, so a change feed can name it without reading the groves. */
  lastSettled?: SettledGrove;
  /** Aggregations started (claims won); each is one aggregator run. */
  claims?: number;
  /** When the aggregation was last claimed: a claim older than the aggregator's time limit is dead. */
  claimedAt?: number;
  /** Times the aggregation was asked for again (a lost trigger re-fired, a dead claim reopened). */
  redrives?: number;
  /** Times outstanding groves were queued again (resume, the sweeper). */
  requeues?: number;
  reason?: string;
  result?: BuildResult;
  tags: Record<string, string>;
  /**
   * The fan-in one level up that counts this build as a member (a study: `member` is its index there). When the
   * build finishes, its outcome lands in that record (study.ts), like a grove's in its build. Absent otherwise.
   */
  memberOf?: MemberOf;
}

export interface MemberOf {
  id: string;
  member: number;
}

/** A build as the ledger holds it: its counter, and every grove settled so far. */
export interface BuildRecord extends BuildSummary {
  /** Landed grove numbers, ascending. */
  landed: number[];
  /** Groves given up on, ascending by grove. */
  failed: { grove: number; error: string }[];
  /** Keyed by grove number (as a string in JSON). */
  groveStats: Record<number, GroveStats>;
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

/**
 * One write to a build's counter, as a change feed (a DynamoDB stream) delivers it. A landing or a failure names
 * its grove in `new.lastSettled`; the groves' own entries are not part of the change.
 */
export interface LedgerChange {
  old?: BuildSummary;
  new: BuildSummary;
}

export function newBuildRecord(init: {
  buildId: string;
  total: number;
  tolerated: number;
  tags?: Record<string, string>;
  now: number;
  memberOf?: MemberOf;
}): BuildRecord {
  return {
    buildId: init.buildId,
    status: "PENDING",
    total: init.total,
    remaining: init.total,
    tolerated: init.tolerated,
    landedCount: 0,
    failedCount: 0,
    treesLanded: 0,
    createdAt: init.now,
    updatedAt: init.now,
    tags: { ...(init.tags ?? {}) },
    ...(init.memberOf ? { memberOf: { ...init.memberOf } } : {}),
    landed: [],
    failed: [],
    groveStats: {},
  };
}

const SUMMARY_KEYS = [
  "buildId",
  "status",
  "total",
  "remaining",
  "tolerated",
  "landedCount",
  "failedCount",
  "treesLanded",
  "treesCopied",
  "createdAt",
  "updatedAt",
  "lastLandedAt",
  "lastSettled",
  "claims",
  "claimedAt",
  "redrives",
  "requeues",
  "reason",
  "result",
  "tags",
  "memberOf",
] as const satisfies readonly (keyof BuildSummary)[];

/** The counter of a record (absent optional fields stay absent). */
export function summaryOf(record: BuildSummary): BuildSummary {
  const out: Record<string, unknown> = {};
  for (const key of SUMMARY_KEYS) if (record[key] !== undefined) out[key] = record[key];
  return out as unknown as BuildSummary;
}

/** A record from its counter and its groves' entries (in any order). */
export function recordOf(summary: BuildSummary, groves: Iterable<SettledGrove>): BuildRecord {
  const landed: number[] = [];
  const failed: { grove: number; error: string }[] = [];
  const groveStats: Record<number, GroveStats> = {};
  for (const g of groves) {
    if (g.outcome === "landed") {
      landed.push(g.grove);
      groveStats[g.grove] = g.stats;
    } else failed.push({ grove: g.grove, error: g.error });
  }
  landed.sort((a, b) => a - b);
  failed.sort((a, b) => a.grove - b.grove);
  return { ...summaryOf(summary), landed, failed, groveStats };
}

/** The entry of one grove in a full record, or undefined while it is outstanding. */
export function groveEntry(record: BuildRecord, grove: number): SettledGrove | undefined {
  if (record.landed.includes(grove)) return { grove, outcome: "landed", stats: record.groveStats[grove] };
  const failed = record.failed.find((f) => f.grove === grove);
  return failed && { grove, outcome: "failed", error: failed.error };
}

/**
 * Whether a fresh counter may be created: nothing settled yet, every grove remaining. Builds start empty; groves
 * arrive through landGrove (also copied ones), so the counts and the entries always agree.
 */
export function checkNewRecord(record: BuildRecord): void {
  const fresh =
    record.remaining === record.total &&
    record.landedCount === 0 &&
    record.failedCount === 0 &&
    record.treesLanded === 0 &&
    record.landed.length === 0 &&
    record.failed.length === 0 &&
    Object.keys(record.groveStats).length === 0 &&
    !TERMINAL_STATUSES.includes(record.status) &&
    record.status !== "AGGREGATING";
  if (!fresh) throw new LedgerError(`build ${record.buildId}: a new record starts with no grove settled (make it with newBuildRecord)`);
  if (!Number.isInteger(record.total) || record.total < 1) throw new LedgerError(`build ${record.buildId}: total must be a positive integer; got ${record.total}`);
  if (!Number.isInteger(record.tolerated) || record.tolerated < 0 || record.tolerated >= record.total)
    throw new LedgerError(`build ${record.buildId}: tolerated must be 0..${record.total - 1}; got ${record.tolerated}`);
}

/**
 * The aggregation trigger: a write that leaves the build TRAINING with nothing remaining, after a state that was
 * not already that: the last grove settling, a dead claim reopened, or a lost trigger re-fired (redrives grew).
 */
export function isAggregationTrigger(change: LedgerChange): boolean {
  const n = change.new;
  if (n.status !== "TRAINING" || n.remaining !== 0) return false;
  const o = change.old;
  return !o || o.status !== "TRAINING" || o.remaining !== 0 || (o.redrives ?? 0) !== (n.redrives ?? 0);
}

/**
 * Lambda event-source filter for the ledger table's DynamoDB stream (NEW_AND_OLD_IMAGES): pass it as
 * `{ Pattern: JSON.stringify(AGGREGATION_TRIGGER_FILTER) }`. It cannot compare old and new images; the writes it
 * lets through are exactly the triggers above (the last landing, a reopen, a re-trigger: nothing else leaves a
 * build TRAINING with remaining 0, and the next write is the claim, status AGGREGATING). Groves' entries and
 * alias items carry neither attribute, so they never match. claimAggregation keeps it exactly-once regardless.
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

/**
 * A rule's verdict: the counter to write and the grove entry to add (both undefined = write nothing), and what
 * the caller returns. A ledger applies `next` and `settle` together or not at all.
 */
export interface Decision<R> {
  next?: BuildSummary;
  settle?: SettledGrove;
  result: R;
}

function checkGrove(s: BuildSummary, grove: number): void {
  if (!Number.isInteger(grove) || grove < 0 || grove >= s.total)
    throw new LedgerError(`build ${s.buildId} has groves 0..${s.total - 1}; got ${grove}`);
}

/** One line of at most MAX_ERROR_CHARS characters. */
export function boundedError(error: string): string {
  const line = error.replace(/\s*\n\s*/g, "; ");
  return line.length > MAX_ERROR_CHARS ? `${line.slice(0, MAX_ERROR_CHARS - 3)}...` : line;
}

/** Why a build failed when a grove took it over its tolerance (bounded: the grove's error is). */
export function toleranceReason(s: Pick<BuildSummary, "total" | "tolerated">, failedCount: number, grove: number, error: string): string {
  return `${failedCount} of ${s.total} groves failed (tolerated ${s.tolerated}); grove ${grove}: ${boundedError(error)}`;
}

/**
 * The ledger's transitions as pure functions of the current counter (and, for landings and failures, the grove's
 * entry if it has one). In-process ledgers apply them atomically; the DynamoDB ledger expresses the same rules as
 * condition expressions (the counter and the grove's entry in one transaction), and the contract suite checks that
 * both agree. These are the rules of any fan-in of counted members: a study counting its builds is the same shape.
 */
export const ledgerRules = {
  startTraining(s: BuildSummary, now: number): Decision<boolean> {
    if (s.status !== "PENDING") return { result: false };
    return { next: { ...s, status: "TRAINING", updatedAt: now }, result: true };
  },

  landGrove(s: BuildSummary, entry: SettledGrove | undefined, grove: number, stats: GroveStats, now: number): Decision<LandResult> {
    checkGrove(s, grove);
    if (s.status !== "TRAINING" || entry) return { result: { landed: false, remaining: s.remaining } };
    const settle: SettledGrove = { grove, outcome: "landed", stats };
    const next: BuildSummary = {
      ...s,
      remaining: s.remaining - 1,
      landedCount: s.landedCount + 1,
      treesLanded: s.treesLanded + stats.trees,
      ...(stats.copied ? { treesCopied: (s.treesCopied ?? 0) + stats.trees } : {}),
      lastSettled: settle,
      lastLandedAt: now,
      updatedAt: now,
    };
    return { next, settle, result: { landed: true, remaining: next.remaining } };
  },

  failGrove(s: BuildSummary, entry: SettledGrove | undefined, grove: number, error: string, now: number): Decision<FailGroveResult> {
    checkGrove(s, grove);
    if (s.status !== "TRAINING" || entry) return { result: { recorded: false, remaining: s.remaining, buildFailed: false } };
    const settle: SettledGrove = { grove, outcome: "failed", error: boundedError(error) };
    const failedCount = s.failedCount + 1;
    const next: BuildSummary = { ...s, remaining: s.remaining - 1, failedCount, lastSettled: settle, updatedAt: now };
    const buildFailed = failedCount > s.tolerated;
    if (buildFailed) {
      next.status = "FAILED";
      next.reason = toleranceReason(s, failedCount, grove, error);
    }
    return { next, settle, result: { recorded: true, remaining: next.remaining, buildFailed } };
  },

  claimAggregation(s: BuildSummary, now: number): Decision<boolean> {
    if (s.status !== "TRAINING" || s.remaining !== 0) return { result: false };
    return { next: { ...s, status: "AGGREGATING", claims: (s.claims ?? 0) + 1, claimedAt: now, updatedAt: now }, result: true };
  },

  /**
   * AGGREGATING -> TRAINING (remaining stays 0) for an aggregator known to be dead (its claim older than its time
   * limit, or a store this process alone owns). It is an aggregation trigger: the next aggregator claims it. With
   * `claim`, only if that is still the number of claims (a claim made since is alive).
   */
  reopenAggregation(s: BuildSummary, now: number, claim?: number): Decision<boolean> {
    if (s.status !== "AGGREGATING" || (claim !== undefined && (s.claims ?? 0) !== claim)) return { result: false };
    return { next: { ...s, status: "TRAINING", redrives: (s.redrives ?? 0) + 1, updatedAt: now }, result: true };
  },

  /** TRAINING with nothing remaining and no aggregator: fires the aggregation trigger again (a lost one). */
  redriveAggregation(s: BuildSummary, now: number): Decision<boolean> {
    if (s.status !== "TRAINING" || s.remaining !== 0) return { result: false };
    return { next: { ...s, redrives: (s.redrives ?? 0) + 1, updatedAt: now }, result: true };
  },

  /** Notes that the outstanding groves of a TRAINING build were queued again (resume, the sweeper). */
  recordRequeue(s: BuildSummary, now: number): Decision<boolean> {
    if (s.status !== "TRAINING" || s.remaining === 0) return { result: false };
    return { next: { ...s, requeues: (s.requeues ?? 0) + 1, updatedAt: now }, result: true };
  },

  complete(s: BuildSummary, result: BuildResult, now: number): Decision<boolean> {
    if (s.status !== "AGGREGATING") return { result: false };
    return { next: { ...s, status: "COMPLETED", result, updatedAt: now }, result: true };
  },

  /**
   * Any non-terminal status -> FAILED. With `claim` (an aggregator's own failure), only while that aggregation is the
   * build's: AGGREGATING under that claim count. One whose claim was reopened as dead, or taken since, steps aside:
   * its groves are all in, and the live aggregator (or the next) makes the model.
   */
  fail(s: BuildSummary, reason: string, now: number, claim?: number): Decision<boolean> {
    if (TERMINAL_STATUSES.includes(s.status)) return { result: false };
    if (claim !== undefined && (s.status !== "AGGREGATING" || (s.claims ?? 0) !== claim)) return { result: false };
    return { next: { ...s, status: "FAILED", reason: boundedError(reason), updatedAt: now }, result: true };
  },
};

export function buildNotFound(buildId: string): LedgerError {
  return new LedgerError(`build ${buildId} not found`, "not-found");
}
