import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { buildSplit, kFoldAssignment, PackCache, parseStudySpec, readManifest, splitRows, stratifiedKFoldAssignment, type StudyReport } from "@canopy/core";
import { createLocalRuntime } from "@canopy/runtime-local";
import { ensurePython } from "../../bench/setup.ts";
import { labels } from "./support.ts";

const DIGITS = fileURLToPath(new URL("../fixtures/digits.csv", import.meta.url));
const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

/**
 * One file for every test that asks scikit-learn (bench/.venv, installed on first use): they run one after the other.
 *
 * scikit-learn 1.9.1's GridSearchCV(RandomForestClassifier) on the same training rows (the study's outer split),
 * with its own StratifiedKFold: its folds, cv_results_ and best_params_.
 */
function gridSearchCv(rows: number[], grid: Record<string, unknown[]>, trees: number, k: number) {
  const script = `
import json, sys
import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV, StratifiedKFold
args = json.load(sys.stdin)
data = np.genfromtxt(args["csv"], delimiter=",", skip_header=1)
rows = np.array(args["rows"])
X, y = data[rows, :-1], data[rows, -1].astype(int)
cv = StratifiedKFold(n_splits=args["k"])
folds = np.empty(len(rows), dtype=int)
for i, (_, test) in enumerate(cv.split(X, y)):
    folds[test] = i
search = GridSearchCV(RandomForestClassifier(n_estimators=args["trees"], random_state=0, n_jobs=1), args["grid"], cv=cv, scoring="accuracy", n_jobs=2)
search.fit(X, y)
r = search.cv_results_
print(json.dumps({
    "params": [{k: v for k, v in p.items()} for p in r["params"]],
    "mean": r["mean_test_score"].tolist(),
    "rank": r["rank_test_score"].tolist(),
    "best_params": search.best_params_,
    "folds": folds.tolist(),
}))
`;
  const r = spawnSync(ensurePython(() => {}), ["-W", "ignore", "-c", script], { input: JSON.stringify({ csv: DIGITS, rows, grid, trees, k }), encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { params: Record<string, unknown>[]; mean: number[]; rank: number[]; best_params: Record<string, unknown>; folds: number[] };
}

/** scikit-learn 1.9.1's test fold per position, for each case (StratifiedKFold when labels are given, else KFold). */
function sklearnFolds(cases: { y?: number[]; n: number; k: number }[]): number[][] {
  const script = `
import json, sys
import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold
out = []
for c in json.load(sys.stdin):
    fold = np.empty(c["n"], dtype=int)
    if "y" in c:
        splits = StratifiedKFold(n_splits=c["k"]).split(np.zeros((c["n"], 1)), np.array(c["y"]))
    else:
        splits = KFold(n_splits=c["k"]).split(np.zeros((c["n"], 1)))
    for i, (_, test) in enumerate(splits):
        fold[test] = i
    out.append(fold.tolist())
print(json.dumps(out))
`;
  const r = spawnSync(ensurePython(() => {}), ["-W", "ignore", "-c", script], { input: JSON.stringify(cases), encoding: "utf8" });
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as number[][];
}

describe("the folds of a study are scikit-learn 1.9.1's", () => {
  it("StratifiedKFold and KFold give every row the fold sklearn gives it", { timeout: 600_000 }, () => {
    const cases = [
      { y: labels(150, 3, 1), n: 150, k: 3 },
      { y: labels(101, 4, 7, true), n: 101, k: 5 },
      { y: labels(57, 2, 3, true), n: 57, k: 4 },
      { y: labels(1000, 10, 11, true), n: 1000, k: 3 },
      { y: [5, 5, 2, 2, 2, 9, 5, 2, 9, 9, 5, 2], n: 12, k: 3 },
      { n: 10, k: 3 },
      { n: 101, k: 5 },
      { n: 7, k: 7 },
    ];
    const expected = sklearnFolds(cases);
    cases.forEach((c, i) => {
      const ours = c.y ? stratifiedKFoldAssignment(c.y, c.k) : kFoldAssignment(c.n, c.k);
      expect([...ours], `case ${i}`).toEqual(expected[i]);
    });
  });

});

describe("a study agrees with scikit-learn's GridSearchCV on the same folds", () => {
  it("digits, max_depth x max_features, 3 folds: the same best candidate or every mean score within 0.01", { timeout: 900_000 }, async () => {
    const root = await mkdtemp(join(tmpdir(), "canopy-study-"));
    dirs.push(root);
    const grid = { max_depth: [3, 8, null], max_features: ["sqrt", 0.5] };
    const trees = 60;
    const runtime = createLocalRuntime({ root, workers: 2, onNotify: () => {}, onStudyNotify: () => {} });
    let report: StudyReport;
    try {
      const outcome = await runtime.tune(parseStudySpec({ base: { dataset: DIGITS, n_estimators: trees, grove_size: 20, seed: 0 }, grid, cv: 3 }), DIGITS);
      expect(outcome.status).toBe("COMPLETED");
      report = outcome.report!;
    } finally {
      await runtime.close();
    }
    const train = [...splitRows(1797, 0.25, 0).train];
    const sk = gridSearchCv(train, grid, trees, 3);
    // The same candidates in the same order (ParameterGrid's), and the same folds: each member build scored sklearn's fold.
    expect(report.candidates.map((c) => c.params)).toEqual(sk.params);
    const runtime2 = createLocalRuntime({ root, workers: 1 });
    try {
      const manifest = await readManifest(runtime2.blobs, report.candidates[0].buildIds[1]);
      const { pack } = await new PackCache(1).load(manifest.packHash, manifest.packKey, runtime2.blobs);
      const fold1 = buildSplit(manifest.spec, pack).test;
      expect([...fold1]).toEqual(train.filter((_, i) => sk.folds[i] === 1));
    } finally {
      await runtime2.close();
    }
    const ours = report.candidates.map((c) => c.mean_test_score);
    const gaps = ours.map((m, i) => Math.abs(m - sk.mean[i]));
    const summary = report.candidates.map((c, i) => `${JSON.stringify(c.params)} ours ${ours[i].toFixed(4)} sklearn ${sk.mean[i].toFixed(4)}`).join("\n");
    if (process.env.CANOPY_SHOW) console.log(`${summary}\nbest ours ${JSON.stringify(report.best_params_)} sklearn ${JSON.stringify(sk.best_params)}`);
    const sameBest = JSON.stringify(report.best_params_) === JSON.stringify(sk.best_params);
    expect(sameBest || gaps.every((g) => g <= 0.01), summary).toBe(true);
    // Whatever the best, the learners see the same picture: the depth-3 forests are far below the deep ones in both.
    for (let i = 0; i < ours.length; i++) expect(gaps[i], summary).toBeLessThan(0.03);
  });
});
