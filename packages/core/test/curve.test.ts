import { buildPack, evaluate, fitForest, Forest, parseCsv, type DatasetPack } from "@canopy/forest";
import { describe, expect, it } from "vitest";
import { curveTrees, evaluateByTrees } from "../src/curve.ts";
import { splitRows } from "../src/plan.ts";
import { stragglers } from "../src/report.ts";
import { fixture } from "./support.ts";

function trained(name: "digits" | "diabetes", label: string, trees: number) {
  const pack = buildPack(parseCsv(fixture(name), { label }));
  const split = splitRows(pack.nRows, 0.25, 5);
  const forest = fitForest(pack, { n_estimators: trees, random_state: 5 }, { rows: split.train });
  return { pack, forest, test: split.test };
}

/** The forest of the first t trees, predicted from scratch: what each curve point must equal. */
function prefix(forest: Forest, t: number): Forest {
  return new Forest(forest.task, forest.featureNames, forest.labelName, forest.classes, forest.params, forest.trees.slice(0, t));
}

function scalarsOf(metrics: object): Record<string, number> {
  return Object.fromEntries(Object.entries(metrics).filter(([k, v]) => typeof v === "number" && k !== "n"));
}

function checkAgainstPrefixes(forest: Forest, pack: DatasetPack, test: Uint32Array, at: number[]) {
  const held = evaluateByTrees(forest, pack, test);
  expect(held.metrics).toEqual(evaluate(forest, pack, test));
  expect(held.curve.points.map((p) => p.trees)).toEqual(curveTrees(forest.nTrees));
  expect(held.curve.n).toBe(test.length);
  for (const t of at) expect(held.curve.points[t - 1]).toEqual({ trees: t, ...scalarsOf(evaluate(prefix(forest, t), pack, test)) });
  return held;
}

describe("held-out metrics by number of trees", () => {
  it("gives every prefix forest's classification metrics, the last point being evaluate()'s, bit for bit", () => {
    const { pack, forest, test } = trained("digits", "digit", 24);
    const held = checkAgainstPrefixes(forest, pack, test, [1, 2, 7, 24]);
    expect(held.curve.points).toHaveLength(24);
    expect(Object.keys(held.curve.points[0]).sort()).toEqual(["accuracy", "log_loss", "macro_f1", "trees"]);
    expect(held.predictions).toBeUndefined();
    // More trees help digits: the last point beats the first.
    expect(held.curve.points[23].accuracy).toBeGreaterThan(held.curve.points[0].accuracy);
  });

  it("gives regression prefixes and a sample of held-out (actual, predicted) pairs", () => {
    const { pack, forest, test } = trained("diabetes", "progression", 10);
    const held = checkAgainstPrefixes(forest, pack, test, [1, 5, 10]);
    expect(Object.keys(held.curve.points[0]).sort()).toEqual(["mae", "mse", "r2", "trees"]);
    const p = held.predictions!;
    expect(p).toMatchObject({ n: test.length, step: 1 });
    expect(p.actual).toEqual([...test].map((r) => (pack.target.task === "regression" ? pack.target.values[r] : NaN)));
    expect(p.predicted).toEqual([...(forest.predictPack(pack, test) as Float64Array)]);
  });

  it("keeps at most the point budget, evenly spaced and ending at the last tree", () => {
    expect(curveTrees(5, 10)).toEqual([1, 2, 3, 4, 5]);
    expect(curveTrees(1000, 4)).toEqual([250, 500, 750, 1000]);
    const { pack, forest, test } = trained("digits", "digit", 9);
    const held = evaluateByTrees(forest, pack, test, 3);
    expect(held.curve.points.map((p) => p.trees)).toEqual([3, 6, 9]);
    expect(held.metrics).toEqual(evaluate(forest, pack, test));
  });

  it("refuses to score nothing", () => {
    const { pack, forest } = trained("digits", "digit", 2);
    expect(() => evaluateByTrees(forest, pack, new Uint32Array(0))).toThrow(/no held-out rows/);
  });
});

describe("stragglers", () => {
  const g = (grove: number, ran: number) => ({ grove, startedAt: 1000, landedAt: 1000 + ran });
  it("are groves that ran over 1.5 × the median and at least 100 ms", () => {
    expect([...stragglers([g(0, 1000), g(1, 1000), g(2, 1000), g(3, 1501), g(4, 1600)])].sort()).toEqual([3, 4]);
    expect([...stragglers([g(0, 1000), g(1, 1500)])]).toEqual([]);
    // 3 × the median but too short to matter (Spark's minTaskRuntime).
    expect([...stragglers([g(0, 20), g(1, 20), g(2, 60)])]).toEqual([]);
    expect([...stragglers([g(0, 5000)])]).toEqual([]);
  });
});
