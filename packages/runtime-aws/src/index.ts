import type { Clock } from "@canopy/core";
import { DynamoLedger } from "./dynamo-ledger.ts";
import type { AwsResources } from "./resources.ts";
import { S3BlobStore, type S3BlobStoreOptions } from "./s3-blob-store.ts";
import { SnsNotifier } from "./sns-notifier.ts";
import { SqsTaskQueue } from "./sqs-task-queue.ts";

export { AwsBusyError, AwsInternalError, AwsSetupError } from "./errors.ts";
export { clients, clientSettings, EMULATOR_REGION, resetClients, type ClientSettings } from "./clients.ts";
export { changeFromStreamRecord, DYNAMO_MAX_GROVES, DynamoLedger, type DynamoLedgerOptions } from "./dynamo-ledger.ts";
export {
  entryToItem,
  groveKey,
  isBuildItem,
  itemSize,
  itemToEntry,
  itemToSummary,
  OPEN_BUILDS_INDEX,
  summaryToItem,
  TTL_ATTRIBUTE,
  writeUnits,
  type Item,
} from "./ledger-item.ts";
export { DEV_RESOURCES, provisionResources, resourceEnv, type ProvisionedResources, type ProvisionOptions } from "./provision.ts";
export {
  loadSstResource,
  RESOURCE_ENV,
  RESOURCE_LINKS,
  resolveResources,
  type AwsResources,
  type ResourceName,
  type SstResourceLoader,
} from "./resources.ts";
export { S3BlobStore, type S3BlobStoreOptions } from "./s3-blob-store.ts";
export { decodeSnsDelivery, notificationAttributes, SnsNotifier, type SnsDelivery } from "./sns-notifier.ts";
export { queueState, SQS_BATCH_SIZE, SqsDeadLetters, SqsTaskQueue, type SqsSender, type SqsTaskQueueOptions } from "./sqs-task-queue.ts";
export { DynamoStreamReader, type StreamReaderOptions, type StreamRecord } from "./stream-reader.ts";
export { listOpenBuilds } from "./open-builds.ts";
export { createAwsRuntime, parseS3Url, type AwsRuntime, type AwsRuntimeOptions, type StudyHandle } from "./runtime.ts";
export { s3ByteSource } from "./s3-source.ts";
export { ALIAS_KEY_PREFIX, aliasKey, DynamoModelRegistry, listBuilds } from "./registry.ts";
export * from "./emulator/index.ts";

/** All four ports on the shared clients: what a handler needs, given its resource names. */
export function awsPorts(resources: AwsResources, options: { clock?: Clock; blobs?: S3BlobStoreOptions } = {}) {
  return {
    blobs: new S3BlobStore(resources.bucket, undefined, options.blobs),
    ledger: new DynamoLedger(resources.table, undefined, { clock: options.clock }),
    queue: new SqsTaskQueue(resources.queueUrl),
    notifier: new SnsNotifier(resources.topicArn),
  };
}
