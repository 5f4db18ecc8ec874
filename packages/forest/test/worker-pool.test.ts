import { readFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { buildPack, fitForest, parseCsv, shuffledIndices } from "../src/index.ts";
import { TrainerPool } from "../src/worker-pool.ts";

const pack = buildPack(parseCsv(readFileSync(new URL("../../../test/fixtures/digits.csv", import.meta.url)), { label: "digit" }));

describe("TrainerPool", () => {
  const pool = new TrainerPool({ workers: 2 });
  afterAll(() => pool.close());

  it("trains on worker threads the same bytes as one thread", async () => {
    const rows = shuffledIndices(pack.nRows, 7).slice(0, 1200).sort();
    const params = { n_estimators: 12, random_state: 11 };
    const threaded = await pool.fit(pack, params, { rows });
    const single = fitForest(pack, params, { rows });
    expect(threaded.nTrees).toBe(12);
    expect(Buffer.from(threaded.toBinary()).equals(Buffer.from(single.toBinary()))).toBe(true);
  });

  it("trains groves of one build concurrently that merge into the one-piece forest", async () => {
    const params = { n_estimators: 9, random_state: 5 };
    const groves = await Promise.all([
      pool.fit(pack, params, { treeIndices: [6, 7, 8] }),
      pool.fit(pack, params, { treeIndices: [0, 1, 2, 3, 4, 5] }),
    ]);
    const { Forest } = await import("../src/index.ts");
    const merged = Forest.merge(groves);
    expect(Buffer.from(merged.toBinary()).equals(Buffer.from(fitForest(pack, params).toBinary()))).toBe(true);
  });

  it("reports a bad option before any thread starts", async () => {
    await expect(pool.fit(pack, { n_estimators: 0 })).rejects.toThrow(/n_estimators/);
  });

  it("refuses work after close", async () => {
    const closing = new TrainerPool({ workers: 1 });
    await closing.close();
    await expect(closing.fit(pack, { n_estimators: 1 })).rejects.toThrow(/closed/);
  });
});
