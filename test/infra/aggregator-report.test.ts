/**
 * The aggregator as deployed writes report.html: its code.zip, built as `sst deploy` builds it, carries the chart
 * library (copyFiles), and run from that zip as Lambda runs it, against moto holding a build whose groves have
 * all landed, it renders the page into the bucket. Needs `sst install` and moto_server.
 */
import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { CreateTopicCommand } from "@aws-sdk/client-sns";
import { keys, parseBuildSpec, prepareDataset, submitBuild, trainGrove } from "@canopy/core";
import { MemoryQueue } from "@canopy/core/testing";
import { CHART_LIBRARY_FILES } from "@canopy/report";
import { clients, DynamoLedger, S3BlobStore } from "@canopy/runtime-aws";
import { describe, expect, it } from "vitest";
import { createBuildsTable, useAwsEmulator } from "../aws/harness.ts";
import { REPO, useEvaluatedApp } from "./harness.ts";
import { aggregationTriggerEvent, probeFunction, zipEntries, zipRead } from "./lambda-probe.ts";
import { describeApp } from "./wiring.ts";

const aws = useAwsEmulator({ suffix: "-report-bundle" });
const evaluated = useEvaluatedApp();

describe("the deployed aggregator and report.html", () => {
  it("has the chart library in its code.zip where the renderer looks, byte for byte", () => {
    const fn = describeApp(evaluated.current).functions.aggregator!;
    const zip = path.join(evaluated.current.root, ".sst", "artifacts", fn.build.functionID, "code.zip");
    const entries = zipEntries(zip);
    for (const file of CHART_LIBRARY_FILES) {
      expect(entries).toContain(`node_modules/${file}`);
      expect(zipRead(zip, `node_modules/${file}`).equals(readFileSync(path.join(REPO, "node_modules", file))), file).toBe(true);
    }
    // The handler sits below the zip's root, so looking up from it reaches node_modules/ at the root.
    expect(entries).toContain(fn.build.builtHandler.replace(/\.handler$/, ".mjs"));
    const library = CHART_LIBRARY_FILES.reduce((n, f) => n + statSync(path.join(REPO, "node_modules", f)).size, 0);
    console.log(
      `aggregator: bundle ${(fn.build.bundleBytes / 1024).toFixed(0)} KB (minified ESM), code.zip ${((evaluated.current.zips[fn.build.functionID] ?? 0) / 1024).toFixed(0)} KB, ` +
        `of which the chart library is ${(library / 1024).toFixed(0)} KB before compression`,
    );
  });

  it("run from its code.zip against moto, renders the build's report.html into the bucket", async () => {
    const described = describeApp(evaluated.current);
    const fn = described.functions.aggregator!;
    const bucket = described.bucket!.state.bucket!;
    const table = described.table!.state.name!;
    const topicName = described.topic!.state.arn!.split(":").at(-1)!;
    // The resources the function's links name (moto's account is the mock's), on moto.
    await clients.s3().send(new CreateBucketCommand({ Bucket: bucket }));
    await createBuildsTable(table);
    expect((await clients.sns().send(new CreateTopicCommand({ Name: topicName }))).TopicArn).toBe(described.topic!.state.arn);

    // A small digits build, trained here through the real adapters: every grove landed, nothing aggregated yet.
    const blobs = new S3BlobStore(bucket);
    const ledger = new DynamoLedger(table);
    const digits = readFileSync(path.join(REPO, "test/fixtures/digits.csv"));
    const prepared = await prepareDataset(digits, { label: "digit" }, blobs);
    const spec = parseBuildSpec({ dataset: "test/fixtures/digits.csv", label: "digit", n_estimators: 6, grove_size: 2, seed: 4 });
    const queue = new MemoryQueue();
    const { buildId } = await submitBuild(spec, { blobs, ledger, queue }, prepared);
    for (const [i, task] of queue.drain().entries()) await trainGrove(task, { blobs, ledger, memoryMb: 1769 }, { worker: `c0ffee1${i}` });
    const ready = (await ledger.get(buildId))!;
    expect(ready).toMatchObject({ status: "TRAINING", remaining: 0 });

    const { output } = await probeFunction({
      codeZip: path.join(evaluated.current.root, ".sst", "artifacts", fn.build.functionID, "code.zip"),
      handler: fn.build.builtHandler,
      environment: fn.lambda.inputs.environment.variables,
      memoryMb: fn.lambda.inputs.memorySize,
      endpoint: aws.current.moto.endpoint,
      event: aggregationTriggerEvent(described.table!.state.streamArn!, ready, { ...ready, remaining: 1, landedCount: ready.landedCount - 1 }),
      timeoutMs: 120_000,
    });
    expect(output, output).toContain('handler returned {"batchItemFailures":[]}');
    expect((await ledger.get(buildId))?.status, output).toBe("COMPLETED");

    const html = new TextDecoder().decode((await blobs.get(keys.reportHtml(buildId)))!);
    for (const file of CHART_LIBRARY_FILES) expect(html).toContain(readFileSync(path.join(REPO, "node_modules", file), "utf8"));
    expect(html).toContain(`<h1>Canopy build ${buildId}: digits.csv</h1>`);
    expect(html).toContain('"rows":["c0ffee10","c0ffee11","c0ffee12","aggregator"]');
    // Trained with a Lambda memory size: the page charts the estimated cost.
    expect(html).toContain('"mark":"cost-bar"');
  });
});
