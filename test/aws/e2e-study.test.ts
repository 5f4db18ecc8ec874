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
} from "@canopy/core";
import { MemoryBlobStore, MemoryLedger, MemoryNotifier, MemoryQueue } from "@canopy/core/testing";
import { canonicalJson } from "@canopy/core";
import type { SnsDelivery } from "@canopy/runtime-aws";
import { expect, it } from "vitest";
import { receiveNotifications, useAwsEmulator } from "./harness.ts";
import { adapters, faultyEmulator, provision } from "./e2e-support.ts";

useAwsEmulator();
const iris = readFileSync(new URL("../fixtures/iris.csv", import.meta.url));
const SPEC = parseStudySpec({
  base: { dataset: "iris.csv", label: "species", n_estimators: 6, grove_size: 3, seed: 11, tags: { suite: "study" } },
  grid: { max_depth: [1, 2, null], max_features: ["sqrt", 0.5], min_samples_leaf: [1, 5] },
  cv: 3,
});

/** The embedded run of SPEC on memory ports: the ranking and models every AWS run must reproduce. */
async function embedded() {
  const ports = { blobs: new MemoryBlobStore(), ledger: new MemoryLedger(), queue: new MemoryQueue(), notifier: new MemoryNotifier() };
  const work: Promise<unknown>[] = [];
  ports.ledger.watch((c) => {
    if (isAggregationTrigger(c)) work.push(isStudyId(c.new.buildId) ? aggregateStudy(c.new.buildId, ports) : aggregate(c.new.buildId, ports));
  });
  const prepared = await prepareBuildData(SPEC.base, iris, ports.blobs);
  const { studyId } = await submitStudy(SPEC, ports, prepared);
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
    const deadline = Date.now() + 480_000;
    while (studies.length === 0 && Date.now() < deadline) {
      for (const d of await receiveNotifications(resources.inboxUrl, { count: 10, timeoutMs: 2000 })) {
        if ((d.notification as unknown as { type: string }).type.startsWith("study.")) studies.push(d);
        else builds++;
      }
    }
    // Anything that follows within 3 s: more build notifications (a straggler's), never a second study notification.
    for (const d of await receiveNotifications(resources.inboxUrl, { count: 50, timeoutMs: 3000 }))
      if ((d.notification as unknown as { type: string }).type.startsWith("study.")) studies.push(d);
      else builds++;
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
