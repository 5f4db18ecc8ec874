import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import { S3Client } from "@aws-sdk/client-s3";
import { SNSClient } from "@aws-sdk/client-sns";
import { SQSClient } from "@aws-sdk/client-sqs";

/** Region used against an emulator when the environment names none (emulators accept any region). */
export const EMULATOR_REGION = "us-east-1";

export interface ClientSettings {
  /** Undefined lets the SDK resolve it (AWS_REGION in Lambda, the profile on a laptop). */
  region?: string;
  /** True when AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3) points S3 at an emulator: bucket names go in the path. */
  forcePathStyle: boolean;
  /**
   * False when AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_SQS) is set: the SQS client then sends to that endpoint, not to
   * the host in a queue's URL (which names AWS for a deployed app's queue).
   */
  useQueueUrlAsEndpoint: boolean;
}

/**
 * What the clients need beyond the SDK's own resolution. The SDK (v3 >= 3.410) already honours
 * AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>, so the endpoint itself is not passed here: only the
 * things an emulator additionally needs (a region, path-style S3 URLs).
 */
export function clientSettings(env: NodeJS.ProcessEnv = process.env): ClientSettings {
  const emulated = Boolean(env.AWS_ENDPOINT_URL || env.AWS_ENDPOINT_URL_S3);
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || (emulated ? EMULATOR_REGION : undefined);
  return { region, forcePathStyle: emulated, useQueueUrlAsEndpoint: !(env.AWS_ENDPOINT_URL || env.AWS_ENDPOINT_URL_SQS) };
}

interface Clients {
  s3: S3Client;
  dynamodb: DynamoDBClient;
  dynamodbStreams: DynamoDBStreamsClient;
  sqs: SQSClient;
  sns: SNSClient;
}

const made: Partial<Clients> = {};

function once<K extends keyof Clients>(name: K, make: (settings: ClientSettings) => Clients[K]): () => Clients[K] {
  return () => (made[name] ??= make(clientSettings()));
}

const regional = (s: ClientSettings) => (s.region ? { region: s.region } : {});

/**
 * One client per service per container, created on first use (after the environment is set, so a test
 * harness or `canopy dev` can set AWS_ENDPOINT_URL first). Lambda reuses them across warm invocations.
 */
export const clients = {
  s3: once("s3", (s) => new S3Client({ ...regional(s), forcePathStyle: s.forcePathStyle })),
  dynamodb: once("dynamodb", (s) => new DynamoDBClient(regional(s))),
  dynamodbStreams: once("dynamodbStreams", (s) => new DynamoDBStreamsClient(regional(s))),
  sqs: once("sqs", (s) => new SQSClient({ ...regional(s), useQueueUrlAsEndpoint: s.useQueueUrlAsEndpoint })),
  sns: once("sns", (s) => new SNSClient(regional(s))),
};

/** Drops the cached clients (their sockets too), so the next use reads the environment again. */
export function resetClients(): void {
  for (const key of Object.keys(made) as (keyof Clients)[]) {
    made[key]?.destroy();
    delete made[key];
  }
}
