import { isAggregationTrigger, keys, PackCache, type BuildReport } from "@canopy/core";
import { MemoryBlobStore } from "@canopy/core/testing";
import { describe, expect, it } from "vitest";
import { createAggregator } from "../src/aggregator.ts";
import { createDeadLetterConsumer } from "../src/dlq.ts";
import { containerId, memoryMb } from "../src/runtime.ts";
import { createSweeper, stallLimitMs } from "../src/sweeper.ts";
import { createTrainer } from "../src/trainer.ts";
import { context, irisBuild, quiet, sqsEvent, streamRecord, taskEvent } from "./support.ts";

type Build = Awaited<ReturnType<typeof irisBuild>>;
const trainerFor = (b: Build, packs = new PackCache()) =>
  createTrainer({ ports: async () => ({ blobs: b.blobs, ledger: b.ledger }), packs, logger: quiet(), clock: b.clock });
const aggregatorFor = (b: Build) =>
  createAggregator({ ports: async () => ({ blobs: b.blobs, ledger: b.ledger, notifier: b.notifier }), logger: quiet(), clock: b.clock, prices: {} });
const dlqFor = (b: Build) => createDeadLetterConsumer({ ports: async () => ({ blobs: b.blobs, ledger: b.ledger, notifier: b.notifier }), logger: quiet() });
const triggers = (b: Build) => b.changes.filter(isAggregationTrigger).map(streamRecord);

describe("trainer", () => {
  it("trains each record, reports only the failing ones, and keeps the pack across invocations", async () => {
    const b = await irisBuild();
    const packs = new PackCache();
    const trainer = trainerFor(b, packs);
    const bad = { ...b.tasks[2], packHash: "0".repeat(64), packKey: keys.pack("0".repeat(64)) };
    const event = { Records: [...taskEvent([b.tasks[0], b.tasks[0]]).Records, ...taskEvent([bad]).Records, ...sqsEvent(["not json"]).Records] };
    const response = await trainer(event, context(1769));
    expect(response.batchItemFailures.map((f) => f.itemIdentifier)).toEqual([event.Records[2].messageId, event.Records[3].messageId]);

    const record = (await b.ledger.get(b.id))!;
    expect(record.landed).toEqual([0]);
    expect(record.groveStats[0]).toMatchObject({ memoryMb: 1769, packCached: false });
    // The bad task's error is kept for the dead-letter consumer; the build is untouched by it.
    expect(new TextDecoder().decode((await b.blobs.get(keys.groveError(b.id, 2)))!)).toMatch(/^TaskError: dataset pack packs\/0{64}\.pack not found$/);

    // A warm container: the next grove's pack comes from memory.
    expect((await trainer(taskEvent([b.tasks[1]]), context(1769))).batchItemFailures).toEqual([]);
    expect((await b.ledger.get(b.id))!.groveStats[1].packCached).toBe(true);
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
    const bad = { ...b.tasks[1], packHash: "f".repeat(64), packKey: keys.pack("f".repeat(64)) };
    await trainerFor(b)(taskEvent([b.tasks[0], bad]), context());
    const dlq = dlqFor(b);
    const letters = taskEvent([bad], 3);
    expect((await dlq(letters, context())).batchItemFailures).toEqual([]);
    expect((await dlq(letters, context())).batchItemFailures).toEqual([]); // a redelivered dead letter changes nothing
    expect(b.notifier.published).toHaveLength(1);
    const note = b.notifier.published[0];
    expect(note).toMatchObject({ type: "build.failed", buildId: b.id, status: "FAILED" });
    expect(note.failedGroves).toEqual([{ grove: 1, error: `TaskError: dataset pack ${bad.packKey} not found` }]);
    expect(note.reason).toBe(`1 of 3 groves failed (tolerated 0); grove 1: TaskError: dataset pack ${bad.packKey} not found`);
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

  it("drops a dead letter that is not a grove task", async () => {
    const b = await irisBuild();
    expect((await dlqFor(b)(sqsEvent(["garbage"]), context())).batchItemFailures).toEqual([]);
    expect(b.notifier.published).toEqual([]);
  });
});

describe("sweeper", () => {
  it("fails stalled builds through the listing, once", async () => {
    const b = await irisBuild();
    let now = (await b.ledger.get(b.id))!.updatedAt + 31 * 60_000;
    const sweeper = createSweeper({
      ports: async () => ({ ledger: b.ledger, notifier: b.notifier, openBuilds: async () => [(await b.ledger.get(b.id))!] }),
      logger: quiet(),
      clock: { now: () => now },
    });
    expect(await sweeper({}, context())).toEqual({ open: 1, failed: [b.id] });
    now += 60_000;
    expect(await sweeper({}, context())).toEqual({ open: 1, failed: [] });
    expect(b.notifier.published).toHaveLength(1);
    expect(b.notifier.published[0].reason).toMatch(/^stalled: no progress for 1860 s \(limit 1800 s\) while TRAINING; 0 of 3 groves landed$/);
  });

  it("reads its limit from CANOPY_STALL_MINUTES", () => {
    expect(stallLimitMs({})).toBe(30 * 60_000);
    expect(stallLimitMs({ CANOPY_STALL_MINUTES: "5" })).toBe(5 * 60_000);
    expect(() => stallLimitMs({ CANOPY_STALL_MINUTES: "soon" })).toThrow('CANOPY_STALL_MINUTES must be a number of minutes > 0; got "soon"');
  });
});

it("takes the memory size from the context, else Lambda's environment", () => {
  expect(memoryMb({ memoryLimitInMB: "1769" }, {})).toBe(1769);
  expect(memoryMb(undefined, { AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "512" })).toBe(512);
  expect(memoryMb(undefined, {})).toBeUndefined();
});
