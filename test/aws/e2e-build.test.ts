import { keys, type BuildReport } from "@canopy/core";
import { expect, it } from "vitest";
import { useAwsEmulator } from "./harness.ts";
import { adapters, deployedHandlers, referenceModel, runBuild } from "./e2e-support.ts";

const aws = useAwsEmulator({ visibilityTimeoutSeconds: 5 });

it("a digits build through the real adapters, handlers and emulator: the embedded run's model, one COMPLETED notification", { timeout: 120_000 }, async () => {
  const reference = await referenceModel();
  const resources = aws.current.resources;
  const ports = adapters(resources);
  // The handlers find their resources as deployed ones do, through functions/src/resources.ts (CANOPY_* here).
  const run = await runBuild({ resources, handlers: deployedHandlers(), submit: ports });

  expect(run.buildId).toBe(reference.buildId);
  const model = Buffer.from((await ports.blobs.get(keys.model(run.buildId)))!);
  expect(model.equals(reference.model)).toBe(true);

  const { notification, attributes } = run.notification;
  expect(run.extra).toEqual([]);
  expect(notification).toMatchObject({ v: 1, type: "build.completed", buildId: run.buildId, status: "COMPLETED", tags: { suite: "e2e" }, modelKey: keys.model(run.buildId) });
  expect(attributes).toMatchObject({ buildId: run.buildId, status: "COMPLETED", type: "build.completed" });
  expect(notification.metrics?.accuracy).toBeGreaterThan(0.8);
  expect(notification.timings?.trainSumMs).toBeGreaterThan(0);
  expect(notification.cost?.requests).toMatchObject({ lambda: 5, dynamoWrites: 8 });
  // Every grove ran on a 1769 MB "function" (the emulator's context): billed GB-s follow from its timings.
  const report = JSON.parse(new TextDecoder().decode((await ports.blobs.get(keys.report(run.buildId)))!)) as BuildReport;
  expect(report.cost.groves.map((g) => g.memoryMb)).toEqual([1769, 1769, 1769, 1769]);
  for (const g of report.groves) expect(report.cost.groves[g.grove].billedGbS).toBeCloseTo((Math.ceil(g.landedAt - g.startedAt) / 1000) * (1769 / 1024), 12);
  expect(notification.cost?.usd.total).toBeCloseTo(report.cost.usd.total, 15);

  expect(run.record).toMatchObject({ status: "COMPLETED", remaining: 0, landed: [0, 1, 2, 3], failed: [] });
  expect(run.errors).toEqual([]);
  // One trainer invocation per grove, one aggregation: the filter let only the trigger through.
  const byFn = (fn: string) => run.invocations.filter((i) => i.functionName === fn);
  expect(byFn("canopy-trainer").map((i) => i.failed)).toEqual([0, 0, 0, 0]);
  expect(byFn("canopy-aggregator")).toHaveLength(1);
  expect(byFn("canopy-dead-letter")).toHaveLength(0);
  expect(run.stats.streams["canopy-aggregator"].delivered).toBe(1);
  expect(run.stats.streams["canopy-aggregator"].read).toBeGreaterThanOrEqual(1 + 1 + 4 + 2); // create, start, landings, claim, complete

  const lastLanded = Math.max(...report.groves.map((g) => g.landedAt));
  const merge = report.timings.loadGrovesMs + report.timings.mergeMs + report.timings.evaluateMs;
  console.log(
    `e2e: last grove landed -> notification in the inbox ${run.receivedAt - lastLanded} ms ` +
      `(aggregation's load + merge + evaluate ${merge} ms; stream poll 100 ms, SNS -> SQS inbox long poll)`,
  );
});
