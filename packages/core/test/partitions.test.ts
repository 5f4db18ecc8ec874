import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { aggregate } from "../src/aggregate.ts";
import { sha256Hex } from "../src/digest.ts";
import { csvTable } from "../src/table-source.ts";
import { preparePartitions } from "../src/partition-table.ts";
import { isAggregationTrigger } from "../src/ledger.ts";
import { keys } from "../src/keys.ts";
import { parseBuildSpec, type BuildSpec } from "../src/spec.ts";
import { prepareBuildData, submitBuild } from "../src/submit.ts";
import { decodeGroveTask } from "../src/task.ts";
import { trainGrove } from "../src/train-grove.ts";
import { partitionMemberSpec, PARTITION_LIMITS } from "../src/partition-plan.ts";
import { aggregatePartitionedRun, resumePartitionedRun, submitPartitionedRun } from "../src/partitioned-run.ts";
import { parsePartitionedModel, isPartitionRunId } from "../src/partitioned-model.ts";
import { partitionsFailedNotification } from "../src/partition-report.ts";
import { MemoryBlobStore, MemoryLedger, MemoryNotifier, MemoryQueue } from "../src/testing/index.ts";
import { fanInPipeline as pipeline, tickingClock } from "./support.ts";

/**
 * A seeded table: `store` spelled "7", "07" and "7.0" for one partition, a city constant within each store (a
 * column train drops as constant on a partition's rows alone), a colour that is text in some stores and a
 * number-like code in others, a rare store below the minimum, and a label that depends on x and the store.
 */
function table(stores = ["A", "B", "C", "7"], rowsEach = 60, seed = 1): { header: string; rows: { store: string; line: string }[] } {
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const rows: { store: string; line: string }[] = [];
  const spell = (store: string, i: number) => (store === "7" ? ["7", "07", "7.0"][i % 3] : store);
  for (let i = 0; i < rowsEach * stores.length; i++) {
    const k = i % stores.length;
    const store = stores[k];
    const x = rnd() * 10;
    const y = rnd() * 5;
    const colour = store === "B" ? String(Math.floor(rnd() * 3)) : ["red", "green", "blue"][Math.floor(rnd() * 3)];
    const label = x + k * 2 + (colour === "red" ? 1 : 0) > 8 ? "yes" : "no";
    rows.push({ store, line: `${spell(store, i)},${x.toFixed(3)},${y.toFixed(3)},${colour},city${k},${label}` });
  }
  for (let i = 0; i < 5; i++) rows.push({ store: "rare", line: `rare,${i},1,red,cityR,${i % 2 ? "yes" : "no"}` });
  rows.push({ store: "", line: `,1.5,2,red,cityX,no` });
  return { header: "store,x,y,colour,city,label", rows };
}

const csv = (t: { header: string; rows: { line: string }[] }) => `${t.header}\n${t.rows.map((r) => r.line).join("\n")}\n`;
const spec = (o: Record<string, unknown> = {}): BuildSpec => parseBuildSpec({ dataset: "t.csv", label: "label", n_estimators: 8, grove_size: 3, seed: 5, ...o });
const options = { partitionBy: "store", minPartitionRows: 30 };

async function run(data: string, s: BuildSpec, o: Parameters<typeof preparePartitions>[1] = options, deliveries = 1) {
  const p = pipeline(deliveries);
  const prepared = await preparePartitions(s, o, csvTable(data), p.blobs);
  const submission = await submitPartitionedRun(s, o, p.ports, prepared);
  return { ...p, prepared, submission };
}

/** The model bytes of `canopy train` on these rows with the partition column dropped (the identity rule). */
async function trainedAlone(data: string, s: BuildSpec): Promise<{ buildId: string; sha256: string }> {
  const p = pipeline();
  const member = partitionMemberSpec(s, "store");
  const prepared = await prepareBuildData(member, data, p.blobs);
  const { buildId } = await submitBuild(member, p.ports, prepared);
  await p.drain();
  return { buildId, sha256: sha256Hex((await p.blobs.get(keys.model(buildId)))!) };
}

describe("a partitioned run", () => {
  it("trains one model per partition, each the bytes train makes on that partition's rows alone with --drop store", async () => {
    const t = table();
    const r = await run(csv(t), spec());
    await r.drain();
    expect(r.notifier.partitions).toHaveLength(1);
    const n = r.notifier.partitions[0];
    expect(n).toMatchObject({ type: "partitions.completed", runId: r.submission.runId, partitionBy: "store", counts: { partitions: 5, completed: 4, failed: 0, skipped: 1, rows: 246, unkeyed: 1 } });
    const model = parsePartitionedModel(new TextDecoder().decode(await r.blobs.get(keys.partitionedModel(r.submission.runId))), "model.json");
    // Keys in code-unit order; "7", "07" and "7.0" are one partition spelled as first read.
    expect(Object.keys(model.partitions)).toEqual(["7", "A", "B", "C"]);
    expect(model.partitions["7"].value).toBe("7");
    expect(model.features).toEqual(["x", "y", "colour", "city"]);
    expect(model.skipped).toEqual([{ value: "rare", rows: 5, reason: "5 rows, fewer than --min-partition-rows 30" }]);
    expect(model.fallback).toBeUndefined();
    for (const [key, ref] of Object.entries(model.partitions)) {
      const rows = t.rows.filter((row) => row.store === key);
      const alone = await trainedAlone(csv({ header: t.header, rows }), spec());
      expect(ref.build).toBe(alone.buildId);
      expect(ref.sha256).toBe(alone.sha256);
      expect(ref.sha256).toBe(sha256Hex((await r.blobs.get(keys.model(ref.build)))!));
      expect(ref.rows).toBe(rows.length);
    }
    // Column kinds are each partition's own: colour is a number in store B's rows, text in A's.
    const kinds = async (id: string) => JSON.parse(new TextDecoder().decode(await r.blobs.get(keys.report(id)))).dataset.schema.columns.map((c: { name: string; kind: string }) => `${c.name}:${c.kind}`);
    expect(await kinds(model.partitions.B.build)).toContain("colour:numeric");
    expect(await kinds(model.partitions.A.build)).toContain("colour:categorical");
    const report = JSON.parse(new TextDecoder().decode(await r.blobs.get(keys.partitionReport(r.submission.runId))));
    expect(report.partitions.map((p: { key: string; status: string }) => `${p.key}:${p.status}`)).toEqual(["7:COMPLETED", "A:COMPLETED", "B:COMPLETED", "C:COMPLETED"]);
    // Row-weighted: accuracy over every held-out row of the partitions.
    const held = report.partitions.reduce((a: number, p: { metrics: { n: number } }) => a + p.metrics.n, 0);
    const correct = report.partitions.reduce((a: number, p: { metrics: { n: number; accuracy: number } }) => a + p.metrics.n * p.metrics.accuracy, 0);
    expect(n.metrics!.n).toBe(held);
    expect(n.metrics!.accuracy).toBeCloseTo(correct / held, 12);
  });

  it("gives the same run, id and bytes whatever the grove size, delivery order, duplicates and redelivered triggers", async () => {
    const data = csv(table());
    const a = await run(data, spec());
    await a.drain();
    const b = await run(data, spec({ grove_size: 5 }), options, 2);
    await b.drain(2, true);
    expect(b.notifier.partitions).toHaveLength(1);
    const ma = parsePartitionedModel(new TextDecoder().decode(await a.blobs.get(keys.partitionedModel(a.submission.runId))), "a");
    const mb = parsePartitionedModel(new TextDecoder().decode(await b.blobs.get(keys.partitionedModel(b.submission.runId))), "b");
    expect(Object.values(mb.partitions).map((p) => p.sha256)).toEqual(Object.values(ma.partitions).map((p) => p.sha256));
  });

  it("with --fallback global also trains the model of every row (the partition column dropped) in the same fan-out", async () => {
    const t = table();
    const r = await run(csv(t), spec(), { ...options, fallback: "global" });
    expect(r.queue.drain().length).toBe(5 * 3); // 4 partitions and the fallback, 3 groves each, queued together
    await resumePartitionedRun(r.submission.runId, r.ports); // the tasks drained above were lost: queued again
    await r.drain();
    expect(r.notifier.partitions).toHaveLength(1);
    const model = parsePartitionedModel(new TextDecoder().decode(await r.blobs.get(keys.partitionedModel(r.submission.runId))), "m");
    const alone = await trainedAlone(csv(t), spec());
    expect(model.fallback).toMatchObject({ build: alone.buildId, sha256: alone.sha256, rows: 246 });
  });

  it("completes with a failed partition listed as skipped (routed as an unknown value); fails when every partition failed", async () => {
    const r = await run(csv(table()), spec());
    const tasks = r.queue.drain();
    const doomed = r.submission.manifest.members[1].buildId; // partition A
    const { failGroveTask } = await import("../src/train-grove.ts");
    for (const t of tasks) {
      if (t.buildId === doomed && t.grove === 0) await failGroveTask(t, new Error("trainer crashed"), { ledger: r.ledger, notifier: r.notifier, blobs: r.blobs });
      else await trainGrove(t, { blobs: r.blobs, ledger: r.ledger });
    }
    await r.drain();
    expect(r.notifier.partitions[0]).toMatchObject({ type: "partitions.completed", counts: { completed: 3, failed: 1, skipped: 1 } });
    const model = parsePartitionedModel(new TextDecoder().decode(await r.blobs.get(keys.partitionedModel(r.submission.runId))), "m");
    expect(model.partitions.A).toBeUndefined();
    expect(model.skipped.map((s) => s.value)).toEqual(["rare", "A"]);
    expect(model.skipped[1].reason).toMatch(/its build failed: .*trainer crashed/);

    const all = await run(csv(table()), spec({ seed: 6 }));
    for (const t of all.queue.drain()) if (t.grove === 0) await failGroveTask(t, new Error("out of memory"), { ledger: all.ledger, notifier: all.notifier, blobs: all.blobs });
    await all.drain();
    expect(all.notifier.partitions).toHaveLength(1);
    expect(all.notifier.partitions[0]).toMatchObject({ type: "partitions.failed", reason: expect.stringMatching(/every partition's build failed/) });
  });

  it("refuses a missing column (naming it), an identifier column, and more partitions than a run carries, before storing a pack", async () => {
    const blobs = new MemoryBlobStore();
    const data = csv(table());
    await expect(preparePartitions(spec(), { ...options, partitionBy: "shop" }, csvTable(data), blobs)).rejects.toThrow(/--partition-by: no column "shop"; columns are: store, x, y, colour, city, label/);
    const ids = `id,x,label\n${Array.from({ length: 40 }, (_, i) => `u${i},${i},${i % 2}`).join("\n")}\n`;
    await expect(preparePartitions(spec(), { ...options, partitionBy: "id" }, csvTable(ids), blobs)).rejects.toThrow(/--partition-by "id": 40 distinct values in 40 rows: an identifier/);
    await expect(preparePartitions(spec(), { ...options, partitionBy: "id", fallback: "global" }, csvTable(ids), blobs)).rejects.toThrow(/an identifier/);
    const many = `g,x,label\n${Array.from({ length: PARTITION_LIMITS.maxPartitions + 1 }, (_, i) => `g${i},${i},${i % 2}\ng${i},${i},${i % 2}`).join("\n")}\n`;
    await expect(preparePartitions(spec(), { ...options, partitionBy: "g" }, csvTable(many), blobs)).rejects.toThrow(
      new RegExp(`more than ${PARTITION_LIMITS.maxPartitions} distinct values .* at most ${PARTITION_LIMITS.maxPartitions} partitions`),
    );
    await expect(preparePartitions(spec(), { ...options, partitionBy: "label" }, csvTable(data), blobs)).rejects.toThrow(/partition_by: "label" is the label column/);
    await expect(preparePartitions(spec(), { ...options, minPartitionRows: 1000 }, csvTable(data), blobs)).rejects.toThrow(/no partition to train: 5 partitions, 5 with fewer than --min-partition-rows 1000/);
    expect([...blobs.blobs.keys()].filter((k) => k.startsWith("packs/"))).toEqual([]);
  });
});

describe("the spill", () => {
  it("is removed when preparing ends, done or refused", async () => {
    const { mkdtempSync, readdirSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const tmp = mkdtempSync(join(tmpdir(), "canopy-spill-test-"));
    const blobs = new MemoryBlobStore();
    const prepared = await preparePartitions(spec(), options, csvTable(csv(table())), blobs, { tmpDir: tmp });
    expect(prepared.partitions).toHaveLength(4);
    expect(readdirSync(tmp)).toEqual([]);
    await expect(preparePartitions(spec(), { ...options, partitionBy: "nope" }, csvTable(csv(table())), blobs, { tmpDir: tmp })).rejects.toThrow(/no column "nope"/);
    expect(readdirSync(tmp)).toEqual([]);
  });
});

describe("packing partitions elsewhere (a PartitionPacker, as runtime-local's trainer threads)", () => {
  it("gives the same packs, in key order, whatever order the packs finish in; prepareMs is the clock's duration", async () => {
    const { packSpilledPartition } = await import("../src/partition-table.ts");
    const alone = await preparePartitions(spec(), options, csvTable(csv(table())), new MemoryBlobStore());
    const blobs = new MemoryBlobStore();
    let now = 1_000_000;
    const clock = { now: () => (now += 7) };
    let inFlight = 0;
    let most = 0;
    const seen: string[] = [];
    const packer = {
      concurrency: 3,
      // Later partitions finish first: the outcome must not depend on it.
      pack: async (job: Parameters<typeof packSpilledPartition>[0]) => {
        most = Math.max(most, ++inFlight);
        seen.push(job.name);
        await new Promise((r) => setTimeout(r, 40 - 10 * seen.length));
        const outcome = await packSpilledPartition(job, blobs);
        inFlight--;
        return outcome;
      },
    };
    const packed = await preparePartitions(spec(), options, csvTable(csv(table())), blobs, { packer, clock });
    expect(most).toBe(3);
    expect(packed.partitions).toEqual(alone.partitions);
    expect(packed.skipped).toEqual(alone.skipped);
    expect([...blobs.blobs.keys()].filter((k) => k.startsWith("packs/")).sort()).toEqual(alone.partitions.map((p) => p.packKey).sort());
    expect(packed.prepareMs).toBeGreaterThan(0);
    expect(packed.prepareMs).toBeLessThan(1000);
  });

  it("a packer's fault fails the preparation with it, after the packs in flight end (their spill is still there)", async () => {
    const { packSpilledPartition } = await import("../src/partition-table.ts");
    const blobs = new MemoryBlobStore();
    let calls = 0;
    const finished: string[] = [];
    const packer = {
      concurrency: 2,
      pack: async (job: Parameters<typeof packSpilledPartition>[0]) => {
        if (++calls === 1) throw new Error("disk full");
        const outcome = await packSpilledPartition(job, blobs);
        finished.push(job.name);
        return outcome;
      },
    };
    await expect(preparePartitions(spec(), options, csvTable(csv(table())), blobs, { packer })).rejects.toThrow(/disk full/);
    expect(finished).toHaveLength(1);
  });
});

describe("the partitioned run's notification", () => {
  it("is valid against schemas/partitions-notification.v1.json, completed or failed, and declares every field it has", async () => {
    const { validate } = await import("../../../test/json-schema.ts");
    const schema = JSON.parse(readFileSync(new URL("../../../schemas/partitions-notification.v1.json", import.meta.url), "utf8"));
    const r = await run(csv(table()), spec());
    await r.drain();
    const done = r.notifier.partitions[0];
    const failed = partitionsFailedNotification((await r.ledger.summary(done.runId))!, "partitioned run aggregation failed: no partition has a model");
    for (const n of [done, failed]) {
      expect(validate(n, schema)).toEqual([]);
      expect(Object.keys(n).filter((k) => !(k in schema.properties))).toEqual([]);
    }
    expect(validate({ ...done, runId: "s-0123456789abcdef" }, schema)).not.toEqual([]);
    const { counts: _c, ...withoutCounts } = done;
    expect(validate(withoutCounts, schema)).toEqual(["$: missing counts"]);
  });
});

describe("the sweeper never loses a partitioned run", () => {
  it("lands the partition builds a crash left unlanded (after their completion), and the run finishes with one notification", async () => {
    const { sweepBuilds } = await import("../src/sweep.ts");
    const clock = tickingClock();
    const blobs = new MemoryBlobStore();
    const ledger = new MemoryLedger({ clock });
    const queue = new MemoryQueue();
    const notifier = new MemoryNotifier();
    // The builds' aggregator dies right after completing each build: landing it in the run throws.
    const crashing = Object.create(ledger, {
      landGrove: { value: (id: string, g: number, s: Parameters<MemoryLedger["landGrove"]>[2]) => (isPartitionRunId(id) ? Promise.reject(new Error("killed")) : ledger.landGrove(id, g, s)) },
    }) as MemoryLedger;
    const work: Promise<unknown>[] = [];
    ledger.watch((c) => {
      if (!isAggregationTrigger(c)) return;
      const id = c.new.buildId;
      work.push((isPartitionRunId(id) ? aggregatePartitionedRun(id, { blobs, ledger, notifier, clock }) : aggregate(id, { blobs, ledger: crashing, notifier, clock })).catch(() => "crashed"));
    });
    const prepared = await preparePartitions(spec(), options, csvTable(csv(table())), blobs);
    const { runId, manifest } = await submitPartitionedRun(spec(), options, { blobs, ledger, queue, clock }, prepared);
    for (const t of queue.drain()) await trainGrove(t, { blobs, ledger });
    while (work.length > 0) await work.shift();
    for (const m of manifest.members) expect((await ledger.summary(m.buildId))?.status).toBe("COMPLETED");
    const stuck = (await ledger.summary(runId))!;
    expect(stuck).toMatchObject({ status: "TRAINING", remaining: 4 });
    const policy = { stallMs: 60_000, leaseMs: 60_000 };
    const early = await sweepBuilds([runId], policy, { ledger, notifier, blobs, queue, queueState: async () => ({ busy: false }), clock: { now: () => stuck.updatedAt + 1000 } });
    expect(early[0]).toMatchObject({ action: "none" });
    const [result] = await sweepBuilds([runId], policy, { ledger, notifier, blobs, queue, queueState: async () => ({ busy: false }), clock: { now: () => stuck.updatedAt + 120_000 } });
    expect(result).toMatchObject({ buildId: runId, action: "settle", detail: expect.stringMatching(/landed 4$/) });
    while (work.length > 0) await work.shift();
    expect((await ledger.summary(runId))?.status).toBe("COMPLETED");
    expect(notifier.partitions).toHaveLength(1);
    expect(queue.messages).toHaveLength(0);
  });
});

/** The ledger of a submission that dies ("killed") when it creates a member build after the first `n`. */
function dyingAfter(ledger: MemoryLedger, n: number): MemoryLedger {
  let created = 0;
  return Object.create(ledger, {
    create: { value: (r: Parameters<MemoryLedger["create"]>[0]) => (!isPartitionRunId(r.buildId) && ++created > n ? Promise.reject(new Error("killed")) : ledger.create(r)) },
  }) as MemoryLedger;
}

describe("resume after a crashed submission", () => {
  // A resume that submits the members a crash left unsubmitted must not resume them as well: with a lease of 0 (a
  // store this process owns) it would take their aggregation, claimed by this very process as soon as their trainers
  // finish, for a dead one and start a second aggregator, whose report could land after the first had (CI saw
  // "member 35: ... is not the report that landed"); before that, it queues their groves a second time.
  it("queues each grove of a member it submits once, and the run ends as an uncrashed one does", async () => {
    const data = csv(table(["A", "B", "C"], 45));
    const reference = pipeline();
    const { runId } = await submitPartitionedRun(spec(), options, reference.ports, await preparePartitions(spec(), options, csvTable(data), reference.blobs));
    await reference.drain();
    const p = pipeline();
    const dying = dyingAfter(p.ledger, 1);
    const prepared = await preparePartitions(spec(), options, csvTable(data), p.blobs);
    await expect(submitPartitionedRun(spec(), options, { ...p.ports, ledger: dying }, prepared)).rejects.toThrow("killed");
    p.queue.messages.splice(0);
    const resumed = await resumePartitionedRun(runId, p.ports, { aggregationLeaseMs: 0 });
    expect(resumed.submitted.length).toBeGreaterThan(0);
    const tasks = p.queue.messages.map((m) => decodeGroveTask(m));
    for (const buildId of resumed.submitted) {
      const groves = tasks.filter((t) => t.buildId === buildId).map((t) => t.grove);
      expect(groves.length, buildId).toBeGreaterThan(0);
      expect(new Set(groves).size, buildId).toBe(groves.length);
    }
    await p.drain();
    expect(await p.blobs.get(keys.partitionedModel(runId))).toEqual(await reference.blobs.get(keys.partitionedModel(runId)));
    expect(p.notifier.partitions.map((n) => n.type)).toEqual(["partitions.completed"]);
  });
});

describe("the sweeper submits what a crashed submission left unsubmitted", () => {
  // The submission dies after creating two member builds; the sweeper, which reads no pack, starts the others from
  // the run's manifest, and the run ends as the uncrashed one does: the same model, one notification.
  for (const tuned of [false, true])
    it(`${tuned ? "a tuned run's fold builds" : "a partitioned run's builds"}: started from the manifest alone; the same model as an uncrashed run`, async () => {
      const { sweepBuilds } = await import("../src/sweep.ts");
      const { submitPartitionTuning } = await import("../src/partitioned-run.ts");
      const { parseStudySpec } = await import("../src/study-spec.ts");
      const data = csv(table(["A", "B", "C"], 45));
      const study = parseStudySpec({ base: spec(), grid: { max_depth: [1, 3] }, cv: 2, refit: true });
      const submit = async (p: ReturnType<typeof pipeline>, ledger: MemoryLedger) => {
        const prepared = await preparePartitions(spec(), options, csvTable(data), p.blobs);
        const ports = { ...p.ports, ledger };
        return tuned ? submitPartitionTuning(study, options, "independent", ports, prepared) : submitPartitionedRun(spec(), options, ports, prepared);
      };
      const reference = pipeline();
      const { runId } = await submit(reference, reference.ledger);
      await reference.drain();
      const p = pipeline();
      const dying = dyingAfter(p.ledger, 2);
      await expect(submit(p, dying)).rejects.toThrow("killed");
      await p.drain();
      const stuck = (await p.ledger.summary(runId))!;
      expect(stuck).toMatchObject({ status: "TRAINING", landedCount: 2 });
      const blobs = Object.create(p.blobs, { get: { value: (k: string) => (k.startsWith("packs/") ? Promise.reject(new Error(`read ${k}`)) : p.blobs.get(k)) } }) as MemoryBlobStore;
      const late = { now: () => stuck.updatedAt + 120_000 };
      const [result] = await sweepBuilds([runId], { stallMs: 60_000, leaseMs: 60_000 }, { ...p, blobs, queueState: async () => ({ busy: false }), clock: late });
      expect(result).toMatchObject({ buildId: runId, action: "settle", detail: expect.stringMatching(new RegExp(`landed 0; submitted ${stuck.total - 2} member build\\(s\\) a crash left unsubmitted: b-`)) });
      await p.drain();
      expect(await p.blobs.get(keys.partitionedModel(runId))).toEqual(await reference.blobs.get(keys.partitionedModel(runId)));
      const model = parsePartitionedModel(new TextDecoder().decode((await p.blobs.get(keys.partitionedModel(runId)))!), "swept");
      for (const ref of Object.values(model.partitions)) expect(await p.blobs.get(keys.model(ref.build))).toEqual(await reference.blobs.get(keys.model(ref.build)));
      expect(p.notifier.partitions.map((n) => n.type)).toEqual(["partitions.completed"]);
    });
});
