import { DEFAULT_MIN_PARTITION_ROWS, type PartitionReport, type PartitionRunOptions } from "@canopy/core";
import type { PartitionRunProgress } from "@canopy/runtime-local";
import { UsageError } from "./errors.ts";
import { duration, metricsLine } from "./format.ts";
import type { PartitionFlags } from "./partition-options.ts";

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

/** One line per progress step: partitions finished, groves settled, and the time left at the rate so far. */
export function partitionProgressLine(p: PartitionRunProgress): string {
  const eta = p.etaMs !== undefined ? `, ETA ${duration(p.etaMs)}` : "";
  return `canopy: ${p.runId}: partitions ${p.partitionsDone}/${p.partitionsTotal} done, groves ${p.grovesDone}/${p.grovesTotal} (${duration(p.elapsedMs)}${eta})`;
}

/** The end of a run on the terminal: counts, the row-weighted metrics, the partitions (at most 20), where things are. */
export function partitionSummary(report: PartitionReport, modelPath: string, reportPath: string, pagePath?: string): string {
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
    ...(pagePath !== undefined ? [`page   ${pagePath}`] : []),
  ].join("\n");
}
