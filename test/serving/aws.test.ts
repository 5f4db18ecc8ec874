// On moto: the DynamoDB registry's contract, then promote (CLI and adapter) + predict (the Lambda handler's
// default wiring: aliases from the table, models from the bucket) through the real AWS adapters.
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { isLedgerId, keys } from "@canopy/core";
import { buildWithStatus, describeRegistryContract } from "@canopy/core/testing";
import type { Forest } from "@canopy/forest";
import { createPredictFunction } from "@canopy/functions";
import { aliasKey, changeFromStreamRecord, clients, DynamoLedger, DynamoModelRegistry, listBuilds, listOpenBuilds, S3BlobStore } from "@canopy/runtime-aws";
import { beforeAll, describe, expect, it } from "vitest";
import { useAwsEmulator } from "../aws/harness.ts";
import { bodyOf, canopy, context, fixture, functionUrlEvent, quiet, train } from "./support.ts";

const aws = useAwsEmulator();

describeRegistryContract("DynamoModelRegistry on moto", async () => {
  const { table } = aws.current.resources;
  const ledger = new DynamoLedger(table);
  return { ledger, registry: new DynamoModelRegistry(table, undefined, { ledger }) };
});

const rows = fixture("iris.csv").trim().split("\n").slice(1).map((l) => l.split(",").slice(0, 4).map(Number));
let big: Forest;
let small: Forest;
beforeAll(() => {
  big = train("iris.csv", 12, 1);
  small = train("iris.csv", 3, 2);
});

/** A COMPLETED build in the table with its model and report in the bucket, all through the adapters. */
async function publishedBuild(forest: Forest): Promise<string> {
  const { table, bucket } = aws.current.resources;
  const id = await buildWithStatus(new DynamoLedger(table), "COMPLETED");
  const blobs = new S3BlobStore(bucket);
  const bytes = forest.toBinary();
  await blobs.put(keys.model(id), bytes);
  await blobs.put(keys.report(id), new TextEncoder().encode(JSON.stringify({ v: 1, buildId: id, model: { key: keys.model(id), bytes: bytes.byteLength, trees: forest.nTrees } })));
  return id;
}

describe("promote + predict on moto", () => {
  it("canopy promote --endpoint sets the alias the predict function serves; a new promotion is served without a redeploy", async () => {
    const { moto, resources } = aws.current;
    const table = resources.table;
    const a = await publishedBuild(big);
    const b = await publishedBuild(small);
    const env = { ...process.env, AWS_EC2_METADATA_DISABLED: "true" };

    const promoted = await canopy(["promote", a, "--alias", "production", "--endpoint", moto.endpoint], process.cwd(), env);
    expect(promoted.code, promoted.stderr).toBe(0);
    expect(promoted.stdout).toMatch(new RegExp(`^production -> ${a}( \\(was b-[0-9a-f]{16}\\))?\\n$`));

    // The deployed wiring: table and bucket from the function's environment (CANOPY_TABLE / CANOPY_BUCKET here).
    const fn = createPredictFunction({ logger: quiet(), env: { CANOPY_ALIAS_TTL_SECONDS: "0" } });
    const ask = async () => bodyOf(await fn(functionUrlEvent({ contentType: "application/json", body: JSON.stringify({ rows }) }), context()));
    const first = await ask();
    expect(first.model).toMatchObject({ buildId: a, alias: "production", trees: 12 });
    expect(first.predictions).toEqual(big.predict(rows));

    const record = await new DynamoModelRegistry(table).promote(b, "production");
    expect(record.previous).toBe(a);
    const second = await ask();
    expect(second.model).toMatchObject({ buildId: b, trees: 3 });
    expect(second.predictions).toEqual(small.predict(rows));

    const missing = await fn(functionUrlEvent({ query: { alias: "nobody-promoted-this" }, contentType: "application/json", body: JSON.stringify({ rows }) }), context());
    expect(missing.statusCode).toBe(404);

    const refused = await canopy(["promote", await buildWithStatus(new DynamoLedger(table), "TRAINING"), "--alias", "production", "--endpoint", moto.endpoint], process.cwd(), env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^canopy: error: build b-[0-9a-f]{16} is TRAINING; only a COMPLETED build can be promoted\n$/);
  });

  it("canopy models --endpoint lists the table's builds with sizes from the bucket and their aliases", async () => {
    const { moto, resources } = aws.current;
    const id = await publishedBuild(small);
    await new DynamoModelRegistry(resources.table).promote(id, "canary-models");
    const run = await canopy(["models", "--endpoint", moto.endpoint, "--json"], process.cwd(), { ...process.env, AWS_EC2_METADATA_DISABLED: "true" });
    expect(run.code, run.stderr).toBe(0);
    const listed = JSON.parse(run.stdout) as { buildId: string; status: string; trees?: number; bytes?: number; aliases: string[] }[];
    expect(listed.find((m) => m.buildId === id)).toMatchObject({ status: "COMPLETED", trees: 3, bytes: small.toBinary().byteLength, aliases: ["canary-models"] });
    // Builds (and the partitioned runs the registry's contract left in this table), never an alias item.
    expect(listed.every((m) => isLedgerId(m.buildId))).toBe(true);
  });

  it("alias items share the builds table without being taken for builds", async () => {
    const { table } = aws.current.resources;
    const id = await publishedBuild(small);
    await new DynamoModelRegistry(table).promote(id, "shadow");
    // Builds and partitioned runs (the registry's contract leaves some in this table), never an alias item.
    expect((await listBuilds(table)).some((r) => !isLedgerId(r.buildId))).toBe(false);
    expect((await listOpenBuilds(table)).some((id) => !isLedgerId(id) || id.includes("#"))).toBe(false);
    const item = (await clients.dynamodb().send(new GetItemCommand({ TableName: table, Key: { buildId: { S: aliasKey("shadow") } } }))).Item!;
    expect(item.target.S).toBe(id);
    // As a stream record (what the aggregator and the ledger's watch see): not a build change.
    expect(changeFromStreamRecord({ eventName: "INSERT", dynamodb: { NewImage: item } })).toBeUndefined();
    expect(changeFromStreamRecord({ eventName: "MODIFY", dynamodb: { NewImage: item, OldImage: item } })).toBeUndefined();
  });
});
