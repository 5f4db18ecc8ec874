import {
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
  type DynamoDBClient,
} from "@aws-sdk/client-dynamodb";
import { CreateBucketCommand, type S3Client } from "@aws-sdk/client-s3";
import { CreateTopicCommand, SubscribeCommand, type SNSClient } from "@aws-sdk/client-sns";
import { CreateQueueCommand, GetQueueAttributesCommand, SetQueueAttributesCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { clients } from "./clients.ts";
import { DEAD_LETTER_QUEUE_ENV, OPEN_BUILDS_INDEX, TTL_ATTRIBUTE } from "./names.ts";
import { RESOURCE_ENV, type AwsResources } from "./resources.ts";
import { AwsBusyError, AwsSetupError } from "./errors.ts";

/**
 * The resources the SST app declares, as one object, for everything that must create them itself against an
 * emulator (the test harness, `canopy dev`). Keep in step with sst.config.ts.
 */
export const DEV_RESOURCES = {
  bucket: { name: "canopy-artifacts" },
  /** Partition key `buildId` (S); the aggregator reads the stream; the open-builds index; finished items expire. */
  table: { name: "canopy-builds", partitionKey: "buildId", streamViewType: "NEW_AND_OLD_IMAGES", openBuildsIndex: OPEN_BUILDS_INDEX, ttlAttribute: TTL_ATTRIBUTE },
  /** Grove tasks. A message received this many times goes to the dead-letter queue. */
  queue: { name: "canopy-groves", visibilityTimeoutSeconds: 30, maxReceiveCount: 3 },
  deadLetterQueue: { name: "canopy-groves-dlq", retentionSeconds: 14 * 24 * 3600 },
  topic: { name: "canopy-notifications" },
  /** Not deployed: a queue subscribed to the topic (raw delivery off) so dev and tests can read notifications. */
  inbox: { name: "canopy-notifications-inbox" },
} as const;

export interface ProvisionedResources extends AwsResources {
  streamArn: string;
  queueArn: string;
  deadLetterQueueUrl: string;
  deadLetterQueueArn: string;
  inboxUrl: string;
}

export interface ProvisionOptions {
  /** Appended to every name, so several suites can share one emulator. */
  suffix?: string;
  /** Overrides DEV_RESOURCES.queue.visibilityTimeoutSeconds (tests want redelivery fast). */
  visibilityTimeoutSeconds?: number;
  maxReceiveCount?: number;
  clients?: { s3?: S3Client; dynamodb?: DynamoDBClient; sqs?: SQSClient; sns?: SNSClient };
}

const isName = (err: unknown, ...names: string[]) => names.includes((err as { name?: string }).name ?? "");

/**
 * Creates (or finds) the bucket, table with stream, grove queue with its DLQ and redrive policy, topic, and
 * the inbox queue subscribed to the topic. Idempotent, so `canopy dev` can run it on every start.
 */
export async function provisionResources(options: ProvisionOptions = {}): Promise<ProvisionedResources> {
  const s3 = options.clients?.s3 ?? clients.s3();
  const dynamodb = options.clients?.dynamodb ?? clients.dynamodb();
  const sqs = options.clients?.sqs ?? clients.sqs();
  const sns = options.clients?.sns ?? clients.sns();
  const name = (base: string) => `${base}${options.suffix ?? ""}`;
  const R = DEV_RESOURCES;

  const bucket = name(R.bucket.name);
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    if (!isName(err, "BucketAlreadyOwnedByYou")) throw err;
  }

  const table = name(R.table.name);
  const index = R.table.openBuildsIndex;
  const indexAttributes = [
    { AttributeName: index.hashKey, AttributeType: "S" as const },
    { AttributeName: index.rangeKey, AttributeType: "N" as const },
  ];
  const indexSpec = {
    IndexName: index.name,
    KeySchema: [
      { AttributeName: index.hashKey, KeyType: "HASH" as const },
      { AttributeName: index.rangeKey, KeyType: "RANGE" as const },
    ],
    Projection: { ProjectionType: "KEYS_ONLY" as const },
  };
  try {
    await dynamodb.send(
      new CreateTableCommand({
        TableName: table,
        AttributeDefinitions: [{ AttributeName: R.table.partitionKey, AttributeType: "S" }, ...indexAttributes],
        KeySchema: [{ AttributeName: R.table.partitionKey, KeyType: "HASH" }],
        GlobalSecondaryIndexes: [indexSpec],
        BillingMode: "PAY_PER_REQUEST",
        StreamSpecification: { StreamEnabled: true, StreamViewType: R.table.streamViewType },
      }),
    );
  } catch (err) {
    if (!isName(err, "ResourceInUseException")) throw err;
  }
  const streamArn = await activeTableStream(dynamodb, table);
  await ensureOpenBuildsIndex(dynamodb, table, indexAttributes, indexSpec);
  await ensureTimeToLive(dynamodb, table, R.table.ttlAttribute);

  const queueArnOf = async (url: string) =>
    (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }))).Attributes?.QueueArn ?? "";

  const dlq = await sqs.send(
    new CreateQueueCommand({ QueueName: name(R.deadLetterQueue.name), Attributes: { MessageRetentionPeriod: String(R.deadLetterQueue.retentionSeconds) } }),
  );
  const deadLetterQueueUrl = dlq.QueueUrl!;
  const deadLetterQueueArn = await queueArnOf(deadLetterQueueUrl);

  const queue = await sqs.send(new CreateQueueCommand({ QueueName: name(R.queue.name) }));
  const queueUrl = queue.QueueUrl!;
  // Set separately so a re-run with another timeout updates the queue instead of failing the create.
  await sqs.send(
    new SetQueueAttributesCommand({
      QueueUrl: queueUrl,
      Attributes: {
        VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? R.queue.visibilityTimeoutSeconds),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: deadLetterQueueArn, maxReceiveCount: options.maxReceiveCount ?? R.queue.maxReceiveCount }),
      },
    }),
  );
  const queueArn = await queueArnOf(queueUrl);

  const topicArn = (await sns.send(new CreateTopicCommand({ Name: name(R.topic.name) }))).TopicArn!;
  const inboxUrl = (await sqs.send(new CreateQueueCommand({ QueueName: name(R.inbox.name) }))).QueueUrl!;
  const inboxArn = await queueArnOf(inboxUrl);
  await sqs.send(
    new SetQueueAttributesCommand({
      QueueUrl: inboxUrl,
      Attributes: {
        Policy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            { Effect: "Allow", Principal: { Service: "sns.amazonaws.com" }, Action: "sqs:SendMessage", Resource: inboxArn, Condition: { ArnEquals: { "aws:SourceArn": topicArn } } },
          ],
        }),
      },
    }),
  );
  await sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: "sqs", Endpoint: inboxArn, Attributes: { RawMessageDelivery: "false" } }));

  return { bucket, table, streamArn, queueUrl, queueArn, deadLetterQueueUrl, deadLetterQueueArn, topicArn, inboxUrl };
}

async function activeTableStream(dynamodb: DynamoDBClient, table: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const t = (await dynamodb.send(new DescribeTableCommand({ TableName: table }))).Table;
    if (t?.TableStatus === "ACTIVE") {
      if (!t.LatestStreamArn) throw new AwsSetupError(`table ${table} exists without a stream; delete it or enable NEW_AND_OLD_IMAGES`);
      return t.LatestStreamArn;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new AwsBusyError(`table ${table} did not become ACTIVE within 10 s`);
}

/** A table created by an earlier canopy dev has no open-builds index: add it (the sweeper queries it). */
async function ensureOpenBuildsIndex(
  dynamodb: DynamoDBClient,
  table: string,
  attributes: { AttributeName: string; AttributeType: "S" | "N" }[],
  index: { IndexName: string; KeySchema: { AttributeName: string; KeyType: "HASH" | "RANGE" }[]; Projection: { ProjectionType: "KEYS_ONLY" } },
): Promise<void> {
  const t = (await dynamodb.send(new DescribeTableCommand({ TableName: table }))).Table;
  if (t?.GlobalSecondaryIndexes?.some((i) => i.IndexName === index.IndexName)) return;
  await dynamodb.send(new UpdateTableCommand({ TableName: table, AttributeDefinitions: attributes, GlobalSecondaryIndexUpdates: [{ Create: index }] }));
  await activeTableStream(dynamodb, table);
}

async function ensureTimeToLive(dynamodb: DynamoDBClient, table: string, attribute: string): Promise<void> {
  const ttl = (await dynamodb.send(new DescribeTimeToLiveCommand({ TableName: table }))).TimeToLiveDescription;
  if (ttl?.AttributeName === attribute && (ttl.TimeToLiveStatus === "ENABLED" || ttl.TimeToLiveStatus === "ENABLING")) return;
  await dynamodb.send(new UpdateTimeToLiveCommand({ TableName: table, TimeToLiveSpecification: { AttributeName: attribute, Enabled: true } }));
}

/** The CANOPY_* variables that make `resolveResources` (and the trainer, its dead-letter queue) find these resources. */
export function resourceEnv(resources: AwsResources & { deadLetterQueueUrl?: string }): Record<string, string> {
  return {
    [RESOURCE_ENV.bucket]: resources.bucket,
    [RESOURCE_ENV.table]: resources.table,
    [RESOURCE_ENV.queueUrl]: resources.queueUrl,
    [RESOURCE_ENV.topicArn]: resources.topicArn,
    ...(resources.deadLetterQueueUrl ? { [DEAD_LETTER_QUEUE_ENV]: resources.deadLetterQueueUrl } : {}),
  };
}
