import { describe, expect, it } from "vitest";
import { labels } from "./support.ts";
import { buildSplit, foldSplit, kFoldAssignment, parseBuildSpec, SpecError, splitRows, stratifiedKFoldAssignment } from "@canopy/core";

describe("folds", () => {
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
