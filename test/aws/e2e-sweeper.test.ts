import { parseBuildSpec, prepareDataset, submitBuild } from "@canopy/core";
import { createSweeper } from "@canopy/functions";
import { lambdaContext, listOpenBuilds } from "@canopy/runtime-aws";
import { expect, it } from "vitest";
import { receiveNotifications, useAwsEmulator } from "./harness.ts";
import { adapters, digits, provision, quietLogger, SPEC } from "./e2e-support.ts";

useAwsEmulator();

it("the sweeper lists open builds with a Scan and fails the stalled one, notifying once", { timeout: 60_000 }, async () => {
  const resources = await provision("-sweep");
  const ports = adapters(resources);
  const prepared = await prepareDataset(digits, { label: "digit" }, ports.blobs);
  // No trainers run: the build sits in TRAINING with every grove queued.
  const stalled = await submitBuild(parseBuildSpec(SPEC), ports, prepared);
  const other = await submitBuild(parseBuildSpec({ ...SPEC, seed: 8 }), ports, prepared);
  await ports.ledger.fail(other.buildId, "cancelled");
  expect((await listOpenBuilds(resources.table)).map((r) => r.buildId)).toEqual([stalled.buildId]);

  const record = (await ports.ledger.get(stalled.buildId))!;
  let now = record.updatedAt + 10 * 60_000;
  const sweeper = createSweeper({
    ports: async () => ({ ledger: ports.ledger, notifier: ports.notifier, openBuilds: () => listOpenBuilds(resources.table) }),
    logger: quietLogger(),
    clock: { now: () => now },
    limitMs: 15 * 60_000,
  });
  const context = lambdaContext("canopy-sweeper", 256, 60_000, "us-east-1");
  expect(await sweeper({}, context)).toEqual({ open: 1, failed: [] });
  now += 6 * 60_000;
  expect(await sweeper({}, context)).toEqual({ open: 1, failed: [stalled.buildId] });
  expect(await sweeper({}, context)).toEqual({ open: 0, failed: [] });

  const notes = await receiveNotifications(resources.inboxUrl, { count: 2, timeoutMs: 3000 });
  expect(notes).toHaveLength(1);
  expect(notes[0].notification).toMatchObject({ type: "build.failed", buildId: stalled.buildId, status: "FAILED" });
  expect(notes[0].notification.reason).toBe("stalled: no progress for 960 s (limit 900 s) while TRAINING; 0 of 4 groves landed");
});
