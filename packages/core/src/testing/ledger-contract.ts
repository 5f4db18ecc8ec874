import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { LedgerError } from "../errors.ts";
import {
  isAggregationTrigger,
  MAX_ERROR_CHARS,
  newBuildRecord,
  summaryOf,
  type BuildRecord,
  type GroveStats,
  type LedgerChange,
} from "../ledger.ts";
import type { BuildLedger } from "../ports.ts";

export interface LedgerContractOptions {
  /**
   * Most calls in flight at once on one build. 2 by default: moto (the DynamoDB emulator) loses conditional
   * updates under more concurrency on one key, real DynamoDB and the in-process ledgers do not.
   */
  concurrency?: number;
  /** How long to wait for the change feed to deliver (a stream reader polls). Default 20 s. */
  feedTimeoutMs?: number;
}

type Make = () => Promise<{ ledger: BuildLedger; cleanup?: () => Promise<void> }>;

/** Fresh ids per test, so shared tables (DynamoDB) need no cleanup between tests. */
const newId = () => `b-${randomBytes(8).toString("hex")}`;
const newStudyId = () => `s-${randomBytes(8).toString("hex")}`;

export function groveStats(grove: number, overrides: Partial<GroveStats> = {}): GroveStats {
  const t = 1_700_000_000_000 + grove * 1000;
  return {
    trees: 5,
    nodes: 100 + grove,
    bytes: 4096 + grove,
    queuedAt: t,
    startedAt: t + 10,
    loadedAt: t + 20,
    trainedAt: t + 300,
    storedAt: t + 310,
    landedAt: t + 320,
    packCached: grove % 2 === 0,
    digest: grove.toString(16).padStart(64, "0"),
    ...overrides,
  };
}

/** Runs tasks with at most `limit` in flight, returning results in task order. */
async function pool<T>(tasks: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}

async function waitFor(condition: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`change feed: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * The behaviour every BuildLedger must have. Call it at the top level of a test file:
 * `describeLedgerContract("MemoryLedger", async () => ({ ledger: new MemoryLedger() }))`.
 */
export function describeLedgerContract(name: string, make: Make, options: LedgerContractOptions = {}): void {
  const concurrency = options.concurrency ?? 2;
  const feedTimeoutMs = options.feedTimeoutMs ?? 20_000;

  async function withLedger(fn: (ledger: BuildLedger) => Promise<void>): Promise<void> {
    const { ledger, cleanup } = await make();
    try {
      await fn(ledger);
    } finally {
      await cleanup?.();
    }
  }

  async function training(ledger: BuildLedger, total: number, tolerated = 0, tags: Record<string, string> = {}) {
    const record = newBuildRecord({ buildId: newId(), total, tolerated, tags, now: Date.now() });
    expect(await ledger.create(record)).toBe(true);
    expect(await ledger.startTraining(record.buildId)).toBe(true);
    return record.buildId;
  }

  async function landAll(ledger: BuildLedger, id: string, groves: number[]) {
    for (const g of groves) expect((await ledger.landGrove(id, g, groveStats(g))).landed).toBe(true);
  }

  describe(`BuildLedger contract: ${name}`, () => {
    it("creates a record once and reads it back as written", () =>
      withLedger(async (ledger) => {
        const record = newBuildRecord({ buildId: newId(), total: 4, tolerated: 1, tags: { team: "ml", run: "7" }, now: 1234 });
        expect(await ledger.get(record.buildId)).toBeUndefined();
        expect(await ledger.create(record)).toBe(true);
        expect(await ledger.get(record.buildId)).toEqual(record);
        expect(await ledger.create({ ...record, total: 9, remaining: 9 })).toBe(false);
        expect(await ledger.get(record.buildId)).toEqual(record);
      }));

    it("walks PENDING -> TRAINING -> AGGREGATING -> COMPLETED and refuses steps out of order", () =>
      withLedger(async (ledger) => {
        const record = newBuildRecord({ buildId: newId(), total: 2, tolerated: 0, now: Date.now() });
        const id = record.buildId;
        await ledger.create(record);
        expect((await ledger.landGrove(id, 0, groveStats(0))).landed).toBe(false); // not TRAINING yet
        expect(await ledger.claimAggregation(id)).toBe(false);
        expect(await ledger.complete(id, { modelKey: "m", reportKey: "r", metrics: null })).toBe(false);
        expect(await ledger.startTraining(id)).toBe(true);
        expect(await ledger.startTraining(id)).toBe(false);
        expect((await ledger.get(id))?.status).toBe("TRAINING");
        await landAll(ledger, id, [0]);
        expect(await ledger.claimAggregation(id)).toBe(false); // a grove is still out
        expect(await ledger.complete(id, { modelKey: "m", reportKey: "r", metrics: null })).toBe(false);
        await landAll(ledger, id, [1]);
        expect(await ledger.claimAggregation(id)).toBe(true);
        expect((await ledger.get(id))?.status).toBe("AGGREGATING");
        expect(await ledger.startTraining(id)).toBe(false);
        const result = { modelKey: `builds/${id}/model.canopy`, reportKey: `builds/${id}/report.json`, metrics: { task: "classification", accuracy: 0.9 } };
        expect(await ledger.complete(id, result)).toBe(true);
        const done = await ledger.get(id);
        expect(done?.status).toBe("COMPLETED");
        expect(done?.result).toEqual(result);
      }));

    it("counts remaining down as each grove lands once, keeping landed sorted and the stats", () =>
      withLedger(async (ledger) => {
        const id = await training(ledger, 3);
        expect(await ledger.landGrove(id, 2, groveStats(2))).toEqual({ landed: true, remaining: 2 });
        expect(await ledger.landGrove(id, 0, groveStats(0))).toEqual({ landed: true, remaining: 1 });
        const mid = await ledger.get(id);
        expect(mid?.landed).toEqual([0, 2]);
        expect(mid?.remaining).toBe(1);
        expect(typeof mid?.lastLandedAt).toBe("number");
        expect(await ledger.landGrove(id, 1, groveStats(1))).toEqual({ landed: true, remaining: 0 });
        const record = await ledger.get(id);
        expect(record?.landed).toEqual([0, 1, 2]);
        expect(record?.groveStats[1]).toEqual(groveStats(1));
        expect(record?.groveStats[2]).toEqual(groveStats(2));
        expect(record?.status).toBe("TRAINING"); // landing never moves the status; the aggregator claims
      }));

    it("ignores a duplicate landing entirely", () =>
      withLedger(async (ledger) => {
        const id = await training(ledger, 3);
        await landAll(ledger, id, [1]);
        const before = await ledger.get(id);
        expect(await ledger.landGrove(id, 1, groveStats(1, { bytes: 1 }))).toEqual({ landed: false, remaining: 2 });
        expect(await ledger.get(id)).toEqual(before);
      }));

    it("refuses landings once the build has FAILED", () =>
      withLedger(async (ledger) => {
        const id = await training(ledger, 3);
        await landAll(ledger, id, [0]);
        expect(await ledger.fail(id, "operator cancelled")).toBe(true);
        const before = await ledger.get(id);
        expect(before?.status).toBe("FAILED");
        expect(before?.reason).toBe("operator cancelled");
        expect(await ledger.landGrove(id, 1, groveStats(1))).toEqual({ landed: false, remaining: 2 });
        expect(await ledger.get(id)).toEqual(before);
      }));

    it(`lets exactly one of many concurrent landings see remaining reach 0 (concurrency ${concurrency})`, () =>
      withLedger(async (ledger) => {
        const total = 6;
        const id = await training(ledger, total);
        // Every grove twice (a redelivered message), interleaved.
        const order = [3, 0, 5, 3, 1, 4, 0, 2, 5, 1, 2, 4];
        const results = await pool(order.map((g) => () => ledger.landGrove(id, g, groveStats(g))), concurrency);
        expect(results.filter((r) => r.landed)).toHaveLength(total);
        expect(results.filter((r) => r.landed && r.remaining === 0)).toHaveLength(1);
        const remainders = results.filter((r) => r.landed).map((r) => r.remaining).sort();
        expect(remainders).toEqual([0, 1, 2, 3, 4, 5]);
        const record = await ledger.get(id);
        expect(record?.remaining).toBe(0);
        expect(record?.landed).toEqual([0, 1, 2, 3, 4, 5]);
      }));

    it("grants the aggregation claim to one caller, and a repeated trigger does nothing", () =>
      withLedger(async (ledger) => {
        const id = await training(ledger, 2);
        await landAll(ledger, id, [0, 1]);
        const claims = await Promise.all([ledger.claimAggregation(id), ledger.claimAggregation(id)]);
        expect(claims.filter(Boolean)).toHaveLength(1);
        const after = await ledger.get(id);
        expect(after?.status).toBe("AGGREGATING");
        expect(await ledger.claimAggregation(id)).toBe(false);
        expect(await ledger.get(id)).toEqual(after);
      }));

    it("reopens only an aggregating build, which can then be claimed again", () =>
      withLedger(async (ledger) => {
        const id = await training(ledger, 2);
        expect(await ledger.reopenAggregation(id)).toBe(false); // still TRAINING
        await landAll(ledger, id, [0, 1]);
        expect(await ledger.claimAggregation(id)).toBe(true);
        expect(await ledger.reopenAggregation(id)).toBe(true);
        const reopened = await ledger.get(id);
        expect(reopened).toMatchObject({ status: "TRAINING", remaining: 0, landed: [0, 1] });
        expect(await ledger.reopenAggregation(id)).toBe(false);
        expect(await ledger.claimAggregation(id)).toBe(true);
        expect(await ledger.complete(id, { modelKey: "m", reportKey: "r", metrics: null })).toBe(true);
        expect(await ledger.reopenAggregation(id)).toBe(false); // COMPLETED is final
        expect((await ledger.get(id))?.status).toBe("COMPLETED");
      }));

    it("tolerates failed groves up to the limit and still lets the build aggregate", () =>
      withLedger(async (ledger) => {
        const id = await training(ledger, 3, 1);
        expect(await ledger.failGrove(id, 1, "out of memory")).toEqual({ recorded: true, remaining: 2, buildFailed: false });
        const before = await ledger.get(id);
        expect(before?.status).toBe("TRAINING");
        expect(before?.failed).toEqual([{ grove: 1, error: "out of memory" }]);
        // The same grove again, failing or landing late, changes nothing.
        expect(await ledger.failGrove(id, 1, "again")).toEqual({ recorded: false, remaining: 2, buildFailed: false });
        expect((await ledger.landGrove(id, 1, groveStats(1))).landed).toBe(false);
        expect(await ledger.get(id)).toEqual(before);
        await landAll(ledger, id, [0, 2]);
        expect((await ledger.failGrove(id, 0, "late")).recorded).toBe(false); // already landed
        expect(await ledger.claimAggregation(id)).toBe(true);
      }));

    it("fails the build in the same write as the failure that exceeds the tolerance", () =>
      withLedger(async (ledger) => {
        const id = await training(ledger, 4, 1);
        await landAll(ledger, id, [0]);
        expect((await ledger.failGrove(id, 2, "timeout")).buildFailed).toBe(false);
        expect(await ledger.failGrove(id, 3, "disk full")).toEqual({ recorded: true, remaining: 1, buildFailed: true });
        const record = await ledger.get(id);
        expect(record?.status).toBe("FAILED");
        expect(record?.reason).toMatch(/disk full/);
        expect(record?.failed.map((f) => f.grove)).toEqual([2, 3]);
        expect(await ledger.failGrove(id, 1, "x")).toEqual({ recorded: false, remaining: 1, buildFailed: false });
        expect(await ledger.claimAggregation(id)).toBe(false);
      }));

    it("treats COMPLETED and FAILED as terminal", () =>
      withLedger(async (ledger) => {
        const done = await training(ledger, 1);
        await landAll(ledger, done, [0]);
        await ledger.claimAggregation(done);
        await ledger.complete(done, { modelKey: "m", reportKey: "r", metrics: null });
        const completed = await ledger.get(done);
        expect(await ledger.fail(done, "too late")).toBe(false);
        expect(await ledger.complete(done, { modelKey: "x", reportKey: "y", metrics: null })).toBe(false);
        expect(await ledger.get(done)).toEqual(completed);

        const pending = newBuildRecord({ buildId: newId(), total: 2, tolerated: 0, now: Date.now() });
        await ledger.create(pending);
        expect(await ledger.fail(pending.buildId, "bad data")).toBe(true);
        const failed = await ledger.get(pending.buildId);
        expect(await ledger.fail(pending.buildId, "again")).toBe(false);
        expect(await ledger.startTraining(pending.buildId)).toBe(false);
        expect(await ledger.claimAggregation(pending.buildId)).toBe(false);
        expect(await ledger.get(pending.buildId)).toEqual(failed);
        expect(failed?.reason).toBe("bad data");
      }));

    it("rejects updates to unknown builds and out-of-range groves with LedgerError", () =>
      withLedger(async (ledger) => {
        const ghost = newId();
        await expect(ledger.startTraining(ghost)).rejects.toThrow(LedgerError);
        await expect(ledger.landGrove(ghost, 0, groveStats(0))).rejects.toMatchObject({ code: "not-found" });
        await expect(ledger.failGrove(ghost, 0, "x")).rejects.toMatchObject({ code: "not-found" });
        await expect(ledger.claimAggregation(ghost)).rejects.toMatchObject({ code: "not-found" });
        await expect(ledger.fail(ghost, "x")).rejects.toMatchObject({ code: "not-found" });
        const id = await training(ledger, 2);
        const before = await ledger.get(id);
        await expect(ledger.landGrove(id, 2, groveStats(2))).rejects.toThrow(LedgerError);
        await expect(ledger.failGrove(id, -1, "x")).rejects.toThrow(LedgerError);
        expect(await ledger.get(id)).toEqual(before);
      }));

    it("emits exactly one aggregation trigger per build through the change feed, duplicates or not", () =>
      withLedger(async (ledger) => {
        const changes: LedgerChange[] = [];
        const stop = ledger.watch((change) => changes.push(change));
        try {
          const record = newBuildRecord({ buildId: newId(), total: 4, tolerated: 1, now: Date.now() });
          const id = record.buildId;
          await ledger.create(record);
          await ledger.create(record);
          await ledger.startTraining(id);
          await pool(
            [0, 2, 0, 3, 2, 3].map((g) => () => ledger.landGrove(id, g, groveStats(g))),
            concurrency,
          );
          // The last outstanding grove fails within tolerance: that also completes the count.
          await ledger.failGrove(id, 1, "spot instance reclaimed");
          await ledger.landGrove(id, 2, groveStats(2));
          expect(await ledger.claimAggregation(id)).toBe(true);
          // Feeds are ordered per build: once the claim is seen, every earlier change has been delivered.
          const mine = () => changes.filter((c) => c.new.buildId === id);
          await waitFor(() => mine().some((c) => c.new.status === "AGGREGATING"), "the claim", feedTimeoutMs);
          expect(mine().filter(isAggregationTrigger)).toHaveLength(1);
          expect(mine().filter((c) => c.old === undefined)).toHaveLength(1); // one create
          const trigger = mine().find(isAggregationTrigger);
          expect(trigger?.old?.remaining).toBe(1);
          expect(trigger?.new.lastSettled).toEqual({ grove: 1, outcome: "failed", error: "spot instance reclaimed" });
          expect(trigger?.new).toMatchObject({ landedCount: 3, failedCount: 1, treesLanded: 15 });
          // Writes only: startTraining + 3 landings + 1 failure + claim, after the create.
          expect(mine().map((c) => c.new.status)).toEqual([
            "PENDING",
            "TRAINING",
            "TRAINING",
            "TRAINING",
            "TRAINING",
            "TRAINING",
            "AGGREGATING",
          ]);
        } finally {
          stop();
        }
      }));

    it("refuses to create a record that does not start empty, writing nothing", () =>
      withLedger(async (ledger) => {
        const fresh = newBuildRecord({ buildId: newId(), total: 3, tolerated: 0, now: Date.now() });
        for (const bad of [
          { ...fresh, landed: [0], landedCount: 1, remaining: 2, groveStats: { 0: groveStats(0) } },
          { ...fresh, remaining: 2 },
          { ...fresh, status: "COMPLETED" as const },
          { ...fresh, tolerated: 3 },
        ]) await expect(ledger.create(bad)).rejects.toThrow(LedgerError);
        expect(await ledger.get(fresh.buildId)).toBeUndefined();
      }));

    it("keeps the counter apart from the groves: summary() is get() without them, grove() is one entry, the counts agree", () =>
      withLedger(async (ledger) => {
        const id = await training(ledger, 4, 1, { team: "ml" });
        await landAll(ledger, id, [3, 0]);
        await ledger.failGrove(id, 2, "out of memory");
        const record = (await ledger.get(id))!;
        const summary = await ledger.summary(id);
        expect(summary).toEqual(summaryOf(record));
        expect(summary).not.toHaveProperty("landed");
        expect(summary).not.toHaveProperty("groveStats");
        expect(summary).toMatchObject({ landedCount: 2, failedCount: 1, treesLanded: 10, remaining: 1, tags: { team: "ml" } });
        expect(summary?.lastSettled).toEqual({ grove: 2, outcome: "failed", error: "out of memory" });
        expect(await ledger.grove(id, 3)).toEqual({ grove: 3, outcome: "landed", stats: groveStats(3) });
        expect(await ledger.grove(id, 2)).toEqual({ grove: 2, outcome: "failed", error: "out of memory" });
        expect(await ledger.grove(id, 1)).toBeUndefined();
        expect(await ledger.summary(newId())).toBeUndefined();
        expect(await ledger.grove(newId(), 0)).toBeUndefined();
        // A landing names its grove and stats in the counter.
        await landAll(ledger, id, [1]);
        expect((await ledger.summary(id))?.lastSettled).toEqual({ grove: 1, outcome: "landed", stats: groveStats(1) });
      }));

    it(`cuts a grove's error to one line of at most ${MAX_ERROR_CHARS} characters, and the reason that quotes it`, () =>
      withLedger(async (ledger) => {
        const id = await training(ledger, 3, 0);
        const long = `first line\n${"x".repeat(3000)}`;
        expect((await ledger.failGrove(id, 1, long)).buildFailed).toBe(true);
        const record = (await ledger.get(id))!;
        expect(record.failed[0].error.length).toBeLessThanOrEqual(MAX_ERROR_CHARS);
        expect(record.failed[0].error).toMatch(/^first line; x+\.\.\.$/);
        expect(record.reason!.length).toBeLessThan(MAX_ERROR_CHARS + 100);
        expect(record.reason).toMatch(/^1 of 3 groves failed \(tolerated 0\); grove 1: first line; x+\.\.\.$/);
      }));

    it("holds a build that tolerates many long failures: each grove's entry is bounded, the counter does not grow", () =>
      withLedger(async (ledger) => {
        const total = 60;
        const id = await training(ledger, total, 30);
        const error = (g: number) => `grove ${g}: ${"e".repeat(2000)}`;
        const before = JSON.stringify(await ledger.summary(id)).length;
        await pool(Array.from({ length: 30 }, (_, g) => () => ledger.failGrove(id, g, error(g))), concurrency);
        await pool(Array.from({ length: 30 }, (_, i) => () => ledger.landGrove(id, 30 + i, groveStats(30 + i))), concurrency);
        const summary = (await ledger.summary(id))!;
        expect(summary).toMatchObject({ status: "TRAINING", remaining: 0, failedCount: 30, landedCount: 30 });
        // The counter holds one grove's entry (the last settled), not the list: its size does not follow the count.
        expect(JSON.stringify(summary).length).toBeLessThan(before + 1000);
        const record = (await ledger.get(id))!;
        expect(record.failed.map((f) => f.grove)).toEqual(Array.from({ length: 30 }, (_, g) => g));
        expect(record.failed.every((f) => f.error.length <= MAX_ERROR_CHARS)).toBe(true);
        expect(await ledger.claimAggregation(id)).toBe(true);
      }));

    it("counts claims and stamps the claim's time; reopens only the claim it was told of", () =>
      withLedger(async (ledger) => {
        const id = await training(ledger, 1);
        await landAll(ledger, id, [0]);
        const t0 = Date.now();
        expect(await ledger.claimAggregation(id)).toBe(true);
        const claimed = (await ledger.summary(id))!;
        expect(claimed.claims).toBe(1);
        expect(claimed.claimedAt).toBeGreaterThanOrEqual(t0 - 1000);
        expect(await ledger.reopenAggregation(id, { claim: 2 })).toBe(false); // not the current claim
        expect((await ledger.summary(id))?.status).toBe("AGGREGATING");
        expect(await ledger.reopenAggregation(id, { claim: 1 })).toBe(true);
        expect(await ledger.claimAggregation(id)).toBe(true);
        const again = (await ledger.summary(id))!;
        expect(again).toMatchObject({ status: "AGGREGATING", claims: 2, redrives: 1 });
        expect(await ledger.reopenAggregation(id, { claim: 1 })).toBe(false); // a claim made since is alive
      }));

    it("re-fires the aggregation trigger of a TRAINING build with nothing remaining, and only of such a build", () =>
      withLedger(async (ledger) => {
        const changes: LedgerChange[] = [];
        const stop = ledger.watch((change) => changes.push(change));
        try {
          const id = await training(ledger, 2);
          expect(await ledger.redriveAggregation(id)).toBe(false); // groves outstanding
          await landAll(ledger, id, [0, 1]);
          expect(await ledger.redriveAggregation(id)).toBe(true);
          expect(await ledger.redriveAggregation(id)).toBe(true);
          expect((await ledger.summary(id))?.redrives).toBe(2);
          expect(await ledger.claimAggregation(id)).toBe(true);
          expect(await ledger.redriveAggregation(id)).toBe(false); // claimed: an aggregator is at work
          expect(await ledger.reopenAggregation(id)).toBe(true); // known dead: the trigger fires again
          expect(await ledger.claimAggregation(id)).toBe(true);
          await ledger.complete(id, { modelKey: "m", reportKey: "r", metrics: null });
          expect(await ledger.redriveAggregation(id)).toBe(false);
          const mine = () => changes.filter((c) => c.new.buildId === id);
          await waitFor(() => mine().some((c) => c.new.status === "COMPLETED"), "the completion", feedTimeoutMs);
          // The last landing, two re-triggers and the reopen: four triggers, for two claims.
          expect(mine().filter(isAggregationTrigger)).toHaveLength(4);
          expect(mine().filter((c) => c.new.status === "AGGREGATING" && c.old?.status === "TRAINING")).toHaveLength(2);
        } finally {
          stop();
        }
      }));

    it("notes a re-queue only while groves are outstanding", () =>
      withLedger(async (ledger) => {
        const id = await training(ledger, 2);
        expect(await ledger.recordRequeue(id)).toBe(true);
        expect((await ledger.summary(id))?.requeues).toBe(1);
        await landAll(ledger, id, [0, 1]);
        expect(await ledger.recordRequeue(id)).toBe(false);
        expect(await ledger.fail(id, "cancelled")).toBe(true);
        expect(await ledger.recordRequeue(id)).toBe(false);
        await expect(ledger.recordRequeue(newId())).rejects.toMatchObject({ code: "not-found" });
        await expect(ledger.redriveAggregation(newId())).rejects.toMatchObject({ code: "not-found" });
      }));

    it("stops delivering changes after unsubscribe", () =>
      withLedger(async (ledger) => {
        const seen: string[] = [];
        const watched: string[] = [];
        const stopAll = ledger.watch((c) => watched.push(c.new.buildId));
        const stop = ledger.watch((c) => seen.push(c.new.buildId));
        try {
          const first = newBuildRecord({ buildId: newId(), total: 1, tolerated: 0, now: Date.now() });
          await ledger.create(first);
          await waitFor(() => seen.includes(first.buildId), "the first create", feedTimeoutMs);
          stop();
          const second = newBuildRecord({ buildId: newId(), total: 1, tolerated: 0, now: Date.now() });
          await ledger.create(second);
          await waitFor(() => watched.includes(second.buildId), "the second create", feedTimeoutMs);
          expect(seen.filter((id) => id === second.buildId)).toHaveLength(0);
        } finally {
          stop();
          stopAll();
        }
      }));

    // The second level of the same fan-in: a study's record counts its builds (members) with the same rules.
    describe("a study: a record whose members are builds", () => {
      it("keeps a build's membership (memberOf) and a study's record beside the builds'", () =>
        withLedger(async (ledger) => {
          const studyId = newStudyId();
          const study = newBuildRecord({ buildId: studyId, total: 3, tolerated: 2, tags: { study: "grid" }, now: 1 });
          expect(await ledger.create(study)).toBe(true);
          expect(await ledger.get(studyId)).toEqual(study);
          const build = newBuildRecord({ buildId: newId(), total: 2, tolerated: 0, now: 2, memberOf: { id: studyId, member: 2 } });
          expect(await ledger.create(build)).toBe(true);
          expect(await ledger.summary(build.buildId)).toEqual(summaryOf(build));
          expect((await ledger.summary(build.buildId))?.memberOf).toEqual({ id: studyId, member: 2 });
        }));

      it(`lands each finished build once, whatever the duplicates; one landing sees 0; one claim wins (concurrency ${concurrency})`, () =>
        withLedger(async (ledger) => {
          const changes: LedgerChange[] = [];
          const stop = ledger.watch((change) => changes.push(change));
          try {
            const studyId = newStudyId();
            await ledger.create(newBuildRecord({ buildId: studyId, total: 4, tolerated: 3, now: Date.now() }));
            await ledger.startTraining(studyId);
            // Builds 0, 1 and 3 land twice (a re-delivered stream record, the sweeper settling what the aggregator did); 2 failed, twice.
            const calls: (() => Promise<{ wrote: boolean; remaining: number }>)[] = [3, 0, 1, 3, 0, 1].map((m) => async () => {
              const r = await ledger.landGrove(studyId, m, groveStats(m, { trees: 100 }));
              return { wrote: r.landed, remaining: r.remaining };
            });
            for (let i = 0; i < 2; i++)
              calls.push(async () => {
                const r = await ledger.failGrove(studyId, 2, "build b-0 failed: 2 of 10 groves failed");
                return { wrote: r.recorded, remaining: r.remaining };
              });
            const results = await pool(calls, concurrency);
            const wrote = results.filter((r) => r.wrote);
            expect(wrote).toHaveLength(4);
            expect(wrote.filter((r) => r.remaining === 0)).toHaveLength(1);
            expect(await ledger.summary(studyId)).toMatchObject({ status: "TRAINING", remaining: 0, landedCount: 3, failedCount: 1, treesLanded: 300 });
            const claims = await Promise.all([ledger.claimAggregation(studyId), ledger.claimAggregation(studyId)]);
            expect(claims.filter(Boolean)).toHaveLength(1);
            expect(await ledger.landGrove(studyId, 1, groveStats(1))).toEqual({ landed: false, remaining: 0 });
            const mine = () => changes.filter((c) => c.new.buildId === studyId);
            await waitFor(() => mine().some((c) => c.new.status === "AGGREGATING"), "the study's claim", feedTimeoutMs);
            expect(mine().filter(isAggregationTrigger)).toHaveLength(1);
            const record = await ledger.get(studyId);
            expect(record?.landed).toEqual([0, 1, 3]);
            expect(record?.failed).toEqual([{ grove: 2, error: "build b-0 failed: 2 of 10 groves failed" }]);
          } finally {
            stop();
          }
        }));

      it("a study whose every member failed fails in the write of the last failure", () =>
        withLedger(async (ledger) => {
          const studyId = newStudyId();
          await ledger.create(newBuildRecord({ buildId: studyId, total: 2, tolerated: 1, now: Date.now() }));
          await ledger.startTraining(studyId);
          expect((await ledger.failGrove(studyId, 0, "no")).buildFailed).toBe(false);
          expect((await ledger.failGrove(studyId, 1, "no")).buildFailed).toBe(true);
          expect((await ledger.summary(studyId))?.status).toBe("FAILED");
        }));
    });
  });
}
