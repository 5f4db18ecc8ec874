import { relative } from "node:path";
import type { Command } from "commander";
import { isBuildId, SpecError, type BuildReport } from "@canopy/core";
import { printable, quoted } from "@canopy/forest";
import { createLocalRuntime, exportArtifacts, InterruptedError, type BuildOutcome, type ProgressEvent } from "@canopy/runtime-local";
import { FailedError, InterruptedExit, UsageError } from "../errors.ts";
import { bytes, metricsLine, schemaRows, table, timingsLine } from "../format.ts";
import { checkDataFile, checkOutDir } from "../fs.ts";
import { progressView, type ProgressView } from "../progress.ts";
import { buildSpec, FLAG_FOR_FIELD, specUsageError, type SpecFlags } from "../spec.ts";

export interface TrainOptions extends SpecFlags {
  workers?: number;
  out?: string;
  root: string;
  notifyUrl?: string;
  resume?: string;
  json?: boolean;
}

/** Spec flags the user typed on the command line (commander sets defaults for some, e.g. --no-bootstrap). */
function typedSpecFlags(command: Command): string[] {
  const flags = new Set(Object.values(FLAG_FOR_FIELD));
  return command.options
    .filter((o) => flags.has(o.long ?? "") && command.getOptionValueSource(o.attributeName()) === "cli")
    .map((o) => o.long!);
}

/** Paths relative to the working directory when that is shorter, as users typed them. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel !== "" && !rel.startsWith("..") && rel.length < path.length ? rel : path;
}

export async function train(data: string | undefined, raw: Record<string, unknown>, command: Command): Promise<void> {
  const options = raw as unknown as TrainOptions;
  const stderr = process.stderr;

  // Everything the user can get wrong is checked before anything is written.
  let spec: ReturnType<typeof buildSpec> | undefined;

  if (options.resume !== undefined) {
    if (!isBuildId(options.resume)) throw new UsageError(`--resume: ${JSON.stringify(options.resume)} is not a build id (b- and 16 hex digits)`);
    const ignored = [...(data !== undefined ? ["<data.csv>"] : []), ...typedSpecFlags(command)];
    if (ignored.length > 0) stderr.write(`canopy: --resume uses the data and options recorded with the build; ignoring ${ignored.join(", ")}\n`);
  } else {
    if (data === undefined) throw new UsageError("missing <data.csv> (or --resume <build-id>); see canopy train --help");
    spec = buildSpec(data, options);
    await checkDataFile(data);
  }
  if (options.out !== undefined) await checkOutDir(options.out);

  const view: ProgressView = await progressView(stderr);
  let buildId: string | undefined = options.resume;
  let announced = false;
  const onProgress = (event: ProgressEvent) => {
    if (event.buildId) buildId = event.buildId;
    if (event.type === "stage") {
      if (event.stage === "aggregating") view.note(`${event.buildId}: all groves in; merging and evaluating`);
      return;
    }
    if (!announced) {
      announced = true;
      const resumed = event.landed + event.failed > 0 ? `, resuming with ${event.landed} already landed` : "";
      view.note(`build ${event.buildId}: ${event.total} groves, ${event.treesTotal} trees${resumed}`);
    }
    view.update(event);
  };

  const runtime = createLocalRuntime({
    root: options.root,
    ...(options.workers !== undefined ? { workers: options.workers } : {}),
    ...(options.notifyUrl !== undefined ? { notifyUrl: options.notifyUrl } : {}),
    onProgress,
    // The summary below says it all; the notification itself goes to --notify-url.
    onNotify: () => view.stop(),
    onWarning: (message) => view.note(`warning: ${message}`),
  });

  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(new InterruptedExit().exitCode);
    interrupted = true;
    view.note("interrupted: stopping the trainers (Ctrl-C again to quit at once)");
    void runtime.close();
  };
  process.on("SIGINT", onSigint);

  let outcome: BuildOutcome;
  try {
    outcome = options.resume !== undefined ? await runtime.resume(options.resume) : await runtime.train(spec!, data!);
  } catch (err) {
    if (interrupted || err instanceof InterruptedError) {
      const id = err instanceof InterruptedError ? err.buildId : buildId;
      const root = options.root !== ".canopy" ? ` --root ${options.root}` : "";
      throw new InterruptedExit(`interrupted${id ? `; finish the build with: canopy train --resume ${id}${root}` : ""}`);
    }
    // Rules the data decides (e.g. a classification criterion on a label that makes this regression).
    throw err instanceof SpecError ? specUsageError(err) : err;
  } finally {
    view.stop();
    process.off("SIGINT", onSigint);
    await runtime.close();
  }

  if (outcome.status === "FAILED") throw new FailedError(`build ${outcome.buildId} failed: ${outcome.reason}`);

  let modelPath = outcome.modelPath;
  let reportPath = modelPath.replace(/model\.canopy$/, "report.json");
  if (options.out !== undefined) {
    await exportArtifacts(runtime.root, outcome.buildId, options.out);
    modelPath = `${options.out}/model.canopy`;
    reportPath = `${options.out}/report.json`;
  }

  if (options.json) {
    process.stdout.write(`${JSON.stringify(outcome.report, null, 2)}\n`);
    return;
  }
  if (!outcome.notification) {
    const why = options.resume !== undefined ? "had already finished; nothing to resume" : "was already done with the same data and options; nothing to train";
    stderr.write(`canopy: build ${outcome.buildId} ${why}\n`);
  }
  process.stdout.write(`${summary(outcome.report, shown(modelPath), shown(reportPath))}\n`);
}

/** The end-of-build summary: what was built, how well it does, how long it took, where it is. */
export function summary(report: BuildReport, modelPath: string, reportPath: string): string {
  const d = report.dataset;
  const target = d.task === "classification" ? `${d.classes.length} classes` : "regression";
  const missing = report.missingGroves.length;
  const rows: [string, string][] = [
    ["build", `${report.buildId}: ${report.model.trees} trees in ${report.groves.length} groves${missing ? ` (${missing} grove(s) failed and are missing)` : ""}`],
    ["data", `${d.nRows} rows × ${d.nFeatures} features, label ${quoted(d.labelName)} (${target}); ${d.trainRows} train / ${d.testRows} test`],
    ...(d.schema ? schemaRows(d.schema, printable) : []),
    ["metrics", metricsLine(report.metrics as unknown as Record<string, unknown> | null)],
    ["timings", timingsLine(report.timings)],
    ["model", `${modelPath} (${bytes(report.model.bytes)}, ${report.model.nodes} nodes)`],
    ["report", reportPath],
  ];
  return table(rows);
}
