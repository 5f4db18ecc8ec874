import { existsSync } from "node:fs";
import { join } from "node:path";
import { SpecError, type BuildSpec, type PartitionRunOptions } from "@canopy/core";
import { createLocalRuntime, exportPartitionedModel, InterruptedError, type PartitionRunOutcome, type PartitionRunProgress } from "@canopy/runtime-local";
import type { PartitionProgress } from "@canopy/core/ingest";
import { FailedError, InterruptedExit } from "./errors.ts";
import { interruptTrainers } from "./signals.ts";
import { shown } from "./fs.ts";
import { partitionProgressLine, partitionSummary } from "./partition-render.ts";
import { throttledProgress } from "./study-render.ts";
import { specUsageError } from "./spec.ts";

export interface PartitionCliOptions {
  workers?: number;
  out?: string;
  root: string;
  notifyUrl?: string;
  json?: boolean;
}


function prepareLine(p: PartitionProgress): string {
  return p.stage === "reading" ? `canopy: read ${p.rows} rows: ${p.partitions} partitions` : `canopy: packed ${p.packed}/${p.partitions} partitions`;
}

/** The command that finishes `runId` the way this one would have. */
function resumeCommand(runId: string, o: PartitionCliOptions): string {
  const args = ["canopy", "train", "--resume", runId];
  if (o.root !== ".canopy") args.push("--root", o.root);
  if (o.out !== undefined) args.push("--out", o.out);
  if (o.workers !== undefined) args.push("--workers", String(o.workers));
  if (o.json) args.push("--json");
  return args.map((w) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, "'\\''")}'`)).join(" ");
}

/**
 * `canopy train --partition-by <col>` (or `--resume <p-id>`) on this machine: the partitions' groves on the
 * trainer threads, progress on stderr (about every 2% of the groves and 5% of the partitions), Ctrl-C stops
 * the trainers and says how to resume, the summary (or the report, --json) on stdout, and the export with --out.
 */
export async function trainPartitioned(request: { spec: BuildSpec; options: PartitionRunOptions } | { resume: string }, o: PartitionCliOptions): Promise<void> {
  const stderr = process.stderr;
  const onProgress = throttledProgress(
    (p: PartitionRunProgress) => ({ groves: p.grovesDone, grovesTotal: p.grovesTotal, builds: p.partitionsDone, buildsTotal: p.partitionsTotal }),
    (p) => stderr.write(`${partitionProgressLine(p)}\n`),
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
        ? await runtime.resumePartitions(request.resume, { onProgress })
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
      throw new InterruptedExit(`interrupted${id ? `; finish the run with: ${resumeCommand(id, o)}` : ""}`);
    }
    throw err instanceof SpecError ? specUsageError(err) : err;
  } finally {
    ctrlC.dispose();
    await runtime.close();
  }
  if (outcome.status === "FAILED") throw new FailedError(`partitioned run ${outcome.runId} failed: ${outcome.reason ?? "unknown reason"}`);
  const report = outcome.report!;
  let modelPath = join(runtime.root, report.modelKey);
  let reportPath = join(runtime.root, `partitions/${report.runId}/report.json`);
  if (o.out !== undefined) {
    await exportPartitionedModel(runtime.root, report.runId, o.out);
    modelPath = join(o.out, "model.json");
    reportPath = join(o.out, "report.json");
  }
  if (o.json) return void process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  if (!outcome.notification)
    stderr.write(`canopy: partitioned run ${report.runId} ${"resume" in request ? "had already finished; nothing to resume" : "was already done with the same data and options; nothing to train"}\n`);
  // The page stays in the store (its links to the partitions' build reports are relative to it).
  const pagePath = join(runtime.root, `partitions/${report.runId}/report.html`);
  process.stdout.write(`${partitionSummary(report, shown(modelPath), shown(reportPath), existsSync(pagePath) ? shown(pagePath) : undefined)}\n`);
}

