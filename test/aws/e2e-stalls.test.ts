/**
 * Issue 11, item 2: the sweeper fails no healthy build. "Stalled" means no progress that could have happened: work
 * queued behind other work waits, an aggregation is judged by its own time limit (a claim's lease), and a failing
 * grove's retries (tasks in the queue) are not a stall, so the build fails with the grove's real error. The real
 * handlers and the real sweeper on moto, the sweeper run every few hundred milliseconds with limits far shorter than
 * the waits, as the deployed defaults once were against a 1,000-tree build.
 */
import { keys, parseBuildSpec, prepareDataset, submitBuild, type BlobStore, type SweepPolicy } from "@canopy/core";
import { createSweeper, type SweepSummary } from "@canopy/functions";
import { canopyEventSources, lambdaContext, listOpenBuilds, queueState, startEmulator, type ProvisionedResources } from "@canopy/runtime-aws";
import { describe, expect, it } from "vitest";
import { receiveNotifications, useAwsEmulator } from "./harness.ts";
import { adapters, digits, handlersOn, provision, quietLogger, referenceModel, SPEC, type Ports } from "./e2e-support.ts";

useAwsEmulator();

const context = lambdaContext("canopy-sweeper", 256, 60_000, "us-east-1");

/** The real sweeper on these resources, run every `everyMs` until stopped; every summary is kept. */
function sweepRepeatedly(resources: ProvisionedResources, ports: Ports, policy: SweepPolicy, everyMs = 300) {
  const sweeper = createSweeper({
    ports: async () => ({ ...ports, queueState: () => queueState(resources.queueUrl), openBuilds: () => listOpenBuilds(resources.table) }),
    logger: quietLogger(),
    policy,
  });
  const summaries: SweepSummary[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      summaries.push(await sweeper({}, context));
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    summaries,
    async stop() {
      running = false;
      await loop;
    },
  };
}

const acted = (summaries: SweepSummary[]) => summaries.flatMap((s) => [...s.failed, ...s.requeued, ...s.reopened, ...s.redriven, ...s.errors.map((e) => e.buildId)]);

describe("the sweeper fails no healthy build", () => {
  it("a small build queued behind a bigger one waits its turn, far past the stall limit, and completes", { timeout: 180_000 }, async () => {
    const resources = await provision("-queued", { visibilityTimeoutSeconds: 30 });
    const ports = adapters(resources);
    const handlers = handlersOn({ trainer: ports, aggregator: ports, deadLetter: ports });
    const emulator = startEmulator({ ...canopyEventSources({ ...resources, handlers, trainerPollers: 1 }), maxConcurrency: 2 });
    // The stall limit is a fraction of how long the small build waits, whatever the machine's speed: the big build's
    // 60 groves go first on one poller.
    const stallMs = 500;
    const sweeps = sweepRepeatedly(resources, ports, { stallMs, leaseMs: 60_000 });
    let waited = 0;
    try {
      const prepared = await prepareDataset(digits, { label: "digit" }, ports.blobs);
      const big = await submitBuild(parseBuildSpec({ ...SPEC, n_estimators: 120, grove_size: 2, seed: 11 }), ports, prepared);
      const small = await submitBuild(parseBuildSpec(SPEC), ports, prepared);
      const notes = await receiveNotifications(resources.inboxUrl, { count: 2, timeoutMs: 150_000 });
      expect(notes.map((n) => [n.notification.buildId, n.notification.type]).sort()).toEqual(
        [
          [big.buildId, "build.completed"],
          [small.buildId, "build.completed"],
        ].sort(),
      );
      const summary = (await ports.ledger.summary(small.buildId))!;
      // How long the small build went without progress while it waited behind the big one: many stall limits.
      waited = (summary.lastLandedAt ?? 0) - summary.createdAt;
      const reference = await referenceModel(SPEC);
      expect(Buffer.from((await ports.blobs.get(keys.model(small.buildId)))!).equals(reference.model)).toBe(true);
    } finally {
      await sweeps.stop();
      await emulator.stop();
    }
    expect(waited).toBeGreaterThan(4 * stallMs);
    expect(sweeps.summaries.length).toBeGreaterThan(5);
    expect(acted(sweeps.summaries)).toEqual([]);
  });

  it("an aggregation longer than the stall limit is not stalled: its claim lives for the aggregator's time limit", { timeout: 120_000 }, async () => {
    const resources = await provision("-slow-aggregation", { visibilityTimeoutSeconds: 30 });
    const ports = adapters(resources);
    // The aggregator reads each grove slowly (twice each: 8 slow reads, about 3 s).
    const slow: BlobStore = {
      get: async (key) => {
        if (key.includes("/groves/")) await new Promise((r) => setTimeout(r, 400));
        return ports.blobs.get(key);
      },
      put: (key, bytes, type) => ports.blobs.put(key, bytes, type),
      putStream: (key, chunks, type) => ports.blobs.putStream!(key, chunks, type),
      exists: (key) => ports.blobs.exists(key),
    };
    const handlers = handlersOn({ trainer: ports, aggregator: { ...ports, blobs: slow }, deadLetter: ports });
    const emulator = startEmulator({ ...canopyEventSources({ ...resources, handlers, trainerPollers: 2 }), maxConcurrency: 2 });
    const sweeps = sweepRepeatedly(resources, ports, { stallMs: 500, leaseMs: 60_000 }, 200);
    let aggregatingIdle = 0;
    let buildId = "";
    try {
      const prepared = await prepareDataset(digits, { label: "digit" }, ports.blobs);
      buildId = (await submitBuild(parseBuildSpec(SPEC), ports, prepared)).buildId;
      for (;;) {
        const s = (await ports.ledger.summary(buildId))!;
        if (s.status === "AGGREGATING") aggregatingIdle = Math.max(aggregatingIdle, Date.now() - s.updatedAt);
        if (s.status === "COMPLETED" || s.status === "FAILED") break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const notes = await receiveNotifications(resources.inboxUrl, { count: 2, timeoutMs: 3000 });
      expect(notes.map((n) => n.notification.type)).toEqual(["build.completed"]);
    } finally {
      await sweeps.stop();
      await emulator.stop();
    }
    expect(aggregatingIdle).toBeGreaterThan(1500); // three stall limits without a write, while aggregating
    expect(acted(sweeps.summaries)).toEqual([]);
    expect((await ports.ledger.summary(buildId))?.claims).toBe(1);
  });

  it("a failing grove's retries are not a stall: the build fails with the grove's own error, once", { timeout: 120_000 }, async () => {
    const resources = await provision("-retrying", { visibilityTimeoutSeconds: 2, maxReceiveCount: 3 });
    const ports = adapters(resources);
    // Sweeping stops at grove 1's last try. The stall limit here (500 ms) is far shorter than the grove's retries, which
    // a deployment refuses (the limit must outlast them): so when SQS hands the task to the dead-letter queue, the
    // build has made no progress for several limits, and a sweep in the moment before the dead-letter consumer's write
    // would see both an idle build and an empty grove queue. What is checked is the retries, not that moment.
    let tries = 0;
    let sweeps: ReturnType<typeof sweepRepeatedly> | undefined;
    const failing: BlobStore = {
      get: (key) => ports.blobs.get(key),
      exists: (key) => ports.blobs.exists(key),
      put: async (key, bytes, type) => {
        if (key.endsWith("/groves/00001.grove")) {
          if (++tries === 3) void sweeps?.stop();
          throw new Error("SlowDown: Please reduce your request rate.");
        }
        await ports.blobs.put(key, bytes, type);
      },
    };
    const handlers = handlersOn({ trainer: { blobs: failing, ledger: ports.ledger }, aggregator: ports, deadLetter: ports });
    const emulator = startEmulator({ ...canopyEventSources({ ...resources, handlers, trainerPollers: 2 }), maxConcurrency: 2 });
    sweeps = sweepRepeatedly(resources, ports, { stallMs: 500, leaseMs: 60_000 }, 200);
    let buildId = "";
    let notes: Awaited<ReturnType<typeof receiveNotifications>> = [];
    try {
      const prepared = await prepareDataset(digits, { label: "digit" }, ports.blobs);
      buildId = (await submitBuild(parseBuildSpec(SPEC), ports, prepared)).buildId;
      notes = await receiveNotifications(resources.inboxUrl, { count: 1, timeoutMs: 60_000 });
      notes.push(...(await receiveNotifications(resources.inboxUrl, { count: 1, timeoutMs: 2000 })));
    } finally {
      await sweeps.stop();
      await emulator.stop();
    }
    expect(notes).toHaveLength(1);
    expect(notes[0].notification).toMatchObject({ type: "build.failed", buildId });
    expect(notes[0].notification.reason).toBe("1 of 4 groves failed (tolerated 0); grove 1: SlowDown: Please reduce your request rate.");
    const summary = (await ports.ledger.summary(buildId))!;
    // Retried for several stall limits without a landing, and never called stalled.
    expect(summary.updatedAt - (summary.lastLandedAt ?? summary.createdAt)).toBeGreaterThan(1500);
    expect(tries).toBe(3);
    // Sweeps ran through the retries (each 200 ms, over two visibility timeouts of 2 s) and none acted.
    expect(sweeps.summaries.length).toBeGreaterThan(10);
    expect(acted(sweeps.summaries)).toEqual([]);
  });
});
