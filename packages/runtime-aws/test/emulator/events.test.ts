import { describe, expect, it } from "vitest";
import type { DynamoDBRecord } from "aws-lambda";
import { dropEmulatorArtifacts, dynamodbRecord, lambdaContext, queueArnFromUrl, sqsRecord } from "../../src/emulator/events.ts";

describe("Lambda event records", () => {
  it("builds an SQS record the way Lambda delivers one", () => {
    const arn = queueArnFromUrl("http://127.0.0.1:5000/123456789012/canopy-groves", "us-east-1");
    expect(arn).toBe("arn:aws:sqs:us-east-1:123456789012:canopy-groves");
    const r = sqsRecord(
      {
        MessageId: "m1",
        ReceiptHandle: "rh",
        Body: "{}",
        MD5OfBody: "md5",
        Attributes: { ApproximateReceiveCount: "2", SentTimestamp: "10", SenderId: "s", ApproximateFirstReceiveTimestamp: "11" },
        MessageAttributes: { buildId: { DataType: "String", StringValue: "b-1" }, raw: { DataType: "Binary", BinaryValue: new Uint8Array([1, 2]) } },
      },
      arn,
      "us-east-1",
    );
    expect(r).toEqual({
      messageId: "m1",
      receiptHandle: "rh",
      body: "{}",
      attributes: { ApproximateReceiveCount: "2", SentTimestamp: "10", SenderId: "s", ApproximateFirstReceiveTimestamp: "11" },
      messageAttributes: {
        buildId: { stringValue: "b-1", stringListValues: [], binaryListValues: [], dataType: "String" },
        raw: { binaryValue: "AQI=", stringListValues: [], binaryListValues: [], dataType: "Binary" },
      },
      md5OfBody: "md5",
      eventSource: "aws:sqs",
      eventSourceARN: arn,
      awsRegion: "us-east-1",
    });
    expect(() => queueArnFromUrl("http://host/", "us-east-1")).toThrow("not an SQS queue URL: http://host/");
  });

  it("turns the SDK's Date into Lambda's epoch seconds and keeps images in DynamoDB JSON", () => {
    const r = dynamodbRecord(
      {
        eventID: "e",
        eventName: "MODIFY",
        dynamodb: { ApproximateCreationDateTime: new Date("2026-01-01T00:00:01.900Z"), Keys: { id: { S: "a" } }, NewImage: { id: { S: "a" }, n: { N: "0" } }, SequenceNumber: "7", SizeBytes: 9, StreamViewType: "NEW_AND_OLD_IMAGES" },
      },
      "arn:stream",
      "us-east-1",
    );
    expect(r.dynamodb?.ApproximateCreationDateTime).toBe(Date.UTC(2026, 0, 1, 0, 0, 1) / 1000);
    expect(r).toMatchObject({ eventName: "MODIFY", eventSource: "aws:dynamodb", eventSourceARN: "arn:stream", awsRegion: "us-east-1" });
    expect(r.dynamodb?.NewImage).toEqual({ id: { S: "a" }, n: { N: "0" } });
    expect(r.dynamodb).not.toHaveProperty("OldImage");
  });

  it("drops moto's no-op MODIFYs and the key-only INSERT before an item-creating update's real INSERT", () => {
    const rec = (eventName: "INSERT" | "MODIFY", key: string, seq: string, newImage: object, oldImage?: object): DynamoDBRecord => ({
      eventName,
      dynamodb: { Keys: { id: { S: key } }, NewImage: newImage as never, ...(oldImage ? { OldImage: oldImage as never } : {}), SequenceNumber: seq },
    });
    const records = [
      rec("INSERT", "b", "1", { id: { S: "b" } }),
      rec("INSERT", "a", "2", { id: { S: "a" } }), // a real item holding only its key: no INSERT of "a" follows
      rec("INSERT", "b", "3", { n: { N: "1" }, id: { S: "b" } }),
      rec("MODIFY", "b", "4", { id: { S: "b" }, n: { N: "1" } }, { n: { N: "1" }, id: { S: "b" } }),
      rec("MODIFY", "b", "5", { id: { S: "b" }, n: { N: "2" } }, { id: { S: "b" }, n: { N: "1" } }),
    ];
    const out = dropEmulatorArtifacts(records);
    expect(out.records.map((r) => r.dynamodb?.SequenceNumber)).toEqual(["2", "3", "5"]);
    expect(out).toMatchObject({ noOpModifies: 1, keyOnlyInserts: 1 });
  });

  it("gives handlers a context with the function's memory and a running deadline", () => {
    const c = lambdaContext("canopy-trainer", 1769, 60_000, "us-east-1");
    expect(c).toMatchObject({ functionName: "canopy-trainer", memoryLimitInMB: "1769", invokedFunctionArn: "arn:aws:lambda:us-east-1:000000000000:function:canopy-trainer" });
    expect(c.getRemainingTimeInMillis()).toBeGreaterThan(0);
    expect(c.getRemainingTimeInMillis()).toBeLessThanOrEqual(60_000);
    expect(c.awsRequestId).not.toBe(lambdaContext("x", 1, 1, "us-east-1").awsRequestId);
  });
});
