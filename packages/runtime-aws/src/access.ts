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

/**
 * The IAM action(s) each adapter method needs. S3: HeadObject is authorised by s3:GetObject, and a multipart upload
 * (S3BlobStore.put at or above its threshold) by s3:PutObject, plus s3:AbortMultipartUpload when it fails.
 */
export const ADAPTER_ACTIONS = {
  /** S3BlobStore. */
  blobs: {
    get: ["s3:GetObject"],
    exists: ["s3:GetObject"],
    put: ["s3:PutObject", "s3:AbortMultipartUpload"],
  },
  /** DynamoLedger (dynamo-ledger.ts): one GetItem, PutItem or conditional UpdateItem per method. */
  ledger: {
    get: ["dynamodb:GetItem"],
    create: ["dynamodb:PutItem"],
    startTraining: ["dynamodb:UpdateItem"],
    landGrove: ["dynamodb:UpdateItem"],
    failGrove: ["dynamodb:UpdateItem"],
    claimAggregation: ["dynamodb:UpdateItem"],
    complete: ["dynamodb:UpdateItem"],
    fail: ["dynamodb:UpdateItem"],
  },
  /** listOpenBuilds (open-builds.ts): the sweeper's read of every unfinished build. */
  openBuilds: { list: ["dynamodb:Scan"] },
  /** DynamoModelRegistry (registry.ts): alias items in the builds table. */
  registry: {
    resolve: ["dynamodb:GetItem"],
    promote: ["dynamodb:GetItem", "dynamodb:PutItem"],
    list: ["dynamodb:Scan"],
  },
  /** SnsNotifier. */
  notifier: { publish: ["sns:Publish"] },
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
}

/** The app's functions: the four pipeline handlers and the predict endpoint. */
export type FunctionName = "trainer" | "aggregator" | "dlq" | "sweeper" | "predict";

/** What each function does (packages/functions/src): change it with the handler, and the infra test checks both. */
export const FUNCTION_ACCESS: Record<FunctionName, FunctionAccess> = {
  // core's trainGrove: reads the record and the pack (the task carries the rest), stores its grove, lands it; on
  // an error, recordGroveError writes the note the dead-letter consumer quotes.
  trainer: { reads: ["pack"], writes: ["grove", "groveError"], ledger: ["get", "landGrove"] },
  // core's aggregate: claims, reads the manifest, the groves and the pack, writes model and reports, completes (or
  // fails) the build and publishes its notification.
  aggregator: {
    reads: ["spec", "grove", "pack"],
    writes: ["model", "report", "reportHtml"],
    ledger: ["claimAggregation", "get", "complete", "fail"],
    notifier: ["publish"],
  },
  // core's failGroveTask, quoting the trainer's last error note.
  dlq: { reads: ["groveError"], ledger: ["failGrove", "get"], notifier: ["publish"] },
  // core's sweepStalledBuilds over the open builds.
  sweeper: { openBuilds: ["list"], ledger: ["fail", "get"], notifier: ["publish"] },
  // Aliases from the table, models from the bucket.
  predict: { reads: ["model"], registry: ["resolve"] },
};

/** Which of the app's resources a grant is on: the bucket itself, keys in it, the builds table, the topic. */
export type GrantTarget = { bucket: string } | { table: true } | { topic: true };

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
  const table = sorted([...pick("ledger", access.ledger), ...pick("openBuilds", access.openBuilds), ...pick("registry", access.registry)]);
  if (table.length > 0) grants.push({ actions: table, on: [{ table: true }] });
  const topic = sorted(pick("notifier", access.notifier));
  if (topic.length > 0) grants.push({ actions: topic, on: [{ topic: true }] });
  return grants;
}
