import { CONTENT_TYPES, isAggregationTrigger, keys, PackCache, type BlobStore, type BuildReport } from "@canopy/core";
import { MemoryBlobStore } from "@canopy/core/testing";
import { describe, expect, it } from "vitest";
import { createAggregator } from "../src/aggregator.ts";
import { createDeadLetterConsumer } from "../src/dlq.ts";
import { containerId, memoryMb } from "../src/runtime.ts";
import { aggregationLeaseMs, createSweeper, stallLimitMs } from "../src/sweeper.ts";
import { createTrainer } from "../src/trainer.ts";
import { context, irisBuild, quiet, sqsEvent, streamRecord, taskEvent } from "./support.ts";

type Build = Awaited<ReturnType<typeof irisBuild>>;
/** Messages the trainer sent to the dead-letter queue at once, per build. */
const deadLetters = new Map<string, { body: string; cause: string }[]>();
const trainerFor = (b: Build, packs = new PackCache(), blobs: BlobStore = b.blobs) =>
  createTrainer({
    ports: async () => ({ blobs, ledger: b.ledger }),
    deadLetters: async () => ({ send: async (body, cause) => void deadLetters.set(b.id, [...(deadLetters.get(b.id) ?? []), { body, cause }]) }),
    packs,
    logger: quiet(),
    clock: b.clock,
  });
/** The build's blob store, with writes of one grove's blob failing as an unknown (transient) fault would. */
const failingPutOf = (b: Build, grove: number): BlobStore => ({
  get: (key) => b.blobs.get(key),
  exists: (key) => b.blobs.exists(key),
  put: async (key, bytes, type) => {
    if (key === keys.grove(b.id, grove)) throw new Error("SlowDown: please reduce your request rate");
    return b.blobs.put(key, bytes, type);
  },
});
const aggregatorFor = (b: Build) =>
  createAggregator({ ports: async () => ({ blobs: b.blobs, ledger: b.ledger, notifier: b.notifier }), logger: quiet(), clock: b.clock, prices: {} });
const dlqFor = (b: Build) => createDeadLetterConsumer({ ports: async () => ({ blobs: b.blobs, ledger: b.ledger, notifier: b.notifier }), logger: quiet() });
const triggers = (b: Build) => b.changes.filter(isAggregationTrigger).map(streamRecord);

describe("trainer", () => {
  it("trains each record from its build's manifest, reports only the failing ones, and keeps the pack across invocations", async () => {
    const b = await irisBuild();
    const packs = new PackCache();
    const trainer = trainerFor(b, packs, failingPutOf(b, 2));
    // A message pointing grove 1 at another pack: the manifest is the truth, so grove 1 trains on the build's pack.
    const astray = { ...b.tasks[1], packHash: "0".repeat(64), packKey: keys.pack("0".repeat(64)) };
    const event = { Records: [...taskEvent([b.tasks[0], b.tasks[0], astray, b.tasks[2]]).Records, ...sqsEvent(["not json"]).Records] };
    const response = await trainer(event, context(1769));
    expect(response.batchItemFailures.map((f) => f.itemIdentifier)).toEqual([event.Records[3].messageId, event.Records[4].messageId]);

    const record = (await b.ledger.get(b.id))!;
    expect(record.landed).toEqual([0, 1]);
    expect(record.groveStats[0]).toMatchObject({ memoryMb: 1769, packCached: false });
    // The failing grove's error is kept for the dead-letter consumer; the build is untouched by it.
    expect(new TextDecoder().decode((await b.blobs.get(keys.groveError(b.id, 2)))!)).toBe("SlowDown: please reduce your request rate");
    expect(record.failed).toEqual([]);

    // A warm container: the next grove's pack comes from memory.
    expect((await trainerFor(b, packs)(taskEvent([b.tasks[2]]), context(1769))).batchItemFailures).toEqual([]);
    expect((await b.ledger.get(b.id))!.groveStats[2].packCached).toBe(true);
  });

  it("sends a task that can never succeed (a damaged pack: an input error) to the dead-letter queue at once, never retried", async () => {
    const b = await irisBuild({ tolerated_failures: 1 });
    const pack = (await b.blobs.get(b.prepared.packKey))!;
    await b.blobs.put(b.prepared.packKey, pack.slice(0, pack.length - 10), CONTENT_TYPES.pack);
    const trainer = trainerFor(b);
    const events = [taskEvent([b.tasks[0]]), taskEvent([b.tasks[1]])];
    for (const event of events) expect((await trainer(event, context())).batchItemFailures).toEqual([]); // done: not redelivered
    const sent = deadLetters.get(b.id)!;
    expect(sent.map((m) => m.body)).toEqual(events.map((e) => e.Records[0].body));
    expect(sent[0].cause).toMatch(/^input error, not retried: TaskError: dataset pack packs\/[0-9a-f]{64}\.pack is damaged/);
    expect(await b.ledger.summary(b.id)).toMatchObject({ status: "TRAINING", failedCount: 0 }); // the consumer decides
    // The dead-letter consumer gives each grove up with the error the trainer saved: the second takes it over its tolerance.
    const dlq = dlqFor(b);
    expect((await dlq(sqsEvent([sent[0].body]), context())).batchItemFailures).toEqual([]);
    expect(b.notifier.published).toEqual([]); // within the tolerance
    expect((await dlq(sqsEvent([sent[1].body]), context())).batchItemFailures).toEqual([]);
    const record = (await b.ledger.get(b.id))!;
    expect(record.status).toBe("FAILED");
    expect(record.failed.map((f) => f.grove)).toEqual([0, 1]);
    expect(record.failed[0].error).toMatch(/^TaskError: dataset pack packs\/[0-9a-f]{64}\.pack is damaged: /);
    expect(b.notifier.published).toHaveLength(1);
    expect(b.notifier.published[0]).toMatchObject({ type: "build.failed", buildId: b.id });
    expect(b.notifier.published[0].reason).toMatch(/^2 of 3 groves failed \(tolerated 1\); grove 1: TaskError: dataset pack .* is damaged/);
  });

  it("records the container (from its log stream) and the delivery that trained each grove", async () => {
    const b = await irisBuild();
    const trainer = trainerFor(b);
    const first = context();
    await trainer(taskEvent([b.tasks[0]]), first);
    await trainer(taskEvent([b.tasks[1]], 3), context());
    const stats = (await b.ledger.get(b.id))!.groveStats;
    expect(stats[0].worker).toBe(first.logStreamName.split("]")[1].slice(0, 8));
    expect(stats[0]).not.toHaveProperty("attempt"); // a first delivery
    expect(stats[1].attempt).toBe(3);
    expect(stats[1].worker).not.toBe(stats[0].worker);
    // Without a log stream, one id made at module init stands for the container.
    expect(containerId({ logStreamName: "" })).toMatch(/^[0-9a-f]{8}$/);
    expect(containerId({ logStreamName: "" })).toBe(containerId(undefined));
    expect(containerId({ logStreamName: "2026/01/01/[$LATEST]C0FFEE12aa34bb56cc78dd90ee12ff34" })).toBe("c0ffee12");
  });

  it("does not fail the whole batch when every record fails", async () => {
    const b = await irisBuild();
    const response = await trainerFor(b)(sqsEvent(["{}", "[]"]), context());
    expect(response.batchItemFailures).toHaveLength(2);
  });
});

describe("aggregator", () => {
  it("aggregates on the trigger only, once however often it is delivered, and the report carries cost", async () => {
    const b = await irisBuild();
    await trainerFor(b)(taskEvent(b.tasks), context(2048));
    const aggregator = aggregatorFor(b);
    const all = b.changes.map(streamRecord);
    const [trigger] = triggers(b);
    expect(trigger).toBeDefined();

    const first = await aggregator({ Records: [...all.filter((r) => r !== trigger), trigger, trigger] }, context(3008));
    expect(first.batchItemFailures).toEqual([]);
    expect(await aggregator({ Records: [trigger] }, context(3008))).toEqual({ batchItemFailures: [] });
    expect(b.notifier.published).toHaveLength(1);
    const note = b.notifier.published[0];
    expect(note).toMatchObject({ type: "build.completed", buildId: b.id, status: "COMPLETED" });
    expect(note.cost?.totals.billedGbS).toBeGreaterThan(0);
    expect(note.cost?.requests.dynamoWrites).toBe(3 + 4);

    const report = JSON.parse(new TextDecoder().decode((await b.blobs.get(keys.report(b.id)))!)) as BuildReport;
    expect(report.cost.groves.map((g) => g.memoryMb)).toEqual([2048, 2048, 2048]);
    const trainerGbS = report.groves.reduce((s, g) => s + (Math.ceil(g.landedAt - g.startedAt) / 1000) * 2, 0);
    // The aggregator's own run (at 3008 MB) is billed on top of the groves'.
    expect(report.cost.totals.billedGbS).toBeGreaterThan(trainerGbS);
    expect(report.cost.usd.total).toBeGreaterThan(report.cost.usd.lambdaCompute);
    // report.html beside it, by the default renderer, with the trainers' containers on its timeline.
    const html = new TextDecoder().decode((await b.blobs.get(keys.reportHtml(b.id)))!);
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain(`<h1>Canopy build ${b.id}: iris.csv</h1>`);
    expect(html).toContain('"rows":["' + report.groves[0].worker);
  });

  it("turns an aggregation error into a FAILED build with one notification (core's aggregate does it)", async () => {
    const b = await irisBuild();
    await trainerFor(b)(taskEvent(b.tasks), context());
    (b.blobs as MemoryBlobStore).blobs.delete(keys.grove(b.id, 1));
    const aggregator = aggregatorFor(b);
    const [trigger] = triggers(b);
    expect((await aggregator({ Records: [trigger, trigger] }, context())).batchItemFailures).toEqual([]);
    expect((await b.ledger.get(b.id))!.status).toBe("FAILED");
    expect(b.notifier.published).toHaveLength(1);
    expect(b.notifier.published[0]).toMatchObject({ type: "build.failed", status: "FAILED" });
    expect(b.notifier.published[0].reason).toContain(`grove 1 landed but ${keys.grove(b.id, 1)} is missing`);
  });

  it("reports a record whose handling throws by sequence number, for Lambda to retry from there", async () => {
    const b = await irisBuild();
    await trainerFor(b)(taskEvent(b.tasks), context());
    const [trigger] = triggers(b);
    const broken = createAggregator({
      ports: async () => ({ blobs: b.blobs, notifier: b.notifier, ledger: { ...b.ledger, claimAggregation: async () => Promise.reject(new Error("throttled")) } as never }),
      logger: quiet(),
    });
    expect(await broken({ Records: [trigger] }, context())).toEqual({ batchItemFailures: [{ itemIdentifier: trigger.dynamodb!.SequenceNumber }] });
  });
});

describe("dead-letter consumer", () => {
  it("over the tolerance: fails the build once, naming the grove and the trainer's error", async () => {
    const b = await irisBuild();
    await trainerFor(b, new PackCache(), failingPutOf(b, 1))(taskEvent([b.tasks[0], b.tasks[1]]), context());
    const dlq = dlqFor(b);
    const letters = taskEvent([b.tasks[1]], 3);
    expect((await dlq(letters, context())).batchItemFailures).toEqual([]);
    expect((await dlq(letters, context())).batchItemFailures).toEqual([]); // a redelivered dead letter changes nothing
    expect(b.notifier.published).toHaveLength(1);
    const note = b.notifier.published[0];
    expect(note).toMatchObject({ type: "build.failed", buildId: b.id, status: "FAILED" });
    expect(note.failedGroves).toEqual([{ grove: 1, error: "SlowDown: please reduce your request rate" }]);
    expect(note.reason).toBe("1 of 3 groves failed (tolerated 0); grove 1: SlowDown: please reduce your request rate");
  });

  it("within the tolerance: the last grove resolving triggers aggregation, which completes with the groves it has", async () => {
    const b = await irisBuild({ tolerated_failures: 1 });
    await trainerFor(b)(taskEvent([b.tasks[0], b.tasks[2]]), context());
    const dlq = dlqFor(b);
    // No error was saved for this grove (say the trainer timed out): the reason says how many deliveries it had.
    await dlq(taskEvent([b.tasks[1]], 3), context());
    expect(b.notifier.published).toEqual([]);
    const [trigger] = triggers(b);
    await aggregatorFor(b)({ Records: [trigger] }, context());
    expect(b.notifier.published).toHaveLength(1);
    expect(b.notifier.published[0]).toMatchObject({
      type: "build.completed",
      failedGroves: [{ grove: 1, error: "no error recorded by the trainer; gave up after 3 deliveries" }],
    });
    const report = JSON.parse(new TextDecoder().decode((await b.blobs.get(keys.report(b.id)))!)) as BuildReport;
    expect(report.model.trees).toBe(4);
    expect(report.missingGroves).toMatchObject([{ grove: 1, treeStart: 2, treeEnd: 4 }]);
  });

  it("drops a dead letter that is not a grove task, or names a grove its build does not have", async () => {
    const b = await irisBuild();
    const beyond = JSON.stringify({ buildId: b.id, grove: 9 });
    expect((await dlqFor(b)(sqsEvent(["garbage", beyond]), context())).batchItemFailures).toEqual([]);
    expect(b.notifier.published).toEqual([]);
    expect((await b.ledger.summary(b.id))?.failedCount).toBe(0);
  });

  it("fails the grove a dead letter names even when the rest of the message is not valid", async () => {
    const b = await irisBuild({ tolerated_failures: 1 });
    const damaged = JSON.stringify({ ...b.tasks[2], params: { n_estimators: "many" } });
    expect((await dlqFor(b)(sqsEvent([damaged], 3), context())).batchItemFailures).toEqual([]);
    expect((await b.ledger.get(b.id))?.failed).toEqual([{ grove: 2, error: "no error recorded by the trainer; gave up after 3 deliveries" }]);
  });
});

describe("sweeper", () => {
  const MIN = 60_000;
  const sweeperFor = (b: Build, now: () => number, queueBusy = false) =>
    createSweeper({
      ports: async () => ({
        ledger: b.ledger,
        notifier: b.notifier,
        blobs: b.blobs,
        queue: b.queue,
        queueState: async () => ({ busy: queueBusy }),
        openBuilds: async () => [b.id],
      }),
      logger: quiet(),
      clock: { now },
      policy: { stallMs: 45 * MIN, leaseMs: 6 * MIN },
    });

  it("queues the groves of a build whose tasks were lost again, leaves one whose tasks wait in the queue alone", async () => {
    const b = await irisBuild();
    const now = (await b.ledger.summary(b.id))!.updatedAt + 46 * MIN;
    expect(await sweeperFor(b, () => now, true)({}, context())).toMatchObject({ open: 1, failed: [], requeued: [] });
    expect(await sweeperFor(b, () => now)({}, context())).toMatchObject({ open: 1, failed: [], requeued: [b.id] });
    expect(b.queue.drain().map((t) => t.grove)).toEqual([0, 1, 2]);
    expect((await b.ledger.summary(b.id))?.requeues).toBe(1);
    expect(b.notifier.published).toEqual([]);
  });

  it("fires a lost aggregation trigger again, and fails (once) a build whose aggregator keeps dying", async () => {
    const b = await irisBuild();
    await trainerFor(b)(taskEvent(b.tasks), context());
    let now = (await b.ledger.summary(b.id))!.updatedAt + 7 * MIN;
    expect(await sweeperFor(b, () => now)({}, context())).toMatchObject({ redriven: [b.id] });
    for (let claim = 1; claim <= 3; claim++) {
      expect(await b.ledger.claimAggregation(b.id)).toBe(true); // an aggregator starts, then dies
      now = (await b.ledger.summary(b.id))!.claimedAt! + 7 * MIN;
      const swept = await sweeperFor(b, () => now)({}, context());
      if (claim < 3) expect(swept).toMatchObject({ reopened: [b.id], failed: [] });
      else expect(swept).toMatchObject({ reopened: [], failed: [b.id] });
    }
    expect(await sweeperFor(b, () => now)({}, context())).toMatchObject({ failed: [] });
    expect(b.notifier.published).toHaveLength(1);
    expect(b.notifier.published[0].reason).toBe(
      "aggregation did not finish: 3 aggregator run(s) each outlived 360 s (out of time or memory?); every grove is in (3 landed)",
    );
  });

  it("reads its limits from CANOPY_STALL_MINUTES and the aggregator's time limit", () => {
    expect(stallLimitMs({})).toBe(45 * 60_000);
    expect(stallLimitMs({ CANOPY_STALL_MINUTES: "5" })).toBe(5 * 60_000);
    expect(() => stallLimitMs({ CANOPY_STALL_MINUTES: "soon" })).toThrow('CANOPY_STALL_MINUTES must be a number of minutes > 0; got "soon"');
    expect(aggregationLeaseMs({ CANOPY_AGGREGATOR_TIMEOUT_SECONDS: "600" })).toBe(660_000);
  });
});

it("takes the memory size from the context, else Lambda's environment", () => {
  expect(memoryMb({ memoryLimitInMB: "1769" }, {})).toBe(1769);
  expect(memoryMb(undefined, { AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "512" })).toBe(512);
  expect(memoryMb(undefined, {})).toBeUndefined();
});
