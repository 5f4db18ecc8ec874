/**
 * Issue 11, item 1: nothing trained is ever thrown away. An aggregation that is lost or dies is asked for again, the
 * way a Step Functions redrive re-runs what did not finish: restarting `canopy dev` (it sweeps on start), publishing the
 * same build again, or `canopy resume <id>`. Each ends COMPLETED with the embedded run's model bytes and exactly one
 * notification, through the real handlers on moto.
 */
import { PurgeQueueCommand } from "@aws-sdk/client-sqs";
import { keys, parseBuildSpec, prepareDataset, submitBuild } from "@canopy/core";
import { canopyEventSources, clients, DynamoLedger, provisionResources, S3BlobStore, startEmulator, type ProvisionedResources } from "@canopy/runtime-aws";
import { describe, expect, it } from "vitest";
import { dev } from "../../packages/cli/src/commands/dev.ts";
import { publish } from "../../packages/cli/src/commands/publish.ts";
import { resume } from "../../packages/cli/src/commands/resume.ts";
import { receiveNotifications, useAwsEmulator } from "./harness.ts";
import { adapters, capture, digits, handlersOn, referenceModel, until } from "./e2e-support.ts";

const aws = useAwsEmulator();

const DATA = "test/fixtures/digits.csv";
/** 6 groves of 2 trees; no tags, so `canopy publish` with the same flags makes the same build id. */
const SPEC = { dataset: DATA, label: "digit", n_estimators: 12, grove_size: 2, seed: 7 };
const FLAGS = { label: "digit", trees: 12, groveSize: 2, seed: 7 };

/**
 * The first `canopy dev`, killed: its trainers ran (here, the trainer and dead-letter consumer under the emulator)
 * but no aggregator finished. Stops once `landed` groves are in (all of them by default). The tasks after the first
 * `landed` are taken off the queue untrained, as if lost: stopping the trainers once `landed` groves are in would let
 * the ones still running land theirs too, and fast ones land them all.
 */
async function trainWithoutAggregator(resources: ProvisionedResources, landed = 6): Promise<string> {
  const ports = adapters(resources);
  const handlers = handlersOn({ trainer: ports, aggregator: ports, deadLetter: ports });
  const train = handlers.trainer;
  let taken = 0;
  handlers.trainer = async (event, context) => (taken++ < landed ? train(event, context) : { batchItemFailures: [] });
  const { sqs } = canopyEventSources({ ...resources, streamArn: resources.streamArn, handlers, trainerPollers: 2 });
  const emulator = startEmulator({ sqs, maxConcurrency: 2 });
  try {
    const prepared = await prepareDataset(digits, { label: "digit" }, ports.blobs);
    const { buildId } = await submitBuild(parseBuildSpec(SPEC), ports, prepared);
    await until(`${landed} groves landed`, async () => ((await ports.ledger.summary(buildId))!.landedCount >= landed ? true : undefined), 60_000);
    return buildId;
  } finally {
    await emulator.stop();
  }
}

async function expectReferenceBytes(resources: ProvisionedResources, buildId: string) {
  const reference = await referenceModel(SPEC);
  expect(buildId).toBe(reference.buildId);
  expect(Buffer.from((await new S3BlobStore(resources.bucket).get(keys.model(buildId)))!).equals(reference.model)).toBe(true);
}

/** Runs `canopy dev` (no data: it serves every build) until the inbox has a notification; returns it and dev's stderr. */
async function devUntilNotified(resources: ProvisionedResources, suffix: string) {
  const stderr = capture();
  const stop = new AbortController();
  const t0 = Date.now();
  const running = dev(undefined, { endpoint: aws.current.moto.endpoint, suffix }, { stdout: capture().stream, stderr: stderr.stream, signal: stop.signal });
  try {
    const [note] = await receiveNotifications(resources.inboxUrl, { count: 1, timeoutMs: 60_000 });
    if (!note) throw new Error(`no notification; canopy dev said:\n${stderr.text()}`);
    const extra = await receiveNotifications(resources.inboxUrl, { count: 1, timeoutMs: 2000 });
    return { note, extra, stderr: stderr.text() };
  } finally {
    stop.abort();
    await running;
  }
}

describe("a lost or dead aggregation is asked for again; the build completes with the same bytes and one notification", () => {
  it("canopy dev killed after the last landing, before its aggregator ran: the next canopy dev fires the trigger again", { timeout: 180_000 }, async () => {
    const resources = await provisionResources({ suffix: "-kill-trigger", visibilityTimeoutSeconds: 5 });
    const buildId = await trainWithoutAggregator(resources);
    expect(await new DynamoLedger(resources.table).summary(buildId)).toMatchObject({ status: "TRAINING", remaining: 0 });

    const { note, extra, stderr } = await devUntilNotified(resources, "-kill-trigger");
    expect(note.notification).toMatchObject({ type: "build.completed", buildId });
    expect(extra).toEqual([]);
    expect(stderr).toContain(`canopy: dev: recovery: build ${buildId}: redrive: every grove is in and nothing claimed the build`);
    await expectReferenceBytes(resources, buildId);
    expect(await new DynamoLedger(resources.table).summary(buildId)).toMatchObject({ status: "COMPLETED", claims: 1, redrives: 1 });
  });

  it("canopy dev killed while aggregating (the claim made, its aggregator dead): the next canopy dev reopens the claim", { timeout: 180_000 }, async () => {
    const resources = await provisionResources({ suffix: "-kill-claim", visibilityTimeoutSeconds: 5 });
    const buildId = await trainWithoutAggregator(resources);
    // What an aggregator killed after its claim leaves: AGGREGATING, and nobody at work.
    const ledger = new DynamoLedger(resources.table);
    expect(await ledger.claimAggregation(buildId)).toBe(true);

    const { note, extra, stderr } = await devUntilNotified(resources, "-kill-claim");
    expect(note.notification).toMatchObject({ type: "build.completed", buildId });
    expect(extra).toEqual([]);
    expect(stderr).toContain(`canopy: dev: recovery: build ${buildId}: reopen: claimed`);
    await expectReferenceBytes(resources, buildId);
    expect(await ledger.summary(buildId)).toMatchObject({ status: "COMPLETED", claims: 2, redrives: 1 });
  });

  it("canopy publish of the same build, stuck with every grove in, asks for the aggregation again and --wait sees it complete", { timeout: 180_000 }, async () => {
    const resources = await provisionResources({ suffix: "-republish", visibilityTimeoutSeconds: 5 });
    const buildId = await trainWithoutAggregator(resources);
    // The functions are running again (not canopy dev: no recovery sweep), but the trigger is long gone.
    const ports = adapters(resources);
    const emulator = startEmulator({
      ...canopyEventSources({ ...resources, handlers: handlersOn({ trainer: ports, aggregator: ports, deadLetter: ports }), since: Date.now() }),
      maxConcurrency: 2,
    });
    const stdout = capture();
    const stderr = capture();
    try {
      const flags = { ...FLAGS, wait: true, endpoint: aws.current.moto.endpoint, bucket: resources.bucket, table: resources.table, queue: resources.queueUrl };
      await publish(DATA, flags, { stdout: stdout.stream, stderr: stderr.stream, pollMs: 200 });
    } finally {
      await emulator.stop();
    }
    expect(stderr.text()).toContain(`canopy: build ${buildId} already exists with the same data and options: every grove is in; the aggregation was asked for again`);
    expect(stdout.text()).toMatch(new RegExp(`^build +${buildId}: 12 trees in 6 groves$`, "m"));
    const notes = await receiveNotifications(resources.inboxUrl, { count: 2, timeoutMs: 3000 });
    expect(notes.map((n) => [n.notification.type, n.notification.buildId])).toEqual([["build.completed", buildId]]);
    await expectReferenceBytes(resources, buildId);
  });

  it("canopy resume <id> queues only the groves that had not landed (their tasks lost) and the build completes", { timeout: 180_000 }, async () => {
    const resources = await provisionResources({ suffix: "-resume", visibilityTimeoutSeconds: 5 });
    const buildId = await trainWithoutAggregator(resources, 2);
    await clients.sqs().send(new PurgeQueueCommand({ QueueUrl: resources.queueUrl })); // the rest of the tasks are lost
    const ledger = new DynamoLedger(resources.table);
    const before = (await ledger.get(buildId))!;
    const outstanding = [0, 1, 2, 3, 4, 5].filter((g) => !before.landed.includes(g));
    expect(outstanding.length).toBeGreaterThan(0);

    const ports = adapters(resources);
    const emulator = startEmulator({
      ...canopyEventSources({ ...resources, handlers: handlersOn({ trainer: ports, aggregator: ports, deadLetter: ports }), trainerPollers: 2 }),
      maxConcurrency: 2,
    });
    const stdout = capture();
    const stderr = capture();
    try {
      const flags = { wait: true, json: true, endpoint: aws.current.moto.endpoint, bucket: resources.bucket, table: resources.table, queue: resources.queueUrl };
      await resume(buildId, flags, { stdout: stdout.stream, stderr: stderr.stream, pollMs: 200 });
    } finally {
      await emulator.stop();
    }
    const [resumed, final] = stdout.text().trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(resumed).toMatchObject({ buildId, status: "TRAINING", queued: outstanding });
    expect(final).toMatchObject({ buildId, status: "COMPLETED" });
    expect(stderr.text()).toContain(`canopy: build ${buildId}: TRAINING; queued again the ${outstanding.length} grove(s) that had not landed`);
    const notes = await receiveNotifications(resources.inboxUrl, { count: 2, timeoutMs: 3000 });
    expect(notes.map((n) => n.notification.type)).toEqual(["build.completed"]);
    await expectReferenceBytes(resources, buildId);
    // The groves that had landed were not trained again.
    const after = (await ledger.get(buildId))!;
    for (const g of before.landed) expect(after.groveStats[g]).toEqual(before.groveStats[g]);
  });
});
