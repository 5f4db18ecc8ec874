import { parseBuildSpec, prepareDataset, submitBuild } from "@canopy/core";
import { createSweeper } from "@canopy/functions";
import { lambdaContext, listOpenBuilds, queueState } from "@canopy/runtime-aws";
import { PurgeQueueCommand } from "@aws-sdk/client-sqs";
import { clients } from "@canopy/runtime-aws";
import { expect, it } from "vitest";
import { receiveNotifications, useAwsEmulator } from "./harness.ts";
import { adapters, digits, provision, quietLogger, SPEC } from "./e2e-support.ts";

useAwsEmulator();

it(
  "the sweeper reads the open-builds index and the grove queue: queued work waits, lost tasks are queued again, and a build that cannot finish fails once",
  { timeout: 60_000 },
  async () => {
    const resources = await provision("-sweep");
    const ports = adapters(resources);
    const prepared = await prepareDataset(digits, { label: "digit" }, ports.blobs);
    // No trainers run: the build sits in TRAINING with every grove queued.
    const stalled = await submitBuild(parseBuildSpec(SPEC), ports, prepared);
    const other = await submitBuild(parseBuildSpec({ ...SPEC, seed: 8 }), ports, prepared);
    await ports.ledger.fail(other.buildId, "cancelled");
    expect(await listOpenBuilds(resources.table)).toEqual([stalled.buildId]);

    const record = (await ports.ledger.summary(stalled.buildId))!;
    let now = record.updatedAt + 10 * 60_000;
    const sweeper = createSweeper({
      ports: async () => ({
        ...ports,
        queueState: () => queueState(resources.queueUrl),
        openBuilds: () => listOpenBuilds(resources.table),
      }),
      logger: quietLogger(),
      clock: { now: () => now },
      policy: { stallMs: 15 * 60_000, leaseMs: 6 * 60_000 },
    });
    const context = lambdaContext("canopy-sweeper", 256, 60_000, "us-east-1");
    expect(await sweeper({}, context)).toMatchObject({ open: 1, failed: [], requeued: [] });
    now += 60 * 60_000;
    // An hour without progress, but its 8 tasks (and the cancelled build's) wait in the queue: not stalled.
    expect(await queueState(resources.queueUrl)).toMatchObject({ busy: true });
    expect(await sweeper({}, context)).toMatchObject({ open: 1, failed: [], requeued: [] });

    // The tasks are lost (a purged queue): the sweeper queues the build's groves again, three times at most.
    for (let round = 1; round <= 3; round++) {
      await clients.sqs().send(new PurgeQueueCommand({ QueueUrl: resources.queueUrl }));
      expect(await queueState(resources.queueUrl)).toEqual({ busy: false, messages: 0 });
      now = (await ports.ledger.summary(stalled.buildId))!.updatedAt + 16 * 60_000;
      expect(await sweeper({}, context)).toMatchObject({ open: 1, failed: [], requeued: [stalled.buildId] });
      expect((await queueState(resources.queueUrl)).messages).toBe(4);
    }
    await clients.sqs().send(new PurgeQueueCommand({ QueueUrl: resources.queueUrl }));
    now = (await ports.ledger.summary(stalled.buildId))!.updatedAt + 16 * 60_000;
    expect(await sweeper({}, context)).toMatchObject({ open: 1, failed: [stalled.buildId] });
    expect(await sweeper({}, context)).toMatchObject({ open: 0, failed: [] });

    const notes = await receiveNotifications(resources.inboxUrl, { count: 2, timeoutMs: 3000 });
    expect(notes).toHaveLength(1);
    expect(notes[0].notification).toMatchObject({ type: "build.failed", buildId: stalled.buildId, status: "FAILED" });
    expect(notes[0].notification.reason).toBe(
      "stalled: no progress for 960 s (limit 900 s) while TRAINING; 0 of 4 groves landed; the grove queue is empty and the outstanding groves were queued again 3 time(s)",
    );
  },
);
