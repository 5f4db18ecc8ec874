/**
 * The predict function in the SST app, evaluated offline with the infra harness (Pulumi mocks, real esbuild
 * bundles; needs `npm run sst:install`): a function URL with IAM auth by default, links to the bucket and the
 * table only, the URL as an output, its settings, and the built bundle finding the table through its links.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PREDICT_HANDLER, readServingSettings } from "../../stacks/serving-settings.ts";
import { evaluateApp, platformMissing, removeEvaluations, type Evaluation } from "../infra/harness.ts";
import { probeFunction } from "../infra/lambda-probe.ts";
import type { AppReport, RecordedResource } from "../infra/run-app.ts";
import { functionUrlEvent } from "./support.ts";

let defaults: Evaluation;
let open: AppReport;

beforeAll(async () => {
  const missing = platformMissing();
  if (missing) throw new Error(missing);
  [defaults, open] = await Promise.all([
    evaluateApp(),
    evaluateApp({ env: { CANOPY_PREDICT_AUTH: "none", CANOPY_PREDICT_MEMORY_MB: "1024", CANOPY_MAX_ROWS: "500", CANOPY_ALIAS_TTL_SECONDS: "30" } }),
  ]);
}, 300_000);
afterAll(() => removeEvaluations());

function predict(report: AppReport) {
  const build = report.builds.find((b) => b.handler === PREDICT_HANDLER)!;
  const find = (type: string, name: string) => report.resources.find((r) => r.type === type && r.name === name) as RecordedResource;
  const lambda = find("aws:lambda/function:Function", `${build.functionID}Function`);
  const role = find("aws:iam/role:Role", `${build.functionID}Role`);
  const url = report.resources.find((r) => r.type === "aws:lambda/functionUrl:FunctionUrl" && r.inputs.functionName === lambda.state.name) as RecordedResource;
  const statements = ((role.inputs.inlinePolicies ?? []) as { policy: string }[]).flatMap(
    (p) => JSON.parse(p.policy).Statement as { Action: string | string[]; Resource: string | string[] }[],
  );
  return { build, lambda, url, statements };
}

describe("the predict function in the SST app", () => {
  it("is a function URL with IAM auth, linked to the bucket and the builds table only, its URL an output", () => {
    expect(defaults.errors).toEqual([]);
    const { build, lambda, url, statements } = predict(defaults);
    expect(build.links).toEqual(["CanopyBucket", "CanopyBuilds"]);
    expect(url.inputs.authorizationType).toBe("AWS_IAM");
    expect(defaults.outputs.predictUrl).toBe(url.state.url);
    expect(defaults.outputs.predictUrl).toMatch(/^https:\/\/[a-z0-9]+\.lambda-url\.us-east-1\.on\.aws\/$/);
    const bucket = defaults.resources.find((r) => r.type === "aws:s3/bucket:Bucket" && r.name === "CanopyBucketBucket")!;
    const table = defaults.resources.find((r) => r.type === "aws:dynamodb/table:Table" && r.name === "CanopyBuildsTable")!;
    const resources = statements.flatMap((s) => [s.Resource].flat());
    // The bucket, keys in it, the table: nothing else.
    for (const r of resources) expect(r === bucket.state.arn || r.startsWith(`${bucket.state.arn}/`) || [table.state.arn, `${table.state.arn}/*`].includes(r), r).toBe(true);
    expect(statements.flatMap((s) => [s.Action].flat()).some((a) => a.startsWith("sns:") || a.startsWith("sqs:"))).toBe(false);
    // Reads models and aliases, exactly: GetObject on models and partitioned models' manifests, ListBucket (an unknown model is a 404), GetItem.
    expect(statements.map((s) => `${[s.Action].flat().join(",")} ${[s.Resource].flat().join(" ")}`)).toEqual([
      `s3:GetObject ${bucket.state.arn}/builds/*/model.canopy ${bucket.state.arn}/partitions/*/model.json`,
      `s3:ListBucket ${bucket.state.arn}`,
      `dynamodb:GetItem ${table.state.arn}`,
    ]);
    expect(lambda.inputs).toMatchObject({ memorySize: 1769, timeout: 30 });
    expect(lambda.inputs.environment.variables).toMatchObject({
      CANOPY_DEFAULT_ALIAS: "production",
      CANOPY_MAX_ROWS: "10000",
      CANOPY_ALIAS_TTL_SECONDS: "10",
      CANOPY_MODEL_CACHE_MB: "442",
    });
    expect(lambda.inputs.environment.variables.CANOPY_MODEL_CACHE).toBeUndefined();
    console.log(`predict bundle: ${(build.bundleBytes / 1024 / 1024).toFixed(2)} MB (minified ESM), zip ${((defaults.zips[build.functionID] ?? 0) / 1024 / 1024).toFixed(2)} MB`);
    expect(build.bundleBytes).toBeLessThanOrEqual(5 * 1024 * 1024);
  });

  it("carries its settings through: no auth, memory, rows, alias TTL", () => {
    expect(open.errors).toEqual([]);
    const { url, lambda } = predict(open);
    expect(url.inputs.authorizationType).toBe("NONE");
    expect(lambda.inputs.memorySize).toBe(1024);
    expect(lambda.inputs.environment.variables).toMatchObject({ CANOPY_MAX_ROWS: "500", CANOPY_ALIAS_TTL_SECONDS: "30" });
  });

  it("refuses bad settings with one line naming the variable", () => {
    expect(() => readServingSettings({ CANOPY_PREDICT_AUTH: "aws" })).toThrow('CANOPY_PREDICT_AUTH must be "iam" or "none"; got "aws"');
    expect(() => readServingSettings({ CANOPY_PREDICT_MEMORY_MB: "64" })).toThrow('CANOPY_PREDICT_MEMORY_MB must be an integer from 128 to 10240; got "64"');
    expect(() => readServingSettings({ CANOPY_MAX_ROWS: "-5" })).toThrow('CANOPY_MAX_ROWS must be an integer >= 1; got "-5"');
  });

  it("the built bundle resolves the default alias in the linked table and reaches nothing else", async () => {
    const { build, lambda } = predict(defaults);
    const table = defaults.resources.find((r) => r.type === "aws:dynamodb/table:Table" && r.name === "CanopyBuildsTable")!;
    const bucket = defaults.resources.find((r) => r.type === "aws:s3/bucket:Bucket" && r.name === "CanopyBucketBucket")!;
    const { requests, output } = await probeFunction({
      bundleDir: path.join(defaults.root, ".sst", "artifacts", `${build.functionID}-src`),
      handler: build.builtHandler,
      environment: lambda.inputs.environment.variables,
      memoryMb: lambda.inputs.memorySize,
      event: functionUrlEvent({ method: "GET" }),
    });
    expect(requests, output.trim().split("\n").at(-1)).toContainEqual({ service: "dynamodb", operation: "GetItem", resource: table.state.name });
    for (const r of requests) expect([table.state.name, bucket.state.bucket]).toContain(r.resource);
  });
});
