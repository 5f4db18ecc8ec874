import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { isStudyId, showParams, SpecError, type StudyReport, type StudySpec } from "@canopy/core";
import { createLocalRuntime, InterruptedError, type StudyOutcome, type StudyProgress } from "@canopy/runtime-local";
import { FailedError, InterruptedExit, UsageError } from "../errors.ts";
import { checkDataFile, shown } from "../fs.ts";
import { studySpec, studyUsageError } from "../study-flags.ts";
import { rankingTable, studyProgressLine } from "../study-render.ts";
import type { StudyFlags } from "../study-options.ts";

export interface TuneOptions extends StudyFlags {
  workers?: number;
  root: string;
  notifyUrl?: string;
  resume?: string;
  json?: boolean;
}

export async function tune(data: string | undefined, raw: Record<string, unknown>): Promise<void> {
  const options = raw as unknown as TuneOptions;
  let spec: StudySpec | undefined;
  if (options.resume !== undefined) {
    if (!isStudyId(options.resume)) throw new UsageError(`--resume: ${JSON.stringify(options.resume).slice(0, 40)} is not a study id (s- and 16 hex digits)`);
  } else {
    if (data === undefined) throw new UsageError("missing <data.csv> (or --resume <study-id>); see canopy tune --help");
    spec = studySpec(data, options);
    await checkDataFile(data);
  }
  const stderr = process.stderr;
  let printed = { groves: -1, builds: -1 };
  const onProgress = (p: StudyProgress) => {
    // About every 2% of the groves and every 5% of the builds; the same counts twice print once.
    const grovesStep = Math.max(1, Math.ceil(p.grovesTotal / 50));
    const buildsStep = Math.max(1, Math.ceil(p.buildsTotal / 20));
    const groves = p.grovesDone - printed.groves >= grovesStep || (p.grovesDone === p.grovesTotal && printed.groves !== p.grovesDone);
    const builds = p.buildsDone !== printed.builds && (p.buildsDone % buildsStep === 0 || p.buildsDone === p.buildsTotal);
    if (!groves && !builds) return;
    printed = { groves: p.grovesDone, builds: p.buildsDone };
    stderr.write(`${studyProgressLine(p)}\n`);
  };
  const runtime = createLocalRuntime({
    root: options.root,
    ...(options.workers !== undefined ? { workers: options.workers } : {}),
    ...(options.notifyUrl !== undefined ? { notifyUrl: options.notifyUrl } : {}),
    // The ranking below says it all; the notifications go to --notify-url.
    onNotify: () => {},
    onStudyNotify: () => {},
    onWarning: (message) => stderr.write(`canopy: warning: ${message}\n`),
  });
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(new InterruptedExit().exitCode);
    interrupted = true;
    stderr.write("canopy: interrupted: stopping the trainers (Ctrl-C again to quit at once)\n");
    void runtime.close();
  };
  process.on("SIGINT", onSigint);
  let outcome: StudyOutcome;
  try {
    outcome = spec ? await runtime.tune(spec, data, { onProgress }) : await runtime.resumeStudy(options.resume!, { onProgress });
  } catch (err) {
    if (interrupted || err instanceof InterruptedError) {
      const id = err instanceof InterruptedError ? err.buildId : undefined;
      throw new InterruptedExit(`interrupted${id ? `; finish the study with: canopy tune --resume ${id}${options.root !== ".canopy" ? ` --root ${options.root}` : ""}` : ""}`);
    }
    throw err instanceof SpecError ? studyUsageError(err) : err;
  } finally {
    process.off("SIGINT", onSigint);
    await runtime.close();
  }
  if (outcome.status === "FAILED") throw new FailedError(`study ${outcome.studyId} failed: ${outcome.reason ?? "unknown reason"}`);
  const report = outcome.report!;
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
      `report ${reportPath}`,
      ...(existsSync(pagePath) ? [`page   ${shown(pagePath)}`] : []),
      "",
    ].join("\n"),
  );
}

/** How the candidates were scored: by K folds, or out of bag. */
const scoredBy = (report: StudyReport) => (report.spec.oob ? "scored out of bag" : `${report.cv} folds`);
