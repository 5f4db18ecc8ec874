import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import type { BuildRecord, BuildResult, BuildStatus, GroveStats } from "@canopy/core";
import { AwsInternalError } from "./errors.ts";

/**
 * A build record as a DynamoDB item (partition key `buildId`, S). Everything a condition expression or the
 * stream filter reads is a top-level scalar or set:
 * - `status` (S), `total`, `remaining`, `tolerated`, `failedCount` (N);
 * - `landed` and `failedGroves` (NS of grove numbers; absent while empty, as DynamoDB has no empty sets);
 * - `failures` (M grove -> error), `groveStats` (M grove -> stats), `tags` (M), `result` (M), `reason` (S).
 * `failedCount` duplicates the size of `failedGroves` so "over the tolerance" is one comparison.
 */
export type Item = Record<string, AttributeValue>;

const STATUSES: readonly BuildStatus[] = ["PENDING", "TRAINING", "AGGREGATING", "COMPLETED", "FAILED"];

interface ItemShape {
  buildId: string;
  status: BuildStatus;
  total: number;
  remaining: number;
  tolerated: number;
  failedCount: number;
  landed?: Set<number>;
  failedGroves?: Set<number>;
  failures: Record<string, string>;
  groveStats: Record<string, GroveStats>;
  tags: Record<string, string>;
  createdAt: number;
  updatedAt: number;
  lastLandedAt?: number;
  reason?: string;
  result?: BuildResult;
}

export function recordToItem(record: BuildRecord): Item {
  const shape: ItemShape = {
    buildId: record.buildId,
    status: record.status,
    total: record.total,
    remaining: record.remaining,
    tolerated: record.tolerated,
    failedCount: record.failed.length,
    landed: record.landed.length > 0 ? new Set(record.landed) : undefined,
    failedGroves: record.failed.length > 0 ? new Set(record.failed.map((f) => f.grove)) : undefined,
    failures: Object.fromEntries(record.failed.map((f) => [String(f.grove), f.error])),
    groveStats: record.groveStats as Record<string, GroveStats>,
    tags: record.tags,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    lastLandedAt: record.lastLandedAt,
    reason: record.reason,
    result: record.result,
  };
  return marshall(shape, { removeUndefinedValues: true });
}

/**
 * True when an image carries a whole build record. moto's stream emits a key-only INSERT first when an
 * UpdateItem creates an item; such images (and anything not written by this ledger) are not records.
 */
export function isBuildItem(item: Item | undefined): item is Item {
  return Boolean(item?.buildId?.S && item.status?.S && STATUSES.includes(item.status.S as BuildStatus) && item.total?.N && item.remaining?.N);
}

export function itemToRecord(item: Item): BuildRecord {
  if (!isBuildItem(item)) throw new AwsInternalError(`DynamoDB item ${JSON.stringify((item as Item).buildId?.S ?? null)} is not a Canopy build record`);
  const s = unmarshall(item) as ItemShape;
  const record: BuildRecord = {
    buildId: s.buildId,
    status: s.status,
    total: s.total,
    remaining: s.remaining,
    landed: [...(s.landed ?? [])].sort((a, b) => a - b),
    failed: Object.entries(s.failures ?? {})
      .map(([grove, error]) => ({ grove: Number(grove), error }))
      .sort((a, b) => a.grove - b.grove),
    tolerated: s.tolerated,
    createdAt: s.createdAt,
    updatedAt: s.updatedAt,
    groveStats: s.groveStats ?? {},
    tags: s.tags ?? {},
  };
  // Optional fields stay absent when absent, as the contract requires.
  if (s.lastLandedAt !== undefined) record.lastLandedAt = s.lastLandedAt;
  if (s.reason !== undefined) record.reason = s.reason;
  if (s.result !== undefined) record.result = s.result;
  return record;
}
