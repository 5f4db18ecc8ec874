import { describe, expect, it } from "vitest";
import { newBuildRecord, summaryOf, type BuildSummary } from "../src/ledger.ts";
import { parseBuildSpec } from "../src/spec.ts";
import { prepareDataset, submitBuild } from "../src/submit.ts";
import { lastProgressAt, sweepBuilds, sweepDecision, type SweepPolicy } from "../src/sweep.ts";
import { groveStats, MemoryBlobStore, MemoryLedger, MemoryNotifier, MemoryQueue } from "../src/testing/index.ts";
import { fixture } from "./support.ts";

const MIN = 60_000;
const policy: SweepPolicy = { stallMs: 30 * MIN, leaseMs: 6 * MIN };
const idle = () => ({ busy: false });
const busy = () => ({ busy: true });

function counter(patch: Partial<BuildSummary> = {}): BuildSummary {
  return { ...summaryOf(newBuildRecord({ buildId: "b-0000000000000001", total: 3, tolerated: 0, now: 1000 })), status: "TRAINING", ...patch };
}

describe("sweepDecision: a build with every grove in is always finished; queued work is never stalled", () => {
  it("measures progress from the last landing, else creation, or any later write", () => {
    expect(lastProgressAt(counter())).toBe(1000);
    expect(lastProgressAt(counter({ lastLandedAt: 5000, updatedAt: 5000 }))).toBe(5000);
    expect(lastProgressAt(counter({ lastLandedAt: 5000, updatedAt: 9000 }))).toBe(9000);
  });

  it("leaves terminal builds, and builds that progressed within the limit, alone", () => {
    expect(sweepDecision(counter({ status: "COMPLETED" }), 1e12, policy, idle).action).toBe("none");
    expect(sweepDecision(counter({ status: "FAILED" }), 1e12, policy, idle).action).toBe("none");
    expect(sweepDecision(counter(), 1000 + 30 * MIN, policy, idle).action).toBe("none");
  });

  it("does not stall a build whose tasks wait in the queue, however long it waits its turn", () => {
    const waiting = sweepDecision(counter(), 1000 + 600 * MIN, policy, busy);
    expect(waiting).toMatchObject({ action: "none" });
    expect(waiting.action === "none" && waiting.why).toMatch(/queued, not stalled/);
    expect(sweepDecision(counter({ status: "PENDING" }), 1000 + 600 * MIN, policy, busy).action).toBe("none");
  });

  it("re-queues the outstanding groves of an idle build when the queue is empty (their tasks were lost), then fails it", () => {
    const late = 1000 + 31 * MIN;
    expect(sweepDecision(counter(), late, policy, idle).action).toBe("requeue");
    expect(sweepDecision(counter({ status: "PENDING" }), late, policy, idle).action).toBe("requeue");
    expect(sweepDecision(counter({ requeues: 2 }), late, policy, idle).action).toBe("requeue");
    const failed = sweepDecision(counter({ requeues: 3, landedCount: 1, remaining: 2 }), late, policy, idle);
    expect(failed).toEqual({
      action: "fail",
      reason: "stalled: no progress for 1860 s (limit 1800 s) while TRAINING; 1 of 3 groves landed; the grove queue is empty and the outstanding groves were queued again 3 time(s)",
    });
  });

  it("fires the trigger again for a build with every grove in that nothing claimed, after a grace; fails only after many tries", () => {
    const done = counter({ remaining: 0, landedCount: 3, updatedAt: 1000 });
    expect(sweepDecision(done, 1000 + 5 * MIN, policy, idle).action).toBe("none"); // within the grace (the lease)
    expect(sweepDecision(done, 1000 + 7 * MIN, policy, idle).action).toBe("redrive");
    expect(sweepDecision(done, 1000 + 7 * MIN, { ...policy, triggerGraceMs: 0 }, idle).action).toBe("redrive");
    // The queue does not matter here: nothing is outstanding.
    expect(sweepDecision(done, 1000 + 7 * MIN, policy, busy).action).toBe("redrive");
    const gaveUp = sweepDecision({ ...done, redrives: 6 }, 1000 + 7 * MIN, policy, idle);
    expect(gaveUp.action === "fail" && gaveUp.reason).toMatch(/^every grove is in \(3 landed\) but no aggregator claimed the build after 6 re-triggers/);
  });

  it("reopens a claim older than the lease (its aggregator is dead), naming the claim; fails after three aggregations died", () => {
    const claimed = counter({ status: "AGGREGATING", remaining: 0, landedCount: 3, claims: 1, claimedAt: 1000, updatedAt: 1000 });
    expect(sweepDecision(claimed, 1000 + 5 * MIN, policy, idle).action).toBe("none");
    expect(sweepDecision(claimed, 1000 + 6 * MIN, policy, idle)).toMatchObject({ action: "reopen", claim: 1 });
    const third = sweepDecision({ ...claimed, claims: 3 }, 1000 + 6 * MIN, policy, idle);
    expect(third.action === "fail" && third.reason).toBe(
      "aggregation did not finish: 3 aggregator run(s) each outlived 360 s (out of time or memory?); every grove is in (3 landed)",
    );
  });
});

const memoryPorts = (clock: { now: () => number }) => ({
  blobs: new MemoryBlobStore(),
  ledger: new MemoryLedger({ clock }),
  queue: new MemoryQueue(),
  notifier: new MemoryNotifier(),
  clock,
});

/** A digits build of 4 groves submitted on memory ports, nothing trained. */
async function submitted(clock: { now: () => number }, seed = 1, ports = memoryPorts(clock)) {
  const prepared = await prepareDataset(fixture("digits"), { label: "digit" }, ports.blobs);
  const { buildId } = await submitBuild(parseBuildSpec({ dataset: "d.csv", label: "digit", n_estimators: 8, grove_size: 2, seed, tags: { team: "x" } }), ports, prepared);
  ports.queue.drain();
  return { ports, buildId };
}

describe("sweepBuilds", () => {
  it("re-queues a build whose tasks were lost (only what has not landed), three times, then fails it once with one notification", async () => {
    let now = 1_000_000;
    const clock = { now: () => now };
    const { ports, buildId } = await submitted(clock);
    await ports.ledger.landGrove(buildId, 1, groveStats(1));
    const sweep = () => sweepBuilds([buildId], policy, { ...ports, queueState: async () => ({ busy: ports.queue.messages.length > 0 }) });

    for (let round = 1; round <= 3; round++) {
      now += 31 * MIN;
      expect(await sweep()).toMatchObject([{ buildId, action: "requeue" }]);
      expect(ports.queue.drain().map((t) => t.grove)).toEqual([0, 2, 3]); // lost again
      expect((await ports.ledger.summary(buildId))?.requeues).toBe(round);
    }
    now += 10 * MIN;
    expect(await sweep()).toMatchObject([{ buildId, action: "none" }]); // the last re-queue was progress
    now += 21 * MIN;
    const [failed] = await sweep();
    expect(failed).toMatchObject({ buildId, action: "fail" });
    expect(failed.detail).toMatch(/^stalled: no progress for 1860 s \(limit 1800 s\) while TRAINING; 1 of 4 groves landed; .* queued again 3 time\(s\)$/);
    expect(await sweep()).toMatchObject([{ buildId, action: "none", detail: "FAILED" }]);
    expect(ports.notifier.published).toHaveLength(1);
    expect(ports.notifier.published[0]).toMatchObject({ type: "build.failed", buildId, tags: { team: "x" }, reason: failed.detail });
  });

  it("leaves a build whose tasks wait in the queue alone, reading the queue's state once per sweep", async () => {
    let now = 1_000_000;
    const clock = { now: () => now };
    const a = await submitted(clock, 1);
    const b = await submitted(clock, 2, a.ports);
    let reads = 0;
    now += 120 * MIN;
    const results = await sweepBuilds([a.buildId, b.buildId], policy, {
      ...a.ports,
      queueState: async () => {
        reads++;
        return { busy: true };
      },
    });
    expect(results.map((r) => [r.buildId, r.action])).toEqual([
      [a.buildId, "none"],
      [b.buildId, "none"],
    ]);
    expect(reads).toBe(1);
    expect(a.ports.queue.messages).toEqual([]);
  });

  it("fires a lost trigger again and reopens a dead claim, through the ledger's feed", async () => {
    let now = 1_000_000;
    const clock = { now: () => now };
    const { ports, buildId } = await submitted(clock);
    const triggers: string[] = [];
    ports.ledger.watch((c) => {
      if (c.new.status === "TRAINING" && c.new.remaining === 0) triggers.push(`${c.old?.status}/${c.new.redrives ?? 0}`);
    });
    for (const g of [0, 1, 2, 3]) await ports.ledger.landGrove(buildId, g, groveStats(g));
    const sweep = () => sweepBuilds([buildId], policy, { ...ports, queueState: async () => ({ busy: false }) });
    now += 7 * MIN;
    expect(await sweep()).toMatchObject([{ action: "redrive" }]);
    expect(await ports.ledger.claimAggregation(buildId)).toBe(true);
    now += 5 * MIN;
    expect(await sweep()).toMatchObject([{ action: "none" }]); // the claim is young
    now += 2 * MIN;
    expect(await sweep()).toMatchObject([{ action: "reopen" }]);
    expect(triggers).toEqual(["TRAINING/0", "TRAINING/1", "AGGREGATING/2"]);
    expect(ports.notifier.published).toEqual([]);
  });

  it("sweeps each build on its own: one that cannot be swept does not stop the others", async () => {
    let now = 1_000_000;
    const clock = { now: () => now };
    const { ports, buildId } = await submitted(clock);
    for (const g of [0, 1, 2, 3]) await ports.ledger.landGrove(buildId, g, groveStats(g));
    const broken = "b-00000000000000ff";
    const ledger = Object.create(ports.ledger, {
      summary: {
        value: async (id: string) => {
          if (id === broken) throw new Error("ValidationException: Item size has exceeded the maximum allowed size");
          return ports.ledger.summary(id);
        },
      },
    });
    now += 7 * MIN;
    const results = await sweepBuilds([broken, buildId], policy, { ...ports, ledger, queueState: async () => ({ busy: false }) });
    expect(results).toMatchObject([
      { buildId: broken, action: "none", error: "ValidationException: Item size has exceeded the maximum allowed size" },
      { buildId, action: "redrive" },
    ]);
  });

  it("decides on the current counter, not a stale listing", async () => {
    let now = 1_000_000;
    const clock = { now: () => now };
    const { ports, buildId } = await submitted(clock);
    const stale = (await ports.ledger.summary(buildId))!;
    now += 29 * MIN;
    await ports.ledger.landGrove(buildId, 1, groveStats(1));
    now += 2 * MIN;
    expect(await sweepBuilds([stale], policy, { ...ports, queueState: async () => ({ busy: false }) })).toMatchObject([{ action: "none" }]);
  });
});
