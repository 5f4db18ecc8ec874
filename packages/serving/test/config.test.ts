import { describe, expect, it } from "vitest";
import { servingConfig } from "../src/index.ts";

describe("servingConfig", () => {
  it("has defaults: alias production, 10,000 rows, 10 s alias TTL, a model cache of 256 MB (a quarter of a Lambda's memory) and no count limit", () => {
    expect(servingConfig({})).toEqual({ defaultAlias: "production", maxRows: 10_000, aliasTtlMs: 10_000, maxModelBytes: 256 * 1024 * 1024 });
    expect(servingConfig({ AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "1769" }).maxModelBytes).toBe(Math.round((1769 / 4) * 1024 * 1024));
  });

  it("reads CANOPY_* variables", () => {
    const env = { CANOPY_DEFAULT_ALIAS: "staging", CANOPY_MAX_ROWS: "500", CANOPY_ALIAS_TTL_SECONDS: "0.5", CANOPY_MODEL_CACHE: "1", CANOPY_MODEL_CACHE_MB: "64" };
    expect(servingConfig(env)).toEqual({ defaultAlias: "staging", maxRows: 500, aliasTtlMs: 500, maxModels: 1, maxModelBytes: 64 * 1024 * 1024 });
    expect(servingConfig({ CANOPY_ALIAS_TTL_SECONDS: "0" }).aliasTtlMs).toBe(0);
  });

  it("refuses bad values with one line naming the variable", () => {
    expect(() => servingConfig({ CANOPY_MAX_ROWS: "0" })).toThrow('CANOPY_MAX_ROWS must be an integer >= 1; got "0"');
    expect(() => servingConfig({ CANOPY_MAX_ROWS: "1.5" })).toThrow('CANOPY_MAX_ROWS must be an integer >= 1; got "1.5"');
    expect(() => servingConfig({ CANOPY_ALIAS_TTL_SECONDS: "-1" })).toThrow('CANOPY_ALIAS_TTL_SECONDS must be a number of seconds >= 0; got "-1"');
    expect(() => servingConfig({ CANOPY_MODEL_CACHE: "lots" })).toThrow('CANOPY_MODEL_CACHE must be an integer >= 1; got "lots"');
    expect(() => servingConfig({ CANOPY_MODEL_CACHE_MB: "0" })).toThrow('CANOPY_MODEL_CACHE_MB must be a number of megabytes > 0; got "0"');
    expect(() => servingConfig({ CANOPY_DEFAULT_ALIAS: "a b" })).toThrow(/^CANOPY_DEFAULT_ALIAS: invalid alias "a b"/);
  });
});
