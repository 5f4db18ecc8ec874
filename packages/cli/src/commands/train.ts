import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { inShort, isBuildId, isPartitionRunId, SpecError, TERMINAL_STATUSES, type BuildEnd, type BuildHandle, type ExtendRequest } from "@canopy/core";
import { createLocalRuntime, exportArtifacts, InterruptedError } from "@canopy/runtime-local";
import { FailedError, InterruptedExit, UsageError } from "../errors.ts";
import { interruptTrainers } from "../signals.ts";
import { checkDataFile, checkOutDir, shown } from "../fs.ts";
import { progressPrinter, watchBuild } from "../progress.ts";
import { extensionNote, summary } from "../render.ts";
import { buildSpec, extendRequest, FLAG_FOR_FIELD, noteLines, specUsageError, type SpecFlags } from "../spec.ts";
import type { PartitionFlags } from "../partition-options.ts";
import { checkPartitionFlags, partitionOptions } from "../partition-render.ts";
import { trainPartitioned } from "../partition-run.ts";

export interface TrainOptions extends SpecFlags, PartitionFlags {
  workers?: number;
  out?: string;
  root: string;
  notifyUrl?: string;
  resume?: string;
  extend?: string;
  refit?: boolean;
  json?: boolean;
}

/** Spec flags the user typed on the command line (commander sets defaults for some, e.g. --no-bootstrap). */
function typedSpecFlags(command: Command): string[] {
  const flags = new Set(Object.values(FLAG_FOR_FIELD));
  return command.options
    .filter((o) => flags.has(o.long ?? "") && command.getOptionValueSource(o.attributeName()) === "cli")
    .map((o) => o.long!);
}

export async function train(data: string | undefined, raw: Record<string, unknown>, command: Command): Promise<void> {
  const options = raw as unknown as TrainOptions;
  const stderr = process.stderr;

  // Everything the user can get wrong is checked before anything is written.
  let spec: ReturnType<typeof buildSpec> | undefined;
  let extension: ExtendRequest | undefined;

  if (options.resume !== undefined && options.extend !== undefined) throw new UsageError("--resume and --extend: one at a time");
  checkPartitionFlags(options);
  // A partitioned run (--partition-by, or resuming a p- id): one model per value of a column, in one fan-out.
  if (options.resume !== undefined && isPartitionRunId(options.resume)) {
    const ignored = [...(data !== undefined ? ["<data.csv>"] : []), ...typedSpecFlags(command)];
    if (ignored.length > 0) stderr.write(`canopy: --resume uses the data and options recorded with the run; ignoring ${ignored.join(", ")}\n`);
    if (options.out !== undefined) await checkOutDir(options.out);
    return trainPartitioned({ resume: options.resume, command: "train" }, options);
  }
  if (options.partitionBy !== undefined) {
    if (options.resume !== undefined) throw new UsageError("--resume <build-id> and --partition-by: one at a time (resume a partitioned run by its p- id)");
    if (data === undefined) throw new UsageError("missing <data.csv> (or --resume <p-id>); see canopy train --help");
    const partitioned = buildSpec(data, options);
    await checkDataFile(data);
    if (options.out !== undefined) await checkOutDir(options.out);
    return trainPartitioned({ spec: partitioned, options: partitionOptions(options) }, options);
  }
  if (options.extend !== undefined) {
    extension = extendRequest(options.extend, data, options);
  } else if (options.resume !== undefined) {
    if (!isBuildId(options.resume)) throw new UsageError(`--resume: ${inShort(options.resume)} is not a build id (b- and 16 hex digits)`);
    const ignored = [...(data !== undefined ? ["<data.csv>"] : []), ...typedSpecFlags(command)];
    if (ignored.length > 0) stderr.write(`canopy: --resume uses the data and options recorded with the build; ignoring ${ignored.join(", ")}\n`);
  } else {
    if (data === undefined) throw new UsageError("missing <data.csv> (or --resume <build-id>); see canopy train --help");
    spec = buildSpec(data, options);
    await checkDataFile(data);
  }
  if (options.refit && spec?.test_fraction === 0)
    throw new UsageError("--refit: --test-fraction 0 holds nothing out, so there are no metrics to measure first and the model is already trained on every row");
  if (options.out !== undefined) await checkOutDir(options.out);

  const printer = progressPrinter(stderr);
  const runtime = createLocalRuntime({
    root: options.root,
    ...(options.workers !== undefined ? { workers: options.workers } : {}),
    ...(options.notifyUrl !== undefined ? { notifyUrl: options.notifyUrl } : {}),
    // The summary below says it all; the notification itself goes to --notify-url.
    onNotify: () => {},
    onWarning: (message) => printer.note(`warning: ${message}`),
  });
  // Ctrl-C closes the runtime: the trainers stop and the build waits for --resume. A second Ctrl-C quits at once.
  const ctrlC = interruptTrainers(runtime, (line) => printer.note(line));

  let handle: BuildHandle | undefined;
  let end: BuildEnd | undefined;
  try {
    handle = await runtime.submit(extension ?? (options.resume !== undefined ? { resume: options.resume } : { spec: spec!, data: data! }));
    if (handle.created && handle.extends) printer.note(extensionNote(handle));
    for (const line of noteLines(handle.dataset?.notes ?? [])) printer.note(line);
    end = await watchBuild(runtime, handle.buildId, printer);
    if (options.refit && end!.view.record.status === "COMPLETED") {
      // The metrics are measured; the model shipped is trained on every row (core's refit.ts).
      const evaluation = handle.buildId;
      handle = await runtime.submit({ refit: evaluation });
      printer.note(`refit: build ${evaluation} measured the held-out metrics; build ${handle.buildId} trains the shipped model on every row${handle.created ? "" : " (it exists already)"}`);
      end = await watchBuild(runtime, handle.buildId, printer);
    }
  } catch (err) {
    if (ctrlC.interrupted || err instanceof InterruptedError) {
      const id = err instanceof InterruptedError ? err.buildId : handle?.buildId;
      // Interrupted before the refit started, the command that finishes it refits after (the refit is resumed as is).
      const refit = options.refit === true && handle?.refitOf === undefined;
      throw new InterruptedExit(`interrupted${id ? `; finish the build with: ${resumeCommand(id, { ...options, refit })}` : ""}`);
    }
    // Rules the data decides (e.g. a classification criterion on a label that makes this regression).
    throw err instanceof SpecError ? specUsageError(err) : err;
  } finally {
    ctrlC.dispose();
    await runtime.close();
  }
  await finish(handle, end!, options, runtime.root);
}

/** The command that finishes `buildId` the way this one would have: where the store is, where the export goes, how. */
export function resumeCommand(buildId: string, options: Pick<TrainOptions, "root" | "out" | "workers" | "notifyUrl" | "json" | "refit">): string {
  const args = ["canopy", "train", "--resume", buildId];
  if (options.root !== ".canopy") args.push("--root", options.root);
  if (options.out !== undefined) args.push("--out", options.out);
  if (options.workers !== undefined) args.push("--workers", String(options.workers));
  if (options.notifyUrl !== undefined) args.push("--notify-url", options.notifyUrl);
  if (options.refit) args.push("--refit");
  if (options.json) args.push("--json");
  return args.map(shellWord).join(" ");
}

/** A word as a POSIX shell reads it back: as is when it is plain, else in single quotes. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;
}

/** The end of a build on the terminal: the failure, or the summary (or the report, --json), and the --out export. */
async function finish(handle: BuildHandle, end: BuildEnd, options: TrainOptions, root: string): Promise<void> {
  const { record, report } = end.view;
  if (record.status === "FAILED") throw new FailedError(`build ${record.buildId} failed: ${record.reason ?? "unknown reason"}`);
  let modelPath = join(root, report!.model.key);
  let reportPath = join(root, record.result!.reportKey);
  if (options.out !== undefined) {
    await exportArtifacts(root, record.buildId, options.out);
    modelPath = `${options.out}/model.canopy`;
    reportPath = `${options.out}/report.json`;
  }
  if (options.json) return void process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  // Found finished when submitted: nothing ran.
  if (TERMINAL_STATUSES.includes(handle.record.status)) {
    const why =
      options.resume !== undefined
        ? "had already finished; nothing to resume"
        : options.extend !== undefined
          ? `is build ${options.extend} with ${handle.trees} trees, and was already done; nothing to train`
          : "was already done with the same data and options; nothing to train";
    process.stderr.write(`canopy: build ${record.buildId} ${why}\n`);
  }
  const pagePath = reportPath.replace(/\.json$/, ".html");
  process.stdout.write(`${summary(report!, shown(modelPath), shown(reportPath), existsSync(pagePath) ? shown(pagePath) : undefined)}\n`);
}
