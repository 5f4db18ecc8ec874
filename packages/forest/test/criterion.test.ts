import { describe, expect, it } from "vitest";
import { addRegressionSample, createCriterion, type CriterionName, type SampleTargets } from "../src/criterion.ts";
import { random } from "./fixtures/data.ts";

/** 40 weighted samples: 3 classes, or targets in [-5, 5); weights are bootstrap-like counts times a class weight. */
function samples(kind: "classification" | "regression", seed: number): SampleTargets {
  const rnd = random(seed);
  const n = 40;
  const weightAt = Float64Array.from({ length: n }, () => (1 + Math.floor(rnd() * 3)) * (rnd() < 0.3 ? 1.5 : 1));
  if (kind === "classification") return { codeAt: Uint16Array.from({ length: n }, () => Math.floor(rnd() * 3)), valueAt: null, weightAt };
  return { codeAt: null, valueAt: Float64Array.from({ length: n }, () => rnd() * 10 - 5), weightAt };
}

const CASES: { name: CriterionName; kind: "classification" | "regression"; nats: boolean }[] = [
  { name: "gini", kind: "classification", nats: false },
  { name: "entropy", kind: "classification", nats: true },
  { name: "squared_error", kind: "regression", nats: false },
];

describe("criteria", () => {
  for (const { name, kind, nats } of CASES) {
    it(`${name}: a sweep's proxy differs from the weighted impurity decrease by a constant, by samples and by bins`, () => {
      const s = samples(kind, 7);
      const criterion = createCriterion(name, 3, s);
      const n = s.weightAt.length;
      const total = new Float64Array(criterion.width);
      const w = criterion.nodeStats(0, n, total);
      const parent = w * criterion.impurity(total, w);
      // Entropy's proxy is in nats and its impurity in bits.
      const decreaseMinusProxy = (left: Float64Array, lw: number, proxy: number) => {
        const right = total.map((t, c) => t - left[c]);
        const decrease = parent - lw * criterion.impurity(left, lw) - (w - lw) * criterion.impurity(right, w - lw);
        return decrease - (nats ? proxy / Math.LN2 : proxy);
      };

      const bySample: number[] = [];
      criterion.reset(total, w);
      for (let i = 0; i < n - 1; i++) {
        criterion.addSample(i);
        const fresh = criterion.proxy(criterion.left, total, criterion.leftWeight, w - criterion.leftWeight);
        expect(criterion.proxyHere()).toBeCloseTo(fresh, 9);
        bySample.push(decreaseMinusProxy(criterion.left, criterion.leftWeight, criterion.proxyHere()));
      }
      for (const d of bySample) expect(d).toBeCloseTo(bySample[0], 9);
      // The left statistics of the last position are the node's minus its last sample.
      const last = new Float64Array(criterion.width);
      criterion.nodeStats(n - 1, n, last);
      criterion.left.forEach((v, c) => expect(v).toBeCloseTo(total[c] - last[c], 9));

      // The same sweep four samples at a time, each group added as one histogram bin.
      const bin = new Float64Array(criterion.width);
      criterion.reset(total, w);
      for (let i = 0; i + 4 < n; i += 4) {
        criterion.nodeStats(i, i + 4, bin);
        criterion.addBin(bin, 0);
        expect(criterion.leftWeight).toBeCloseTo(criterion.weightOf(criterion.left, 0), 9);
        expect(decreaseMinusProxy(criterion.left, criterion.leftWeight, criterion.proxyHere())).toBeCloseTo(bySample[0], 9);
      }
    });
  }

  it("impurities and leaf values as scikit-learn defines them", () => {
    const cls = createCriterion("gini", 3, samples("classification", 1));
    const counts = Float64Array.from([2, 1, 1]);
    expect(cls.impurity(counts, 4)).toBeCloseTo(1 - (0.25 + 0.0625 + 0.0625), 12);
    expect(createCriterion("entropy", 3, samples("classification", 1)).impurity(counts, 4)).toBeCloseTo(1.5, 12);
    const leaf = new Float32Array(5);
    cls.nodeValue(counts, 4, leaf, 2);
    expect(Array.from(leaf)).toEqual([0, 0, 0.5, 0.25, 0.25]);

    const reg = createCriterion("squared_error", 0, samples("regression", 1));
    const stats = new Float64Array(3);
    for (const y of [1, 2, 3, 6]) addRegressionSample(stats, 0, 2, y); // weight 2 each
    expect(reg.weightOf(stats, 0)).toBe(8);
    expect(reg.impurity(stats, 8)).toBeCloseTo(3.5, 12); // variance of 1, 2, 3, 6
    reg.nodeValue(stats, 8, leaf, 0);
    expect(leaf[0]).toBe(3);
    expect(reg.impurity(new Float64Array(3), 0)).toBe(0);
  });

  it("gini and squared error sweep one sample at a time in O(1); entropy does not", () => {
    expect(CASES.map(({ name, kind }) => createCriterion(name, 3, samples(kind, 1)).constantTimeProxy)).toEqual([true, false, true]);
  });
});
