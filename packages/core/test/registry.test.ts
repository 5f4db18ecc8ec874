import { describe, expect, it } from "vitest";
import { checkAliasName, checkPromotion, featureChange, isAliasName, listModels, newBuildRecord, registryRules, RegistryError, type AliasRecord, type BuildRecord } from "../src/index.ts";
import { describeRegistryContract, MemoryLedger, MemoryRegistry } from "../src/testing/index.ts";

describeRegistryContract("MemoryRegistry", async () => {
  const ledger = new MemoryLedger();
  return { ledger, registry: new MemoryRegistry(ledger) };
});

const ID = "b-0123456789abcdef";

function record(buildId: string, status: BuildRecord["status"], createdAt: number, extra: Partial<BuildRecord> = {}): BuildRecord {
  return { ...newBuildRecord({ buildId, total: 2, tolerated: 0, now: createdAt }), status, ...extra };
}

describe("alias names", () => {
  it("accepts short names of letters, digits, '.', '_' and '-' that start with a letter or digit", () => {
    for (const ok of ["production", "staging-2", "v1.3", "A_b", "x".repeat(63)]) expect(isAliasName(ok)).toBe(true);
    for (const bad of ["", ".hidden", "_x", "a b", "a/b", "é", "x".repeat(64), "alias#prod"]) expect(isAliasName(bad)).toBe(false);
  });

  it("says what a valid name looks like", () => {
    expect(() => checkAliasName("a b")).toThrow('invalid alias "a b": use 1 to 63 letters, digits, \'.\', \'_\' or \'-\', starting with a letter or digit');
  });
});

describe("registryRules.promote", () => {
  it("returns the alias record with the previous build when there was one", () => {
    const build = record(ID, "COMPLETED", 1);
    expect(registryRules.promote(build, ID, "production", undefined, 42)).toEqual({ alias: "production", buildId: ID, promotedAt: 42 });
    expect(registryRules.promote(build, ID, "production", "b-ffffffffffffffff", 43)).toEqual({
      alias: "production",
      buildId: ID,
      promotedAt: 43,
      previous: "b-ffffffffffffffff",
    });
  });

  it("checks the alias first, then the id, then the build", () => {
    expect(() => registryRules.promote(undefined, "nope", "bad name", undefined, 0)).toThrow(/invalid alias/);
    expect(() => registryRules.promote(undefined, "nope", "ok", undefined, 0)).toThrow('invalid build id "nope" (expected b- and 16 hex digits)');
    const err = (() => {
      try {
        registryRules.promote(record(ID, "TRAINING", 1), ID, "ok", undefined, 0);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(RegistryError);
    expect(err).toMatchObject({ code: "not-completed" });
  });
});

describe("listModels", () => {
  it("lists builds newest first with their aliases, metrics and (completed only) model size", () => {
    const old = record("b-000000000000000a", "COMPLETED", 100, { result: { modelKey: "m", reportKey: "r", metrics: { accuracy: 0.95 } } });
    const failed = record("b-000000000000000b", "FAILED", 200, { reason: "2 of 2 groves failed" });
    const fresh = record("b-000000000000000c", "COMPLETED", 300, { result: { modelKey: "m", reportKey: "r", metrics: null }, tags: { team: "x" } });
    const aliases: AliasRecord[] = [
      { alias: "staging", buildId: fresh.buildId, promotedAt: 1 },
      { alias: "production", buildId: old.buildId, promotedAt: 1 },
      { alias: "canary", buildId: fresh.buildId, promotedAt: 1 },
      { alias: "gone", buildId: "b-00000000000000ff", promotedAt: 1 },
    ];
    const sizes = new Map([
      [old.buildId, { trees: 100, bytes: 1234 }],
      [failed.buildId, { trees: 1, bytes: 1 }],
    ]);
    const rows = listModels([old, failed, fresh], aliases, (id) => sizes.get(id));
    expect(rows.map((r) => r.buildId)).toEqual([fresh.buildId, failed.buildId, old.buildId]);
    expect(rows[0]).toEqual({
      buildId: fresh.buildId,
      status: "COMPLETED",
      createdAt: 300,
      updatedAt: 300,
      metrics: null,
      aliases: ["canary", "staging"],
      tags: { team: "x" },
    });
    // A failed build has no model, whatever the size lookup says.
    expect(rows[1]).toMatchObject({ status: "FAILED", aliases: [], reason: "2 of 2 groves failed" });
    expect(rows[1].bytes).toBeUndefined();
    expect(rows[2]).toMatchObject({ trees: 100, bytes: 1234, metrics: { accuracy: 0.95 }, aliases: ["production"] });
  });
});

describe("featureChange and checkPromotion", () => {
  it("names what the next model lacks and adds, or that only the order differs", () => {
    expect(featureChange(["a", "b"], ["a", "b"])).toBeUndefined();
    expect(featureChange(["a", "b", "c"], ["a", "d"])).toBe('lacks "b", "c" and adds "d"');
    expect(featureChange(["a", "b"], ["b", "a"])).toBe("has the same features in another order (rows are read in feature order)");
  });

  it("refuses moving an alias to other features; an unset alias, the same build or an unknown model pass", async () => {
    const registry = { resolve: async (alias: string) => (alias === "production" ? "b-000000000000000a" : undefined) };
    const features = async (id: string) => ({ "b-000000000000000a": ["a", "b"], "b-000000000000000b": ["a"], "b-000000000000000c": ["a", "b"] })[id];
    await expect(checkPromotion(registry, features, "b-000000000000000b", "production")).rejects.toMatchObject({
      code: "incompatible",
      message: 'alias production serves b-000000000000000a; b-000000000000000b\'s model lacks "b", so requests made for production would be refused: use --force to promote it anyway',
    });
    await checkPromotion(registry, features, "b-000000000000000c", "production");
    await checkPromotion(registry, features, "b-000000000000000b", "staging");
    await checkPromotion(registry, features, "b-000000000000000d", "production");
  });
});

describe("partitioned runs in the registry", () => {
  it("modelFeatures of a partitioned run: its manifest's features and the partition column; checkPromotion refuses moving a single model's alias to it", async () => {
    const { readFileSync } = await import("node:fs");
    const { modelFeatures, keys } = await import("../src/index.ts");
    const { MemoryBlobStore, partitionedFixture, storePartitioned } = await import("../src/testing/index.ts");
    const csv = readFileSync(new URL("../../../test/fixtures/penguins.csv", import.meta.url), "utf8");
    const fixture = partitionedFixture(csv, { label: "Species", partitionBy: "Island", trees: 2 });
    const blobs = new MemoryBlobStore();
    await storePartitioned(blobs, fixture);
    const runId = fixture.model.runId;
    const columns = ["Beak Length (mm)", "Beak Depth (mm)", "Flipper Length (mm)", "Body Mass (g)", "Sex", "Island"];
    expect(await modelFeatures(blobs, runId)).toEqual(columns);
    expect(await modelFeatures(blobs, "p-00000000000000aa")).toBeUndefined();
    const single = fixture.model.partitions.Dream!.build;
    expect(await modelFeatures(blobs, single)).toEqual(columns.slice(0, -1));
    const registry = { resolve: async () => single };
    await expect(checkPromotion(registry, (id) => modelFeatures(blobs, id), runId, "production")).rejects.toMatchObject({
      code: "incompatible",
      message: `alias production serves ${single}; ${runId}'s model adds "Island", so requests made for production would be refused: use --force to promote it anyway`,
    });
    await blobs.put(keys.partitionedModel("p-00000000000000bb"), new TextEncoder().encode('{"format": "canopy-forest"}'));
    await expect(modelFeatures(blobs, "p-00000000000000bb")).rejects.toThrow(/not a partitioned model/);
  });

  it("listModels carries a partitioned run's partition count and summed size", () => {
    const run = record("p-000000000000000a", "COMPLETED", 100, { result: { modelKey: "m", reportKey: "r", metrics: null } });
    const rows = listModels([run], [{ alias: "production", buildId: run.buildId, promotedAt: 1 }], () => ({ bytes: 5000, partitions: 3 }));
    expect(rows[0]).toEqual({ buildId: run.buildId, status: "COMPLETED", createdAt: 100, updatedAt: 100, bytes: 5000, partitions: 3, metrics: null, aliases: ["production"], tags: {} });
  });
});
