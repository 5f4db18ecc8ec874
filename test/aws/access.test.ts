/**
 * Each adapter method's AWS calls, recorded on moto, are covered by the IAM actions runtime-aws's ADAPTER_ACTIONS
 * declares for it (what the SST app grants from). A new call in an adapter without its action fails here, naming
 * the method, before a deployed function meets AccessDenied.
 */
import { CreateTopicCommand } from "@aws-sdk/client-sns";
import { failedNotification, parseBuildSpec, prepareDataset, submitBuild, type GroveStats, type GroveTask } from "@canopy/core";
import { MemoryQueue } from "@canopy/core/testing";
import { clients, DynamoLedger, DynamoModelRegistry, listOpenBuilds, queueState, S3BlobStore, SnsNotifier, SqsDeadLetters, SqsTaskQueue } from "@canopy/runtime-aws";
import { ADAPTER_ACTIONS } from "@canopy/runtime-aws/access";
import type { InitializeMiddleware, MetadataBearer } from "@smithy/types";
import { beforeAll, describe, expect, it } from "vitest";
import { digits } from "./e2e-support.ts";
import { useAwsEmulator } from "./harness.ts";

const aws = useAwsEmulator({ suffix: "-access" });

/** The IAM action of an SDK command, by S3's authorisation rules for the S3 ones. */
function actionOf(service: "s3" | "dynamodb" | "sns" | "sqs", command: string): string {
  const name = command.replace(/Command$/, "");
  // SQS authorises SendMessageBatch by sqs:SendMessage.
  if (service === "sqs") return `sqs:${name === "SendMessageBatch" ? "SendMessage" : name}`;
  if (service !== "s3") return `${service}:${name}`;
  const s3: Record<string, string> = {
    HeadObject: "GetObject",
    CreateMultipartUpload: "PutObject",
    UploadPart: "PutObject",
    CompleteMultipartUpload: "PutObject",
  };
  return `s3:${s3[name] ?? name}`;
}

let calls: string[] = [];
/** The build the ledger test takes through its life (COMPLETED at its end). */
let buildId = "";

/** The IAM actions the calls made by `work` need, in order. */
async function actionsOf(work: () => Promise<unknown>): Promise<string[]> {
  calls = [];
  await work();
  return calls;
}

beforeAll(() => {
  const record = (service: "s3" | "dynamodb" | "sns" | "sqs"): InitializeMiddleware<object, MetadataBearer> => (next, context) => async (args) => {
    const command = context.commandName ?? "?";
    // A transaction is authorised per item, by the item's own action (there is no dynamodb:TransactWriteItems).
    const items = command === "TransactWriteItemsCommand" ? ((args.input as { TransactItems?: Record<string, unknown>[] }).TransactItems ?? []) : undefined;
    if (items) for (const item of items) calls.push(`dynamodb:${{ Put: "PutItem", Update: "UpdateItem", Delete: "DeleteItem", ConditionCheck: "ConditionCheckItem" }[Object.keys(item)[0]]}`);
    else calls.push(actionOf(service, command));
    return next(args);
  };
  const options = { step: "initialize", name: "canopyRecordCalls" } as const;
  clients.s3().middlewareStack.add(record("s3"), options);
  clients.dynamodb().middlewareStack.add(record("dynamodb"), options);
  clients.sns().middlewareStack.add(record("sns"), options);
  clients.sqs().middlewareStack.add(record("sqs"), options);
});

const within = (declared: readonly string[]) => (actions: string[]) => {
  expect(actions.length).toBeGreaterThan(0);
  for (const action of actions) expect(declared, action).toContain(action);
};

describe("the IAM actions each adapter method needs", () => {
  it("S3BlobStore: get (present and missing), exists, put (single and multipart)", async () => {
    const blobs = new S3BlobStore(aws.current.resources.bucket, undefined, { multipartThreshold: 5 * 1024 * 1024, partSize: 5 * 1024 * 1024 });
    const put = ADAPTER_ACTIONS.blobs.put;
    within(put)(await actionsOf(() => blobs.put("builds/b-0000000000000000/report.json", new TextEncoder().encode("{}"))));
    const multipart = await actionsOf(() => blobs.put("builds/b-0000000000000000/model.canopy", new Uint8Array(6 * 1024 * 1024)));
    expect(multipart).toEqual(["s3:PutObject", "s3:PutObject", "s3:PutObject", "s3:PutObject"]); // create, 2 parts, complete
    within(put)(multipart);
    within(ADAPTER_ACTIONS.blobs.get)(await actionsOf(() => blobs.get("builds/b-0000000000000000/report.json")));
    within(ADAPTER_ACTIONS.blobs.get)(await actionsOf(() => blobs.get("builds/b-0000000000000000/missing.json")));
    within(ADAPTER_ACTIONS.blobs.exists)(await actionsOf(() => blobs.exists("builds/b-0000000000000000/report.json")));
  });

  it("DynamoLedger: every method a function calls, through a build's life", async () => {
    const { blobs, table } = { blobs: new S3BlobStore(aws.current.resources.bucket), table: aws.current.resources.table };
    const ledger = new DynamoLedger(table);
    const prepared = await prepareDataset(digits, { label: "digit" }, blobs);
    const spec = parseBuildSpec({ dataset: "digits.csv", label: "digit", n_estimators: 3, grove_size: 1, tolerated_failures: 1 });
    const ledgerActions = ADAPTER_ACTIONS.ledger;
    // submitBuild: get (is it there?), create, startTraining (and S3 for the manifest).
    const submitted = await actionsOf(async () => (buildId = (await submitBuild(spec, { blobs, ledger, queue: new MemoryQueue() }, prepared)).buildId));
    within([...ledgerActions.get, ...ledgerActions.create, ...ledgerActions.startTraining])(submitted.filter((a) => a.startsWith("dynamodb:")));
    const stats: GroveStats = { trees: 1, nodes: 1, bytes: 1, queuedAt: 1, startedAt: 1, loadedAt: 1, trainedAt: 1, storedAt: 1, landedAt: 1, packCached: false, digest: "0".repeat(64) };
    within(ledgerActions.recordRequeue)(await actionsOf(() => ledger.recordRequeue(buildId)));
    within(ledgerActions.landGrove)(await actionsOf(() => ledger.landGrove(buildId, 0, stats)));
    within(ledgerActions.landGrove)(await actionsOf(() => ledger.landGrove(buildId, 0, stats))); // a duplicate landing
    within(ledgerActions.summary)(await actionsOf(() => ledger.summary(buildId)));
    within(ledgerActions.grove)(await actionsOf(() => ledger.grove(buildId, 0)));
    within(ledgerActions.failGrove)(await actionsOf(() => ledger.failGrove(buildId, 1, "boom")));
    within(ledgerActions.landGrove)(await actionsOf(() => ledger.landGrove(buildId, 2, stats)));
    within(ledgerActions.redriveAggregation)(await actionsOf(() => ledger.redriveAggregation(buildId)));
    within(ledgerActions.claimAggregation)(await actionsOf(() => ledger.claimAggregation(buildId)));
    within(ledgerActions.reopenAggregation)(await actionsOf(() => ledger.reopenAggregation(buildId, { claim: 1 })));
    within(ledgerActions.claimAggregation)(await actionsOf(() => ledger.claimAggregation(buildId)));
    within(ledgerActions.complete)(await actionsOf(() => ledger.complete(buildId, { modelKey: "m", reportKey: "r", metrics: null })));
    within(ledgerActions.fail)(await actionsOf(() => ledger.fail(buildId, "too late"))); // refused: already COMPLETED
    within(ledgerActions.get)(await actionsOf(() => ledger.get(buildId)));
  });

  it("listOpenBuilds, DynamoModelRegistry and SnsNotifier", async () => {
    const { table, topicArn } = aws.current.resources;
    within(ADAPTER_ACTIONS.openBuilds.list)(await actionsOf(() => listOpenBuilds(table)));
    const registry = new DynamoModelRegistry(table);
    // promote reads the build (COMPLETED by the ledger test), then writes the alias.
    const promoted = await actionsOf(() => registry.promote(buildId, "production"));
    expect(promoted).toEqual(["dynamodb:GetItem", "dynamodb:PutItem"]);
    within(ADAPTER_ACTIONS.registry.promote)(promoted);
    within(ADAPTER_ACTIONS.registry.resolve)(await actionsOf(() => registry.resolve("production")));
    within(ADAPTER_ACTIONS.registry.list)(await actionsOf(() => registry.list()));
    await clients.sns().send(new CreateTopicCommand({ Name: topicArn.split(":").at(-1)! }));
    const record = (await new DynamoLedger(table).get(buildId))!;
    const notifier = new SnsNotifier(topicArn);
    within(ADAPTER_ACTIONS.notifier.publish)(await actionsOf(() => notifier.publish(failedNotification(record, "a notification"))));
  });

  it("SqsTaskQueue (send, the queue's state) and SqsDeadLetters", async () => {
    const { queueUrl } = aws.current.resources;
    const task = { buildId, grove: 0, packKey: `packs/${"a".repeat(64)}.pack`, packHash: "a".repeat(64), seed: 0, testFraction: 0.25, treeStart: 0, treeEnd: 1, params: {}, queuedAt: 1 } as unknown as GroveTask;
    within(ADAPTER_ACTIONS.groves.send)(await actionsOf(() => new SqsTaskQueue(queueUrl).send([task])));
    within(ADAPTER_ACTIONS.groves.state)(await actionsOf(() => queueState(queueUrl)));
    within(ADAPTER_ACTIONS.deadLetters.send)(await actionsOf(() => new SqsDeadLetters(queueUrl).send("{}", "a cause")));
  });
});
