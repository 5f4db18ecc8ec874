import { parseBuildSpec, suggestGroveSize } from "@canopy/core";
import { describe, expect, it } from "vitest";
import { estimateSettings } from "../src/estimate-options.ts";
import { estimateBuilds, estimateJson, estimateText, workProfile, type Measurement } from "../src/estimate.ts";
import { UsageError } from "../src/errors.ts";

/** A measurement as measureGrove reports it: 5 trees, 0.4 s each once warm, a 50 MB pack. */
const MEASURED: Measurement = {
  rows: 70_000,
  features: 784,
  trainRows: 52_500,
  testRows: 17_500,
  packBytes: 50e6,
  trees: 5,
  trainPerTreeS: 0.4,
  warmupS: 0.5,
  packDecodeS: 0.4,
  loadS: 0.01,
  mergeS: 0.02,
  predictS: 0.125,
  evaluateS: 0.375,
  groveBytes: 1.5e6,
  buildId: "b-0123456789abcdef",
};

describe("the estimate's settings", () => {
  it("take a flag, else the deploy's CANOPY_* variable, else its default", () => {
    expect(estimateSettings({}, {})).toEqual({
      trainerMemoryMb: 1769,
      aggregatorMemoryMb: 3008,
      maxConcurrency: 100,
      minPollers: 2,
      maxPollers: 200,
      timeoutS: 120,
      cpuFactor: 1,
    });
    const env = { CANOPY_TRAINER_MEMORY_MB: "3008", CANOPY_TRAINER_MAX_CONCURRENCY: "500", CANOPY_TRAINER_TIMEOUT_SECONDS: "300" };
    expect(estimateSettings({}, env)).toMatchObject({ trainerMemoryMb: 3008, maxConcurrency: 500, timeoutS: 300 });
    expect(estimateSettings({ memory: 1024, concurrency: 20, minPollers: 10, cpuFactor: 1.5 }, env)).toMatchObject({
      trainerMemoryMb: 1024,
      maxConcurrency: 20,
      minPollers: 10,
      cpuFactor: 1.5,
    });
  });

  it.each([
    [{ memory: 64 }, '--memory must be an integer from 128 to 10240; got "64"'],
    [{ concurrency: 1 }, '--concurrency must be an integer from 2 to 1000; got "1"'],
    [{ maxPollers: 5000 }, '--max-pollers must be an integer from 2 to 2000; got "5000"'],
    [{ minPollers: 50, maxPollers: 10 }, "--min-pollers (50) must not exceed --max-pollers (10)"],
    [{ cpuFactor: 0 }, "--cpu-factor must be a number above 0 and at most 100; got 0"],
  ])("refuse %j in one line", (flags, message) => {
    expect(() => estimateSettings(flags, {})).toThrow(UsageError);
    expect(() => estimateSettings(flags, {})).toThrow(message);
  });
});

describe("the estimate of a build", () => {
  const spec = parseBuildSpec({ dataset: "fm.csv", n_estimators: 300, grove_size: 10 });
  const settings = estimateSettings({}, {});

  it("turns the measurement into one vCPU's work per tree, times the CPU factor", () => {
    expect(workProfile(MEASURED, 1)).toEqual({
      trainPerTreeS: 0.4,
      bytesPerTree: 300_000,
      packBytes: 50e6,
      packDecodeS: 0.4,
      warmupS: 0.5,
      loadPerTreeS: 0.002,
      mergePerTreeS: 0.004,
      evaluatePerTreeS: 0.025,
      evaluatePerPointS: 0.05,
    });
    const doubled = workProfile(MEASURED, 2);
    expect(doubled.trainPerTreeS).toBeCloseTo(0.8, 12);
    expect(doubled.packDecodeS).toBeCloseTo(0.8, 12);
    expect(doubled.bytesPerTree).toBe(300_000);
  });

  it("simulates 100, 1,000, 10,000 trees and --trees, in both modes of the trainer's mapping", () => {
    const r = estimateBuilds(spec, MEASURED, settings, 2000);
    expect(r.rows.map((row) => [row.trees, row.groveSize, row.estimate.groves, row.estimate.scaling.mode])).toEqual([
      [100, 10, 10, "default"],
      [100, 10, 10, "provisioned"],
      [300, 10, 30, "default"],
      [300, 10, 30, "provisioned"],
      [1000, 10, 100, "default"],
      [1000, 10, 100, "provisioned"],
      [10_000, 10, 1000, "default"],
      [10_000, 10, 1000, "provisioned"],
    ]);
    // More groves than a build may have: the grove size grows to fit.
    const few = estimateBuilds(spec, MEASURED, settings, 500);
    expect(few.rows.filter((row) => row.trees === 10_000).map((row) => [row.groveSize, row.estimate.groves])).toEqual([
      [20, 500],
      [20, 500],
    ]);
  });

  it("suggests, per mode, core's fastest and cheapest grove size for --trees within the trainer's timeout", () => {
    const r = estimateBuilds(spec, MEASURED, settings, 2000);
    for (const [i, scaling] of [{ mode: "default", maxConcurrency: 100 } as const, { mode: "provisioned", minPollers: 2, maxPollers: 200 } as const].entries()) {
      const expected = suggestGroveSize(
        { trees: 300, profile: workProfile(MEASURED, 1), trainer: { memoryMb: 1769, scaling }, aggregator: { memoryMb: 3008 } },
        { maxGroves: 2000, timeoutS: 120 },
      )!;
      expect(r.suggestions[i].mode).toBe(scaling.mode);
      expect(r.suggestions[i].fastest!.groveSize).toBe(expected.fastest.groveSize);
      expect(r.suggestions[i].cheapest!.groveSize).toBe(expected.cheapest.groveSize);
    }
    // Nothing trains within a 1 s timeout: said so, not suggested.
    const none = estimateBuilds(spec, MEASURED, { ...settings, timeoutS: 1 }, 2000);
    expect(none.suggestions.every((s) => s.fastest === undefined)).toBe(true);
    expect(estimateText(spec, "fm.csv", none)).toContain("default mode: no grove size trains within the timeout; raise CANOPY_TRAINER_TIMEOUT_SECONDS");
  });

  it("prints the measurement, the table, the suggestions and the standing cost of provisioned pollers; --json has the same numbers", () => {
    const r = estimateBuilds(spec, MEASURED, settings, 2000);
    const text = estimateText(spec, "fm.csv", r);
    expect(text).toContain("measured here: 5 trees of fm.csv (70,000 rows × 784 features, 52,500 train / 17,500 test) on one thread: 400 ms a tree once warm, 293.0 KB of grove a tree");
    expect(text).toMatch(/^trees +groves +grove size +trainer mapping +wall +trainers at once +cold starts +cost$/m);
    expect(text).toMatch(/^10,000 +1,000 +10 +provisioned \(2–200 pollers\) +\S+/m);
    expect(text).toMatch(/^ {2}default mode: fastest --grove-size \d+ \(.+, \$[\d.]+\); cheapest --grove-size \d+ \(.+, \$[\d.]+\)$/m);
    expect(text).toContain("provisioned mode also bills its 2 minimum pollers around the clock: $13.50 a month");
    const json = estimateJson(r) as { rows: { trees: number; wallS: number; cost: { usd: number } }[] };
    expect(json.rows.map((row) => row.wallS)).toEqual(r.rows.map((row) => row.estimate.wallS));
    expect(json.rows.map((row) => row.cost.usd)).toEqual(r.rows.map((row) => row.estimate.cost.usd));
  });
});
