import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LedgerError, newBuildRecord, type LedgerChange } from "@canopy/core";
import { describeLedgerContract, groveStats } from "@canopy/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { DiskLedger } from "../src/disk-ledger.ts";

const roots: string[] = [];
async function tempRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "canopy-ledger-"));
  roots.push(root);
  return root;
}
afterEach(async () => {
  await Promise.all(roots.splice(0).map((r) => rm(r, { recursive: true, force: true })));
});

// The default (fsync on), as the runtime uses it; the contract's concurrency also exercises the per-build mutex.
describeLedgerContract("DiskLedger", async () => {
  const root = await mkdtemp(join(tmpdir(), "canopy-ledger-contract-"));
  return { ledger: new DiskLedger(root), cleanup: () => rm(root, { recursive: true, force: true }) };
}, { concurrency: 8, feedTimeoutMs: 2_000 });

describe("DiskLedger on disk", () => {
  it("is durable: a second ledger on the same root reads every record the first one wrote", async () => {
    const root = await tempRoot();
    const first = new DiskLedger(root, { fsync: false });
    const a = newBuildRecord({ buildId: "b-00000000000000aa", total: 3, tolerated: 1, tags: { run: "1" }, now: 1000 });
    const b = newBuildRecord({ buildId: "b-00000000000000bb", total: 2, tolerated: 0, now: 2000 });
    await first.create(a);
    await first.create(b);
    await first.startTraining(a.buildId);
    await first.landGrove(a.buildId, 2, groveStats(2));
    await first.failGrove(a.buildId, 0, "out of memory");

    const second = new DiskLedger(root, { fsync: false });
    const record = await second.get(a.buildId);
    expect(record).toEqual(await first.get(a.buildId));
    expect(record).toMatchObject({ status: "TRAINING", remaining: 1, landed: [2], failed: [{ grove: 0, error: "out of memory" }] });
    expect(record?.groveStats[2]).toEqual(groveStats(2));
    expect(record).not.toHaveProperty("reason");
    expect((await second.list()).map((r) => r.buildId)).toEqual([a.buildId, b.buildId]);
    // The second process carries on where the first stopped.
    expect(await second.landGrove(a.buildId, 1, groveStats(1))).toEqual({ landed: true, remaining: 0 });
    expect(await second.claimAggregation(a.buildId)).toBe(true);
    expect((await first.get(a.buildId))?.status).toBe("AGGREGATING");
  });

  it("keeps one JSON file per build and leaves no temp files after many concurrent updates", async () => {
    const root = await tempRoot();
    const ledger = new DiskLedger(root, { fsync: false });
    const ids = ["b-0000000000000001", "b-0000000000000002"];
    for (const id of ids) {
      await ledger.create(newBuildRecord({ buildId: id, total: 20, tolerated: 0, now: 1 }));
      await ledger.startTraining(id);
    }
    const landings = ids.flatMap((id) => Array.from({ length: 40 }, (_, i) => ledger.landGrove(id, i % 20, groveStats(i % 20))));
    const results = await Promise.all(landings);
    expect(results.filter((r) => r.landed)).toHaveLength(40);
    for (const id of ids) expect((await ledger.get(id))?.landed).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect((await readdir(join(root, "ledger"))).sort()).toEqual(ids.map((id) => `${id}.json`));
  });

  it("feeds changes in write order per build, after the file is written", async () => {
    const root = await tempRoot();
    const ledger = new DiskLedger(root, { fsync: false });
    const reader = new DiskLedger(root, { fsync: false });
    const seen: Promise<[LedgerChange, unknown]>[] = [];
    ledger.watch((change) => seen.push(reader.summary(change.new.buildId).then((onDisk) => [change, onDisk])));
    const id = "b-0000000000000003";
    await ledger.create(newBuildRecord({ buildId: id, total: 3, tolerated: 0, now: 1 }));
    await ledger.startTraining(id);
    await Promise.all([0, 1, 2, 1].map((g) => ledger.landGrove(id, g, groveStats(g))));
    const changes = await Promise.all(seen);
    expect(changes.map(([c]) => c.new.remaining)).toEqual([3, 3, 2, 1, 0]);
    // The listener runs under the build's lock, so the file read right then is that change's record.
    for (const [change, onDisk] of changes) expect(onDisk).toEqual(change.new);
  });

  it("refuses ids that are not build ids, and reports a corrupt file in one line", async () => {
    const root = await tempRoot();
    const ledger = new DiskLedger(root, { fsync: false });
    await expect(ledger.create(newBuildRecord({ buildId: "../escape", total: 1, tolerated: 0, now: 1 }))).rejects.toThrow(LedgerError);
    expect(await ledger.get("../escape")).toBeUndefined();
    await expect(ledger.startTraining("b-zz")).rejects.toMatchObject({ code: "not-found" });
    const id = "b-0000000000000004";
    await ledger.create(newBuildRecord({ buildId: id, total: 1, tolerated: 0, now: 1 }));
    await writeFile(join(root, "ledger", `${id}.json`), "{ half a rec");
    await expect(ledger.get(id)).rejects.toThrow(/^ledger file .* is not valid JSON$/);
  });
});
