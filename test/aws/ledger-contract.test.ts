import { randomBytes } from "node:crypto";
import { keys, LedgerError, newBuildRecord } from "@canopy/core";
import { describeLedgerContract, groveStats } from "@canopy/core/testing";
import { DYNAMO_MAX_GROVES, DynamoLedger } from "@canopy/runtime-aws";
import { describe, expect, it } from "vitest";
import { createBuildsTable, useAwsEmulator } from "./harness.ts";

const aws = useAwsEmulator();

// Concurrency 2, the suite's default. Unpatched moto loses conditional updates on one key under concurrent
// clients (even 2, on a loaded machine); the harness serialises its DynamoDB requests, as DynamoDB is atomic
// per item, and the specifics below also land 12 at once.
describeLedgerContract(
  "DynamoLedger on moto",
  async () => {
    const ledger = new DynamoLedger(aws.current.resources.table, undefined, { pollIntervalMs: 50 });
    return { ledger, cleanup: () => ledger.close() };
  },
  { concurrency: 2 },
);

describe("DynamoLedger specifics", () => {
  const ledger = () => new DynamoLedger(aws.current.resources.table);
  const newId = () => `b-${randomBytes(8).toString("hex")}`;

  it(`refuses builds of more than ${DYNAMO_MAX_GROVES} groves at create, writing nothing`, async () => {
    const record = newBuildRecord({ buildId: newId(), total: DYNAMO_MAX_GROVES + 1, tolerated: 0, now: Date.now() });
    await expect(ledger().create(record)).rejects.toThrow(LedgerError);
    await expect(ledger().create(record)).rejects.toThrow(/at most 2000 \(raise grove_size\)/);
    expect(await ledger().get(record.buildId)).toBeUndefined();
  });

  it(`holds the stats of ${DYNAMO_MAX_GROVES} groves in one item`, async () => {
    const now = Date.now();
    const total = DYNAMO_MAX_GROVES;
    const stats = (g: number) => groveStats(g, {
        queuedAt: now + g,
        landedAt: now + g + 99_999,
        nodes: 123_456,
        bytes: 9_876_543,
        memoryMb: 1769,
        // Every grove names its Lambda container; one in ten landed on a retry.
        worker: "c0ffee12",
        ...(g % 10 === 0 ? { attempt: 3 } : {}),
      });
    const landed = Array.from({ length: total - 1 }, (_, g) => g);
    const record = {
      ...newBuildRecord({ buildId: newId(), total, tolerated: 0, tags: { team: "ml" }, now }),
      status: "TRAINING" as const,
      remaining: 1,
      landed,
      groveStats: Object.fromEntries(landed.map((g) => [g, stats(g)])),
    };
    // A table of its own, without a stream: 300 KB images would slow every stream reader of the shared table.
    const table = `${aws.current.resources.table}-big`;
    await createBuildsTable(table);
    const l = new DynamoLedger(table);
    expect(await l.create(record)).toBe(true);
    expect(await l.landGrove(record.buildId, total - 1, stats(total - 1))).toEqual({ landed: true, remaining: 0 });
    expect(await l.claimAggregation(record.buildId)).toBe(true);
    const metrics = { task: "classification", accuracy: 0.91, f1_macro: 0.9, precision_macro: 0.9, recall_macro: 0.9 };
    expect(await l.complete(record.buildId, { modelKey: keys.model(record.buildId), reportKey: keys.report(record.buildId), metrics })).toBe(true);
    const done = await l.get(record.buildId);
    expect(done?.landed).toHaveLength(total);
    expect(done?.groveStats[total - 1]).toEqual(stats(total - 1));
  });

  it("lets exactly one of 12 simultaneous landings (each grove twice) take remaining to 0", async () => {
    const l = ledger();
    const record = newBuildRecord({ buildId: newId(), total: 6, tolerated: 0, now: Date.now() });
    await l.create(record);
    await l.startTraining(record.buildId);
    const groves = [0, 1, 2, 3, 4, 5, 5, 4, 3, 2, 1, 0];
    const results = await Promise.all(groves.map((g) => l.landGrove(record.buildId, g, groveStats(g))));
    expect(results.filter((r) => r.landed).map((r) => r.remaining).sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect((await l.get(record.buildId))?.landed).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("lets exactly one of two concurrent failures take the build over its tolerance", async () => {
    const l = ledger();
    const record = newBuildRecord({ buildId: newId(), total: 4, tolerated: 1, now: Date.now() });
    await l.create(record);
    await l.startTraining(record.buildId);
    expect((await l.failGrove(record.buildId, 0, "first")).buildFailed).toBe(false);
    const results = await Promise.all([l.failGrove(record.buildId, 1, "a"), l.failGrove(record.buildId, 2, "b")]);
    expect(results.filter((r) => r.buildFailed)).toHaveLength(1);
    expect(results.filter((r) => r.recorded)).toHaveLength(1); // the loser finds the build FAILED
    const after = await l.get(record.buildId);
    expect(after?.status).toBe("FAILED");
    expect(after?.failed).toHaveLength(2);
    expect(after?.reason).toMatch(/^2 of 4 groves failed \(tolerated 1\); grove [12]: [ab]$/);
  });

  it("keeps watching when a listener throws, reporting the error", async () => {
    const errors: unknown[] = [];
    const l = new DynamoLedger(aws.current.resources.table, undefined, { pollIntervalMs: 50, onListenerError: (e) => errors.push(e) });
    const seen: string[] = [];
    l.watch(() => {
      throw new Error("listener bug");
    });
    l.watch((c) => seen.push(c.new.buildId));
    try {
      const ids = [newId(), newId()];
      for (const id of ids) await l.create(newBuildRecord({ buildId: id, total: 1, tolerated: 0, now: Date.now() }));
      const deadline = Date.now() + 20_000;
      while (!ids.every((id) => seen.includes(id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(seen.filter((id) => ids.includes(id))).toEqual(ids);
      expect(errors.length).toBeGreaterThanOrEqual(2);
      expect((errors[0] as Error).message).toBe("listener bug");
    } finally {
      await l.close();
    }
  });
});
