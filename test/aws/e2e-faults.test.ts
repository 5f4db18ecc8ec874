import { readFileSync } from "node:fs";
import { CONTENT_TYPES, keys, prepareDataset, readManifest, type BlobStore, type BuildLedger, type GroveTask } from "@canopy/core";
import type { CanopyHandlers, InvocationInfo } from "@canopy/runtime-aws";
import type { SQSEvent } from "aws-lambda";
import { beforeAll, describe, expect, it } from "vitest";
import { useAwsEmulator } from "./harness.ts";
import { adapters, handlersOn, provision, referenceModel, runBuild, SPEC, unitHash } from "./e2e-support.ts";

useAwsEmulator();
/** 6 groves of 2 trees, so faults have groves to land on. */
const spec = { ...SPEC, grove_size: 2 };
let reference: Awaited<ReturnType<typeof referenceModel>>;
beforeAll(async () => {
  reference = await referenceModel(spec);
});

async function expectReferenceModel(blobs: BlobStore, buildId: string) {
  expect(buildId).toBe(reference.buildId);
  expect(Buffer.from((await blobs.get(keys.model(buildId)))!).equals(reference.model)).toBe(true);
}

const byFn = (run: { invocations: InvocationInfo[] }, fn: string) => run.invocations.filter((i) => i.functionName === fn);

describe("faults on moto, each ending in the embedded run's model and exactly one notification", () => {
  it("every grove message delivered twice", { timeout: 120_000 }, async () => {
    // Nothing fails here: a long visibility timeout keeps a slow grove from being redelivered as well.
    const resources = await provision("-twice", { visibilityTimeoutSeconds: 30 });
    const ports = adapters(resources);
    const queue = { send: (tasks: Parameters<typeof ports.queue.send>[0]) => ports.queue.send([...tasks, ...tasks]) };
    const run = await runBuild({ resources, spec, handlers: handlersOn({ trainer: ports, aggregator: ports, deadLetter: ports }), submit: { ...ports, queue } });

    await expectReferenceModel(ports.blobs, run.buildId);
    expect(run.notification.notification).toMatchObject({ type: "build.completed", buildId: run.buildId });
    expect(run.extra).toEqual([]);
    expect(byFn(run, "canopy-trainer")).toHaveLength(12);
    expect(run.record).toMatchObject({ status: "COMPLETED", landed: [0, 1, 2, 3, 4, 5] });
    expect(run.errors).toEqual([]);
  });

  it("the trainer throws in ~30% of invocations: before storing, after storing, after landing (seeded)", { timeout: 120_000 }, async () => {
    const resources = await provision("-throws", { maxReceiveCount: 4 });
    const ports = adapters(resources);
    type Point = "before storing" | "after storing" | "after landing";
    const POINTS: Point[] = ["before storing", "after storing", "after landing"];
    const plan = new Map<number, { attempt: number; point: Point }>(); // grove -> where its current delivery fails
    const injected: { grove: number; attempt: number; point: Point }[] = [];
    const fail = (grove: number, point: Point) => {
      const planned = plan.get(grove);
      if (planned?.point !== point) return;
      plan.delete(grove);
      injected.push({ grove, ...planned });
      throw new Error(`injected fault ${point} (grove ${grove})`);
    };
    const groveOf = (key: string) => Number(/groves\/(\d+)\.grove$/.exec(key)?.[1] ?? -1);
    const blobs: BlobStore = {
      get: (key) => ports.blobs.get(key),
      exists: (key) => ports.blobs.exists(key),
      async put(key, bytes, type) {
        fail(groveOf(key), "before storing");
        await ports.blobs.put(key, bytes, type);
        fail(groveOf(key), "after storing");
      },
    };
    const ledger: BuildLedger = Object.create(ports.ledger, {
      landGrove: {
        value: async (...args: Parameters<BuildLedger["landGrove"]>) => {
          const landed = await ports.ledger.landGrove(...args);
          fail(args[1], "after landing");
          return landed;
        },
      },
    });
    const handlers = handlersOn({ trainer: { blobs, ledger }, aggregator: ports, deadLetter: ports });
    // Decide per (grove, delivery): independent of the order SQS hands messages out; never past the 2nd attempt.
    // Seed 35 gives one fault of each kind among the 9 deliveries 6 groves then take (3 / 9 ~ 30%).
    const trainer: CanopyHandlers["trainer"] = async (event: SQSEvent, context) => {
      for (const record of event.Records) {
        const { grove } = JSON.parse(record.body) as { grove: number };
        const attempt = Number(record.attributes.ApproximateReceiveCount);
        const u = unitHash(35, grove, attempt);
        // A delivery that finds its grove already landed is skipped before any injection point: nothing fires.
        if (attempt < 3 && u < 0.3) plan.set(grove, { attempt, point: POINTS[Math.floor(u / 0.1)] });
        else plan.delete(grove);
      }
      return handlers.trainer(event, context);
    };
    const run = await runBuild({ resources, spec, handlers: { ...handlers, trainer }, submit: ports });

    await expectReferenceModel(ports.blobs, run.buildId);
    expect(run.notification.notification).toMatchObject({ type: "build.completed", buildId: run.buildId });
    expect(run.extra).toEqual([]);
    expect(new Set(injected.map((i) => i.point))).toEqual(new Set(POINTS));
    const trainerRuns = byFn(run, "canopy-trainer");
    expect(trainerRuns.filter((i) => i.failed > 0)).toHaveLength(injected.length);
    expect(run.record.failed).toEqual([]);
    console.log(`e2e faults: ${injected.length} of ${trainerRuns.length} trainer invocations threw (${injected.map((i) => `grove ${i.grove} #${i.attempt} ${i.point}`).join(", ")})`);
  });

  it("every stream record delivered twice", { timeout: 120_000 }, async () => {
    const resources = await provision("-stream-twice", { visibilityTimeoutSeconds: 30 });
    const ports = adapters(resources);
    const run = await runBuild({ resources, spec, handlers: handlersOn({ trainer: ports, aggregator: ports, deadLetter: ports }), submit: ports, streamDeliveries: 2 });

    await expectReferenceModel(ports.blobs, run.buildId);
    expect(run.notification.notification).toMatchObject({ type: "build.completed", buildId: run.buildId });
    expect(run.extra).toEqual([]);
    expect(byFn(run, "canopy-aggregator")).toHaveLength(2);
    expect(run.stats.streams["canopy-aggregator"].delivered).toBe(1);
  });
});

/** A build on moto whose grove tasks `retarget` rewrites before they are queued (the real handlers train them). */
async function runRetargeted(suffix: string, maxReceiveCount: number, retarget: (tasks: GroveTask[], blobs: BlobStore) => Promise<GroveTask[]>) {
  const resources = await provision(suffix, { maxReceiveCount });
  const ports = adapters(resources);
  const handlers = handlersOn({ trainer: ports, aggregator: ports, deadLetter: ports });
  const run = await runBuild({ resources, spec, handlers, submit: ports, tasks: (tasks) => retarget(tasks, ports.blobs) });
  return { run, ports };
}

describe("a poison task", () => {
  it("a grove that keeps failing is retried, then dead-lettered; the build ends FAILED with one notification naming the grove and the error", { timeout: 120_000 }, async () => {
    const resources = await provision("-poison", { maxReceiveCount: 3 });
    const ports = adapters(resources);
    // Grove 1's blob cannot be stored, every time (a fault that looks transient: retried).
    const blobs: BlobStore = {
      get: (key) => ports.blobs.get(key),
      exists: (key) => ports.blobs.exists(key),
      async put(key, bytes, type) {
        if (key.endsWith("/groves/00001.grove")) throw new Error("InternalError: We encountered an internal error. Please try again.");
        await ports.blobs.put(key, bytes, type);
      },
    };
    const run = await runBuild({ resources, spec, handlers: handlersOn({ trainer: { blobs, ledger: ports.ledger }, aggregator: ports, deadLetter: ports }), submit: ports });

    const { notification, attributes } = run.notification;
    expect(run.extra).toEqual([]);
    expect(attributes).toMatchObject({ buildId: run.buildId, status: "FAILED" });
    expect(notification).toMatchObject({ type: "build.failed", buildId: run.buildId, status: "FAILED" });
    expect(notification.failedGroves).toEqual([{ grove: 1, error: "InternalError: We encountered an internal error. Please try again." }]);
    expect(notification.reason).toBe("1 of 6 groves failed (tolerated 0); grove 1: InternalError: We encountered an internal error. Please try again.");

    // Three deliveries to the trainer, then SQS's redrive, then the dead-letter consumer (once).
    expect(byFn(run, "canopy-trainer").filter((i) => i.failed > 0)).toHaveLength(3);
    expect(run.stats.sqs["canopy-dead-letter"]).toMatchObject({ received: 1, deleted: 1, failed: 0 });
    expect(run.record).toMatchObject({ status: "FAILED", landed: [0, 2, 3, 4, 5] });
    expect(await ports.blobs.exists(keys.model(run.buildId))).toBe(false);
    expect(byFn(run, "canopy-aggregator")).toHaveLength(0);
  });

  it("a task that can never succeed (its build's pack is damaged: an input error) is dead-lettered at once, never retried", { timeout: 120_000 }, async () => {
    const resources = await provision("-input-error", { maxReceiveCount: 3 });
    const ports = adapters(resources);
    let damagedKey = "";
    const run = await runBuild({
      resources,
      spec,
      handlers: handlersOn({ trainer: ports, aggregator: ports, deadLetter: ports }, { deadLetterQueueUrl: resources.deadLetterQueueUrl }),
      submit: ports,
      // The pack the manifest names is damaged after the build was submitted (cut short): every grove's training fails.
      tasks: async (tasks) => {
        damagedKey = tasks[0].packKey;
        const pack = (await ports.blobs.get(damagedKey))!;
        await ports.blobs.put(damagedKey, pack.slice(0, Math.floor(pack.length / 2)), CONTENT_TYPES.pack);
        return tasks;
      },
    });

    const { notification } = run.notification;
    expect(run.extra).toEqual([]);
    expect(notification).toMatchObject({ type: "build.failed", buildId: run.buildId, status: "FAILED" });
    const error = `TaskError: dataset pack ${damagedKey} is damaged: dataset pack is truncated`;
    expect(notification.reason).toMatch(new RegExp(`^1 of 6 groves failed \\(tolerated 0\\); grove \\d: ${error.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}`));
    // No delivery was reported as failed (none was retried): each went to the dead-letter queue from the trainer.
    const trainerRuns = byFn(run, "canopy-trainer");
    expect(trainerRuns.filter((i) => i.failed > 0)).toEqual([]);
    expect(trainerRuns.length).toBeLessThanOrEqual(6);
    expect(run.stats.sqs["canopy-trainer"].received).toBe(trainerRuns.length);
    expect(run.stats.sqs["canopy-dead-letter"].received).toBeGreaterThanOrEqual(1);
    expect(run.record.status).toBe("FAILED");
    expect(await ports.blobs.exists(keys.model(run.buildId))).toBe(false);
  });
});

describe("a task whose packKey is not its pack's (issue 9.13)", () => {
  it("is refused before the trainer reads it, naming both keys; the build ends FAILED, the other pack is never trained on", { timeout: 120_000 }, async () => {
    let otherKey = "";
    const { run, ports } = await runRetargeted("-pack-key", 2, async (tasks, blobs) => {
      // Grove 1 keeps digits' packHash but points at another valid pack in the bucket (iris).
      otherKey = (await prepareDataset(readFileSync(new URL("../fixtures/iris.csv", import.meta.url)), {}, blobs)).packKey;
      return tasks.map((t) => (t.grove === 1 ? { ...t, packKey: otherKey } : t));
    });

    const digitsKey = (await readManifest(ports.blobs, run.buildId)).packKey;
    const error = `TaskError: grove task's packKey "${otherKey}" is not the key of its packHash (${digitsKey}); the pack is not read`;
    expect(run.notification.notification).toMatchObject({ type: "build.failed", buildId: run.buildId, failedGroves: [{ grove: 1, error }] });
    expect(run.record).toMatchObject({ status: "FAILED", landed: [0, 2, 3, 4, 5] });
    expect(await ports.blobs.exists(keys.grove(run.buildId, 1))).toBe(false);
  });
});
