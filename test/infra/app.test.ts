/**
 * The SST app, evaluated offline: sst.config.ts bundled and run as `sst deploy` would, against Pulumi mocks,
 * with every handler really bundled (see run-app.ts). Needs `sst install` (.ci/run does it first).
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { AGGREGATION_TRIGGER_FILTER, type BuildSummary, type GroveTask } from "@canopy/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readSettings } from "../../stacks/settings.ts";
import { evaluateApp, platformMissing, removeEvaluations, REPO, scratchApp, type Evaluation } from "./harness.ts";
import { aggregationTriggerEvent, groveTaskEvent, probeFunction } from "./lambda-probe.ts";
import type { AppReport } from "./run-app.ts";
import { describeApp, sstEnvDeclaration, statementLine, wiringProblems } from "./wiring.ts";

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

/** Provisioned mode for the trainer's mapping. */
const PROVISIONED = { CANOPY_TRAINER_MIN_POLLERS: "10", CANOPY_TRAINER_MAX_POLLERS: "100" };

let defaults: Evaluation;
let tuned: AppReport;
let provisioned: AppReport;
let wrongHandler: AppReport;
const scratch: { remove: () => void }[] = [];

beforeAll(async () => {
  const missing = platformMissing();
  if (missing) throw new Error(missing);
  const tunedApp = scratchApp();
  const provisionedApp = scratchApp();
  const brokenApp = scratchApp((root) => {
    const file = path.join(root, "stacks", "handlers.ts");
    writeFileSync(file, readFileSync(file, "utf8").replace("src/trainer.handler", "src/trainr.handler"));
  });
  scratch.push(tunedApp, provisionedApp, brokenApp);
  [defaults, tuned, provisioned, wrongHandler] = await Promise.all([
    evaluateApp(),
    evaluateApp({ root: tunedApp.root, env: TUNED }),
    evaluateApp({ root: provisionedApp.root, env: PROVISIONED }),
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

  it("trains with Canopy's learner alone: no function bundles ml-random-forest (or its ml-* parts) or a bundler", () => {
    const { functions } = describeApp(defaults);
    const trainer = functions.trainer!.build.packages;
    expect(trainer).toContain("zod");
    for (const fn of Object.values(functions)) {
      expect(fn.build.packages.filter((p) => /^(ml-|esbuild$|@esbuild\/)/.test(p)), fn.build.entry).toEqual([]);
    }
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
    expect(may("aggregator")).toContain(`sns:Publish ${topic!.state.arn}`);
    expect(functions.sweeper!.build.links).toEqual(["CanopyBucket", "CanopyBuilds", "CanopyGroves", "CanopyNotifications"]);
    expect(functions.aggregator!.build.links).toEqual(["CanopyBucket", "CanopyBuilds", "CanopyGroves", "CanopyNotifications"]);
  });

  it("grants each function exactly the actions it uses, on the keys it uses (no wildcard action)", () => {
    const app = describeApp(defaults);
    const names: [string, string | undefined][] = [
      ["bucket", app.bucket!.state.arn],
      ["table", app.table!.state.arn],
      ["topic", app.topic!.state.arn],
      ["groves", app.groves!.state.arn],
      ["dlq", app.dlq!.state.arn],
      ["failures", app.failures!.state.arn],
    ];
    // ARNs by name (the stream's first: it starts with the table's).
    const symbolic = (line: string) =>
      names.reduce((text, [name, arn]) => text.replaceAll(arn!, name), line.replaceAll(app.table!.state.streamArn!, "stream"));
    const grants = (fn: keyof typeof app.functions) => app.functions[fn]!.statements.map((s) => symbolic(statementLine(s)));
    const receive = "sqs:ChangeMessageVisibility,sqs:DeleteMessage,sqs:GetQueueAttributes,sqs:GetQueueUrl,sqs:ReceiveMessage";
    expect(grants("trainer")).toEqual([
      `${receive} groves`,
      "s3:GetObject bucket/packs/*.pack bucket/builds/*/spec.json",
      "s3:ListBucket bucket",
      "s3:PutObject,s3:AbortMultipartUpload bucket/builds/*/groves/*.grove bucket/builds/*/groves/*.error.txt bucket/builds/*/groves/*.oob",
      "dynamodb:GetItem,dynamodb:PutItem,dynamodb:UpdateItem table",
      "sqs:SendMessage dlq",
    ]);
    expect(grants("aggregator")).toEqual([
      "dynamodb:DescribeStream,dynamodb:GetRecords,dynamodb:GetShardIterator,dynamodb:ListStreams stream",
      "sqs:SendMessage failures",
      "s3:GetObject bucket/builds/*/groves/*.grove bucket/builds/*/groves/*.oob bucket/builds/*/model.canopy bucket/packs/*.pack bucket/partitions/*/run.json bucket/partitions/*/tuning.json bucket/builds/*/report.json bucket/builds/*/spec.json bucket/studies/*/study.json bucket/studies/*/rounds/*.json",
      "s3:ListBucket bucket",
      "s3:PutObject,s3:AbortMultipartUpload bucket/builds/*/groves/*.grove bucket/builds/*/groves/*.oob bucket/builds/*/model.canopy bucket/builds/*/oob.bin bucket/partitions/*/report.json bucket/partitions/*/report.html bucket/partitions/*/run.json bucket/partitions/*/tuning.json bucket/partitions/*/model.json bucket/builds/*/report.json bucket/builds/*/report.html bucket/builds/*/spec.json bucket/studies/*/study.json bucket/studies/*/report.json bucket/studies/*/report.html bucket/studies/*/rounds/*.json",
      "dynamodb:BatchGetItem,dynamodb:GetItem,dynamodb:PutItem,dynamodb:UpdateItem table",
      "sns:Publish topic",
      // A study's final build and halving rounds, and a tuned partitioned run's final builds, are queued by its aggregation.
      "sqs:SendMessage groves",
    ]);
    expect(grants("dlq")).toEqual([
      `${receive} dlq`,
      "s3:GetObject bucket/builds/*/groves/*.error.txt",
      "s3:ListBucket bucket",
      "dynamodb:BatchGetItem,dynamodb:GetItem,dynamodb:PutItem,dynamodb:UpdateItem table",
      "sns:Publish topic",
    ]);
    expect(grants("sweeper")).toEqual([
      "s3:GetObject bucket/partitions/*/run.json bucket/builds/*/report.json bucket/builds/*/spec.json bucket/studies/*/study.json",
      "s3:ListBucket bucket",
      "s3:PutObject,s3:AbortMultipartUpload bucket/builds/*/spec.json",
      "dynamodb:BatchGetItem,dynamodb:GetItem,dynamodb:PutItem,dynamodb:UpdateItem table",
      "dynamodb:Query table/index/open-builds",
      "sns:Publish topic",
      "sqs:GetQueueAttributes,sqs:SendMessage groves",
    ]);
  });

  it("catches a role granted more than its function's access", () => {
    const broken = structuredClone(defaults);
    const role = broken.resources.find((r) => r.name === describeApp(broken).functions.trainer!.role.name)!;
    const policy = JSON.parse(role.inputs.inlinePolicies[0].policy);
    policy.Statement.push({ Effect: "Allow", Action: "s3:*", Resource: `${describeApp(broken).bucket!.state.arn}/*` });
    role.inputs.inlinePolicies[0].policy = JSON.stringify(policy);
    const problems = wiringProblems(broken, readSettings({}));
    expect(problems).toContain("trainer may s3:*: a wildcard action");
    expect(problems.some((p) => p.startsWith("trainer's grants "))).toBe(true);
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
  const sqsEvent = (queueArn: string, receives: number) => groveTaskEvent(task, queueArn, receives);
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
    expect(requests, output.trim().split("\n").at(-1)).toContainEqual(expect.objectContaining({ service: "dynamodb", operation, resource: app.table!.state.name }));
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

describe("the SST app with provisioned pollers for the trainer", () => {
  it("gives the trainer's mapping the pollers and no maximum concurrency (Lambda takes one or the other)", () => {
    expect(wiringProblems(provisioned, readSettings(PROVISIONED))).toEqual([]);
    const mapping = describeApp(provisioned).functions.trainer!.mappings[0]!.inputs;
    expect(mapping.provisionedPollerConfig).toEqual({ minimumPollers: 10, maximumPollers: 100 });
    expect(mapping.scalingConfig).toBeUndefined();
    expect(describeApp(defaults).functions.trainer!.mappings[0]!.inputs.provisionedPollerConfig).toBeUndefined();
  });

  it("catches a mapping whose pollers differ from the settings", () => {
    expect(wiringProblems(defaults, readSettings(PROVISIONED))).toContain("the trainer mapping has a maximum concurrency and provisioned pollers");
    expect(wiringProblems(provisioned, readSettings({}))).toContain("the trainer mapping is in provisioned mode but no pollers are set");
  });
});

describe("a broken SST app", () => {
  it("fails to evaluate when a handler path is wrong", () => {
    expect(wrongHandler.errors).toContain("Handler not found: packages/functions/src/trainr.handler");
    expect(wrongHandler.builds.map((b) => b.handler)).not.toContain("packages/functions/src/trainr.handler");
  });
});
