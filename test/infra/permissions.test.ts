/**
 * Least privilege, checked against what the functions really do: each function of the app, built as `sst deploy`
 * builds it, runs from its bundle against moto holding the app's resources (by the names its links give it), through
 * an endpoint that records every request. Every request it makes must be allowed by its role; and every action its
 * role grants (but the authorisation-only ones) must be used, so a grant nobody needs shows up too. The scenarios
 * walk each function's paths that touch AWS: a grove trained and one failing (its error note written), a grove
 * given up on over tolerance, a build aggregated, a stalled build swept, a model served by alias and an unknown one
 * refused. Needs `sst install` and moto_server.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { CreateTopicCommand } from "@aws-sdk/client-sns";
import { parseBuildSpec, prepareDataset, submitBuild, trainGrove, type BuildRecord, type GroveTask } from "@canopy/core";
import { MemoryQueue } from "@canopy/core/testing";
import { clients, DynamoLedger, DynamoModelRegistry, S3BlobStore } from "@canopy/runtime-aws";
import { FUNCTION_ACCESS, type FunctionName } from "@canopy/runtime-aws/access";
import { beforeAll, describe, expect, it } from "vitest";
import { createBuildsTable, useAwsEmulator } from "../aws/harness.ts";
import { functionUrlEvent } from "../serving/support.ts";
import { REPO, useEvaluatedApp } from "./harness.ts";
import { aggregationTriggerEvent, allows, groveTaskEvent, iamRequest, probeFunction, type ProbeRequest } from "./lambda-probe.ts";
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

const used: Record<FunctionName, ProbeRequest[]> = { trainer: [], aggregator: [], dlq: [], sweeper: [], predict: [] };

/** Runs one function from its bundle on moto; every request it makes must be allowed by its role. */
async function run(name: FunctionName, event: unknown): Promise<{ requests: ProbeRequest[]; output: string }> {
  const fn = built(name);
  const result = await probeFunction({
    // What Lambda runs: the code.zip (the aggregator's carries report.html's chart library).
    codeZip: path.join(evaluated.current.root, ".sst", "artifacts", fn.build.functionID, "code.zip"),
    handler: fn.build.builtHandler,
    environment: fn.lambda.inputs.environment.variables,
    memoryMb: fn.lambda.inputs.memorySize,
    endpoint: aws.current.moto.endpoint,
    event,
    timeoutMs: 120_000,
  });
  for (const r of result.requests) {
    const { action, arn } = iamRequest(r, MOCK_ACCOUNT, MOCK_REGION);
    expect(allows(fn.statements, action, arn), `${name} calls ${r.operation} (${action} on ${arn}), which its role does not allow`).toBe(true);
  }
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

  beforeAll(async () => {
    const described = describeApp(evaluated.current);
    await clients.s3().send(new CreateBucketCommand({ Bucket: described.bucket!.state.bucket! }));
    await createBuildsTable(described.table!.state.name!);
    await clients.sns().send(new CreateTopicCommand({ Name: described.topic!.state.arn!.split(":").at(-1)! }));
    blobs = new S3BlobStore(described.bucket!.state.bucket!);
    ledger = new DynamoLedger(described.table!.state.name!);
    const prepared = await prepareDataset(digits, { label: "digit" }, blobs);
    // Three builds of digits: one for the trainer and the dead letters, one to aggregate, one left to stall.
    const specs = {
      train: { n_estimators: 4, grove_size: 2, seed: 1 },
      aggregate: { n_estimators: 4, grove_size: 2, seed: 2 },
      stalled: { n_estimators: 2, grove_size: 1, seed: 3 },
    };
    for (const [name, spec] of Object.entries(specs)) {
      const queue = new MemoryQueue();
      // The stalled build's record was last touched two hours ago (the sweeper's limit is 30 minutes).
      const clock = name === "stalled" ? { now: () => Date.now() - 2 * 3600_000 } : undefined;
      const writer = clock ? new DynamoLedger(described.table!.state.name!, undefined, { clock }) : ledger;
      const full = parseBuildSpec({ dataset: "test/fixtures/digits.csv", label: "digit", ...spec });
      ids[name] = (await submitBuild(full, { blobs, ledger: writer, queue, ...(clock ? { clock } : {}) }, prepared)).buildId;
      tasks[name] = queue.drain();
    }
    for (const task of tasks.aggregate) await trainGrove(task, { blobs, ledger, memoryMb: 1769 });
  }, 120_000);

  it("the trainer: trains and lands a grove; a grove whose pack is missing leaves its error note", async () => {
    const [good, bad] = tasks.train;
    const landed = await run("trainer", sqsEvent(good, 1, "groves"));
    expect(landed.output).toContain('handler returned {"batchItemFailures":[]}');
    expect((await ledger.get(ids.train))?.landed).toEqual([good.grove]);
    const missing = { ...bad, packKey: `packs/${"0".repeat(64)}.pack`, packHash: "0".repeat(64) };
    const failed = await run("trainer", sqsEvent(missing, 1, "groves"));
    expect(failed.output).toContain(`"itemIdentifier":"m-${bad.buildId}-${bad.grove}-1"`);
    expect(failed.requests.map((r) => `${r.operation} ${r.key ?? ""}`.trim())).toEqual([
      "GetItem",
      `GetObject ${missing.packKey}`,
      `PutObject builds/${bad.buildId}/groves/0000${bad.grove}.error.txt`,
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
      ["model.canopy", "report.json", "report.html"].map((f) => `builds/${ids.aggregate}/${f}`),
    );
    expect((await ledger.get(ids.aggregate))?.status).toBe("COMPLETED");
  });

  it("the sweeper: finds the stalled build, fails it and notifies", async () => {
    const { output } = await run("sweeper", {});
    expect(output).toContain(ids.stalled);
    expect((await ledger.get(ids.stalled))?.status).toBe("FAILED");
  });

  it("predict: serves the production model by alias, and refuses an unknown build with 404", async () => {
    await new DynamoModelRegistry(describeApp(evaluated.current).table!.state.name!).promote(ids.aggregate, "production");
    const summary = await run("predict", functionUrlEvent({ method: "GET" }));
    expect(summary.output).toContain('"statusCode":200');
    const unknown = await run("predict", functionUrlEvent({ method: "GET", query: { model: "b-0123456789abcdef" } }));
    expect(unknown.output).toContain('"statusCode":404');
  });

  it("grants nothing a function did not use (but s3:ListBucket and s3:AbortMultipartUpload, which no request names)", () => {
    // ListBucket makes a missing key a 404 rather than a 403; AbortMultipartUpload is called only when an upload fails.
    const authorisationOnly = new Set(["s3:ListBucket", "s3:AbortMultipartUpload"]);
    for (const name of Object.keys(FUNCTION_ACCESS) as FunctionName[]) {
      const fn = built(name);
      const calls = used[name].map((r) => iamRequest(r, MOCK_ACCOUNT, MOCK_REGION));
      expect(calls.length, name).toBeGreaterThan(0);
      // The function's own grants: not its event source's (which Lambda's poller uses, not the function).
      const own = fn.statements.filter((s) => [s.Action].flat().every((a) => /^(s3|dynamodb|sns):/.test(a)) && ![s.Resource].flat().some((r) => r.includes("/stream/")));
      for (const s of own)
        for (const action of [s.Action].flat())
          for (const resource of [s.Resource].flat()) {
            if (authorisationOnly.has(action)) continue;
            const exercised = calls.some((c) => allows([{ Effect: "Allow", Action: action, Resource: resource }], c.action, c.arn));
            expect(exercised, `${name} is granted ${action} on ${resource} but never used it`).toBe(true);
          }
    }
  });
});
