import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Logger } from "@aws-lambda-powertools/logger";
import { errorLine, failGroveTask, groveTaskRef, lastGroveError, LedgerError, type BlobStore, type BuildLedger, type Notifier } from "@canopy/core";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { resources } from "./resources.ts";
import { functionLogger } from "./runtime.ts";

export interface DeadLetterDeps {
  /** `blobs` is optional: without it the failure reason cannot quote the trainer's last error. */
  ports?: () => Promise<{ ledger: BuildLedger; notifier: Notifier; blobs?: BlobStore }>;
  logger?: Logger;
}

async function defaultPorts(logger: Logger) {
  const [ledger, notifier] = await Promise.all([resources.ledger(), resources.notifier()]);
  const blobs = await resources.blobs().catch((err: unknown) => {
    logger.warn("no bucket linked: failure reasons will not quote the trainer's error", { error: errorLine(err) });
    return undefined;
  });
  return { ledger, notifier, ...(blobs ? { blobs } : {}) };
}

/**
 * The dead-letter queue's consumer: a grove task SQS gave up on (received maxReceiveCount times) is handed to
 * core's failGroveTask with the trainer's last recorded error. Over the build's tolerance that fails the build
 * and notifies once; within it, the grove counts as resolved, and when it was the last one the ledger's
 * stream triggers the aggregator, which completes the build with the groves it has.
 */
export function createDeadLetterConsumer(deps: DeadLetterDeps = {}) {
  const logger = deps.logger ?? functionLogger("dlq");
  const getPorts = deps.ports ?? (() => defaultPorts(logger));

  return async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    logger.addContext(context);
    const ports = await getPorts();
    const handle = async (record: SQSRecord) => {
      // The grove it names is all that matters (a message with other fields wrong still names its grove).
      const { task, problems } = groveTaskRef(record.body);
      if (!task) {
        // No build to attribute it to: dropping it is all that can be done.
        logger.error("dead letter is not a grove task; dropped", { error: problems.join("; "), body: record.body.slice(0, 500) });
        return "dropped";
      }
      const deliveries = record.attributes.ApproximateReceiveCount;
      const recorded = ports.blobs ? await lastGroveError(task, ports.blobs) : undefined;
      const error = recorded ?? `no error recorded by the trainer; gave up after ${deliveries} deliveries`;
      let outcome: Awaited<ReturnType<typeof failGroveTask>>;
      try {
        outcome = await failGroveTask(task, error, ports);
      } catch (err) {
        // A grove its build does not have, or a build that is gone: nothing to record, and retrying cannot change that.
        if (!(err instanceof LedgerError)) throw err;
        logger.error("dead letter names no grove of a known build; dropped", { buildId: task.buildId, grove: task.grove, error: errorLine(err) });
        return "dropped";
      }
      logger[outcome.buildFailed ? "error" : "warn"]("grove given up on", { buildId: task.buildId, grove: task.grove, error, ...outcome });
      return outcome;
    };
    return processPartialResponse(event, handle, new BatchProcessor(EventType.SQS), { context, throwOnFullBatchFailure: false, processInParallel: false });
  };
}

export const handler = createDeadLetterConsumer();
