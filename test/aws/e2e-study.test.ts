/**
 * A study on moto through the real handlers: 12 candidates x 3 folds of iris (36 builds, 72 groves on one queue) with
 * every grove message delivered twice, ~30% of trainer invocations crashing (before storing, after landing), and every
 * stream record delivered twice: one study notification, and the embedded run's ranking and models.
 */
import { readFileSync } from "node:fs";
import {
  aggregate,
  aggregateStudy,
  isAggregationTrigger,
  isStudyId,
  keys,
  parseStudySpec,
  prepareBuildData,
  submitStudy,
  trainGrove,
  type StudyNotification,
  type StudyReport,
  type StudySpec,
} from "@canopy/core";
import { MemoryBlobStore, MemoryLedger, MemoryNotifier, MemoryQueue } from "@canopy/core/testing";
import { canonicalJson } from "@canopy/core";
import { canopyEventSources, startEmulator, type SnsDelivery } from "@canopy/runtime-aws";
import { expect, it } from "vitest";
import { receiveNotifications, useAwsEmulator } from "./harness.ts";
import { adapters, faultyEmulator, handlersOn, provision } from "./e2e-support.ts";

useAwsEmulator();
const iris = readFileSync(new URL("../fixtures/iris.csv", import.meta.url));
const SPEC = parseStudySpec({
  base: { dataset: "iris.csv", label: "species", n_estimators: 6, grove_size: 3, seed: 11, tags: { suite: "study" } },
  grid: { max_depth: [1, 2, null], max_features: ["sqrt", 0.5], min_samples_leaf: [1, 5] },
  cv: 3,
});

/**
 * The inbox until a study notification arrives, and anything that follows within 3 s: more build notifications (a
 * straggler's), never a second study notification. The study notifications, and how many build notifications came.
 */
async function studyNotifications(inboxUrl: string): Promise<{ studies: SnsDelivery[]; builds: number }> {
  const studies: SnsDelivery[] = [];
  let builds = 0;
  const take = (ds: SnsDelivery[]) => {
    for (const d of ds)
      if ((d.notification as unknown as { type: string }).type.startsWith("study.")) studies.push(d);
      else builds++;
  };
  const deadline = Date.now() + 480_000;
  while (studies.length === 0 && Date.now() < deadline) take(await receiveNotifications(inboxUrl, { count: 10, timeoutMs: 2000 }));
  take(await receiveNotifications(inboxUrl, { count: 50, timeoutMs: 3000 }));
  return { studies, builds };
}

/** The embedded run of a study spec (SPEC) on memory ports: the ranking and models every AWS run must reproduce. */
async function embedded(spec: StudySpec = SPEC) {
  const ports = { blobs: new MemoryBlobStore(), ledger: new MemoryLedger(), queue: new MemoryQueue(), notifier: new MemoryNotifier() };
  const work: Promise<unknown>[] = [];
  ports.ledger.watch((c) => {
    if (isAggregationTrigger(c)) work.push(isStudyId(c.new.buildId) ? aggregateStudy(c.new.buildId, ports) : aggregate(c.new.buildId, ports));
  });
  const prepared = await prepareBuildData(spec.base, iris, ports.blobs);
  const { studyId } = await submitStudy(spec, ports, prepared);
  for (;;) {
    const tasks = ports.queue.drain();
    if (tasks.length === 0 && work.length === 0) break;
    for (const t of tasks) await trainGrove(t, ports);
    while (work.length > 0) await work.shift();
  }
  const report = JSON.parse(new TextDecoder().decode((await ports.blobs.get(keys.studyReport(studyId)))!)) as StudyReport;
  return { studyId, report, blobs: ports.blobs };
}

it("a 12-candidate x 3-fold study with every grove message twice, trainer crashes (seeded per grove and attempt: 15% before storing, 15% after landing) and doubled stream records: one study notification, the embedded ranking", { timeout: 600_000 }, async () => {
  const reference = await embedded();
  const resources = await provision("-study", { visibilityTimeoutSeconds: 1, maxReceiveCount: 6 });
  const ports = adapters(resources);
  // Seeded crashes of the trainer, per (build, grove, attempt): before storing the grove, or after landing it; every
  // stream record delivered twice.
  const { emulator, injected, invocations, errors } = faultyEmulator(resources, ports);
  const studies: SnsDelivery[] = [];
  let builds = 0;
  try {
    const prepared = await prepareBuildData(SPEC.base, iris, ports.blobs);
    const queue = { send: (tasks: Parameters<typeof ports.queue.send>[0]) => ports.queue.send([...tasks, ...tasks]) };
    const { studyId } = await submitStudy(SPEC, { ...ports, queue }, prepared);
    expect(studyId).toBe(reference.studyId);
    const got = await studyNotifications(resources.inboxUrl);
    studies.push(...got.studies);
    builds = got.builds;
  } finally {
    await emulator.stop();
  }
  expect(studies, `emulator errors: ${errors.map(String).join("; ")}`).toHaveLength(1);
  const n = studies[0].notification as unknown as StudyNotification;
  expect(n).toMatchObject({ type: "study.completed", studyId: reference.studyId, candidates: 12, cv: 3, builds: { total: 36, completed: 36, failed: 0 } });
  expect(studies[0].attributes).toMatchObject({ studyId: reference.studyId, status: "COMPLETED", type: "study.completed" });
  expect(builds).toBe(36);
  expect(injected.length).toBeGreaterThan(10);
  const report = JSON.parse(new TextDecoder().decode((await ports.blobs.get(keys.studyReport(reference.studyId)))!)) as StudyReport;
  for (const key of ["params", "split_test_scores", "mean_test_score", "rank_test_score", "buildIds"] as const)
    expect(report.candidates.map((c) => canonicalJson(c[key]))).toEqual(reference.report.candidates.map((c) => canonicalJson(c[key])));
  expect(report.best_params_).toEqual(reference.report.best_params_);
  for (const c of report.candidates)
    for (const id of c.buildIds) expect(Buffer.from((await ports.blobs.get(keys.model(id)))!).equals(Buffer.from((await reference.blobs.get(keys.model(id)))!))).toBe(true);
  const study = await ports.ledger.get(reference.studyId);
  expect(study).toMatchObject({ status: "COMPLETED", total: 36, landedCount: 36, claims: 1 });
  expect(await ports.blobs.exists(keys.studyReportHtml(reference.studyId))).toBe(true);
  console.log(`e2e study: ${injected.length} injected crashes, ${invocations.filter((i) => i.functionName === "canopy-trainer").length} trainer invocations, ${invocations.filter((i) => i.functionName === "canopy-aggregator").length} aggregator invocations`);
});

it("successive halving with the final model on the real handlers, every grove message and stream record twice: one study notification, the embedded rounds and final model", { timeout: 600_000 }, async () => {
  const spec = parseStudySpec({
    base: { dataset: "iris.csv", label: "species", n_estimators: 9, grove_size: 3, seed: 12, tags: { suite: "study-halving" } },
    grid: { max_depth: [1, 2, null], min_samples_leaf: [1, 5, 10] },
    cv: 2,
    halving: { factor: 3, min_resources: 1 },
    refit: true,
  });
  const reference = await embedded(spec);
  const resources = await provision("-study-halving", { visibilityTimeoutSeconds: 1, maxReceiveCount: 6 });
  const ports = adapters(resources);
  const errors: unknown[] = [];
  const emulator = startEmulator({
    ...canopyEventSources({
      queueUrl: resources.queueUrl,
      deadLetterQueueUrl: resources.deadLetterQueueUrl,
      streamArn: resources.streamArn,
      // The aggregator's own tasks (the survivors' new trees, the final build) are sent twice too.
      handlers: handlersOn({ trainer: ports, aggregator: { ...ports, queue: { send: (tasks) => ports.queue.send([...tasks, ...tasks]) } }, deadLetter: ports }),
      memoryMb: 1769,
      trainerPollers: 2,
      streamDeliveries: 2,
    }),
    maxConcurrency: 2,
    onError: (err) => errors.push(err),
  });
  const studies: SnsDelivery[] = [];
  try {
    const prepared = await prepareBuildData(spec.base, iris, ports.blobs);
    const queue = { send: (tasks: Parameters<typeof ports.queue.send>[0]) => ports.queue.send([...tasks, ...tasks]) };
    const { studyId } = await submitStudy(spec, { ...ports, queue }, prepared);
    expect(studyId).toBe(reference.studyId);
    studies.push(...(await studyNotifications(resources.inboxUrl)).studies);
  } finally {
    await emulator.stop();
  }
  expect(studies, `emulator errors: ${errors.map(String).join("; ")}`).toHaveLength(1);
  const n = studies[0].notification as unknown as StudyNotification;
  expect(n).toMatchObject({ type: "study.completed", studyId: reference.studyId, final: { buildId: reference.report.final!.buildId, metrics: reference.report.final!.metrics } });
  const report = JSON.parse(new TextDecoder().decode((await ports.blobs.get(keys.studyReport(reference.studyId)))!)) as StudyReport;
  expect(report.rounds!.map((r) => r.candidates.map((c) => canonicalJson(c.split_test_scores)))).toEqual(reference.report.rounds!.map((r) => r.candidates.map((c) => canonicalJson(c.split_test_scores))));
  expect(report.best_params_).toEqual(reference.report.best_params_);
  for (const id of [...report.candidates.flatMap((c) => c.buildIds), report.final!.buildId])
    expect(Buffer.from((await ports.blobs.get(keys.model(id)))!).equals(Buffer.from((await reference.blobs.get(keys.model(id)))!)), id).toBe(true);
});
