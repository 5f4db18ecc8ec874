import { describe, expect, it } from "vitest";
import { fitForest } from "../src/fit.ts";
import { Forest } from "../src/forest.ts";
import type { FitParams } from "../src/options.ts";
import { buildPack } from "../src/pack.ts";
import { Rng, shuffledIndices, treeSeed } from "../src/rng.ts";
import type { Dataset } from "../src/types.ts";
import { classification, fixture, random } from "./fixtures/data.ts";

/** 7000 rows: about 4400 distinct in a bootstrap, so the root is a large node that reads the pack's columns directly. */
function large(): Dataset {
  const rnd = random(21);
  const n = 7000;
  const cols = Array.from({ length: 8 }, (_, f) => Array.from({ length: n }, () => (rnd() < 0.05 ? NaN : f % 2 ? Math.floor(rnd() * 20) : rnd())));
  const labels = cols[0].map((v, i) => ((v || 0) + cols[1][i] / 20 + rnd() * 0.5 > 1 ? "x" : cols[2][i] > 0.5 ? "y" : "z"));
  return classification(cols, labels);
}

const bigPack = buildPack(large());
const params: FitParams = { n_estimators: 30, random_state: 17, max_depth: 4 };
const onePiece = fitForest(bigPack, params);
const bytes = onePiece.toBinary();

/** Groves of `size` consecutive trees covering the build. */
function cut(size: number): number[][] {
  const out: number[][] = [];
  for (let t = 0; t < 30; t += size) out.push(Array.from({ length: Math.min(size, 30 - t) }, (_, i) => t + i));
  return out;
}

describe("determinism", () => {
  it("the same pack, params and seed give byte-identical models", () => {
    expect(fitForest(bigPack, params).toBinary()).toEqual(bytes);
    // A pack rebuilt from the same data, or held in shared memory, is the same input.
    const some = { treeIndices: [0, 13, 29] };
    const expected = onePiece.trees.filter((t) => some.treeIndices.includes(t.index));
    expect(fitForest(buildPack(large()), params, some).trees).toEqual(expected);
    expect(fitForest(buildPack(large(), { shared: true }), params, some).trees).toEqual(expected);
    const digits = buildPack(fixture("digits"));
    const p = { n_estimators: 3, random_state: 3 };
    expect(fitForest(digits, p).toBinary()).toEqual(fitForest(digits, p).toBinary());
  });

  it("a 30-tree build equals the merge of its groves, for groves of 5, 10, 15 and 30 trees", () => {
    for (const size of [5, 10, 15, 30]) {
      const groves = cut(size).map((treeIndices) => fitForest(bigPack, params, { treeIndices }));
      expect(groves.every((g) => g.nTrees === size)).toBe(true);
      expect(Forest.merge(groves).toBinary(), `groves of ${size}`).toEqual(bytes);
    }
  });

  it("groves trained in shuffled order, with shuffled and uneven tree lists, merge to the same model", () => {
    const order = Array.from(shuffledIndices(30, 5));
    const uneven = [order.slice(0, 1), order.slice(1, 8), order.slice(8, 20), order.slice(20)];
    const groves = [3, 1, 0, 2].map((g) => fitForest(bigPack, params, { treeIndices: uneven[g] }));
    expect(Forest.merge(groves).toBinary()).toEqual(bytes);
  });

  it("a tree depends only on (random_state, its index): not on the grove, nor on n_estimators", () => {
    const alone = fitForest(bigPack, params, { treeIndices: [7] }).trees[0];
    expect(alone).toEqual(onePiece.trees[7]);
    const smallerBuild = fitForest(bigPack, { ...params, n_estimators: 10 }).trees[7];
    expect(smallerBuild).toEqual(onePiece.trees[7]);
  });

  it("a tree does not depend on the trees grown before it on the thread (the row copies' buffers are reused)", () => {
    // Packs of the same shape: the next tree takes the buffers the last one filled with other rows' bins.
    const other = buildPack({ ...large(), columns: large().columns.map((c) => c.map((v) => (Number.isNaN(v) ? 3 : 1 - v))) });
    const deep = { n_estimators: 3, random_state: 5 };
    const afterOther = (pack: typeof bigPack) => {
      fitForest(other, deep);
      return fitForest(pack, deep).toBinary();
    };
    const first = fitForest(bigPack, deep).toBinary();
    expect(afterOther(bigPack)).toEqual(first);
    fitForest(buildPack(fixture("digits")), deep);
    expect(fitForest(bigPack, deep).toBinary()).toEqual(first);
  });

  it("training rows are part of the input: the same rows give the same model, other rows another", () => {
    const rows = shuffledIndices(bigPack.nRows, 8).slice(0, 3000).sort();
    const p = { ...params, n_estimators: 6 };
    const a = fitForest(bigPack, p, { rows }).toBinary();
    expect(fitForest(bigPack, p, { rows: rows.slice() }).toBinary()).toEqual(a);
    expect(Forest.merge([fitForest(bigPack, p, { rows, treeIndices: [4, 5] }), fitForest(bigPack, p, { rows, treeIndices: [0, 1, 2, 3] })]).toBinary()).toEqual(a);
    expect(fitForest(bigPack, p).toBinary()).not.toEqual(a);
  });

  it("a different random_state gives different trees", () => {
    const other = fitForest(bigPack, { ...params, random_state: 18 });
    expect(other.toBinary()).not.toEqual(bytes);
    let differing = 0;
    other.trees.forEach((t, i) => {
      if (t.nodeCount !== onePiece.trees[i].nodeCount || t.feature.some((f, k) => f !== onePiece.trees[i].feature[k])) differing++;
    });
    expect(differing).toBeGreaterThan(25);
  });

  it("the trees of one build differ from each other", () => {
    const roots = new Set(onePiece.trees.map((t) => `${t.feature[0]}:${t.threshold[0]}:${t.nodeCount}`));
    expect(roots.size).toBeGreaterThan(20);
  });
});

describe("seeds", () => {
  it("treeSeed(seed, t) is a pure function of (seed, t)", () => {
    const first = Array.from({ length: 50 }, (_, t) => treeSeed(17, t));
    treeSeed(99, 3); // interleaved calls change nothing
    expect(Array.from({ length: 50 }, (_, t) => treeSeed(17, t))).toEqual(first);
    for (const s of first) expect(Number.isInteger(s) && s >= 0 && s < 2 ** 32).toBe(true);
  });

  it("distinct trees and distinct build seeds get distinct tree seeds, also beyond 32 bits", () => {
    const perTree = new Set(Array.from({ length: 1000 }, (_, t) => treeSeed(0, t)));
    expect(perTree.size).toBe(1000);
    const seeds = [0, 1, 2, 17, 2 ** 31, 2 ** 32, 2 ** 32 + 1, 2 ** 40, Number.MAX_SAFE_INTEGER];
    const perSeed = new Set(seeds.map((s) => treeSeed(s, 0)));
    expect(perSeed.size).toBe(seeds.length);
    // Neither argument can stand in for the other.
    expect(treeSeed(1, 0)).not.toBe(treeSeed(0, 1));
  });

  it("Rng is reproducible and nextInt stays in range", () => {
    const a = new Rng(5);
    const b = new Rng(5);
    const xs = Array.from({ length: 100 }, () => a.nextU32());
    expect(Array.from({ length: 100 }, () => b.nextU32())).toEqual(xs);
    expect(new Set(xs).size).toBe(100);
    const r = new Rng(6);
    const counts = new Array<number>(7).fill(0);
    for (let i = 0; i < 7000; i++) counts[r.nextInt(7)]++;
    for (const c of counts) expect(c).toBeGreaterThan(800);
    for (let i = 0; i < 100; i++) {
      const v = r.nextInt(3_000_000); // the large-n path
      expect(Number.isInteger(v) && v >= 0 && v < 3_000_000).toBe(true);
    }
    expect(new Rng(0).nextU32()).not.toBe(new Rng(1).nextU32());
  });

  it("shuffledIndices is a seeded permutation", () => {
    const p = shuffledIndices(500, 3);
    expect(Array.from(p).sort((x, y) => x - y)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect(shuffledIndices(500, 3)).toEqual(p);
    expect(shuffledIndices(500, 4)).not.toEqual(p);
    expect(Array.from(p.subarray(0, 20))).not.toEqual(Array.from({ length: 20 }, (_, i) => i));
  });
});
