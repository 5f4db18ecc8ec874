/**
 * A partitioned run on moto through the real handlers: 52 partitions of a seeded table (and the fallback on every
 * row: 53 builds, 106 groves on one queue) with every grove message delivered twice, ~30% of trainer invocations
 * crashing (before storing, after landing), and every stream record delivered twice: one partitions notification,
 * and the embedded run's partitioned model (the same run id and the same model bytes per partition).
 */
import {
  aggregate,
  aggregatePartitionedRun,
  isAggregationTrigger,
  isPartitionRunId,
  keys,
  parseBuildSpec,
  parsePartitionedModel,
  parseStudySpec,
  submitPartitionedRun,
  submitPartitionTuning,
  trainGrove,
  csvTable,
  type PartitionNotification,
  type PartitionReport,
  type PartitionRunOptions,
} from "@canopy/core";
import { preparePartitions } from "@canopy/core/ingest";
import { MemoryBlobStore, MemoryLedger, MemoryNotifier, MemoryQueue } from "@canopy/core/testing";
import { createAwsRuntime, type SnsDelivery } from "@canopy/runtime-aws";
import { expect, it } from "vitest";
import { receiveNotifications, useAwsEmulator } from "./harness.ts";
import { adapters, faultyEmulator, provision } from "./e2e-support.ts";

useAwsEmulator();

/** 52 stores of 30-45 rows (a seeded table of our making) and one store of 5 rows, skipped. */
function table(): string {
  let s = 99;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const lines = ["store,x,y,kind,label"];
  for (let k = 0; k < 52; k++)
    for (let i = 0; i < 30 + (k % 16); i++) {
      const x = rnd() * 10;
      lines.push(`st${String(k).padStart(2, "0")},${x.toFixed(2)},${(rnd() * 3).toFixed(2)},${["a", "b"][Math.floor(rnd() * 2)]},${x + (k % 5) > 7 ? "up" : "down"}`);
    }
  for (let i = 0; i < 5; i++) lines.push(`tiny,${i},1,a,up`);
  return `${lines.join("\n")}\n`;
}

const DATA = table();

/**
 * The inbox until the run's notification arrives (builds' notifications counted), and anything that follows within
 * 3 s: more build notifications (a straggler's), never a second run notification.
 */
async function notifications(inboxUrl: string): Promise<{ runs: SnsDelivery[]; builds: number }> {
  const runs: SnsDelivery[] = [];
  let builds = 0;
  const take = (d: SnsDelivery) => ((d.notification as unknown as { type: string }).type.startsWith("partitions.") ? runs.push(d) : builds++);
  const deadline = Date.now() + 480_000;
  while (runs.length === 0 && Date.now() < deadline) for (const d of await receiveNotifications(inboxUrl, { count: 10, timeoutMs: 2000 })) take(d);
  for (const d of await receiveNotifications(inboxUrl, { count: 50, timeoutMs: 3000 })) take(d);
  return { runs, builds };
}
const SPEC = parseBuildSpec({ dataset: "stores.csv", label: "label", n_estimators: 4, grove_size: 2, seed: 21, tags: { suite: "partitions" } });
const OPTIONS: PartitionRunOptions = { partitionBy: "store", minPartitionRows: 30, fallback: "global" };

/** The embedded run on memory ports: the model every AWS run must reproduce. */
async function embedded() {
  const ports = { blobs: new MemoryBlobStore(), ledger: new MemoryLedger(), queue: new MemoryQueue(), notifier: new MemoryNotifier() };
  const work: Promise<unknown>[] = [];
  ports.ledger.watch((c) => {
    if (isAggregationTrigger(c)) work.push(isPartitionRunId(c.new.buildId) ? aggregatePartitionedRun(c.new.buildId, ports) : aggregate(c.new.buildId, ports));
  });
  const prepared = await preparePartitions(SPEC, OPTIONS, csvTable(DATA), ports.blobs);
  const { runId } = await submitPartitionedRun(SPEC, OPTIONS, ports, prepared);
  for (;;) {
    const tasks = ports.queue.drain();
    if (tasks.length === 0 && work.length === 0) break;
    for (const t of tasks) await trainGrove(t, ports);
    while (work.length > 0) await work.shift();
  }
  const model = parsePartitionedModel(new TextDecoder().decode((await ports.blobs.get(keys.partitionedModel(runId)))!), "reference");
  return { runId, model, blobs: ports.blobs };
}

it("53 builds of a 52-partition run with every grove message twice, trainer crashes (seeded per grove and attempt: 15% before storing, 15% after landing) and doubled stream records: one partitions notification, the embedded run's models", { timeout: 600_000 }, async () => {
  const reference = await embedded();
  expect(Object.keys(reference.model.partitions)).toHaveLength(52);
  const resources = await provision("-partitions", { visibilityTimeoutSeconds: 1, maxReceiveCount: 6 });
  const ports = adapters(resources);
  // Seeded crashes of the trainer, per (build, grove, attempt): before storing the grove, or after landing it; every
  // stream record delivered twice.
  const { emulator, injected, invocations, errors } = faultyEmulator(resources, ports);
  let runs: SnsDelivery[] = [];
  let builds = 0;
  try {
    const prepared = await preparePartitions(SPEC, OPTIONS, csvTable(DATA), ports.blobs);
    const queue = { send: (tasks: Parameters<typeof ports.queue.send>[0]) => ports.queue.send([...tasks, ...tasks]) };
    const { runId } = await submitPartitionedRun(SPEC, OPTIONS, { ...ports, queue }, prepared);
    expect(runId).toBe(reference.runId);
    ({ runs, builds } = await notifications(resources.inboxUrl));
  } finally {
    await emulator.stop();
  }
  expect(runs, `emulator errors: ${errors.map(String).join("; ")}`).toHaveLength(1);
  const n = runs[0].notification as unknown as PartitionNotification;
  expect(n).toMatchObject({ type: "partitions.completed", runId: reference.runId, partitionBy: "store", fallback: true, counts: { partitions: 53, completed: 52, failed: 0, skipped: 1 } });
  expect(runs[0].attributes).toMatchObject({ runId: reference.runId, status: "COMPLETED", type: "partitions.completed" });
  expect(builds).toBe(53);
  expect(injected.length).toBeGreaterThan(10);
  const model = parsePartitionedModel(new TextDecoder().decode((await ports.blobs.get(keys.partitionedModel(reference.runId)))!), "aws");
  expect(model).toEqual(reference.model);
  for (const ref of [...Object.values(model.partitions), model.fallback!])
    expect(Buffer.from((await ports.blobs.get(keys.model(ref.build)))!).equals(Buffer.from((await reference.blobs.get(keys.model(ref.build)))!))).toBe(true);
  const run = await ports.ledger.get(reference.runId);
  expect(run).toMatchObject({ status: "COMPLETED", total: 53, landedCount: 53, claims: 1 });
  console.log(
    `e2e partitions: ${injected.length} injected crashes, ${invocations.filter((i) => i.functionName === "canopy-trainer").length} trainer invocations, ${invocations.filter((i) => i.functionName === "canopy-aggregator").length} aggregator invocations`,
  );
});

/** Four stores of 30-45 rows of the same seeded table (and the tiny one, skipped): a tuned run kept small. */
const TUNE_DATA = `${DATA.split("\n")
  .filter((l, i) => i === 0 || /^st0[0-3],|^tiny,/.test(l))
  .join("\n")}\n`;
const STUDY = parseStudySpec({ base: SPEC, grid: { max_depth: [1, 3] }, cv: 2, refit: true });
const TUNE_OPTIONS: PartitionRunOptions = { partitionBy: "store", minPartitionRows: 30 };

it("a tuned run (publish --tune --partition-by --shared-params): submitted twice (the groves queued again), the final builds' grove messages twice, trainer crashes and doubled stream records: one notification, the embedded run's models", { timeout: 600_000 }, async () => {
  // The embedded run on memory ports (the tuning stage's aggregator queues the final builds: it needs the queue).
  const memory = { blobs: new MemoryBlobStore(), ledger: new MemoryLedger(), queue: new MemoryQueue(), notifier: new MemoryNotifier() };
  const work: Promise<unknown>[] = [];
  memory.ledger.watch((c) => {
    if (isAggregationTrigger(c)) work.push(isPartitionRunId(c.new.buildId) ? aggregatePartitionedRun(c.new.buildId, memory) : aggregate(c.new.buildId, memory));
  });
  const { runId } = await submitPartitionTuning(STUDY, TUNE_OPTIONS, "shared", memory, await preparePartitions(STUDY.base, TUNE_OPTIONS, csvTable(TUNE_DATA), memory.blobs));
  for (;;) {
    const tasks = memory.queue.drain();
    if (tasks.length === 0 && work.length === 0) break;
    for (const t of tasks) await trainGrove(t, memory);
    while (work.length > 0) await work.shift();
  }
  const reference = parsePartitionedModel(new TextDecoder().decode((await memory.blobs.get(keys.partitionedModel(runId)))!), "reference");
  expect(Object.keys(reference.partitions)).toEqual(["st00", "st01", "st02", "st03"]);

  const resources = await provision("-tuned", { visibilityTimeoutSeconds: 1, maxReceiveCount: 6 });
  const ports = adapters(resources);
  const doubled = { ...ports, queue: { send: (tasks: Parameters<typeof ports.queue.send>[0]) => ports.queue.send([...tasks, ...tasks]) } };
  const { emulator, injected, errors } = faultyEmulator(resources, doubled);
  let runs: SnsDelivery[] = [];
  let builds = 0;
  try {
    // What publish --tune --partition-by does: the partitions prepared into the bucket, the run submitted by the AWS runtime.
    const runtime = createAwsRuntime({ resources });
    const prepared = await preparePartitions(STUDY.base, TUNE_OPTIONS, csvTable(TUNE_DATA), ports.blobs);
    const handle = await runtime.tunePartitions(STUDY, TUNE_OPTIONS, "shared", prepared);
    expect(handle).toMatchObject({ runId, created: true, builds: 16 });
    // Published again at once: the run is picked up (resumed: the groves not landed yet are queued a second time). With the
    // default lease: a lease of 0 took a live build aggregation for a dead one and reopened it, and the first aggregator,
    // finding its claim gone, failed the build (a member failed, another shared pick) under CI's load; a deployed
    // aggregator's lease outlives its Lambda timeout, so a live one is never reopened.
    const second = createAwsRuntime({ resources });
    const again = await second.tunePartitions(STUDY, TUNE_OPTIONS, "shared", prepared);
    await second.close();
    expect(again).toMatchObject({ runId, created: false });
    await runtime.close();
    ({ runs, builds } = await notifications(resources.inboxUrl));
  } finally {
    await emulator.stop();
  }
  expect(runs, `emulator errors: ${errors.map(String).join("; ")}`).toHaveLength(1);
  const n = runs[0].notification as unknown as PartitionNotification;
  expect(n).toMatchObject({ type: "partitions.completed", runId, counts: { partitions: 5, completed: 4, skipped: 1 }, tuning: { mode: "shared", scoring: "accuracy", cv: 2, refit: true } });
  // 16 tuning builds and 4 final ones (a final build is a fold build of none: never one of the tuning's).
  expect(builds).toBe(20);
  expect(injected.length).toBeGreaterThan(0);
  // Every tuning build landed (a failed one scores NaN and may move the shared pick: then the models differ for that reason).
  const report = JSON.parse(new TextDecoder().decode((await ports.blobs.get(keys.partitionReport(runId)))!)) as PartitionReport;
  const failed = report.tuning!.partitions.flatMap((p) => p.candidates.filter((c) => c.status === "FAILED").map((c) => `${p.key}: ${c.error}`));
  expect(failed, `tuning builds failed; emulator errors: ${errors.map(String).join("; ")}`).toEqual([]);
  const model = parsePartitionedModel(new TextDecoder().decode((await ports.blobs.get(keys.partitionedModel(runId)))!), "aws");
  expect(model).toEqual(reference);
  for (const ref of Object.values(model.partitions))
    expect(Buffer.from((await ports.blobs.get(keys.model(ref.build)))!).equals(Buffer.from((await memory.blobs.get(keys.model(ref.build)))!))).toBe(true);
  expect(await ports.ledger.get(runId)).toMatchObject({ status: "COMPLETED", total: 16, landedCount: 16, claims: 1 });
});
