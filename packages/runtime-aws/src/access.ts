/**
 * What each deployed function may do, written once. ADAPTER_ACTIONS lists the IAM actions behind every call an
 * adapter method makes; FUNCTION_ACCESS says which of those calls each function makes, and on which keys; the SST
 * app grants exactly `functionGrants(name)` to each function's role and nothing else. Light (no SDK, no engine):
 * `@canopy/runtime-aws/access`, read by the stacks.
 *
 * Kept honest by tests: test/aws/access.test.ts drives each adapter on moto and checks every call it sends is in
 * ADAPTER_ACTIONS for its method; test/infra/permissions.test.ts runs each built function on moto and checks every
 * call it makes is allowed by its role, and the exact lists.
 */
import { KEY_PATTERNS, type KeyKind } from "@canopy/core/keys";
import { OPEN_BUILDS_INDEX } from "./names.ts";

/**
 * The IAM action(s) each adapter method needs. S3: HeadObject is authorised by s3:GetObject, and a multipart upload
 * (S3BlobStore.put at or above its threshold) by s3:PutObject, plus s3:AbortMultipartUpload when it fails.
 */
export const ADAPTER_ACTIONS = {
  /** S3BlobStore. putStream is a multipart upload (s3:PutObject), aborted on failure. */
  blobs: {
    get: ["s3:GetObject"],
    exists: ["s3:GetObject"],
    put: ["s3:PutObject", "s3:AbortMultipartUpload"],
    putStream: ["s3:PutObject", "s3:AbortMultipartUpload"],
  },
  /**
   * DynamoLedger (dynamo-ledger.ts): a counter item and one entry item per settled grove. Every transition reads the
   * counter (GetItem) and writes it conditioned on what it read (UpdateItem); a landing or a failure also reads the
   * grove's entry and puts it in the same transaction (TransactWriteItems is authorised per item: PutItem, UpdateItem).
   * `get` reads the counter and the entries (BatchGetItem).
   */
  ledger: {
    get: ["dynamodb:GetItem", "dynamodb:BatchGetItem"],
    summary: ["dynamodb:GetItem"],
    grove: ["dynamodb:GetItem"],
    create: ["dynamodb:PutItem"],
    startTraining: ["dynamodb:GetItem", "dynamodb:UpdateItem"],
    landGrove: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
    failGrove: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
    claimAggregation: ["dynamodb:GetItem", "dynamodb:UpdateItem"],
    reopenAggregation: ["dynamodb:GetItem", "dynamodb:UpdateItem"],
    redriveAggregation: ["dynamodb:GetItem", "dynamodb:UpdateItem"],
    recordRequeue: ["dynamodb:GetItem", "dynamodb:UpdateItem"],
    complete: ["dynamodb:GetItem", "dynamodb:UpdateItem"],
    fail: ["dynamodb:GetItem", "dynamodb:UpdateItem"],
  },
  /** listOpenBuilds (open-builds.ts): the sweeper's Query of the sparse open-builds index. */
  openBuilds: { list: ["dynamodb:Query"] },
  /** DynamoModelRegistry (registry.ts): alias items in the builds table. */
  registry: {
    resolve: ["dynamodb:GetItem"],
    promote: ["dynamodb:GetItem", "dynamodb:PutItem"],
    list: ["dynamodb:Scan"],
  },
  /** SnsNotifier. */
  notifier: { publish: ["sns:Publish"] },
  /** SqsTaskQueue on the grove queue (SendMessageBatch is authorised by sqs:SendMessage) and queueState. */
  groves: { send: ["sqs:SendMessage"], state: ["sqs:GetQueueAttributes"] },
  /** SqsDeadLetters: the trainer's send of a task that can never succeed to the grove dead-letter queue. */
  deadLetters: { send: ["sqs:SendMessage"] },
} as const;

type Adapters = typeof ADAPTER_ACTIONS;
type Calls<A extends keyof Adapters> = (keyof Adapters[A])[];

/** The calls one function makes: blob reads and writes by kind of key, and the table and topic calls by method. */
export interface FunctionAccess {
  /** Blobs it reads (`get`), by kind of key (core's KEY_PATTERNS). */
  reads?: KeyKind[];
  /** Blobs it writes (`put`), by kind of key. */
  writes?: KeyKind[];
  ledger?: Calls<"ledger">;
  openBuilds?: Calls<"openBuilds">;
  registry?: Calls<"registry">;
  notifier?: Calls<"notifier">;
  groves?: Calls<"groves">;
  deadLetters?: Calls<"deadLetters">;
}

/** The app's functions: the four pipeline handlers and the predict endpoint. */
export type FunctionName = "trainer" | "aggregator" | "dlq" | "sweeper" | "predict";

/** What each function does (packages/functions/src): change it with the handler, and the infra test checks both. */
export const FUNCTION_ACCESS: Record<FunctionName, FunctionAccess> = {
  // core's trainGrove: reads the counter and its grove's entry, the build's manifest and the pack, stores its grove
  // (and its out-of-bag sums when the build has oob_score), lands it; on an error, recordGroveError writes the note the dead-letter consumer quotes, and a task that can never
  // succeed (an input error) is sent to the dead-letter queue at once.
  trainer: { reads: ["spec", "pack"], writes: ["grove", "groveOob", "groveError"], ledger: ["summary", "grove", "landGrove"], deadLetters: ["send"] },
  // core's aggregate: claims, reads the manifest, the record, the groves (twice: verify and evaluate, then stream),
  // their out-of-bag sums and the pack, streams the model and writes the reports (and oob.bin), completes (or
  // fails) the build and publishes its notification.
  // A study's trigger comes the same way: it ranks the members from their reports and writes the study's report, page
  // and round; a build that is a study's member is landed (or failed) in its study when it finishes. Ranked, it
  // starts the next stage (core's startBuild / extendBuild: a record created and started, a manifest written, grove
  // tasks sent): a halving round's survivors extended (their groves copied, out-of-bag sums with them), or the final
  // build (refit) in its final stage's record, where the ranking lands too.
  // A partitioned run's trigger too: it reads the run's manifest, each partition's report and model (its SHA-256 for
  // the partitioned model) and writes the partitioned model, the run's report and its page. A tuned run's (tune --partition-by)
  // ranks each partition from its members' reports, writes the ranking and its final stage's manifest, and starts the
  // final builds (their manifests, records and grove tasks); the final stage's trigger reads the ranking back.
  aggregator: {
    reads: ["spec", "grove", "groveOob", "pack", "report", "study", "studyRound", "partitionRun", "partitionTuning", "model"],
    writes: [
      "model",
      "report",
      "reportHtml",
      "oob",
      "studyReport",
      "studyReportHtml",
      "studyRound",
      "study",
      "spec",
      "grove",
      "groveOob",
      "partitionedModel",
      "partitionReport",
      "partitionReportHtml",
      "partitionRun",
      "partitionTuning",
    ],
    ledger: ["claimAggregation", "get", "summary", "create", "startTraining", "landGrove", "failGrove", "complete", "fail"],
    notifier: ["publish"],
    groves: ["send"],
  },
  // core's failGroveTask, quoting the trainer's last error note; a failed build that is a study's member is failed in
  // its study (its counter read first).
  dlq: { reads: ["groveError"], ledger: ["failGrove", "get", "summary"], notifier: ["publish"] },
  // core's sweepBuilds over the open builds: redrives and reopens aggregations, queues lost groves again (core's
  // resumeBuild: the manifest, the grove queue; an extension's uncopied groves are queued for training, not copied),
  // fails what cannot finish.
  // A study (or a partitioned run) is never re-queued: its members are swept as builds, a finished member a crash left
  // unlanded is landed (or failed) in it from the member's report, and a study's member a crash left unsubmitted is
  // started (core's startBuild: its manifest written, its record created, its groves queued), as is a final stage's
  // final build.
  sweeper: {
    reads: ["spec", "study", "report", "partitionRun"],
    writes: ["spec"],
    openBuilds: ["list"],
    ledger: ["summary", "get", "create", "startTraining", "redriveAggregation", "reopenAggregation", "recordRequeue", "landGrove", "failGrove", "fail"],
    groves: ["send", "state"],
    notifier: ["publish"],
  },
  // Aliases from the table, models from the bucket (a partitioned model: its manifest, then its partitions' models).
  predict: { reads: ["model", "partitionedModel"], registry: ["resolve"] },
};

/**
 * Which of the app's resources a grant is on: the bucket itself, keys in it, the builds table, its open-builds index,
 * the topic, the grove queue or its dead-letter queue.
 */
export type GrantTarget = { bucket: string } | { table: true } | { tableIndex: string } | { topic: true } | { queue: "groves" | "dlq" };

export interface Grant {
  actions: string[];
  /** For the bucket: "" is the bucket (s3:ListBucket), anything else a key pattern under it. */
  on: GrantTarget[];
}

const sorted = (values: Iterable<string>) => [...new Set(values)].sort();

/**
 * The IAM grants of one function, in a fixed order: blob reads (s3:GetObject on each key pattern read, and
 * s3:ListBucket on the bucket, so that a missing key answers 404 and not 403: the functions treat a missing key as
 * "not there", e.g. a grove without an error note, an unknown model), blob writes, table calls, topic calls.
 */
export function functionGrants(name: FunctionName, access: FunctionAccess = FUNCTION_ACCESS[name]): Grant[] {
  const grants: Grant[] = [];
  const reads = sorted(access.reads ?? []) as KeyKind[];
  const writes = sorted(access.writes ?? []) as KeyKind[];
  if (reads.length > 0) {
    grants.push({ actions: [...ADAPTER_ACTIONS.blobs.get], on: reads.map((k) => ({ bucket: KEY_PATTERNS[k] })) });
    grants.push({ actions: ["s3:ListBucket"], on: [{ bucket: "" }] });
  }
  if (writes.length > 0) grants.push({ actions: [...ADAPTER_ACTIONS.blobs.put], on: writes.map((k) => ({ bucket: KEY_PATTERNS[k] })) });
  const pick = <A extends keyof Adapters>(adapter: A, calls: Calls<A> | undefined) =>
    (calls ?? []).flatMap((call) => ADAPTER_ACTIONS[adapter][call] as readonly string[]);
  const table = sorted([...pick("ledger", access.ledger), ...pick("registry", access.registry)]);
  if (table.length > 0) grants.push({ actions: table, on: [{ table: true }] });
  const index = sorted(pick("openBuilds", access.openBuilds));
  if (index.length > 0) grants.push({ actions: index, on: [{ tableIndex: OPEN_BUILDS_INDEX.name }] });
  const topic = sorted(pick("notifier", access.notifier));
  if (topic.length > 0) grants.push({ actions: topic, on: [{ topic: true }] });
  const groves = sorted(pick("groves", access.groves));
  if (groves.length > 0) grants.push({ actions: groves, on: [{ queue: "groves" }] });
  const deadLetters = sorted(pick("deadLetters", access.deadLetters));
  if (deadLetters.length > 0) grants.push({ actions: deadLetters, on: [{ queue: "dlq" }] });
  return grants;
}
