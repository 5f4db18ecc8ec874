import type { Command } from "commander";
import type { AwsRuntime } from "@canopy/runtime-aws";
import { addAwsOptions, type AwsTargetOptions } from "../aws-target.ts";
import { UsageError } from "../errors.ts";
import { resumedLine, waitFor } from "../aws-build.ts";
import { addEstimateOptions, estimateSettings, type EstimateFlags } from "../estimate-options.ts";
import { addSpecOptions } from "../spec-options.ts";
import { addStudyOptions, type StudyFlags } from "../study-options.ts";
import { addPartitionOptions, type PartitionFlags } from "../partition-options.ts";
import type { BuildHandle, BuildSpec } from "@canopy/core";

export interface PublishOptions extends StudyFlags, AwsTargetOptions, EstimateFlags, PartitionFlags {
  tune?: boolean;
  /** --tune --partition-by: one candidate for every partition. */
  sharedParams?: boolean;
  wait?: boolean;
  json?: boolean;
  extend?: string;
  refit?: boolean;
  dryRun?: boolean;
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
        "ledger and prints the result; exit 0 when the build completes, 1 when it fails. With --dry-run, prints the build " +
        "id and canopy estimate's time and cost instead, and uploads and queues nothing. --extend <build-id> --trees N " +
        "gives a finished build more trees instead: only the new trees are trained, into the model a fresh N-tree build would give.",
    )
    .argument("[data]", "a CSV, .csv.gz or Parquet file, or s3://bucket/key of one (not with --extend)");
  addPartitionOptions(addSpecOptions(command))
    .option("--extend <build-id>", "more trees for a finished build: with --trees N, trains only the new trees (same options and seed)")
    .option(
      "--refit",
      "wait for the build's held-out metrics, then start the shipped model's build on every row (test fraction 0; its report carries the first one's metrics); prints both ids",
    )
    .option("--wait", "wait for the build: progress, then metrics, timings and cost (exit 1 if it fails)")
    .option("--json", "print JSON lines on stdout: the submission, and with --wait the final status")
    .option("--dry-run", "estimate the build's time and cost (canopy estimate) without uploading or queueing anything")
    .option("--tune", "start a study instead (canopy tune's search, by --grid or --random, --scoring and --cv): every candidate x fold build on the deployed app, one study notification")
    .option("--shared-params", "with --tune --partition-by: one candidate for every partition (the best mean score over the partitions) instead of each partition's own best");
  addStudyOptions(command);
  addEstimateOptions(command);
  addAwsOptions(command, ["bucket", "table", "queueUrl"]);
  return command.action(async (data: string | undefined, options: PublishOptions) => {
    if (options.extend !== undefined) return publishExtension(data, { ...options, extend: options.extend });
    if (data === undefined) throw new UsageError("missing required argument 'data'");
    if (options.partitionBy !== undefined || options.fallback !== undefined || options.minPartitionRows !== undefined) return publishPartitions(data, options);
    if (options.sharedParams) throw new UsageError("--shared-params: only with --tune --partition-by <column> (one candidate for every partition)");
    if (options.tune) return publishStudy(data, options);
    const searched = ["grid", "random", "param", "scoring", "cv"].filter((k) => options[k as keyof PublishOptions] !== undefined);
    if (searched.length > 0) throw new UsageError(`--${searched[0]} searches candidates: add --tune to start a study`);
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
  // Everything the user can get wrong locally is checked before AWS is touched.
  const { buildSpec } = await import("../spec.ts");
  const spec = buildSpec(data, options);
  const aws = await import("@canopy/runtime-aws");
  const { groveCount } = await import("@canopy/core");
  const groves = groveCount(spec.n_estimators, spec.grove_size);
  if (groves > aws.DYNAMO_MAX_GROVES)
    throw new UsageError(
      `--trees ${spec.n_estimators} in groves of ${spec.grove_size} make ${groves} groves; a build on AWS has at most ${aws.DYNAMO_MAX_GROVES}: ` +
        `use --grove-size ${Math.ceil(spec.n_estimators / aws.DYNAMO_MAX_GROVES)} or more`,
    );
  if (!aws.parseS3Url(data)) await (await import("../fs.ts")).checkDataFile(data);
  if (options.refit && spec.test_fraction === 0)
    throw new UsageError("--refit: --test-fraction 0 holds nothing out, so there are no metrics to measure first and the model is already trained on every row");
  if (options.dryRun) {
    if (options.refit) throw new UsageError("--refit waits for a build; --dry-run starts none");
    if (options.wait) throw new UsageError("--wait waits for a build; --dry-run starts none");
    const stderr = io.stderr ?? process.stderr;
    return dryRun(data, spec, options, { stdout: io.stdout ?? process.stdout, note: (text: string) => stderr.write(`canopy: ${text}\n`) });
  }

  await submitOnAws(options, io, async (runtime, note) => {
    // Streamed from the file or the s3:// object: CSV, .csv.gz or Parquet, by content. Rules the data decides (an
    // unknown label column) are the user's to fix: exit 2.
    const ingest = await import("@canopy/core/ingest");
    const s3 = aws.parseS3Url(data);
    const input = await ingest.openTable(s3 ? await aws.s3ByteSource(data, s3) : ingest.fileSource(data));
    const handle = await runtime.submit({ spec, data: input });
    const { buildId, created, record, trees } = handle;
    const pack = handle.dataset!;
    const { bytes } = await import("../format.ts");
    for (const line of (await import("../spec.ts")).noteLines(pack.notes)) note(line);
    note(`pack ${runtime.locate(pack.packKey)} (${pack.nRows} rows × ${pack.nFeatures} features, ${bytes(pack.bytes)}) ${pack.reused ? "was already there; not uploaded again" : "uploaded"}`);
    if (created) note(`build ${buildId}: ${handle.groves} grove task(s) queued, ${trees} trees`);
    else note(`build ${buildId} already exists with the same data and options: ${resumedLine(handle)}`);
    return { handle, fields: { packKey: pack.packKey, packUploaded: !pack.reused } };
  });
}

/**
 * `publish --extend <build-id> --trees N`: the finished build's groves are copied (in the bucket, by this process),
 * the new ones queued for the trainer functions. Prints the new build id like publish; --wait and --json as for publish.
 */
export async function publishExtension(data: string | undefined, options: PublishOptions & { extend: string }, io: PublishIo = {}): Promise<void> {
  const { extendRequest } = await import("../spec.ts");
  const request = extendRequest(options.extend, data, options);
  await submitOnAws(options, io, async (runtime, note) => {
    const handle = await runtime.submit(request);
    const { buildId, created, record, trees } = handle;
    const { extensionNote } = await import("../render.ts");
    if (created) note(extensionNote(handle));
    else note(`build ${buildId} is build ${options.extend} with ${trees} trees, and exists already (${record.status}); nothing queued`);
    return { handle, fields: { extends: options.extend, copied: handle.copied ?? [], queued: handle.queued } };
  });
}

/**
 * What publish and publish --extend share: the app's resources, the runtime, `submit` (which says what it did and
 * returns its own fields of the JSON line), the build id or the JSON line on stdout, then --wait. A spec error is
 * the user's (exit 2, naming the flag).
 */
async function submitOnAws(
  options: PublishOptions,
  io: PublishIo,
  submit: (runtime: AwsRuntime, note: (text: string) => void) => Promise<{ handle: BuildHandle; fields: Record<string, unknown> }>,
): Promise<void> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const note = (text: string) => stderr.write(`canopy: ${text}\n`);
  const aws = await import("@canopy/runtime-aws");
  const { SpecError } = await import("@canopy/core");
  const { specUsageError } = await import("../spec.ts");
  const target = await (await import("../aws-target.ts")).connectAws(options, ["bucket", "table", "queueUrl"]);
  const runtime = aws.createAwsRuntime({ resources: target.resources, ...(io.pollMs ? { pollIntervalMs: io.pollMs } : {}) });
  try {
    let { handle, fields } = await submit(runtime, note).catch((err: unknown) => {
      throw err instanceof SpecError ? specUsageError(err) : err;
    });
    const { bucket, table } = target.resources;
    const emit = (h: BuildHandle, extra: Record<string, unknown>) => {
      const line = { buildId: h.buildId, created: h.created, status: h.record.status, groves: h.groves, trees: h.trees, ...extra, bucket, table };
      stdout.write(options.json ? `${JSON.stringify(line)}\n` : `${h.buildId}\n`);
    };
    emit(handle, fields);
    if (options.refit) {
      // The held-out metrics first (this build), then the shipped model on every row (core's refit.ts).
      const evaluation = handle.buildId;
      await waitFor(runtime, evaluation, { stdout, stderr, json: options.json });
      handle = await runtime.submit({ refit: evaluation });
      note(`refit: build ${evaluation} measured the held-out metrics; build ${handle.buildId} trains the shipped model on every row${handle.created ? `: ${handle.groves} grove task(s) queued` : ` (exists already: ${resumedLine(handle)})`}`);
      fields = { refitOf: evaluation, queued: handle.queued };
      emit(handle, fields);
    }
    const { buildId } = handle;
    if (options.wait) await waitFor(runtime, buildId, { stdout, stderr, json: options.json });
    else if (!options.json) note(`follow it with: canopy status ${buildId}   (or canopy watch --build ${buildId})`);
  } catch (err) {
    throw target.explain(err);
  } finally {
    await runtime.close();
    target.close();
  }
}

/** --dry-run: the build id it would be, and the estimate; nothing leaves this machine but an s3:// data read. */
async function dryRun(data: string, spec: BuildSpec, options: PublishOptions, io: { stdout: NodeJS.WritableStream; note: (text: string) => void }): Promise<void> {
  const settings = estimateSettings(options);
  const aws = await import("@canopy/runtime-aws");
  const ingest = await import("@canopy/core/ingest");
  const { emulatorEnv } = await import("../aws-target.ts");
  const s3 = aws.parseS3Url(data);
  const restore = s3 && options.endpoint ? emulatorEnv(options.endpoint.replace(/\/$/, "")) : () => {};
  try {
    const table = await ingest.openTable(s3 ? await aws.s3ByteSource(data, s3) : ingest.fileSource(data));
    const { runEstimate } = await import("../estimate.ts");
    const { shown } = await import("../fs.ts");
    const { result, text, json } = await runEstimate(spec, table, s3 ? data : shown(data), settings, io.note);
    const { buildId } = result.measurement;
    const groves = (await import("@canopy/core")).groveCount(spec.n_estimators, spec.grove_size);
    if (options.json) io.stdout.write(`${JSON.stringify({ dryRun: true, buildId, groves, trees: spec.n_estimators, estimate: json })}\n`);
    else {
      io.note(`dry run: build ${buildId} (${groves} grove task(s), ${spec.n_estimators} trees) was not submitted; nothing uploaded or queued`);
      io.stdout.write(`${text}\n`);
    }
  } finally {
    restore();
    aws.resetClients();
  }
}

/**
 * `publish --tune`: a study on the deployed app. Prints the study id (or a JSON line); with --wait, the builds done
 * (from the study's ledger record) until it ends, then the ranking (or the study report, --json).
 */
export async function publishStudy(data: string, options: PublishOptions, io: PublishIo = {}): Promise<void> {
  const { studySpec } = await import("../study-flags.ts");
  const spec = studySpec(data, options);
  if (options.dryRun) throw new UsageError("--dry-run estimates one build; it does not estimate a study");
  const aws = await import("@canopy/runtime-aws");
  await checkMemberBuilds(data, spec.base, aws);
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const note = (text: string) => stderr.write(`canopy: ${text}\n`);
  const core = await import("@canopy/core");
  const target = await (await import("../aws-target.ts")).connectAws(options, ["bucket", "table", "queueUrl"]);
  const runtime = aws.createAwsRuntime({ resources: target.resources });
  try {
    const ingest = await import("@canopy/core/ingest");
    const s3 = aws.parseS3Url(data);
    const input = await ingest.openTable(s3 ? await aws.s3ByteSource(data, s3) : ingest.fileSource(data));
    const { studyUsageError } = await import("../study-flags.ts");
    const handle = await runtime.tune(spec, input).catch((err: unknown) => {
      throw err instanceof core.SpecError ? studyUsageError(err) : err;
    });
    const { bytes } = await import("../format.ts");
    const p = handle.pack;
    note(`pack ${runtime.locate(p.packKey)} (${p.nRows} rows × ${p.nFeatures} features, ${bytes(p.bytes)}) ${p.reused ? "was already there; not uploaded again" : "uploaded"}`);
    note(
      handle.created
        ? `study ${handle.studyId}: ${handle.candidates} candidates ${spec.oob ? "scored out of bag" : `x ${spec.cv} folds`} = ${handle.builds} builds, ${handle.groves} grove task(s) queued (${handle.submitted} builds new)`
        : `study ${handle.studyId} already exists with the same data and search (${handle.status})${handle.submitted ? `; submitted ${handle.submitted} missing builds` : ""}`,
    );
    const { bucket, table } = target.resources;
    stdout.write(options.json ? `${JSON.stringify({ studyId: handle.studyId, created: handle.created, status: handle.status, candidates: handle.candidates, builds: handle.builds, groves: handle.groves, bucket, table })}\n` : `${handle.studyId}\n`);
    if (!options.wait) {
      if (!options.json) note(`follow it with: canopy watch --type study.completed,study.failed`);
      return;
    }
    const stop = (await import("../signals.ts")).stopOn(["SIGINT", "SIGTERM"]);
    try {
      let shown = "";
      const said = new Set<string>();
      for (;;) {
        // The record the study is at: a halving round's, or once ranked its final stage's (studyHead).
        const head = await core.studyHead(runtime.ledger, handle.studyId);
        if (!head) throw new core.InternalError(`study ${handle.studyId} vanished from the ledger`);
        const s = head.summary;
        const final = head.final ? await runtime.ledger.summary(head.final.buildId) : undefined;
        // Ranked between two polls: the builds' last count is said before the final model's.
        const ranked = head.final?.ranking.summary;
        const round = head.round > 0 ? `round ${head.round}: ` : "";
        const count = ranked ? `study ${handle.studyId}: ${round}builds ${ranked.landedCount + ranked.failedCount}/${ranked.total} done` : undefined;
        if (count && !said.has(count)) note(count);
        if (count) said.add(count);
        const line = head.final
          ? `study ${handle.studyId}: ranked; final model ${head.final.buildId}: groves ${final ? final.landedCount + final.failedCount : 0}/${final?.total ?? "?"} settled`
          : `study ${handle.studyId}: ${round}builds ${s.landedCount + s.failedCount}/${s.total} done${s.status === "AGGREGATING" ? "; ranking" : ""}`;
        if (line !== shown) note((shown = line));
        said.add(line);
        if (s.status === "FAILED") {
          const { FailedError } = await import("../errors.ts");
          throw new FailedError(`study ${handle.studyId} failed: ${s.reason ?? "no reason recorded"}`);
        }
        if (s.status === "COMPLETED" && s.result?.metrics?.next_round === undefined) break;
        if (stop.signal.aborted) {
          const { InterruptedExit } = await import("../errors.ts");
          throw new InterruptedExit(`stopped waiting; study ${handle.studyId} goes on in AWS`);
        }
        await new Promise((resolve) => setTimeout(resolve, io.pollMs ?? 1000));
      }
    } finally {
      stop.dispose();
    }
    const bytesOf = await runtime.blobs.get(core.keys.studyReport(handle.studyId));
    if (!bytesOf) throw new core.InternalError(`study ${handle.studyId} completed but ${runtime.locate(core.keys.studyReport(handle.studyId))} is not readable`);
    const report = JSON.parse(new TextDecoder().decode(bytesOf)) as import("@canopy/core").StudyReport;
    if (options.json) return void stdout.write(`${JSON.stringify(report)}\n`);
    const { showParams } = core;
    const { rankingTable } = await import("../study-render.ts");
    const final = report.final
      ? `final model ${report.final.buildId}: ${report.final.testRows > 0 ? `test ${report.scoring} ${core.scoreOf(report.scoring, report.final.metrics).toFixed(4)} on ${report.final.testRows} held-out rows` : "nothing held out"}\nmodel  ${runtime.locate(report.final.modelKey)}\n`
      : "";
    stdout.write(`best ${report.scoring} ${report.best_score_.toFixed(4)} with ${showParams(report.best_params_)}\n\n${rankingTable(report)}\n\n${final}report ${runtime.locate(core.keys.studyReport(handle.studyId))}\n`);
  } catch (err) {
    throw target.explain(err);
  } finally {
    await runtime.close();
    target.close();
  }
}

/**
 * `publish --partition-by <col>`: the input read once here, one pack per partition uploaded, one build per partition
 * queued for the deployed trainers in one fan-out; the deployed aggregator writes the partitioned model and publishes
 * one partitions.* notification. Prints the run id (or a JSON line); with --wait, partitions done until it ends,
 * then the summary (or the run's report, --json).
 */
export async function publishPartitions(data: string, options: PublishOptions, io: PublishIo = {}): Promise<void> {
  const { checkPartitionFlags, partitionOptions, partitionSummary, tunedSummary } = await import("../partition-render.ts");
  checkPartitionFlags({ ...options, refit: options.tune ? undefined : options.refit });
  if (options.sharedParams && !options.tune) throw new UsageError("--shared-params: only with --tune --partition-by <column> (one candidate for every partition)");
  if (options.tune && options.halving) throw new UsageError("--halving with --partition-by is not available yet: tune each partition with every candidate at full trees (drop --halving)");
  if (options.dryRun) throw new UsageError("--dry-run estimates one build; it does not estimate a partitioned run");
  const { buildSpec, specUsageError } = await import("../spec.ts");
  const { studySpec, studyUsageError } = await import("../study-flags.ts");
  const core = await import("@canopy/core");
  // --tune: every partition tuned (the search checked against the limits with one partition before any row is read).
  const study = options.tune ? studySpec(data, options) : undefined;
  if (study) {
    try {
      core.checkPartitionTuning(study, 1);
    } catch (err) {
      throw err instanceof core.SpecError ? studyUsageError(err) : err;
    }
  }
  const spec = study?.base ?? buildSpec(data, options);
  const aws = await import("@canopy/runtime-aws");
  await checkMemberBuilds(data, spec, aws);
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const note = (text: string) => stderr.write(`canopy: ${text}\n`);
  const target = await (await import("../aws-target.ts")).connectAws(options, ["bucket", "table", "queueUrl"]);
  const runtime = aws.createAwsRuntime({ resources: target.resources });
  try {
    const ingest = await import("@canopy/core/ingest");
    const s3 = aws.parseS3Url(data);
    const input = await ingest.openTable(s3 ? await aws.s3ByteSource(data, s3) : ingest.fileSource(data));
    const runOptions = partitionOptions(options);
    const handle = await (async () => {
      const prepared = await ingest.preparePartitions(spec, runOptions, input, runtime.blobs, {
        onProgress: (p) => (p.stage === "reading" ? note(`read ${p.rows} rows: ${p.partitions} partitions`) : undefined),
      });
      note(`${prepared.partitions.length} pack(s) in ${runtime.locate("packs/")}; ${prepared.skipped.length} partition(s) skipped`);
      return study ? runtime.tunePartitions(study, runOptions, options.sharedParams ? "shared" : "independent", prepared) : runtime.partitions(spec, runOptions, prepared);
    })().catch((err: unknown) => {
      throw err instanceof core.SpecError ? (study ? studyUsageError(err) : specUsageError(err)) : err;
    });
    const what = study ? "tuned partitioned run" : "partitioned run";
    note(
      handle.created
        ? `${what} ${handle.runId}: ${handle.builds} ${study ? "candidate x fold " : ""}builds, ${handle.groves} grove task(s) queued (${handle.submitted} builds new)`
        : `${what} ${handle.runId} already exists with the same data and ${study ? "search" : "options"} (${handle.status})${handle.submitted ? `; submitted ${handle.submitted} missing builds` : ""}`,
    );
    const { bucket, table } = target.resources;
    stdout.write(options.json ? `${JSON.stringify({ runId: handle.runId, created: handle.created, status: handle.status, builds: handle.builds, groves: handle.groves, skipped: handle.skipped, bucket, table })}\n` : `${handle.runId}\n`);
    if (!options.wait) {
      if (!options.json) note(`follow it with: canopy status ${handle.runId}   (or canopy watch --type partitions.completed,partitions.failed)`);
      return;
    }
    await waitForRecord(
      runtime,
      handle.runId,
      `${what} ${handle.runId}`,
      (done, s, stage) =>
        stage
          ? `${handle.runId}: ranked; final builds ${done - 1}/${s.total - 1} done${s.status === "AGGREGATING" ? "; writing the partitioned model" : ""}`
          : study
            ? `${handle.runId}: builds ${done}/${s.total} done${s.status === "AGGREGATING" ? "; ranking" : ""}`
            : `${handle.runId}: partitions ${done}/${s.total} done${s.status === "AGGREGATING" ? "; writing the partitioned model" : ""}`,
      note,
      io.pollMs,
    );
    const reportKey = core.keys.partitionReport(handle.runId);
    const bytesOf = await runtime.blobs.get(reportKey);
    if (!bytesOf) throw new core.InternalError(`partitioned run ${handle.runId} completed but ${runtime.locate(reportKey)} is not readable`);
    const report = JSON.parse(new TextDecoder().decode(bytesOf)) as import("@canopy/core").PartitionReport;
    if (options.json) return void stdout.write(`${JSON.stringify(report)}\n`);
    const pageKey = core.keys.partitionReportHtml(handle.runId);
    const page = (await runtime.blobs.exists(pageKey)) ? runtime.locate(pageKey) : undefined;
    stdout.write(
      `${report.tuning ? tunedSummary(report, report.modelKey ? runtime.locate(report.modelKey) : undefined, runtime.locate(reportKey), page) : partitionSummary(report, runtime.locate(report.modelKey ?? core.keys.partitionedModel(handle.runId)), runtime.locate(reportKey), page)}\n`,
    );
  } catch (err) {
    throw target.explain(err);
  } finally {
    await runtime.close();
    target.close();
  }
}

/**
 * --wait for a fan-in record (a study's, a partitioned run's) from its ledger counter: a line when its members done
 * change, until it is COMPLETED; FAILED throws (exit 1); Ctrl-C stops waiting, the work goes on in AWS. A record that
 * completes into a next stage (a tuned run ranked) is followed there (`stage` true).
 */
async function waitForRecord(
  runtime: AwsRuntime,
  id: string,
  what: string,
  line: (done: number, summary: import("@canopy/core").BuildSummary, stage: boolean) => string,
  note: (text: string) => void,
  pollMs = 1000,
): Promise<void> {
  const { InternalError, studyHead } = await import("@canopy/core");
  const { FailedError, InterruptedExit } = await import("../errors.ts");
  const stop = (await import("../signals.ts")).stopOn(["SIGINT", "SIGTERM"]);
  try {
    let shown = "";
    for (;;) {
      const head = await studyHead(runtime.ledger, id);
      if (!head) throw new InternalError(`${what} vanished from the ledger`);
      const s = head.summary;
      const done = s.landedCount + s.failedCount;
      if (`${head.id}/${done}` !== shown) {
        shown = `${head.id}/${done}`;
        note(line(done, s, head.id !== id));
      }
      if (s.status === "FAILED") throw new FailedError(`${what} failed: ${s.reason ?? "no reason recorded"}`);
      if (s.status === "COMPLETED") return;
      if (stop.signal.aborted) throw new InterruptedExit(`stopped waiting; ${what} goes on in AWS`);
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  } finally {
    stop.dispose();
  }
}

/**
 * Before connecting, for a run of many builds (a study's, a partitioned run's): each build holds at most
 * DYNAMO_MAX_GROVES groves (one DynamoDB item), and a local data file is readable.
 */
async function checkMemberBuilds(data: string, spec: { n_estimators: number; grove_size: number }, aws: typeof import("@canopy/runtime-aws")): Promise<void> {
  const groves = (await import("@canopy/core")).groveCount(spec.n_estimators, spec.grove_size);
  if (groves > aws.DYNAMO_MAX_GROVES)
    throw new UsageError(`--trees ${spec.n_estimators} in groves of ${spec.grove_size} make ${groves} groves per build; a build on AWS has at most ${aws.DYNAMO_MAX_GROVES}`);
  if (!aws.parseS3Url(data)) await (await import("../fs.ts")).checkDataFile(data);
}
