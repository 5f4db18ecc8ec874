// A study (canopy tune) against scikit-learn's GridSearchCV on the same rows, folds and grid: 12 candidates x 3 folds
// of 100 trees on FM 20k, embedded on 2 workers vs GridSearchCV(RandomForestClassifier(n_jobs=1), cv=3, n_jobs=2).
// Both sides see the same 20k training images in the same order (test_fraction 0), and the study's folds are
// sklearn's StratifiedKFold(3) (checked row by row in test/studies), so the scores are comparable fold for fold.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseStudySpec, showParams, type StudyReport, type StudySpec } from "@canopy/core";
import { createLocalRuntime } from "@canopy/runtime-local";
import { fingerprint, loadFashionMnist, writeCaseFiles, type BenchCase } from "./data.ts";
import { check, type Section, type SectionResult } from "./section.ts";
import { runChild } from "./sklearn.ts";
import type { Table } from "./table.ts";

// A grid whose best candidate is scikit-learn's under its own seeds, so "the same best candidate" tests the search and
// not a coin: GridSearchCV's best here was max_depth=none min_samples_leaf=1 for random_state 0, 1 and 2 (by 0.0045,
// 0.0063, 0.0024). The grid before this one (max_depth none/16/8 x max_features sqrt/0.1 x min_samples_leaf 1/4) had
// its top two within 0.0025, and GridSearchCV's own best switched between them with random_state: sqrt for 1, 3 and
// 4, 0.1 for 0, 2 and 5 (Canopy's seeds 0-5: sqrt five times, 0.1 once). max_features is both sides' default, sqrt.
const GRID = { max_depth: [null, 12, 8, 5], min_samples_leaf: [1, 5, 20] };

/** The training images only, label last: the rows sklearn fits, in its order. */
function writeTrainCsv(c: BenchCase, path: string): void {
  const lines: string[] = [[...c.featureNames, c.labelName].join(",")];
  for (let r = 0; r < c.train.nRows; r++) lines.push(`${Array.from(c.train.X.subarray(r * c.nFeatures, (r + 1) * c.nFeatures)).join(",")},${c.train.y[r]}`);
  writeFileSync(path, `${lines.join("\n")}\n`);
}

const key = (p: Record<string, unknown>) => showParams(Object.fromEntries(Object.entries(p).sort()) as Record<string, null>);

/** One study embedded on 2 workers in a fresh store (the pack made in it, as a first run does): its report and wall time. */
async function runStudy(ctx: Parameters<Section>[0], csv: string, spec: StudySpec): Promise<{ report: StudyReport; seconds: number }> {
  const root = mkdtempSync(join(ctx.cacheDir, "study-"));
  try {
    const runtime = createLocalRuntime({ root, workers: 2, onNotify: () => {}, onStudyNotify: () => {}, onWarning: ctx.log });
    try {
      const t0 = performance.now();
      let logged = 0;
      const outcome = await runtime.tune(spec, csv, {
        onProgress: (p) => {
          if (p.buildsDone !== logged && p.buildsDone % 6 === 0) ctx.log(`study${spec.oob ? " (oob)" : ""}: ${(logged = p.buildsDone)}/${p.buildsTotal} builds`);
        },
      });
      const seconds = (performance.now() - t0) / 1000;
      if (outcome.status !== "COMPLETED") throw new Error(`the study failed: ${outcome.reason}`);
      return { report: outcome.report!, seconds };
    } finally {
      await runtime.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

export const studySection: Section = async (ctx): Promise<SectionResult> => {
  const nTrain = ctx.quick ? 3000 : 20000;
  const trees = ctx.quick ? 10 : 100;
  const cv = 3;
  const fm = loadFashionMnist(nTrain);
  const csv = join(ctx.cacheDir, `${fm.id}-train-only.csv`);
  writeTrainCsv(fm, csv);

  const base = { dataset: csv, label: "label", n_estimators: trees, grove_size: 10, seed: 0, test_fraction: 0 };
  // Neither study refits the best (GridSearchCV runs with refit=False): the search alone is timed.
  const cvStudy = await runStudy(ctx, csv, parseStudySpec({ base, grid: GRID, cv }));
  const report = cvStudy.report;
  const canopySeconds = cvStudy.seconds;
  // The same grid scored out of bag: one build per candidate over the same rows (each in its own store, pack included).
  const oobStudy = await runStudy(ctx, csv, parseStudySpec({ base, grid: GRID, oob: true }));
  ctx.log(`canopy tune --oob, 2 workers: ${oobStudy.seconds.toFixed(1)} s, best ${showParams(oobStudy.report.best_params_)} ${oobStudy.report.best_score_.toFixed(4)}`);
  ctx.log(`canopy tune, 2 workers: ${canopySeconds.toFixed(1)} s, best ${showParams(report.best_params_)} ${report.best_score_.toFixed(4)}`);

  const caseDir = writeCaseFiles(fm, ctx.cacheDir);
  const out = await runChild(ctx.python, [join("bench", "study_bench.py"), caseDir, "--trees", String(trees), "--cv", String(cv), "--jobs", "2", "--grid", JSON.stringify(GRID)]);
  const sk = JSON.parse(out) as { seconds: number; best_params: Record<string, unknown>; best_score: number; params: Record<string, unknown>[]; mean: number[]; fingerprint: string };
  if (sk.fingerprint !== fingerprint(fm)) throw new Error("sklearn read other rows than the study");
  ctx.log(`GridSearchCV n_jobs=2: ${sk.seconds.toFixed(1)} s, best ${key(sk.best_params)} ${sk.best_score.toFixed(4)}`);

  const ratio = canopySeconds / sk.seconds;
  const sameBest = key(report.best_params_) === key(sk.best_params);
  const skMean = new Map(sk.params.map((p, i) => [key(p), sk.mean[i]]));
  const rows = [...report.candidates]
    .sort((a, b) => a.rank_test_score - b.rank_test_score)
    .map((c) => [String(c.rank_test_score), showParams(c.params), c.mean_test_score.toFixed(4), (skMean.get(key(c.params)) ?? Number.NaN).toFixed(4)]);
  const label = `FM ${nTrain / 1000}k, ${GRID.max_depth.length * GRID.min_samples_leaf.length} candidates x ${cv} folds, ${trees} trees`;
  const tables: Table[] = [
    {
      title: `Study (canopy tune, embedded, 2 workers) vs GridSearchCV(n_jobs=2), ${label}`,
      headers: ["run", "wall s", "best params", "best mean accuracy"],
      rows: [
        ["canopy tune, 2 workers (pack included)", canopySeconds.toFixed(1), showParams(report.best_params_), report.best_score_.toFixed(4)],
        ["GridSearchCV(RandomForestClassifier(n_jobs=1), n_jobs=2, refit=False)", sk.seconds.toFixed(1), key(sk.best_params), sk.best_score.toFixed(4)],
      ],
      notes: [`canopy ÷ sklearn: ${ratio.toFixed(2)}×; the same best candidate: ${sameBest ? "yes" : "no"}. Neither side refits the best (the search alone is timed).`],
    },
    {
      title: `Out-of-bag vs cross-validated study, the same grid (canopy tune, embedded, 2 workers), ${label.replace(` x ${cv} folds`, "")}`,
      headers: ["scoring", "builds", "wall s", "best params", "best score"],
      rows: [
        [`--cv ${cv} (mean fold accuracy)`, String(cvStudy.report.builds.total), canopySeconds.toFixed(1), showParams(report.best_params_), report.best_score_.toFixed(4)],
        ["--oob (oob_score_, accuracy)", String(oobStudy.report.builds.total), oobStudy.seconds.toFixed(1), showParams(oobStudy.report.best_params_), oobStudy.report.best_score_.toFixed(4)],
      ],
      notes: [
        `oob ÷ cv wall time: ${(oobStudy.seconds / canopySeconds).toFixed(2)}×; the same best candidate: ${key(oobStudy.report.best_params_) === key(report.best_params_) ? "yes" : "no"}. ` +
          `Out of bag each candidate is one build over all ${nTrain} rows (its trees see ${nTrain} rows, not ${Math.round((nTrain * (cv - 1)) / cv)}), scored by the rows each tree's bootstrap left out.`,
      ],
    },
    { title: `Candidates ranked (canopy), with sklearn's mean fold accuracy on the same folds`, headers: ["rank", "params", "canopy", "sklearn"], rows },
  ];
  const quick = ctx.quick ? " [quick run: FM 3k, 10 trees]" : "";
  return {
    title: "Study (canopy tune)",
    tables,
    targets: [
      check(`FM 20k, 12 candidates x 3 folds, 100 trees: canopy tune on 2 workers ≤ 0.5× GridSearchCV(n_jobs=2), the same best candidate`, `${ratio.toFixed(2)}× (${canopySeconds.toFixed(1)} s vs ${sk.seconds.toFixed(1)} s), same best: ${sameBest ? "yes" : "no"}${quick}`, ctx.quick ? undefined : ratio <= 0.5 && sameBest),
      check(
        "OOB-scored vs CV-scored study time on the same grid",
        `${(oobStudy.seconds / canopySeconds).toFixed(2)}× (${oobStudy.seconds.toFixed(1)} s vs ${canopySeconds.toFixed(1)} s), best ${showParams(oobStudy.report.best_params_)} vs ${showParams(report.best_params_)}${quick}`,
        undefined,
      ),
    ],
    raw: { canopySeconds, oob: { seconds: oobStudy.seconds, best: oobStudy.report.best_params_, score: oobStudy.report.best_score_ }, sklearn: sk, best: { canopy: report.best_params_, score: report.best_score_ }, candidates: report.candidates.map((c) => ({ params: c.params, mean: c.mean_test_score, std: c.std_test_score, rank: c.rank_test_score })), nTrain, trees, cv },
  };
};
