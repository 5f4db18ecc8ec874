// Messages between the runtime (main thread) and its trainer threads.
import { policyOf, type GroveResult } from "@canopy/core";
import type { PartitionPackOutcome, SpilledPartition } from "@canopy/core/ingest";
import type { SerializedError } from "./errors.ts";

/** The ledger calls a trainer may make; they run on the main thread's ledger. */
export const LEDGER_METHODS = [
  "get",
  "summary",
  "grove",
  "landGrove",
  "failGrove",
  "startTraining",
  "claimAggregation",
  "reopenAggregation",
  "redriveAggregation",
  "recordRequeue",
  "complete",
  "fail",
  "create",
] as const;
export type LedgerMethod = (typeof LEDGER_METHODS)[number];

export type { SerializedError } from "./errors.ts";

export interface TrainerInit {
  root: string;
  fsync: boolean;
  /** Passed through to the trainer module's hooks (tests inject faults with it). */
  data?: unknown;
}

export type ToTrainer =
  /** A dataset pack and its row-major bins, both in shared memory: sent once per trainer, never copied. */
  | { kind: "pack"; bytes: Uint8Array; rowBins: Uint8Array }
  | { kind: "task"; id: number; body: string; receiveCount: number }
  /** A partitioned run's partition to pack (preparation, before its groves): the runtime's threads are idle then. */
  | { kind: "pack-partition"; id: number; job: SpilledPartition }
  | { kind: "ledger-reply"; id: number; ok: true; value: unknown }
  | { kind: "ledger-reply"; id: number; ok: false; error: SerializedError };

export type FromTrainer =
  | { kind: "ledger"; id: number; method: LedgerMethod; args: unknown[] }
  | { kind: "done"; id: number; result: GroveResult }
  | { kind: "packed"; id: number; outcome: PartitionPackOutcome }
  | { kind: "failed"; id: number; error: SerializedError };

export function serializeError(err: unknown): SerializedError {
  const e = err instanceof Error ? err : new Error(String(err));
  const code = (e as { code?: unknown }).code;
  return { name: e.name, message: e.message, policy: policyOf(err), ...(typeof code === "string" ? { code } : {}) };
}
