import { describe, expect, it } from "vitest";
import { OptionsError } from "../src/errors.ts";
import { fitForest } from "../src/fit.ts";
import { Forest } from "../src/forest.ts";
import { featuresPerSplit, resolveParams, type FitParams } from "../src/options.ts";
import { buildPack } from "../src/pack.ts";
import { classification } from "./fixtures/data.ts";

/** The OptionsError thrown by resolveParams, checked to be one line naming `option`. */
function rejection(params: FitParams, task: "classification" | "regression", option: string): OptionsError {
  let caught: unknown;
  try {
    resolveParams(params, task);
  } catch (e) {
    caught = e;
  }
  expect(caught, JSON.stringify(params)).toBeInstanceOf(OptionsError);
  const message = (caught as Error).message;
  expect(message).toContain(option);
  expect(message).not.toContain("\n");
  return caught as OptionsError;
}

describe("resolveParams: defaults", () => {
  it("fills scikit-learn's RandomForestClassifier defaults", () => {
    expect(resolveParams({}, "classification")).toEqual({
      n_estimators: 100,
      random_state: 0,
      criterion: "gini",
      max_depth: null,
      min_samples_split: 2,
      min_samples_leaf: 1,
      max_features: "sqrt",
      bootstrap: true,
      max_samples: null,
      class_weight: null,
      min_impurity_decrease: 0,
    });
  });

  it("fills RandomForestRegressor's: squared_error and every feature", () => {
    const p = resolveParams({}, "regression");
    expect(p.criterion).toBe("squared_error");
    expect(p.max_features).toBe("all");
    expect(p.class_weight).toBeNull();
  });

  it("keeps given values, treats undefined as absent and null max_features as all", () => {
    const p = resolveParams(
      { n_estimators: 7, random_state: 42, criterion: "entropy", max_depth: 3, max_features: null, max_samples: 0.5, min_samples_leaf: undefined },
      "classification",
    );
    expect(p).toMatchObject({ n_estimators: 7, random_state: 42, criterion: "entropy", max_depth: 3, max_features: "all", max_samples: 0.5, min_samples_leaf: 1 });
    expect(resolveParams({ max_depth: null, class_weight: "balanced" }, "classification")).toMatchObject({ max_depth: null, class_weight: "balanced" });
  });

  it("accepts the edges of each range", () => {
    expect(() =>
      resolveParams(
        { n_estimators: 1, random_state: Number.MAX_SAFE_INTEGER, max_depth: 1, min_samples_split: 2, min_samples_leaf: 1, max_samples: 1, min_impurity_decrease: 0 },
        "regression",
      ),
    ).not.toThrow();
    expect(() => resolveParams({ min_samples_split: 0.01, min_samples_leaf: 0.5, max_features: 0.01, max_samples: 0.001 }, "classification")).not.toThrow();
    expect(() => resolveParams({ min_samples_split: 1.0 - 1e-9 }, "classification")).not.toThrow();
  });
});

describe("resolveParams: every invalid value is an OptionsError naming the option", () => {
  const C = "classification" as const;
  const R = "regression" as const;
  const cases: [FitParams, "classification" | "regression", string][] = [
    [{ n_estimators: 0 }, C, "n_estimators"],
    [{ n_estimators: 2.5 }, C, "n_estimators"],
    [{ n_estimators: "10" as unknown as number }, C, "n_estimators"],
    [{ random_state: -1 }, C, "random_state"],
    [{ random_state: 1.5 }, C, "random_state"],
    [{ engine: "xgboost" } as FitParams, C, "engine"],
    [{ max_depth: 0 }, C, "max_depth"],
    [{ max_depth: -3 }, R, "max_depth"],
    [{ max_depth: 2.5 }, C, "max_depth"],
    [{ min_samples_split: 1 }, C, "min_samples_split"],
    [{ min_samples_split: 0 }, C, "min_samples_split"],
    [{ min_samples_split: 1.5 }, C, "min_samples_split"],
    [{ min_samples_leaf: 0 }, C, "min_samples_leaf"],
    [{ min_samples_leaf: 1.5 }, R, "min_samples_leaf"],
    [{ min_samples_leaf: -0.5 }, R, "min_samples_leaf"],
    [{ max_features: "foo" as "sqrt" }, C, "max_features"],
    [{ max_features: 0 }, C, "max_features"],
    [{ max_features: 1.5 }, C, "max_features"],
    [{ max_features: -2 }, R, "max_features"],
    [{ criterion: "gini" }, R, "criterion"],
    [{ criterion: "entropy" }, R, "criterion"],
    [{ criterion: "squared_error" }, C, "criterion"],
    [{ criterion: "mse" as "gini" }, C, "criterion"],
    [{ bootstrap: "yes" as unknown as boolean }, C, "bootstrap"],
    [{ class_weight: "balanced" }, R, "class_weight"],
    [{ class_weight: "balanced_subsample" as "balanced" }, C, "class_weight"],
    [{ bootstrap: false, max_samples: 0.5 }, C, "max_samples"],
    [{ max_samples: 0 }, C, "max_samples"],
    [{ max_samples: 1.5 }, C, "max_samples"],
    [{ min_impurity_decrease: -0.1 }, C, "min_impurity_decrease"],
    [{ min_impurity_decrease: Number.NaN }, C, "min_impurity_decrease"],
    [{ min_impurity_decrease: Infinity }, C, "min_impurity_decrease"],
    [{ n_trees: 10 } as FitParams, C, "n_trees"],
    [{ maxDepth: 3 } as FitParams, R, "maxDepth"],
  ];
  for (const [params, task, option] of cases) {
    it(`${JSON.stringify(params)} (${task}) → ${option}`, () => {
      rejection(params, task, option);
    });
  }

  it("reports the value it got", () => {
    expect(rejection({ max_depth: 0 }, "classification", "max_depth").message).toContain("got 0");
    expect(rejection({ max_features: "foo" as "sqrt" }, "classification", "max_features").message).toContain('"foo"');
  });

  it("fitForest validates before training", () => {
    const pack = buildPack(classification([[1, 2, 3, 4]], ["a", "a", "b", "b"]));
    expect(() => fitForest(pack, { criterion: "squared_error" })).toThrow(OptionsError);
    expect(() => fitForest(pack, { n_estimators: 3 }, { treeIndices: [3] })).toThrow(/tree index 3/);
    expect(() => fitForest(pack, {}, { rows: new Uint32Array(0) })).toThrow(OptionsError);
    expect(() => fitForest(pack, {}, { rows: Uint32Array.from([0, 4]) })).toThrow(/row 4/);
  });
});

describe("resolveParams: the obsolete engine option", () => {
  it('reads engine "canopy" (in models and grove tasks written while it existed) and drops it', () => {
    expect(resolveParams({ engine: "canopy", max_depth: 3 } as FitParams, "classification")).toEqual(resolveParams({ max_depth: 3 }, "classification"));
  });

  it("refuses any other engine, naming the option", () => {
    expect(rejection({ engine: "ml-random-forest" } as FitParams, "classification", "engine").message).toBe(
      'engine: must be "canopy", the only learner (ml-random-forest is an export format) (got "ml-random-forest")',
    );
  });

  it('loads a model whose parameters carry engine "canopy" as the same model trained now', () => {
    const forest = fitForest(buildPack(classification([[1, 2, 3, 4, 5, 6]], ["a", "a", "a", "b", "b", "b"])), { n_estimators: 3, random_state: 2 });
    const old = forest.toJSON();
    old.params = { ...old.params, engine: "canopy" } as typeof old.params;
    const loaded = Forest.load(old);
    expect(loaded.params).toEqual(forest.params);
    expect(loaded.toBinary()).toEqual(forest.toBinary());
    old.params = { ...old.params, engine: "ml-random-forest" } as typeof old.params;
    expect(() => Forest.load(old)).toThrow(/bad parameters \(engine: must be "canopy"/);
  });
});

describe("featuresPerSplit", () => {
  it("follows sklearn: sqrt and log2 floored, a fraction of n floored, an integer as is, at least 1, at most n", () => {
    expect(featuresPerSplit("all", 64)).toBe(64);
    expect(featuresPerSplit("sqrt", 64)).toBe(8);
    expect(featuresPerSplit("sqrt", 10)).toBe(3);
    expect(featuresPerSplit("log2", 64)).toBe(6);
    expect(featuresPerSplit("log2", 10)).toBe(3);
    expect(featuresPerSplit("log2", 1)).toBe(1); // log2(1) = 0, raised to 1
    expect(featuresPerSplit(1, 10)).toBe(1); // 1 is a count, not 100%
    expect(featuresPerSplit(4, 10)).toBe(4);
    expect(featuresPerSplit(40, 10)).toBe(10);
    expect(featuresPerSplit(0.5, 10)).toBe(5);
    expect(featuresPerSplit(0.33, 10)).toBe(3);
    expect(featuresPerSplit(0.01, 10)).toBe(1);
  });
});
