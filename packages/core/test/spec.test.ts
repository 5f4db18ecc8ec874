import { describe, expect, it } from "vitest";
import { SpecError } from "../src/errors.ts";
import { canonicalJson, parseBuildSpec, toFitParams } from "../src/spec.ts";

function specError(input: unknown): SpecError {
  try {
    parseBuildSpec(input);
  } catch (err) {
    expect(err).toBeInstanceOf(SpecError);
    return err as SpecError;
  }
  throw new Error("expected a SpecError");
}

describe("parseBuildSpec", () => {
  it("fills the documented defaults and nothing else", () => {
    const spec = parseBuildSpec({ dataset: "examples/digits.csv" });
    expect(spec).toEqual({
      dataset: "examples/digits.csv",
      task: "auto",
      n_estimators: 100,
      grove_size: 10,
      seed: 0,
      test_fraction: 0.25,
      tolerated_failures: 0,
    });
    expect(Object.values(spec)).not.toContain(undefined);
  });

  it("keeps forest options, label and tags as given", () => {
    const input = {
      dataset: "s3://bucket/data.csv",
      label: "digit",
      task: "classification",
      n_estimators: 50,
      grove_size: 5,
      seed: 7,
      test_fraction: 0,
      tolerated_failures: 2,
      tags: { team: "ml", "run:id": "42" },
      criterion: "entropy",
      max_depth: null,
      min_samples_split: 0.5,
      min_samples_leaf: 3,
      max_features: 0.3,
      bootstrap: true,
      max_samples: 100,
      class_weight: "balanced",
      min_impurity_decrease: 0.01,
    };
    expect(parseBuildSpec(input)).toEqual(input);
  });

  it("reports a bad field as 'field: rule (got value)'", () => {
    expect(specError({ dataset: "d.csv", n_estimators: 0 }).message).toBe("n_estimators: must be an integer >= 1 (got 0)");
    expect(specError({ dataset: "d.csv", n_estimators: 2.5 }).message).toBe("n_estimators: must be an integer >= 1 (got 2.5)");
    expect(specError({ dataset: "d.csv", n_estimators: "10" }).message).toBe('n_estimators: must be an integer >= 1 (got "10")');
    expect(specError({ dataset: "d.csv", n_estimators: 200_000 }).message).toBe("n_estimators: must be at most 100000 (got 200000)");
    expect(specError({ dataset: "d.csv", test_fraction: 1 }).message).toBe("test_fraction: must be a number >= 0 and < 1 (got 1)");
  });

  it("lists every bad field, one per line, with structured issues", () => {
    const err = specError({ n_estimators: -1, seed: -3, task: "clustering", colour: "green" });
    const lines = err.message.split("\n");
    expect(lines).toHaveLength(5);
    expect(lines).toContain("dataset: is required");
    expect(lines).toContain("n_estimators: must be an integer >= 1 (got -1)");
    expect(lines).toContain("seed: must be an integer >= 0 (got -3)");
    expect(lines).toContain('task: must be "classification", "regression" or "auto" (got "clustering")');
    expect(lines).toContain("colour: unknown field");
    expect(err.issues.map((i) => i.path).sort()).toEqual(["colour", "dataset", "n_estimators", "seed", "task"]);
  });

  it("checks each forest option against its range", () => {
    const bad: [string, unknown][] = [
      ["max_depth", 0],
      ["max_depth", "deep"],
      ["min_samples_split", 1.5],
      ["min_samples_split", 0],
      ["min_samples_split", 1],
      ["min_samples_leaf", 1.5],
      ["min_samples_leaf", 0],
      ["max_features", "half"],
      ["max_features", 0],
      ["max_features", 2.5],
      ["max_samples", 0],
      ["max_samples", 1.5],
      ["class_weight", "balanced_subsample"],
      ["criterion", "mse"],
      ["bootstrap", "yes"],
      ["min_impurity_decrease", -0.1],
    ];
    for (const [field, value] of bad) {
      const err = specError({ dataset: "d.csv", [field]: value });
      expect(err.issues.map((i) => i.path), `${field}=${JSON.stringify(value)}`).toEqual([field]);
      expect(err.message).toContain(`(got ${JSON.stringify(value)})`);
    }
    const good: [string, unknown][] = [
      ["max_depth", 1],
      ["min_samples_split", 2],
      ["min_samples_split", 0.5],
      ["min_samples_leaf", 0.2],
      ["max_features", "log2"],
      ["max_features", "all"],
      ["max_features", null],
      ["max_features", 4],
      ["max_samples", 0.5],
      ["max_samples", null],
    ];
    for (const [field, value] of good) expect(parseBuildSpec({ dataset: "d.csv", [field]: value })[field as "max_depth"]).toEqual(value);
  });

  it("checks rules that relate fields", () => {
    expect(specError({ dataset: "d.csv", n_estimators: 5, grove_size: 10 }).message).toBe(
      "grove_size: must be <= n_estimators (5) (got 10)",
    );
    expect(specError({ dataset: "d.csv", n_estimators: 20, grove_size: 10, tolerated_failures: 2 }).message).toBe(
      "tolerated_failures: must be at most half the groves (1 of 2), so a completed model keeps at least half its trees (got 2)",
    );
    // 1,999 of 2,000 groves was accepted once: a "completed" model of one grove.
    expect(specError({ dataset: "d.csv", n_estimators: 20_000, grove_size: 10, tolerated_failures: 1999 }).message).toBe(
      "tolerated_failures: must be at most half the groves (1000 of 2000), so a completed model keeps at least half its trees (got 1999)",
    );
    expect(parseBuildSpec({ dataset: "d.csv", n_estimators: 40, grove_size: 10, tolerated_failures: 2 }).tolerated_failures).toBe(2);
    expect(parseBuildSpec({ dataset: "d.csv", n_estimators: 20_000, grove_size: 10, tolerated_failures: 1000 }).tolerated_failures).toBe(1000);
    expect(specError({ dataset: "d.csv", task: "regression", criterion: "gini" }).issues[0].path).toBe("criterion");
    expect(specError({ dataset: "d.csv", task: "classification", criterion: "squared_error" }).issues[0].path).toBe("criterion");
    expect(specError({ dataset: "d.csv", task: "regression", class_weight: "balanced" }).issues[0].path).toBe("class_weight");
    expect(specError({ dataset: "d.csv", bootstrap: false, max_samples: 0.5 }).message).toBe("max_samples: must be null when bootstrap is false (got 0.5)");
    // With task "auto" the criterion waits for the data (planBuild checks it).
    expect(parseBuildSpec({ dataset: "d.csv", criterion: "squared_error" }).criterion).toBe("squared_error");
  });

  it("rejects non-objects and bad tags", () => {
    expect(specError(null).message).toBe("a build spec must be a JSON object (got null)");
    expect(specError([1]).message).toMatch(/must be a JSON object/);
    expect(specError({ dataset: "d.csv", tags: { team: 1 } }).issues[0].path).toBe("tags.team");
    expect(specError({ dataset: "d.csv", tags: { "a b": "x" } }).issues[0].path).toMatch(/^tags/);
    expect(specError({ dataset: "" }).message).toBe('dataset: must be a non-empty string (got "")');
  });
});

describe("toFitParams", () => {
  it("maps the seed to random_state and passes only the options that were set", () => {
    const spec = parseBuildSpec({ dataset: "d.csv", n_estimators: 30, grove_size: 3, seed: 9, max_depth: 8, bootstrap: false, tags: { a: "b" } });
    expect(toFitParams(spec)).toEqual({ n_estimators: 30, random_state: 9, max_depth: 8, bootstrap: false });
  });
});

describe("canonicalJson", () => {
  it("sorts keys at every level and drops undefined", () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: undefined } })).toBe('{"a":{"d":[2,{"y":2,"z":1}]},"b":1}');
  });
});
