import { newBuildRecord, summaryOf, type BuildSummary, type SettledGrove } from "@canopy/core";
import { groveStats } from "@canopy/core/testing";
import { marshall } from "@aws-sdk/util-dynamodb";
import { describe, expect, it } from "vitest";
import { changeFromStreamRecord } from "../src/dynamo-ledger.ts";
import {
  entryToItem,
  groveKey,
  isBuildItem,
  itemSize,
  itemToEntry,
  itemToSummary,
  legacyEntries,
  OPEN_BUILDS_INDEX,
  summaryToItem,
  TTL_ATTRIBUTE,
  writeUnits,
  type Item,
} from "../src/ledger-item.ts";

const fresh = summaryOf(newBuildRecord({ buildId: "b-0123456789abcdef", total: 4, tolerated: 1, now: 1000 }));

const busy: BuildSummary = {
  ...fresh,
  status: "COMPLETED",
  remaining: 0,
  landedCount: 3,
  failedCount: 1,
  treesLanded: 15,
  lastSettled: { grove: 3, outcome: "landed", stats: groveStats(3) },
  claims: 1,
  claimedAt: 5500,
  redrives: 2,
  lastLandedAt: 5000,
  updatedAt: 6000,
  reason: "never mind",
  result: { modelKey: "builds/b-0123456789abcdef/model.canopy", reportKey: "r", metrics: { task: "classification", accuracy: 0.5 } },
  tags: { team: "ml" },
};

describe("a build's counter <-> DynamoDB item", () => {
  it("round-trips a fresh and a busy counter exactly (absent optional fields stay absent; storage attributes are not fields)", () => {
    expect(itemToSummary(summaryToItem(fresh))).toEqual(fresh);
    expect(Object.keys(itemToSummary(summaryToItem(fresh)))).not.toContain("result");
    expect(itemToSummary(summaryToItem(busy, { expiresAt: 99 }))).toEqual(busy);
    expect(itemToSummary(summaryToItem(fresh, { open: true }))).toEqual(fresh);
    const nullMetrics = { ...busy, result: { ...busy.result!, metrics: null } };
    expect(itemToSummary(summaryToItem(nullMetrics))).toEqual(nullMetrics);
  });

  it("stores what conditions, the stream filter and the open-builds index read as top-level attributes", () => {
    const item = summaryToItem(busy, { open: true, expiresAt: 1234 });
    expect(item.status).toEqual({ S: "COMPLETED" });
    expect(item.remaining).toEqual({ N: "0" });
    expect(item[OPEN_BUILDS_INDEX.hashKey]).toEqual({ S: "1" });
    expect(item[OPEN_BUILDS_INDEX.rangeKey]).toEqual({ N: "1000" });
    expect(item[TTL_ATTRIBUTE]).toEqual({ N: "1234" });
    // No list of groves in the counter.
    expect(Object.keys(item).filter((k) => ["landed", "failed", "groveStats", "failures"].includes(k))).toEqual([]);
  });

  it("keeps a grove's entry in an item of its own, keyed by build and grove", () => {
    const landed: SettledGrove = { grove: 12, outcome: "landed", stats: groveStats(12) };
    const failed: SettledGrove = { grove: 7, outcome: "failed", error: "TaskError: pack missing" };
    expect(groveKey("b-0123456789abcdef", 12)).toBe("b-0123456789abcdef#00012");
    for (const entry of [landed, failed]) {
      const item = entryToItem("b-0123456789abcdef", entry, 777);
      expect(item.buildId).toEqual({ S: groveKey("b-0123456789abcdef", entry.grove) });
      expect(item.build).toEqual({ S: "b-0123456789abcdef" });
      expect(item[TTL_ATTRIBUTE]).toEqual({ N: "777" });
      expect(itemToEntry(item)).toEqual(entry);
      // An entry is not a build: it has no status or remaining, so the stream filter and the feed skip it.
      expect(isBuildItem(item)).toBe(false);
      expect(changeFromStreamRecord({ eventName: "INSERT", dynamodb: { NewImage: item } })).toBeUndefined();
    }
  });

  it("refuses items that are not counters", () => {
    expect(isBuildItem({ buildId: { S: "b-1" } })).toBe(false);
    expect(isBuildItem({ ...summaryToItem(fresh), status: { S: "DONE" } })).toBe(false);
    expect(isBuildItem({ ...summaryToItem(fresh), buildId: { S: "alias#prod" } })).toBe(false);
    expect(() => itemToSummary({ buildId: { S: "b-1" } })).toThrow(/"b-1" is not a Canopy build counter/);
  });

  it("reads a counter written before the entries were kept apart (every grove in the item), counts derived", () => {
    const legacy: Item = {
      ...marshall({ buildId: fresh.buildId, status: "COMPLETED", total: 3, remaining: 0, tolerated: 1, failedCount: 1, createdAt: 1, updatedAt: 2, tags: {} }),
      landed: { NS: ["0", "2"] },
      failedGroves: { NS: ["1"] },
      failures: { M: { "1": { S: "boom" } } },
      groveStats: { M: { "0": { M: marshall(groveStats(0)) }, "2": { M: marshall(groveStats(2)) } } },
    };
    expect(itemToSummary(legacy)).toMatchObject({ landedCount: 2, failedCount: 1, treesLanded: 10, remaining: 0 });
    expect(itemToSummary(legacy)).not.toHaveProperty("landed");
    expect(legacyEntries(legacy).map((e) => [e.grove, e.outcome])).toEqual([[0, "landed"], [2, "landed"], [1, "failed"]]);
    expect(legacyEntries(summaryToItem(fresh))).toEqual([]);
  });
});

describe("itemSize: DynamoDB's item size rules", () => {
  // Worked by hand from the rules in the DynamoDB developer guide ("Item sizes and formats").
  it.each<[string, Item, number]>([
    ["a string: name + UTF-8 bytes", { name: { S: "Canopy" } }, 4 + 6],
    ["multi-byte UTF-8", { "é": { S: "日本" } }, 2 + 6],
    ["a number: 1 byte per 2 significant digits + 1", { n: { N: "12345" } }, 1 + 3 + 1],
    ["leading and trailing zeros do not count", { n: { N: "000120.5000" } }, 1 + 2 + 1],
    ["sign, point and exponent do not count", { n: { N: "-1.5E+10" } }, 1 + 1 + 1],
    ["binary: raw bytes", { b: { B: new Uint8Array(10) } }, 1 + 10],
    ["boolean and null: 1 byte", { t: { BOOL: true }, z: { NULL: true } }, 2 + 2],
    ["a number set: its numbers", { ns: { NS: ["1", "22", "333"] } }, 2 + 2 + 2 + 3],
    ["a string set: its strings", { ss: { SS: ["ab", "c"] } }, 2 + 3],
    ["an empty map: 3 bytes", { m: { M: {} } }, 1 + 3],
    ["a map: 3 + per element 1 + key + value", { m: { M: { a: { S: "xy" }, bb: { N: "7" } } } }, 1 + 3 + (1 + 1 + 2) + (1 + 2 + 2)],
    ["a list: 3 + per element 1 + value", { l: { L: [{ S: "abc" }, { BOOL: false }] } }, 1 + 3 + (1 + 3) + (1 + 1)],
    ["nested", { m: { M: { l: { L: [{ M: {} }] } } } }, 1 + 3 + (1 + 1 + (3 + (1 + 3)))],
  ])("%s", (_what, item, size) => {
    expect(itemSize(item)).toBe(size);
  });

  it("charges a write per started KB of the larger image, twice in a transaction", () => {
    const small = { buildId: { S: "x" } };
    const kb = { buildId: { S: "x".repeat(1024 - "buildId".length) } };
    expect(itemSize(kb)).toBe(1024);
    expect(writeUnits(undefined, small)).toBe(1);
    expect(writeUnits(small, kb)).toBe(1);
    expect(writeUnits(kb, { buildId: { S: "x".repeat(1025 - "buildId".length) } })).toBe(2);
    expect(writeUnits(kb, small, { transactional: true })).toBe(2);
  });
});

describe("changeFromStreamRecord", () => {
  const item = summaryToItem(fresh, { open: true });
  const training = summaryToItem({ ...fresh, status: "TRAINING", updatedAt: 2000 }, { open: true });

  it("turns INSERT and MODIFY images of a counter into ledger changes", () => {
    expect(changeFromStreamRecord({ eventName: "INSERT", dynamodb: { NewImage: item } })).toEqual({ new: fresh });
    expect(changeFromStreamRecord({ eventName: "MODIFY", dynamodb: { OldImage: item, NewImage: training } })).toEqual({
      old: fresh,
      new: { ...fresh, status: "TRAINING", updatedAt: 2000 },
    });
  });

  it("skips REMOVEs (a TTL deletion too) and moto's key-only INSERT from an item-creating UpdateItem", () => {
    expect(changeFromStreamRecord({ eventName: "REMOVE", dynamodb: { OldImage: item } })).toBeUndefined();
    expect(changeFromStreamRecord({ eventName: "INSERT", dynamodb: { NewImage: { buildId: { S: fresh.buildId } } } })).toBeUndefined();
    expect(changeFromStreamRecord({ eventName: "MODIFY", dynamodb: { OldImage: { buildId: { S: fresh.buildId } }, NewImage: item } })).toEqual({
      new: fresh,
    });
  });
});
