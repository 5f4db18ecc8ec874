import { DEFAULT_MIN_PARTITION_ROWS, scoreOf, showParams, type PartitionReport, type PartitionRunOptions } from "@canopy/core";
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

/** Rows as aligned columns, the last one unpadded. */
function columns(table: string[][]): string[] {
  const widths = table[0].map((_, i) => Math.max(...table.map((l) => l[i].length)));
  return table.map((l) => l.map((cell, i) => (i === l.length - 1 ? cell : cell.padEnd(widths[i]))).join("  "));
}

const SHOWN_PARTITIONS = 20;

/** Skipped partitions, at most five named. */
function skippedLines(report: PartitionReport): string[] {
  const s = report.skipped;
  return s.length > 0 ? ["", `skipped: ${s.slice(0, 5).map((x) => `${x.value} (${x.reason})`).join("; ")}${s.length > 5 ? `; ... ${s.length - 5} more` : ""}`] : [];
}

/** The end of a run on the terminal: counts, the row-weighted metrics, the partitions (at most 20), where things are. */
export function partitionSummary(report: PartitionReport, modelPath: string, reportPath: string, pagePath?: string): string {
  const c = report.counts;
  const rows = report.partitions.filter((p) => !p.fallback);
  const shownRows = rows.slice(0, SHOWN_PARTITIONS);
  const metric = report.task === "regression" ? "r2" : "accuracy";
  const table = [
    ["partition", "rows", metric, "build"],
    ...shownRows.map((p) => [p.value!, String(p.rows), p.status === "FAILED" ? "failed" : typeof p.metrics?.[metric] === "number" ? (p.metrics[metric] as number).toFixed(4) : "-", p.buildId]),
  ];
  const fallback = report.partitions.find((p) => p.fallback);
  return [
    `partitioned run ${report.runId}: ${c.completed} of ${c.partitions} partitions by ${report.partitionBy} trained` +
      (c.skipped + c.failed > 0 ? ` (${c.skipped} skipped, ${c.failed} failed)` : "") +
      (fallback ? `, fallback ${fallback.buildId} on all ${fallback.rows} rows` : ""),
    `held-out, row-weighted over the partitions: ${metricsLine(report.metrics)}`,
    "",
    ...columns(table),
    ...(rows.length > shownRows.length ? [`... and ${rows.length - shownRows.length} more (report.json has them all)`] : []),
    ...skippedLines(report),
    "",
    `model  ${modelPath}`,
    `report ${reportPath}`,
    ...(pagePath !== undefined ? [`page   ${pagePath}`] : []),
  ].join("\n");
}

/**
 * The end of a tuned run (tune --partition-by): how it was tuned, per partition (at most 20) its best cross-validated
 * score and parameters (the ones its model uses) and its model's held-out score; where things are. No model with --no-refit.
 */
export function tunedSummary(report: PartitionReport, modelPath: string | undefined, reportPath: string, pagePath?: string): string {
  const t = report.tuning!;
  const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(4) : "nan");
  const scored = t.oob ? `${t.candidates.length} candidates scored out of bag` : `${t.candidates.length} candidates x ${t.cv} folds`;
  const how = t.shared
    ? `one shared set, ${showParams(t.shared.best_params_)} (mean ${t.scoring} ${fmt(t.shared.best_score_)} over the partitions)`
    : "each partition its own best";
  const outcome = new Map(report.partitions.filter((p) => !p.fallback).map((p) => [p.key, p]));
  const rows = t.partitions.slice(0, SHOWN_PARTITIONS);
  const table = [
    ["partition", "rows", `${t.shared ? "" : "best "}${t.oob ? "oob " : "cv "}${t.scoring}`, ...(modelPath ? [`test ${t.scoring}`] : []), "params"],
    ...rows.map((p) => {
      const o = outcome.get(p.key);
      const test = o?.status === "COMPLETED" ? (o.metrics ? fmt(scoreOf(t.scoring, o.metrics)) : "-") : o ? "failed" : "none";
      const params = o?.params ?? (t.shared ? t.shared.best_params_ : p.best_params_);
      return [p.value, String(p.rows), fmt(t.shared ? p.candidates[t.shared.best_index_].mean_test_score : p.best_score_), ...(modelPath ? [test] : []), showParams(params)];
    }),
  ];
  const fallback = report.partitions.find((p) => p.fallback);
  return [
    `tuned partitioned run ${report.runId}: ${t.partitions.length} partitions by ${report.partitionBy}, ${scored} each (${t.builds.total} builds, ${t.builds.failed} failed); ${how}`,
    ...(modelPath
      ? [
          `${report.counts.completed} of ${report.counts.partitions} partitions trained` +
            (fallback ? `, fallback ${fallback.buildId} on all ${fallback.rows} rows` : "") +
            `; held-out, row-weighted over the partitions: ${metricsLine(report.metrics)}`,
        ]
      : ["ranked only (--no-refit): no model"]),
    "",
    ...columns(table),
    ...(t.partitions.length > rows.length ? [`... and ${t.partitions.length - rows.length} more (report.json has every partition's candidates)`] : []),
    ...skippedLines(report),
    "",
    ...(modelPath ? [`model  ${modelPath}`] : []),
    `report ${reportPath}`,
    ...(pagePath !== undefined ? [`page   ${pagePath}`] : []),
  ].join("\n");
}
