import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import type { Logger } from "@aws-lambda-powertools/logger";
import {
  errorLine,
  groveTaskRef,
  isRetryable,
  ManifestCache,
  PackCache,
  recordGroveError,
  TaskError,
  trainGrove,
  type BlobStore,
  type BuildLedger,
  type Clock,
} from "@canopy/core";
import { SqsDeadLetters } from "@canopy/runtime-aws";
import { DEAD_LETTER_QUEUE_ENV } from "@canopy/runtime-aws/names";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { resources } from "./resources.ts";
import { containerId, functionLogger, memoryMb } from "./runtime.ts";

/** Sends a message body to the grove dead-letter queue. */
export interface DeadLetters {
  send(body: string, cause: string): Promise<void>;
}

async function defaultDeadLetters(): Promise<DeadLetters | undefined> {
  const url = process.env[DEAD_LETTER_QUEUE_ENV];
  return url ? new SqsDeadLetters(url) : undefined;
}

export interface TrainerDeps {
  ports?: () => Promise<{ blobs: BlobStore; ledger: BuildLedger }>;
  /**
   * Where a task whose grove can never succeed goes at once: the dead-letter queue (whose consumer gives the grove up
   * and announces a build that fails). Default: the queue at CANOPY_DLQ_URL; without one, such a task is retried
   * until SQS's redrive moves it there.
   */
  deadLetters?: () => Promise<DeadLetters | undefined>;
  /** Decoded packs, kept across warm invocations. */
  packs?: PackCache;
  /** Build manifests, kept across warm invocations. */
  manifests?: ManifestCache;
  logger?: Logger;
  clock?: Clock;
}

/**
 * The grove queue's consumer: each record names one grove of a build, which core's trainGrove trains from the
 * build's manifest. A transient or internal failure is reported in batchItemFailures (never failing the batch), so
 * SQS redelivers only it, and after its last receive moves it to the dead-letter queue; its error is saved next to
 * the grove for the dead-letter consumer. An input error (a damaged pack, a missing manifest: retrying cannot help)
 * takes the dead-letter path at once: the message goes to the dead-letter queue (whose consumer gives the grove up,
 * quoting the saved error, and announces a build that fails) and is done here. The trainer itself never publishes.
 */
export function createTrainer(deps: TrainerDeps = {}) {
  const packs = deps.packs ?? new PackCache();
  const manifests = deps.manifests ?? new ManifestCache();
  const logger = deps.logger ?? functionLogger("trainer");
  const getPorts = deps.ports ?? (async () => ({ blobs: await resources.blobs(), ledger: await resources.ledger() }));
  let deadLetters: Promise<DeadLetters | undefined> | undefined;
  const getDeadLetters = () => (deadLetters ??= (deps.deadLetters ?? defaultDeadLetters)());

  return async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    logger.addContext(context);
    const ports = await getPorts();
    const memory = memoryMb(context);
    const worker = containerId(context);
    const train = async (record: SQSRecord) => {
      const ref = groveTaskRef(record.body);
      // Not a grove of any build: nothing to fail. Retried, then kept in the dead-letter queue for a person to see.
      if (!ref.task) throw new TaskError(`not a grove task: ${ref.problems.join("; ")}`);
      const task = ref.task;
      const receiveCount = Number(record.attributes.ApproximateReceiveCount);
      const where = { buildId: task.buildId, grove: task.grove, receiveCount };
      if (ref.problems.length > 0) logger.warn("the task message is not valid; the grove is trained from its build's manifest", { ...where, problems: ref.problems });
      try {
        const delivery = { worker, ...(Number.isInteger(receiveCount) && receiveCount > 0 ? { attempt: receiveCount } : {}) };
        const result = await trainGrove(
          task,
          { ...ports, packs, manifests, ...(memory !== undefined ? { memoryMb: memory } : {}), ...(deps.clock ? { clock: deps.clock } : {}) },
          delivery,
        );
        if (result.status === "skipped") logger.info("grove skipped", { ...where, reason: result.reason });
        else {
          if (result.disagreements) logger.warn("the task message disagrees with its build's manifest; the manifest was used", { ...where, disagreements: result.disagreements });
          logger.info(`grove ${result.status}`, { ...where, remaining: result.remaining, stats: result.stats });
        }
        return result.status;
      } catch (err) {
        logger.error("grove failed", { ...where, error: errorLine(err), retryable: isRetryable(err) });
        await recordGroveError(task, err, ports.blobs).catch((e: unknown) => logger.warn("could not save the grove's error", { ...where, error: errorLine(e) }));
        if (isRetryable(err)) throw err;
        return deadLetter(record.body, err, where);
      }
    };

    /** An input error: to the dead-letter queue now. If it cannot be sent there, the message goes the retry way. */
    const deadLetter = async (body: string, err: unknown, where: Record<string, unknown>) => {
      try {
        const queue = await getDeadLetters();
        if (!queue) throw new Error(`${DEAD_LETTER_QUEUE_ENV} is not set`);
        await queue.send(body, `input error, not retried: ${errorLine(err)}`);
      } catch (e) {
        logger.error("could not dead-letter the task at once; it is retried until SQS does", { ...where, error: errorLine(e) });
        throw err;
      }
      logger.warn("task sent to the dead-letter queue at once: retrying cannot help", { ...where, error: errorLine(err) });
      return "dead-lettered";
    };

    // A processor per invocation: it holds the batch's state, and the emulator may run invocations concurrently.
    return processPartialResponse(event, train, new BatchProcessor(EventType.SQS), { context, throwOnFullBatchFailure: false, processInParallel: false });
  };
}

export const handler = createTrainer();
