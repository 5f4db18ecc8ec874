import type { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import { sleep } from "@canopy/core";
import { DynamoStreamReader } from "../stream-reader.ts";
import { dropEmulatorArtifacts, dynamodbRecord } from "./events.ts";
import { checkFilterPattern, passesFilters, type FilterPattern } from "./filter.ts";
import type { FunctionSettings, Invoker, LambdaHandler } from "./invoker.ts";

export type StreamHandler = LambdaHandler<DynamoDBStreamEvent, DynamoDBBatchResponse | void>;

export interface StreamMapping extends FunctionSettings {
  streamArn: string;
  handler: StreamHandler;
  /** FilterCriteria patterns (objects, not their JSON): a record is delivered if it matches any. */
  filters?: readonly object[];
  /** Records per invocation. Default 100 (Lambda's default for streams). */
  batchSize?: number;
  /** Retries of a failed batch before it is skipped (Lambda's MaximumRetryAttempts). Default 3. */
  maxRetryAttempts?: number;
  /** Poll interval when the stream is idle. Default 100 ms. */
  pollIntervalMs?: number;
  /** Records written before this epoch ms are not delivered. Default: 5 s before start (see DynamoStreamReader). */
  since?: number;
  /** Fault injection: each batch is delivered this many times, as after a Lambda timeout. Default 1. */
  deliveries?: number;
}

export interface StreamMappingStats {
  /** Stream records read. */
  read: number;
  /** moto artifacts dropped: no-op MODIFYs and key-only INSERTs (see dropEmulatorArtifacts). */
  artifacts: number;
  /** Records that passed the filters and were delivered (once per record, whatever `deliveries`). */
  delivered: number;
  invocations: number;
  /** Records given up on after maxRetryAttempts. */
  discarded: number;
}

/**
 * Lambda's DynamoDB stream event source mapping (ReportBatchItemFailures on): records in order per shard,
 * moto artifacts removed, filtered by the mapping's patterns (as Lambda does before invoking: records that do
 * not match are dropped, not delivered), batched, and retried in order. When the handler throws, the batch is
 * retried; when it names failed items, the retry starts at the failed record with the lowest sequence number
 * (Lambda's checkpoint). After maxRetryAttempts retries the batch is skipped and reported as an error.
 */
export function startStreamMapping(
  mapping: StreamMapping,
  deps: { streams: DynamoDBStreamsClient; invoker: Invoker; region: string; onError: (err: unknown) => void },
): { stop: () => Promise<void>; stats: StreamMappingStats } {
  const filters = (mapping.filters ?? []).map((p) => {
    checkFilterPattern(p);
    return p as FilterPattern;
  });
  const batchSize = mapping.batchSize ?? 100;
  const maxRetries = mapping.maxRetryAttempts ?? 3;
  const stats: StreamMappingStats = { read: 0, artifacts: 0, delivered: 0, invocations: 0, discarded: 0 };
  const stopping = new AbortController();

  const deliver = async (batch: DynamoDBRecord[]) => {
    let pending = batch;
    for (let attempt = 0; pending.length > 0; attempt++) {
      stats.invocations++;
      const outcome = await deps.invoker.invoke(mapping, mapping.handler, { Records: pending }, (r) => r?.batchItemFailures?.length ?? 0);
      let retryFrom = -1;
      if (!outcome.ok) retryFrom = 0;
      else {
        const failedSeqs = new Set((outcome.result?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
        if (failedSeqs.size > 0) {
          const index = pending.findIndex((r) => failedSeqs.has(r.dynamodb?.SequenceNumber ?? ""));
          retryFrom = index >= 0 ? index : 0; // an unknown identifier fails the whole batch
        }
      }
      if (retryFrom < 0) return;
      pending = pending.slice(retryFrom);
      if (attempt >= maxRetries) {
        stats.discarded += pending.length;
        const why = outcome.ok ? "it reported failed items" : String((outcome.error as Error)?.message ?? outcome.error);
        deps.onError(new Error(`${mapping.functionName}: gave up on ${pending.length} stream record(s) after ${maxRetries} retries: ${why}`));
        return;
      }
      await sleep(Math.min(200 * 2 ** attempt, 5000), stopping.signal);
    }
  };

  const reader = new DynamoStreamReader(deps.streams, async () => mapping.streamArn, {
    pollIntervalMs: mapping.pollIntervalMs ?? 100,
    ...(mapping.since !== undefined ? { since: mapping.since } : {}),
    onError: deps.onError,
  });
  const stopReader = reader.start(async (sdkRecords) => {
    stats.read += sdkRecords.length;
    const cleaned = dropEmulatorArtifacts(sdkRecords.map((r) => dynamodbRecord(r, mapping.streamArn, deps.region)));
    stats.artifacts += cleaned.noOpModifies + cleaned.keyOnlyInserts;
    const matching = cleaned.records.filter((r) => passesFilters(filters, r));
    for (let i = 0; i < matching.length; i += batchSize) {
      const batch = matching.slice(i, i + batchSize);
      stats.delivered += batch.length;
      for (let d = 0; d < (mapping.deliveries ?? 1); d++) await deliver(batch);
    }
  });
  return {
    stats,
    async stop() {
      stopping.abort();
      await stopReader();
    },
  };
}
