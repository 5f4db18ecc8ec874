import type { BlobStore, BuildLedger, Notifier, QueueState, TaskQueue } from "@canopy/core";
import { DynamoLedger, listOpenBuilds, queueState, resolveResources, S3BlobStore, SnsNotifier, SqsTaskQueue, type ResourceName } from "@canopy/runtime-aws";
import { Resource } from "sst";

/**
 * The one place handlers get their AWS resources: names through runtime-aws's seam (CANOPY_* variables,
 * else SST's linked `Resource.X`), adapters created once per container on first use and reused by warm
 * invocations. A failed lookup is not cached, so the next invocation tries again.
 */
function once<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => {
    made ??= make().catch((err: unknown) => {
      made = undefined;
      throw err;
    });
    return made;
  };
}

// A static import, so the bundler puts SST's linking client into each function (a Lambda package has no
// node_modules); wrapped in an object because SST's Resource proxy must not be probed for `then`.
const loadSst = async () => ({ Resource: Resource as unknown as Record<string, unknown> });

/** One resource's name: CANOPY_* variable, else the SST link. Not cached (the adapters below are). */
export async function resourceName(name: ResourceName): Promise<string> {
  return (await resolveResources([name], { loadSst }))[name];
}

export const resources = {
  blobs: once<BlobStore>(async () => new S3BlobStore(await resourceName("bucket"))),
  ledger: once<BuildLedger>(async () => new DynamoLedger(await resourceName("table"))),
  notifier: once<Notifier>(async () => new SnsNotifier(await resourceName("topicArn"))),
  queue: once<TaskQueue>(async () => new SqsTaskQueue(await resourceName("queueUrl"))),
  openBuilds: once<() => Promise<string[]>>(async () => {
    const table = await resourceName("table");
    return () => listOpenBuilds(table);
  }),
  queueState: once<() => Promise<QueueState>>(async () => {
    const url = await resourceName("queueUrl");
    return () => queueState(url);
  }),
};
