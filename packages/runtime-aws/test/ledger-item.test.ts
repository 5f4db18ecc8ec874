import { newBuildRecord, type BuildRecord } from "@canopy/core";
import { groveStats } from "@canopy/core/testing";
import { describe, expect, it } from "vitest";
import { changeFromStreamRecord } from "../src/dynamo-ledger.ts";
import { isBuildItem, itemToRecord, recordToItem } from "../src/ledger-item.ts";

const fresh = newBuildRecord({ buildId: "b-0123456789abcdef", total: 4, tolerated: 1, now: 1000 });

const busy: BuildRecord = {
  ...fresh,
  status: "COMPLETED",
  remaining: 0,
  landed: [0, 2, 3],
  failed: [{ grove: 1, error: "TaskError: pack missing" }],
  groveStats: { 0: groveStats(0), 2: groveStats(2), 3: groveStats(3) },
  lastLandedAt: 5000,
  updatedAt: 6000,
  reason: "never mind",
  result: { modelKey: "builds/b-0123456789abcdef/model.canopy", reportKey: "r", metrics: { task: "classification", accuracy: 0.5 } },
  tags: { team: "ml" },
};

describe("build record <-> DynamoDB item", () => {
  it("round-trips a fresh and a busy record exactly (absent optional fields stay absent)", () => {
    expect(itemToRecord(recordToItem(fresh))).toEqual(fresh);
    expect(Object.keys(itemToRecord(recordToItem(fresh)))).not.toContain("result");
    expect(itemToRecord(recordToItem(busy))).toEqual(busy);
    const nullMetrics = { ...busy, result: { ...busy.result!, metrics: null } };
    expect(itemToRecord(recordToItem(nullMetrics))).toEqual(nullMetrics);
  });

  it("stores what conditions and the stream filter read as top-level scalars and number sets", () => {
    const item = recordToItem(busy);
    expect(item.status).toEqual({ S: "COMPLETED" });
    expect(item.remaining).toEqual({ N: "0" });
    expect(item.failedCount).toEqual({ N: "1" });
    expect(item.landed.NS?.map(Number).sort()).toEqual([0, 2, 3]);
    expect(item.failedGroves).toEqual({ NS: ["1"] });
    expect(item.failures).toEqual({ M: { "1": { S: "TaskError: pack missing" } } });
    // DynamoDB has no empty sets: a record with none leaves the attributes out.
    const empty = recordToItem(fresh);
    expect(empty.landed).toBeUndefined();
    expect(empty.failedGroves).toBeUndefined();
    expect(empty.failedCount).toEqual({ N: "0" });
  });

  it("refuses items that are not build records", () => {
    expect(isBuildItem({ buildId: { S: "b-1" } })).toBe(false);
    expect(isBuildItem({ ...recordToItem(fresh), status: { S: "DONE" } })).toBe(false);
    expect(() => itemToRecord({ buildId: { S: "b-1" } })).toThrow(/"b-1" is not a Canopy build record/);
  });
});

describe("changeFromStreamRecord", () => {
  const item = recordToItem(fresh);
  const training = recordToItem({ ...fresh, status: "TRAINING", updatedAt: 2000 });

  it("turns INSERT and MODIFY images into ledger changes", () => {
    expect(changeFromStreamRecord({ eventName: "INSERT", dynamodb: { NewImage: item } })).toEqual({ new: fresh });
    expect(changeFromStreamRecord({ eventName: "MODIFY", dynamodb: { OldImage: item, NewImage: training } })).toEqual({
      old: fresh,
      new: { ...fresh, status: "TRAINING", updatedAt: 2000 },
    });
  });

  it("skips REMOVEs and moto's key-only INSERT from an item-creating UpdateItem", () => {
    expect(changeFromStreamRecord({ eventName: "REMOVE", dynamodb: { OldImage: item } })).toBeUndefined();
    expect(changeFromStreamRecord({ eventName: "INSERT", dynamodb: { NewImage: { buildId: { S: fresh.buildId } } } })).toBeUndefined();
    expect(changeFromStreamRecord({ eventName: "MODIFY", dynamodb: { OldImage: { buildId: { S: fresh.buildId } }, NewImage: item } })).toEqual({
      new: fresh,
    });
  });
});
