import { describe, expect, it } from "vitest";
import { keys } from "../src/keys.ts";
import { parsePartitionedModel, partitionKey, PARTITIONED_MODEL_FORMAT, type PartitionedModel } from "../src/partitioned-model.ts";

const sha = "a".repeat(64);
const manifest = (over: Partial<PartitionedModel> = {}): PartitionedModel => ({
  format: PARTITIONED_MODEL_FORMAT,
  version: 1,
  runId: "p-0123456789abcdef",
  partitionBy: "store",
  features: ["x", "y"],
  task: "regression",
  partitions: { "7": { value: "7", build: "b-0123456789abcdef", sha256: sha, bytes: 10, rows: 100 } },
  skipped: [{ value: "9", rows: 3, reason: "fewer than 20 rows" }],
  ...over,
});

describe("partitionKey", () => {
  it("routes a number's spellings in CSV and JSON to one key", () => {
    for (const v of ["7", " 7 ", "07", "7.0", "+7", "7e0", 7, 7.0]) expect(partitionKey(v), String(v)).toBe("7");
    expect(partitionKey("1.50")).toBe("1.5");
    expect(partitionKey(-0.25)).toBe("-0.25");
  });
  it("keeps text as text, trimmed, and gives no key to empty or missing cells", () => {
    expect(partitionKey(" Store A ")).toBe("Store A");
    expect(partitionKey("0x10")).toBe("0x10");
    expect(partitionKey("Infinity")).toBe("Infinity");
    expect(partitionKey("")).toBeUndefined();
    expect(partitionKey("   ")).toBeUndefined();
    expect(partitionKey(null)).toBeUndefined();
    expect(partitionKey(undefined)).toBeUndefined();
    expect(partitionKey(Number.NaN)).toBeUndefined();
    expect(partitionKey({})).toBeUndefined();
  });
});

describe("parsePartitionedModel", () => {
  it("reads what it is given back", () => {
    const m = manifest({ fallback: { build: "b-00000000000000ff", sha256: sha, bytes: 5, rows: 9 } });
    expect(parsePartitionedModel(JSON.stringify(m), "m.json")).toEqual(m);
  });
  it("checks the format name and version before anything else", () => {
    expect(() => parsePartitionedModel("{", "m.json")).toThrow("m.json: not a partitioned model (not JSON)");
    expect(() => parsePartitionedModel(JSON.stringify({ ...manifest(), format: "canopy-forest" }), "m.json")).toThrow(/not a partitioned model \(format "?canopy-forest"?, expected canopy-partitioned-model\)/);
    expect(() => parsePartitionedModel(JSON.stringify({ ...manifest(), version: 2 }), "m.json")).toThrow(/version 2 is not supported/);
  });
  it("refuses a bad reference, a file outside the directory, and a partition keyed unlike its value", () => {
    const bad = (p: Record<string, unknown>) => JSON.stringify(manifest({ partitions: { "7": { value: "7", build: "b-0123456789abcdef", sha256: sha, bytes: 10, rows: 1, ...p } as never } }));
    expect(() => parsePartitionedModel(bad({ sha256: "x" }), "m.json")).toThrow(/partitions\.7\.sha256/);
    expect(() => parsePartitionedModel(bad({ file: "../model.canopy" }), "m.json")).toThrow(/partitions\.7\.file: must stay inside the directory/);
    expect(() => parsePartitionedModel(bad({ value: "8" }), "m.json")).toThrow(/partition "7" is keyed unlike its value/);
  });
  it("has a store key of its own", () => {
    expect(keys.partitionedModel("p-0123456789abcdef")).toBe("partitions/p-0123456789abcdef/model.json");
    expect(() => keys.partitionedModel("b-0123456789abcdef")).toThrow(/invalid partitioned run id/);
  });
});
