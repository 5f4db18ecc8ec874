import { describe, expect, it } from "vitest";
import { AGGREGATION_TRIGGER_FILTER, isAggregationTrigger, ledgerRules, newBuildRecord, type BuildRecord } from "../src/ledger.ts";
import { describeLedgerContract, groveStats, MemoryLedger } from "../src/testing/index.ts";

describeLedgerContract("MemoryLedger", async () => ({ ledger: new MemoryLedger() }));
// The in-process ledger has no emulator limits: hammer it harder too.
describeLedgerContract("MemoryLedger, concurrency 8", async () => ({ ledger: new MemoryLedger() }), { concurrency: 8 });

const record = (patch: Partial<BuildRecord> = {}): BuildRecord => ({
  ...newBuildRecord({ buildId: "b-0000000000000001", total: 3, tolerated: 0, now: 0 }),
  status: "TRAINING",
  ...patch,
});

describe("isAggregationTrigger", () => {
  it("fires on the change that brings remaining to 0 while TRAINING, and on a re-trigger or a reopened claim", () => {
    expect(isAggregationTrigger({ old: record({ remaining: 1 }), new: record({ remaining: 0 }) })).toBe(true);
    expect(isAggregationTrigger({ old: record({ remaining: 0 }), new: record({ remaining: 0 }) })).toBe(false);
    expect(isAggregationTrigger({ old: record({ remaining: 2 }), new: record({ remaining: 1 }) })).toBe(false);
    expect(isAggregationTrigger({ old: record({ remaining: 1 }), new: record({ remaining: 0, status: "FAILED" }) })).toBe(false);
    expect(isAggregationTrigger({ old: record({ remaining: 0 }), new: record({ remaining: 0, status: "AGGREGATING" }) })).toBe(false);
    // redriveAggregation: the same state, one more redrive.
    expect(isAggregationTrigger({ old: record({ remaining: 0 }), new: record({ remaining: 0, redrives: 1 }) })).toBe(true);
    // reopenAggregation: AGGREGATING -> TRAINING.
    expect(isAggregationTrigger({ old: record({ remaining: 0, status: "AGGREGATING" }), new: record({ remaining: 0, redrives: 1 }) })).toBe(true);
    // A change feed that starts at a build already complete-but-unclaimed counts as a trigger (no old image).
    expect(isAggregationTrigger({ new: record({ remaining: 0 }) })).toBe(true);
  });

  it("matches the DynamoDB stream filter's fields", () => {
    expect(AGGREGATION_TRIGGER_FILTER).toEqual({
      eventName: ["MODIFY"],
      dynamodb: { NewImage: { remaining: { N: ["0"] }, status: { S: ["TRAINING"] } } },
    });
  });
});

describe("ledgerRules", () => {
  it("never mutates the record it decides on", () => {
    const r = record();
    const frozen = structuredClone(r);
    ledgerRules.landGrove(r, undefined, 1, groveStats(1), 5);
    ledgerRules.failGrove(r, undefined, 2, "x", 5);
    ledgerRules.claimAggregation(r, 5);
    ledgerRules.redriveAggregation(r, 5);
    ledgerRules.recordRequeue(r, 5);
    ledgerRules.fail(r, "y", 5);
    expect(r).toEqual(frozen);
  });

  it("says why the build failed when a grove failure exceeds the tolerance", () => {
    const decision = ledgerRules.failGrove(record({ tolerated: 0 }), undefined, 2, "worker crashed", 9);
    expect(decision.next?.status).toBe("FAILED");
    expect(decision.next?.reason).toBe("1 of 3 groves failed (tolerated 0); grove 2: worker crashed");
    expect(decision.next?.updatedAt).toBe(9);
    expect(decision.settle).toEqual({ grove: 2, outcome: "failed", error: "worker crashed" });
  });

  it("writes nothing for a grove that already has an entry, landed or failed", () => {
    const landed = { grove: 1, outcome: "landed" as const, stats: groveStats(1) };
    expect(ledgerRules.landGrove(record(), landed, 1, groveStats(1), 5)).toEqual({ result: { landed: false, remaining: 3 } });
    expect(ledgerRules.failGrove(record(), landed, 1, "x", 5)).toEqual({ result: { recorded: false, remaining: 3, buildFailed: false } });
    const land = ledgerRules.landGrove(record(), undefined, 1, groveStats(1), 5);
    expect(land.settle).toEqual(landed);
    expect(land.next).toMatchObject({ remaining: 2, landedCount: 1, treesLanded: 5, lastSettled: landed, lastLandedAt: 5 });
  });
});

describe("MemoryLedger", () => {
  it("keeps writing when a listener throws, and reports the error", async () => {
    const errors: unknown[] = [];
    const ledger = new MemoryLedger({ onListenerError: (e) => errors.push(e) });
    ledger.watch(() => {
      throw new Error("listener bug");
    });
    const r = newBuildRecord({ buildId: "b-0000000000000002", total: 1, tolerated: 0, now: 0 });
    expect(await ledger.create(r)).toBe(true);
    expect(await ledger.startTraining(r.buildId)).toBe(true);
    expect(errors).toHaveLength(2);
  });

  it("hands out copies: callers cannot change stored records", async () => {
    const ledger = new MemoryLedger({ clock: { now: () => 42 } });
    const r = newBuildRecord({ buildId: "b-0000000000000003", total: 2, tolerated: 0, now: 0 });
    await ledger.create(r);
    r.landed.push(1);
    r.landedCount = 9;
    const got = await ledger.get(r.buildId);
    got!.tags.evil = "yes";
    expect(await ledger.get(r.buildId)).toEqual(newBuildRecord({ buildId: r.buildId, total: 2, tolerated: 0, now: 0 }));
    await ledger.startTraining(r.buildId);
    expect((await ledger.get(r.buildId))?.updatedAt).toBe(42);
  });
});

describe("claimIsDead: when a resume takes an aggregation claim for dead", () => {
  const claimed = (claimedAt: number) => ({ ...newBuildRecord({ buildId: "b-0000000000000000", total: 2, tolerated: 0, now: 0 }), status: "AGGREGATING" as const, claims: 1, claimedAt, updatedAt: claimedAt });
  it("with ownedSince (a store this process owns), a claim made before it is dead, one made since alive however young", async () => {
    const { claimIsDead } = await import("../src/submit.ts");
    expect(claimIsDead(claimed(999), 1_000, { ownedSince: 1_000 })).toBe(true);
    expect(claimIsDead(claimed(1_000), 1_000, { ownedSince: 1_000 })).toBe(false);
    expect(claimIsDead(claimed(1_001), 10_000_000, { ownedSince: 1_000 })).toBe(false);
  });
  it("with a lease, a claim older than it is dead; with neither, none is", async () => {
    const { claimIsDead } = await import("../src/submit.ts");
    expect(claimIsDead(claimed(1_000), 61_000, { aggregationLeaseMs: 60_000 })).toBe(true);
    expect(claimIsDead(claimed(1_000), 60_999, { aggregationLeaseMs: 60_000 })).toBe(false);
    expect(claimIsDead(claimed(1_000), 1_000, { aggregationLeaseMs: 0 })).toBe(true);
    expect(claimIsDead(claimed(0), Number.MAX_SAFE_INTEGER, {})).toBe(false);
  });
});
