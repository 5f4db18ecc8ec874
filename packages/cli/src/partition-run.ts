import { join } from "node:path";
import { DEFAULT_MIN_PARTITION_ROWS, SpecError, type BuildSpec, type PartitionReport, type PartitionRunOptions } from "@canopy/core";
import { createLocalRuntime, exportPartitionedModel, InterruptedError, type PartitionRunOutcome, type PartitionRunProgress } from "@canopy/runtime-local";
import type { PartitionProgress } from "@canopy/core/ingest";
import { FailedError, InterruptedExit, UsageError } from "./errors.ts";
import { duration, metricsLine } from "./format.ts";
import { shown } from "./fs.ts";
import type { PartitionFlags } from "./partition-options.ts";
import { specUsageError } from "./spec.ts";

/** The run's options from the flags (checked by core before any row is read). */
export function partitionOptions(flags: PartitionFlags): PartitionRunOptions {
  return {
    partitionBy: flags.partitionBy!,
    minPartitionRows: flags.minPartitionRows ?? DEFAULT_MIN_PARTITION_ROWS,
    ...(flags.fallback ? { fallback: flags.fallback } : {}),
  };
}

/** Flags that only mean something with --partition-by, refused without it (and the other way round). */
export function checkPartitionFlags(flags: PartitionFlags & { refit?: boolean; extend?: string }): void {
  if (flags.partitionBy === undefined) {
    const stray = [flags.minPartitionRows !== undefined ? "--min-partition-rows" : "", flags.fallback ? "--fallback" : ""].filter(Boolean);
    if (stray.length > 0) throw new UsageError(`${stray.join(" and ")}: only with --partition-by <column>`);
    return;
  }
  if (flags.refit) throw new UsageError("--refit with --partition-by is not available yet: use --test-fraction 0 to train each partition on every row");
  if (flags.extend !== undefined) throw new UsageError("--extend with --partition-by: extend a partition's build by its id (canopy status <p-id> lists them)");
}

export interface PartitionCliOptions {
  workers?: number;
  out?: string;
  root: string;
  notifyUrl?: string;
  json?: boolean;
}

/** One line per progress step: partitions finished, groves settled, and the time left at the rate so far. */
export function partitionProgressLine(p: PartitionRunProgress): string {
  const eta = p.etaMs !== undefined ? `, ETA ${duration(p.etaMs)}` : "";
  return `canopy: ${p.runId}: partitions ${p.partitionsDone}/${p.partitionsTotal} done, groves ${p.grovesDone}/${p.grovesTotal} (${duration(p.elapsedMs)}${eta})`;
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
  let printed = { groves: -1, partitions: -1 };
  const onProgress = (p: PartitionRunProgress) => {
    const grovesStep = Math.max(1, Math.ceil(p.grovesTotal / 50));
    const partsStep = Math.max(1, Math.ceil(p.partitionsTotal / 20));
    const groves = p.grovesDone - printed.groves >= grovesStep || (p.grovesDone === p.grovesTotal && printed.groves !== p.grovesDone);
    const parts = p.partitionsDone !== printed.partitions && (p.partitionsDone % partsStep === 0 || p.partitionsDone === p.partitionsTotal);
    if (!groves && !parts) return;
    printed = { groves: p.grovesDone, partitions: p.partitionsDone };
    stderr.write(`${partitionProgressLine(p)}\n`);
  };
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
  let interrupted = false;
  let runId = "resume" in request ? request.resume : undefined;
  const onSigint = () => {
    if (interrupted) process.exit(new InterruptedExit().exitCode);
    interrupted = true;
    stderr.write("canopy: interrupted: stopping the trainers (Ctrl-C again to quit at once)\n");
    void runtime.close();
  };
  process.on("SIGINT", onSigint);
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
    if (interrupted || err instanceof InterruptedError) {
      const id = err instanceof InterruptedError ? err.buildId : runId;
      throw new InterruptedExit(`interrupted${id ? `; finish the run with: ${resumeCommand(id, o)}` : ""}`);
    }
    throw err instanceof SpecError ? specUsageError(err) : err;
  } finally {
    process.off("SIGINT", onSigint);
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
  process.stdout.write(`${partitionSummary(report, shown(modelPath), shown(reportPath))}\n`);
}

/** The end of a run on the terminal: counts, the row-weighted metrics, the partitions (at most 20), where things are. */
export function partitionSummary(report: PartitionReport, modelPath: string, reportPath: string): string {
  const c = report.counts;
  const rows = report.partitions.filter((p) => !p.fallback);
  const shownRows = rows.slice(0, 20);
  const metric = report.task === "regression" ? "r2" : "accuracy";
  const table = [
    ["partition", "rows", metric, "build"],
    ...shownRows.map((p) => [p.value!, String(p.rows), p.status === "FAILED" ? "failed" : typeof p.metrics?.[metric] === "number" ? (p.metrics[metric] as number).toFixed(4) : "-", p.buildId]),
  ];
  const widths = table[0].map((_, i) => Math.max(...table.map((l) => l[i].length)));
  const fallback = report.partitions.find((p) => p.fallback);
  return [
    `partitioned run ${report.runId}: ${c.completed} of ${c.partitions} partitions by ${report.partitionBy} trained` +
      (c.skipped + c.failed > 0 ? ` (${c.skipped} skipped, ${c.failed} failed)` : "") +
      (fallback ? `, fallback ${fallback.buildId} on all ${fallback.rows} rows` : ""),
    `held-out, row-weighted over the partitions: ${metricsLine(report.metrics)}`,
    "",
    ...table.map((l) => l.map((cell, i) => (i === l.length - 1 ? cell : cell.padEnd(widths[i]))).join("  ")),
    ...(rows.length > shownRows.length ? [`... and ${rows.length - shownRows.length} more (report.json has them all)`] : []),
    ...(report.skipped.length > 0 ? ["", `skipped: ${report.skipped.slice(0, 5).map((s) => `${s.value} (${s.reason})`).join("; ")}${report.skipped.length > 5 ? `; ... ${report.skipped.length - 5} more` : ""}`] : []),
    "",
    `model  ${modelPath}`,
    `report ${reportPath}`,
  ].join("\n");
}
