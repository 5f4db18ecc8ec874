import { describe, expect, it } from "vitest";
import { SpecError } from "../src/errors.ts";
import { buildIdFor, planBuild, planGroves, splitRows } from "../src/plan.ts";
import { parseBuildSpec } from "../src/spec.ts";

const HASH = "c".repeat(64);
const pack = (nRows: number, task: "classification" | "regression" = "classification") => ({ hash: HASH, nRows, target: { task } });

describe("splitRows", () => {
  it("partitions the rows into ascending train and test sets of the sklearn sizes", () => {
    const { train, test } = splitRows(101, 0.25, 3);
    expect(test.length).toBe(Math.ceil(101 * 0.25));
    expect(train.length).toBe(101 - test.length);
    const all = [...train, ...test].sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 101 }, (_, i) => i));
    for (const part of [train, test]) for (let i = 1; i < part.length; i++) expect(part[i]).toBeGreaterThan(part[i - 1]);
  });

  it("is a function of (nRows, fraction, seed) only", () => {
    expect(splitRows(500, 0.2, 11)).toEqual(splitRows(500, 0.2, 11));
    expect(splitRows(500, 0.2, 11).test).not.toEqual(splitRows(500, 0.2, 12).test);
  });

  it("shuffles: the test set is spread over the rows, not a block", () => {
    const { test } = splitRows(1000, 0.3, 0);
    const firstHalf = test.filter((r) => r < 500).length;
    expect(firstHalf).toBeGreaterThan(100);
    expect(firstHalf).toBeLessThan(200);
  });

  it("handles the edges", () => {
    expect(splitRows(10, 0, 1).test.length).toBe(0);
    expect(splitRows(10, 0, 1).train.length).toBe(10);
    expect(splitRows(0, 0.5, 1)).toEqual({ train: new Uint32Array(0), test: new Uint32Array(0) });
    expect(() => splitRows(10, 1, 0)).toThrow(RangeError);
  });
});

describe("planGroves", () => {
  it("cuts consecutive ranges, the last one short", () => {
    expect(planGroves(23, 10)).toEqual([
      { grove: 0, treeStart: 0, treeEnd: 10 },
      { grove: 1, treeStart: 10, treeEnd: 20 },
      { grove: 2, treeStart: 20, treeEnd: 23 },
    ]);
    expect(planGroves(5, 5)).toEqual([{ grove: 0, treeStart: 0, treeEnd: 5 }]);
    expect(planGroves(3, 1).map((g) => g.treeEnd - g.treeStart)).toEqual([1, 1, 1]);
  });
});

describe("buildIdFor", () => {
  const spec = parseBuildSpec({ dataset: "a.csv", n_estimators: 20, grove_size: 5, max_depth: 6, tags: { x: "1", y: "2" } });

  it("gives the same id for the same data and spec, however the spec was written", () => {
    const reordered = parseBuildSpec({ tags: { y: "2", x: "1" }, max_depth: 6, grove_size: 5, n_estimators: 20, dataset: "./other/path.csv" });
    expect(buildIdFor(HASH, spec)).toMatch(/^b-[0-9a-f]{16}$/);
    expect(buildIdFor(HASH, reordered)).toBe(buildIdFor(HASH, spec));
    expect(buildIdFor(HASH, parseBuildSpec({ ...spec, n_estimators: 20 }))).toBe(buildIdFor(HASH, spec));
  });

  it("changes with the data or anything that shapes the build", () => {
    const base = buildIdFor(HASH, spec);
    expect(buildIdFor("d".repeat(64), spec)).not.toBe(base);
    expect(buildIdFor(HASH, { ...spec, seed: 1 })).not.toBe(base);
    expect(buildIdFor(HASH, { ...spec, grove_size: 4 })).not.toBe(base);
    expect(buildIdFor(HASH, { ...spec, tags: { x: "1" } })).not.toBe(base);
  });
});

describe("planBuild", () => {
  it("plans groves, the split and the id", () => {
    const spec = parseBuildSpec({ dataset: "a.csv", n_estimators: 12, grove_size: 5, test_fraction: 0.2, seed: 4 });
    const plan = planBuild(spec, pack(50));
    expect(plan.buildId).toBe(buildIdFor(HASH, spec));
    expect(plan.groves.map((g) => [g.treeStart, g.treeEnd])).toEqual([[0, 5], [5, 10], [10, 12]]);
    expect(plan.split).toEqual(splitRows(50, 0.2, 4));
  });

  it("checks what only the data can tell", () => {
    const err = (input: object, p = pack(50)) => {
      try {
        planBuild(parseBuildSpec({ dataset: "a.csv", ...input }), p);
      } catch (e) {
        expect(e).toBeInstanceOf(SpecError);
        return (e as SpecError).issues.map((i) => i.path);
      }
      return [];
    };
    expect(err({ task: "classification" }, pack(50, "regression"))).toEqual(["task"]);
    expect(err({ criterion: "gini" }, pack(50, "regression"))).toEqual(["criterion"]);
    expect(err({ criterion: "squared_error" })).toEqual(["criterion"]);
    expect(err({ class_weight: "balanced" }, pack(50, "regression"))).toEqual(["class_weight"]);
    expect(err({ test_fraction: 0.5, n_estimators: 1, grove_size: 1 }, pack(1))).toEqual(["test_fraction"]);
    expect(err({ criterion: "squared_error" }, pack(50, "regression"))).toEqual([]);
  });
});
