import type { Command } from "commander";
import type { BuildHandle } from "@canopy/core";
import type { AwsRuntime } from "@canopy/runtime-aws";
import { addAwsOptions, type AwsTargetOptions } from "../aws-target.ts";
import { FailedError, InterruptedExit, UsageError } from "../errors.ts";
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
  const { buildSpec, specUsageError } = await import("../spec.ts");
  const spec = buildSpec(data, options);
  const aws = await import("@canopy/runtime-aws");
  const { groveCount, SpecError } = await import("@canopy/core");
  const groves = groveCount(spec.n_estimators, spec.grove_size);
  if (groves > aws.DYNAMO_MAX_GROVES)
    throw new UsageError(
      `--trees ${spec.n_estimators} in groves of ${spec.grove_size} make ${groves} groves; a build on AWS has at most ${aws.DYNAMO_MAX_GROVES}: ` +
        `use --grove-size ${Math.ceil(spec.n_estimators / aws.DYNAMO_MAX_GROVES)} or more`,
    );
  if (!aws.parseS3Url(data)) await (await import("../fs.ts")).checkDataFile(data);

  const target = await (await import("../aws-target.ts")).connectAws(options, ["bucket", "table", "queueUrl"]);
  const runtime = aws.createAwsRuntime({ resources: target.resources, ...(io.pollMs ? { pollIntervalMs: io.pollMs } : {}) });
  try {
    // Streamed from the file or the s3:// object: CSV, .csv.gz or Parquet, by content. Rules the data decides (an
    // unknown label column) are the user's to fix: exit 2.
    const ingest = await import("@canopy/core/ingest");
    const s3 = aws.parseS3Url(data);
    const input = await ingest.openTable(s3 ? await aws.s3ByteSource(data, s3) : ingest.fileSource(data));
    const handle = await runtime.submit({ spec, data: input }).catch((err: unknown) => {
      throw err instanceof SpecError ? specUsageError(err) : err;
    });
    const { buildId, created, record, trees } = handle;
    const pack = handle.dataset!;
    const { bytes } = await import("../format.ts");
    note(`pack ${runtime.locate(pack.packKey)} (${pack.nRows} rows × ${pack.nFeatures} features, ${bytes(pack.bytes)}) ${pack.reused ? "was already there; not uploaded again" : "uploaded"}`);
    if (created) note(`build ${buildId}: ${handle.groves} grove task(s) queued, ${trees} trees`);
    else note(`build ${buildId} already exists with the same data and options: ${resumedLine(handle)}`);
    const { bucket, table } = target.resources;
    const line = { buildId, created, status: record.status, groves: handle.groves, trees, packKey: pack.packKey, packUploaded: !pack.reused, bucket, table };
    stdout.write(options.json ? `${JSON.stringify(line)}\n` : `${buildId}\n`);
    if (options.wait) await waitFor(runtime, buildId, { stdout, stderr, json: options.json });
    else if (!options.json) note(`follow it with: canopy status ${buildId}   (or canopy watch --build ${buildId})`);
  } catch (err) {
    throw target.explain(err);
  } finally {
    await runtime.close();
    target.close();
  }
}

/** What submitting (or resuming) an existing build did, in words. */
export function resumedLine(handle: Pick<BuildHandle, "record" | "queued">): string {
  const { record, queued } = handle;
  if (record.status === "COMPLETED" || record.status === "FAILED") return `it is ${record.status}; nothing to do`;
  if (queued.length > 0) return `${record.status}; queued again the ${queued.length} grove(s) that had not landed (${shortList(queued)})`;
  if (record.status === "AGGREGATING")
    return `AGGREGATING (claimed ${Math.round((Date.now() - (record.claimedAt ?? record.updatedAt)) / 1000)} s ago); its aggregator has until its time limit before a resume or the sweeper reopens it`;
  if (record.remaining === 0) return "every grove is in; the aggregation was asked for again";
  return `${record.status}; nothing to queue`;
}

const shortList = (groves: number[]) => (groves.length <= 8 ? groves.join(", ") : `${groves.slice(0, 8).join(", ")}, ...`);

/** --wait: canopy train's progress from the ledger, then the result; Ctrl-C stops waiting, not the build. */
export async function waitFor(runtime: AwsRuntime, buildId: string, io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WriteStream; json?: boolean }): Promise<void> {
  const { progressPrinter, watchBuild } = await import("../progress.ts");
  const { costLine, statusJson, summary } = await import("../render.ts");
  const stop = (await import("../signals.ts")).stopOn(["SIGINT", "SIGTERM"]);
  const end = await watchBuild(runtime, buildId, progressPrinter(io.stderr, { announce: false }), stop.signal).finally(stop.dispose);
  if (!end) throw new InterruptedExit(`stopped waiting; build ${buildId} goes on in AWS: canopy status ${buildId}`);
  const { record, report } = end.view;
  if (io.json) io.stdout.write(`${JSON.stringify(statusJson(end.view, runtime.locate))}\n`);
  if (record.status === "FAILED") {
    for (const f of record.failed) io.stderr.write(`canopy: grove ${f.grove} failed: ${f.error}\n`);
    throw new FailedError(`build ${buildId} failed: ${record.reason ?? "no reason recorded"}`);
  }
  if (io.json) return;
  if (!report) throw new FailedError(`build ${buildId} completed but its report ${runtime.locate(record.result?.reportKey ?? "")} is not readable`);
  io.stdout.write(`${summary(report, runtime.locate(report.model.key), runtime.locate(record.result!.reportKey))}\n`);
  const cost = costLine(report);
  // A row under the summary's table ("timings" is its widest key).
  if (cost) io.stdout.write(`${"cost".padEnd("timings".length)}  ${cost}\n`);
}
