import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "commander";
import { collectTag, parseCountOrFraction, parseHttpUrl, parseInteger, parseMaxFeatures, parseNumber } from "../src/args.ts";
import { UsageError } from "../src/errors.ts";
import { buildSpec, specInput } from "../src/spec.ts";

describe("option parsers", () => {
  it("accept plain decimals only", () => {
    expect(parseNumber("0.25")).toBe(0.25);
    expect(parseNumber("1e3")).toBe(1000);
    for (const bad of ["", "abc", "0x10", "Infinity", "1,5", "2.5.1"]) expect(() => parseNumber(bad)).toThrow(InvalidArgumentError);
    expect(() => parseInteger("2.5")).toThrow(/integer/);
  });

  it("--max-features: names, a count, a fraction; 1.0 is refused instead of silently meaning one feature", () => {
    expect(parseMaxFeatures("sqrt")).toBe("sqrt");
    expect(parseMaxFeatures("all")).toBe("all");
    expect(parseMaxFeatures("1")).toBe(1);
    expect(parseMaxFeatures("0.5")).toBe(0.5);
    expect(() => parseMaxFeatures("1.0")).toThrow(/integer count \(1\) or a fraction/);
    expect(() => parseMaxFeatures("half")).toThrow(/sqrt, log2, all/);
    expect(parseCountOrFraction("3")).toBe(3);
    expect(() => parseCountOrFraction("2.")).toThrow(InvalidArgumentError);
  });

  it("--tag accumulates key=value pairs; values may contain '='", () => {
    expect(collectTag("b=x=y", collectTag("a=1", undefined))).toEqual({ a: "1", b: "x=y" });
    expect(() => collectTag("novalue", undefined)).toThrow(/key=value/);
    expect(() => collectTag("=v", undefined)).toThrow(/key=value/);
  });

  it("--notify-url takes http(s) URLs only", () => {
    expect(parseHttpUrl("http://localhost:8080/hook")).toBe("http://localhost:8080/hook");
    expect(() => parseHttpUrl("ftp://x")).toThrow(InvalidArgumentError);
    expect(() => parseHttpUrl("not a url")).toThrow(InvalidArgumentError);
  });
});

describe("flags to build spec", () => {
  it("passes only what was set, so the core's defaults decide the rest", () => {
    expect(specInput("d.csv", {})).toEqual({ dataset: "d.csv" });
    expect(specInput("d.csv", { trees: 20, groveSize: 5, bootstrap: true, maxFeatures: 0.5, tag: { team: "x" } })).toEqual({
      dataset: "d.csv",
      n_estimators: 20,
      grove_size: 5,
      max_features: 0.5,
      tags: { team: "x" },
    });
    expect(specInput("d.csv", { bootstrap: false })).toEqual({ dataset: "d.csv", bootstrap: false });
  });

  it("fills defaults through the core's parser", () => {
    const spec = buildSpec("d.csv", { trees: 30, seed: 7 });
    expect(spec).toMatchObject({ dataset: "d.csv", n_estimators: 30, seed: 7, grove_size: 10, task: "auto", test_fraction: 0.25 });
  });

  it("reports spec errors as one usage line naming the flags", () => {
    const message = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        expect(err).toBeInstanceOf(UsageError);
        return (err as Error).message;
      }
      throw new Error("expected a UsageError");
    };
    expect(message(() => buildSpec("d.csv", { trees: 0 }))).toMatch(/^--trees: must be an integer >= 1/);
    expect(message(() => buildSpec("d.csv", { trees: 10, groveSize: 20 }))).toMatch(/^--grove-size: must be <= /);
    const two = message(() => buildSpec("d.csv", { trees: 0, testFraction: 1 }));
    expect(two).toContain("--trees:");
    expect(two).toContain("--test-fraction:");
    expect(two).not.toContain("\n");
    expect(message(() => buildSpec("d.csv", { task: "regression", classWeight: "balanced" }))).toMatch(/^--class-weight: is for classification only/);
  });
});
