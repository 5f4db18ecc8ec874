import type {
  BuildRecord,
  BuildResult,
  BuildSummary,
  FailGroveResult,
  GroveStats,
  LandResult,
  LedgerChange,
  SettledGrove,
} from "./ledger.ts";
import type { BuildNotification } from "./notification.ts";
import type { StudyNotification } from "./study-report.ts";
import type { PartitionNotification } from "./partition-report.ts";
import type { GroveTask } from "./task.ts";

/** Content-addressed and per-build blobs (S3, a directory, memory). Keys come from keys.ts. */
export interface BlobStore {
  get(key: string): Promise<Uint8Array | undefined>;
  put(key: string, bytes: Uint8Array, contentType?: string): Promise<void>;
  /**
   * Stores the concatenation of `chunks` under `key` without holding it whole (a model merged grove by grove), and
   * nothing at all if the chunks or the store fail: the key keeps what it had. Optional: callers fall back to
   * collecting the chunks and calling put.
   */
  putStream?(key: string, chunks: AsyncIterable<Uint8Array>, contentType?: string): Promise<void>;
  exists(key: string): Promise<boolean>;
}

/** Delivers grove tasks to trainers, at least once (SQS, an in-process queue). */
export interface TaskQueue {
  send(tasks: GroveTask[]): Promise<void>;
}

/** Any message a Notifier publishes: a build's, a study's or a partitioned run's (tell them apart by `type`). */
export type CanopyNotification = BuildNotification | StudyNotification | PartitionNotification;

/** Announces finished builds and studies (SNS, stdout, a webhook). */
export interface Notifier {
  publish(notification: CanopyNotification): Promise<void>;
}

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/**
 * The build ledger (DynamoDB, a file, memory): per build, a counter of constant size (`BuildSummary`) and one entry
 * per settled grove, so recording a grove costs the same whatever the build's size. Every update is atomic per
 * build (the counter and the grove's entry together) and follows `ledgerRules`; updates on an unknown build throw
 * LedgerError with code "not-found". Run `describeLedgerContract` against any implementation.
 */
export interface BuildLedger {
  /** A new record (newBuildRecord: nothing settled). False if one with this id already exists (nothing is written). */
  create(record: BuildRecord): Promise<boolean>;
  /** PENDING -> TRAINING. */
  startTraining(buildId: string): Promise<boolean>;
  /** Idempotent; exactly one call across all trainers sees `remaining` reach 0. */
  landGrove(buildId: string, grove: number, stats: GroveStats): Promise<LandResult>;
  /** Counts toward the tolerance; over it, the same write moves the build to FAILED. */
  failGrove(buildId: string, grove: number, error: string): Promise<FailGroveResult>;
  /** TRAINING with remaining 0 -> AGGREGATING; one winner. Counts the claim and stamps its time (the lease). */
  claimAggregation(buildId: string): Promise<boolean>;
  /**
   * AGGREGATING -> TRAINING, an aggregation trigger: for an aggregator known to be dead. With `claim`, only while
   * the build's claim count is still that (see ledgerRules).
   */
  reopenAggregation(buildId: string, options?: { claim?: number }): Promise<boolean>;
  /** TRAINING with remaining 0: fires the aggregation trigger again (one that was lost). */
  redriveAggregation(buildId: string): Promise<boolean>;
  /** Notes that the outstanding groves of a TRAINING build were queued again. */
  recordRequeue(buildId: string): Promise<boolean>;
  /** AGGREGATING -> COMPLETED. */
  complete(buildId: string, result: BuildResult): Promise<boolean>;
  /** Any non-terminal status -> FAILED; with `claim`, only while AGGREGATING under that claim (ledgerRules.fail). */
  fail(buildId: string, reason: string, options?: { claim?: number }): Promise<boolean>;
  /** The counter and every grove's entry: reads that grow with the build (status, aggregation, reports). */
  get(buildId: string): Promise<BuildRecord | undefined>;
  /** The counter alone, one small read whatever the build's size (progress, sweeping, trainers). */
  summary(buildId: string): Promise<BuildSummary | undefined>;
  /** One grove's entry; undefined while it is outstanding (or the build is unknown). */
  grove(buildId: string, grove: number): Promise<SettledGrove | undefined>;
  /**
   * A change feed like a DynamoDB stream: the listener sees every successful write of a counter (create included),
   * in order per build, possibly after the write's promise resolved. Returns an unsubscribe function.
   */
  watch(listener: (change: LedgerChange) => void): () => void;
}
