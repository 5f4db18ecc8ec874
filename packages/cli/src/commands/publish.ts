import type { Command } from "commander";
import { addAwsOptions, type AwsTargetOptions } from "../aws-target.ts";
import { FailedError, InterruptedExit, UsageError } from "../errors.ts";
import { checkDataFile } from "../fs.ts";
import { addSpecOptions } from "../spec-options.ts";
import type { SpecFlags } from "../spec.ts";

export interface PublishOptions extends SpecFlags, AwsTargetOptions {
  wait?: boolean;
  json?: boolean;
}

/** Adds `canopy publish` (also `npm run publish -- ...`). The SDK and the engine load only when it runs. */
export function addPublishCommand(canopy: Command): Command {
  const command = canopy
    .command("publish")
    .summary("start a build on the deployed AWS app (or an emulator)")
    .description(
      "Start a build on AWS: prepare the dataset pack here, upload it once (it is stored under its hash, so the same " +
        "data is never uploaded twice), write the build's manifest and ledger record, and queue one task per grove for " +
        "the trainer functions. Prints the build id. An s3:// CSV is downloaded and prepared here the same way. " +
        "Resources come from the flags, the CANOPY_* variables, or the SST app's links (run it as " +
        "`npx sst shell --stage <name> -- npm run publish -- ...`). With --wait, shows canopy train's progress from the " +
        "ledger and prints the result; exit 0 when the build completes, 1 when it fails.",
    )
    .argument("<data>", "a CSV, .csv.gz or Parquet file, or s3://bucket/key of one");
  addSpecOptions(command)
    .option("--wait", "wait for the build: progress, then metrics, timings and cost (exit 1 if it fails)")
    .option("--json", "print JSON lines on stdout: the submission, and with --wait the final status");
  addAwsOptions(command, ["bucket", "table", "queueUrl"]);
  return command.action(async (data: string, options: PublishOptions) => {
    await publish(data, options);
  });
}

/** s3://bucket/key, or undefined for a local path. */
export function parseS3Url(text: string): { bucket: string; key: string } | undefined {
  if (!/^s3:\/\//i.test(text)) return undefined;
  const m = /^s3:\/\/([^/]+)\/(.+)$/i.exec(text);
  if (!m) throw new UsageError(`${text}: expected s3://bucket/key`);
  return { bucket: m[1], key: m[2] };
}

/** An s3:// object as a byte source: ranged GETs for Parquet, one streamed GET for CSV. */
async function s3Source(url: string, location: { bucket: string; key: string }): Promise<import("@canopy/core/ingest").ByteSource> {
  const { GetObjectCommand, HeadObjectCommand } = await import("@aws-sdk/client-s3");
  const { clients } = await import("@canopy/runtime-aws");
  const s3 = clients.s3();
  const missing = (err: unknown) => {
    const name = (err as { name?: string }).name;
    return name === "NoSuchKey" || name === "NoSuchBucket" || name === "NotFound" ? new UsageError(`data file not found: ${url}`) : err;
  };
  let size: number;
  try {
    size = (await s3.send(new HeadObjectCommand({ Bucket: location.bucket, Key: location.key }))).ContentLength ?? 0;
  } catch (err) {
    throw missing(err);
  }
  const get = async (range?: string) => {
    try {
      return (await s3.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key, ...(range ? { Range: range } : {}) }))).Body!;
    } catch (err) {
      throw missing(err);
    }
  };
  return {
    name: url,
    size: async () => size,
    read: async (start, end) => (end <= start ? new Uint8Array(0) : (await get(`bytes=${start}-${end - 1}`)).transformToByteArray()),
    stream: () => (async function* () {
      yield* (await get()) as unknown as AsyncIterable<Uint8Array>;
    })(),
  };
}

export interface PublishIo {
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WriteStream;
  /** Poll interval of --wait (default 1 s). */
  pollMs?: number;
}

export async function publish(data: string, options: PublishOptions, io: PublishIo = {}): Promise<void> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const note = (text: string) => stderr.write(`canopy: ${text}\n`);

  // Everything the user can get wrong locally is checked before AWS is touched.
  const { buildSpec } = await import("../spec.ts");
  const spec = buildSpec(data, options);
  const { groveCount } = await import("@canopy/core");
  const { DYNAMO_MAX_GROVES } = await import("@canopy/runtime-aws");
  const groves = groveCount(spec.n_estimators, spec.grove_size);
  if (groves > DYNAMO_MAX_GROVES)
    throw new UsageError(
      `--trees ${spec.n_estimators} in groves of ${spec.grove_size} make ${groves} groves; a build on AWS has at most ${DYNAMO_MAX_GROVES}: ` +
        `use --grove-size ${Math.ceil(spec.n_estimators / DYNAMO_MAX_GROVES)} or more`,
    );
  const s3 = parseS3Url(data);
  if (!s3) await checkDataFile(data);

  const { connectAws } = await import("../aws-target.ts");
  const target = await connectAws(options, ["bucket", "table", "queueUrl"]);
  const { bucket, table, queueUrl } = target.resources;
  const aws = await import("@canopy/runtime-aws");
  const core = await import("@canopy/core");
  const blobs = new aws.S3BlobStore(bucket);
  const ledger = new aws.DynamoLedger(table);
  const locate = (key: string) => `s3://${bucket}/${key}`;
  try {
    // Streamed from the file or the s3:// object: CSV, .csv.gz or Parquet, by content.
    const ingest = await import("@canopy/core/ingest");
    const table = await ingest.openTable(s3 ? await s3Source(data, s3) : ingest.fileSource(data));
    let prepared: Awaited<ReturnType<typeof core.prepareDataset>>;
    try {
      prepared = await core.prepareDataset(
        table,
        { ...(spec.label !== undefined ? { label: spec.label } : {}), task: spec.task, ...(spec.columns ? { columns: spec.columns } : {}) },
        blobs,
      );
    } catch (err) {
      // Rules the data decides (an unknown label column, a non-numeric feature) are the user's to fix: exit 2.
      if (err instanceof core.SpecError) throw (await import("../spec.ts")).specUsageError(err);
      throw err;
    }
    const { bytes } = await import("../format.ts");
    const packSize = `${prepared.pack.nRows} rows × ${prepared.pack.nFeatures} features, ${bytes(prepared.pack.bytes.length)}`;
    note(`pack ${locate(prepared.packKey)} (${packSize}) ${prepared.reused ? "was already there; not uploaded again" : "uploaded"}`);

    let submission: Awaited<ReturnType<typeof core.submitBuild>>;
    try {
      submission = await core.submitBuild(spec, { blobs, ledger, queue: new aws.SqsTaskQueue(queueUrl) }, prepared);
    } catch (err) {
      throw err instanceof core.SpecError ? (await import("../spec.ts")).specUsageError(err) : err;
    }
    const { buildId, plan, created } = submission;
    const trees = plan.groves.length > 0 ? plan.groves[plan.groves.length - 1].treeEnd : 0;
    if (created) note(`build ${buildId}: ${plan.groves.length} grove task(s) queued, ${trees} trees`);
    else note(`build ${buildId} already exists with the same data and options (${submission.record.status}); nothing queued`);
    if (options.json) {
      const line = { buildId, created, status: submission.record.status, groves: plan.groves.length, trees, packKey: prepared.packKey, packUploaded: !prepared.reused, bucket, table };
      stdout.write(`${JSON.stringify(line)}\n`);
    } else stdout.write(`${buildId}\n`);
    if (!options.wait) {
      if (!options.json) note(`follow it with: canopy status ${buildId}   (or canopy watch --build ${buildId})`);
      return;
    }

    const { progressView } = await import("../progress.ts");
    const { followBuild, loadBuildStatus, statusJson, costLine } = await import("../build-status.ts");
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    let last: Awaited<ReturnType<typeof followBuild>>;
    try {
      last = await followBuild({ ledger }, buildId, { view: await progressView(stderr), treesTotal: trees, announce: false, signal: stop.signal, ...(io.pollMs ? { intervalMs: io.pollMs } : {}) });
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
    if (!last) throw new InterruptedExit(`stopped waiting; build ${buildId} goes on in AWS: canopy status ${buildId}`);

    const status = (await loadBuildStatus({ ledger, blobs, locate }, buildId))!;
    if (options.json) stdout.write(`${JSON.stringify(statusJson(status))}\n`);
    if (last.status === "FAILED") {
      for (const f of last.failed) note(`grove ${f.grove} failed: ${f.error}`);
      throw new FailedError(`build ${buildId} failed: ${last.reason ?? "no reason recorded"}`);
    }
    if (options.json) return;
    if (!status.report) throw new FailedError(`build ${buildId} completed but its report ${locate(last.result?.reportKey ?? "")} is not readable`);
    const { summary } = await import("./train.ts");
    stdout.write(`${summary(status.report, locate(status.report.model.key), locate(last.result!.reportKey))}\n`);
    const cost = costLine(status.report);
    // A row under the summary's table ("timings" is its widest key).
    if (cost) stdout.write(`${"cost".padEnd("timings".length)}  ${cost}\n`);
  } catch (err) {
    throw target.explain(err);
  } finally {
    target.close();
  }
}
