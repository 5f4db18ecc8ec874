import { CreateQueueCommand, GetQueueAttributesCommand, SendMessageBatchCommand, SetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import { CreateTableCommand, PutItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { clients, startEmulator, type InvocationInfo } from "@canopy/runtime-aws";
import type { DynamoDBRecord, SQSRecord } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { useAwsEmulator } from "./harness.ts";

useAwsEmulator();

async function until(check: () => boolean, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function queuePair(name: string, maxReceiveCount: number) {
  const sqs = clients.sqs();
  const dlqUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }))).QueueUrl!;
  const dlqArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ["QueueArn"] }))).Attributes!.QueueArn!;
  const url = (await sqs.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl!;
  await sqs.send(
    new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { VisibilityTimeout: "1", RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount }) } }),
  );
  return { url, dlqUrl };
}

describe("the event-source-mapping emulator on moto", () => {
  it("SQS: deletes only successes; failures come back after the visibility timeout, then redrive takes them to the DLQ", { timeout: 60_000 }, async () => {
    const q = await queuePair("emu-sqs", 2);
    await clients.sqs().send(new SendMessageBatchCommand({ QueueUrl: q.url, Entries: ["ok", "poison", "flaky"].map((b) => ({ Id: b, MessageBody: b })) }));
    const seen: { body: string; receive: string; arn: string }[] = [];
    const dead: SQSRecord[] = [];
    const invocations: InvocationInfo[] = [];
    const emulator = startEmulator({
      sqs: [
        {
          functionName: "worker",
          queueUrl: q.url,
          batchSize: 10,
          handler: async (event) => {
            for (const r of event.Records) seen.push({ body: r.body, receive: r.attributes.ApproximateReceiveCount, arn: r.eventSourceARN });
            const failing = event.Records.filter((r) => r.body === "poison" || (r.body === "flaky" && r.attributes.ApproximateReceiveCount === "1"));
            return { batchItemFailures: failing.map((r) => ({ itemIdentifier: r.messageId })) };
          },
        },
        { functionName: "dead", queueUrl: q.dlqUrl, handler: async (event) => void dead.push(...event.Records) },
      ],
      onInvocation: (i) => invocations.push(i),
    });
    try {
      await until(() => dead.length >= 1, 20_000, "the poison message in the DLQ");
      await new Promise((resolve) => setTimeout(resolve, 1500)); // anything else would have come back by now
    } finally {
      await emulator.stop();
    }
    const times = (body: string) => seen.filter((s) => s.body === body).map((s) => s.receive);
    expect(times("ok")).toEqual(["1"]);
    expect(times("flaky")).toEqual(["1", "2"]);
    expect(times("poison")).toEqual(["1", "2"]);
    expect(dead.map((r) => r.body)).toEqual(["poison"]);
    expect(seen[0].arn).toMatch(/^arn:aws:sqs:us-east-1:\d+:emu-sqs$/);
    expect(emulator.stats.sqs.worker).toMatchObject({ received: 5, deleted: 2, failed: 3 });
    expect(emulator.stats.sqs.dead).toMatchObject({ received: 1, deleted: 1, failed: 0 });
    expect(invocations.every((i) => i.error === undefined)).toBe(true);
  });

  it("SQS: a handler that throws, or names a message not in the batch, fails the whole batch", { timeout: 60_000 }, async () => {
    const q = await queuePair("emu-throw", 5);
    await clients.sqs().send(new SendMessageBatchCommand({ QueueUrl: q.url, Entries: ["a", "b"].map((b) => ({ Id: b, MessageBody: b })) }));
    let calls = 0;
    let failedRecords = 0;
    const emulator = startEmulator({
      sqs: [
        {
          functionName: "worker",
          queueUrl: q.url,
          batchSize: 10,
          handler: async (event) => {
            calls++;
            if (calls <= 2) failedRecords += event.Records.length;
            if (calls === 1) throw new Error("boom");
            if (calls === 2) return { batchItemFailures: [{ itemIdentifier: "not-in-this-batch" }] };
            return { batchItemFailures: [] };
          },
        },
      ],
    });
    try {
      await until(() => emulator.stats.sqs.worker.deleted === 2, 20_000, "both messages deleted");
    } finally {
      await emulator.stop();
    }
    // Every record of the first two invocations stayed on the queue and came back.
    expect(emulator.stats.sqs.worker).toMatchObject({ received: failedRecords + 2, deleted: 2, failed: failedRecords });
  });

  it("streams: drops moto's artifacts, filters like Lambda, and retries from the first failed record", { timeout: 60_000 }, async () => {
    const db = clients.dynamodb();
    const created = await db.send(
      new CreateTableCommand({
        TableName: "emu-stream",
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
        StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" },
      }),
    );
    const streamArn = created.TableDescription!.LatestStreamArn!;
    const update = (id: string, n: number) =>
      db.send(new UpdateItemCommand({ TableName: "emu-stream", Key: { id: { S: id } }, UpdateExpression: "SET n = :n", ExpressionAttributeValues: { ":n": { N: String(n) } } }));
    await update("a", 1); // creates the item: moto writes a key-only INSERT, then the real one
    await update("a", 1); // changes nothing: moto writes a MODIFY with equal images
    await db.send(new PutItemCommand({ TableName: "emu-stream", Item: { id: { S: "b" }, n: { N: "5" } } }));
    await update("a", 0);

    // Started after the writes, so the first poll reads all five records (the mapping starts at the horizon).
    const all: string[][] = [];
    const zeros: DynamoDBRecord[] = [];
    const emulator = startEmulator({
      streams: [
        {
          functionName: "everything",
          streamArn,
          handler: async (event) => {
            all.push(event.Records.map((r) => `${r.eventName} ${r.dynamodb?.Keys?.id.S} ${r.dynamodb?.NewImage?.n?.N ?? "-"}`));
            // The first invocation fails its 2nd record.
            if (all.length === 1) return { batchItemFailures: [{ itemIdentifier: event.Records[1].dynamodb!.SequenceNumber! }] };
          },
        },
        { functionName: "zeros", streamArn, filters: [{ eventName: ["MODIFY"], dynamodb: { NewImage: { n: { N: ["0"] } } } }], handler: async (e) => void zeros.push(...e.Records) },
      ],
      maxConcurrency: 1,
    });
    try {
      await until(() => zeros.length >= 1 && all.length >= 2, 20_000, "the stream records");
      await new Promise((resolve) => setTimeout(resolve, 500));
    } finally {
      await emulator.stop();
    }
    // Retried from the failed record on, in order; the artifacts never reach the handler.
    expect(all).toEqual([
      ["INSERT a 1", "INSERT b 5", "MODIFY a 0"],
      ["INSERT b 5", "MODIFY a 0"],
    ]);
    expect(emulator.stats.streams.everything).toMatchObject({ read: 5, artifacts: 2, delivered: 3 });
    expect(zeros.map((r) => [r.eventName, r.dynamodb?.NewImage?.n?.N, r.dynamodb?.OldImage?.n?.N, typeof r.dynamodb?.ApproximateCreationDateTime])).toEqual([["MODIFY", "0", "1", "number"]]);
    expect(emulator.stats.streams.zeros).toMatchObject({ delivered: 1, invocations: 1 });
  });
});
