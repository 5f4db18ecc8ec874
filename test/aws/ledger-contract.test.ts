import { randomBytes } from "node:crypto";
import { LedgerError, newBuildRecord } from "@canopy/core";
import { describeLedgerContract, groveStats } from "@canopy/core/testing";
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { clients, DYNAMO_MAX_GROVES, DynamoLedger, groveKey, itemSize, listOpenBuilds, TTL_ATTRIBUTE, writeUnits } from "@canopy/runtime-aws";
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
    await expect(ledger().create(record)).rejects.toThrow(/at most 10000 \(raise grove_size\)/);
    expect(await ledger().get(record.buildId)).toBeUndefined();
  });

  it("writes the same few hundred bytes per landing whatever the number of groves landed: O(1) write units", async () => {
    // A table of its own, without a stream, so 400 landings do not slow the shared table's readers.
    const table = `${aws.current.resources.table}-units`;
    await createBuildsTable(table);
    const l = new DynamoLedger(table, undefined, { retentionDays: 30 });
    const total = 400;
    const record = newBuildRecord({ buildId: newId(), total, tolerated: 0, tags: { team: "ml" }, now: Date.now() });
    await l.create(record);
    await l.startTraining(record.buildId);
    const client = clients.dynamodb();
    const raw = async (key: string) => (await client.send(new GetItemCommand({ TableName: table, Key: { buildId: { S: key } }, ConsistentRead: true }))).Item;
    const units: number[] = [];
    const counterSizes: number[] = [];
    for (let g = 0; g < total; g++) {
      const before = await raw(record.buildId);
      // Every grove names its Lambda container; one in ten landed on a retry (the stats the old item grew by).
      expect((await l.landGrove(record.buildId, g, groveStats(g, { memoryMb: 1769, worker: "c0ffee12", ...(g % 10 === 0 ? { attempt: 3 } : {}) }))).landed).toBe(true);
      const after = (await raw(record.buildId))!;
      const entry = (await raw(groveKey(record.buildId, g)))!;
      counterSizes.push(itemSize(after));
      // One transaction: the counter (before/after, the larger) and the new entry, 2 units per started KB each.
      units.push(writeUnits(before, after, { transactional: true }) + writeUnits(undefined, entry, { transactional: true }));
    }
    expect(new Set(units)).toEqual(new Set([4]));
    expect(Math.max(...counterSizes) - Math.min(...counterSizes)).toBeLessThan(16); // numbers grow a digit or two
    const done = (await l.get(record.buildId))!;
    expect(done.landed).toHaveLength(total);
    expect(done.groveStats[total - 1]).toEqual(groveStats(total - 1, { memoryMb: 1769, worker: "c0ffee12" }));
    console.log(`ledger: ${total} landings, counter ${Math.min(...counterSizes)}-${Math.max(...counterSizes)} bytes, ${units[0]} write units each (first and last)`);
  });

  it("lists unfinished builds in the open-builds index, drops them from it when they finish, and dates finished items for TTL", async () => {
    const l = new DynamoLedger(aws.current.resources.table, undefined, { retentionDays: 10 });
    const open = newBuildRecord({ buildId: newId(), total: 2, tolerated: 0, now: Date.now() });
    const done = newBuildRecord({ buildId: newId(), total: 1, tolerated: 0, now: Date.now() });
    for (const r of [open, done]) {
      await l.create(r);
      await l.startTraining(r.buildId);
    }
    await l.landGrove(open.buildId, 0, groveStats(0));
    await l.landGrove(done.buildId, 0, groveStats(0));
    const listed = await listOpenBuilds(aws.current.resources.table);
    expect(listed).toEqual(expect.arrayContaining([open.buildId, done.buildId]));
    expect(listed.some((id) => id.includes("#"))).toBe(false); // entries and aliases are never open builds
    await l.claimAggregation(done.buildId);
    await l.complete(done.buildId, { modelKey: "m", reportKey: "r", metrics: null });
    expect(await listOpenBuilds(aws.current.resources.table)).toContain(open.buildId);
    expect(await listOpenBuilds(aws.current.resources.table)).not.toContain(done.buildId);
    const client = clients.dynamodb();
    const item = async (key: string) =>
      (await client.send(new GetItemCommand({ TableName: aws.current.resources.table, Key: { buildId: { S: key } }, ConsistentRead: true }))).Item!;
    const now = Date.now() / 1000;
    const finished = await item(done.buildId);
    expect(Number(finished[TTL_ATTRIBUTE].N)).toBeGreaterThan(now + 10 * 86_400 - 60);
    expect(Number(finished[TTL_ATTRIBUTE].N)).toBeLessThan(now + 10 * 86_400 + 60);
    expect(finished.open).toBeUndefined();
    expect((await item(open.buildId))[TTL_ATTRIBUTE]).toBeUndefined();
    expect(Number((await item(groveKey(open.buildId, 0)))[TTL_ATTRIBUTE].N)).toBeGreaterThan(now + 10 * 86_400 - 60);
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
