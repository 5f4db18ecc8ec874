import { showParams, type StudyReport } from "@canopy/core";
import type { StudyProgress } from "@canopy/runtime-local";
import { duration } from "./format.ts";

/** The ranked candidates as a table, best first (as sklearn's cv_results_ sorted by rank_test_score). */
export function rankingTable(report: StudyReport): string {
  const rows = [...report.candidates].sort((a, b) => a.rank_test_score - b.rank_test_score || a.index - b.index);
  const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(4) : "nan");
  const lines = [["rank", `mean ${report.scoring}`, "std", "params"], ...rows.map((c) => [String(c.rank_test_score), fmt(c.mean_test_score), fmt(c.std_test_score), showParams(c.params) + (c.status === "FAILED" ? "  (failed)" : "")])];
  const widths = lines[0].map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  return lines.map((l) => l.map((cell, i) => (i === l.length - 1 ? cell : cell.padEnd(widths[i]))).join("  ")).join("\n");
}


/** One line per progress step: builds and groves settled, and the time left at the rate so far. */
export function studyProgressLine(p: StudyProgress): string {
  const eta = p.etaMs !== undefined ? `, ETA ${duration(p.etaMs)}` : "";
  const final = p.final ? `; final model ${p.final.buildId}: groves ${p.final.grovesDone}/${p.final.grovesTotal}` : "";
  return `canopy: study ${p.studyId}: builds ${p.buildsDone}/${p.buildsTotal} done, groves ${p.grovesDone}/${p.grovesTotal}${final} (${duration(p.elapsedMs)}${eta})`;
}

