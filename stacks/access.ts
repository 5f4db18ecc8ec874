import { functionGrants, type FunctionName } from "@canopy/runtime-aws/access";

/**
 * SST's links grant `s3:*`, `dynamodb:*` and `sns:*` on what they link. The links stay (they carry the names the
 * functions find their resources by); their permissions go, and each function is granted instead exactly what
 * runtime-aws's FUNCTION_ACCESS says it calls. Call before the components are made.
 */
export function linkNamesOnly(): void {
  sst.Linkable.wrap(sst.aws.Bucket, (bucket) => ({ properties: { name: bucket.name } }));
  sst.Linkable.wrap(sst.aws.Dynamo, (table) => ({ properties: { name: table.name } }));
  sst.Linkable.wrap(sst.aws.SnsTopic, (topic) => ({ properties: { arn: topic.arn } }));
  sst.Linkable.wrap(sst.aws.Queue, (queue) => ({ properties: { url: queue.url } }));
}

/** A function's `permissions`: its grants (functionGrants) on the app's bucket, builds table, topic and queues. */
export function permissionsOf(
  name: FunctionName,
  {
    bucket,
    table,
    topic,
    groves,
    dlq,
  }: { bucket?: sst.aws.Bucket; table?: sst.aws.Dynamo; topic?: sst.aws.SnsTopic; groves?: sst.aws.Queue; dlq?: sst.aws.Queue },
) {
  const need = <T>(resource: T | undefined, what: string): T => {
    if (!resource) throw new Error(`the ${name} function needs the ${what} for its permissions`);
    return resource;
  };
  return functionGrants(name).map((grant) => ({
    actions: grant.actions,
    resources: grant.on.map((target) => {
      if ("bucket" in target) {
        const arn = need(bucket, "bucket").arn;
        return target.bucket === "" ? arn : $interpolate`${arn}/${target.bucket}`;
      }
      if ("table" in target) return need(table, "builds table").arn;
      if ("tableIndex" in target) return $interpolate`${need(table, "builds table").arn}/index/${target.tableIndex}`;
      if ("queue" in target) return target.queue === "groves" ? need(groves, "grove queue").arn : need(dlq, "grove dead-letter queue").arn;
      return need(topic, "topic").arn;
    }),
  }));
}
