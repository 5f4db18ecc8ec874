import { existsSync } from "node:fs";
import { join } from "node:path";
import { keys, SpecError, type BuildSpec, type PartitionRunOptions, type PartitionTuningMode, type StudySpec } from "@canopy/core";
import { createLocalRuntime, exportPartitionedModel, InterruptedError, type PartitionRunOutcome, type PartitionRunProgress, type StudyProgress } from "@canopy/runtime-local";
import type { PartitionProgress } from "@canopy/core/ingest";
import { FailedError, InterruptedExit } from "./errors.ts";
import { interruptTrainers } from "./signals.ts";
import { shown } from "./fs.ts";
import { partitionProgressLine, partitionSummary, tunedSummary } from "./partition-render.ts";
import { studyProgressLine, throttledProgress } from "./study-render.ts";
import { specUsageError } from "./spec.ts";
import { studyUsageError } from "./study-flags.ts";

export interface PartitionCliOptions {
  workers?: number;
  out?: string;
  root: string;
  notifyUrl?: string;
  json?: boolean;
}

/** What to run: a partitioned train, a tuned one (tune --partition-by), or an unfinished run of either by its p- id. */
export type PartitionRequest =
  | { spec: BuildSpec; options: PartitionRunOptions }
  | { study: StudySpec; options: PartitionRunOptions; mode: PartitionTuningMode }
  | { resume: string; command: "train" | "tune" };


function prepareLine(p: PartitionProgress): string {
  return p.stage === "reading" ? `canopy: read ${p.rows} rows: ${p.partitions} partitions` : `canopy: packed ${p.packed}/${p.partitions} partitions`;
}

/** The command that finishes `runId` the way this one would have. */
function resumeCommand(runId: string, command: "train" | "tune", o: PartitionCliOptions): string {
  const args = ["canopy", command, "--resume", runId];
  if (o.root !== ".canopy") args.push("--root", o.root);
  if (o.out !== undefined) args.push("--out", o.out);
  if (o.workers !== undefined) args.push("--workers", String(o.workers));
  if (o.json) args.push("--json");
  return args.map((w) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, "'\\''")}'`)).join(" ");
}

/**
 * `canopy train --partition-by <col>` or `canopy tune --partition-by <col>` (or `--resume <p-id>`) on this machine:
 * the partitions' groves on the trainer threads, progress on stderr (about every 2% of the groves and 5% of the
 * partitions, or of a tuned run's builds), Ctrl-C stops the trainers and says how to resume, the summary (or the
 * report, --json) on stdout, and the export with --out.
 */
export async function trainPartitioned(request: PartitionRequest, o: PartitionCliOptions): Promise<void> {
  const stderr = process.stderr;
  const command = "study" in request || ("resume" in request && request.command === "tune") ? "tune" : "train";
  const onProgress = throttledProgress(
    (p: PartitionRunProgress) => ({ groves: p.grovesDone, grovesTotal: p.grovesTotal, builds: p.partitionsDone, buildsTotal: p.partitionsTotal }),
    (p) => stderr.write(`${partitionProgressLine(p)}\n`),
  );
  const onTuneProgress = throttledProgress(
    (p: StudyProgress) => ({ groves: p.grovesDone, grovesTotal: p.grovesTotal, builds: p.buildsDone, buildsTotal: p.buildsTotal }),
    (p) => stderr.write(`${studyProgressLine(p)}\n`),
  );
  let lastPacked = 0;
  const onPrepare = (p: PartitionProgress) => {
    if (p.stage === "packing" && p.packed! < p.partitions && p.packed! - lastPacked < Math.max(1, Math.ceil(p.partitions / 10))) return;
    lastPacked = p.packed ?? 0;
    stderr.write(`${prepareLine(p)}\n`);
  };
  const runtime = createLocalRuntime({
    root: o.root,
    ...(o.workers !== undefined ? { workers: o.workers } : {}),
    ...(o.notifyUrl !== undefined ? { notifyUrl: o.notifyUrl } : {}),
    // The summary below says it all; the notifications go to --notify-url.
    onNotify: () => {},
    onPartitionNotify: () => {},
    onWarning: (message) => stderr.write(`canopy: warning: ${message}\n`),
  });
  let runId = "resume" in request ? request.resume : undefined;
  const ctrlC = interruptTrainers(runtime, (line) => stderr.write(`canopy: ${line}\n`));
  let outcome: PartitionRunOutcome;
  try {
    outcome =
      "resume" in request
        ? await runtime.resumePartitions(request.resume, { onProgress, onTuneProgress })
        : "study" in request
          ? await runtime.tunePartitions(request.study, request.options, request.mode, undefined, {
              onTuneProgress: (p) => {
                runId = p.studyId;
                onTuneProgress(p);
              },
              onPrepare,
            })
          : await runtime.trainPartitions(request.spec, request.options, undefined, {
              onProgress: (p) => {
                runId = p.runId;
                onProgress(p);
              },
              onPrepare,
            });
  } catch (err) {
    if (ctrlC.interrupted || err instanceof InterruptedError) {
      const id = err instanceof InterruptedError ? err.buildId : runId;
      throw new InterruptedExit(`interrupted${id ? `; finish the run with: ${resumeCommand(id, command, o)}` : ""}`);
    }
    throw err instanceof SpecError ? (command === "tune" ? studyUsageError(err) : specUsageError(err)) : err;
  } finally {
    ctrlC.dispose();
    await runtime.close();
  }
  if (outcome.status === "FAILED") throw new FailedError(`partitioned run ${outcome.runId} failed: ${outcome.reason ?? "unknown reason"}`);
  const report = outcome.report!;
  let modelPath = join(runtime.root, report.modelKey ?? keys.partitionedModel(report.runId));
  let reportPath = join(runtime.root, `partitions/${report.runId}/report.json`);
  if (o.out !== undefined && report.modelKey) {
    await exportPartitionedModel(runtime.root, report.runId, o.out);
    modelPath = join(o.out, "model.json");
    reportPath = join(o.out, "report.json");
  }
  if (o.json) return void process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  if (!outcome.notification)
    stderr.write(`canopy: partitioned run ${report.runId} ${"resume" in request ? "had already finished; nothing to resume" : "was already done with the same data and options; nothing to train"}\n`);
  // The page stays in the store (its links to the partitions' build reports are relative to it).
  const pagePath = join(runtime.root, `partitions/${report.runId}/report.html`);
  const page = existsSync(pagePath) ? shown(pagePath) : undefined;
  process.stdout.write(`${report.tuning ? tunedSummary(report, report.modelKey ? shown(modelPath) : undefined, shown(reportPath), page) : partitionSummary(report, shown(modelPath), shown(reportPath), page)}\n`);
}

