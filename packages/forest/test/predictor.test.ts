// The binned predictor (predictor.ts) against the model as stored: the leaf every row reaches by walking the
// stored arrays (fixtures' path()), its values summed tree by tree, must be exactly what predict returns, on every
// row kind (NaN, infinities, out-of-range values, -0), every block size remainder and forests mixing trees with
// and without categorical set splits.
import { describe, expect, it } from "vitest";
import { fitForest } from "../src/fit.ts";
import { Forest } from "../src/forest.ts";
import { buildPack, packRowCopy } from "../src/pack.ts";
import { BinnedTrees, PackRowSums } from "../src/predictor.ts";
import type { FeatureInfo } from "../src/schema.ts";
import type { Dataset, Tree } from "../src/types.ts";
import { classification, fixture, leafValue, path, random, regression } from "./fixtures/data.ts";

const SPECIALS = [NaN, Infinity, -Infinity, -0, 0, Number.MAX_VALUE, -Number.MAX_VALUE, 1e-300, 0.5, 16, 17, 255, 1e9, -1];

/** Rows of the dataset, then the same rows with a third of their cells replaced by special values. */
function probeRows(ds: Dataset, n: number, seed: number): number[][] {
  const rnd = random(seed);
  const rows: number[][] = [];
  for (let r = 0; r < n; r++) rows.push(ds.columns.map((c) => c[r % ds.nRows]));
  for (let r = 0; r < n; r++) rows.push(ds.columns.map((c) => (rnd() < 0.33 ? SPECIALS[Math.floor(rnd() * SPECIALS.length)] : c[Math.floor(rnd() * ds.nRows)])));
  return rows;
}

/** The leaf a raw row reaches, walking the stored arrays as the format documents them (categorical sets included). */
function leafOf(tree: Tree, row: number[]): number {
  const sets = tree.categorical;
  if (sets === undefined) {
    const p = path(tree, row);
    return p[p.length - 1];
  }
  let node = 0;
  while (tree.feature[node] >= 0) {
    const v = row[tree.feature[node]];
    const k = sets.set[node];
    let left: boolean;
    if (k < 0) left = Number.isNaN(v) ? tree.missingLeft[node] === 1 : v <= tree.threshold[node];
    else {
      const words = sets.bits.subarray(sets.bounds[k], sets.bounds[k + 1]);
      const known = Number.isInteger(v) && v >= 0 && v < words.length * 32;
      left = known ? ((words[v >>> 5] >>> (v & 31)) & 1) === 1 : tree.missingLeft[node] === 1;
    }
    node = left ? node + 1 : tree.right[node];
  }
  return node;
}

/** Per row, the tree-by-tree sum of its leaves' values (the reference walk), divided by the number of trees. */
function reference(forest: Forest, rows: number[][]): Float64Array {
  const k = forest.valueWidth;
  const out = new Float64Array(rows.length * k);
  for (const t of forest.trees) {
    rows.forEach((row, r) => {
      const v = leafValue(t, leafOf(t, row), k);
      for (let c = 0; c < k; c++) out[r * k + c] += v[c];
    });
  }
  for (let i = 0; i < out.length; i++) out[i] *= 1 / forest.trees.length;
  return out;
}

/** 400 rows of a category (6 codes) and a number, labelled by both: trees with and without categorical set splits. */
function categoryAndNumber(seed: number): { ds: Dataset; x: number[]; y: string[]; n: number } {
  const rnd = random(seed);
  const n = 400;
  const code = Array.from({ length: n }, () => Math.floor(rnd() * 6));
  const x = Array.from({ length: n }, () => rnd() * 10);
  const y = code.map((c, i) => ([1, 4].includes(c) !== x[i] > 5 ? "a" : "b"));
  const features: FeatureInfo[] = [
    { name: "x0", kind: "categorical", column: 0, categories: ["c0", "c1", "c2", "c3", "c4", "c5"] },
    { name: "x1", kind: "numeric", column: 1 },
  ];
  return { ds: { ...classification([code, x], y), features }, x, y, n };
}

const bits = (a: Float64Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length * 2));

/** Per pack row, the tree-by-tree sum of its leaves' values walking the stored bin thresholds, over the number of trees. */
function packReference(forest: Forest, pack: ReturnType<typeof buildPack>, rows: Uint32Array): Float64Array {
  const k = forest.valueWidth;
  const want = new Float64Array(rows.length * k);
  for (const t of forest.trees) {
    rows.forEach((r, i) => {
      let node = 0;
      while (t.feature[node] >= 0) {
        const b = pack.bins[t.feature[node] * pack.nRows + r];
        const left = b === 255 ? t.missingLeft[node] === 1 : b <= t.thresholdBin[node];
        node = left ? node + 1 : t.right[node];
      }
      leafValue(t, node, k).forEach((v, c) => (want[i * k + c] += v));
    });
  }
  for (let i = 0; i < want.length; i++) want[i] *= 1 / forest.trees.length;
  return want;
}

const binnable = (f: Forest) => BinnedTrees.of(f.trees, f.nFeatures, f.valueWidth) !== null;

describe("binned predictor: the same predictions as the stored trees, to the last bit", () => {
  it("classification with missing values (integer inputs: lookup tables): every row count from 1 to past a block", () => {
    const ds = fixture("digits");
    const rnd = random(5);
    const withMissing = { ...ds, columns: ds.columns.map((c) => c.map((v) => (rnd() < 0.1 ? NaN : v))) };
    // 30 trees: enough levels per row (about 8 a tree) for binning its ~60 features to pay, so the binned form is made.
    const forest = fitForest(buildPack(withMissing), { n_estimators: 30, random_state: 3 });
    expect(binnable(forest)).toBe(true);
    // Two trees walk ~16 levels a row: fewer than binning ~60 features costs, so they walk the stored trees.
    expect(binnable(fitForest(buildPack(withMissing), { n_estimators: 2, random_state: 3 }))).toBe(false);
    const rows = probeRows(withMissing, 300, 6);
    const want = reference(forest, rows);
    expect(bits(forest.predictProba(rows))).toEqual(bits(want));
    // Row counts that leave every remainder of the 8-row walk (LANES) and of a block.
    for (const n of [1, 2, 3, 4, 5, 7, 255, 257, 258, 259, 260, 261, 262, 600]) {
      const some = rows.slice(0, n);
      expect(bits(forest.predictProba(some))).toEqual(bits(want.subarray(0, n * forest.valueWidth)));
    }
    // One row at a time, as a server predicts.
    for (let r = 0; r < 40; r++) expect(bits(forest.predictProba([rows[r + 300]]))).toEqual(bits(want.subarray(r * 10 + 3000, r * 10 + 3010)));
 
    // Past a block (binnedBlockRows: 8,192 rows of ~64 features): the rows repeated, the second block a partial one.
    const many = Array.from({ length: 8192 + 777 }, (_, r) => rows[r % rows.length]);
    const tiled = new Float64Array(many.length * 10);
    for (let r = 0; r < many.length; r++) tiled.set(want.subarray((r % rows.length) * 10, (r % rows.length + 1) * 10), r * 10);
    expect(bits(forest.predictProba(many))).toEqual(bits(tiled));
  });

  it("regression on continuous values (binary search), a row-major matrix input and a loaded copy agree bit for bit", () => {
    const ds = fixture("diabetes");
    const forest = fitForest(buildPack(ds), { n_estimators: 5, random_state: 1, max_features: 0.5 });
    expect(binnable(forest)).toBe(true);
    const rows = probeRows(ds, 200, 7);
    const want = reference(forest, rows);
    const matrix = { data: Float64Array.from(rows.flat()), nRows: rows.length, nCols: ds.columns.length };
    expect(bits(forest.predict(matrix) as Float64Array)).toEqual(bits(want));
    expect(bits(Forest.load(forest.toBinary()).predict(rows) as Float64Array)).toEqual(bits(want));
  });

  it("a form made at a small batch grows its block for a larger one: the same predictions, memory for the batch held", () => {
    const ds = fixture("digits");
    const forest = fitForest(buildPack(ds), { n_estimators: 30, random_state: 3 });
    const rows = probeRows(ds, 1500, 14);
    const want = reference(forest, rows);
    const k = forest.valueWidth;
    // The forest's form is made at its first batch of 64 rows, then serves 3,000 (past a fourfold growth).
    expect(bits(forest.predictProba(rows.slice(0, 64)))).toEqual(bits(want.subarray(0, 64 * k)));
    expect(bits(forest.predictProba(rows))).toEqual(bits(want));
    expect(bits(forest.predictProba(rows.slice(100, 300)))).toEqual(bits(want.subarray(100 * k, 300 * k)));
    // Directly: the memory holds a block of the first batch's size until a larger batch comes.
    const memoryOf = (b: BinnedTrees) => (b as unknown as { kernels: { memory: { buffer: ArrayBuffer } } }).kernels.memory.buffer.byteLength;
    const small = BinnedTrees.of(forest.trees, forest.nFeatures, k, 64)!;
    const large = BinnedTrees.of(forest.trees, forest.nFeatures, k, rows.length)!;
    expect(memoryOf(small)).toBeLessThan(memoryOf(large));
    const data = Float64Array.from(rows.flat());
    expect(bits(small.sumRaw(data, rows.length))).toEqual(bits(large.sumRaw(data, rows.length)));
    expect(memoryOf(small)).toBe(memoryOf(large));
  });

  it("three classes: a pure leaf adds 1 to its class, another its values two at a time and the odd last one", () => {
    const ds = fixture("digits");
    const codes = ds.target.task === "classification" ? ds.target.codes : [];
    const labels = Array.from(codes, (c) => ["low", "mid", "high"][c % 3]);
    const three = { ...classification(ds.columns.map((c) => Array.from(c)), labels), features: ds.features };
    // Leaves of at least 3 samples: some of one class, some of several.
    const forest = fitForest(buildPack(three), { n_estimators: 30, random_state: 8, min_samples_leaf: 3 });
    expect(forest.valueWidth).toBe(3);
    expect(binnable(forest)).toBe(true);
    const leaves = forest.trees.flatMap((t) => Array.from({ length: t.values.length / 3 }, (_, i) => Array.from(t.values.subarray(3 * i, 3 * i + 3))));
    const pure = leaves.filter((v) => v.filter((x) => x === 1).length === 1 && v.filter((x) => Object.is(x, 0)).length === 2).length;
    expect(pure).toBeGreaterThan(leaves.length / 10);
    expect(pure).toBeLessThan(leaves.length * 0.9);
    // The first 300 rows are the table's own, without missing values (the walk without the missing term); the rest
    // hold NaN among other special values.
    const rows = probeRows(three, 300, 9);
    const want = reference(forest, rows);
    expect(rows.slice(0, 300).flat().some(Number.isNaN)).toBe(false);
    expect(bits(forest.predictProba(rows.slice(0, 300)))).toEqual(bits(want.subarray(0, 900)));
    expect(bits(forest.predictProba(rows))).toEqual(bits(want));
  });

  it("features binned by a table, by binary search and not at all in one forest: integers inside, at and past a table's ends", () => {
    const rnd = random(21);
    const n = 3000;
    // x0: small integers (a table); x1: integers over a range wider than a table holds (binary search); x2: reals;
    // x3: a constant no split uses.
    const x0 = Array.from({ length: n }, () => Math.floor(rnd() * 40) - 20);
    const x1 = Array.from({ length: n }, () => Math.floor(rnd() * 200_000));
    const x2 = Array.from({ length: n }, () => rnd() * 4 - 2);
    const x3 = Array(n).fill(7);
    const y = x0.map((v, i) => Math.abs(v) * 3 + (x1[i] % 1000) / 100 + Math.sin(x2[i] * 3) * 20 + rnd());
    const ds = regression([x0, x1, x2, x3], y);
    const forest = fitForest(buildPack(ds), { n_estimators: 40, random_state: 5, max_depth: 12 });
    expect(binnable(forest)).toBe(true);
    const rows = probeRows(ds, 400, 22);
    // Integers on every side of x0's table (its thresholds lie within -20..19) and non-integers among them.
    for (let v = -30; v <= 30; v++) rows.push([v, v * 7001, v / 10, 7], [v + 0.5, -v, v, v]);
    const want = reference(forest, rows);
    expect(bits(forest.predict(rows) as Float64Array)).toEqual(bits(want));
  });

  it("a feature with more than 254 distinct thresholds: not binned, the stored trees walked, same predictions", () => {
    const rnd = random(11);
    const x = Array.from({ length: 3000 }, () => rnd() * 100);
    const y = x.map((v) => Math.sin(v) + rnd() * 0.1);
    const ds = regression([x, x.map((v) => Math.round(v))], y);
    const forest = fitForest(buildPack(ds, { maxBins: 2000 }), { n_estimators: 3, random_state: 4 });
    expect(binnable(forest)).toBe(false);
    const rows = probeRows(ds, 300, 12);
    expect(bits(forest.predict(rows) as Float64Array)).toEqual(bits(reference(forest, rows)));
  });

  it("a forest mixing trees with and without categorical set splits (not binned), and single-leaf trees", () => {
    const { ds, x, y } = categoryAndNumber(9);
    const mixed = fitForest(buildPack(ds), { n_estimators: 12, random_state: 2, max_features: 1, max_depth: 1 });
    const plain = fitForest(buildPack(classification([x], y)), { n_estimators: 3, random_state: 2, max_depth: 2 });
    const stump = fitForest(buildPack(regression([Array(20).fill(1)], Array(20).fill(3))), { n_estimators: 2 });
    expect(mixed.trees.some((t) => t.categorical !== undefined)).toBe(true);
    expect(mixed.trees.some((t) => t.categorical === undefined && t.nodeCount > 1)).toBe(true);
    expect(stump.trees.every((t) => t.nodeCount === 1)).toBe(true);
    expect([binnable(mixed), binnable(plain), binnable(stump)]).toEqual([false, true, true]);
    const rows = probeRows(ds, 150, 8);
    expect(bits(mixed.predictProba(rows))).toEqual(bits(reference(mixed, rows)));
    const xs = rows.map((r) => [r[1]]);
    expect(bits(plain.predictProba(xs))).toEqual(bits(reference(plain, xs)));
    expect(Array.from(stump.predict(xs.slice(0, 9)) as Float64Array)).toEqual(Array(9).fill(3));
  });

  it("predictPack on a pack's bins: the stored bin thresholds, missing bins by missingLeft, any rows in any order", () => {
    const ds = fixture("digits");
    const rnd = random(13);
    const withMissing = { ...ds, columns: ds.columns.map((c) => c.map((v) => (rnd() < 0.1 ? NaN : v))) };
    const pack = buildPack(withMissing);
    const forest = fitForest(pack, { n_estimators: 6, random_state: 8 });
    expect(BinnedTrees.onPackBins(forest.trees, forest.nFeatures, forest.valueWidth)).not.toBeNull();
    const k = forest.valueWidth;
    const rows = Uint32Array.from({ length: 1031 }, () => Math.floor(rnd() * pack.nRows));
    const want = packReference(forest, pack, rows);
    expect(bits(forest.predictPackProba(pack, rows))).toEqual(bits(want));
    // A pack without missing values: its blocks take the walk that leaves out the missing bin's term.
    const clean = buildPack(ds);
    const plain = fitForest(clean, { n_estimators: 6, random_state: 8 });
    expect(clean.bins.includes(255)).toBe(false);
    expect(bits(plain.predictPackProba(clean, rows))).toEqual(bits(packReference(plain, clean, rows)));
    expect(bits(forest.predictPackProba(pack, rows.subarray(0, 7)))).toEqual(bits(want.subarray(0, 7 * k)));
    // One tree at a time on the rows' copy (how the trees curve walks a model), summed: the same values.
    const copy = packRowCopy(pack, rows)!;
    const sums = new Float64Array(rows.length * k);
    for (const t of forest.trees) {
      const one = new Forest(forest.task, forest.featureNames, forest.labelName, forest.classes, forest.params, [t]);
      const v = one.predictPackProba(pack, rows, copy);
      for (let i = 0; i < v.length; i++) sums[i] += v[i]!;
    }
    for (let i = 0; i < sums.length; i++) sums[i] *= 1 / forest.trees.length;
    expect(bits(sums)).toEqual(bits(want));
    // The same tree by tree straight into one array of sums (addPackLeaves, as the trees curve adds them).
    const added = new Float64Array(rows.length * k);
    for (const t of forest.trees) forest.addPackLeaves(t, pack, rows, copy, added);
    for (let i = 0; i < added.length; i++) added[i] *= 1 / forest.trees.length;
    expect(bits(added)).toEqual(bits(want));
    expect(() => forest.addPackLeaves(forest.trees[0]!, pack, rows, copy, new Float64Array(k))).toThrow(`${rows.length} rows need ${rows.length * k}`);
    expect(bits(forest.predictPackProba(pack, rows, copy))).toEqual(bits(want));
    expect(() => forest.predictPackProba(pack, rows.subarray(0, 7), copy)).toThrow("a row copy of other rows");
    // The copy is made from the pack's row-major bins when it has them (fitting made them), else from its columns.
    expect(pack.rowBins).toBeDefined();
    expect(packRowCopy({ ...pack, rowBins: undefined }, rows)!.bins).toEqual(copy.bins);
  });

  it("PackRowSums (the trees curve's walk): after every tree the sums addPackLeaves makes, through memories that grow, with and without missing bins", () => {
    const ds = fixture("digits");
    const rnd = random(17);
    const withMissing = { ...ds, columns: ds.columns.map((c) => c.map((v) => (rnd() < 0.1 ? NaN : v))) };
    for (const d of [ds, withMissing]) {
      const pack = buildPack(d);
      // Trees ever larger, from one leaf on: from 64 bytes of room, the memory grows more than once.
      const trees = [1, 2, 4, 8, null].flatMap((depth) => fitForest(pack, { n_estimators: 2, random_state: 3, max_depth: depth ?? undefined }).trees);
      const forest = fitForest(pack, { n_estimators: 1, random_state: 3 });
      const rows = Uint32Array.from({ length: 333 }, () => Math.floor(rnd() * pack.nRows));
      const k = forest.valueWidth;
      const walk = PackRowSums.of(pack, rows, k, 64)!;
      const copy = packRowCopy(pack, rows)!;
      expect(walk.copy.bins).toEqual(copy.bins);
      const added = new Float64Array(rows.length * k);
      const memories = new Set([walk.sums.buffer]);
      for (const t of trees) {
        forest.addPackLeaves(t, pack, rows, copy, added);
        expect(walk.add(t)).toBe(true);
        memories.add(walk.sums.buffer);
        expect(bits(walk.sums)).toEqual(bits(added));
        expect(walk.copy.bins).toEqual(copy.bins);
      }
      expect(trees[0]!.nodeCount).toBe(3);
      expect(copy.bins.includes(255)).toBe(d !== ds);
      expect(memories.size).toBeGreaterThan(3);
    }
  });

  it("PackRowSums leaves a tree with categorical set splits to the caller, who adds it on its copy into its sums", () => {
    const { ds, n } = categoryAndNumber(5);
    const pack = buildPack(ds);
    const forest = fitForest(pack, { n_estimators: 12, random_state: 2, max_features: 1, max_depth: 1 });
    expect(forest.trees.some((t) => t.categorical !== undefined)).toBe(true);
    expect(forest.trees.some((t) => t.categorical === undefined)).toBe(true);
    const rows = Uint32Array.from({ length: 101 }, (_, i) => (i * 3) % n);
    const walk = PackRowSums.of(pack, rows, 2)!;
    const want = new Float64Array(rows.length * 2);
    for (const t of forest.trees) {
      forest.addPackLeaves(t, pack, rows, null, want);
      const before = Float64Array.from(walk.sums);
      if (walk.add(t)) expect(t.categorical).toBeUndefined();
      else {
        expect(t.categorical).toBeDefined();
        expect(bits(walk.sums)).toEqual(bits(before));
        forest.addPackLeaves(t, pack, rows, walk.copy, walk.sums);
      }
      expect(bits(walk.sums)).toEqual(bits(want));
    }
  });

  it("predictPack with categorical set splits: a bin's bit, missing and codes past the set as missingLeft says", () => {
    const rnd = random(21);
    const n = 3000;
    // 40 categories (two words of a set), a tenth of them missing; the label depends on the category and x.
    const code = Array.from({ length: n }, () => (rnd() < 0.1 ? NaN : Math.floor(rnd() * 40)));
    const x = Array.from({ length: n }, () => (rnd() < 0.05 ? NaN : rnd() * 10));
    const y = code.map((c, i) => (c % 3 === 0) !== x[i]! > 5 ? 1.5 * (c % 7) : -2 + x[i]!);
    const features: FeatureInfo[] = [
      { name: "c", kind: "categorical", column: 0, categories: Array.from({ length: 40 }, (_, c) => `c${c}`) },
      { name: "x", kind: "numeric", column: 1 },
    ];
    const pack = buildPack({ ...regression([code, x], y.map((v) => (Number.isNaN(v) ? 0 : v))), features });
    const forest = fitForest(pack, { n_estimators: 8, random_state: 5, min_samples_leaf: 3 });
    expect(forest.trees.filter((t) => t.categorical !== undefined).length).toBeGreaterThan(4);
    // Rows as the pack holds them: the category's code (255 for missing) and x's bin, walked as the format says.
    const rows = Uint32Array.from({ length: 777 }, () => Math.floor(rnd() * pack.nRows));
    const want = new Float64Array(rows.length);
    for (const t of forest.trees) {
      rows.forEach((r, i) => {
        let node = 0;
        while (t.feature[node] >= 0) {
          const b = pack.bins[t.feature[node] * pack.nRows + r]!;
          const s = t.categorical?.set[node] ?? -1;
          let left: boolean;
          if (b === 255) left = t.missingLeft[node] === 1;
          else if (s < 0) left = b <= t.thresholdBin[node];
          else {
            const words = t.categorical!.bits.subarray(t.categorical!.bounds[s], t.categorical!.bounds[s + 1]);
            left = b < words.length * 32 ? ((words[b >>> 5] >>> (b & 31)) & 1) === 1 : t.missingLeft[node] === 1;
          }
          node = left ? node + 1 : t.right[node];
        }
        want[i] += leafValue(t, node, 1)[0]!;
      });
    }
    for (let i = 0; i < want.length; i++) want[i] *= 1 / forest.trees.length;
    expect(bits(forest.predictPack(pack, rows) as Float64Array)).toEqual(bits(want));
    // One tree at a time (how evaluation walks a model), on the pack's columns and on the rows' copy: each its own
    // walk, summed, the same values.
    const copy = packRowCopy(pack, rows)!;
    for (const using of [null, copy]) {
      const sums = new Float64Array(rows.length);
      for (const t of forest.trees) {
        const one = new Forest(forest.task, forest.featureNames, forest.labelName, forest.classes, forest.params, [t]);
        const v = one.predictPack(pack, rows, using) as Float64Array;
        for (let i = 0; i < v.length; i++) sums[i] += v[i]!;
      }
      for (let i = 0; i < sums.length; i++) sums[i] *= 1 / forest.trees.length;
      expect(bits(sums)).toEqual(bits(want));
    }
  });
});
