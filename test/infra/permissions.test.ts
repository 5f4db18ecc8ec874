/**
 * Least privilege, checked against what the functions really do: each function of the app, built as `sst deploy`
 * builds it, runs from its bundle against moto holding the app's resources (by the names its links give it), through
 * an endpoint that records every request. Every request it makes must be allowed by its role; and every action its
 * role grants (but the authorisation-only ones) must be used, so a grant nobody needs shows up too. The scenarios
 * walk each function's paths that touch AWS: a grove trained and one failing (its error note written), a grove
 * given up on over tolerance, a build aggregated, a study ranked round by round to its final model (halving extends the
 * survivors, the last round queues the final build), a partitioned run completed, a tuned one ranked and completed, a stalled build and a stalled study swept, a model served by
 * alias and an unknown one refused. Needs `sst install` and moto_server.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { CreateBucketCommand, DeleteObjectCommand } from "@aws-sdk/client-s3";
import { CreateQueueCommand } from "@aws-sdk/client-sqs";
import { CreateTopicCommand } from "@aws-sdk/client-sns";
import {
  aggregate,
  csvTable,
  decodeGroveTask,
  finalStageIdFor,
  isStudyId,
  keys,
  parseBuildSpec,
  parseStudySpec,
  prepareDataset,
  roundIdFor,
  submitBuild,
  submitPartitionedRun,
  submitPartitionTuning,
  submitStudy,
  trainGrove,
  type BuildLedger,
  type BuildRecord,
  type GroveTask,
  type PreparedDataset,
  type StudyReport,
} from "@canopy/core";
import { preparePartitions } from "@canopy/core/ingest";
import { MemoryNotifier, MemoryQueue } from "@canopy/core/testing";
import { clients, DynamoLedger, DynamoModelRegistry, S3BlobStore } from "@canopy/runtime-aws";
import { FUNCTION_ACCESS, type FunctionName } from "@canopy/runtime-aws/access";
import { beforeAll, describe, expect, it } from "vitest";
import { createBuildsTable, receiveMessages, useAwsEmulator } from "../aws/harness.ts";
import { functionUrlEvent } from "../serving/support.ts";
import { REPO, useEvaluatedApp } from "./harness.ts";
import { aggregationTriggerEvent, allows, groveTaskEvent, iamRequests, probeFunction, type ProbeRequest } from "./lambda-probe.ts";
import { MOCK_ACCOUNT, MOCK_REGION } from "./run-app.ts";
import { describeApp, type Statement } from "./wiring.ts";

const aws = useAwsEmulator({ suffix: "-permissions" });
const evaluated = useEvaluatedApp();
const digits = readFileSync(path.join(REPO, "test/fixtures/digits.csv"));

/** The built function (bundle, handler, environment, role) of one of the app's functions. */
function built(name: FunctionName) {
  if (name !== "predict") {
    const fn = describeApp(evaluated.current).functions[name]!;
    return { build: fn.build, lambda: fn.lambda, statements: fn.statements };
  }
  const build = evaluated.current.builds.find((b) => b.handler.endsWith("predict.handler"))!;
  const lambda = evaluated.current.resources.find((r) => r.name === `${build.functionID}Function`)!;
  const role = evaluated.current.resources.find((r) => r.name === `${build.functionID}Role`)!;
  const statements = (role.inputs.inlinePolicies as { policy: string }[]).flatMap((p) => JSON.parse(p.policy).Statement as Statement[]);
  return { build, lambda, statements };
}

/** moto's URLs of the app's queues (CANOPY_QUEUE_URL and CANOPY_DLQ_URL give the functions moto's queue names). */
const queueUrls: Record<"groves" | "dlq", string> = { groves: "", dlq: "" };

/**
 * Grants only a stalled partitioned run uses (the sweeper reads its manifest to land a member a crash left unlanded):
 * this probe sweeps a stalled build and a stalled study, not a stalled partitioned run, so it is not exercised here.
 * test/aws/e2e-partitions.test.ts and core's partitions tests sweep one on moto and in memory, where IAM is not checked.
 */
const PARTITION_ONLY: Partial<Record<FunctionName, [string, string][]>> = {
  sweeper: [["s3:GetObject", "/partitions/*/run.json"]],
};

const used: Record<FunctionName, ProbeRequest[]> = { trainer: [], aggregator: [], dlq: [], sweeper: [], predict: [] };

/** Runs one function from its bundle on moto; every request it makes must be allowed by its role. */
async function run(name: FunctionName, event: unknown): Promise<{ requests: ProbeRequest[]; output: string }> {
  const fn = built(name);
  const result = await probeFunction({
    // What Lambda runs: the code.zip (the aggregator's carries report.html's chart library).
    codeZip: path.join(evaluated.current.root, ".sst", "artifacts", fn.build.functionID, "code.zip"),
    handler: fn.build.builtHandler,
    environment: {
      ...fn.lambda.inputs.environment.variables,
      ...(name === "trainer" ? { CANOPY_DLQ_URL: queueUrls.dlq } : {}),
      ...(name === "sweeper" || name === "aggregator" ? { CANOPY_QUEUE_URL: queueUrls.groves } : {}),
    },
    memoryMb: fn.lambda.inputs.memorySize,
    endpoint: aws.current.moto.endpoint,
    event,
    timeoutMs: 120_000,
  });
  for (const r of result.requests)
    for (const { action, arn } of iamRequests(r, MOCK_ACCOUNT, MOCK_REGION))
      expect(allows(fn.statements, action, arn), `${name} calls ${r.operation} (${action} on ${arn}), which its role does not allow`).toBe(true);
  used[name].push(...result.requests);
  return result;
}

const sqsEvent = (task: GroveTask, receives: number, queue: "groves" | "dlq") =>
  groveTaskEvent(task, describeApp(evaluated.current)[queue]!.state.arn!, receives, `m-${task.buildId}-${task.grove}-${receives}`);

describe("each function's role allows exactly what the function does", () => {
  let blobs: S3BlobStore;
  let ledger: DynamoLedger;
  const ids: Record<string, string> = {};
  const tasks: Record<string, GroveTask[]> = {};
  let prepared: PreparedDataset;

  beforeAll(async () => {
    const described = describeApp(evaluated.current);
    await clients.s3().send(new CreateBucketCommand({ Bucket: described.bucket!.state.bucket! }));
    await createBuildsTable(described.table!.state.name!);
    await clients.sns().send(new CreateTopicCommand({ Name: described.topic!.state.arn!.split(":").at(-1)! }));
    // The queues the trainer (dead letters) and the sweeper (lost groves, the queue's depth) send to and read.
    for (const [name, queue] of [["groves", described.groves!], ["dlq", described.dlq!]] as const)
      queueUrls[name] = (await clients.sqs().send(new CreateQueueCommand({ QueueName: queue.state.name! }))).QueueUrl!;
    blobs = new S3BlobStore(described.bucket!.state.bucket!);
    ledger = new DynamoLedger(described.table!.state.name!);
    prepared = await prepareDataset(digits, { label: "digit" }, blobs);
    // Three builds of digits: one for the trainer and the dead letters, one to aggregate, one left to stall.
    const specs = {
      // With out-of-bag scores: the trainer also stores a grove's sums, the aggregator reads them and writes oob.bin.
      train: { n_estimators: 4, grove_size: 2, seed: 1, oob_score: true },
      aggregate: { n_estimators: 4, grove_size: 2, seed: 2, oob_score: true },
      stalled: { n_estimators: 2, grove_size: 1, seed: 3 },
      exhausted: { n_estimators: 2, grove_size: 1, seed: 4 },
    };
    for (const [name, spec] of Object.entries(specs)) {
      const queue = new MemoryQueue();
      // The stalled builds' records were last touched two hours ago (the sweeper's limit is 45 minutes).
      const clock = name === "stalled" || name === "exhausted" ? { now: () => Date.now() - 2 * 3600_000 } : undefined;
      const writer = clock ? new DynamoLedger(described.table!.state.name!, undefined, { clock }) : ledger;
      const full = parseBuildSpec({ dataset: "test/fixtures/digits.csv", label: "digit", ...spec });
      ids[name] = (await submitBuild(full, { blobs, ledger: writer, queue, ...(clock ? { clock } : {}) }, prepared)).buildId;
      tasks[name] = queue.drain();
      // Its groves were queued again three times already, and still nothing landed.
      if (name === "exhausted") for (let i = 0; i < 3; i++) await writer.recordRequeue(ids[name]);
    }
    for (const task of tasks.aggregate) await trainGrove(task, { blobs, ledger, memoryMb: 1769 });
    await stalledStudy();
  }, 120_000);

  /**
   * A study the sweeper finds stalled two hours after its submission died: member 0 trained and completed but never
   * landed in the study (its aggregator died first), member 1 never created (nor its manifest written).
   */
  async function stalledStudy() {
    const clock = { now: () => Date.now() - 2 * 3600_000 };
    const old = new DynamoLedger(describeApp(evaluated.current).table!.state.name!, undefined, { clock });
    const spec = parseStudySpec({ base: { dataset: "test/fixtures/digits.csv", label: "digit", n_estimators: 2, grove_size: 2, seed: 7 }, grid: { max_depth: [3] }, cv: 2 });
    let builds = 0;
    const dying = Object.create(old, { create: { value: (r: BuildRecord) => (!isStudyId(r.buildId) && ++builds > 1 ? Promise.reject(new Error("killed")) : old.create(r)) } }) as BuildLedger;
    const queue = new MemoryQueue();
    await expect(submitStudy(spec, { blobs, ledger: dying, queue, clock }, prepared)).rejects.toThrow("killed");
    const [member] = queue.drain();
    ids.study = (await old.summary(member.buildId))!.memberOf!.id;
    await trainGrove(member, { blobs, ledger });
    const unlanding = Object.create(ledger, { landGrove: { value: async (id: string, g: number, st: Parameters<BuildLedger["landGrove"]>[2]) => (isStudyId(id) ? { landed: false, remaining: 1 } : ledger.landGrove(id, g, st)) } }) as BuildLedger;
    await aggregate(member.buildId, { blobs, ledger: unlanding, notifier: new MemoryNotifier() });
    // The crash came before member 1's manifest was written, too.
    const manifest = JSON.parse(new TextDecoder().decode((await blobs.get(keys.study(ids.study)))!)) as { members: { buildId: string }[] };
    await clients.s3().send(new DeleteObjectCommand({ Bucket: describeApp(evaluated.current).bucket!.state.bucket!, Key: keys.spec(manifest.members[1].buildId) }));
  }

  it("the trainer: trains and lands a grove; a grove whose build lost its manifest leaves its error note and is dead-lettered at once", async () => {
    const [good, bad] = tasks.train;
    const landed = await run("trainer", sqsEvent(good, 1, "groves"));
    expect(landed.output).toContain('handler returned {"batchItemFailures":[]}');
    expect((await ledger.get(ids.train))?.landed).toEqual([good.grove]);
    // The manifest is the trainer's source of truth: without it a grove can never train (an input error).
    await clients.s3().send(new DeleteObjectCommand({ Bucket: describeApp(evaluated.current).bucket!.state.bucket!, Key: keys.spec(ids.train) }));
    const failed = await run("trainer", sqsEvent(bad, 1, "groves"));
    expect(failed.output).toContain('handler returned {"batchItemFailures":[]}');
    expect(failed.requests.map((r) => `${r.operation} ${r.key ?? ""}`.trim())).toEqual([
      "GetItem",
      "GetItem",
      `GetObject builds/${bad.buildId}/spec.json`,
      `PutObject builds/${bad.buildId}/groves/0000${bad.grove}.error.txt`,
      "SendMessage",
    ]);
  });

  it("the dead-letter consumer: quotes the trainer's note, fails the build over its tolerance and notifies", async () => {
    const [, bad] = tasks.train;
    const { output } = await run("dlq", sqsEvent(bad, 3, "dlq"));
    expect(output).toContain('handler returned {"batchItemFailures":[]}');
    const record = (await ledger.get(ids.train))!;
    expect(record.status).toBe("FAILED");
    expect(record.failed[0].error).toContain("not found");
  });

  it("the aggregator: merges, evaluates, stores model and reports, completes and notifies", async () => {
    const ready = (await ledger.get(ids.aggregate))!;
    const before: BuildRecord = { ...ready, remaining: 1, landed: ready.landed.slice(0, -1) };
    const { output, requests } = await run("aggregator", aggregationTriggerEvent(describeApp(evaluated.current).table!.state.streamArn!, ready, before));
    expect(output).toContain('handler returned {"batchItemFailures":[]}');
    expect(requests.filter((r) => r.operation === "PutObject").map((r) => r.key)).toEqual(
      ["model.canopy", "oob.bin", "report.json", "report.html"].map((f) => `builds/${ids.aggregate}/${f}`),
    );
    expect((await ledger.get(ids.aggregate))?.status).toBe("COMPLETED");
  });

  it("the aggregator: ranks a study's halving round and extends the survivor (groves and OOB sums copied, new trees queued), ranks the last round and queues the final build, then completes the study with it", async () => {
    const streamArn = describeApp(evaluated.current).table!.state.streamArn!;
    const spec = parseStudySpec({
      base: { dataset: "test/fixtures/digits.csv", label: "digit", n_estimators: 4, grove_size: 1, seed: 5 },
      grid: { max_depth: [2, 4, 8] },
      oob: true,
      halving: { factor: 3, min_resources: 1 },
      refit: true,
    });
    const queue = new MemoryQueue();
    const { studyId } = await submitStudy(spec, { blobs, ledger, queue }, prepared);
    // Builds train and aggregate here (their own grants were probed above); a finished build lands in its study.
    const build = async (groveTasks: GroveTask[]) => {
      for (const t of groveTasks) await trainGrove(t, { blobs, ledger });
      for (const id of new Set(groveTasks.map((t) => t.buildId))) await aggregate(id, { blobs, ledger, notifier: new MemoryNotifier() });
    };
    const fromQueue = async (count: number) => (await receiveMessages(queueUrls.groves, { count, timeoutMs: 20_000 })).map((m) => decodeGroveTask(m.body));
    const trigger = async (id: string) => {
      const ready = (await ledger.summary(id))!;
      expect(ready).toMatchObject({ status: "TRAINING", remaining: 0 });
      const { output } = await run("aggregator", aggregationTriggerEvent(streamArn, ready, { ...ready, remaining: 1 }));
      expect(output).toContain('handler returned {"batchItemFailures":[]}');
    };
    await build(queue.drain());
    // Round 0 (3 candidates x 1 tree) ranked: the best extended to 3 trees, its first grove copied, two queued.
    await trigger(studyId);
    const round1 = roundIdFor(studyId, 1);
    expect((await ledger.summary(studyId))?.result?.metrics).toMatchObject({ next_round: round1 });
    await build(await fromQueue(2));
    // Round 1 (the last) ranked: the final build (4 trees, base + best_params_) queued in the final stage.
    await trigger(round1);
    const stage = finalStageIdFor(studyId);
    await build(await fromQueue(4));
    await trigger(stage);
    expect((await ledger.summary(stage))?.status).toBe("COMPLETED");
    const report = JSON.parse(new TextDecoder().decode((await blobs.get(keys.studyReport(studyId)))!)) as StudyReport;
    expect(report.final).toMatchObject({ model: { trees: 4 } });
    expect(await blobs.exists(keys.studyReportHtml(studyId))).toBe(true);
  });

  it("the aggregator: completes a partitioned run (its manifest, each partition's model read for its SHA-256; the partitioned model, the run's report and its page written)", async () => {
    const streamArn = describeApp(evaluated.current).table!.state.streamArn!;
    const spec = parseBuildSpec({ dataset: "test/fixtures/penguins.csv", label: "Species", n_estimators: 2, grove_size: 2, seed: 6 });
    const options = { partitionBy: "Island", minPartitionRows: 30 };
    const penguins = readFileSync(path.join(REPO, "test/fixtures/penguins.csv"));
    const prepared = await preparePartitions(spec, options, csvTable(penguins), blobs);
    const queue = new MemoryQueue();
    const { runId } = await submitPartitionedRun(spec, options, { blobs, ledger, queue }, prepared);
    // The partitions' builds train and aggregate here (their grants were probed above); each lands in the run.
    const groveTasks = queue.drain();
    for (const t of groveTasks) await trainGrove(t, { blobs, ledger });
    for (const id of new Set(groveTasks.map((t) => t.buildId))) await aggregate(id, { blobs, ledger, notifier: new MemoryNotifier() });
    const ready = (await ledger.summary(runId))!;
    expect(ready).toMatchObject({ status: "TRAINING", remaining: 0, total: 3 });
    const { output } = await run("aggregator", aggregationTriggerEvent(streamArn, ready, { ...ready, remaining: 1 }));
    expect(output).toContain('handler returned {"batchItemFailures":[]}');
    expect((await ledger.summary(runId))?.status).toBe("COMPLETED");
    const model = JSON.parse(new TextDecoder().decode((await blobs.get(keys.partitionedModel(runId)))!)) as { partitions: Record<string, unknown> };
    expect(Object.keys(model.partitions)).toEqual(["Biscoe", "Dream", "Torgersen"]);
    // Its page too, rendered in the bundle (the chart library comes with it).
    expect(new TextDecoder().decode((await blobs.get(keys.partitionReportHtml(runId)))!)).toContain(`<h1>Canopy partitioned run ${runId}: penguins.csv</h1>`);
  });

  it("the aggregator: ranks a tuned partitioned run per partition (the ranking and its final stage's manifest written, the final builds queued), then completes its final stage into the partitioned model", async () => {
    const streamArn = describeApp(evaluated.current).table!.state.streamArn!;
    const study = parseStudySpec({ base: { dataset: "test/fixtures/penguins.csv", label: "Species", n_estimators: 2, grove_size: 2, seed: 7 }, grid: { max_depth: [1, 2] }, cv: 2, refit: true });
    const options = { partitionBy: "Island", minPartitionRows: 30 };
    const penguins = readFileSync(path.join(REPO, "test/fixtures/penguins.csv"));
    const partitioned = await preparePartitions(study.base, options, csvTable(penguins), blobs);
    const queue = new MemoryQueue();
    const { runId } = await submitPartitionTuning(study, options, "shared", { blobs, ledger, queue }, partitioned);
    // Builds train and aggregate here (their grants were probed above); each lands in its run.
    const build = async (groveTasks: GroveTask[]) => {
      for (const t of groveTasks) await trainGrove(t, { blobs, ledger });
      for (const id of new Set(groveTasks.map((t) => t.buildId))) await aggregate(id, { blobs, ledger, notifier: new MemoryNotifier() });
    };
    const trigger = async (id: string) => {
      const ready = (await ledger.summary(id))!;
      expect(ready).toMatchObject({ status: "TRAINING", remaining: 0 });
      const { output } = await run("aggregator", aggregationTriggerEvent(streamArn, ready, { ...ready, remaining: 1 }));
      expect(output).toContain('handler returned {"batchItemFailures":[]}');
    };
    await build(queue.drain());
    // 3 islands x 2 candidates x 2 folds ranked: the shared pick's final builds (one grove each) queued in the final stage.
    await trigger(runId);
    const stage = (await ledger.summary(runId))?.result?.metrics?.next_round as string;
    expect(stage).toMatch(/^p-[0-9a-f]{16}$/);
    await build((await receiveMessages(queueUrls.groves, { count: 3, timeoutMs: 20_000 })).map((m) => decodeGroveTask(m.body)));
    await trigger(stage);
    expect((await ledger.summary(stage))?.status).toBe("COMPLETED");
    const model = JSON.parse(new TextDecoder().decode((await blobs.get(keys.partitionedModel(runId)))!)) as { runId: string; partitions: Record<string, unknown> };
    expect(model.runId).toBe(runId);
    expect(Object.keys(model.partitions)).toEqual(["Biscoe", "Dream", "Torgersen"]);
  });

  it("the sweeper: queues a stalled build's groves again, fails (and notifies) one requeued three times already, and settles a stalled study", async () => {
    const { output } = await run("sweeper", {});
    expect(output).toContain(ids.stalled);
    expect(await ledger.summary(ids.stalled)).toMatchObject({ status: "TRAINING", requeues: 1 });
    expect((await ledger.get(ids.exhausted))?.status).toBe("FAILED");
    // The study: its finished member landed from its report, its missing member started (manifest, record, tasks).
    expect(output).toContain(ids.study);
    const study = (await ledger.get(ids.study))!;
    expect(study.landed).toEqual([0]);
    const missing = (await receiveMessages(queueUrls.groves, { count: 10, timeoutMs: 5000 })).map((m) => decodeGroveTask(m.body)).filter((t) => t.buildId !== ids.stalled);
    expect(missing.map((t) => t.buildId)).toEqual([missing[0].buildId]);
    expect(await ledger.summary(missing[0].buildId)).toMatchObject({ status: "TRAINING", memberOf: { id: ids.study, member: 1 } });
  });

  it("predict: serves the production model by alias, and refuses an unknown build or partitioned run with 404", async () => {
    await new DynamoModelRegistry(describeApp(evaluated.current).table!.state.name!).promote(ids.aggregate, "production");
    const summary = await run("predict", functionUrlEvent({ method: "GET" }));
    expect(summary.output).toContain('"statusCode":200');
    const unknown = await run("predict", functionUrlEvent({ method: "GET", query: { model: "b-0123456789abcdef" } }));
    expect(unknown.output).toContain('"statusCode":404');
    // A partitioned model is read from its manifest first (a missing one is a 404, thanks to ListBucket).
    const partitioned = await run("predict", functionUrlEvent({ method: "GET", query: { model: "p-0123456789abcdef" } }));
    expect(partitioned.output).toContain('"statusCode":404');
  });

  it("grants nothing a function did not use (but s3:ListBucket and s3:AbortMultipartUpload, which no request names)", () => {
    // ListBucket makes a missing key a 404 rather than a 403; AbortMultipartUpload is called only when an upload fails.
    const authorisationOnly = new Set(["s3:ListBucket", "s3:AbortMultipartUpload"]);
    for (const name of Object.keys(FUNCTION_ACCESS) as FunctionName[]) {
      const fn = built(name);
      const calls = used[name].flatMap((r) => iamRequests(r, MOCK_ACCOUNT, MOCK_REGION));
      expect(calls.length, name).toBeGreaterThan(0);
      // The function's own grants: not its event source's (which Lambda's poller uses, not the function).
      // Not what Lambda uses on the function's behalf: receiving from its queue, reading its stream, sending a failed
      // stream batch to its on-failure destination.
      const failures = describeApp(evaluated.current).failures!.state.arn!;
      const own = fn.statements.filter(
        (s) => ![s.Action].flat().includes("sqs:ReceiveMessage") && ![s.Resource].flat().some((r) => r.includes("/stream/") || r === failures),
      );
      for (const s of own)
        for (const action of [s.Action].flat())
          for (const resource of [s.Resource].flat()) {
            if (authorisationOnly.has(action)) continue;
            if (PARTITION_ONLY[name]?.some(([a, suffix]) => a === action && resource.endsWith(suffix))) continue;
            const exercised = calls.some((c) => allows([{ Effect: "Allow", Action: action, Resource: resource }], c.action, c.arn));
            expect(exercised, `${name} is granted ${action} on ${resource} but never used it`).toBe(true);
          }
    }
  });
});
