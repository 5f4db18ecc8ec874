import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../src/digest.ts";
import { csvTable } from "../src/table-source.ts";
import { preparePartitions } from "../src/partition-table.ts";
import { keys } from "../src/keys.ts";
import { parseBuildSpec, type BuildSpec } from "../src/spec.ts";
import { prepareBuildData, submitBuild } from "../src/submit.ts";
import { partitionMemberSpec } from "../src/partition-plan.ts";
import { aggregatePartitionedRun, readPartitionView, resumePartitionedRun, submitPartitionTuning } from "../src/partitioned-run.ts";
import { aggregate } from "../src/aggregate.ts";
import { isAggregationTrigger } from "../src/ledger.ts";
import { isPartitionRunId } from "../src/partitioned-model.ts";
import { trainGrove } from "../src/train-grove.ts";
import { sweepBuilds } from "../src/sweep.ts";
import { parsePartitionedModel } from "../src/partitioned-model.ts";
import type { PartitionReport } from "../src/partition-report.ts";
import { finalSpec, parseStudySpec, type Params, type StudySpec } from "../src/study-spec.ts";
import { submitStudy } from "../src/study.ts";
import { MemoryBlobStore, MemoryLedger, MemoryNotifier, MemoryQueue } from "../src/testing/index.ts";
import { fanInPipeline as pipeline, tickingClock } from "./support.ts";

/** A seeded table of four stores (one below the minimum), a label that depends on x, y and the store. */
function table(stores = ["A", "B", "C"], rowsEach = 45, seed = 3): { header: string; rows: { store: string; line: string }[] } {
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const rows: { store: string; line: string }[] = [];
  for (let i = 0; i < rowsEach * stores.length; i++) {
    const k = i % stores.length;
    const x = rnd() * 10;
    const y = rnd() * 5;
    const noise = rnd() < 0.15;
    const label = (x + y * (k - 1) > 6) !== noise ? "yes" : "no";
    rows.push({ store: stores[k], line: `${stores[k]},${x.toFixed(3)},${y.toFixed(3)},${label}` });
  }
  for (let i = 0; i < 4; i++) rows.push({ store: "rare", line: `rare,${i},1,${i % 2 ? "yes" : "no"}` });
  return { header: "store,x,y,label", rows };
}

const csv = (t: { header: string; rows: { line: string }[] }) => `${t.header}\n${t.rows.map((r) => r.line).join("\n")}\n`;
const base = (o: Record<string, unknown> = {}) => ({ dataset: "t.csv", label: "label", n_estimators: 6, grove_size: 2, seed: 5, ...o });
const study = (o: Record<string, unknown> = {}, s: Partial<StudySpec> = {}): StudySpec =>
  parseStudySpec({ base: base(o), grid: { max_depth: [1, 4], min_samples_leaf: [1, 8] }, cv: 3, refit: true, ...s });
const options = { partitionBy: "store", minPartitionRows: 20 };

async function tuned(data: string, s: StudySpec, mode: "independent" | "shared", deliveries = 1, o: Parameters<typeof preparePartitions>[1] = options) {
  const p = pipeline(deliveries);
  const prepared = await preparePartitions(s.base, o, csvTable(data), p.blobs);
  const submission = await submitPartitionTuning(s, o, mode, p.ports, prepared);
  return { ...p, prepared, submission };
}

const read = async (blobs: MemoryBlobStore, key: string) => JSON.parse(new TextDecoder().decode((await blobs.get(key))!));

/** `canopy tune` on one partition's rows alone with --drop store: its report (best_params_, final build) and final model's SHA-256. */
async function tunedAlone(data: string, s: StudySpec): Promise<{ best: Params; sha256: string; buildId: string }> {
  const p = pipeline();
  const alone = { ...s, base: partitionMemberSpec(s.base, "store") };
  const prepared = await prepareBuildData(alone.base, data, p.blobs);
  const { studyId } = await submitStudy(alone, p.ports, prepared);
  await p.drain();
  const report = await read(p.blobs, keys.studyReport(studyId));
  return { best: report.best_params_, buildId: report.final.buildId, sha256: sha256Hex((await p.blobs.get(keys.model(report.final.buildId)))!) };
}

/** `canopy train` on one partition's rows alone with --drop store and these parameters as flags. */
async function trainedAlone(data: string, spec: BuildSpec): Promise<{ buildId: string; sha256: string }> {
  const p = pipeline();
  const prepared = await prepareBuildData(spec, data, p.blobs);
  const { buildId } = await submitBuild(spec, p.ports, prepared);
  await p.drain();
  return { buildId, sha256: sha256Hex((await p.blobs.get(keys.model(buildId)))!) };
}

/** Trains every queued task and runs the aggregations `work` collects, until nothing is left (a test's own wiring). */
async function drainAll(queue: MemoryQueue, work: Promise<unknown>[], ports: { blobs: MemoryBlobStore; ledger: MemoryLedger }): Promise<void> {
  for (;;) {
    const tasks = queue.drain();
    if (tasks.length === 0 && work.length === 0) return;
    for (const t of tasks) await trainGrove(t, ports);
    while (work.length > 0) await work.shift();
  }
}

const partitionRows = (t: ReturnType<typeof table>, key: string) => csv({ header: t.header, rows: t.rows.filter((r) => r.store === key) });

describe("tune --partition-by (core)", () => {
  it("independent: each partition's model and best_params_ are what tune on its rows alone gives; one notification", { timeout: 120_000 }, async () => {
    const t = table();
    const s = study();
    const r = await tuned(csv(t), s, "independent");
    await r.drain();
    expect(r.notifier.partitions).toHaveLength(1);
    const n = r.notifier.partitions[0];
    const { runId } = r.submission;
    expect(n).toMatchObject({ type: "partitions.completed", runId, tuning: { mode: "independent", scoring: "accuracy", cv: 3 }, counts: { partitions: 4, completed: 3, skipped: 1 } });
    expect(n.tuning!.best_params_).toBeUndefined();
    const model = parsePartitionedModel(new TextDecoder().decode((await r.blobs.get(keys.partitionedModel(runId)))!), "model.json");
    expect(model.runId).toBe(runId);
    const report = (await read(r.blobs, keys.partitionReport(runId))) as PartitionReport;
    expect(report.tuning!.partitions.map((p) => p.key)).toEqual(["A", "B", "C"]);
    expect(report.tuning!.builds).toEqual({ total: 36, completed: 36, failed: 0 });
    const picks = new Set<string>();
    for (const [key, ref] of Object.entries(model.partitions)) {
      const alone = await tunedAlone(partitionRows(t, key), s);
      const ranking = report.tuning!.partitions.find((p) => p.key === key)!;
      expect(ranking.best_params_, key).toEqual(alone.best);
      expect(ref.build, key).toBe(alone.buildId);
      expect(ref.sha256, key).toBe(alone.sha256);
      expect(report.partitions.find((p) => p.key === key)!.params).toEqual(alone.best);
      picks.add(JSON.stringify(alone.best));
    }
    // The view follows the run to its final stage.
    const view = await readPartitionView(r, runId);
    expect(view).toMatchObject({ summary: { status: "COMPLETED", buildId: runId }, tuning: "independent", builds: { total: 36, done: 36 }, final: { builds: { total: 3, done: 3 } }, modelKey: keys.partitionedModel(runId) });
    expect(picks.size).toBeGreaterThan(0);
  });

  it("shared: one candidate, the best mean over partitions, for every partition; the same with doubled triggers, duplicate and reversed deliveries", { timeout: 120_000 }, async () => {
    const t = table();
    const s = study();
    const a = await tuned(csv(t), s, "shared");
    await a.drain();
    const b = await tuned(csv(t), study({ grove_size: 4 }), "shared", 2);
    await b.drain(2, true);
    expect(a.notifier.partitions).toHaveLength(1);
    expect(b.notifier.partitions).toHaveLength(1);
    const report = (await read(a.blobs, keys.partitionReport(a.submission.runId))) as PartitionReport;
    const tables = report.tuning!.partitions.map((p) => p.candidates.map((c) => c.mean_test_score));
    const means = tables[0].map((_, c) => tables.reduce((sum, p) => sum + p[c], 0) / tables.length);
    const argmax = means.indexOf(Math.max(...means));
    expect(report.tuning!.shared!.best_index_).toBe(argmax);
    expect(a.notifier.partitions[0].tuning).toEqual({ mode: "shared", scoring: "accuracy", cv: 3, refit: true, best_params_: report.tuning!.candidates[argmax] });
    const shared = report.tuning!.shared!.best_params_;
    const ma = parsePartitionedModel(new TextDecoder().decode((await a.blobs.get(keys.partitionedModel(a.submission.runId)))!), "a");
    const mb = parsePartitionedModel(new TextDecoder().decode((await b.blobs.get(keys.partitionedModel(b.submission.runId)))!), "b");
    expect(Object.values(mb.partitions).map((p) => p.sha256)).toEqual(Object.values(ma.partitions).map((p) => p.sha256));
    for (const [key, ref] of Object.entries(ma.partitions)) {
      const alone = await trainedAlone(partitionRows(t, key), finalSpec({ base: partitionMemberSpec(parseBuildSpec(base()), "store") }, shared));
      expect(ref.sha256, key).toBe(alone.sha256);
    }
  });

  it("--no-refit ranks every partition and ends there: one notification, no model", { timeout: 120_000 }, async () => {
    const t = table();
    const r = await tuned(csv(t), study({}, { refit: undefined }), "independent", 2);
    await r.drain(2);
    expect(r.notifier.partitions).toHaveLength(1);
    const n = r.notifier.partitions[0];
    expect(n.modelKey).toBeUndefined();
    expect(await r.blobs.get(keys.partitionedModel(r.submission.runId))).toBeUndefined();
    const report = (await read(r.blobs, keys.partitionReport(r.submission.runId))) as PartitionReport;
    expect(report.tuning!.partitions).toHaveLength(3);
    for (const p of report.tuning!.partitions) expect(p.candidates[p.best_index_].rank_test_score).toBe(1);
  });

  it("a run whose tasks were lost is resumed to the same models", { timeout: 120_000 }, async () => {
    const data = csv(table());
    const a = await tuned(data, study(), "independent");
    await a.drain();
    const b = await tuned(data, study(), "independent");
    b.queue.drain(); // lost
    await resumePartitionedRun(b.submission.runId, b.ports);
    await b.drain();
    expect(b.notifier.partitions).toHaveLength(1);
    expect(await b.blobs.get(keys.partitionedModel(b.submission.runId))).toEqual(await a.blobs.get(keys.partitionedModel(a.submission.runId)));
  });

  it("refuses a search over the limits up front, naming the numbers", async () => {
    const p = pipeline();
    const s = parseStudySpec({ base: base({ n_estimators: 1000, grove_size: 1 }), grid: { max_depth: [1, 2, 3, 4, 5] }, cv: 10 });
    const prepared = await preparePartitions(s.base, options, csvTable(csv(table())), p.blobs);
    await expect(submitPartitionTuning(s, options, "independent", p.ports, prepared)).rejects.toThrow(/3 partitions x 5 candidates x 10 folds = 150 builds of 1000 groves \(150000 groves\); a tuned partitioned run is at most 10000 builds/);
  });

  it("its notification, ranked with a model or rankings only, is valid against schemas/partitions-notification.v1.json", { timeout: 120_000 }, async () => {
    const { validate } = await import("../../../test/json-schema.ts");
    const schema = JSON.parse(readFileSync(new URL("../../../schemas/partitions-notification.v1.json", import.meta.url), "utf8"));
    const data = csv(table());
    const refit = await tuned(data, study({}, { oob: true, cv: undefined } as never), "shared");
    await refit.drain();
    const ranked = await tuned(data, study({}, { refit: undefined }), "independent");
    await ranked.drain();
    const [withModel] = refit.notifier.partitions;
    const [rankingsOnly] = ranked.notifier.partitions;
    expect(withModel.tuning).toMatchObject({ mode: "shared", oob: true, refit: true });
    expect(rankingsOnly.tuning).toMatchObject({ mode: "independent", cv: 3, refit: false });
    for (const n of [withModel, rankingsOnly]) {
      expect(validate(n, schema)).toEqual([]);
      expect(Object.keys(n.tuning!).filter((k) => !(k in schema.properties.tuning.properties))).toEqual([]);
    }
    // A run that trained models must name its model; only rankings-only may leave it out.
    const { modelKey: _m, ...withoutModel } = withModel;
    expect(validate(withoutModel, schema)).toEqual(["$: missing modelKey"]);
  });

  it("--fallback global: the fallback is trained in the final stage, untuned: the run's own options (independent) or the shared pick", { timeout: 120_000 }, async () => {
    const t = table();
    const all = csv(t);
    const withFallback = { ...options, fallback: "global" as const };
    const member = partitionMemberSpec(parseBuildSpec(base()), "store");
    for (const mode of ["independent", "shared"] as const) {
      const r = await tuned(all, study(), mode, 1, withFallback);
      await r.drain();
      expect(r.notifier.partitions).toHaveLength(1);
      expect(r.notifier.partitions[0]).toMatchObject({ fallback: true, counts: { completed: 3 } });
      const report = (await read(r.blobs, keys.partitionReport(r.submission.runId))) as PartitionReport;
      // The tuning stage tunes the partitions only: 3 x 4 candidates x 3 folds.
      expect(report.tuning!.builds.total).toBe(36);
      const params = mode === "shared" ? report.tuning!.shared!.best_params_ : {};
      const model = parsePartitionedModel(new TextDecoder().decode((await r.blobs.get(keys.partitionedModel(r.submission.runId)))!), mode);
      const alone = await trainedAlone(all, finalSpec({ base: member }, params));
      expect(model.fallback!.sha256, mode).toBe(alone.sha256);
    }
  });

  it("a tuning aggregator that dies after starting the final stage is reopened: it keeps the ranking that landed; one notification, the same models", { timeout: 120_000 }, async () => {
    const data = csv(table());
    const clean = await tuned(data, study(), "independent");
    await clean.drain();
    const clock = tickingClock();
    const blobs = new MemoryBlobStore();
    const ledger = new MemoryLedger({ clock });
    const queue = new MemoryQueue();
    const notifier = new MemoryNotifier();
    let runId = "";
    let dead = false;
    let died!: () => void;
    const death = new Promise<void>((resolve) => (died = resolve));
    // The first aggregator of the tuning record hangs where it would complete the record (its process died there).
    const dying = Object.create(ledger, {
      complete: {
        value: (id: string, result: Parameters<MemoryLedger["complete"]>[1]) => {
          if (id !== runId || dead) return ledger.complete(id, result);
          dead = true;
          died();
          return new Promise<boolean>(() => {});
        },
      },
    }) as MemoryLedger;
    const work: Promise<unknown>[] = [];
    ledger.watch((c) => {
      if (!isAggregationTrigger(c)) return;
      const id = c.new.buildId;
      const running = isPartitionRunId(id) ? aggregatePartitionedRun(id, { blobs, ledger: dying, notifier, queue, clock }) : aggregate(id, { blobs, ledger, notifier, clock });
      // The dying one is waited for up to its death (it never ends).
      work.push(id === runId && !dead ? death : running);
    });
    const drain = () => drainAll(queue, work, { blobs, ledger });
    const prepared = await preparePartitions(study().base, options, csvTable(data), blobs);
    ({ runId } = await submitPartitionTuning(study(), options, "independent", { blobs, ledger, queue, clock }, prepared));
    expect(runId).toBe(clean.submission.runId);
    await drain();
    expect(dead).toBe(true);
    // The final stage ran on: its notification is the run's; the tuning record waits, claimed by the dead aggregator.
    expect(notifier.partitions).toHaveLength(1);
    expect((await ledger.summary(runId))?.status).toBe("AGGREGATING");
    const ranked = await blobs.get(keys.partitionTuning(runId));
    await resumePartitionedRun(runId, { blobs, ledger, queue, clock }, { aggregationLeaseMs: 0 });
    await drain();
    const record = (await ledger.summary(runId))!;
    expect(record.status).toBe("COMPLETED");
    expect(isPartitionRunId(record.result!.metrics!.next_round as string)).toBe(true);
    expect(await blobs.get(keys.partitionTuning(runId))).toEqual(ranked);
    expect(notifier.partitions).toHaveLength(1);
    expect(await blobs.get(keys.partitionedModel(runId))).toEqual(await clean.blobs.get(keys.partitionedModel(runId)));
    expect(await readPartitionView({ blobs, ledger }, runId)).toMatchObject({ summary: { status: "COMPLETED" }, final: { builds: { total: 3, done: 3 } } });
  });

  it("the sweeper lands a final build a crash left unlanded in the final stage; the run completes with one notification", { timeout: 120_000 }, async () => {
    const clock = tickingClock();
    const blobs = new MemoryBlobStore();
    const ledger = new MemoryLedger({ clock });
    const queue = new MemoryQueue();
    const notifier = new MemoryNotifier();
    let runId = "";
    // The builds' aggregator dies right after completing a final build: landing it in the final stage throws.
    const crashing = Object.create(ledger, {
      landGrove: { value: (id: string, g: number, st: Parameters<MemoryLedger["landGrove"]>[2]) => (isPartitionRunId(id) && id !== runId ? Promise.reject(new Error("killed")) : ledger.landGrove(id, g, st)) },
    }) as MemoryLedger;
    const work: Promise<unknown>[] = [];
    ledger.watch((c) => {
      if (!isAggregationTrigger(c)) return;
      const id = c.new.buildId;
      work.push((isPartitionRunId(id) ? aggregatePartitionedRun(id, { blobs, ledger, notifier, queue, clock }) : aggregate(id, { blobs, ledger: crashing, notifier, clock })).catch(() => "crashed"));
    });
    const prepared = await preparePartitions(study().base, options, csvTable(csv(table())), blobs);
    ({ runId } = await submitPartitionTuning(study(), options, "independent", { blobs, ledger, queue, clock }, prepared));
    await drainAll(queue, work, { blobs, ledger });
    const stage = (await ledger.summary(runId))!.result!.metrics!.next_round as string;
    const stuck = (await ledger.summary(stage))!;
    // The ranking landed; the three final builds completed but did not land.
    expect(stuck).toMatchObject({ status: "TRAINING", remaining: 3 });
    expect(notifier.partitions).toHaveLength(0);
    const [result] = await sweepBuilds([stage], { stallMs: 60_000, leaseMs: 60_000 }, { ledger, notifier, blobs, queue, queueState: async () => ({ busy: false }), clock: { now: () => stuck.updatedAt + 120_000 } });
    expect(result).toMatchObject({ buildId: stage, action: "settle", detail: expect.stringMatching(/landed 3$/) });
    while (work.length > 0) await work.shift();
    expect(notifier.partitions).toHaveLength(1);
    expect(notifier.partitions[0]).toMatchObject({ type: "partitions.completed", runId });
  });
});
