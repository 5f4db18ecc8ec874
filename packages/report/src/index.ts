import type { BuildReport, PartitionReport, StudyReport } from "@canopy/core";
import { renderBuild } from "./build.ts";
import { renderPartitions } from "./partitions.ts";
import { renderStudy } from "./study.ts";

export { CHART_LIBRARY_FILES, chartLibrary, findInNodeModules, type ChartLibrary } from "./assets.ts";
export { TIMELINE_STAGES } from "./build.ts";

/**
 * What can be rendered: a report.json by its kind. A build's report says kind "build" (older ones say nothing).
 * A study or a partitioned run adds its kind here and a renderer beside renderBuild.
 */
export type ReportDocument = BuildReport | StudyReport | PartitionReport;
export { renderPartitions, renderStudy };

/** report.html: one self-contained page (styles, data, d3, Plot and the page script inline; no network). */
export function renderReport(report: ReportDocument): string {
  const kind = (report as { kind?: string }).kind ?? "build";
  switch (kind) {
    case "build":
      return renderBuild(report as BuildReport);
    case "study":
      return renderStudy(report as StudyReport);
    case "partitions":
      return renderPartitions(report as PartitionReport);
    default:
      throw new Error(`cannot render a report of kind ${JSON.stringify(kind)}`);
  }
}
