import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from "@aws-sdk/client-sqs";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { sleep } from "@canopy/core";
import { queueArnFromUrl, sqsRecord } from "./events.ts";
import { isAbort, type FunctionSettings, type Invoker, type LambdaHandler } from "./invoker.ts";
import { AwsSetupError } from "../errors.ts";

export type SqsHandler = LambdaHandler<SQSEvent, SQSBatchResponse | void>;

export interface SqsMapping extends FunctionSettings {
  queueUrl: string;
  handler: SqsHandler;
  /** Messages per invocation, 1..10. Default 10 (Lambda's default for standard queues). */
  batchSize?: number;
  /** Batches in flight at once (Lambda scales pollers with the backlog; here it is fixed). Default 1. */
  pollers?: number;
  /** Long-poll wait per ReceiveMessage, in seconds. Default 1 (short, so stopping is quick). */
  waitTimeSeconds?: number;
}

export interface SqsMappingStats {
  received: number;
  deleted: number;
  /** Messages left on the queue after a failed invocation or a batchItemFailures entry. */
  failed: number;
}

/**
 * Lambda's SQS event source mapping (ReportBatchItemFailures on): receive a batch, invoke the handler with an
 * SQSEvent, delete only the messages that succeeded. Failed messages are left alone, so SQS makes them visible
 * again after the queue's visibility timeout, and its redrive policy moves a message received maxReceiveCount
 * times to the dead-letter queue. A handler that throws, or names a message that was not in the batch, fails
 * the whole batch, as Lambda does.
 */
export function startSqsMapping(
  mapping: SqsMapping,
  deps: { sqs: SQSClient; invoker: Invoker; region: string; onError: (err: unknown) => void },
): { stop: () => Promise<void>; stats: SqsMappingStats } {
  const batchSize = mapping.batchSize ?? 10;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10) throw new AwsSetupError(`SQS batch size must be 1..10; got ${batchSize}`);
  const queueArn = queueArnFromUrl(mapping.queueUrl, deps.region);
  const controller = new AbortController();
  const { signal } = controller;
  const stats: SqsMappingStats = { received: 0, deleted: 0, failed: 0 };

  const handleBatch = async (messages: Message[]) => {
    const event: SQSEvent = { Records: messages.map((m) => sqsRecord(m, queueArn, deps.region)) };
    const ids = new Set(event.Records.map((r) => r.messageId));
    const outcome = await deps.invoker.invoke(mapping, mapping.handler, event, (r) => r?.batchItemFailures?.length ?? 0);
    let failed: Set<string>;
    if (!outcome.ok) {
      failed = ids;
    } else {
      const named = (outcome.result?.batchItemFailures ?? []).map((f) => f.itemIdentifier);
      failed = named.every((id) => typeof id === "string" && ids.has(id)) ? new Set(named) : ids;
    }
    const done = messages.filter((m) => !failed.has(m.MessageId ?? ""));
    stats.failed += messages.length - done.length;
    if (done.length === 0) return;
    // Not aborted by stop(): a success must be deleted, or it would run again.
    const out = await deps.sqs.send(
      new DeleteMessageBatchCommand({ QueueUrl: mapping.queueUrl, Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }),
    );
    stats.deleted += out.Successful?.length ?? 0;
    for (const f of out.Failed ?? []) deps.onError(new Error(`${mapping.functionName}: could not delete a message from ${mapping.queueUrl}: ${f.Code} ${f.Message ?? ""}`));
  };

  const poller = async () => {
    let failures = 0;
    while (!signal.aborted) {
      try {
        const out = await deps.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: mapping.queueUrl,
            MaxNumberOfMessages: batchSize,
            WaitTimeSeconds: mapping.waitTimeSeconds ?? 1,
            MessageSystemAttributeNames: ["All"],
            MessageAttributeNames: ["All"],
          }),
          { abortSignal: signal },
        );
        failures = 0;
        const messages = out.Messages ?? [];
        if (messages.length === 0) continue;
        stats.received += messages.length;
        await handleBatch(messages);
      } catch (err) {
        if (isAbort(err, signal)) return;
        deps.onError(err);
        await sleep(Math.min(100 * 2 ** ++failures, 5000), signal);
      }
    }
  };

  const loops = Array.from({ length: mapping.pollers ?? 1 }, poller);
  return {
    stats,
    async stop() {
      controller.abort();
      await Promise.all(loops);
    },
  };
}
