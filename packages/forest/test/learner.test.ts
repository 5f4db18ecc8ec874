import { describe, expect, it } from "vitest";
import { sampleWeights } from "../src/bootstrap.ts";
import { allRows, fitForest } from "../src/fit.ts";
import { resolveParams, type FitParams } from "../src/options.ts";
import { buildPack, MISSING_BIN, type DatasetPack } from "../src/pack.ts";
import { Rng, treeSeed } from "../src/rng.ts";
import type { Dataset, Tree } from "../src/types.ts";
import { classification, depths, fixture, leafValue, leaves, nodeSamples, path, random, regression, rowsOf } from "./fixtures/data.ts";

/** One tree on all rows, no bootstrap, every feature at every split: the tree is fully determined by the data. */
function oneTree(ds: Dataset, params: FitParams = {}): Tree {
  return fitForest(buildPack(ds), { n_estimators: 1, bootstrap: false, max_features: "all", ...params }).trees[0];
}

/** 40 rows: x0 separates a (x0 <= 20) from b (x0 >= 21) perfectly; x1, x2 are noise. */
function perfect(seed = 1): Dataset {
  const rnd = random(seed);
  const n = 40;
  const x0 = Array.from({ length: n }, (_, i) => i + 1);
  const noise = () => Array.from({ length: n }, () => Math.round(rnd() * 1000) / 10);
  return classification([x0, noise(), noise()], x0.map((v) => (v <= 20 ? "a" : "b")));
}

/** 300 rows of three continuous features and labels that depend on them only loosely: trees grow deep. */
function noisy(seed = 2): Dataset {
  const rnd = random(seed);
  const n = 300;
  const cols = [0, 1, 2].map(() => Array.from({ length: n }, () => rnd()));
  const labels = cols[0].map((v, i) => (v + cols[1][i] + rnd() < 1.2 ? "a" : rnd() < 0.5 ? "b" : "c"));
  return classification(cols, labels);
}

const maxLeafDepth = (t: Tree) => Math.max(...leaves(t).map((l) => depths(t)[l]));

describe("learner: the best split on hand-made data", () => {
  it("splits at the perfect feature, threshold midway between the two values, pure leaves", () => {
    const t = oneTree(perfect());
    expect(t.nodeCount).toBe(3);
    expect(t.feature[0]).toBe(0);
    expect(t.threshold[0]).toBe(20.5);
    expect(t.thresholdBin[0]).toBe(19); // x0 has 40 distinct values: bin b holds x0 = b + 1
    expect(t.right[0]).toBe(2);
    expect(leafValue(t, 1, 2)).toEqual([1, 0]);
    expect(leafValue(t, 2, 2)).toEqual([0, 1]);
    // Weighted impurity decrease at the root: 40 rows × gini 0.5 → two pure children.
    expect(t.gain[0]).toBe(20);
  });

  it("finds the same perfect split with entropy", () => {
    const t = oneTree(perfect(), { criterion: "entropy" });
    expect(t.nodeCount).toBe(3);
    expect(t.feature[0]).toBe(0);
    expect(t.threshold[0]).toBe(20.5);
    expect(t.gain[0]).toBe(40); // 40 rows × 1 bit
  });

  it("never prefers a noise feature to the perfect one, whatever the bootstrap sample", () => {
    for (const criterion of ["gini", "entropy"] as const) {
      const forest = fitForest(buildPack(perfect(3)), { n_estimators: 30, max_features: "all", criterion, random_state: 5 });
      for (const t of forest.trees) {
        expect(t.feature[0]).toBe(0);
        expect(t.nodeCount).toBe(3);
        // Between the largest a and the smallest b drawn, so within the gap of the full data's values.
        expect(t.threshold[0]).toBeGreaterThanOrEqual(1.5);
        expect(t.threshold[0]).toBeLessThanOrEqual(39.5);
      }
    }
  });

  it("fits a regression step function exactly, best split first", () => {
    // y = 0 (x < 20), 3 (20 <= x < 40), 7 (x >= 40). Cutting at 39.5 leaves SSE 90; at 19.5 it leaves 160.
    const x = Array.from({ length: 60 }, (_, i) => i);
    const y = x.map((v) => (v < 20 ? 0 : v < 40 ? 3 : 7));
    const rnd = random(4);
    const ds = regression([Array.from({ length: 60 }, () => rnd()), x], y);
    const t = oneTree(ds, { max_depth: 2 });
    expect(t.feature[0]).toBe(1);
    expect(t.threshold[0]).toBe(39.5);
    expect(t.feature[1]).toBe(1);
    expect(t.threshold[1]).toBe(19.5);
    expect(t.nodeCount).toBe(5);
    expect(leaves(t).map((l) => leafValue(t, l, 1)[0])).toEqual([0, 3, 7]);
    const forest = fitForest(buildPack(ds), { n_estimators: 1, bootstrap: false, max_depth: 2 });
    expect(Array.from(forest.predict([[0.5, 5], [0.5, 25], [0.5, 45]]) as Float64Array)).toEqual([0, 3, 7]);
  });

  it("leaves hold the class distribution of the training rows that reach them", () => {
    const ds = noisy();
    const t = oneTree(ds, { max_depth: 4 });
    const rows = rowsOf(ds);
    const codes = (ds.target as { codes: Uint16Array }).codes;
    const tally = new Map<number, number[]>();
    rows.forEach((row, r) => {
      const leaf = path(t, row).at(-1)!;
      const c = tally.get(leaf) ?? [0, 0, 0];
      c[codes[r]]++;
      tally.set(leaf, c);
    });
    expect([...tally.keys()].sort((a, b) => a - b)).toEqual(leaves(t));
    for (const [leaf, counts] of tally) {
      const n = counts.reduce((a, b) => a + b, 0);
      const value = leafValue(t, leaf, 3);
      counts.forEach((c, k) => expect(value[k]).toBeCloseTo(c / n, 6));
    }
  });
});

describe("learner: stopping rules", () => {
  it("max_depth bounds the depth of every leaf", () => {
    const ds = noisy();
    expect(maxLeafDepth(oneTree(ds))).toBeGreaterThan(6);
    for (const max_depth of [1, 2, 3, 6]) {
      const t = oneTree(ds, { max_depth });
      expect(maxLeafDepth(t)).toBe(max_depth); // reached (the data is noisy) and never exceeded
    }
    expect(oneTree(ds, { max_depth: 1 }).nodeCount).toBe(3);
  });

  it("min_samples_leaf (count and fraction) bounds the training rows in every leaf", () => {
    const ds = noisy();
    const rows = rowsOf(ds);
    const leafRows = (t: Tree) => leaves(t).map((l) => nodeSamples(t, rows)[l]);
    expect(Math.min(...leafRows(oneTree(ds)))).toBe(1);
    for (const [min_samples_leaf, bound] of [
      [7, 7],
      [0.05, 15], // ceil(0.05 × 300)
    ]) {
      const counts = leafRows(oneTree(ds, { min_samples_leaf }));
      expect(Math.min(...counts)).toBeGreaterThanOrEqual(bound);
      expect(counts.reduce((a, b) => a + b, 0)).toBe(300);
    }
  });

  it("min_samples_split (count and fraction): only nodes with enough rows are split", () => {
    const ds = noisy();
    const rows = rowsOf(ds);
    const internalRows = (t: Tree) => {
      const counts = nodeSamples(t, rows);
      return counts.filter((_, i) => t.feature[i] >= 0);
    };
    expect(Math.min(...internalRows(oneTree(ds)))).toBeLessThan(30);
    expect(Math.min(...internalRows(oneTree(ds, { min_samples_split: 30 })))).toBeGreaterThanOrEqual(30);
    expect(Math.min(...internalRows(oneTree(ds, { min_samples_split: 0.2 })))).toBeGreaterThanOrEqual(60);
    // A node as large as the whole data set is not split when the threshold exceeds it.
    expect(oneTree(ds, { min_samples_split: 301 }).nodeCount).toBe(1);
  });

  it("min_impurity_decrease: a split must decrease the weighted impurity by at least the value", () => {
    // The perfect split decreases gini by exactly 0.5 (0.5 → 0): allowed at 0.5, refused above.
    expect(oneTree(perfect(), { min_impurity_decrease: 0.5 }).nodeCount).toBe(3);
    expect(oneTree(perfect(), { min_impurity_decrease: 0.51 }).nodeCount).toBe(1);
    expect(oneTree(noisy(), { min_impurity_decrease: 10 }).nodeCount).toBe(1);
    const ds = noisy();
    const n = ds.nRows;
    const free = oneTree(ds);
    const gains = (t: Tree) => Array.from(t.gain).filter((_, i) => t.feature[i] >= 0).map((g) => g / n);
    expect(Math.min(...gains(free))).toBeLessThan(0.005);
    const pruned = oneTree(ds, { min_impurity_decrease: 0.005 });
    expect(pruned.nodeCount).toBeGreaterThan(1);
    expect(pruned.nodeCount).toBeLessThan(free.nodeCount);
    for (const g of gains(pruned)) expect(g).toBeGreaterThanOrEqual(0.005 * (1 - 1e-6)); // gains are float32
  });

  it("a constant feature gives a single leaf", () => {
    const t = oneTree(classification([[1, 1, 1, 1]], ["a", "b", "b", "b"]));
    expect(t.nodeCount).toBe(1);
    expect(leafValue(t, 0, 2)).toEqual([0.25, 0.75]);
  });
});

describe("learner: class_weight", () => {
  // 90 a, 10 b. Feature A puts all b and 30 a left; feature B puts 5 b alone left. Unweighted gini prefers B
  // (impurity left behind 9.47 vs 15); with balanced weights (a: 100/180, b: 100/20) A wins (25 vs 33.3).
  // scikit-learn 1.9.1 DecisionTreeClassifier(max_depth=1) chooses the same way on this data.
  const labels = [...new Array<string>(10).fill("b"), ...new Array<string>(90).fill("a")];
  const A = [...new Array<number>(40).fill(0), ...new Array<number>(60).fill(1)];
  const B = [...new Array<number>(5).fill(0), ...new Array<number>(95).fill(1)];
  const ds = classification([A, B], labels);

  it("without weights: the split isolating 5 b, leaves hold plain class frequencies", () => {
    const t = oneTree(ds, { max_depth: 1 });
    expect(t.feature[0]).toBe(1);
    expect(t.threshold[0]).toBe(0.5);
    expect(leafValue(t, 1, 2)).toEqual([0, 1]);
    expect(leafValue(t, 2, 2)).toEqual([Math.fround(90 / 95), Math.fround(5 / 95)]);
  });

  it('"balanced": the split sklearn chooses, leaves hold weighted class frequencies', () => {
    const t = oneTree(ds, { max_depth: 1, class_weight: "balanced" });
    expect(t.feature[0]).toBe(0);
    expect(t.threshold[0]).toBe(0.5);
    // Left: 30 a × 100/180 and 10 b × 5 → [0.25, 0.75]; right: 60 a only.
    const [a, b] = leafValue(t, 1, 2);
    expect(a).toBeCloseTo(0.25, 6);
    expect(b).toBeCloseTo(0.75, 6);
    expect(leafValue(t, 2, 2)).toEqual([1, 0]);
  });

  it('"balanced" makes a single leaf 50/50 on imbalanced data, also with a bootstrap', () => {
    const flat = classification([new Array<number>(100).fill(1)], labels);
    expect(leafValue(oneTree(flat), 0, 2)).toEqual([0.9, 0.1].map(Math.fround));
    const [a, b] = leafValue(oneTree(flat, { class_weight: "balanced" }), 0, 2);
    expect(a).toBeCloseTo(0.5, 6);
    expect(b).toBeCloseTo(0.5, 6);
    // With a bootstrap, weights come from the training rows' class counts, times the draw counts.
    const boot = fitForest(buildPack(flat), { n_estimators: 5, class_weight: "balanced", random_state: 1 });
    for (const t of boot.trees) expect(t.nodeCount).toBe(1);
    const unweighted = fitForest(buildPack(flat), { n_estimators: 5, random_state: 1 });
    const bShare = (f: typeof boot) => f.trees.reduce((s, t) => s + t.values[1], 0) / f.trees.length;
    expect(bShare(boot)).toBeGreaterThan(0.3);
    expect(bShare(unweighted)).toBeLessThan(0.2);
  });
});

describe("learner: bootstrap and max_samples", () => {
  // Unique x and y: a fully grown tree has one leaf per distinct bootstrapped row, valued at that row's y.
  const n = 200;
  const x = Array.from({ length: n }, (_, i) => i);
  const ds = regression([x], x.map((v) => v * 3 + 1));
  const pack = buildPack(ds);
  const grown = (params: FitParams) => fitForest(pack, { n_estimators: 3, random_state: 7, ...params }).trees;
  const leafYs = (t: Tree) => leaves(t).map((l) => leafValue(t, l, 1)[0]);

  it("draws max_samples rows (integer count or round(fraction × n)) with replacement", () => {
    for (const t of grown({})) {
      // Distinct rows in n draws of n: about 63%.
      expect(leaves(t).length).toBeGreaterThan(100);
      expect(leaves(t).length).toBeLessThan(150);
    }
    for (const t of grown({ max_samples: 5 })) {
      expect(leaves(t).length).toBeGreaterThanOrEqual(1);
      expect(leaves(t).length).toBeLessThanOrEqual(5);
      for (const y of leafYs(t)) expect((y - 1) % 3).toBe(0); // a training row's own y
    }
    for (const t of grown({ max_samples: 0.1 })) expect(leaves(t).length).toBeLessThanOrEqual(20);
    // A fraction is a count of round(fraction × n) draws: 0.1 of 200 rows draws exactly what 20 does.
    const byFraction = grown({ max_samples: 0.1 });
    const byCount = grown({ max_samples: 20 });
    byFraction.forEach((t, i) => expect(Array.from(t.threshold)).toEqual(Array.from(byCount[i].threshold)));
    expect(leafYs(byFraction[0])).not.toEqual(leafYs(grown({ max_samples: 21 })[0]));
  });

  it("without bootstrap every row is used once: one leaf per row", () => {
    for (const t of grown({ bootstrap: false })) expect(leafYs(t)).toEqual(x.map((v) => v * 3 + 1));
  });

  it("bootstrap false with every feature gives the same tree whatever the seed", () => {
    const rnd = random(9);
    const m = 200;
    const cols = [0, 1, 2, 3].map(() => Array.from({ length: m }, () => rnd()));
    const y = cols[0].map((v, i) => Math.sin(6 * v) + cols[1][i] * cols[2][i] + 0.1 * rnd());
    const data = buildPack(regression(cols, y));
    const strip = (t: Tree) => ({ ...t, index: 0 });
    const reference = strip(fitForest(data, { n_estimators: 1, bootstrap: false, min_samples_leaf: 5, random_state: 0 }).trees[0]);
    expect(reference.nodeCount).toBeGreaterThan(20);
    for (const random_state of [1, 2, 12345]) {
      const forest = fitForest(data, { n_estimators: 3, bootstrap: false, min_samples_leaf: 5, random_state });
      for (const t of forest.trees) expect(strip(t)).toEqual(reference);
    }
  });
});

describe("learner: max_features", () => {
  it("accepts sqrt, log2, all, null, an integer and a fraction", () => {
    const pack = buildPack(noisy());
    for (const max_features of ["sqrt", "log2", "all", null, 2, 0.5, 1] as const) {
      const forest = fitForest(pack, { n_estimators: 2, max_features, max_depth: 3 });
      expect(forest.params.max_features).toBe(max_features ?? "all");
      for (const t of forest.trees) expect(t.nodeCount).toBeGreaterThan(1);
    }
  });

  it("1 means one feature per split: root features spread over all features", () => {
    const pack = buildPack(perfect());
    const roots = (params: FitParams) =>
      new Set(fitForest(pack, { n_estimators: 40, max_depth: 1, bootstrap: false, ...params }).trees.map((t) => t.feature[0]));
    expect([...roots({ max_features: 1 })].sort()).toEqual([0, 1, 2]);
    expect([...roots({ max_features: "all" })]).toEqual([0]);
  });

  it("keeps drawing past constant features until one that can split (as sklearn)", () => {
    const x = Array.from({ length: 30 }, (_, i) => i);
    const flat = new Array<number>(30).fill(4);
    const ds = classification([flat, flat, x, flat, flat], x.map((v) => (v < 12 ? "a" : "b")));
    const forest = fitForest(buildPack(ds), { n_estimators: 20, max_features: 1, bootstrap: false });
    for (const t of forest.trees) {
      expect(t.feature[0]).toBe(2);
      expect(t.threshold[0]).toBe(11.5);
    }
  });
});

describe("learner: missing values", () => {
  // a: x in 1..30; b: x in 31..60; 10 more rows with x missing, all of one class.
  function withMissing(missingClass: "a" | "b"): Dataset {
    const x: number[] = [];
    const labels: string[] = [];
    for (let v = 1; v <= 60; v++) {
      x.push(v);
      labels.push(v <= 30 ? "a" : "b");
    }
    for (let i = 0; i < 10; i++) {
      x.push(NaN);
      labels.push(missingClass);
    }
    return classification([x], labels);
  }

  it("routes missing values to the side of their class", () => {
    for (const [cls, left] of [
      ["a", 1],
      ["b", 0],
    ] as const) {
      const ds = withMissing(cls);
      const t = oneTree(ds);
      expect(t.nodeCount).toBe(3);
      expect(t.threshold[0]).toBe(30.5);
      expect(t.missingLeft[0]).toBe(left);
      const forest = fitForest(buildPack(ds), { n_estimators: 1, bootstrap: false });
      expect(forest.predict([[NaN], [1], [60]])).toEqual([cls, "a", "b"]);
      // The binned path agrees: the missing rows' bin is MISSING_BIN and they are predicted the same.
      const pack = buildPack(ds);
      expect(pack.bins[65]).toBe(MISSING_BIN);
      expect(forest.predictPack(pack, Uint32Array.from([65, 0, 59]))).toEqual([cls, "a", "b"]);
    }
  });

  it("splits missing from present values when that is the only signal", () => {
    const x = [...new Array<number>(20).fill(5), ...new Array<number>(20).fill(NaN)];
    const ds = classification([x], [...new Array<string>(20).fill("a"), ...new Array<string>(20).fill("b")]);
    const t = oneTree(ds);
    expect(t.nodeCount).toBe(3);
    const forest = fitForest(buildPack(ds), { n_estimators: 1, bootstrap: false });
    expect(forest.predict([[5], [NaN], [-1e300], [1e300]])).toEqual(["a", "b", "a", "a"]);
  });

  it("a feature never missing in training sends missing values to the larger child", () => {
    for (const [nA, larger] of [
      [30, "b"],
      [70, "a"],
    ] as const) {
      const x = Array.from({ length: 100 }, (_, i) => i);
      const ds = classification([x], x.map((v) => (v < nA ? "a" : "b")));
      const t = oneTree(ds);
      expect(t.threshold[0]).toBe(nA - 0.5);
      expect(t.missingLeft[0]).toBe(larger === "a" ? 1 : 0);
      const forest = fitForest(buildPack(ds), { n_estimators: 1, bootstrap: false });
      expect(forest.predict([[NaN]])).toEqual([larger]);
    }
  });
});

// ---- an exhaustive oracle: with every feature at every split and no bootstrap, each node must take a split
// of maximal impurity decrease among all valid ones (ties aside), and a node left as a leaf although the
// stopping rules allowed a split must have no valid split at all. ---------------------------------------------

type Criterion = "gini" | "entropy" | "squared_error";

/** Impurity of statistics s (class counts, or [n, sum y, sum y²]) over n samples, as sklearn defines them. */
function impurityOf(criterion: Criterion, s: Float64Array, n: number): number {
  if (n === 0) return 0;
  if (criterion === "squared_error") return Math.max(0, s[2] / n - (s[1] / n) ** 2);
  let g = criterion === "gini" ? 1 : 0;
  for (const c of s) {
    const p = c / n;
    if (criterion === "gini") g -= p * p;
    else if (p > 0) g -= p * Math.log2(p);
  }
  return g;
}

/**
 * The largest weighted impurity decrease over every feature, bin threshold and missing-value direction, with
 * sample weights `weight` (min_samples_leaf counts rows, as sklearn's).
 */
function bestDecrease(pack: DatasetPack, rows: number[], weight: Float64Array, criterion: Criterion, minLeaf: number): number {
  const width = pack.target.task === "classification" ? pack.target.classes.length : 3;
  const statsOf = (r: number, into: Float64Array, o: number) => {
    const w = weight[r];
    if (pack.target.task === "classification") into[o + pack.target.codes[r]] += w;
    else {
      const y = pack.target.values[r];
      into[o] += w;
      into[o + 1] += w * y;
      into[o + 2] += w * y * y;
    }
  };
  const weightOf = (st: Float64Array) => (pack.target.task === "classification" ? st.reduce((a, b) => a + b, 0) : st[0]);
  const total = new Float64Array(width);
  for (const r of rows) statsOf(r, total, 0);
  const n = rows.length;
  const w = weightOf(total);
  const base = w * impurityOf(criterion, total, w);
  let best = -Infinity;
  const hist = new Float64Array(256 * width);
  const cnt = new Int32Array(256);
  const left = new Float64Array(width);
  const right = new Float64Array(width);
  const consider = (l: Float64Array, nl: number) => {
    if (nl < minLeaf || n - nl < minLeaf) return;
    for (let c = 0; c < width; c++) right[c] = total[c] - l[c];
    const lw = weightOf(l);
    const d = base - lw * impurityOf(criterion, l, lw) - (w - lw) * impurityOf(criterion, right, w - lw);
    if (d > best) best = d;
  };
  for (let f = 0; f < pack.nFeatures; f++) {
    hist.fill(0);
    cnt.fill(0);
    for (const r of rows) {
      const b = pack.bins[f * pack.nRows + r];
      cnt[b]++;
      statsOf(r, hist, b * width);
    }
    const present: number[] = [];
    for (let b = 0; b < MISSING_BIN; b++) if (cnt[b] > 0) present.push(b);
    const nMissing = cnt[MISSING_BIN];
    left.fill(0);
    let nl = 0;
    present.forEach((b, k) => {
      for (let c = 0; c < width; c++) left[c] += hist[b * width + c];
      nl += cnt[b];
      const last = k === present.length - 1;
      if (!last || nMissing > 0) consider(left, nl); // missing values right
      if (nMissing > 0 && !last) {
        const withMissing = left.map((v, c) => v + hist[MISSING_BIN * width + c]);
        consider(withMissing, nl + nMissing);
      }
    });
  }
  return best;
}

/**
 * Checks every node of tree `t` grown on the pack's rows with sample weights `weight` (rows of weight 0 are not
 * in the tree's sample); returns the violations.
 */
function greedyViolations(pack: DatasetPack, t: Tree, criterion: Criterion, params: FitParams, weight: Float64Array): string[] {
  const minLeaf = params.min_samples_leaf ?? 1;
  const minSplit = params.min_samples_split ?? 2;
  const maxDepth = params.max_depth ?? Infinity;
  const depth = depths(t);
  const nodeRows: number[][] = Array.from({ length: t.nodeCount }, () => []);
  for (let r = 0; r < pack.nRows; r++) {
    if (weight[r] === 0) continue;
    let node = 0;
    for (;;) {
      nodeRows[node].push(r);
      const f = t.feature[node];
      if (f < 0) break;
      const b = pack.bins[f * pack.nRows + r];
      node = b <= t.thresholdBin[node] || (b === MISSING_BIN && t.missingLeft[node] === 1) ? node + 1 : t.right[node];
    }
  }
  const out: string[] = [];
  for (let i = 0; i < t.nodeCount; i++) {
    const rows = nodeRows[i];
    const best = bestDecrease(pack, rows, weight, criterion, minLeaf);
    if (t.feature[i] >= 0) {
      if (Math.abs(t.gain[i] - best) > 1e-5 * Math.max(1, best)) {
        out.push(`node ${i} (${rows.length} rows) splits on x${t.feature[i]} with decrease ${t.gain[i]}; the best is ${best}`);
      }
    } else if (depth[i] < maxDepth && rows.length >= Math.max(minSplit, 2 * minLeaf) && best > -Infinity) {
      // A leaf that could split is only right if it is pure.
      const classesOrValues = new Set(rows.map((r) => (pack.target.task === "classification" ? pack.target.codes[r] : pack.target.values[r])));
      if (classesOrValues.size > 1) out.push(`leaf ${i} (${rows.length} rows) could split (decrease ${best})`);
    }
  }
  return out;
}

describe("learner: every split is a best split (exhaustive check, every feature, no bootstrap)", () => {
  const cases: { name: string; data: () => Dataset; criterion: Criterion; params?: FitParams; seeds?: number[] }[] = [
    { name: "noisy, gini", data: () => noisy(), criterion: "gini" },
    { name: "noisy, entropy, min_samples_leaf 3", data: () => noisy(5), criterion: "entropy", params: { min_samples_leaf: 3 } },
    { name: "iris, gini", data: () => fixture("iris"), criterion: "gini" },
    { name: "diabetes, squared error", data: () => fixture("diabetes"), criterion: "squared_error" },
    {
      name: "noisy with 15% missing cells, gini",
      data: () => {
        const ds = noisy(6);
        const rnd = random(7);
        for (const c of ds.columns) for (let r = 0; r < c.length; r++) if (rnd() < 0.15) c[r] = NaN;
        return ds;
      },
      criterion: "gini",
    },
    {
      // Nodes of 4096 rows and more read the pack's columns instead of a row copy.
      name: "7000 rows with missing cells, entropy, max_depth 5",
      data: () => {
        const rnd = random(8);
        const cols = [0, 1, 2, 3, 4].map((f) => Array.from({ length: 7000 }, () => (rnd() < 0.1 ? NaN : f === 4 ? Math.floor(rnd() * 5) : rnd())));
        return classification(cols, cols[0].map((v, i) => ((v || 0.5) + cols[1][i] * rnd() > 0.8 ? "p" : cols[4][i] > 2 ? "q" : "r")));
      },
      criterion: "entropy",
      params: { max_depth: 5 },
      seeds: [0],
    },
    // Many pixels become constant deep in the tree: this exercises the splitter's memory of constant features.
    { name: "digits, gini", data: () => fixture("digits"), criterion: "gini", seeds: [0] },
  ];
  for (const { name, data, criterion, params = {}, seeds = [0, 1] } of cases) {
    it(name, () => {
      const pack = buildPack(data());
      const ones = new Float64Array(pack.nRows).fill(1);
      for (const random_state of seeds) {
        const forest = fitForest(pack, { n_estimators: 1, bootstrap: false, max_features: "all", criterion, random_state, ...params });
        expect(greedyViolations(pack, forest.trees[0], criterion, params, ones)).toEqual([]);
      }
    });
  }

  // With a bootstrap, a tree's sample weights are its rows' draw counts (times balanced class weights); they are
  // recomputed here from the tree's seed with the builder's own sampleWeights.
  const weighted: { name: string; data: () => Dataset; params: FitParams }[] = [
    { name: "bootstrap, iris", data: () => fixture("iris"), params: {} },
    { name: "bootstrap and balanced class weights, noisy", data: () => noisy(10), params: { class_weight: "balanced", min_samples_leaf: 2 } },
    { name: "bootstrap of 60% of the rows, diabetes", data: () => fixture("diabetes"), params: { max_samples: 0.6, max_depth: 8 } },
  ];
  for (const { name, data, params } of weighted) {
    it(name, () => {
      const pack = buildPack(data());
      const full: FitParams = { n_estimators: 3, max_features: "all", random_state: 4, ...params };
      const resolved = resolveParams(full, pack.target.task);
      const forest = fitForest(pack, full);
      for (const t of forest.trees) {
        const { weight } = sampleWeights(pack, allRows(pack.nRows), resolved, new Rng(treeSeed(resolved.random_state, t.index)));
        expect(weight.some((w) => w === 0)).toBe(true);
        expect(greedyViolations(pack, t, resolved.criterion, params, weight)).toEqual([]);
      }
    });
  }
});
