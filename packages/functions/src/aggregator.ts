import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Logger } from "@aws-lambda-powertools/logger";
import {
  aggregate,
  aggregatePartitionedRun,
  aggregateStudy,
  isPartitionRunId,
  isStudyId,
  isAggregationTrigger,
  PackCache,
  pricesFromEnv,
  type BlobStore,
  type BuildLedger,
  type BuildReport,
  type Clock,
  type Notifier,
  type Prices,
  type TaskQueue,
} from "@canopy/core";
import { renderReport } from "@canopy/report";
import { changeFromStreamRecord } from "@canopy/runtime-aws";
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from "aws-lambda";
import { resources } from "./resources.ts";
import { functionLogger, memoryMb } from "./runtime.ts";

export interface AggregatorDeps {
  /**
   * `queue`: where a study's aggregation queues builds: its final model (refit), a halving round's new trees (the
   * aggregator extends the survivors' builds).
   */
  ports?: () => Promise<{ blobs: BlobStore; ledger: BuildLedger; notifier: Notifier; queue?: TaskQueue }>;
  packs?: PackCache;
  logger?: Logger;
  clock?: Clock;
  /** Default: CANOPY_PRICES (JSON), else AWS's us-east-1 prices. */
  prices?: Partial<Prices>;
  /** report.html from the report; default @canopy/report's (its chart library comes with the bundle: copyFiles). */
  renderReport?: (report: BuildReport) => string;
}

/**
 * The ledger stream's consumer. Lambda's filter (AGGREGATION_TRIGGER_FILTER) passes only the write that took
 * `remaining` to 0 while TRAINING; core's isAggregationTrigger checks it again on the unmarshalled images, so
 * anything else that reaches the handler is ignored. aggregate() claims the build first, so a redelivered
 * record does nothing, and after the claim it turns any error into a FAILED build with one notification.
 * A record that throws (the claim itself failing) is reported by sequence number for Lambda to retry.
 */
export function createAggregator(deps: AggregatorDeps = {}) {
  const packs = deps.packs ?? new PackCache(2);
  const logger = deps.logger ?? functionLogger("aggregator");
  const getPorts =
    deps.ports ??
    (async () => ({
      blobs: await resources.blobs(),
      ledger: await resources.ledger(),
      notifier: await resources.notifier(),
      // The grove queue (linked), resolved on first use: only a study's final build and halving rounds send tasks.
      queue: { send: async (tasks: Parameters<TaskQueue["send"]>[0]) => (await resources.queue()).send(tasks) },
    }));
  let prices = deps.prices;

  return async (event: DynamoDBStreamEvent, context: Context): Promise<DynamoDBBatchResponse> => {
    logger.addContext(context);
    prices ??= pricesFromEnv(process.env);
    const ports = await getPorts();
    const memory = memoryMb(context);
    const handle = async (record: DynamoDBRecord) => {
      const change = changeFromStreamRecord(record);
      if (!change || !isAggregationTrigger(change)) {
        logger.debug("stream record ignored", { eventName: record.eventName, sequence: record.dynamodb?.SequenceNumber });
        return "ignored";
      }
      const { buildId } = change.new;
      // A study's record reaches its trigger the same way when its last member build lands.
      if (isStudyId(buildId)) {
        const study = await aggregateStudy(buildId, { ...ports, renderReport, ...(deps.clock ? { clock: deps.clock } : {}) });
        if (study.outcome === "completed") logger.info("study completed", { studyId: study.studyId, best: study.report.best_params_, score: study.report.best_score_, final: study.report.final?.buildId });
        else if (study.outcome === "ranked") logger.info("study ranked; its final build is queued", { studyId: study.studyId, finalBuild: study.finalBuild, stage: study.next });
        else if (study.outcome === "advanced") logger.info("study round ranked; the survivors' builds are extended", { studyId: buildId, round: study.round, next: study.next });
        else if (study.outcome === "failed") logger.error("study failed in aggregation", { studyId: buildId, reason: study.reason });
        else logger.info("study aggregation not claimed (already claimed, or not ready)", { studyId: buildId });
        return study.outcome;
      }
      // A partitioned run's record too, when its last partition's build lands: it writes the partitioned model and its page.
      if (isPartitionRunId(buildId)) {
        const run = await aggregatePartitionedRun(buildId, { ...ports, renderReport, ...(deps.clock ? { clock: deps.clock } : {}) });
        if (run.outcome === "completed") {
          logger.info("partitioned run completed", { runId: buildId, counts: run.report.counts, metrics: run.report.metrics, pageKey: run.pageKey });
          if (run.pageError !== undefined) logger.error("report.html was not written", { runId: buildId, error: run.pageError });
        } else if (run.outcome === "failed") logger.error("partitioned run failed in aggregation", { runId: buildId, reason: run.reason });
        else logger.info("partitioned run aggregation not claimed (already claimed, or not ready)", { runId: buildId });
        return run.outcome;
      }
      const outcome = await aggregate(buildId, {
        ...ports,
        packs,
        renderReport: deps.renderReport ?? renderReport,
        ...(prices ? { prices } : {}),
        ...(memory !== undefined ? { memoryMb: memory } : {}),
        ...(deps.clock ? { clock: deps.clock } : {}),
      });
      if (outcome.outcome === "completed") {
        logger.info("build completed", { buildId, modelKey: outcome.modelKey, reportHtmlKey: outcome.reportHtmlKey, timings: outcome.report.timings, usd: outcome.report.cost.usd.total });
        if (outcome.reportHtmlError) logger.error("report.html was not written", { buildId, error: outcome.reportHtmlError });
      } else if (outcome.outcome === "failed") logger.error("build failed in aggregation", { buildId, reason: outcome.reason });
      else logger.info("aggregation not claimed (already claimed, or not ready)", { buildId });
      return outcome.outcome;
    };
    return processPartialResponse(event, handle, new BatchProcessor(EventType.DynamoDBStreams), {
      context,
      throwOnFullBatchFailure: false,
      processInParallel: false,
    });
  };
}

export const handler = createAggregator();
