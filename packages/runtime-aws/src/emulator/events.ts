import type { _Record as SdkStreamRecord } from "@aws-sdk/client-dynamodb-streams";
import type { Message } from "@aws-sdk/client-sqs";
import type { Context, DynamoDBRecord, SQSRecord } from "aws-lambda";
import { randomUUID } from "node:crypto";
import { AwsInternalError, AwsSetupError } from "../errors.ts";

/**
 * Lambda event records built from what the emulator received, in the shapes Lambda delivers (per
 * @types/aws-lambda and the Lambda docs' sample events), so handlers run unchanged.
 */

/** arn:aws:sqs:<region>:<account>:<name> from a queue URL (http(s)://host/<account>/<name>). */
export function queueArnFromUrl(queueUrl: string, region: string): string {
  const parts = new URL(queueUrl).pathname.split("/").filter(Boolean);
  if (parts.length < 2) throw new AwsSetupError(`not an SQS queue URL: ${queueUrl}`);
  const [account, name] = parts.slice(-2);
  return `arn:aws:sqs:${region}:${account}:${name}`;
}

export function sqsRecord(message: Message, queueArn: string, region: string): SQSRecord {
  const a = message.Attributes ?? {};
  const messageAttributes: SQSRecord["messageAttributes"] = {};
  for (const [name, v] of Object.entries(message.MessageAttributes ?? {})) {
    messageAttributes[name] = {
      ...(v.StringValue !== undefined ? { stringValue: v.StringValue } : {}),
      ...(v.BinaryValue !== undefined ? { binaryValue: Buffer.from(v.BinaryValue).toString("base64") } : {}),
      stringListValues: v.StringListValues ?? [],
      binaryListValues: (v.BinaryListValues ?? []).map((b) => Buffer.from(b).toString("base64")),
      dataType: v.DataType ?? "String",
    };
  }
  return {
    messageId: message.MessageId ?? "",
    receiptHandle: message.ReceiptHandle ?? "",
    body: message.Body ?? "",
    attributes: {
      ApproximateReceiveCount: a.ApproximateReceiveCount ?? "1",
      SentTimestamp: a.SentTimestamp ?? "",
      SenderId: a.SenderId ?? "",
      ApproximateFirstReceiveTimestamp: a.ApproximateFirstReceiveTimestamp ?? "",
      ...(a.AWSTraceHeader ? { AWSTraceHeader: a.AWSTraceHeader } : {}),
    },
    messageAttributes,
    md5OfBody: message.MD5OfBody ?? "",
    ...(message.MD5OfMessageAttributes ? { md5OfMessageAttributes: message.MD5OfMessageAttributes } : {}),
    eventSource: "aws:sqs",
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}

/**
 * A stream record as Lambda delivers it. The SDK parses ApproximateCreationDateTime into a Date; Lambda's
 * event has epoch seconds (a number). Images stay in DynamoDB JSON, which is what filters match on.
 */
export function dynamodbRecord(record: SdkStreamRecord, streamArn: string, region: string): DynamoDBRecord {
  const d = record.dynamodb ?? {};
  const created = d.ApproximateCreationDateTime;
  return {
    eventID: record.eventID,
    eventName: record.eventName,
    eventVersion: record.eventVersion ?? "1.1",
    eventSource: "aws:dynamodb",
    awsRegion: record.awsRegion ?? region,
    dynamodb: {
      ...(created !== undefined ? { ApproximateCreationDateTime: Math.floor(new Date(created).getTime() / 1000) } : {}),
      ...(d.Keys ? { Keys: d.Keys as never } : {}),
      ...(d.NewImage ? { NewImage: d.NewImage as never } : {}),
      ...(d.OldImage ? { OldImage: d.OldImage as never } : {}),
      SequenceNumber: d.SequenceNumber,
      SizeBytes: d.SizeBytes,
      StreamViewType: d.StreamViewType,
    },
    eventSourceARN: streamArn,
  };
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = canonical((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}

const keyOf = (r: DynamoDBRecord) => JSON.stringify(canonical(r.dynamodb?.Keys ?? {}));

/**
 * Removes the stream records DynamoDB would not have written but moto does (checked against moto 5):
 * - a write that changes nothing: DynamoDB writes no record, moto a MODIFY whose old and new images are equal;
 * - an UpdateItem that creates an item: DynamoDB writes one INSERT, moto first a key-only INSERT and then the
 *   real one (dropped when the real one follows in the same batch, as moto writes both at once).
 * Returns what is left and how many records of each kind were dropped.
 */
export function dropEmulatorArtifacts(records: DynamoDBRecord[]): { records: DynamoDBRecord[]; noOpModifies: number; keyOnlyInserts: number } {
  let noOpModifies = 0;
  let keyOnlyInserts = 0;
  const kept = records.filter((r, i) => {
    const d = r.dynamodb;
    if (r.eventName === "MODIFY" && d?.NewImage && d.OldImage && sameJson(d.NewImage, d.OldImage)) {
      noOpModifies++;
      return false;
    }
    if (r.eventName === "INSERT" && d?.NewImage && sameJson(d.NewImage, d.Keys ?? {})) {
      const next = records.slice(i + 1).find((n) => keyOf(n) === keyOf(r));
      if (next?.eventName === "INSERT") {
        keyOnlyInserts++;
        return false;
      }
    }
    return true;
  });
  return { records: kept, noOpModifies, keyOnlyInserts };
}

/** A Lambda context for one invocation: the function's name, memory and a deadline from its timeout. */
export function lambdaContext(functionName: string, memoryMb: number, timeoutMs: number, region: string): Context {
  const deadline = Date.now() + timeoutMs;
  const requestId = randomUUID();
  const unsupported = () => {
    throw new AwsInternalError("context.done/fail/succeed are not supported; return or throw from an async handler");
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:${region}:000000000000:function:${functionName}`,
    memoryLimitInMB: String(memoryMb),
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `emulator/[$LATEST]${requestId.replaceAll("-", "")}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: unsupported,
    fail: unsupported,
    succeed: unsupported,
  };
}
