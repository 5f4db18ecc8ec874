import { describe, expect, it } from "vitest";
import { aggregate } from "../src/aggregate.ts";
import { keys } from "../src/keys.ts";
import { isAggregationTrigger } from "../src/ledger.ts";
import { parseBuildSpec, prepareBuildData, resumeStudy, submitStudy } from "../src/index.ts";
import type { GroveTask } from "../src/task.ts";
import { aggregateStudy, rankCandidates, settleStudy, topCandidates } from "../src/study.ts";
import { halvingRounds, parseStudySpec, planStudy, studyCandidates, studyRounds, STUDY_LIMITS } from "../src/study-spec.ts";
import type { StudyReport } from "../src/study-report.ts";
import { trainGrove } from "../src/train-grove.ts";
import { isStudyId } from "../src/keys.ts";
import { MemoryBlobStore, MemoryLedger, MemoryNotifier, MemoryQueue } from "../src/testing/index.ts";
import { fixture, tickingClock } from "./support.ts";

/** Memory ports where every trigger (a build's or a study's) runs its aggregator `deliveries` times. */
function studyPipeline(deliveries = 1) {
  const clock = tickingClock();
  const blobs = new MemoryBlobStore();
  const ledger = new MemoryLedger({ clock });
  const queue = new MemoryQueue();
  const notifier = new MemoryNotifier();
  const work: Promise<unknown>[] = [];
  ledger.watch((change) => {
    if (!isAggregationTrigger(change)) return;
    const id = change.new.buildId;
    for (let i = 0; i < deliveries; i++)
      work.push(isStudyId(id) ? aggregateStudy(id, { blobs, ledger, notifier, queue, clock }) : aggregate(id, { blobs, ledger, notifier, clock }));
  });
  /** Trains every queued task (`train` may do otherwise with one) and runs the aggregations, until nothing is left. */
  const drain = async (order: (n: number) => number[] = (n) => [...Array(n).keys()], copies = 1, train: (task: GroveTask) => Promise<unknown> = (t) => trainGrove(t, { blobs, ledger })) => {
    for (;;) {
      const tasks = queue.drain();
      if (tasks.length === 0 && work.length === 0) return;
      for (const i of order(tasks.length)) for (let c = 0; c < copies; c++) await train(tasks[i]);
      while (work.length > 0) await work.shift();
    }
  };
  return { clock, blobs, ledger, queue, notifier, drain };
}

const base = { dataset: "iris.csv", label: "species", n_estimators: 12, grove_size: 4, seed: 3 };

describe("study spec", () => {
  it("expands a grid as sklearn's ParameterGrid: names sorted, the last varying fastest", () => {
    const spec = parseStudySpec({ base, grid: { max_features: ["sqrt", 0.5], max_depth: [2, null, 8] }, cv: 3 });
    expect(studyCandidates(spec)).toEqual([
      { max_depth: 2, max_features: "sqrt" },
      { max_depth: 2, max_features: 0.5 },
      { max_depth: null, max_features: "sqrt" },
      { max_depth: null, max_features: 0.5 },
      { max_depth: 8, max_features: "sqrt" },
      { max_depth: 8, max_features: 0.5 },
    ]);
  });

  it("refuses a key that is not a forest option, a value of the wrong type, an empty grid, a scoring for the other task", () => {
    expect(() => parseStudySpec({ base, grid: { n_trees: [1] } })).toThrow(/grid.n_trees: "n_trees" is not a forest option/);
    expect(() => parseStudySpec({ base, grid: { max_depth: [2, "deep"] } })).toThrow(/max_depth: .*\(candidate max_depth=deep\)/);
    expect(() => parseStudySpec({ base, grid: {} })).toThrow(/grid: is empty/);
    expect(() => parseStudySpec({ base, grid: { max_depth: [] } })).toThrow(/grid.max_depth: must be a non-empty list/);
    expect(() => parseStudySpec({ base })).toThrow(/needs a search space/);
    expect(() => parseStudySpec({ base, grid: { max_depth: [2] }, scoring: "r2" }, "classification")).toThrow(/r2 does not score classification/);
    expect(() => parseStudySpec({ base, grid: { max_depth: [2] }, scoring: "auc" })).toThrow(/scoring: must be one of/);
    expect(() => parseStudySpec({ base, grid: { max_depth: [2] }, cv: 1 })).toThrow(/cv: must be an integer 2..20/);
  });

  it("states the cap in builds and groves and refuses a study over it before writing anything", () => {
    const spec = parseStudySpec({ base: { ...base, n_estimators: 1000, grove_size: 1 }, grid: { max_depth: Array.from({ length: 40 }, (_, i) => i + 1) }, cv: 5 });
    expect(() => planStudy(spec, { hash: "c".repeat(64), nRows: 150, target: { task: "classification" } })).toThrow(
      new RegExp(`40 candidates x 5 folds x 1000 groves = 200 builds and 200000 groves; a study is at most ${STUDY_LIMITS.maxBuilds} builds and ${STUDY_LIMITS.maxGroves} groves`),
    );
  });

  it("draws random candidates reproducibly from the seed", () => {
    const random = { n_iter: 5, params: { min_samples_leaf: { int: [1, 20] }, max_features: { values: ["sqrt", 0.5] } } };
    const a = studyCandidates(parseStudySpec({ base, random }));
    expect(a).toEqual(studyCandidates(parseStudySpec({ base, random })));
    expect(a).toHaveLength(5);
    for (const p of a) expect(p.min_samples_leaf as number).toBeGreaterThanOrEqual(1);
    expect(studyCandidates(parseStudySpec({ base: { ...base, seed: 4 }, random }))).not.toEqual(a);
  });
});

describe("rankCandidates (sklearn 1.9.1's rank_test_score)", () => {
  it("ranks by mean with ties at the lowest rank, NaN last, the first rank 1 best", () => {
    const r = rankCandidates([[0.5, 0.25], [0.25, 0.5], [Number.NaN, 1], [1, 0.5]]);
    expect(r.mean[0]).toBe(0.375);
    expect(r.std[0]).toBe(0.125);
    expect(r.rank).toEqual([2, 2, 4, 1]);
    expect(r.best).toBe(3);
    expect(rankCandidates([[Number.NaN], [Number.NaN]]).rank).toEqual([1, 1]);
  });
});

async function runStudy(order?: (n: number) => number[], copies = 1, deliveries = 1) {
  const p = studyPipeline(deliveries);
  const spec = parseStudySpec({ base, grid: { max_depth: [1, null], max_features: ["sqrt", 1.0] }, cv: 3 });
  const prepared = await prepareBuildData(spec.base, fixture("iris"), p.blobs, { clock: p.clock });
  const submission = await submitStudy(spec, p, prepared);
  await p.drain(order, copies);
  return { ...p, submission };
}

describe("a study with the memory ports", () => {
  it("counts its builds exactly once and ends with one ranked study notification", async () => {
    const { submission, ledger, notifier, blobs } = await runStudy(undefined, 2, 2);
    const { studyId, manifest } = submission;
    expect(manifest.members).toHaveLength(12);
    const study = await ledger.get(studyId);
    expect(study).toMatchObject({ status: "COMPLETED", total: 12, remaining: 0, landedCount: 12, failedCount: 0, claims: 1 });
    expect(notifier.studies).toHaveLength(1);
    expect(notifier.published).toHaveLength(12);
    const report = JSON.parse(new TextDecoder().decode(await blobs.get(keys.studyReport(studyId)))) as StudyReport;
    expect(report.candidates.map((c) => c.rank_test_score).sort()).toContain(1);
    // Each candidate's fold scores are its builds' held-out accuracies on their folds.
    for (const c of report.candidates)
      for (const [fold, buildId] of c.buildIds.entries()) {
        const build = await ledger.summary(buildId);
        expect(build?.memberOf).toEqual({ id: studyId, member: c.index * 3 + fold });
        expect(c.split_test_scores[fold]).toBe(build?.result?.metrics?.accuracy);
      }
    expect(notifier.studies[0]).toMatchObject({ type: "study.completed", studyId, best_params_: report.best_params_, best_score_: report.best_score_, candidates: 4, cv: 3 });
  });

  it("gives the same members, models and ranking whatever the delivery order and duplicates", async () => {
    const a = await runStudy();
    const b = await runStudy((n) => [...Array(n).keys()].reverse(), 2, 2);
    expect(b.submission.studyId).toBe(a.submission.studyId);
    const ra = JSON.parse(new TextDecoder().decode(await a.blobs.get(keys.studyReport(a.submission.studyId))));
    const rb = JSON.parse(new TextDecoder().decode(await b.blobs.get(keys.studyReport(b.submission.studyId))));
    expect(rb.candidates.map((c: { mean_test_score: number }) => c.mean_test_score)).toEqual(ra.candidates.map((c: { mean_test_score: number }) => c.mean_test_score));
    for (const m of a.submission.manifest.members) expect(await b.blobs.get(keys.model(m.buildId))).toEqual(await a.blobs.get(keys.model(m.buildId)));
  });

  it("lands builds that exist already (another study's) and trains only the new ones", async () => {
    const p = studyPipeline();
    const first = parseStudySpec({ base, grid: { max_depth: [1, 3] }, cv: 2 });
    const prepared = await prepareBuildData(first.base, fixture("iris"), p.blobs, { clock: p.clock });
    const a = await submitStudy(first, p, prepared);
    await p.drain();
    const second = await submitStudy(parseStudySpec({ base, grid: { max_depth: [1, 3, 5] }, cv: 2 }), p, prepared);
    expect(second.studyId).not.toBe(a.studyId);
    // Only max_depth=5's two folds are new; the four others landed in the new study at submission.
    expect(second.submitted).toHaveLength(2);
    expect((await p.ledger.summary(second.studyId))?.landedCount).toBe(4);
    await p.drain();
    expect(await p.ledger.summary(second.studyId)).toMatchObject({ status: "COMPLETED", landedCount: 6 });
    expect(p.notifier.studies.map((n) => n.studyId)).toEqual([a.studyId, second.studyId]);
    // The same study spec again: nothing new is queued, it is found finished.
    expect(await submitStudy(first, p, prepared)).toMatchObject({ created: false, submitted: [] });
    expect(p.queue.messages).toHaveLength(0);
    expect(await settleStudy(a.studyId, p)).toBe(0);
    expect((await resumeStudy(a.studyId, p)).status).toBe("COMPLETED");
  });

  it("resumes a study interrupted part-way into the same ranking", async () => {
    const reference = await runStudy();
    const p = studyPipeline();
    const spec = parseStudySpec({ base, grid: { max_depth: [1, null], max_features: ["sqrt", 1.0] }, cv: 3 });
    const prepared = await prepareBuildData(spec.base, fixture("iris"), p.blobs, { clock: p.clock });
    const { studyId } = await submitStudy(spec, p, prepared);
    const tasks = p.queue.drain();
    // Half the groves train, the rest are lost with their messages.
    for (const t of tasks.slice(0, tasks.length / 2)) await trainGrove(t, { blobs: p.blobs, ledger: p.ledger });
    const resumed = await resumeStudy(studyId, p);
    expect(resumed.resumed.length).toBeGreaterThan(0);
    await p.drain();
    const a = JSON.parse(new TextDecoder().decode(await reference.blobs.get(keys.studyReport(studyId))));
    const b = JSON.parse(new TextDecoder().decode(await p.blobs.get(keys.studyReport(studyId))));
    expect(b.best_params_).toEqual(a.best_params_);
    expect(b.candidates.map((c: { split_test_scores: number[] }) => c.split_test_scores)).toEqual(a.candidates.map((c: { split_test_scores: number[] }) => c.split_test_scores));
    expect(p.notifier.studies).toHaveLength(1);
  });
});

describe("the study notification", () => {
  it("is valid against schemas/study-notification.v1.json, completed or failed, and declares every field it has", async () => {
    const { readFileSync } = await import("node:fs");
    const { validate } = await import("../../../test/json-schema.ts");
    const schema = JSON.parse(readFileSync(new URL("../../../schemas/study-notification.v1.json", import.meta.url), "utf8"));
    const { notifier, ledger } = await runStudy();
    const ledgerOf = (_: unknown, id: string) => ledger.summary(id);
    const done = notifier.studies[0];
    const { studyFailedNotification } = await import("../src/study-report.ts");
    const summary = (await ledgerOf(notifier, done.studyId))!;
    const failed = studyFailedNotification(summary, "study aggregation failed: every candidate failed");
    for (const n of [done, failed]) {
      expect(validate(n, schema)).toEqual([]);
      expect(Object.keys(n).filter((k) => !(k in schema.properties))).toEqual([]);
    }
    expect(validate({ ...done, studyId: "b-0123456789abcdef" }, schema)).not.toEqual([]);
    const { ranking: _r, ...withoutRanking } = done;
    expect(validate(withoutRanking, schema)).toEqual(["$: missing ranking"]);
  });
});

describe("the sweeper never loses a study", () => {
  it("lands the member builds a crash left unlanded (after their completion), and the study finishes", async () => {
    const { sweepBuilds, studySweepDecision } = await import("../src/sweep.ts");
    const clock = tickingClock();
    const blobs = new MemoryBlobStore();
    const ledger = new MemoryLedger({ clock });
    const queue = new MemoryQueue();
    const notifier = new MemoryNotifier();
    // The builds' aggregator dies right after completing each build: landing it in the study throws.
    const crashing = Object.create(ledger, {
      landGrove: { value: (id: string, g: number, s: Parameters<MemoryLedger["landGrove"]>[2]) => (isStudyId(id) ? Promise.reject(new Error("killed")) : ledger.landGrove(id, g, s)) },
    }) as MemoryLedger;
    const work: Promise<unknown>[] = [];
    ledger.watch((c) => {
      if (!isAggregationTrigger(c)) return;
      const id = c.new.buildId;
      work.push((isStudyId(id) ? aggregateStudy(id, { blobs, ledger, notifier, clock }) : aggregate(id, { blobs, ledger: crashing, notifier, clock })).catch(() => "crashed"));
    });
    const spec = parseStudySpec({ base, grid: { max_depth: [1, 3] }, cv: 2 });
    const prepared = await prepareBuildData(spec.base, fixture("iris"), blobs, { clock });
    const { studyId, manifest } = await submitStudy(spec, { blobs, ledger, queue, clock }, prepared);
    for (const t of queue.drain()) await trainGrove(t, { blobs, ledger });
    while (work.length > 0) await work.shift();
    for (const m of manifest.members) expect((await ledger.summary(m.buildId))?.status).toBe("COMPLETED");
    const stuck = (await ledger.summary(studyId))!;
    expect(stuck).toMatchObject({ status: "TRAINING", remaining: 4 });
    const policy = { stallMs: 60_000, leaseMs: 60_000 };
    // Within stallMs of its last write the study is left alone; after it, the finished members are landed.
    expect(studySweepDecision(stuck, stuck.updatedAt + 1000, policy).action).toBe("none");
    const late = { now: () => stuck.updatedAt + 120_000 };
    const [result] = await sweepBuilds([studyId], policy, { ledger, notifier, blobs, queue, queueState: async () => ({ busy: false }), clock: late });
    expect(result).toMatchObject({ buildId: studyId, action: "settle", detail: expect.stringMatching(/landed 4$/) });
    while (work.length > 0) await work.shift();
    expect((await ledger.summary(studyId))?.status).toBe("COMPLETED");
    expect(notifier.studies).toHaveLength(1);
    // Nothing was re-queued: a study's members are builds, swept on their own.
    expect(queue.messages).toHaveLength(0);
  });
});

describe("successive halving over trees", () => {
  it("plans the rounds as scikit-learn 1.9.1's HalvingGridSearchCV (min_resources exhaust, factor 3)", () => {
    // 12 candidates, 100 trees: n_required 3, min 100 // 9 = 11; rounds 11, 33, 99 trees for 12, 4, 2 candidates.
    expect(halvingRounds(12, 100, 3)).toEqual([
      { trees: 11, candidates: 12 },
      { trees: 33, candidates: 4 },
      { trees: 99, candidates: 2 },
    ]);
    expect(halvingRounds(8, 40, 2, 5)).toEqual([
      { trees: 5, candidates: 8 },
      { trees: 10, candidates: 4 },
      { trees: 20, candidates: 2 },
      { trees: 40, candidates: 1 },
    ]);
    // Too few trees to halve as often as the candidates would need: the rounds the trees allow.
    expect(halvingRounds(27, 9, 3, 3)).toEqual([
      { trees: 3, candidates: 27 },
      { trees: 9, candidates: 9 },
    ]);
    expect(() => parseStudySpec({ base, grid: { max_depth: [1] }, halving: { factor: 3 } })).toThrow(/halving: 1 candidates and 12 trees make one round/);
  });

  it("keeps the best third each round and extends their builds, nothing retrained: the survivors' forests are the fresh full-size builds' bytes", async () => {
    const p = studyPipeline();
    const spec = parseStudySpec({ base: { ...base, n_estimators: 18, grove_size: 2 }, grid: { max_depth: [1, 2, null], min_samples_leaf: [1, 4, 8] }, cv: 2, halving: { factor: 3, min_resources: 2 } });
    // 9 candidates, 18 trees from 2: rounds of 2, 6 and 18 trees for 9, 3 and 1 candidates.
    expect(studyRounds(spec)).toEqual([
      { trees: 2, candidates: 9 },
      { trees: 6, candidates: 3 },
      { trees: 18, candidates: 1 },
    ]);
    const prepared = await prepareBuildData(spec.base, fixture("iris"), p.blobs, { clock: p.clock });
    const { studyId } = await submitStudy(spec, p, prepared);
    await p.drain();
    expect(p.notifier.studies).toHaveLength(1);
    expect(p.notifier.studies[0].type, p.notifier.studies[0].reason).toBe("study.completed");
    const report = JSON.parse(new TextDecoder().decode(await p.blobs.get(keys.studyReport(studyId)))) as StudyReport;
    expect(report.rounds!.map((r) => [r.trees, r.candidates.length])).toEqual([[2, 9], [6, 3], [18, 1]]);
    // Each round's survivors are the previous round's best.
    for (let i = 1; i < 3; i++) expect(report.rounds![i].candidates.map((c) => c.index)).toEqual(topCandidates(report.rounds![i - 1].candidates, report.rounds![i].candidates.length));
    expect(report.best_index_).toBe(report.rounds![2].candidates[0].index);
    expect(report.builds).toEqual({ total: 18 + 6 + 2, completed: 26, failed: 0 });
    // The best's 18-tree fold builds were extended (groves copied) and are the bytes a fresh 18-tree build gives.
    const fresh = studyPipeline();
    const freshPrepared = await prepareBuildData(spec.base, fixture("iris"), fresh.blobs, { clock: fresh.clock });
    for (const [fold, buildId] of report.candidates[0].buildIds.entries()) {
      const manifest = JSON.parse(new TextDecoder().decode(await p.blobs.get(keys.spec(buildId))));
      expect(manifest.extends.trees).toBe(6);
      const { submitBuild } = await import("../src/submit.ts");
      const { candidateSpec } = await import("../src/study-spec.ts");
      const s = await submitBuild(candidateSpec(spec, report.best_params_, { n_splits: 2, fold }, 18), fresh, freshPrepared);
      expect(s.buildId).toBe(buildId);
      await fresh.drain();
      expect(await fresh.blobs.get(keys.model(buildId))).toEqual(await p.blobs.get(keys.model(buildId)));
    }
    // The study record is round 0's; the view follows the rounds to the last.
    const { readStudyView } = await import("../src/study.ts");
    expect(await readStudyView(p, studyId)).toMatchObject({ round: 2, builds: { total: 2, done: 2 }, report: { best_index_: report.best_index_ } });
  });
});

describe("a study scored out of bag (oob)", () => {
  it("refuses folds next to oob, neg_log_loss out of bag, and oob without the bootstrap", () => {
    expect(() => parseStudySpec({ base, grid: { max_depth: [1, 2] }, oob: true, cv: 3 })).toThrow(/--cv and --oob are exclusive/);
    expect(() => parseStudySpec({ base, grid: { max_depth: [1, 2] }, oob: true, scoring: "neg_log_loss" })).toThrow(/--scoring neg_log_loss and --oob do not go together/);
    expect(() => parseStudySpec({ base: { ...base, bootstrap: false }, grid: { max_depth: [1, 2] }, oob: true })).toThrow(/oob: needs the bootstrap/);
    const spec = parseStudySpec({ base, grid: { max_depth: [1, 2] }, oob: true });
    expect(spec).toMatchObject({ oob: true, cv: 1 });
    // A parsed spec parses again to itself (the runtimes check it once more against the data's task).
    expect(parseStudySpec(spec, "classification")).toEqual(spec);
  });

  async function oobStudy(scoring: "accuracy" | "f1_macro", copies = 1, deliveries = 1) {
    const p = studyPipeline(deliveries);
    const spec = parseStudySpec({ base, grid: { max_depth: [1, null], max_features: ["sqrt", 1.0] }, oob: true, scoring });
    const prepared = await prepareBuildData(spec.base, fixture("iris"), p.blobs, { clock: p.clock });
    const submission = await submitStudy(spec, p, prepared);
    await p.drain(undefined, copies);
    const report = JSON.parse(new TextDecoder().decode(await p.blobs.get(keys.studyReport(submission.studyId)))) as StudyReport;
    return { ...p, submission, report, prepared };
  }

  it("is one build per candidate over the training rows with oob_score, ranked by its oob_score_", async () => {
    const { submission, report, ledger, blobs, notifier } = await oobStudy("accuracy", 2, 2);
    expect(submission.manifest.members).toHaveLength(4);
    expect(report.builds).toEqual({ total: 4, completed: 4, failed: 0 });
    for (const c of report.candidates) {
      expect(c.buildIds).toHaveLength(1);
      const [buildId] = c.buildIds;
      expect(await ledger.summary(buildId)).toMatchObject({ memberOf: { id: submission.studyId, member: c.index } });
      const manifest = JSON.parse(new TextDecoder().decode(await blobs.get(keys.spec(buildId))));
      expect(manifest.spec).toMatchObject({ oob_score: true, test_fraction: 0.25 });
      expect(manifest.spec.cv).toBeUndefined();
      const build = JSON.parse(new TextDecoder().decode(await blobs.get(keys.report(buildId))));
      // Scored by its out-of-bag rows, never by the held-out split.
      expect(c.split_test_scores).toEqual([build.oob_score]);
      expect(c.mean_test_score).toBe(build.oob_score);
      expect(c.std_test_score).toBe(0);
    }
    const means = report.candidates.map((c) => [c.mean_test_score]);
    expect(report.candidates.map((c) => c.rank_test_score)).toEqual(rankCandidates(means).rank);
    expect(notifier.studies).toHaveLength(1);
    expect(notifier.studies[0]).toMatchObject({ type: "study.completed", oob: true, cv: 1, candidates: 4, best_score_: report.best_score_ });
    const { readFileSync } = await import("node:fs");
    const { validate } = await import("../../../test/json-schema.ts");
    const schema = JSON.parse(readFileSync(new URL("../../../schemas/study-notification.v1.json", import.meta.url), "utf8"));
    expect(validate(notifier.studies[0], schema)).toEqual([]);
  });

  it("scores f1_macro on the out-of-bag decision function (oob.bin), as sklearn's callable oob_score", async () => {
    const { report, blobs, prepared } = await oobStudy("f1_macro");
    const { decodeOobDecision } = await import("../src/oob.ts");
    const { classificationMetrics } = await import("@canopy/forest");
    const target = prepared.pack.target;
    if (target.task !== "classification") throw new Error("iris is a classification table");
    for (const c of report.candidates) {
      const d = decodeOobDecision((await blobs.get(keys.oob(c.buildIds[0])))!);
      const f1 = classificationMetrics(Uint16Array.from(d.rows, (r) => target.codes[r]), d.values, target.classes).macro_f1;
      expect(c.split_test_scores).toEqual([f1]);
    }
  });

  it("halves over trees out of bag: the survivors' builds are extended and equal fresh oob builds", async () => {
    const p = studyPipeline();
    const spec = parseStudySpec({ base: { ...base, n_estimators: 18, grove_size: 2 }, grid: { max_depth: [1, 2, null], min_samples_leaf: [1, 4, 8] }, oob: true, halving: { factor: 3, min_resources: 2 } });
    const prepared = await prepareBuildData(spec.base, fixture("iris"), p.blobs, { clock: p.clock });
    const { studyId } = await submitStudy(spec, p, prepared);
    await p.drain();
    expect(p.notifier.studies.map((n) => n.type)).toEqual(["study.completed"]);
    const report = JSON.parse(new TextDecoder().decode(await p.blobs.get(keys.studyReport(studyId)))) as StudyReport;
    expect(report.rounds!.map((r) => [r.trees, r.candidates.length])).toEqual([[2, 9], [6, 3], [18, 1]]);
    expect(report.builds).toEqual({ total: 9 + 3 + 1, completed: 13, failed: 0 });
    // Each round's score is the candidate's OOB score at that round's trees.
    for (const round of report.rounds!)
      for (const c of round.candidates) {
        const build = JSON.parse(new TextDecoder().decode(await p.blobs.get(keys.report(c.buildIds[0]))));
        expect(build.model.trees).toBe(round.trees);
        expect(c.split_test_scores).toEqual([build.oob_score]);
      }
    const [best] = report.candidates[0].buildIds;
    const fresh = studyPipeline();
    const { submitBuild } = await import("../src/submit.ts");
    const { memberSpec } = await import("../src/study-spec.ts");
    const s = await submitBuild(memberSpec(spec, report.best_params_, 0), fresh, await prepareBuildData(spec.base, fixture("iris"), fresh.blobs, { clock: fresh.clock }));
    expect(s.buildId).toBe(best);
    await fresh.drain();
    expect(await fresh.blobs.get(keys.model(best))).toEqual(await p.blobs.get(keys.model(best)));
    expect(await fresh.blobs.get(keys.oob(best))).toEqual(await p.blobs.get(keys.oob(best)));
  });
});

describe("an out-of-bag halving study's final build", () => {
  it("extends the best candidate's last-round build when that round has fewer trees than the final model: its trees copied, the bytes of a fresh build", async () => {
    const { finalSpec } = await import("../src/study-spec.ts");
    const { readManifest, submitBuild } = await import("../src/submit.ts");
    const p = studyPipeline();
    const spec = parseStudySpec({ base: { ...base, n_estimators: 20, grove_size: 2 }, grid: { max_depth: [1, 2, null], min_samples_leaf: [1, 4, 8] }, oob: true, halving: { factor: 3, min_resources: 2 }, refit: true });
    const prepared = await prepareBuildData(spec.base, fixture("iris"), p.blobs, { clock: p.clock });
    const { studyId } = await submitStudy(spec, p, prepared);
    await p.drain();
    const report = JSON.parse(new TextDecoder().decode(await p.blobs.get(keys.studyReport(studyId)))) as StudyReport;
    expect(report.rounds!.map((r) => r.trees)).toEqual([2, 6, 18]);
    const [lastBest] = report.candidates.find((c) => c.index === report.best_index_)!.buildIds;
    const final = await readManifest(p.blobs, report.final!.buildId);
    expect(final.spec.n_estimators).toBe(20);
    expect(final.extends).toMatchObject({ buildId: lastBest, trees: 18 });
    const fresh = studyPipeline();
    const s = await submitBuild(finalSpec(spec, report.best_params_), fresh, await prepareBuildData(spec.base, fixture("iris"), fresh.blobs, { clock: fresh.clock }));
    expect(s.buildId).toBe(report.final!.buildId);
    await fresh.drain();
    expect(await p.blobs.get(keys.model(s.buildId))).toEqual(await fresh.blobs.get(keys.model(s.buildId)));
    expect(p.notifier.studies.map((n) => n.type)).toEqual(["study.completed"]);
  });
});

describe("the study's final model (refit)", () => {
  const search = { grid: { max_depth: [1, null], max_features: ["sqrt", 1.0] }, cv: 3, refit: true };

  async function refitStudy(p: ReturnType<typeof studyPipeline>, extra: Record<string, unknown> = {}) {
    const spec = parseStudySpec({ base, ...search, ...extra });
    const prepared = await prepareBuildData(spec.base, fixture("iris"), p.blobs, { clock: p.clock });
    const submission = await submitStudy(spec, p, prepared);
    return { spec, prepared, submission };
  }
  const readReport = async (blobs: MemoryBlobStore, studyId: string) => JSON.parse(new TextDecoder().decode((await blobs.get(keys.studyReport(studyId)))!)) as StudyReport;

  it("builds base + best_params_ over the training rows once, evaluates it on the held-out rows, and completes the study with it: one notification", async () => {
    const p = studyPipeline(2);
    const { spec, prepared, submission } = await refitStudy(p);
    await p.drain(undefined, 2);
    const { studyId } = submission;
    const report = await readReport(p.blobs, studyId);
    const { candidateSpec, finalStageIdFor } = await import("../src/study-spec.ts");
    const { buildIdFor } = await import("../src/plan.ts");
    const finalId = buildIdFor(prepared.hash, candidateSpec(spec, report.best_params_));
    const build = await p.ledger.summary(finalId);
    expect(build).toMatchObject({ status: "COMPLETED", memberOf: { id: finalStageIdFor(studyId), member: 0 } });
    const buildReport = JSON.parse(new TextDecoder().decode((await p.blobs.get(keys.report(finalId)))!));
    expect(buildReport).toMatchObject({ finalOf: studyId, spec: { test_fraction: 0.25 }, dataset: { testRows: buildReport.dataset.testRows } });
    expect(buildReport.spec.cv).toBeUndefined();
    expect(report.final).toEqual({
      buildId: finalId,
      reportKey: keys.report(finalId),
      modelKey: keys.model(finalId),
      metrics: build!.result!.metrics,
      trainRows: buildReport.dataset.trainRows,
      testRows: buildReport.dataset.testRows,
      model: { bytes: buildReport.model.bytes, trees: 12, nodes: buildReport.model.nodes },
      usd: buildReport.cost.usd.total,
    });
    expect(report.final!.testRows).toBeGreaterThan(0);
    expect(report.builds).toEqual({ total: 12, completed: 12, failed: 0 });
    // One study notification (every trigger delivered twice), after the final build's own build notification.
    expect(p.notifier.studies).toHaveLength(1);
    expect(p.notifier.published.map((n) => n.buildId)).toContain(finalId);
    expect(p.notifier.published).toHaveLength(13);
    expect(p.notifier.studies[0]).toMatchObject({ type: "study.completed", studyId, best_params_: report.best_params_, best_score_: report.best_score_, final: { buildId: finalId, modelKey: keys.model(finalId), metrics: build!.result!.metrics, testRows: report.final!.testRows } });
    const { readFileSync } = await import("node:fs");
    const { validate } = await import("../../../test/json-schema.ts");
    const schema = JSON.parse(readFileSync(new URL("../../../schemas/study-notification.v1.json", import.meta.url), "utf8"));
    expect(validate(p.notifier.studies[0], schema)).toEqual([]);
    expect(Object.keys(p.notifier.studies[0]).filter((k) => !(k in schema.properties))).toEqual([]);
    const { readStudyView } = await import("../src/study.ts");
    expect(await readStudyView(p, studyId)).toMatchObject({ summary: { status: "COMPLETED", buildId: studyId }, builds: { total: 12, done: 12 }, final: { buildId: finalId, status: "COMPLETED" }, report: { final: { buildId: finalId } } });
    // The final model is the bytes `canopy train` of the base spec + best_params_ gives on the same data.
    const fresh = studyPipeline();
    const { submitBuild } = await import("../src/submit.ts");
    // As `canopy train` gets them: an option at its default None (max_depth) is not given.
    const options = Object.fromEntries(Object.entries(report.best_params_).filter(([, v]) => v !== null));
    const trained = await submitBuild(parseBuildSpecOf({ ...base, ...options }), fresh, await prepareBuildData(spec.base, fixture("iris"), fresh.blobs, { clock: fresh.clock }));
    expect(trained.buildId).toBe(finalId);
    await fresh.drain();
    expect(await fresh.blobs.get(keys.model(finalId))).toEqual(await p.blobs.get(keys.model(finalId)));
    // Submitted again: found done, nothing queued, no second notification.
    expect(await submitStudy(spec, p, prepared)).toMatchObject({ created: false, submitted: [] });
    expect((await resumeStudy(studyId, p)).status).toBe("COMPLETED");
    expect(p.queue.messages).toHaveLength(0);
    expect(p.notifier.studies).toHaveLength(1);
  });

  it("out of bag, the final build is the best candidate's own build: nothing more is trained", async () => {
    const p = studyPipeline();
    const spec = parseStudySpec({ base, grid: search.grid, oob: true, refit: true });
    const prepared = await prepareBuildData(spec.base, fixture("iris"), p.blobs, { clock: p.clock });
    const { studyId } = await submitStudy(spec, p, prepared);
    await p.drain();
    const report = await readReport(p.blobs, studyId);
    expect(report.final!.buildId).toBe(report.candidates[report.best_index_].buildIds[0]);
    expect(report.final!.usd).toBe(0);
    expect(report.final!.metrics).toMatchObject({ accuracy: expect.any(Number) });
    expect(p.notifier.published).toHaveLength(4);
    expect(p.notifier.studies.map((n) => n.type)).toEqual(["study.completed"]);
  });

  it("a failed final build fails the study, naming it, with one study.failed", async () => {
    const p = studyPipeline();
    const { submission } = await refitStudy(p);
    const { finalStageIdFor } = await import("../src/study-spec.ts");
    const { failGroveTask } = await import("../src/train-grove.ts");
    const stage = finalStageIdFor(submission.studyId);
    await p.drain(undefined, 1, async (t) =>
      (await p.ledger.summary(t.buildId))?.memberOf?.id === stage ? failGroveTask(t, new Error("injected: the final build's trainer ran out of memory"), p) : trainGrove(t, p),
    );
    expect(p.notifier.studies).toHaveLength(1);
    const n = p.notifier.studies[0];
    expect(n).toMatchObject({ type: "study.failed", studyId: submission.studyId, status: "FAILED" });
    expect(n.reason).toMatch(/the final build failed: build b-[0-9a-f]{16} failed: .*injected: the final build's trainer ran out of memory/);
    const { readStudyView } = await import("../src/study.ts");
    expect((await readStudyView(p, submission.studyId))?.summary.status).toBe("FAILED");
  });

  it("a study whose every build fails ends with one study.failed (the last member's failure fails it: no aggregation follows)", async () => {
    const p = studyPipeline();
    const spec = parseStudySpec({ base, grid: { max_depth: [1, 2] }, cv: 2 });
    const prepared = await prepareBuildData(spec.base, fixture("iris"), p.blobs, { clock: p.clock });
    const { studyId } = await submitStudy(spec, p, prepared);
    const { failGroveTask } = await import("../src/train-grove.ts");
    let last: GroveTask | undefined;
    await p.drain(undefined, 1, (t) => failGroveTask((last = t), new Error("injected: every trainer ran out of memory"), p));
    expect(p.notifier.studies).toHaveLength(1);
    const n = p.notifier.studies[0];
    expect(n).toMatchObject({ type: "study.failed", studyId, status: "FAILED" });
    expect(n.reason).toMatch(/^every build of the study failed \(4 of 4\); the last: build b-[0-9a-f]{16} failed: .*injected: every trainer ran out of memory/);
    // Failing the same builds' groves again (a redelivered dead letter) publishes nothing more.
    await failGroveTask(last!, new Error("again"), p);
    expect(p.notifier.studies).toHaveLength(1);
  });

  it("resume finishes a study whose final build was lost mid-way (its grove messages gone): the same final model", async () => {
    const reference = studyPipeline();
    const ref = await refitStudy(reference);
    await reference.drain();
    const refReport = await readReport(reference.blobs, ref.submission.studyId);
    const p = studyPipeline();
    const { submission } = await refitStudy(p);
    const { finalStageIdFor } = await import("../src/study-spec.ts");
    const stage = finalStageIdFor(submission.studyId);
    // Train everything but the final build: its tasks are lost (a crash took them).
    let lost = 0;
    await p.drain(undefined, 1, async (t) => ((await p.ledger.summary(t.buildId))?.memberOf?.id === stage ? lost++ : trainGrove(t, p)));
    expect(lost).toBeGreaterThan(0);
    expect(p.notifier.studies).toHaveLength(0);
    const { studyHead } = await import("../src/study.ts");
    expect(await studyHead(p.ledger, submission.studyId)).toMatchObject({ id: stage, round: 0, summary: { status: "TRAINING" }, final: { buildId: refReport.final!.buildId } });
    const resumed = await resumeStudy(submission.studyId, p);
    expect(resumed.resumed).toEqual([refReport.final!.buildId]);
    await p.drain();
    const report = await readReport(p.blobs, submission.studyId);
    expect(report.final!.buildId).toBe(refReport.final!.buildId);
    expect(await p.blobs.get(keys.model(report.final!.buildId))).toEqual(await reference.blobs.get(keys.model(report.final!.buildId)));
    expect(p.notifier.studies.map((x) => x.type)).toEqual(["study.completed"]);
  });

  it("resume re-queues a final build whose tasks never reached the queue", async () => {
    const p = studyPipeline();
    const { submission } = await refitStudy(p);
    const { finalStageIdFor } = await import("../src/study-spec.ts");
    const stage = finalStageIdFor(submission.studyId);
    // The queue refuses the final build's tasks once: startBuild wrote its record, its tasks never went out.
    const send = p.queue.send.bind(p.queue);
    let refused = 0;
    p.queue.send = async (tasks) => {
      if (refused === 0 && tasks.length > 0 && (await p.ledger.summary(tasks[0].buildId))?.memberOf?.id === stage) {
        refused++;
        return;
      }
      return send(tasks);
    };
    await p.drain();
    expect(refused).toBe(1);
    expect(p.notifier.studies).toHaveLength(0);
    const resumed = await resumeStudy(submission.studyId, p);
    expect(resumed.resumed).toHaveLength(1);
    await p.drain();
    expect(p.notifier.studies.map((x) => x.type)).toEqual(["study.completed"]);
  });
});

function parseBuildSpecOf(input: Record<string, unknown>) {
  return parseBuildSpec(input);
}

/**
 * A 2 × 2-fold study submitted whole and drained (the reference), and the same study on another pipeline whose
 * submission died after creating two of its four member builds.
 */
async function crashedSubmission() {
  const reference = studyPipeline();
  const spec = parseStudySpec({ base, grid: { max_depth: [1, 3] }, cv: 2, refit: true });
  const ref = await submitStudy(spec, reference, await prepareBuildData(spec.base, fixture("iris"), reference.blobs, { clock: reference.clock }));
  await reference.drain();
  const p = studyPipeline();
  const prepared = await prepareBuildData(spec.base, fixture("iris"), p.blobs, { clock: p.clock });
  let created = 0;
  const dying = Object.create(p.ledger, {
    create: { value: (r: Parameters<MemoryLedger["create"]>[0]) => (!isStudyId(r.buildId) && ++created > 2 ? Promise.reject(new Error("killed")) : p.ledger.create(r)) },
  }) as MemoryLedger;
  await expect(submitStudy(spec, { ...p, ledger: dying }, prepared)).rejects.toThrow("killed");
  return { reference, ref, p };
}

describe("resume after a crashed submission", () => {
  // As for a partitioned run (partitions.test.ts): members a resume submits are not resumed as well.
  it("queues each grove of a member it submits once, and the study ends as an uncrashed one does", async () => {
    const { reference, ref, p } = await crashedSubmission();
    p.queue.messages.splice(0);
    const resumed = await resumeStudy(ref.studyId, p, { aggregationLeaseMs: 0 });
    expect(resumed.submitted).toHaveLength(2);
    const tasks = p.queue.drain();
    for (const buildId of resumed.submitted) {
      const groves = tasks.filter((t) => t.buildId === buildId).map((t) => t.grove);
      expect(groves.length, buildId).toBeGreaterThan(0);
      expect(new Set(groves).size, buildId).toBe(groves.length);
    }
    await p.queue.send(tasks);
    await p.drain();
    const a = JSON.parse(new TextDecoder().decode((await reference.blobs.get(keys.studyReport(ref.studyId)))!)) as StudyReport;
    const b = JSON.parse(new TextDecoder().decode((await p.blobs.get(keys.studyReport(ref.studyId)))!)) as StudyReport;
    expect(b.candidates.map((c) => c.split_test_scores)).toEqual(a.candidates.map((c) => c.split_test_scores));
    expect(p.notifier.studies.map((n) => n.type)).toEqual(["study.completed"]);
  });
});

describe("the sweeper submits what a crash left unsubmitted", () => {
  it("starts the member builds a crashed submission never created (no pack read), and the study finishes as one submitted whole", async () => {
    const { sweepBuilds } = await import("../src/sweep.ts");
    const { reference, ref, p } = await crashedSubmission();
    await p.drain();
    const stuck = (await p.ledger.summary(ref.studyId))!;
    expect(stuck).toMatchObject({ status: "TRAINING", landedCount: 2, remaining: 2 });
    // Hidden from the sweeper: the pack (it reads none).
    const blobs = Object.create(p.blobs, { get: { value: (k: string) => (k.startsWith("packs/") ? Promise.reject(new Error(`read ${k}`)) : p.blobs.get(k)) } }) as MemoryBlobStore;
    const late = { now: () => stuck.updatedAt + 120_000 };
    const [result] = await sweepBuilds([ref.studyId], { stallMs: 60_000, leaseMs: 60_000 }, { ...p, blobs, queueState: async () => ({ busy: false }), clock: late });
    expect(result).toMatchObject({ buildId: ref.studyId, action: "settle", detail: expect.stringMatching(/landed 0; submitted 2 member build\(s\) a crash left unsubmitted: b-/) });
    await p.drain();
    const a = JSON.parse(new TextDecoder().decode((await reference.blobs.get(keys.studyReport(ref.studyId)))!)) as StudyReport;
    const b = JSON.parse(new TextDecoder().decode((await p.blobs.get(keys.studyReport(ref.studyId)))!)) as StudyReport;
    expect(b.candidates.map((c) => c.split_test_scores)).toEqual(a.candidates.map((c) => c.split_test_scores));
    expect(b.final!.buildId).toBe(a.final!.buildId);
    for (const c of b.candidates) for (const id of c.buildIds) expect(await p.blobs.get(keys.model(id))).toEqual(await reference.blobs.get(keys.model(id)));
    expect(p.notifier.studies.map((n) => n.type)).toEqual(["study.completed"]);
  });

  it("starts a final build that was never queued when the final stage stalls", async () => {
    const { submitMissingMembers } = await import("../src/study.ts");
    const { finalStageIdFor } = await import("../src/study-spec.ts");
    const p = studyPipeline();
    const spec = parseStudySpec({ base, grid: { max_depth: [1, 3] }, cv: 2, refit: true });
    const prepared = await prepareBuildData(spec.base, fixture("iris"), p.blobs, { clock: p.clock });
    const { studyId } = await submitStudy(spec, p, prepared);
    // The final build's record is never created: the aggregator died right before.
    const stage = finalStageIdFor(studyId);
    const create = p.ledger.create.bind(p.ledger);
    let refused = false;
    p.ledger.create = async (r) => {
      if (!refused && r.memberOf?.id === stage) {
        refused = true;
        return false; // (as if it had been made: nothing is written)
      }
      return create(r);
    };
    await p.drain();
    expect(refused).toBe(true);
    p.ledger.create = create;
    const head = (await (await import("../src/study.ts")).studyHead(p.ledger, studyId))!;
    expect(head.id).toBe(stage);
    expect(await p.ledger.summary(head.final!.buildId)).toBeUndefined();
    expect(await submitMissingMembers(stage, p)).toEqual([head.final!.buildId]);
    await p.drain();
    expect(p.notifier.studies.map((n) => n.type)).toEqual(["study.completed"]);
  });
});
