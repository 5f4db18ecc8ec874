import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Logger } from "@aws-lambda-powertools/logger";
import { decodeGroveTask, errorLine, PackCache, recordGroveError, trainGrove, type BlobStore, type BuildLedger, type Clock } from "@canopy/core";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { resources } from "./resources.ts";
import { containerId, functionLogger, memoryMb } from "./runtime.ts";

export interface TrainerDeps {
  ports?: () => Promise<{ blobs: BlobStore; ledger: BuildLedger }>;
  /** Decoded packs, kept across warm invocations. */
  packs?: PackCache;
  logger?: Logger;
  clock?: Clock;
}

/**
 * The grove queue's consumer: each record is one grove task for core's trainGrove. A failing record is
 * reported in batchItemFailures (never failing the batch), so SQS redelivers only it, and after its last
 * receive moves it to the dead-letter queue; its error is saved next to the grove for the dead-letter consumer.
 */
export function createTrainer(deps: TrainerDeps = {}) {
  const packs = deps.packs ?? new PackCache();
  const logger = deps.logger ?? functionLogger("trainer");
  const getPorts = deps.ports ?? (async () => ({ blobs: await resources.blobs(), ledger: await resources.ledger() }));

  return async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    logger.addContext(context);
    const ports = await getPorts();
    const memory = memoryMb(context);
    const worker = containerId(context);
    const train = async (record: SQSRecord) => {
      const task = decodeGroveTask(record.body);
      const receiveCount = Number(record.attributes.ApproximateReceiveCount);
      const where = { buildId: task.buildId, grove: task.grove, receiveCount };
      try {
        const delivery = { worker, ...(Number.isInteger(receiveCount) && receiveCount > 0 ? { attempt: receiveCount } : {}) };
        const result = await trainGrove(task, { ...ports, packs, ...(memory !== undefined ? { memoryMb: memory } : {}), ...(deps.clock ? { clock: deps.clock } : {}) }, delivery);
        if (result.status === "skipped") logger.info("grove skipped", { ...where, reason: result.reason });
        else logger.info(`grove ${result.status}`, { ...where, remaining: result.remaining, stats: result.stats });
        return result.status;
      } catch (err) {
        logger.error("grove failed", { ...where, error: errorLine(err) });
        await recordGroveError(task, err, ports.blobs).catch((e: unknown) => logger.warn("could not save the grove's error", { ...where, error: errorLine(e) }));
        throw err;
      }
    };
    // A processor per invocation: it holds the batch's state, and the emulator may run invocations concurrently.
    return processPartialResponse(event, train, new BatchProcessor(EventType.SQS), { context, throwOnFullBatchFailure: false, processInParallel: false });
  };
}

export const handler = createTrainer();
