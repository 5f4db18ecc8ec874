import { describe, expect, it } from "vitest";
import { billedGbSeconds, buildCost, DEFAULT_PRICES, pricesFromEnv, requestCounts } from "../src/cost.ts";
import type { GroveReport } from "../src/report.ts";

function grove(n: number, t0: number, ms: { wait: number; load: number; train: number; store: number }, extra: Partial<GroveReport> = {}): GroveReport {
  const startedAt = t0 + ms.wait;
  const loadedAt = startedAt + ms.load;
  const trainedAt = loadedAt + ms.train;
  const storedAt = trainedAt + ms.store;
  return {
    grove: n, treeStart: n * 5, treeEnd: n * 5 + 5, trees: 5, nodes: 100, bytes: 1000,
    queuedAt: t0, startedAt, loadedAt, trainedAt, storedAt, landedAt: storedAt + 1, packCached: false, digest: "0".repeat(64),
    waitMs: ms.wait, loadMs: ms.load, trainMs: ms.train, storeMs: ms.store, ...extra,
  };
}

describe("cost accounting", () => {
  it("bills whole milliseconds times memory in GB, and nothing without a memory size", () => {
    expect(billedGbSeconds(1000, 1024)).toBe(1);
    expect(billedGbSeconds(1500.2, 512)).toBeCloseTo(0.7505, 10); // 1501 ms at half a GB
    expect(billedGbSeconds(1000, undefined)).toBe(0);
  });

  it("splits each grove's time into queue wait, data load, compute and I/O and sums them", () => {
    const groves = [
      grove(0, 1000, { wait: 200, load: 300, train: 4000, store: 99 }, { memoryMb: 2048 }),
      grove(1, 1000, { wait: 1200, load: 10, train: 3000, store: 49 }, { memoryMb: 2048, packCached: true }),
    ];
    const cost = buildCost(groves);
    expect(cost.groves[0]).toEqual({ grove: 0, queueWaitS: 0.2, dataLoadS: 0.3, computeS: 4, ioS: 0.1, memoryMb: 2048, billedGbS: 8.8 });
    expect(cost.groves[1].billedGbS).toBeCloseTo((3060 / 1000) * 2, 10);
    expect(cost.totals.queueWaitS).toBeCloseTo(1.4, 10);
    expect(cost.totals.computeS).toBeCloseTo(7, 10);
    expect(cost.totals.billedGbS).toBeCloseTo(8.8 + 6.12, 10);
    expect(cost.usd.lambdaCompute).toBeCloseTo(cost.totals.billedGbS * DEFAULT_PRICES.lambdaGbSecond, 15);
    const parts = cost.usd.lambdaCompute + cost.usd.lambdaRequests + cost.usd.sqs + cost.usd.dynamodb + cost.usd.s3 + cost.usd.sns;
    expect(cost.usd.total).toBeCloseTo(parts, 15);
  });

  it("counts requests from the build's shape, failed groves included, cached packs saving a GET", () => {
    const groves = [grove(0, 0, { wait: 1, load: 1, train: 1, store: 1 }), grove(1, 0, { wait: 1, load: 1, train: 1, store: 1 }, { packCached: true })];
    const counts = requestCounts(groves, 1);
    // 3 tasks: 1 batch send + 3 receives + 3 deletes; 3 grove writes + create, start, claim, complete.
    expect(counts).toMatchObject({ lambda: 4, sqs: 7, dynamoWrites: 7, dynamoReads: 5, snsPublishes: 1 });
    expect(counts.s3Puts).toBe(2 + 2 + 2);
    expect(counts.s3Gets).toBe(1 + 1 + 2 + 1);
    expect(requestCounts([], 11).sqs).toBe(2 + 22);
  });

  it("takes overridden prices and the aggregator's own run", () => {
    const groves = [grove(0, 0, { wait: 0, load: 0, train: 999, store: 0 }, { memoryMb: 1024 })];
    const cost = buildCost(groves, { prices: { lambdaGbSecond: 1 }, aggregator: { ms: 500, memoryMb: 2048 } });
    expect(cost.totals.billedGbS).toBeCloseTo(1 + 1, 10);
    expect(cost.usd.lambdaCompute).toBeCloseTo(2, 10);
    expect(cost.prices.sqsRequest).toBe(DEFAULT_PRICES.sqsRequest);
  });

  it("reads price overrides from CANOPY_PRICES and rejects typos in one line", () => {
    expect(pricesFromEnv({})).toEqual({});
    expect(pricesFromEnv({ CANOPY_PRICES: '{"lambdaGbSecond":0.0000133334}' })).toEqual({ lambdaGbSecond: 0.0000133334 });
    expect(() => pricesFromEnv({ CANOPY_PRICES: '{"lambdaGBs":1}' })).toThrow(/unknown price "lambdaGBs"/);
    expect(() => pricesFromEnv({ CANOPY_PRICES: '{"sqsRequest":-1}' })).toThrow("CANOPY_PRICES: sqsRequest must be a number >= 0");
    expect(() => pricesFromEnv({ CANOPY_PRICES: "cheap" })).toThrow("CANOPY_PRICES is not JSON");
  });
});
