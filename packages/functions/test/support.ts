import { readFileSync } from "node:fs";
import { Logger } from "@aws-lambda-powertools/logger";
import { encodeGroveTask, parseBuildSpec, prepareDataset, submitBuild, type Clock, type GroveTask, type LedgerChange } from "@canopy/core";
import { MemoryBlobStore, MemoryLedger, MemoryNotifier, MemoryQueue } from "@canopy/core/testing";
import { lambdaContext, sqsRecord, summaryToItem } from "@canopy/runtime-aws";
import type { DynamoDBRecord, SQSEvent } from "aws-lambda";

export const quiet = () => new Logger({ serviceName: "canopy-test", logLevel: "SILENT" });
export const context = (memoryMb = 1024) => lambdaContext("test-fn", memoryMb, 60_000, "us-east-1");

export function tickingClock(start = 1_700_000_000_000): Clock {
  let t = start;
  return { now: () => t++ };
}

let messages = 0;
export function sqsEvent(bodies: string[], receiveCount = 1): SQSEvent {
  return {
    Records: bodies.map((body) =>
      sqsRecord(
        { MessageId: `m-${++messages}`, ReceiptHandle: `rh-${messages}`, Body: body, Attributes: { ApproximateReceiveCount: String(receiveCount) } },
        "arn:aws:sqs:us-east-1:000000000000:groves",
        "us-east-1",
      ),
    ),
  };
}

export const taskEvent = (tasks: GroveTask[], receiveCount = 1) => sqsEvent(tasks.map(encodeGroveTask), receiveCount);

let sequence = 0;
/** A ledger change as the stream record Lambda would deliver (DynamoDB JSON images, as the DynamoLedger writes them). */
export function streamRecord(change: LedgerChange): DynamoDBRecord {
  return {
    eventName: change.old ? "MODIFY" : "INSERT",
    eventSource: "aws:dynamodb",
    dynamodb: {
      Keys: { buildId: { S: change.new.buildId } },
      NewImage: summaryToItem(change.new) as never,
      ...(change.old ? { OldImage: summaryToItem(change.old) as never } : {}),
      SequenceNumber: String(++sequence).padStart(21, "0"),
      StreamViewType: "NEW_AND_OLD_IMAGES",
    },
  };
}

/** A submitted iris build on memory ports; every ledger change is kept for replay as stream records. */
export async function irisBuild(spec: object = {}) {
  const clock = tickingClock();
  const blobs = new MemoryBlobStore();
  const ledger = new MemoryLedger({ clock });
  const notifier = new MemoryNotifier();
  const queue = new MemoryQueue();
  const changes: LedgerChange[] = [];
  ledger.watch((c) => changes.push(c));
  const iris = readFileSync(new URL("../../../test/fixtures/iris.csv", import.meta.url));
  const prepared = await prepareDataset(iris, {}, blobs, clock);
  const submission = await submitBuild(parseBuildSpec({ dataset: "iris.csv", n_estimators: 6, grove_size: 2, seed: 1, ...spec }), { blobs, ledger, queue, clock }, prepared);
  return { clock, blobs, ledger, notifier, queue, changes, prepared, id: submission.buildId, tasks: queue.drain() };
}
