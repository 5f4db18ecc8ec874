import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "commander";
import { collectTag, parseCountOrFraction, parseHttpUrl, parseInteger, parseMaxFeatures, parseNumber } from "../src/args.ts";
import { UsageError } from "../src/errors.ts";
import { buildSpec, specInput } from "../src/spec.ts";
import { prepareBuildData } from "@canopy/core";
import { MemoryBlobStore } from "@canopy/core/testing";

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

describe("data preparation flags: --weight-column, --max-bins, --min-category-rows", () => {
  it("become spec fields the core checks, and the pack they prepare carries them", async () => {
    expect(specInput("d.csv", { weightColumn: "w", maxBins: 1023, minCategoryRows: 5 })).toEqual({
      dataset: "d.csv",
      weight_column: "w",
      max_bins: 1023,
      min_category_rows: 5,
    });
    const usage = (flags: Parameters<typeof buildSpec>[1]) => {
      try {
        buildSpec("d.csv", flags);
      } catch (err) {
        expect(err).toBeInstanceOf(UsageError);
        return (err as Error).message;
      }
      return "";
    };
    expect(usage({ maxBins: 1 })).toBe("--max-bins: must be an integer >= 2 (got 1)");
    expect(usage({ maxBins: 65536 })).toBe("--max-bins: must be at most 65535 (got 65536)");
    expect(usage({ minCategoryRows: 0 })).toBe("--min-category-rows: must be an integer >= 1 (got 0)");
    expect(usage({ weightColumn: "" })).toMatch(/^--weight-column: must be a column name/);

    const csv = ["x,city,w,y", ...Array.from({ length: 300 }, (_, i) => `${i / 7},${i % 60 < 50 ? `c${i % 50}` : `rare${i}`},${i % 3},${i % 2 ? "a" : "b"}`)].join("\n");
    const spec = buildSpec("d.csv", { weightColumn: "w", maxBins: 1000, minCategoryRows: 2 });
    const { pack, schema } = await prepareBuildData(spec, csv, new MemoryBlobStore());
    expect(Array.from(pack.weights!.subarray(0, 4))).toEqual([0, 1, 2, 0]);
    expect(schema.excluded).toEqual([{ name: "w", reason: "weight" }]);
    expect(pack.features.map((f) => f.bits)).toEqual([16, 8]);
    expect(schema.columns[1]).toMatchObject({ name: "city", other: true });
    expect(schema.columns[1]!.categories).toHaveLength(50);
  });
});
