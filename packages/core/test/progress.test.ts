import { describe, expect, it } from "vitest";
import { EventLog } from "../src/event-log.ts";
import { ledgerRules, newBuildRecord, summaryOf, type BuildSummary, type Decision, type SettledGrove } from "../src/ledger.ts";
import { ProgressTracker } from "../src/progress.ts";
import type { ProgressEvent } from "../src/runtime.ts";
import { groveStats } from "../src/testing/index.ts";

const ID = "b-0123456789abcdef";
const T0 = 1_700_000_000_000;

/** A build of 4 groves of 5 trees, moved through the ledger's own rules: its counter, as a feed or a poll sees it. */
function build() {
  let r: BuildSummary = summaryOf(newBuildRecord({ buildId: ID, total: 4, tolerated: 1, now: T0 }));
  const entries = new Map<number, SettledGrove>();
  const apply = (d: Decision<unknown>) => {
    if (d.settle) entries.set(d.settle.grove, d.settle);
    return (r = d.next ?? r);
  };
  return {
    get record() {
      return r;
    },
    start: () => apply(ledgerRules.startTraining(r, T0 + 1)),
    land: (g: number, at: number) => apply(ledgerRules.landGrove(r, entries.get(g), g, groveStats(g), at)),
    failGrove: (g: number, at: number) => apply(ledgerRules.failGrove(r, entries.get(g), g, "boom", at)),
    claim: (at: number) => apply(ledgerRules.claimAggregation(r, at)),
    complete: (at: number) => apply(ledgerRules.complete(r, { modelKey: "m", reportKey: "r", metrics: null }, at)),
  };
}

const summary = (events: ProgressEvent[]) =>
  events.map((e) => (e.type === "stage" ? e.stage : `${e.landed}+${e.failed}${e.grove ? `:${e.grove.outcome}#${e.grove.grove}` : ""}`));

describe("ProgressTracker: ledger snapshots in, progress events out", () => {
  it("from a change feed (one write per snapshot): training, one event per grove naming it, aggregating, done", () => {
    const b = build();
    const t = new ProgressTracker(ID, 20, T0);
    const events: ProgressEvent[] = [];
    const see = (r: BuildSummary) => events.push(...t.observe(r, r.updatedAt));
    see(b.record); // PENDING: nothing yet
    see(b.start());
    see(b.land(2, T0 + 100));
    see(b.failGrove(0, T0 + 200));
    see(b.land(1, T0 + 300));
    see(b.land(3, T0 + 400));
    see(b.claim(T0 + 500));
    see(b.complete(T0 + 600));
    expect(summary(events)).toEqual(["training", "0+0", "1+0:landed#2", "1+1:failed#0", "2+1:landed#1", "3+1:landed#3", "aggregating", "done"]);
    const last = events.filter((e) => e.type === "progress").at(-1)!;
    expect(last).toMatchObject({ buildId: ID, total: 4, treesDone: 15, treesTotal: 20, elapsedMs: 400 });
    expect(t.ended).toBe(true);
    expect(t.observe(b.record, T0 + 700)).toEqual([]);
  });

  it("from polling: several groves between two reads are one event; repeated and stale reads say nothing; a missed AGGREGATING is still reported", () => {
    const b = build();
    const t = new ProgressTracker(ID, 20, T0);
    const started = b.start();
    expect(summary(t.observe(started, 1))).toEqual(["training", "0+0"]);
    b.land(0, T0 + 10);
    const two = b.land(1, T0 + 20);
    expect(summary(t.observe(two, 2))).toEqual(["2+0"]);
    expect(t.observe(two, 3)).toEqual([]);
    expect(t.observe(started, 4)).toEqual([]); // older than what was reported
    b.land(2, T0 + 30);
    b.land(3, T0 + 40);
    b.claim(T0 + 50);
    expect(summary(t.observe(b.complete(T0 + 60), 5))).toEqual(["4+0", "aggregating", "done"]);
  });

  it("a build first seen finished is only done; a build first seen part-way starts from its counts", () => {
    const b = build();
    b.start();
    b.land(0, T0 + 10);
    expect(summary(new ProgressTracker(ID, 20, T0).observe(b.record, 1))).toEqual(["training", "1+0"]);
    for (const g of [1, 2, 3]) b.land(g, T0 + 20 + g);
    b.claim(T0 + 30);
    expect(summary(new ProgressTracker(ID, 20, T0).observe(b.complete(T0 + 40), 2))).toEqual(["done"]);
  });
});

describe("EventLog", () => {
  it("gives a late reader every event, then waits; a failure reaches readers after the events before it", async () => {
    const log = new EventLog<number>();
    log.append(1);
    log.append(2);
    const read: number[] = [];
    const reading = (async () => {
      for await (const n of log.read()) read.push(n);
    })();
    await new Promise((r) => setTimeout(r, 5));
    log.append(3);
    log.close();
    await reading;
    expect(read).toEqual([1, 2, 3]);

    const failing = new EventLog<number>();
    failing.append(7);
    failing.fail(new Error("closed"));
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const n of failing.read()) seen.push(n);
      })(),
    ).rejects.toThrow("closed");
    expect(seen).toEqual([7]);
  });

  it("a reader stops when its signal aborts, while the log goes on", async () => {
    const log = new EventLog<number>();
    const stop = new AbortController();
    const reading = (async () => {
      const out: number[] = [];
      for await (const n of log.read(stop.signal)) out.push(n);
      return out;
    })();
    log.append(1);
    await new Promise((r) => setTimeout(r, 5));
    stop.abort();
    expect(await reading).toEqual([1]);
    expect(log.closed).toBe(false);
  });
});
