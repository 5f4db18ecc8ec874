import type { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import type { SQSClient } from "@aws-sdk/client-sqs";
import { AGGREGATION_TRIGGER_FILTER } from "@canopy/core";
import { clients, clientSettings, EMULATOR_REGION } from "../clients.ts";
import { Invoker, Slots, type InvocationInfo } from "./invoker.ts";
import { startSqsMapping, type SqsHandler, type SqsMapping, type SqsMappingStats } from "./sqs-mapping.ts";
import { startStreamMapping, type StreamHandler, type StreamMapping, type StreamMappingStats } from "./stream-mapping.ts";

export interface EmulatorOptions {
  sqs?: SqsMapping[];
  streams?: StreamMapping[];
  /**
   * Handler invocations running at once, across all mappings. Default 1: every handler writes the build's
   * ledger item, and a stock moto_server applies concurrent conditional updates to one item without a lock
   * (see runtime-aws's README); real DynamoDB, LocalStack and the test harness's patched moto do not need it.
   */
  maxConcurrency?: number;
  region?: string;
  clients?: { sqs?: SQSClient; streams?: DynamoDBStreamsClient };
  onInvocation?: (info: InvocationInfo) => void;
  /** Poll, delete and retry-exhaustion errors; the emulator keeps going. Default: console.error. */
  onError?: (err: unknown) => void;
}

export interface RunningEmulator {
  stats: { sqs: Record<string, SqsMappingStats>; streams: Record<string, StreamMappingStats> };
  /** Stops polling, lets invocations in flight finish, and resolves when every loop has ended. */
  stop(): Promise<void>;
}

/** Runs event source mappings in this process: the handlers are called as Lambda would call them. */
export function startEmulator(options: EmulatorOptions): RunningEmulator {
  const region = options.region ?? clientSettings().region ?? EMULATOR_REGION;
  const onError = options.onError ?? ((err: unknown) => console.error("emulator:", err));
  const invoker = new Invoker(new Slots(options.maxConcurrency ?? 1), region, options.onInvocation);
  const sqs = options.clients?.sqs ?? clients.sqs();
  const streams = options.clients?.streams ?? clients.dynamodbStreams();
  const running: { stop: () => Promise<void> }[] = [];
  const stats: RunningEmulator["stats"] = { sqs: {}, streams: {} };
  try {
    for (const m of options.sqs ?? []) {
      const r = startSqsMapping(m, { sqs, invoker, region, onError });
      stats.sqs[m.functionName] = r.stats;
      running.push(r);
    }
    for (const m of options.streams ?? []) {
      const r = startStreamMapping(m, { streams, invoker, region, onError });
      stats.streams[m.functionName] = r.stats;
      running.push(r);
    }
  } catch (err) {
    void Promise.all(running.map((r) => r.stop()));
    throw err;
  }
  return {
    stats,
    async stop() {
      await Promise.all(running.map((r) => r.stop()));
    },
  };
}

export interface CanopyHandlers {
  trainer: SqsHandler;
  deadLetter: SqsHandler;
  aggregator: StreamHandler;
}

export interface CanopyEventSourceOptions {
  queueUrl: string;
  deadLetterQueueUrl: string;
  streamArn: string;
  handlers: CanopyHandlers;
  /** Memory reported to the handlers (context.memoryLimitInMB). Default 1024. */
  memoryMb?: number;
  /** Trainer batch size. Default 1: one grove per invocation, so a slow grove does not hold others back. */
  trainerBatchSize?: number;
  trainerPollers?: number;
  streamPollIntervalMs?: number;
  /** Fault injection for tests: deliver every aggregator batch this many times. */
  streamDeliveries?: number;
  since?: number;
}

/**
 * The three mappings the SST app declares, for the emulator: grove queue -> trainer, dead-letter queue ->
 * dead-letter consumer, ledger stream -> aggregator filtered by core's AGGREGATION_TRIGGER_FILTER (the same
 * object sst.config.ts passes to Lambda).
 */
export function canopyEventSources(o: CanopyEventSourceOptions): Pick<EmulatorOptions, "sqs" | "streams"> {
  const memoryMb = o.memoryMb ?? 1024;
  return {
    sqs: [
      { functionName: "canopy-trainer", queueUrl: o.queueUrl, handler: o.handlers.trainer, batchSize: o.trainerBatchSize ?? 1, pollers: o.trainerPollers ?? 1, memoryMb },
      { functionName: "canopy-dead-letter", queueUrl: o.deadLetterQueueUrl, handler: o.handlers.deadLetter, batchSize: 10, memoryMb },
    ],
    streams: [
      {
        functionName: "canopy-aggregator",
        streamArn: o.streamArn,
        handler: o.handlers.aggregator,
        filters: [AGGREGATION_TRIGGER_FILTER],
        memoryMb,
        ...(o.streamPollIntervalMs !== undefined ? { pollIntervalMs: o.streamPollIntervalMs } : {}),
        ...(o.streamDeliveries !== undefined ? { deliveries: o.streamDeliveries } : {}),
        ...(o.since !== undefined ? { since: o.since } : {}),
      },
    ],
  };
}
