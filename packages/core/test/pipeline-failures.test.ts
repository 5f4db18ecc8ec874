import { describe, expect, it } from "vitest";
import { aggregate } from "../src/aggregate.ts";
import { isRetryable, SpecError } from "../src/errors.ts";
import { keys } from "../src/keys.ts";
import { newBuildRecord } from "../src/ledger.ts";
import type { BuildReport } from "../src/report.ts";
import { parseBuildSpec } from "../src/spec.ts";
import { prepareDataset, readManifest, resumeBuild, submitBuild } from "../src/submit.ts";
import { failGroveTask, trainGrove } from "../src/train-grove.ts";
import { MemoryBlobStore, MemoryLedger } from "../src/testing/index.ts";
import { fixture, memoryPipeline } from "./support.ts";

const iris = fixture("iris");

async function submitted(spec: object) {
  const p = memoryPipeline();
  const prepared = await prepareDataset(iris, {}, p.blobs, p.clock);
  const submission = await submitBuild(parseBuildSpec({ dataset: "iris.csv", ...spec }), p, prepared);
  return { ...p, prepared, submission, id: submission.buildId, tasks: p.queue.drain() };
}

const ports = (p: Awaited<ReturnType<typeof submitted>>) => ({ blobs: p.blobs, ledger: p.ledger, clock: p.clock, notifier: p.notifier });

describe("submitting", () => {
  it("stores a pack once per content and a build once per (data, spec)", async () => {
    const p = await submitted({ n_estimators: 6, grove_size: 2 });
    expect(p.prepared.reused).toBe(false);
    const again = await prepareDataset(iris, {}, p.blobs, p.clock);
    expect(again.reused).toBe(true);
    expect(again.hash).toBe(p.prepared.hash);
    expect(p.blobs.putCount.get(p.prepared.packKey)).toBe(1);

    expect(p.submission.created).toBe(true);
    expect(p.submission.record.status).toBe("TRAINING");
    expect(p.tasks.map((t) => t.grove)).toEqual([0, 1, 2]);
    const resubmitted = await submitBuild(parseBuildSpec({ dataset: "elsewhere/iris.csv", grove_size: 2, n_estimators: 6 }), p, again);
    expect(resubmitted).toMatchObject({ buildId: p.id, created: false });
    expect(p.queue.messages).toHaveLength(0);
    const manifest = await readManifest(p.blobs, p.id);
    expect(manifest).toMatchObject({ buildId: p.id, packHash: p.prepared.hash, packKey: p.prepared.packKey });
    expect(manifest.spec.dataset).toBe("iris.csv");
  });

  it("refuses a spec the data contradicts before writing anything", async () => {
    const p = memoryPipeline();
    const prepared = await prepareDataset(iris, {}, p.blobs, p.clock);
    const spec = parseBuildSpec({ dataset: "iris.csv", task: "regression" });
    await expect(submitBuild(spec, p, prepared)).rejects.toThrow(SpecError);
    expect(p.blobs.keys()).toEqual([prepared.packKey]);
  });
});

describe("training groves", () => {
  it("is deterministic: a retried task writes the same bytes", async () => {
    const p = await submitted({ n_estimators: 4, grove_size: 2, seed: 5 });
    expect((await trainGrove(p.tasks[1], p)).status).toBe("landed");
    // Replay the task in a second world whose ledger has not seen the grove land.
    const replay = { blobs: new MemoryBlobStore(), ledger: new MemoryLedger() };
    await replay.blobs.put(p.prepared.packKey, p.prepared.pack.bytes);
    await replay.blobs.put(keys.spec(p.id), (await p.blobs.get(keys.spec(p.id)))!);
    const record = (await p.ledger.get(p.id))!;
    await replay.ledger.create(newBuildRecord({ buildId: record.buildId, total: record.total, tolerated: record.tolerated, now: record.createdAt }));
    await replay.ledger.startTraining(record.buildId);
    expect((await trainGrove(p.tasks[1], replay)).status).toBe("landed");
    const original = (await p.blobs.get(keys.grove(p.id, 1)))!;
    expect(Buffer.from((await replay.blobs.get(keys.grove(p.id, 1)))!).equals(Buffer.from(original))).toBe(true);
  });

  it("skips tasks of builds that are not TRAINING", async () => {
    const p = await submitted({ n_estimators: 4, grove_size: 2 });
    await p.ledger.fail(p.id, "cancelled");
    expect(await trainGrove(p.tasks[0], p)).toMatchObject({ status: "skipped", reason: "build is FAILED" });
    expect(await p.blobs.exists(keys.grove(p.id, 0))).toBe(false);
  });

  it("skips tasks of unknown builds", async () => {
    const p = await submitted({ n_estimators: 2, grove_size: 1 });
    const orphan = { ...p.tasks[0], buildId: "b-ffffffffffffffff" };
    expect(await trainGrove(orphan, p)).toMatchObject({ status: "skipped", reason: "build b-ffffffffffffffff not found" });
  });
});

describe("failed groves", () => {
  it("completes without a grove that failed within tolerance and reports it missing", async () => {
    const p = await submitted({ n_estimators: 8, grove_size: 2, tolerated_failures: 1 });
    for (const g of [0, 1, 3]) expect((await trainGrove(p.tasks[g], p)).status).toBe("landed");
    expect(p.aggregations).toHaveLength(0);
    expect(await failGroveTask(p.tasks[2], new Error("Task timed out after 900 seconds"), ports(p))).toEqual({ recorded: true, buildFailed: false });
    const [outcome] = await Promise.all(p.aggregations);
    expect(outcome.outcome).toBe("completed");
    const report = JSON.parse(new TextDecoder().decode((await p.blobs.get(keys.report(p.id)))!)) as BuildReport;
    expect(report.model.trees).toBe(6);
    expect(report.missingGroves).toEqual([{ grove: 2, treeStart: 4, treeEnd: 6, error: "Task timed out after 900 seconds" }]);
    expect(p.notifier.published).toHaveLength(1);
    expect(p.notifier.published[0]).toMatchObject({ type: "build.completed", failedGroves: [{ grove: 2 }] });
  });

  it("fails the build once over tolerance, notifies once, and stops further work", async () => {
    const p = await submitted({ n_estimators: 6, grove_size: 2 });
    await trainGrove(p.tasks[0], p);
    const boom = new Error("out of memory");
    expect(await failGroveTask(p.tasks[1], boom, ports(p))).toEqual({ recorded: true, buildFailed: true });
    expect(await failGroveTask(p.tasks[2], boom, ports(p))).toEqual({ recorded: false, buildFailed: false });
    expect(p.notifier.published).toHaveLength(1);
    expect(p.notifier.published[0]).toMatchObject({
      type: "build.failed",
      status: "FAILED",
      failedGroves: [{ grove: 1, error: "out of memory" }],
    });
    expect(p.notifier.published[0].reason).toMatch(/1 of 3 groves failed/);
    expect((await trainGrove(p.tasks[2], p)).status).toBe("skipped");
    expect(await aggregate(p.id, ports(p))).toEqual({ outcome: "not-claimed", buildId: p.id });
    expect(p.aggregations).toHaveLength(0);
  });

  it("fails the build with one notification when aggregation breaks after the claim", async () => {
    const p = await submitted({ n_estimators: 4, grove_size: 2 });
    await trainGrove(p.tasks[0], p);
    p.blobs.blobs.delete(keys.grove(p.id, 0)); // lost before aggregation
    await trainGrove(p.tasks[1], p);
    const [outcome] = await Promise.all(p.aggregations);
    expect(outcome).toMatchObject({ outcome: "failed" });
    const record = await p.ledger.get(p.id);
    expect(record?.status).toBe("FAILED");
    expect(record?.reason).toBe(`aggregation failed: AggregationError: grove 0 landed but ${keys.grove(p.id, 0)} is missing`);
    expect(p.notifier.published).toEqual([
      { v: 1, type: "build.failed", buildId: p.id, status: "FAILED", tags: {}, reason: record?.reason },
    ]);
    expect(await p.blobs.exists(keys.model(p.id))).toBe(false);
  });
});

describe("an aggregator that lost its claim", () => {
  /** A build whose last grove lands with putStream (the model's write) taking `during` first, once. */
  async function landWith(during: (p: Awaited<ReturnType<typeof submitted>>) => Promise<void>) {
    const p = await submitted({ n_estimators: 4, grove_size: 2, seed: 3 });
    const putStream = p.blobs.putStream.bind(p.blobs);
    let first = true;
    p.blobs.putStream = async (key, chunks, type) => {
      if (first && key === keys.model(p.id)) {
        first = false;
        await during(p);
      }
      return putStream(key, chunks, type);
    };
    for (const t of p.tasks) await trainGrove(t, p);
    // A reopen triggers another aggregation, which may be pushed while the first runs.
    for (let i = 0; i < p.aggregations.length; i++) await p.aggregations[i];
    return { p, outcomes: await Promise.all(p.aggregations) };
  }

  async function uninterruptedModel() {
    const q = await submitted({ n_estimators: 4, grove_size: 2, seed: 3 });
    for (const t of q.tasks) await trainGrove(t, q);
    await Promise.all(q.aggregations);
    return Buffer.from((await q.blobs.get(keys.model(q.id)))!);
  }

  it("reopened as dead while it wrote the model: it steps aside, the next aggregation completes the build", async () => {
    const { p, outcomes } = await landWith(async (p) => void (await p.ledger.reopenAggregation(p.id)));
    expect(outcomes.map((o) => o.outcome).sort()).toEqual(["completed", "not-claimed"]);
    expect((await p.ledger.summary(p.id))?.status).toBe("COMPLETED");
    expect(p.notifier.published.map((n) => n.type)).toEqual(["build.completed"]);
    expect(Buffer.from((await p.blobs.get(keys.model(p.id)))!).equals(await uninterruptedModel())).toBe(true);
  });

  it("breaking after another aggregation took the claim: the build is not failed for it", async () => {
    const { p, outcomes } = await landWith(async (p) => {
      await p.ledger.reopenAggregation(p.id);
      // The next aggregator claims it (the reopen's trigger), then this one's store write breaks.
      while (((await p.ledger.summary(p.id))?.claims ?? 0) < 2) await new Promise((r) => setTimeout(r, 1));
      throw new Error("the store timed out");
    });
    expect(outcomes.map((o) => o.outcome).sort()).toEqual(["completed", "not-claimed"]);
    const record = await p.ledger.get(p.id);
    expect(record?.status).toBe("COMPLETED");
    expect(record?.reason).toBeUndefined();
    expect(p.notifier.published.map((n) => n.type)).toEqual(["build.completed"]);
  });
});

describe("resumeBuild", () => {
  it("re-queues only the groves that have not landed", async () => {
    const p = await submitted({ n_estimators: 8, grove_size: 2 });
    await trainGrove(p.tasks[1], p);
    await trainGrove(p.tasks[2], p);
    // The process died; the other two tasks were lost with it.
    const resumed = await resumeBuild(p.id, p);
    expect(resumed).toEqual({ buildId: p.id, status: "TRAINING", requeued: [0, 3], redriven: false, aggregating: false });
    expect((await p.ledger.summary(p.id))?.requeues).toBe(1);
    const again = p.queue.drain();
    expect(again.map((t) => [t.grove, t.treeStart, t.treeEnd])).toEqual([[0, 0, 2], [3, 6, 8]]);
    for (const task of again) await trainGrove(task, p);
    const [outcome] = await Promise.all(p.aggregations);
    expect(outcome.outcome).toBe("completed");
    expect(await resumeBuild(p.id, p)).toEqual({ buildId: p.id, status: "COMPLETED", requeued: [], redriven: false, aggregating: false });
  });
});

describe("evaluation edge cases", () => {
  it("builds without a test split and reports no metrics", async () => {
    const p = await submitted({ n_estimators: 2, grove_size: 1, test_fraction: 0 });
    for (const t of p.tasks) await trainGrove(t, p);
    const [outcome] = await Promise.all(p.aggregations);
    expect(outcome.outcome).toBe("completed");
    if (outcome.outcome !== "completed") return;
    expect(outcome.report.metrics).toBeNull();
    expect(outcome.report.dataset.trainRows).toBe(150);
    expect(p.notifier.published[0].metrics).toBeNull();
  });

  it("evaluates a regression build", async () => {
    const p = memoryPipeline();
    const prepared = await prepareDataset(fixture("diabetes"), {}, p.blobs, p.clock);
    const { buildId } = await submitBuild(parseBuildSpec({ dataset: "diabetes.csv", n_estimators: 6, grove_size: 3, max_depth: 6 }), p, prepared);
    for (const t of p.queue.drain()) await trainGrove(t, p);
    const [outcome] = await Promise.all(p.aggregations);
    expect(outcome).toMatchObject({ outcome: "completed", buildId });
    const metrics = p.notifier.published[0].metrics!;
    expect(metrics.task).toBe("regression");
    expect(metrics.r2).toBeGreaterThan(0.2);
    expect(metrics.mse).toBeGreaterThan(0);
  });
});

describe("isRetryable", () => {
  it("gives up at once on input errors and retries the rest", () => {
    expect(isRetryable(new SpecError([{ path: "x", message: "bad" }]))).toBe(false);
    expect(isRetryable(new Error("socket hang up"))).toBe(true);
  });
});
