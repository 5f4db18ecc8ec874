import { describe, expect, it } from "vitest";
import { newBuildRecord, type BuildRecord } from "../src/ledger.ts";
import { isStalled, lastProgressAt, sweepStalledBuilds } from "../src/sweep.ts";
import { MemoryLedger, MemoryNotifier } from "../src/testing/index.ts";

const stats = { trees: 1, nodes: 1, bytes: 1, queuedAt: 0, startedAt: 0, loadedAt: 0, trainedAt: 0, storedAt: 0, landedAt: 0, packCached: false };

describe("stalled builds", () => {
  const base: BuildRecord = { ...newBuildRecord({ buildId: "b-0000000000000001", total: 3, tolerated: 0, now: 1000 }), status: "TRAINING" };

  it("measures from the last landing, else creation, and never calls a terminal build stalled", () => {
    expect(lastProgressAt(base)).toBe(1000);
    expect(isStalled(base, 61_000, 60_000)).toBe(false);
    expect(isStalled(base, 61_001, 60_000)).toBe(true);
    const landed = { ...base, lastLandedAt: 50_000, updatedAt: 50_000 };
    expect(isStalled(landed, 61_001, 60_000)).toBe(false);
    expect(isStalled({ ...base, status: "FAILED" }, 1e9, 60_000)).toBe(false);
    expect(isStalled({ ...base, status: "COMPLETED" }, 1e9, 60_000)).toBe(false);
    // A claim (or a grove given up on) is progress too: the aggregator gets its own full limit.
    expect(isStalled({ ...landed, status: "AGGREGATING", updatedAt: 100_000 }, 150_000, 60_000)).toBe(false);
  });

  it("fails only the stalled builds, once each, with one notification naming the stall", async () => {
    let now = 1_000;
    const clock = { now: () => now };
    const ledger = new MemoryLedger({ clock });
    const notifier = new MemoryNotifier();
    const stuck = newBuildRecord({ buildId: "b-00000000000000aa", total: 2, tolerated: 0, now, tags: { team: "x" } });
    const busy = newBuildRecord({ buildId: "b-00000000000000bb", total: 2, tolerated: 0, now });
    for (const r of [stuck, busy]) {
      await ledger.create(r);
      await ledger.startTraining(r.buildId);
    }
    await ledger.landGrove(stuck.buildId, 0, stats);
    now = 50_000;
    await ledger.landGrove(busy.buildId, 0, stats);
    now = 70_000;
    const listing = [(await ledger.get(stuck.buildId))!, (await ledger.get(busy.buildId))!];

    expect(await sweepStalledBuilds(listing, 60_000, { ledger, notifier, clock })).toEqual([stuck.buildId]);
    expect(await sweepStalledBuilds(listing, 60_000, { ledger, notifier, clock })).toEqual([]);
    expect(notifier.published).toHaveLength(1);
    expect(notifier.published[0]).toMatchObject({ type: "build.failed", buildId: stuck.buildId, status: "FAILED", tags: { team: "x" } });
    expect(notifier.published[0].reason).toBe("stalled: no progress for 69 s (limit 60 s) while TRAINING; 1 of 2 groves landed");
    expect((await ledger.get(busy.buildId))?.status).toBe("TRAINING");
  });

  it("decides on the current record, not a stale listing", async () => {
    let now = 0;
    const clock = { now: () => now };
    const ledger = new MemoryLedger({ clock });
    const record = newBuildRecord({ buildId: "b-00000000000000cc", total: 2, tolerated: 0, now });
    await ledger.create(record);
    await ledger.startTraining(record.buildId);
    const stale = (await ledger.get(record.buildId))!;
    now = 59_000;
    await ledger.landGrove(record.buildId, 1, stats);
    now = 61_000;
    expect(await sweepStalledBuilds([stale], 60_000, { ledger, notifier: new MemoryNotifier(), clock })).toEqual([]);
  });
});
