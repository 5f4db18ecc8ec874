/**
 * What the evaluated app must look like, as a list of problems (empty when the wiring is right), so a test can
 * both demand none on the real app and show that a broken variant is caught.
 */
import { AGGREGATION_TRIGGER_FILTER } from "@canopy/core";
import { RESOURCE_LINKS } from "@canopy/runtime-aws";
import { functionGrants, type FunctionName, type GrantTarget } from "@canopy/runtime-aws/access";
import { HANDLERS, type HandlerName } from "../../stacks/handlers.ts";
import { VISIBILITY_FACTOR, type AppSettings } from "../../stacks/settings.ts";
import type { AppReport, RecordedBuild, RecordedResource } from "./run-app.ts";

export interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: string | string[];
}

export interface FunctionView {
  build: RecordedBuild;
  lambda: RecordedResource;
  role: RecordedResource;
  /** The role's inline policy statements. */
  statements: Statement[];
  mappings: RecordedResource[];
}

const list = (v: string | string[] | undefined) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** The app's resources by role, found by the logical names SST derives from the component names. */
export function describeApp(report: AppReport) {
  const find = (type: string, name: string) => report.resources.find((r) => r.type === type && r.name === name);
  const all = (type: string) => report.resources.filter((r) => r.type === type);
  const mappings = all("aws:lambda/eventSourceMapping:EventSourceMapping");

  const functions: Partial<Record<HandlerName, FunctionView>> = {};
  for (const [key, handler] of Object.entries(HANDLERS) as [HandlerName, string][]) {
    const build = report.builds.find((b) => b.handler === handler);
    if (!build) continue;
    const lambda = find("aws:lambda/function:Function", `${build.functionID}Function`);
    const role = find("aws:iam/role:Role", `${build.functionID}Role`);
    if (!lambda || !role) continue;
    const inline = (role.inputs.inlinePolicies ?? []) as { policy: string }[];
    functions[key] = {
      build,
      lambda,
      role,
      statements: inline.flatMap((p) => JSON.parse(p.policy).Statement as Statement[]),
      mappings: mappings.filter((m) => m.inputs.functionName === lambda.state.arn),
    };
  }

  return {
    bucket: find("aws:s3/bucket:Bucket", "CanopyBucketBucket"),
    publicAccessBlock: find("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "CanopyBucketPublicAccessBlock"),
    bucketPolicy: find("aws:s3/bucketPolicy:BucketPolicy", "CanopyBucketPolicy"),
    lifecycle: find("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "CanopyBucketLifecycle"),
    table: find("aws:dynamodb/table:Table", "CanopyBuildsTable"),
    groves: find("aws:sqs/queue:Queue", "CanopyGrovesQueue"),
    dlq: find("aws:sqs/queue:Queue", "CanopyGrovesDlqQueue"),
    failures: find("aws:sqs/queue:Queue", "CanopyAggregationFailuresQueue"),
    topic: find("aws:sns/topic:Topic", "CanopyNotificationsTopic"),
    rule: find("aws:cloudwatch/eventRule:EventRule", "CanopySweeperRule"),
    target: find("aws:cloudwatch/eventTarget:EventTarget", "CanopySweeperTarget"),
    permission: find("aws:lambda/permission:Permission", "CanopySweeperPermission"),
    queues: all("aws:sqs/queue:Queue"),
    linkRefs: all("sst:sst:LinkRef"),
    functions,
  };
}

/** The links each handler gets: exactly what it uses, so a trainer cannot, say, publish notifications. */
export const EXPECTED_LINKS: Record<HandlerName, string[]> = {
  trainer: ["CanopyBucket", "CanopyBuilds"],
  aggregator: ["CanopyBucket", "CanopyBuilds", "CanopyGroves", "CanopyNotifications"],
  dlq: ["CanopyBucket", "CanopyBuilds", "CanopyNotifications"],
  // The sweeper reads the open-builds index and counters, the grove queue's depth (queued work is not stalled), queues
  // lost groves again from their build's manifest (bucket), and announces builds it fails.
  sweeper: ["CanopyBucket", "CanopyBuilds", "CanopyGroves", "CanopyNotifications"],
};

export function wiringProblems(report: AppReport, settings: AppSettings): string[] {
  const problems: string[] = [];
  const check = (ok: unknown, problem: string) => {
    if (!ok) problems.push(problem);
  };
  for (const error of report.errors) problems.push(`evaluation error: ${error}`);
  const app = describeApp(report);
  const { bucket, table, groves, dlq, failures, topic } = app;
  if (!bucket || !table || !groves || !dlq || !failures || !topic) {
    problems.push("missing one of: bucket, builds table, grove queue, its DLQ, the aggregation failure queue, topic");
    return problems;
  }
  for (const key of Object.keys(HANDLERS) as HandlerName[])
    check(app.functions[key], `no function built from ${HANDLERS[key]}`);
  const { trainer, aggregator, dlq: dlqConsumer, sweeper } = app.functions;
  if (!trainer || !aggregator || !dlqConsumer || !sweeper) return problems;

  // Outputs name the real resources.
  const out = report.outputs;
  check(out.bucket === bucket.state.bucket, `output bucket ${out.bucket} is not the bucket ${bucket.state.bucket}`);
  check(out.queue === groves.state.url, `output queue ${out.queue} is not the grove queue's URL`);
  check(out.table === table.state.name, `output table ${out.table} is not the builds table`);
  check(out.topic === topic.state.arn, `output topic ${out.topic} is not the topic's ARN`);

  // Bucket: private, HTTPS only, abandoned multipart uploads aborted.
  const pab = app.publicAccessBlock?.inputs ?? {};
  check(
    pab.blockPublicAcls && pab.blockPublicPolicy && pab.ignorePublicAcls && pab.restrictPublicBuckets,
    "the bucket does not block all public access",
  );
  const bucketPolicy = JSON.parse(app.bucketPolicy?.inputs.policy ?? "{}") as { Statement?: (Statement & { Condition?: unknown })[] };
  check(
    (bucketPolicy.Statement ?? []).some(
      (s) =>
        s.Effect === "Deny" &&
        list(s.Action).includes("s3:*") &&
        list(s.Resource).includes(bucket.state.arn!) &&
        list(s.Resource).includes(`${bucket.state.arn}/*`) &&
        JSON.stringify(s.Condition) === JSON.stringify({ Bool: { "aws:SecureTransport": "false" } }),
    ),
    "the bucket's policy does not refuse requests without HTTPS",
  );
  const rules = (app.lifecycle?.inputs.rules ?? []) as { status: string; filter?: object; abortIncompleteMultipartUpload?: { daysAfterInitiation: number } }[];
  check(
    rules.some((r) => r.status === "Enabled" && JSON.stringify(r.filter) === "{}" && (r.abortIncompleteMultipartUpload?.daysAfterInitiation ?? 0) >= 1),
    "the bucket has no enabled rule aborting incomplete multipart uploads",
  );

  // Builds table: buildId hash key, stream with both images.
  const t = table.inputs;
  check(t.hashKey === "buildId", `table hash key is ${t.hashKey}, not buildId`);
  check(
    (t.attributes ?? []).some((a: { name: string; type: string }) => a.name === "buildId" && a.type === "S"),
    "table attribute buildId is not a string",
  );
  check(t.streamEnabled === true, "table stream is off");
  check(t.streamViewType === "NEW_AND_OLD_IMAGES", `table stream view is ${t.streamViewType}, not NEW_AND_OLD_IMAGES`);

  // Grove queue: redrive to the DLQ after N receives; visibility ≥ 6 × trainer timeout.
  const redrive = groves.inputs.redrivePolicy ? JSON.parse(groves.inputs.redrivePolicy) : {};
  check(redrive.deadLetterTargetArn === dlq.state.arn, "the grove queue does not redrive to its DLQ");
  check(
    redrive.maxReceiveCount === settings.groves.maxReceives,
    `redrive after ${redrive.maxReceiveCount} receives, expected ${settings.groves.maxReceives}`,
  );
  const trainerTimeout = trainer.lambda.inputs.timeout as number;
  check(
    groves.inputs.visibilityTimeoutSeconds >= VISIBILITY_FACTOR * trainerTimeout,
    `grove visibility ${groves.inputs.visibilityTimeoutSeconds} s < ${VISIBILITY_FACTOR} × trainer timeout ${trainerTimeout} s`,
  );
  check(
    (dlq.inputs.messageRetentionSeconds ?? 0) > (groves.inputs.messageRetentionSeconds ?? 4 * 24 * 3600),
    "the DLQ keeps messages no longer than the grove queue",
  );
  // AWS refuses an SQS mapping whose function may run longer than the queue hides a message.
  for (const [key, fn] of Object.entries(app.functions))
    for (const m of fn.mappings) {
      const queue = app.queues.find((q) => q.state.arn === m.inputs.eventSourceArn);
      if (queue)
        check(
          queue.inputs.visibilityTimeoutSeconds >= fn.lambda.inputs.timeout,
          `${key}: queue visibility ${queue.inputs.visibilityTimeoutSeconds} s < function timeout ${fn.lambda.inputs.timeout} s`,
        );
    }

  // Trainer: batch size, partial responses, concurrency cap, memory and timeout from the settings.
  check(trainer.mappings.length === 1, `trainer has ${trainer.mappings.length} event sources, expected 1`);
  const tm = trainer.mappings[0]?.inputs ?? {};
  check(tm.eventSourceArn === groves.state.arn, "the trainer does not consume the grove queue");
  check(tm.batchSize === settings.trainer.batchSize, `trainer batch size ${tm.batchSize}, expected ${settings.trainer.batchSize}`);
  check(
    (tm.functionResponseTypes ?? []).includes("ReportBatchItemFailures"),
    "trainer mapping does not take partial batch responses",
  );
  const pollers = settings.trainer.provisionedPollers;
  if (pollers) {
    // Lambda refuses a maximum concurrency in provisioned mode.
    check(tm.scalingConfig === undefined, "the trainer mapping has a maximum concurrency and provisioned pollers");
    const config = tm.provisionedPollerConfig ?? {};
    check(
      config.minimumPollers === pollers.minimum && config.maximumPollers === pollers.maximum && pollers.minimum >= 2 && pollers.maximum <= 2000,
      `trainer pollers ${JSON.stringify(config)}, expected ${pollers.minimum}..${pollers.maximum}`,
    );
  } else {
    const cap = tm.scalingConfig?.maximumConcurrency;
    check(
      cap === settings.trainer.maxConcurrency && cap <= 1000,
      `trainer maximum concurrency ${cap}, expected ${settings.trainer.maxConcurrency} (≤ 1,000)`,
    );
    check(tm.provisionedPollerConfig === undefined, "the trainer mapping is in provisioned mode but no pollers are set");
  }
  check(trainer.lambda.inputs.memorySize === settings.trainer.memoryMb, `trainer memory ${trainer.lambda.inputs.memorySize} MB`);
  check(trainerTimeout === settings.trainer.timeoutSeconds, `trainer timeout ${trainerTimeout} s`);

  // Aggregator: the stream, the one shared filter, bounded retries, an on-failure destination it may send to.
  check(aggregator.mappings.length === 1, `aggregator has ${aggregator.mappings.length} event sources, expected 1`);
  const am = aggregator.mappings[0]?.inputs ?? {};
  check(am.eventSourceArn === table.state.streamArn, "the aggregator does not read the builds table's stream");
  const patterns = ((am.filterCriteria?.filters ?? []) as { pattern: string }[]).map((f) => f.pattern);
  check(
    patterns.length === 1 && patterns[0] === JSON.stringify(AGGREGATION_TRIGGER_FILTER),
    `aggregator filter ${JSON.stringify(patterns)} is not AGGREGATION_TRIGGER_FILTER`,
  );
  check(
    Number.isInteger(am.maximumRetryAttempts) &&
      am.maximumRetryAttempts >= 0 &&
      am.maximumRetryAttempts === settings.aggregator.retries,
    `aggregator retries ${am.maximumRetryAttempts}, expected ${settings.aggregator.retries} (bounded)`,
  );
  const onFailure = am.destinationConfig?.onFailure?.destinationArn;
  check(onFailure === failures.state.arn, "aggregator failures do not go to the failure queue");
  check(
    aggregator.statements.some((s) => list(s.Action).includes("sqs:SendMessage") && list(s.Resource).includes(failures.state.arn!)),
    "the aggregator's role may not send to its on-failure queue",
  );
  check(am.batchSize === 1, `aggregator batch size ${am.batchSize}, expected 1`);
  check(
    (am.functionResponseTypes ?? []).includes("ReportBatchItemFailures"),
    "aggregator mapping ignores the handler's batch item failures",
  );

  // Dead letters: consumed, with partial responses.
  const dm = dlqConsumer.mappings[0]?.inputs ?? {};
  check(dlqConsumer.mappings.length === 1 && dm.eventSourceArn === dlq.state.arn, "the DLQ consumer does not consume the DLQ");
  check((dm.functionResponseTypes ?? []).includes("ReportBatchItemFailures"), "DLQ mapping does not take partial batch responses");

  // Sweeper: on a schedule, invoking the sweeper function, which EventBridge may invoke.
  check(app.rule?.inputs.scheduleExpression === settings.sweeper.schedule, `sweeper schedule ${app.rule?.inputs.scheduleExpression}`);
  check(app.rule?.inputs.state === "ENABLED", "the sweeper rule is disabled");
  check(app.target?.inputs.arn === sweeper.lambda.state.arn, "the sweeper rule does not target the sweeper function");
  check(
    app.permission?.inputs.principal === "events.amazonaws.com" &&
      app.permission?.inputs.function === sweeper.lambda.state.arn &&
      app.permission?.inputs.sourceArn === app.rule?.state.arn,
    "EventBridge may not invoke the sweeper",
  );
  check(sweeper.mappings.length === 0, "the sweeper has an event source mapping");

  // Links and IAM: each function reaches exactly what it links (plus its own event source).
  const arnsOf = (...rs: (RecordedResource | undefined)[]) =>
    rs.flatMap((r) => (r?.state.arn ? [r.state.arn, `${r.state.arn}/*`] : []));
  const linkArns: Record<string, string[]> = {
    CanopyBucket: arnsOf(bucket),
    CanopyBuilds: arnsOf(table),
    CanopyNotifications: arnsOf(topic),
    CanopyGroves: arnsOf(groves),
  };
  // What SST grants for a function's event source (receive, or the stream and its failure destination).
  const sources: Record<HandlerName, string[]> = {
    trainer: [groves.state.arn!],
    aggregator: [table.state.streamArn!, failures.state.arn!],
    dlq: [dlq.state.arn!],
    sweeper: [],
  };
  // Resources a function is granted on without linking them: the trainer sends a task that can never succeed to the
  // dead-letter queue at once (a variable and its grant).
  const unlinked: Record<HandlerName, string[]> = { trainer: [dlq.state.arn!], aggregator: [], dlq: [], sweeper: [] };
  for (const key of Object.keys(HANDLERS) as HandlerName[]) {
    const fn = app.functions[key]!;
    const expected = EXPECTED_LINKS[key];
    check(
      JSON.stringify(fn.build.links) === JSON.stringify(expected),
      `${key} links ${fn.build.links.join(", ")}; expected ${expected.join(", ")}`,
    );
    const allowed = new Set([...expected.flatMap((l) => linkArns[l] ?? []), ...sources[key], ...unlinked[key]]);
    // Keys under a linked bucket (`<bucket ARN>/packs/*.pack`) are within it.
    const within = (resource: string) => allowed.has(resource) || [...allowed].some((a) => a.endsWith("/*") && resource.startsWith(a.slice(0, -1)));
    for (const s of fn.statements)
      for (const resource of list(s.Resource))
        check(within(resource), `${key} may ${list(s.Action).join(",")} on ${resource}, which it does not use`);
    for (const s of fn.statements)
      for (const action of list(s.Action)) check(!action.includes("*"), `${key} may ${action}: a wildcard action`);
    // Beyond its event source, a function's role holds exactly its grants in runtime-aws's FUNCTION_ACCESS.
    const own = fn.statements.filter((s) => !list(s.Resource).some((r) => sources[key].includes(r)));
    const expectedGrants = grantStatements(key, { bucket: bucket.state.arn!, table: table.state.arn!, topic: topic.state.arn!, groves: groves.state.arn!, dlq: dlq.state.arn! });
    check(
      JSON.stringify(own.map(statementLine)) === JSON.stringify(expectedGrants),
      `${key}'s grants ${JSON.stringify(own.map(statementLine))} are not FUNCTION_ACCESS's ${JSON.stringify(expectedGrants)}`,
    );
    const trust = JSON.parse(fn.role.inputs.assumeRolePolicy ?? "{}");
    check(
      JSON.stringify(trust.Statement?.map((s: { Principal: unknown }) => s.Principal)) ===
        JSON.stringify([{ Service: "lambda.amazonaws.com" }]),
      `${key}'s role trusts more than Lambda: ${fn.role.inputs.assumeRolePolicy}`,
    );
  }
  const actions = (key: HandlerName) => app.functions[key]!.statements.flatMap((s) => list(s.Action));
  check(!actions("trainer").some((a) => a.startsWith("sns:")), "the trainer may publish to SNS");
  check(
    trainer.statements.some((s) => list(s.Action).includes("sqs:SendMessage") && list(s.Resource).includes(dlq.state.arn!)),
    "the trainer may not send to the grove dead-letter queue",
  );
  check(trainer.lambda.inputs.environment?.variables?.CANOPY_DLQ_URL === dlq.state.url, "the trainer is not told the dead-letter queue's URL");

  // The link names and properties the adapters read (RESOURCE_LINKS in @canopy/runtime-aws) exist in the app.
  for (const { link, property } of Object.values(RESOURCE_LINKS)) {
    const ref = app.linkRefs.find((r) => r.name === `${link}LinkRef`);
    check(ref?.inputs.properties?.[property] !== undefined, `no linkable ${link} with a ${property} (read by @canopy/runtime-aws)`);
  }

  // Handlers come from the expected modules.
  for (const key of Object.keys(HANDLERS) as HandlerName[]) {
    const expected = `${HANDLERS[key].slice(0, HANDLERS[key].lastIndexOf("."))}.ts`;
    check(app.functions[key]!.build.entry === expected, `${key} bundled from ${app.functions[key]!.build.entry}, expected ${expected}`);
  }
  return problems;
}

/** A statement as one line: `action,action resource resource`. */
export function statementLine(s: Statement): string {
  return `${list(s.Action).join(",")} ${list(s.Resource).join(" ")}`;
}

/** What runtime-aws's functionGrants says a function's role holds, as statement lines, on the given ARNs. */
export function grantStatements(name: FunctionName, arns: { bucket: string; table: string; topic: string; groves: string; dlq: string }): string[] {
  const arnOf = (t: GrantTarget): string => {
    if ("bucket" in t) return t.bucket === "" ? arns.bucket : `${arns.bucket}/${t.bucket}`;
    if ("table" in t) return arns.table;
    if ("tableIndex" in t) return `${arns.table}/index/${t.tableIndex}`;
    if ("queue" in t) return t.queue === "groves" ? arns.groves : arns.dlq;
    return arns.topic;
  };
  return functionGrants(name).map((g) => statementLine({ Effect: "Allow", Action: g.actions, Resource: g.on.map(arnOf) }));
}

/** The `declare module "sst"` block `sst dev` writes into sst-env.d.ts for these links (pkg/types/typescript). */
export function sstEnvDeclaration(report: AppReport): string {
  const links: Record<string, Record<string, unknown>> = {};
  for (const ref of report.resources.filter((r) => r.type === "sst:sst:LinkRef")) {
    const target = ref.name.replace(/LinkRef$/, "");
    const component = report.resources.find((r) => r.name === target && r.type.startsWith("sst:"));
    links[target] = { ...ref.inputs.properties, type: component?.type.replaceAll(":", ".") };
  }
  const infer = (input: Record<string, unknown>, indent: string): string => {
    const lines = Object.keys(input)
      .sort()
      .map((key) => {
        const value = input[key];
        const type =
          key === "type" && typeof value === "string"
            ? JSON.stringify(value)
            : typeof value === "string"
              ? "string"
              : typeof value === "number"
                ? "number"
                : typeof value === "boolean"
                  ? "boolean"
                  : value && typeof value === "object"
                    ? infer(value as Record<string, unknown>, indent + "  ")
                    : "any";
        return `${indent}  "${key}": ${type}`;
      });
    return ["{", ...lines, `${indent}}`].join("\n");
  };
  return `declare module "sst" {\n  export interface Resource ${infer(links, "  ")}\n}\n`;
}
