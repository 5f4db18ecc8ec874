import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { isPartitionRunId, isStudyId, scoreOf, showParams, SpecError, type StudyReport, type StudySpec } from "@canopy/core";
import { createLocalRuntime, exportArtifacts, InterruptedError, type StudyOutcome, type StudyProgress } from "@canopy/runtime-local";
import { FailedError, InterruptedExit, UsageError } from "../errors.ts";
import { interruptTrainers } from "../signals.ts";
import { checkDataFile, checkOutDir, shown } from "../fs.ts";
import { bytes } from "../format.ts";
import { studySpec, studyUsageError } from "../study-flags.ts";
import { rankingTable, studyProgressLine, throttledProgress } from "../study-render.ts";
import type { StudyFlags } from "../study-options.ts";
import type { PartitionFlags } from "../partition-options.ts";
import { checkPartitionFlags, partitionOptions } from "../partition-render.ts";
import { trainPartitioned } from "../partition-run.ts";

export interface TuneOptions extends StudyFlags, PartitionFlags {
  /** --shared-params: with --partition-by, one candidate for every partition. */
  sharedParams?: boolean;
  workers?: number;
  root: string;
  notifyUrl?: string;
  resume?: string;
  json?: boolean;
  out?: string;
}

export async function tune(data: string | undefined, raw: Record<string, unknown>): Promise<void> {
  const options = raw as unknown as TuneOptions;
  let spec: StudySpec | undefined;
  checkPartitionFlags({ ...(options.partitionBy !== undefined ? { partitionBy: options.partitionBy } : {}), ...(options.minPartitionRows !== undefined ? { minPartitionRows: options.minPartitionRows } : {}), ...(options.fallback ? { fallback: options.fallback } : {}) });
  if (options.sharedParams && options.partitionBy === undefined && !(options.resume !== undefined && isPartitionRunId(options.resume)))
    throw new UsageError("--shared-params: only with --partition-by <column> (one candidate for every partition)");
  if (options.out !== undefined && options.refit === false) throw new UsageError("--out exports the study's final model; --no-refit builds none");
  // A tuned partitioned run (--partition-by, or resuming a p- id): every partition tuned in one fan-out.
  if (options.resume !== undefined && isPartitionRunId(options.resume)) {
    if (data !== undefined) process.stderr.write("canopy: --resume uses the data and search recorded with the run; ignoring <data.csv>\n");
    if (options.out !== undefined) await checkOutDir(options.out);
    return trainPartitioned({ resume: options.resume, command: "tune" }, options);
  }
  if (options.partitionBy !== undefined) {
    if (options.resume !== undefined) throw new UsageError("--resume <study-id> and --partition-by: one at a time (resume a tuned partitioned run by its p- id)");
    if (data === undefined) throw new UsageError("missing <data.csv> (or --resume <p-id>); see canopy tune --help");
    if (options.halving) throw new UsageError("--halving with --partition-by is not available yet: tune each partition with every candidate at full trees (drop --halving)");
    const study = studySpec(data, options);
    await checkDataFile(data);
    if (options.out !== undefined) await checkOutDir(options.out);
    return trainPartitioned({ study, options: partitionOptions(options), mode: options.sharedParams ? "shared" : "independent" }, options);
  }
  if (options.resume !== undefined) {
    if (!isStudyId(options.resume)) throw new UsageError(`--resume: ${JSON.stringify(options.resume).slice(0, 40)} is not a study id (s- and 16 hex digits) or a tuned partitioned run's (p-)`);
  } else {
    if (data === undefined) throw new UsageError("missing <data.csv> (or --resume <study-id>); see canopy tune --help");
    spec = studySpec(data, options);
    await checkDataFile(data);
  }
  if (options.out !== undefined) await checkOutDir(options.out);
  const stderr = process.stderr;
  const onProgress = throttledProgress(
    (p: StudyProgress) => ({
      groves: p.grovesDone,
      grovesTotal: p.grovesTotal,
      builds: p.buildsDone,
      buildsTotal: p.buildsTotal,
      ...(p.final ? { final: { groves: p.final.grovesDone, grovesTotal: p.final.grovesTotal } } : {}),
    }),
    (p) => stderr.write(`${studyProgressLine(p)}\n`),
  );
  const runtime = createLocalRuntime({
    root: options.root,
    ...(options.workers !== undefined ? { workers: options.workers } : {}),
    ...(options.notifyUrl !== undefined ? { notifyUrl: options.notifyUrl } : {}),
    // The ranking below says it all; the notifications go to --notify-url.
    onNotify: () => {},
    onStudyNotify: () => {},
    onWarning: (message) => stderr.write(`canopy: warning: ${message}\n`),
  });
  const ctrlC = interruptTrainers(runtime, (line) => stderr.write(`canopy: ${line}\n`));
  let outcome: StudyOutcome;
  try {
    outcome = spec ? await runtime.tune(spec, data, { onProgress }) : await runtime.resumeStudy(options.resume!, { onProgress });
  } catch (err) {
    if (ctrlC.interrupted || err instanceof InterruptedError) {
      const id = err instanceof InterruptedError ? err.buildId : undefined;
      throw new InterruptedExit(`interrupted${id ? `; finish the study with: canopy tune --resume ${id}${options.root !== ".canopy" ? ` --root ${options.root}` : ""}` : ""}`);
    }
    throw err instanceof SpecError ? studyUsageError(err) : err;
  } finally {
    ctrlC.dispose();
    await runtime.close();
  }
  if (outcome.status === "FAILED") throw new FailedError(`study ${outcome.studyId} failed: ${outcome.reason ?? "unknown reason"}`);
  const report = outcome.report!;
  // The final model exported as train --out exports a build (from the store, after the runtime closed).
  if (options.out !== undefined && report.final) await exportArtifacts(runtime.root, report.final.buildId, options.out);
  if (options.json) return void process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  if (!outcome.notification) stderr.write(`canopy: study ${report.studyId} was already done with the same data and search; nothing to train\n`);
  const reportPath = shown(join(runtime.root, `studies/${report.studyId}/report.json`));
  const pagePath = join(runtime.root, `studies/${report.studyId}/report.html`);
  process.stdout.write(
    [
      report.rounds
        ? `study ${report.studyId}: successive halving, ${report.rounds.map((r) => `${r.candidates.length} candidates x ${r.trees} trees`).join(", then ")}; ${scoredBy(report)} (${report.builds.total} builds, ${report.builds.failed} failed)`
        : `study ${report.studyId}: ${report.candidates.length} candidates ${report.spec.oob ? scoredBy(report) : `x ${scoredBy(report)}`} (${report.builds.total} builds, ${report.builds.failed} failed)`,
      `best ${report.spec.oob ? "out-of-bag " : ""}${report.scoring} ${report.best_score_.toFixed(4)} with ${showParams(report.best_params_)}`,
      "",
      rankingTable(report),
      "",
      ...finalLines(report, options.out !== undefined ? join(options.out, "model.canopy") : join(runtime.root, report.final?.modelKey ?? "")),
      `report ${reportPath}`,
      ...(existsSync(pagePath) ? [`page   ${shown(pagePath)}`] : []),
      "",
    ].join("\n"),
  );
}

/**
 * The final model: its held-out score by the study's scorer (sklearn's search.score(X_test, y_test)), what it was
 * trained and tested on, and where it is. Nothing without one (--no-refit).
 */
function finalLines(report: StudyReport, modelPath: string): string[] {
  const f = report.final;
  if (!f) return [];
  const test = f.testRows > 0 ? `test ${report.scoring} ${scoreOf(report.scoring, f.metrics).toFixed(4)} on ${f.testRows} held-out rows` : "nothing held out (--test-fraction 0): no test score";
  return [
    `final model ${f.buildId}: ${test} (trained on ${f.trainRows} rows: ${f.model.trees} trees, ${bytes(f.model.bytes)})`,
    `model  ${shown(modelPath)}`,
  ];
}

/** How the candidates were scored: by K folds, or out of bag. */
const scoredBy = (report: StudyReport) => (report.spec.oob ? "scored out of bag" : `${report.cv} folds`);
