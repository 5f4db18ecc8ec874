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
  // A tuned partitioned run (tune --partition-by) is counted as a study is.
  const what = p.studyId.startsWith("p-") ? "tuned run" : "study";
  return `canopy: ${what} ${p.studyId}: builds ${p.buildsDone}/${p.buildsTotal} done, groves ${p.grovesDone}/${p.grovesTotal}${final} (${duration(p.elapsedMs)}${eta})`;
}


/**
 * A fan-in's progress printer (a study's, a partitioned run's): about every 2% of the groves and every 5% of the
 * builds, and the end; the same counts twice print once.
 */
export function throttledProgress<P>(
  counts: (p: P) => { groves: number; grovesTotal: number; builds: number; buildsTotal: number; final?: { groves: number; grovesTotal: number } },
  print: (p: P) => void,
): (p: P) => void {
  let printed = { groves: -1, builds: -1, final: -1 };
  return (p) => {
    const c = counts(p);
    const grovesStep = Math.max(1, Math.ceil(c.grovesTotal / 50));
    const buildsStep = Math.max(1, Math.ceil(c.buildsTotal / 20));
    const groves = c.groves - printed.groves >= grovesStep || (c.groves === c.grovesTotal && printed.groves !== c.groves);
    const builds = c.builds !== printed.builds && (c.builds % buildsStep === 0 || c.builds === c.buildsTotal);
    // A study's final model: about every 10% of its groves.
    const f = c.final;
    const final = f !== undefined && f.groves !== printed.final && (f.groves - printed.final >= Math.max(1, Math.ceil(f.grovesTotal / 10)) || f.groves === f.grovesTotal);
    if (!groves && !builds && !final) return;
    printed = { groves: c.groves, builds: c.builds, final: f?.groves ?? -1 };
    print(p);
  };
}
