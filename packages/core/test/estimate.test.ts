import { describe, expect, it } from "vitest";
import { buildCost, DEFAULT_PRICES } from "../src/cost.ts";
import {
  AWS_ASSUMPTIONS,
  cpuSlowdown,
  estimateFanout,
  groveSizeCandidates,
  suggestGroveSize,
  type FanoutAssumptions,
  type FanoutInput,
  type WorkProfile,
} from "../src/estimate.ts";

/** Every latency zero, so a test can compute the schedule by hand; the scaling rules stay AWS's. */
const INSTANT: Partial<FanoutAssumptions> = {
  deliveryS: 0,
  releaseS: 0,
  coldStartS: 0,
  aggregatorColdStartS: 0,
  dynamoRequestS: 0,
  s3RequestS: 0,
  s3ReadBytesPerS: Infinity,
  s3WriteBytesPerS: Infinity,
  sqsSendBatchS: 0,
  streamTriggerS: 0,
  snsPublishS: 0,
};

/** One second per tree, nothing else. */
const SECOND_A_TREE: WorkProfile = {
  trainPerTreeS: 1,
  bytesPerTree: 0,
  packBytes: 0,
  packDecodeS: 0,
  warmupS: 0,
  loadPerTreeS: 0,
  mergePerTreeS: 0,
  evaluatePerTreeS: 0,
  evaluatePerPointS: 0,
};

function fixed(concurrency: number, over: Partial<FanoutInput> = {}): FanoutInput {
  return {
    trees: 5,
    groveSize: 1,
    profile: SECOND_A_TREE,
    trainer: { memoryMb: 1769, scaling: { mode: "fixed", concurrency } },
    aggregator: { memoryMb: 3008 },
    assumptions: INSTANT,
    coldStarts: false,
    ...over,
  };
}

const landings = (e: ReturnType<typeof estimateFanout>) => e.groveStats.map((g) => g.landedAt / 1000);

describe("the fan-out simulation", () => {
  it("runs groves `concurrency` at a time: 5 one-second groves on 2 slots land at 1, 1, 2, 2, 3", () => {
    const e = estimateFanout(fixed(2));
    expect(landings(e)).toEqual([1, 1, 2, 2, 3]);
    expect(e).toMatchObject({ groves: 5, peakConcurrency: 2, containers: 2, longestGroveS: 1, wallS: 3 });
    expect(e.timeline).toEqual({ queuedS: 0, firstStartS: 0, landedS: 3, aggregatorStartS: 3, doneS: 3 });
  });

  it("starts each container cold once and reads the pack once per container", () => {
    const e = estimateFanout(fixed(2, { coldStarts: true, assumptions: { ...INSTANT, coldStartS: 0.5 }, profile: { ...SECOND_A_TREE, packDecodeS: 0.125, warmupS: 0.125 } }));
    // Cold containers start at 0.5, decode the pack and warm up (0.25 together) on their first grove; warm ones do neither.
    expect(landings(e)).toEqual([1.75, 1.75, 2.75, 2.75, 3.75]);
    expect(e.groveStats.map((g) => g.packCached)).toEqual([false, false, true, true, true]);
    expect(e.containers).toBe(2);
  });

  it("shares one CPU between concurrent trainers when told (the emulator's one thread): the groves serialise", () => {
    expect(landings(estimateFanout(fixed(2, { computeSlots: 1 })))).toEqual([1, 2, 3, 4, 5]);
    expect(landings(estimateFanout(fixed(2, { computeSlots: 2 })))).toEqual([1, 1, 2, 2, 3]);
  });

  it("slows single-threaded work below one full vCPU (1,769 MB) and not above it", () => {
    expect(cpuSlowdown(1769)).toBe(1);
    expect(cpuSlowdown(3008)).toBe(1);
    expect(cpuSlowdown(884.5)).toBe(2);
    expect(landings(estimateFanout(fixed(5, { trainer: { memoryMb: 884.5, scaling: { mode: "fixed", concurrency: 5 } } })))).toEqual([2, 2, 2, 2, 2]);
  });

  it("sends tasks in batches of 10, 4 batches in flight", () => {
    const e = estimateFanout(fixed(1000, { trees: 100, assumptions: { ...INSTANT, sqsSendBatchS: 0.1 } }));
    const queued = e.groveStats.map((g) => g.queuedAt / 1000);
    expect(queued.slice(0, 40).every((q) => q === 0.1)).toBe(true);
    expect(queued.slice(40, 80).every((q) => Math.abs(q - 0.2) < 1e-9)).toBe(true);
    expect(e.timeline.queuedS).toBeCloseTo(0.3, 9);
  });

  // 1,000 groves of 1,000 s: nothing finishes while the mapping ramps, so the peak shows the ramp alone.
  const wide = (scaling: FanoutInput["trainer"]["scaling"]) =>
    estimateFanout({ ...fixed(1), trees: 1000, profile: { ...SECOND_A_TREE, trainPerTreeS: 1000 }, trainer: { memoryMb: 1769, scaling } });

  it("ramps the default mode from 5 concurrent batches by 300 a minute up to the mapping's cap", () => {
    const e = wide({ mode: "default", maxConcurrency: 100 });
    expect(e.peakConcurrency).toBe(100);
    expect(e.peakAtS).toBeCloseTo(19, 9); // (100 - 5) / 5 per second
    const uncapped = wide({ mode: "default", maxConcurrency: 1000 });
    expect(uncapped.peakConcurrency).toBe(1000);
    expect(uncapped.peakAtS).toBeCloseTo(199, 9);
  });

  it("starts provisioned mode with 10 invocations per minimum poller and adds 1,000 a minute, within the account's 1,000", () => {
    const ready = wide({ mode: "provisioned", minPollers: 10, maxPollers: 10 });
    expect(ready).toMatchObject({ peakConcurrency: 100, peakAtS: 0 });
    const scaling = wide({ mode: "provisioned", minPollers: 10, maxPollers: 2000 });
    expect(scaling.peakConcurrency).toBe(AWS_ASSUMPTIONS.accountConcurrency);
    expect(scaling.peakAtS).toBeCloseTo(54, 9); // (1000 - 100) / (1000 / 60)
    // The same build finishes sooner than in the default mode, whose ramp is slower.
    expect(scaling.wallS).toBeLessThan(wide({ mode: "default", maxConcurrency: 1000 }).wallS);
  });

  it("prices the simulated groves with the cost model, plus billed inits and the pollers above the minimum", () => {
    const input: FanoutInput = {
      trees: 40,
      groveSize: 2,
      profile: { ...SECOND_A_TREE, packBytes: 8e6, packDecodeS: 0.2, bytesPerTree: 1e5, evaluatePerTreeS: 0.01 },
      trainer: { memoryMb: 1769, scaling: { mode: "provisioned", minPollers: 2, maxPollers: 200 } },
      aggregator: { memoryMb: 3008 },
    };
    const e = estimateFanout(input);
    const base = buildCost(e.groveStats, { aggregator: { ms: e.aggregateS * 1000, memoryMb: 3008 }, artifacts: 3 });
    const init = ((e.containers * AWS_ASSUMPTIONS.coldStartS * 1769 + AWS_ASSUMPTIONS.aggregatorColdStartS * 3008) / 1024) * DEFAULT_PRICES.lambdaGbSecond;
    expect(e.cost.lambdaCompute).toBe(base.usd.lambdaCompute);
    expect(e.cost.lambdaInit).toBeCloseTo(init, 15);
    expect(e.cost.usd).toBeCloseTo(base.usd.total + init + e.cost.pollers, 15);
    // 20 groves at once from 20 ready invocations (2 pollers) need 2 pollers: none above the minimum.
    expect(e.peakConcurrency).toBe(20);
    expect(e.cost.pollers).toBe(0);
    expect(e.cost.standingPollersPerMonth).toBeCloseTo(2 * 730 * 0.00925, 12);
    // 200 groves: up to 200 at once is 20 pollers, 18 above the minimum, for part of the build.
    const wider = estimateFanout({ ...input, trees: 400 });
    expect(wider.cost.pollers).toBeGreaterThan(0);
    expect(wider.cost.pollers).toBeLessThan((18 * wider.wallS * DEFAULT_PRICES.eventPollerHour) / 3600);
    expect(estimateFanout({ ...input, trainer: { memoryMb: 1769, scaling: { mode: "default", maxConcurrency: 100 } } }).cost.pollers).toBe(0);
  });

  it("times the aggregator: groves read one by one, the pack, merging and predicting per tree, scoring per curve point", () => {
    const profile: WorkProfile = { ...SECOND_A_TREE, trainPerTreeS: 0, loadPerTreeS: 0.001, mergePerTreeS: 0.002, evaluatePerTreeS: 0.003, evaluatePerPointS: 0.5, packDecodeS: 2 };
    // 1,000 trees: 6 ms a tree, and 500 curve points (not 1,000) at 0.5 s, plus the pack's decode; on one vCPU.
    expect(estimateFanout({ ...fixed(10), trees: 1000, profile }).aggregateS).toBeCloseTo(1000 * 0.006 + 500 * 0.5 + 2, 9);
    // 100 trees: every tree is a curve point.
    expect(estimateFanout({ ...fixed(10), trees: 100, profile }).aggregateS).toBeCloseTo(100 * 0.006 + 100 * 0.5 + 2, 9);
    const withRequests = estimateFanout({ ...fixed(10), trees: 100, profile, assumptions: { ...INSTANT, s3RequestS: 0.1 } });
    // The manifest, 100 groves, the pack and three artifacts: 105 S3 requests.
    expect(withRequests.aggregateS - (100 * 0.006 + 100 * 0.5 + 2)).toBeCloseTo(105 * 0.1, 9);
  });

  it("is deterministic", () => {
    const input = { ...fixed(1), trees: 300, groveSize: 7, trainer: { memoryMb: 1024, scaling: { mode: "default", maxConcurrency: 50 } as const }, assumptions: undefined, coldStarts: true };
    expect(estimateFanout(input)).toEqual(estimateFanout(input));
  });
});

describe("the grove size suggestion", () => {
  it("tries round sizes up to the trees, within the most groves a build may have", () => {
    expect(groveSizeCandidates(100, 2000)).toEqual([1, 2, 5, 10, 20, 25, 50, 100]);
    expect(groveSizeCandidates(10_000, 2000)).toEqual([5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10_000]);
    expect(groveSizeCandidates(7, 2000)).toEqual([1, 2, 5, 7]);
    expect(groveSizeCandidates(30, 2)).toEqual([20, 25, 30]);
  });

  it("picks the fastest and the cheapest of the sizes that finish within the trainer's timeout", () => {
    const input = {
      trees: 1000,
      profile: { ...SECOND_A_TREE, trainPerTreeS: 0.5, packBytes: 50e6, packDecodeS: 0.5, bytesPerTree: 3e5, evaluatePerTreeS: 0.01 },
      trainer: { memoryMb: 1769, scaling: { mode: "default", maxConcurrency: 100 } as const },
      aggregator: { memoryMb: 3008 },
    };
    const s = suggestGroveSize(input, { maxGroves: 2000, timeoutS: 120 })!;
    expect(s.fastest.wallS).toBe(Math.min(...s.tried.map((e) => e.wallS)));
    expect(s.cheapest.cost.usd).toBe(Math.min(...s.tried.map((e) => e.cost.usd)));
    // 0.5 s a tree: a grove of 250 trees (125 s) would outlive the 120 s timeout.
    expect(s.tried.map((e) => e.groveSize)).toEqual([1, 2, 5, 10, 20, 25, 50, 100, 200]);
    // Small groves pay a cold start and a pack read per container and more requests; large ones run fewer at once.
    expect(s.fastest.groveSize).toBeGreaterThan(1);
    expect(s.fastest.groveSize).toBeLessThan(200);
    expect(s.cheapest.groveSize).toBeGreaterThanOrEqual(s.fastest.groveSize);
    expect(suggestGroveSize(input, { maxGroves: 2000, timeoutS: 0.1 })).toBeUndefined();
  });
});
