/**
 * The SST app, evaluated offline: sst.config.ts bundled and run as `sst deploy` would, against Pulumi mocks,
 * with every handler really bundled (see run-app.ts). Needs `sst install` (.ci/run does it first).
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { AGGREGATION_TRIGGER_FILTER, encodeGroveTask, type BuildSummary, type GroveTask } from "@canopy/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readSettings } from "../../stacks/settings.ts";
import { evaluateApp, platformMissing, removeEvaluations, REPO, scratchApp, type Evaluation } from "./harness.ts";
import { aggregationTriggerEvent, probeFunction } from "./lambda-probe.ts";
import type { AppReport } from "./run-app.ts";
import { describeApp, sstEnvDeclaration, wiringProblems } from "./wiring.ts";

const TUNED = {
  CANOPY_TRAINER_MEMORY_MB: "3008",
  CANOPY_TRAINER_TIMEOUT_SECONDS: "300",
  CANOPY_TRAINER_BATCH_SIZE: "4",
  CANOPY_TRAINER_MAX_CONCURRENCY: "250",
  CANOPY_MAX_RECEIVES: "5",
  CANOPY_AGGREGATOR_RETRIES: "4",
  // Longer than a failing grove's retries with these settings (300 s × 6 × 5 receives = 150 minutes).
  CANOPY_STALL_MINUTES: "180",
  CANOPY_SWEEP_SCHEDULE: "rate(15 minutes)",
};

let defaults: Evaluation;
let tuned: AppReport;
let wrongHandler: AppReport;
const scratch: { remove: () => void }[] = [];

beforeAll(async () => {
  const missing = platformMissing();
  if (missing) throw new Error(missing);
  const tunedApp = scratchApp();
  const brokenApp = scratchApp((root) => {
    const file = path.join(root, "stacks", "handlers.ts");
    writeFileSync(file, readFileSync(file, "utf8").replace("src/trainer.handler", "src/trainr.handler"));
  });
  scratch.push(tunedApp, brokenApp);
  [defaults, tuned, wrongHandler] = await Promise.all([
    evaluateApp(),
    evaluateApp({ root: tunedApp.root, env: TUNED }),
    evaluateApp({ root: brokenApp.root }),
  ]);
}, 300_000);

afterAll(() => {
  for (const s of scratch) s.remove();
  removeEvaluations();
});

describe("the SST app with its default settings", () => {
  it("evaluates without errors and passes every wiring check", () => {
    expect(defaults.errors).toEqual([]);
    expect(wiringProblems(defaults, readSettings({}))).toEqual([]);
  });

  it("bundles every handler; the trainer stays within 5 MB", () => {
    const app = describeApp(defaults);
    const rows = Object.entries(app.functions).map(([name, fn]) => ({
      function: name,
      bundle: `${(fn.build.bundleBytes / 1024 / 1024).toFixed(2)} MB`,
      zip: `${((defaults.zips[fn.build.functionID] ?? 0) / 1024 / 1024).toFixed(2)} MB`,
    }));
    console.log("function bundles (minified ESM, as SST deploys them):");
    console.table(rows);
    expect(rows.map((r) => r.function).sort()).toEqual(["aggregator", "dlq", "sweeper", "trainer"]);
    expect(app.functions.trainer!.build.bundleBytes).toBeLessThanOrEqual(5 * 1024 * 1024);
  });

  it("redrives grove tasks to the DLQ after 3 receives and hides them 6 × the trainer's timeout", () => {
    const { groves, dlq, functions } = describeApp(defaults);
    expect(JSON.parse(groves!.inputs.redrivePolicy)).toEqual({ deadLetterTargetArn: dlq!.state.arn, maxReceiveCount: 3 });
    expect(functions.trainer!.lambda.inputs.timeout).toBe(120);
    expect(groves!.inputs.visibilityTimeoutSeconds).toBe(720);
  });

  it("feeds the trainer one task at a time, with partial batch responses and a concurrency cap below 1,000", () => {
    const { trainer } = describeApp(defaults).functions;
    const mapping = trainer!.mappings[0]!.inputs;
    expect(mapping.batchSize).toBe(1);
    expect(mapping.functionResponseTypes).toEqual(["ReportBatchItemFailures"]);
    expect(mapping.scalingConfig).toEqual({ maximumConcurrency: 100 });
    expect(trainer!.lambda.inputs.memorySize).toBe(1769);
  });

  it("triggers the aggregator from the table's stream with exactly the shared filter, retrying a bounded number of times", () => {
    const { table, failures, functions } = describeApp(defaults);
    expect(table!.inputs.streamViewType).toBe("NEW_AND_OLD_IMAGES");
    const mapping = functions.aggregator!.mappings[0]!.inputs;
    expect(mapping.eventSourceArn).toBe(table!.state.streamArn);
    expect(mapping.filterCriteria).toEqual({ filters: [{ pattern: JSON.stringify(AGGREGATION_TRIGGER_FILTER) }] });
    expect(mapping.maximumRetryAttempts).toBe(2);
    expect(mapping.destinationConfig).toEqual({ onFailure: { destinationArn: failures!.state.arn } });
  });

  it("catches a filter that differs from the shared one", () => {
    const broken = structuredClone(defaults);
    const name = describeApp(broken).functions.aggregator!.mappings[0]!.name;
    const mapping = broken.resources.find((r) => r.name === name)!;
    const pattern = { ...AGGREGATION_TRIGGER_FILTER, eventName: ["INSERT", "MODIFY"] };
    mapping.inputs.filterCriteria = { filters: [{ pattern: JSON.stringify(pattern) }] };
    expect(wiringProblems(broken, readSettings({}))).toEqual([
      `aggregator filter ${JSON.stringify([JSON.stringify(pattern)])} is not AGGREGATION_TRIGGER_FILTER`,
    ]);
  });

  it("links each function to what it uses only: the trainer cannot publish notifications", () => {
    const { functions, topic } = describeApp(defaults);
    const may = (fn: keyof typeof functions) =>
      functions[fn]!.statements.flatMap((s) => [s.Action].flat().map((a) => `${a} ${[s.Resource].flat().join(",")}`));
    expect(functions.trainer!.build.links).toEqual(["CanopyBucket", "CanopyBuilds"]);
    expect(may("trainer").filter((p) => p.startsWith("sns:"))).toEqual([]);
    expect(may("aggregator")).toContain(`sns:* ${topic!.state.arn}`);
    expect(functions.sweeper!.build.links).toEqual(["CanopyBucket", "CanopyBuilds", "CanopyGroves", "CanopyNotifications"]);
  });

  it("sweeps every 5 minutes, with a stall limit longer than a failing grove's retries and an aggregation's time limit", () => {
    const { rule, functions } = describeApp(defaults);
    expect(rule!.inputs.scheduleExpression).toBe("rate(5 minutes)");
    expect(functions.sweeper!.lambda.inputs.environment.variables).toMatchObject({
      CANOPY_STALL_MINUTES: "45",
      CANOPY_AGGREGATOR_TIMEOUT_SECONDS: "300",
      CANOPY_LEDGER_RETENTION_DAYS: "90",
    });
  });

  it("keeps the ledger small to sweep: an open-builds index (keys only) and a TTL on finished items", () => {
    const { table, functions } = describeApp(defaults);
    expect(table!.inputs.ttl).toEqual({ attributeName: "expiresAt", enabled: true });
    expect(table!.inputs.globalSecondaryIndexes).toEqual([
      { name: "open-builds", hashKey: "open", rangeKey: "createdAt", projectionType: "KEYS_ONLY" },
    ]);
    for (const fn of ["trainer", "aggregator", "dlq", "sweeper"] as const)
      expect(functions[fn]!.lambda.inputs.environment.variables.CANOPY_LEDGER_RETENTION_DAYS, fn).toBe("90");
  });

  it("outputs the bucket, queue, table and topic", () => {
    const { bucket, groves, table, topic } = describeApp(defaults);
    expect(defaults.outputs).toMatchObject({
      bucket: bucket!.state.bucket,
      queue: groves!.state.url,
      table: table!.state.name,
      topic: topic!.state.arn,
    });
  });

  it("matches the committed sst-env.d.ts", () => {
    const committed = readFileSync(path.join(REPO, "sst-env.d.ts"), "utf8");
    expect(committed).toContain(sstEnvDeclaration(defaults));
  });
});

describe("the deployed functions", () => {
  const task: GroveTask = {
    v: 1,
    buildId: "b-0123456789abcdef",
    grove: 0,
    treeStart: 0,
    treeEnd: 10,
    packKey: "packs/probe.pack",
    packHash: "a".repeat(64),
    seed: 1,
    testFraction: 0.2,
    params: { n_estimators: 10, random_state: 1 },
    queuedAt: 1,
  };
  const sqsEvent = (queueArn: string, receives: number) => ({
    Records: [
      {
        messageId: "m-1",
        receiptHandle: "r-1",
        body: encodeGroveTask(task),
        attributes: { ApproximateReceiveCount: String(receives), SentTimestamp: "1", SenderId: "probe", ApproximateFirstReceiveTimestamp: "1" },
        messageAttributes: {},
        md5OfBody: "",
        eventSource: "aws:sqs",
        eventSourceARN: queueArn,
        awsRegion: "us-east-1",
      },
    ],
  });
  const ready: BuildSummary = {
    buildId: task.buildId,
    status: "TRAINING",
    total: 1,
    remaining: 0,
    landedCount: 1,
    failedCount: 0,
    treesLanded: 10,
    tolerated: 0,
    createdAt: 1,
    updatedAt: 2,
    lastLandedAt: 2,
    tags: {},
  };
  const streamEvent = (streamArn: string) => aggregationTriggerEvent(streamArn, ready, { ...ready, remaining: 1, landedCount: 0, treesLanded: 0 });

  // Each function runs from a copy of its bundle with only its Lambda environment, against a fake AWS endpoint:
  // the names in its requests can only have come from SST's links (resource.enc, decrypted with SST_KEY).
  it.each([
    // Every ledger transition reads the build's counter first (the probe refuses it, so nothing follows).
    ["trainer", "GetItem"],
    ["aggregator", "GetItem"],
    ["dlq", "GetItem"],
    // The open-builds index.
    ["sweeper", "Query"],
  ] as const)("the %s finds the builds table through its links and reaches only what it links", async (key, operation) => {
    const app = describeApp(defaults);
    const fn = app.functions[key]!;
    const events = {
      trainer: sqsEvent(app.groves!.state.arn!, 1),
      dlq: sqsEvent(app.dlq!.state.arn!, 3),
      aggregator: streamEvent(app.table!.state.streamArn!),
      sweeper: {},
    };
    const { requests, output } = await probeFunction({
      bundleDir: path.join(defaults.root, ".sst", "artifacts", `${fn.build.functionID}-src`),
      handler: fn.build.builtHandler,
      environment: fn.lambda.inputs.environment.variables,
      memoryMb: fn.lambda.inputs.memorySize,
      event: events[key],
    });
    const linked: Record<string, string> = {
      CanopyBucket: app.bucket!.state.bucket!,
      CanopyBuilds: app.table!.state.name!,
      CanopyNotifications: app.topic!.state.arn!,
      CanopyGroves: app.groves!.state.url!,
    };
    const reachable = fn.build.links.map((l) => linked[l]);
    expect(requests, output.trim().split("\n").at(-1)).toContainEqual({ service: "dynamodb", operation, resource: app.table!.state.name });
    for (const r of requests) expect(reachable).toContain(r.resource);
  });
});

describe("the SST app with tuned settings", () => {
  it("carries every setting through to the resources", () => {
    expect(wiringProblems(tuned, readSettings(TUNED))).toEqual([]);
    const { groves, rule, functions } = describeApp(tuned);
    expect(groves!.inputs.visibilityTimeoutSeconds).toBe(1800);
    expect(JSON.parse(groves!.inputs.redrivePolicy).maxReceiveCount).toBe(5);
    expect(functions.trainer!.lambda.inputs).toMatchObject({ memorySize: 3008, timeout: 300 });
    expect(functions.trainer!.mappings[0]!.inputs).toMatchObject({ batchSize: 4, scalingConfig: { maximumConcurrency: 250 } });
    expect(functions.aggregator!.mappings[0]!.inputs.maximumRetryAttempts).toBe(4);
    expect(rule!.inputs.scheduleExpression).toBe("rate(15 minutes)");
    expect(functions.sweeper!.lambda.inputs.environment.variables.CANOPY_STALL_MINUTES).toBe("180");
  });

  it("refuses settings that contradict each other, in one line", () => {
    expect(() => readSettings({ ...TUNED, CANOPY_STALL_MINUTES: "45" })).toThrow(
      /^CANOPY_STALL_MINUTES \(45\) must be longer than a failing grove takes to reach the dead-letter queue: a visibility timeout of 1800 s × CANOPY_MAX_RECEIVES 5 = 150 minutes/,
    );
  });
});

describe("a broken SST app", () => {
  it("fails to evaluate when a handler path is wrong", () => {
    expect(wrongHandler.errors).toContain("Handler not found: packages/functions/src/trainr.handler");
    expect(wrongHandler.builds.map((b) => b.handler)).not.toContain("packages/functions/src/trainr.handler");
  });
});
