/**
 * The publish script and the notification commands, end to end on moto: `canopy dev` (in this process) runs the
 * handlers; `canopy publish --wait`, `status`, `watch` and `subscribe` run as real CLI subprocesses, as a user
 * runs them. Notifications that arrive are checked against schemas/notification.v1.json.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CreateQueueCommand, GetQueueAttributesCommand, ListQueuesCommand } from "@aws-sdk/client-sqs";
import { ListSubscriptionsByTopicCommand } from "@aws-sdk/client-sns";
import { aggregate, isAggregationTrigger, keys, parseBuildSpec, prepareDataset, submitBuild, trainGrove, type BuildNotification, type BuildReport, type StudyReport } from "@canopy/core";
import { MemoryBlobStore, MemoryLedger, MemoryNotifier, MemoryQueue } from "@canopy/core/testing";
import { clients, decodeSnsDelivery, DynamoLedger, S3BlobStore, SqsTaskQueue, type SnsDelivery } from "@canopy/runtime-aws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dev } from "../../packages/cli/src/commands/dev.ts";
import { until } from "./e2e-support.ts";
import { validate, type Schema } from "../json-schema.ts";
import { receiveMessages, useAwsEmulator } from "./harness.ts";

const BIN = fileURLToPath(new URL("../../packages/cli/bin/canopy.mjs", import.meta.url));
const IRIS = fileURLToPath(new URL("../fixtures/iris.csv", import.meta.url));
const FLIGHTS = fileURLToPath(new URL("../fixtures/flights.parquet", import.meta.url));
const PENGUINS = fileURLToPath(new URL("../fixtures/penguins.csv", import.meta.url));
const SCHEMA = JSON.parse(readFileSync(new URL("../../schemas/notification.v1.json", import.meta.url), "utf8")) as Schema;

const aws = useAwsEmulator();

/** Valid against the schema, and every top-level field is one the schema declares (it documents them all). */
function expectValidNotification(n: unknown): asserts n is BuildNotification {
  expect(validate(n, SCHEMA)).toEqual([]);
  expect(Object.keys(n as object).filter((k) => !(k in (SCHEMA.properties as object)))).toEqual([]);
}

// ---------------------------------------------------------------------------------------------------------------
interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The real CLI in a subprocess (node + the bin, as `npx canopy` runs it). */
function start(args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess & { done: Promise<Run>; out: () => string; err: () => string } {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const done = new Promise<Run>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return Object.assign(child, { done, out: () => stdout, err: () => stderr });
}

const canopy = (args: string[], env?: NodeJS.ProcessEnv) => start(args, env).done;

/** The environment without the CANOPY_* resources and the endpoint: publish must find them from --endpoint alone. */
function bareEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith("CANOPY_") || key.startsWith("AWS_ENDPOINT_URL")) delete env[key];
  return env;
}

/** Reads the unfiltered inbox queue until a notification of each build has arrived. */
async function inboxNotifications(ids: string[], timeoutMs = 60_000): Promise<Map<string, SnsDelivery>> {
  const found = new Map<string, SnsDelivery>();
  const deadline = Date.now() + timeoutMs;
  while (ids.some((id) => !found.has(id)) && Date.now() < deadline) {
    for (const m of await receiveMessages(aws.current.resources.inboxUrl, { count: 1, timeoutMs: 2000 })) {
      const d = decodeSnsDelivery(m.body);
      found.set(d.notification.buildId, d);
    }
  }
  const missing = ids.filter((id) => !found.has(id));
  if (missing.length > 0) throw new Error(`no notification for ${missing.join(", ")}`);
  return found;
}

/** The build of iris with `spec` trained end to end in memory (core's pipeline, no AWS): the bytes to compare with. */
async function embeddedIris(spec: Record<string, unknown>) {
  const ports = { blobs: new MemoryBlobStore(), ledger: new MemoryLedger(), queue: new MemoryQueue(), notifier: new MemoryNotifier() };
  const aggregations: Promise<unknown>[] = [];
  ports.ledger.watch((change) => void (isAggregationTrigger(change) && aggregations.push(aggregate(change.new.buildId, ports))));
  const parsed = parseBuildSpec({ dataset: IRIS, label: "species", ...spec });
  const fresh = await submitBuild(parsed, ports, await prepareDataset(readFileSync(IRIS), { label: "species" }, ports.blobs));
  for (const task of ports.queue.drain()) await trainGrove(task, ports);
  await Promise.all(aggregations);
  return { fresh, ports };
}

/**
 * The same study embedded (canopy tune in a fresh store): the same id, fold scores and best as `published`'s; then
 * `more` with its report and store.
 */
async function expectEmbeddedTune(search: string[], published: { studyId: string; candidates: { split_test_scores: number[] }[]; best_params_: unknown }, more: (local: StudyReport & Required<Pick<StudyReport, "final">>, store: string) => Promise<void> | void = () => {}) {
  const dir = await mkdtemp(join(tmpdir(), "canopy-tune-"));
  try {
    const embedded = await canopy(["tune", IRIS, ...search, "--workers", "1", "--root", join(dir, "store"), "--json"]);
    expect(embedded.code, embedded.stderr).toBe(0);
    const local = JSON.parse(embedded.stdout) as StudyReport & Required<Pick<StudyReport, "final">>;
    expect(local.studyId).toBe(published.studyId);
    expect(published.candidates.map((c) => c.split_test_scores)).toEqual(local.candidates.map((c) => c.split_test_scores));
    expect(published.best_params_).toEqual(local.best_params_);
    await more(local, join(dir, "store"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function watchQueues(): Promise<string[]> {
  return (await clients.sqs().send(new ListQueuesCommand({ QueueNamePrefix: "canopy-watch-" }))).QueueUrls ?? [];
}

async function subscriptionEndpoints(): Promise<string[]> {
  const got = await clients.sns().send(new ListSubscriptionsByTopicCommand({ TopicArn: aws.current.resources.topicArn }));
  return (got.Subscriptions ?? []).map((s) => s.Endpoint ?? "");
}

// `canopy dev` runs the functions for the whole file. A grove task is delivered once: a failing one goes to the
// dead-letter queue (and fails its build) as soon as its 5 s visibility timeout lapses; iris groves take milliseconds.
const devStop = new AbortController();
let devRun: Promise<void> | undefined;
let devErr = "";
beforeAll(async () => {
  const sink = (append: (s: string) => void) => ({ write: (chunk: string) => (append(String(chunk)), true) }) as unknown as NodeJS.WriteStream;
  devRun = dev(undefined, { endpoint: aws.current.moto.endpoint, visibilityTimeout: 5, maxReceiveCount: 1 }, {
    stdout: sink(() => {}),
    stderr: sink((s) => (devErr += s)),
    signal: devStop.signal,
  });
  devRun.catch(() => {});
  await until("canopy dev to start", () => (devErr.includes("dev: running") ? true : undefined));
}, 60_000);
afterAll(async () => {
  devStop.abort();
  await devRun;
});

describe("npm run publish, canopy status and canopy watch on the emulator", () => {
  it("publish --wait completes with exit 0 and the result; watch prints its notification, status shows it; SIGINT removes watch's queue and subscription", { timeout: 120_000 }, async () => {
    const { endpoint } = aws.current.moto;
    const { topicArn } = aws.current.resources;
    const watcher = start(["watch", "--json", "--endpoint", endpoint, "--topic", topicArn]);
    await until("watch to subscribe", () => (/watching .* through the temporary queue canopy-watch-[0-9a-f]{8}; Ctrl-C to stop/.test(watcher.err()) ? true : undefined));
    const queueName = /temporary queue (canopy-watch-[0-9a-f]{8})/.exec(watcher.err())![1];
    expect((await watchQueues()).some((u) => u.endsWith(`/${queueName}`))).toBe(true);

    // No CANOPY_* variables: the resources are the ones canopy dev made on the endpoint.
    const published = await canopy(["publish", IRIS, "--label", "species", "--trees", "4", "--grove-size", "2", "--seed", "5", "--tag", "suite=publish", "--wait", "--endpoint", endpoint], bareEnv());
    expect(published.stderr).not.toContain("error");
    expect(published.code).toBe(0);
    const buildId = published.stdout.split("\n")[0];
    expect(buildId).toMatch(/^b-[0-9a-f]{16}$/);
    expect(published.stderr).toMatch(/canopy: pack s3:\/\/canopy-artifacts\/packs\/[0-9a-f]{64}\.pack \(150 rows × 4 features, [\d.]+ KB\) (uploaded|was already there)/);
    expect(published.stderr).toContain(`canopy: build ${buildId}: 2 grove task(s) queued, 4 trees\n`);
    expect(published.stderr).toMatch(new RegExp(`canopy: ${buildId}: groves 2/2 landed \\(4/4 trees`));
    expect(published.stdout).toMatch(new RegExp(`^build +${buildId}: 4 trees in 2 groves$`, "m"));
    expect(published.stdout).toMatch(/^metrics +accuracy 0\.\d{4}  macro-F1 0\.\d{4}  log-loss \d+\.\d{4}  on 38 held-out rows$/m);
    expect(published.stdout).toContain(`s3://canopy-artifacts/${keys.model(buildId)}`);
    expect(published.stdout).toMatch(/^cost +\$\d+\.\d{6} estimated: [\d.]+ GB-s of Lambda/m);

    // watch printed the notification (one JSON line), valid against the schema.
    const line = await until("watch to print the notification", () => watcher.out().split("\n").find((l) => l.includes(buildId)));
    const notification = JSON.parse(line) as unknown;
    expectValidNotification(notification);
    expect(notification).toMatchObject({ v: 1, type: "build.completed", buildId, status: "COMPLETED", tags: { suite: "publish" }, modelKey: keys.model(buildId), reportKey: keys.report(buildId) });

    // status, from the table and bucket in CANOPY_* (set by the harness): the same build, the same metrics.
    const [json, text] = await Promise.all([canopy(["status", buildId, "--json"]), canopy(["status", buildId])]);
    expect(json.code).toBe(0);
    const shown = JSON.parse(json.stdout) as { status: string; groves: { landed: number; total: number; failed: unknown[] }; metrics: unknown; tags: unknown; model: string };
    expect(shown).toMatchObject({ status: "COMPLETED", groves: { landed: 2, total: 2, failed: [] }, tags: { suite: "publish" }, model: `s3://canopy-artifacts/${keys.model(buildId)}` });
    expect(shown.metrics).toEqual(notification.metrics);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^build +${buildId}  COMPLETED$`, "m"));
    expect(text.stdout).toMatch(/^groves +2\/2 landed, 4\/4 trees \(tolerates 0 failed\)$/m);
    expect(text.stdout).toMatch(/^cost +\$\d+\.\d{6} estimated/m);

    // Ctrl-C: watch removes its queue and its subscription, then exits 0.
    watcher.kill("SIGINT");
    const stopped = await watcher.done;
    expect(stopped.code).toBe(0);
    expect(stopped.stderr).toContain(`canopy: removed the queue ${queueName} and its subscription\n`);
    expect(await watchQueues()).toEqual([]);
    expect((await subscriptionEndpoints()).filter((e) => e.includes("canopy-watch-"))).toEqual([]);
    expect(devErr).not.toContain("warning");
  });

  it("publish --tune --wait: a study on the emulator ends with its ranking, the embedded run's, and one study notification", { timeout: 240_000 }, async () => {
    const { endpoint } = aws.current.moto;
    const search = ["--label", "species", "--trees", "4", "--grove-size", "2", "--seed", "9", "--grid", "max_depth=1,none", "--grid", "min_samples_leaf=1,5", "--cv", "2"];
    // Study notifications only: the 8 builds' own are filtered out by SNS on the type attribute.
    const watcher = start(["watch", "--json", "--type", "study.completed,study.failed", "--endpoint", endpoint, "--topic", aws.current.resources.topicArn]);
    await until("watch to subscribe", () => (/watching .*"type":\["study.completed","study.failed"\]/.test(watcher.err()) ? true : undefined));
    const published = await canopy(["publish", IRIS, ...search, "--tune", "--wait", "--json", "--endpoint", endpoint], bareEnv());
    expect(published.code, published.stderr).toBe(0);
    const [first, last] = published.stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(first).toMatchObject({ created: true, candidates: 4, builds: 8, groves: 16 });
    expect(published.stderr).toMatch(new RegExp(`study ${first.studyId}: 4 candidates x 2 folds = 8 builds, 16 grove task\\(s\\) queued`));
    expect(published.stderr).toMatch(new RegExp(`study ${first.studyId}: builds 8/8 done`));
    expect(last).toMatchObject({ kind: "study", studyId: first.studyId, builds: { total: 8, completed: 8, failed: 0 } });
    // The same study embedded: the same id, fold scores and best.
    await expectEmbeddedTune(search, last, async (local, store) => {
      // Its final model (the default refit), trained by the deployed trainers after the ranking: the embedded one.
      expect(published.stderr).toMatch(new RegExp(`study ${first.studyId}: ranked; final model ${local.final.buildId}: groves`));
      expect(last.final).toMatchObject({ buildId: local.final.buildId, metrics: local.final.metrics, testRows: local.final.testRows });
      const deployed = await new S3BlobStore(aws.current.resources.bucket).get(keys.model(local.final.buildId));
      expect(Buffer.from(deployed!).equals(readFileSync(join(store, "builds", local.final.buildId, "model.canopy")))).toBe(true);
    });
    // Submitting it again finds it done.
    const again = await canopy(["publish", IRIS, ...search, "--tune", "--endpoint", endpoint], bareEnv());
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain(`study ${first.studyId} already exists with the same data and search (COMPLETED)`);
    const refused = await canopy(["publish", IRIS, "--label", "species", "--grid", "max_depth=1,2", "--endpoint", endpoint], bareEnv());
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("--grid searches candidates: add --tune to start a study");
    await until("the study notification", () => (watcher.out().trim() ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 2000));
    watcher.kill("SIGINT");
    expect((await watcher.done).code).toBe(0);
    const lines = watcher.out().trim().split("\n").map((l) => JSON.parse(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ v: 1, type: "study.completed", studyId: first.studyId, best_params_: last.best_params_, candidates: 4, cv: 2, final: { buildId: last.final.buildId } });
  });

  it("publish --tune --oob --wait: one build per candidate scored out of bag, the embedded run's ranking", { timeout: 240_000 }, async () => {
    const { endpoint } = aws.current.moto;
    const search = ["--label", "species", "--trees", "6", "--grove-size", "3", "--seed", "4", "--grid", "max_depth=1,none", "--grid", "min_samples_leaf=1,5", "--oob"];
    const published = await canopy(["publish", IRIS, ...search, "--tune", "--wait", "--json", "--endpoint", endpoint], bareEnv());
    expect(published.code, published.stderr).toBe(0);
    const [first, last] = published.stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(first).toMatchObject({ created: true, candidates: 4, builds: 4, groves: 8 });
    expect(published.stderr).toMatch(new RegExp(`study ${first.studyId}: 4 candidates scored out of bag = 4 builds, 8 grove task\\(s\\) queued`));
    expect(last).toMatchObject({ kind: "study", studyId: first.studyId, cv: 1, spec: { oob: true }, builds: { total: 4, completed: 4, failed: 0 } });
    await expectEmbeddedTune(search, last);
    // Out of bag the final model is the best candidate's own build: nothing more trained.
    expect(last.final.buildId).toBe(last.candidates[last.best_index_].buildIds[0]);
  });

  it("publish --tune --halving --wait: the deployed aggregator extends each round's survivors and queues the final build; the embedded run's rounds and model", { timeout: 240_000 }, async () => {
    const { endpoint } = aws.current.moto;
    const search = ["--label", "species", "--trees", "9", "--grove-size", "3", "--seed", "6", "--grid", "max_depth=1,2,none", "--cv", "2", "--halving", "--min-trees", "3"];
    const published = await canopy(["publish", IRIS, ...search, "--tune", "--wait", "--json", "--endpoint", endpoint], bareEnv());
    expect(published.code, published.stderr).toBe(0);
    const [first, last] = published.stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(published.stderr).toMatch(new RegExp(`study ${first.studyId}: round 1: builds 2/2 done`));
    expect(last.rounds.map((r: { trees: number; candidates: unknown[] }) => [r.trees, r.candidates.length])).toEqual([[3, 3], [9, 1]]);
    await expectEmbeddedTune(search, last, async (local, store) => {
      expect(last.rounds.map((r: { candidates: { split_test_scores: number[] }[] }) => r.candidates.map((c) => c.split_test_scores))).toEqual(
        local.rounds!.map((r) => r.candidates.map((c) => c.split_test_scores)),
      );
      expect(last.final.buildId).toBe(local.final.buildId);
      const bucket = new S3BlobStore(aws.current.resources.bucket);
      for (const id of [...last.candidates[0].buildIds, last.final.buildId])
        expect(Buffer.from((await bucket.get(keys.model(id)))!).equals(readFileSync(join(store, "builds", id, "model.canopy"))), id).toBe(true);
    });
  });

  it("publish --partition-by --wait: a partitioned run on the emulator ends with the embedded run's models and one partitions notification", { timeout: 240_000 }, async () => {
    const { endpoint } = aws.current.moto;
    const options = ["--label", "Species", "--trees", "4", "--grove-size", "2", "--seed", "4", "--partition-by", "Island", "--fallback", "global"];
    const watcher = start(["watch", "--json", "--type", "partitions.completed,partitions.failed", "--endpoint", endpoint, "--topic", aws.current.resources.topicArn]);
    await until("watch to subscribe", () => (/watching .*"type":\["partitions.completed","partitions.failed"\]/.test(watcher.err()) ? true : undefined));
    const published = await canopy(["publish", PENGUINS, ...options, "--wait", "--json", "--endpoint", endpoint], bareEnv());
    expect(published.code, published.stderr).toBe(0);
    const [first, last] = published.stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(first).toMatchObject({ created: true, builds: 4, groves: 8, skipped: 0 });
    expect(published.stderr).toMatch(/read 344 rows: 3 partitions/);
    expect(published.stderr).toMatch(new RegExp(`${first.runId}: partitions 4/4 done`));
    expect(last).toMatchObject({ kind: "partitions", runId: first.runId, partitionBy: "Island", counts: { partitions: 3, completed: 3, failed: 0, skipped: 0, rows: 344 } });
    // The deployed aggregator wrote the run's page: status says where, and --url presigns it.
    const { bucket } = aws.current.resources;
    const status = await canopy(["status", first.runId]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`^page +s3://${bucket}/partitions/${first.runId}/report\\.html$`, "m"));
    const signed = await canopy(["status", first.runId, "--url", "--json"]);
    expect(signed.code, signed.stderr).toBe(0);
    const page = (JSON.parse(signed.stdout) as { page: string }).page;
    expect(page).toMatch(new RegExp(`^${endpoint}/${bucket}/partitions/${first.runId}/report\\.html\\?.*X-Amz-Signature=`));
    const fetched = await fetch(page);
    expect(fetched.status).toBe(200);
    expect(fetched.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(await fetched.text()).toContain(`<h1>Canopy partitioned run ${first.runId}: penguins.csv</h1>`);
    const dir = await mkdtemp(join(tmpdir(), "canopy-partitions-"));
    try {
      const embedded = await canopy(["train", PENGUINS, ...options, "--workers", "1", "--root", join(dir, "store"), "--json"]);
      expect(embedded.code, embedded.stderr).toBe(0);
      const local = JSON.parse(embedded.stdout);
      expect(local.runId).toBe(first.runId);
      const blobs = new S3BlobStore(aws.current.resources.bucket);
      const model = JSON.parse(new TextDecoder().decode((await blobs.get(keys.partitionedModel(first.runId)))!));
      const mine = JSON.parse(readFileSync(join(dir, "store", keys.partitionedModel(first.runId)), "utf8"));
      expect(model).toEqual(mine);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const again = await canopy(["publish", PENGUINS, ...options, "--endpoint", endpoint], bareEnv());
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain(`partitioned run ${first.runId} already exists with the same data and options (COMPLETED)`);
    const refused = await canopy(["publish", PENGUINS, "--label", "Species", "--partition-by", "Beak Length (mm)", "--endpoint", endpoint], bareEnv());
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/an identifier|no partition to train/);
    await until("the run's notification", () => (watcher.out().trim() ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 2000));
    watcher.kill("SIGINT");
    expect((await watcher.done).code).toBe(0);
    const lines = watcher.out().trim().split("\n").map((l) => JSON.parse(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ v: 1, type: "partitions.completed", runId: first.runId, partitionBy: "Island", fallback: true });
    const schema = JSON.parse(readFileSync(new URL("../../schemas/partitions-notification.v1.json", import.meta.url), "utf8")) as Schema;
    expect(validate(lines[0], schema)).toEqual([]);
  });

  it("publish --tune --partition-by --wait: a tuned run on the emulator ends with embedded canopy tune --partition-by's models and one partitions notification", { timeout: 240_000 }, async () => {
    const { endpoint } = aws.current.moto;
    const options = ["--label", "Species", "--trees", "4", "--grove-size", "2", "--seed", "8", "--partition-by", "Island", "--grid", "max_depth=1,3", "--cv", "2"];
    const watcher = start(["watch", "--json", "--type", "partitions.completed,partitions.failed", "--endpoint", endpoint, "--topic", aws.current.resources.topicArn]);
    await until("watch to subscribe", () => (/watching .*"type":\["partitions.completed","partitions.failed"\]/.test(watcher.err()) ? true : undefined));
    const published = await canopy(["publish", PENGUINS, ...options, "--tune", "--wait", "--json", "--endpoint", endpoint], bareEnv());
    expect(published.code, published.stderr).toBe(0);
    const [first, last] = published.stdout.trim().split("\n").map((l) => JSON.parse(l));
    // 3 islands x 2 candidates x 2 folds.
    expect(first).toMatchObject({ created: true, builds: 12, groves: 24, skipped: 0 });
    // Polled: the tuning stage's counts as seen (it may be ranked between two polls), then the final stage's to the end.
    expect(published.stderr).toMatch(new RegExp(`${first.runId}: builds \\d+/12 done`));
    // The last poll sees the final stage done, or (under load) still writing the partitioned model before --wait reads it COMPLETED.
    expect(published.stderr).toMatch(new RegExp(`${first.runId}: ranked; final builds 3/3 done(; writing the partitioned model)?\n$`));
    expect(last).toMatchObject({ kind: "partitions", runId: first.runId, counts: { partitions: 3, completed: 3 }, tuning: { mode: "independent", cv: 2 } });
    const dir = await mkdtemp(join(tmpdir(), "canopy-tuned-"));
    try {
      const embedded = await canopy(["tune", PENGUINS, ...options, "--workers", "1", "--root", join(dir, "store"), "--json"]);
      expect(embedded.code, embedded.stderr).toBe(0);
      expect(JSON.parse(embedded.stdout).runId).toBe(first.runId);
      const blobs = new S3BlobStore(aws.current.resources.bucket);
      const model = JSON.parse(new TextDecoder().decode((await blobs.get(keys.partitionedModel(first.runId)))!));
      expect(model).toEqual(JSON.parse(readFileSync(join(dir, "store", keys.partitionedModel(first.runId)), "utf8")));
      for (const ref of Object.values(model.partitions) as { build: string }[])
        expect(Buffer.from((await blobs.get(keys.model(ref.build)))!).equals(readFileSync(join(dir, "store", keys.model(ref.build)))), ref.build).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    await until("the run's notification", () => (watcher.out().trim() ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 2000));
    watcher.kill("SIGINT");
    expect((await watcher.done).code).toBe(0);
    const lines = watcher.out().trim().split("\n").map((l) => JSON.parse(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ type: "partitions.completed", runId: first.runId, tuning: { mode: "independent", scoring: "accuracy", cv: 2, refit: true } });
    const schema = JSON.parse(readFileSync(new URL("../../schemas/partitions-notification.v1.json", import.meta.url), "utf8")) as Schema;
    expect(validate(lines[0], schema)).toEqual([]);
  });

  it("publish streams a Parquet table from s3:// (ranged reads), infers its schema and trains it", { timeout: 120_000 }, async () => {
    const { endpoint } = aws.current.moto;
    const { PutObjectCommand } = await import("@aws-sdk/client-s3");
    await clients.s3().send(new PutObjectCommand({ Bucket: "canopy-artifacts", Key: "inputs/flights.data", Body: readFileSync(FLIGHTS) }));
    const published = await canopy(
      ["publish", "s3://canopy-artifacts/inputs/flights.data", "--label", "delay", "--trees", "4", "--grove-size", "2", "--wait", "--json", "--endpoint", endpoint],
      bareEnv(),
    );
    expect(published.code, published.stderr).toBe(0);
    const [submitted, status] = published.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(submitted).toMatchObject({ created: true, groves: 2, trees: 4 });
    expect(status).toMatchObject({ status: "COMPLETED" });
    const report = JSON.parse(new TextDecoder().decode(await new S3BlobStore("canopy-artifacts").get(keys.report(submitted!.buildId as string)))) as {
      dataset: { nRows: number; schema: { columns: { name: string; kind: string }[] } };
    };
    expect(report.dataset.nRows).toBe(6000);
    expect(Object.fromEntries(report.dataset.schema.columns.map((c) => [c.name, c.kind]))).toEqual({
      date: "datetime",
      distance: "numeric",
      origin: "categorical",
      destination: "categorical",
    });
  });

  it("publish --extend gives a finished build more trees: the new groves queued, the old copied, the fresh build's bytes", { timeout: 120_000 }, async () => {
    const { endpoint } = aws.current.moto;
    const base = ["--label", "species", "--grove-size", "2", "--seed", "21", "--endpoint", endpoint];
    const parent = await canopy(["publish", IRIS, ...base, "--trees", "4", "--wait", "--json"], bareEnv());
    expect(parent.code, parent.stderr).toBe(0);
    const parentId = (JSON.parse(parent.stdout.split("\n")[0]) as { buildId: string }).buildId;

    const extended = await canopy(["publish", "--extend", parentId, "--trees", "10", "--wait", "--json", "--endpoint", endpoint], bareEnv());
    expect(extended.code, extended.stderr).toBe(0);
    const [submitted, status] = extended.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(submitted).toMatchObject({ created: true, status: "TRAINING", extends: parentId, copied: [0, 1], queued: [2, 3, 4], groves: 5, trees: 10 });
    expect(status).toMatchObject({ status: "COMPLETED", trees: { landed: 10, total: 10 } });
    expect(extended.stderr).toContain(`canopy: build ${submitted!.buildId} extends ${parentId} to 10 trees: 2 grove(s) copied from it, 3 grove(s) of new trees queued\n`);

    // The model the deployed functions made is the one a fresh 10-tree build of the same data and spec makes.
    const { fresh, ports } = await embeddedIris({ n_estimators: 10, grove_size: 2, seed: 21 });
    expect(fresh.buildId).toBe(submitted!.buildId);
    const onS3 = await new S3BlobStore("canopy-artifacts").get(keys.model(fresh.buildId));
    expect(Buffer.from(onS3!).equals(Buffer.from((await ports.blobs.get(keys.model(fresh.buildId)))!))).toBe(true);

    const refusals = await Promise.all([
      canopy(["publish", "--extend", parentId, "--trees", "4", "--endpoint", endpoint], bareEnv()),
      canopy(["publish", "--extend", parentId, "--trees", "12", "--seed", "3", "--endpoint", endpoint], bareEnv()),
      canopy(["publish", IRIS, "--extend", parentId, "--trees", "12", "--endpoint", endpoint], bareEnv()),
      canopy(["publish", "--extend", "b-0123456789abcdef", "--trees", "12", "--endpoint", endpoint], bareEnv()),
    ]);
    expect(refusals.map((r) => [r.code, r.stdout, r.stderr])).toEqual([
      [2, "", `canopy: error: cannot extend build ${parentId} to 4 trees: it has 4; extending adds trees, so ask for more than 4\n`],
      [2, "", `canopy: error: --seed: would change build ${parentId}'s seed (21) to 3; an extension keeps every option but the number of trees\n`],
      [2, "", `canopy: error: --extend trains on the data of build ${parentId}; leave out ${IRIS}\n`],
      [2, "", "canopy: error: cannot extend build b-0123456789abcdef: it is not in table canopy-builds\n"],
    ]);
  });

  it("publish --oob-score --refit: the held-out metrics measured by the deployed functions, then the shipped model on every row", { timeout: 120_000 }, async () => {
    const { endpoint } = aws.current.moto;
    const run = await canopy(["publish", IRIS, "--label", "species", "--trees", "6", "--grove-size", "2", "--seed", "8", "--oob-score", "--refit", "--wait", "--json", "--endpoint", endpoint], bareEnv());
    expect(run.code, run.stderr).toBe(0);
    const [submitted, evaluated, refitted, final] = run.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    const evaluationId = submitted!.buildId as string;
    expect(evaluated).toMatchObject({ buildId: evaluationId, status: "COMPLETED" });
    expect(refitted).toMatchObject({ created: true, status: "TRAINING", refitOf: evaluationId, queued: [0, 1, 2], groves: 3, trees: 6 });
    expect(final).toMatchObject({ buildId: refitted!.buildId, status: "COMPLETED", refitOf: { of: evaluationId }, oob_score: expect.any(Number) });
    expect(evaluated).toMatchObject({ oob_score: expect.any(Number) });
    expect(run.stderr).toContain(`canopy: refit: build ${evaluationId} measured the held-out metrics; build ${refitted!.buildId} trains the shipped model on every row: 3 grove task(s) queued\n`);

    // The reports in the bucket: the refit's carries the evaluation's held-out metrics and oob_score; both linked.
    const s3 = new S3BlobStore("canopy-artifacts");
    const json = async (key: string) => JSON.parse(new TextDecoder().decode((await s3.get(key))!)) as BuildReport;
    const [evaluation, refit] = await Promise.all([json(keys.report(evaluationId)), json(keys.report(refitted!.buildId as string))]);
    expect(refit.refitOf).toMatchObject({ of: evaluationId, trainRows: 112, testRows: 38, oob_score: evaluation.oob_score });
    expect(refit.refitOf!.metrics).toMatchObject({ accuracy: (evaluation.metrics as { accuracy: number }).accuracy });
    expect(refit.metrics).toBeNull();
    expect(refit.oob).toMatchObject({ metric: "accuracy", rows: 150, key: keys.oob(refitted!.buildId as string) });
    expect(evaluation.oob).toMatchObject({ rows: 112 });
    expect(JSON.parse(new TextDecoder().decode((await s3.get(keys.refitLink(evaluationId)))!))).toEqual({ v: 1, refit: refitted!.buildId });

    // The same bytes as the embedded pipeline: the refit's model and oob.bin.
    const { fresh, ports } = await embeddedIris({ n_estimators: 6, grove_size: 2, seed: 8, oob_score: true, test_fraction: 0 });
    expect(fresh.buildId).toBe(refitted!.buildId);
    for (const key of [keys.model(fresh.buildId), keys.oob(fresh.buildId)])
      expect(Buffer.from((await s3.get(key))!).equals(Buffer.from((await ports.blobs.get(key))!)), key).toBe(true);
  });

  it("publish --dry-run of an s3:// table names the build a publish then creates, and writes nothing", { timeout: 120_000 }, async () => {
    const { endpoint } = aws.current.moto;
    const { PutObjectCommand, ListObjectsV2Command } = await import("@aws-sdk/client-s3");
    await clients.s3().send(new PutObjectCommand({ Bucket: "canopy-artifacts", Key: "inputs/iris-dry.csv", Body: readFileSync(IRIS) }));
    const listing = async () => ((await clients.s3().send(new ListObjectsV2Command({ Bucket: "canopy-artifacts" }))).Contents ?? []).map((o) => o.Key).sort();
    const before = await listing();
    const args = ["publish", "s3://canopy-artifacts/inputs/iris-dry.csv", "--label", "species", "--trees", "6", "--grove-size", "3", "--seed", "11", "--endpoint", endpoint];
    const dry = await canopy([...args, "--dry-run", "--json"], bareEnv());
    expect(dry.code, dry.stderr).toBe(0);
    const planned = JSON.parse(dry.stdout) as { dryRun: boolean; buildId: string; groves: number; estimate: { rows: unknown[] } };
    expect(planned).toMatchObject({ dryRun: true, groves: 2 });
    expect(planned.estimate.rows).toHaveLength(8); // 6, 100, 1,000 and 10,000 trees in both modes
    // Nothing was written: no pack, no manifest, no ledger record.
    expect(await listing()).toEqual(before);
    expect(await new DynamoLedger(aws.current.resources.table).get(planned.buildId)).toBeUndefined();

    const published = await canopy([...args, "--json"], bareEnv());
    expect(published.code, published.stderr).toBe(0);
    expect(JSON.parse(published.stdout.trim().split("\n")[0]!)).toMatchObject({ buildId: planned.buildId, created: true });
  });

  it("subscribe --sqs: --status FAILED receives only failed builds, --tag only builds with the tag; queue policies are set", { timeout: 120_000 }, async () => {
    const sqs = clients.sqs();
    const queue = async (name: string) => {
      const url = (await sqs.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl!;
      const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }))).Attributes!.QueueArn!;
      return { url, arn };
    };
    const failedOnly = await queue("failed-only");
    const teamA = await queue("team-a");
    const [byStatus, byTag] = await Promise.all([
      canopy(["subscribe", "--sqs", failedOnly.arn, "--status", "FAILED", "--json"]),
      canopy(["subscribe", "--sqs", teamA.arn, "--tag", "team=a", "--json"]),
    ]);
    expect(byStatus.code).toBe(0);
    expect(byTag.code).toBe(0);
    expect(JSON.parse(byStatus.stdout)).toMatchObject({ protocol: "sqs", endpoint: failedOnly.arn, filterPolicy: { status: ["FAILED"] }, filterPolicyScope: "MessageAttributes" });
    expect(JSON.parse(byTag.stdout)).toMatchObject({ filterPolicy: { tags: { team: ["a"] } }, filterPolicyScope: "MessageBody" });
    for (const q of [failedOnly, teamA]) {
      const policy = JSON.parse((await sqs.send(new GetQueueAttributesCommand({ QueueUrl: q.url, AttributeNames: ["Policy"] }))).Attributes!.Policy!) as { Statement: unknown[] };
      expect(policy.Statement).toContainEqual(
        expect.objectContaining({ Effect: "Allow", Principal: { Service: "sns.amazonaws.com" }, Action: "sqs:SendMessage", Resource: q.arn, Condition: { ArnEquals: { "aws:SourceArn": aws.current.resources.topicArn } } }),
      );
    }

    // A build that completes (tag team=a), then one that fails (team=b): its pack (hash and key) is one that was
    // never stored, so its grove task fails, goes to the dead-letter queue, and the build fails with one notification.
    const r = aws.current.resources;
    const ports = { blobs: new S3BlobStore(r.bucket), ledger: new DynamoLedger(r.table), queue: new SqsTaskQueue(r.queueUrl) };
    const prepared = await prepareDataset(readFileSync(IRIS), { label: "species" }, ports.blobs);
    const spec = (seed: number, team: string) => parseBuildSpec({ dataset: IRIS, label: "species", n_estimators: 2, grove_size: 2, seed, tags: { team } });
    const good = await submitBuild(spec(8, "a"), ports, prepared);
    await inboxNotifications([good.buildId]);
    const missing = "f".repeat(64);
    const bad = await submitBuild(spec(9, "b"), ports, { ...prepared, pack: { ...prepared.pack, hash: missing }, packKey: keys.pack(missing) });
    const inbox = await inboxNotifications([bad.buildId]);
    const failed = inbox.get(bad.buildId)!.notification;
    expectValidNotification(failed);
    expect(failed).toMatchObject({ type: "build.failed", status: "FAILED", tags: { team: "b" }, failedGroves: [{ grove: 0 }] });
    expect(failed.failedGroves![0].error).toContain("not found");

    const ids = async (url: string) => (await receiveMessages(url, { count: 2, timeoutMs: 2000 })).map((m) => decodeSnsDelivery(m.body).notification.buildId);
    expect(await ids(failedOnly.url)).toEqual([bad.buildId]);
    expect(await ids(teamA.url)).toEqual([good.buildId]);

    // status of the failed build names the grove, its error and the reason.
    const text = await canopy(["status", bad.buildId]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^build +${bad.buildId}  FAILED$`, "m"));
    expect(text.stdout).toMatch(/^groves +0\/1 landed, 1 failed, 0\/2 trees \(tolerates 0 failed\)$/m);
    expect(text.stdout).toMatch(/^failed +grove 0: .*not found/m);
    expect(text.stdout).toMatch(/^reason +\S/m);
    await ports.ledger.close();
  });

  it("bad usage exits 2 with one line and creates nothing", { timeout: 60_000 }, async () => {
    const runs = await Promise.all([
      canopy(["publish"]),
      canopy(["subscribe", "--email", "a@example.com", "--sqs", "arn:aws:sqs:us-east-1:123456789012:q"]),
      canopy(["watch", "--status", "DONE"]),
      canopy(["status", "b-123"]),
      canopy(["publish", IRIS, "--trees", "0"]),
      canopy(["publish", IRIS, "--trees", "20000", "--grove-size", "1"]),
    ]);
    const lines = runs.map((run) => {
      expect(run.code).toBe(2);
      expect(run.stdout).toBe("");
      expect(run.stderr).toMatch(/^canopy: error: [^\n]+\n$/);
      return run.stderr;
    });
    expect(lines).toEqual([
      "canopy: error: missing required argument 'data'\n",
      "canopy: error: one subscription at a time: --email and --sqs given\n",
      "canopy: error: option '--status <list>' argument 'DONE' is invalid. Expected a comma-separated list of COMPLETED, FAILED.\n",
      'canopy: error: "b-123" is not a build id (b- and 16 hex digits)\n',
      "canopy: error: --trees: must be an integer >= 1 (got 0)\n",
      "canopy: error: --trees 20000 in groves of 1 make 20000 groves; a build on AWS has at most 10000: use --grove-size 2 or more\n",
    ]);
    expect(await watchQueues()).toEqual([]);
  });

  it("the schema's validator is not vacuous: broken notifications fail it", () => {
    const ok: BuildNotification = { v: 1, type: "build.failed", buildId: "b-0123456789abcdef", status: "FAILED", tags: {}, reason: "grove 3 failed" };
    expect(validate(ok, SCHEMA)).toEqual([]);
    expect(validate({ ...ok, buildId: "b-1" }, SCHEMA)).toEqual(["$.buildId: does not match ^b-[0-9a-f]{16}$"]);
    expect(validate({ ...ok, status: "COMPLETED" }, SCHEMA)).toEqual(["$.status: expected \"FAILED\""]);
    const { reason: _reason, ...noReason } = ok;
    expect(validate(noReason, SCHEMA)).toEqual(["$: missing reason"]);
    expect(validate({ ...ok, type: "build.completed", status: "COMPLETED" }, SCHEMA)).toEqual(["$: missing metrics", "$: missing timings", "$: missing cost", "$: missing modelKey", "$: missing reportKey"]);
    expect(validate({ ...ok, tags: { n: 1 } }, SCHEMA)).toEqual(["$.tags.n: expected string, got integer"]);
    expect(validate({ ...ok, failedGroves: [{ grove: -1, error: "x" }] }, SCHEMA)).toEqual(["$.failedGroves[0].grove: below 0"]);
  });
});
