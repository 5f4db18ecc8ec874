import type {
  BuildRecord,
  BuildResult,
  FailGroveResult,
  GroveStats,
  LandResult,
  LedgerChange,
} from "./ledger.ts";
import type { BuildNotification } from "./notification.ts";
import type { GroveTask } from "./task.ts";

/** Content-addressed and per-build blobs (S3, a directory, memory). Keys come from keys.ts. */
export interface BlobStore {
  get(key: string): Promise<Uint8Array | undefined>;
  put(key: string, bytes: Uint8Array, contentType?: string): Promise<void>;
  exists(key: string): Promise<boolean>;
}

/** Delivers grove tasks to trainers, at least once (SQS, an in-process queue). */
export interface TaskQueue {
  send(tasks: GroveTask[]): Promise<void>;
}

/** Announces finished builds (SNS, stdout, a webhook). */
export interface Notifier {
  publish(notification: BuildNotification): Promise<void>;
}

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/**
 * The build ledger (DynamoDB, a file, memory). Every update is atomic per build and follows `ledgerRules`;
 * updates on an unknown build throw LedgerError with code "not-found". Run `describeLedgerContract` against
 * any implementation.
 */
export interface BuildLedger {
  /** False if a record with this id already exists (nothing is written). */
  create(record: BuildRecord): Promise<boolean>;
  /** PENDING -> TRAINING. */
  startTraining(buildId: string): Promise<boolean>;
  /** Idempotent; exactly one call across all trainers sees `remaining` reach 0. */
  landGrove(buildId: string, grove: number, stats: GroveStats): Promise<LandResult>;
  /** Counts toward the tolerance; over it, the same write moves the build to FAILED. */
  failGrove(buildId: string, grove: number, error: string): Promise<FailGroveResult>;
  /** TRAINING with remaining 0 -> AGGREGATING; one winner. */
  claimAggregation(buildId: string): Promise<boolean>;
  /** AGGREGATING -> TRAINING, to aggregate again after an aggregator died mid-way (see ledgerRules). */
  reopenAggregation(buildId: string): Promise<boolean>;
  /** AGGREGATING -> COMPLETED. */
  complete(buildId: string, result: BuildResult): Promise<boolean>;
  /** Any non-terminal status -> FAILED. */
  fail(buildId: string, reason: string): Promise<boolean>;
  get(buildId: string): Promise<BuildRecord | undefined>;
  /**
   * A change feed like a DynamoDB stream: the listener sees every successful write (create included), in order
   * per build, possibly after the write's promise resolved. Returns an unsubscribe function.
   */
  watch(listener: (change: LedgerChange) => void): () => void;
}

