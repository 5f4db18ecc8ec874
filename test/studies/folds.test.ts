import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { ensurePython } from "../../bench/setup.ts";
import { buildSplit, foldSplit, kFoldAssignment, parseBuildSpec, SpecError, splitRows, stratifiedKFoldAssignment } from "@canopy/core";

/** Labels drawn from a small LCG: uneven classes, in no order. */
function labels(n: number, classes: number, seed: number, skew = false): number[] {
  let x = seed >>> 0;
  return Array.from({ length: n }, () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const u = x / 2 ** 32;
    return Math.min(classes - 1, Math.floor((skew ? u * u : u) * classes));
  });
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

describe("folds as scikit-learn 1.9.1 assigns them", () => {
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

  it("refuses more folds than rows, or than members of every class, naming cv", () => {
    expect(() => kFoldAssignment(3, 4)).toThrow(/n_splits=4 greater than the number of training rows \(3\)/);
    expect(() => stratifiedKFoldAssignment([0, 0, 1, 1, 1], 4)).toThrow(SpecError);
    expect(() => kFoldAssignment(10, 1)).toThrow(/n_splits must be an integer >= 2/);
  });

  it("foldSplit partitions the rows it is given", () => {
    const rows = Uint32Array.from([3, 5, 8, 13, 21, 34]);
    const { train, test } = foldSplit(rows, kFoldAssignment(6, 3), 1);
    expect([...test]).toEqual([8, 13]);
    expect([...train]).toEqual([3, 5, 21, 34]);
  });
});

describe("buildSplit", () => {
  const codes = Uint16Array.from(labels(200, 3, 5));
  const pack = { nRows: 200, target: { task: "classification" as const, classes: ["a", "b", "c"], codes } };
  it("without cv is the held-out split", () => {
    const spec = parseBuildSpec({ dataset: "x.csv", seed: 4 });
    expect(buildSplit(spec, pack)).toEqual(splitRows(200, 0.25, 4));
  });

  it("with cv: the folds of the outer training rows, every training row scored once across the folds", () => {
    const outer = splitRows(200, 0.25, 4);
    const scored: number[] = [];
    for (let fold = 0; fold < 3; fold++) {
      const s = buildSplit(parseBuildSpec({ dataset: "x.csv", seed: 4, cv: { n_splits: 3, fold } }), pack);
      expect(s.train.length + s.test.length).toBe(outer.train.length);
      expect([...s.train, ...s.test].some((r) => outer.test.includes(r))).toBe(false);
      scored.push(...s.test);
    }
    expect(scored.sort((a, b) => a - b)).toEqual([...outer.train]);
  });

  it("a fold outside n_splits is a spec error", () => {
    expect(() => parseBuildSpec({ dataset: "x.csv", cv: { n_splits: 3, fold: 3 } })).toThrow(/cv.fold: must be below n_splits \(3\)/);
    expect(() => parseBuildSpec({ dataset: "x.csv", cv: { n_splits: 1, fold: 0 } })).toThrow(/cv.n_splits/);
  });
});
