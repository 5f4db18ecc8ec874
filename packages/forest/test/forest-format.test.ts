import { crc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import { CanopyError, FormatError } from "../src/errors.ts";
import { fitForest } from "../src/fit.ts";
import { Forest, FOREST_FORMAT, FOREST_VERSION } from "../src/forest.ts";
import type { FitParams } from "../src/options.ts";
import { buildPack } from "../src/pack.ts";
import type { Dataset } from "../src/types.ts";
import { classification, fixture, random, regression, rowsOf } from "./fixtures/data.ts";

const align8 = (n: number) => Math.ceil(n / 8) * 8;
/** The v2 binary preamble: magic, version, header length, CRC-32, a reserved zero word. */
const PREAMBLE = 24;

/** Recomputes a v2 model's CRC-32 after an edit, so the edit reaches the structural checks behind it. */
function reseal(bin: Uint8Array): Uint8Array {
  new DataView(bin.buffer, bin.byteOffset, bin.byteLength).setUint32(16, crc32(bin.subarray(20), crc32(bin.subarray(0, 16))), true);
  return bin;
}

/** Iris with a few cells blanked, so that trees route missing values both ways. */
function irisWithGaps(): Dataset {
  const ds = fixture("iris");
  const rnd = random(11);
  for (const c of ds.columns) for (let r = 0; r < c.length; r++) if (rnd() < 0.1) c[r] = NaN;
  return ds;
}

const iris = irisWithGaps();
const irisPack = buildPack(iris);
const diabetes = fixture("diabetes");
const diabetesPack = buildPack(diabetes);
const classForest = fitForest(irisPack, { n_estimators: 8, random_state: 3 });
const regForest = fitForest(diabetesPack, { n_estimators: 5, max_depth: 6, random_state: 3 });
/** Probe rows: the training rows plus rows with missing and extreme values. */
const irisRows = [...rowsOf(iris), [NaN, NaN, NaN, NaN], [1e9, -1e9, NaN, 0], [5, 3, 1.5, 0.2]];
const diabetesRows = [...rowsOf(diabetes).slice(0, 100), new Array<number>(10).fill(NaN)];

function expectSameModel(a: Forest, b: Forest): void {
  expect(b.toBinary()).toEqual(a.toBinary());
  expect(b.toJSON()).toEqual(a.toJSON());
  if (a.task === "classification") {
    expect(b.predict(irisRows)).toEqual(a.predict(irisRows));
    expect(b.predictProba(irisRows)).toEqual(a.predictProba(irisRows));
  } else {
    expect(b.predict(diabetesRows)).toEqual(a.predict(diabetesRows));
  }
  expect(b.featureImportances()).toEqual(a.featureImportances());
}

function expectFormatError(fn: () => unknown, message?: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(FormatError);
  if (message) expect((caught as Error).message).toMatch(message);
  expect((caught as Error).message).not.toContain("\n");
}

/** Re-encodes a binary model with an edited JSON header, keeping its tree section (and a valid checksum). */
function withHeader(bin: Uint8Array, edit: (header: Record<string, unknown>) => void): Uint8Array {
  const view = new DataView(bin.buffer, bin.byteOffset, bin.byteLength);
  const length = view.getUint32(12, true);
  const header = JSON.parse(new TextDecoder().decode(bin.subarray(PREAMBLE, PREAMBLE + length))) as Record<string, unknown>;
  edit(header);
  const encoded = new TextEncoder().encode(JSON.stringify(header));
  const body = bin.subarray(align8(PREAMBLE + length));
  const out = new Uint8Array(align8(PREAMBLE + encoded.length) + body.length);
  out.set(bin.subarray(0, 12));
  new DataView(out.buffer).setUint32(12, encoded.length, true);
  out.set(encoded, PREAMBLE);
  out.set(body, align8(PREAMBLE + encoded.length));
  return reseal(out);
}

/** Byte offsets of the first tree's arrays in a binary model. */
function firstTreeLayout(forest: Forest, bin: Uint8Array) {
  const t = forest.trees[0];
  const nInternal = t.feature.filter((f) => f >= 0).length;
  const start = align8(PREAMBLE + new DataView(bin.buffer, bin.byteOffset).getUint32(12, true));
  const right = start + nInternal * 12 + t.values.length * 4;
  const feature = right + t.nodeCount * 4;
  return { start, right, feature, end: start + align8(nInternal * 12 + t.values.length * 4 + t.nodeCount * 8) };
}

describe("forest format: round trips", () => {
  it("toJSON → load (object, text, UTF-8 bytes) gives the same model", () => {
    for (const forest of [classForest, regForest]) {
      const json = forest.toJSON();
      expect(json.format).toBe(FOREST_FORMAT);
      // Numeric models are written in the oldest version that holds them (see the version 4 tests).
      expect(json.version).toBe(3);
      const text = JSON.stringify(json);
      expectSameModel(forest, Forest.load(json));
      expectSameModel(forest, Forest.load(text));
      expectSameModel(forest, Forest.load(new TextEncoder().encode(text)));
    }
  });

  it("toBinary → load gives the same model, also from bytes not on an 8-byte boundary", () => {
    for (const forest of [classForest, regForest]) {
      const bin = forest.toBinary();
      expectSameModel(forest, Forest.load(bin));
      const shifted = new Uint8Array(bin.length + 5);
      shifted.set(bin, 5);
      expectSameModel(forest, Forest.load(shifted.subarray(5)));
      // Twice through both forms: still the same bytes.
      expect(Forest.load(JSON.stringify(Forest.load(bin).toJSON())).toBinary()).toEqual(bin);
    }
  });

  it("keeps the metadata: task, names, classes, params, tree indices", () => {
    const back = Forest.load(classForest.toBinary());
    expect(back.task).toBe("classification");
    expect(back.featureNames).toEqual(["sepal_length", "sepal_width", "petal_length", "petal_width"]);
    expect(back.labelName).toBe("species");
    expect(back.classes).toEqual(["setosa", "versicolor", "virginica"]);
    expect(back.params).toEqual(classForest.params);
    expect(back.trees.map((t) => t.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(Forest.load(regForest.toBinary()).classes).toEqual([]);
  });

  it("the binary form is smaller than the JSON text", () => {
    for (const forest of [classForest, regForest]) expect(forest.toBinary().length).toBeLessThan(JSON.stringify(forest.toJSON()).length);
  });
});

describe("forest format: predictions", () => {
  it("raw rows and binned pack rows get the same predictions (thresholds agree with bins)", () => {
    const all = Uint32Array.from({ length: iris.nRows }, (_, i) => i);
    expect(classForest.predictPack(irisPack, all)).toEqual(classForest.predict(rowsOf(iris)));
    expect(classForest.predictPackProba(irisPack, all)).toEqual(classForest.predictProba(rowsOf(iris)));
    const some = Uint32Array.from({ length: 200 }, (_, i) => i * 2);
    expect(regForest.predictPack(diabetesPack, some)).toEqual(regForest.predict(rowsOf(diabetes, some)));
  });

  it("accepts a row-major matrix as well as arrays of rows", () => {
    const rows = rowsOf(iris).slice(0, 10);
    const data = Float64Array.from(rows.flat());
    expect(classForest.predictProba({ data, nRows: 10, nCols: 4 })).toEqual(classForest.predictProba(rows));
  });

  it("probabilities are a soft vote: rows sum to 1, labels are the argmax", () => {
    const proba = classForest.predictProba(irisRows);
    const labels = classForest.predict(irisRows) as string[];
    for (let r = 0; r < irisRows.length; r++) {
      const p = Array.from(proba.subarray(r * 3, r * 3 + 3));
      expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
      expect(labels[r]).toBe(classForest.classes[p.indexOf(Math.max(...p))]);
    }
  });

  it("rejects rows of the wrong width and proba on a regression model with a CanopyError", () => {
    expect(() => classForest.predict([[1, 2, 3]])).toThrow(CanopyError);
    expect(() => classForest.predict({ data: new Float64Array(6), nRows: 2, nCols: 3 })).toThrow(/columns/);
    expect(() => regForest.predictProba(diabetesRows)).toThrow(CanopyError);
    expect(() => classForest.predictPack(diabetesPack, Uint32Array.of(0))).toThrow(/features/);
  });
});

/** The same model in the version 1 layout: a 16-byte preamble, no checksum, "version": 1 in the header. */
function asVersion1(bin: Uint8Array): Uint8Array {
  const length = new DataView(bin.buffer, bin.byteOffset).getUint32(12, true);
  const header = JSON.parse(new TextDecoder().decode(bin.subarray(PREAMBLE, PREAMBLE + length))) as Record<string, unknown>;
  header.version = 1;
  const encoded = new TextEncoder().encode(JSON.stringify(header));
  const body = bin.subarray(align8(PREAMBLE + length));
  const out = new Uint8Array(align8(16 + encoded.length) + body.length);
  out.set(bin.subarray(0, 8));
  new DataView(out.buffer).setUint32(8, 1, true);
  new DataView(out.buffer).setUint32(12, encoded.length, true);
  out.set(encoded, 16);
  out.set(body, align8(16 + encoded.length));
  return out;
}

describe("forest format: version 2 checksum", () => {
  it("writes version 2 or later (3 for a numeric model) with the CRC-32 of every other byte at offset 16", () => {
    const bin = classForest.toBinary();
    const view = new DataView(bin.buffer, bin.byteOffset);
    expect(FOREST_VERSION).toBeGreaterThanOrEqual(2);
    expect(view.getUint32(8, true)).toBe(3);
    expect(view.getUint32(16, true)).toBe(crc32(bin.subarray(20), crc32(bin.subarray(0, 16))));
    expect(view.getUint32(20, true)).toBe(0);
  });

  it("still loads version 1 files, which predict the same and re-encode as the current version", () => {
    for (const forest of [classForest, regForest]) {
      const v1 = asVersion1(forest.toBinary());
      const loaded = Forest.load(v1);
      expect(loaded.version).toBe(1);
      expectSameModel(forest, loaded);
    }
    expect(Forest.load({ ...classForest.toJSON(), version: 1 }).version).toBe(1);
  });

  it("refuses every single-bit flip of a version 2 file", () => {
    const small = fitForest(irisPack, { n_estimators: 2, max_depth: 3, random_state: 2 });
    const bin = small.toBinary();
    for (let i = 0; i < bin.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const bad = bin.slice();
        bad[i] ^= 1 << bit;
        expectFormatError(() => Forest.load(bad));
      }
    }
    const bad = bin.slice();
    bad[bin.length - 1] ^= 4;
    expectFormatError(() => Forest.load(bad), /^corrupt model: checksum mismatch \(CRC-32 0x[0-9a-f]{8}, recorded 0x[0-9a-f]{8}\): the file is damaged$/);
  });

  it("JSON (no checksum) is still validated: a leaf value that is not finite is refused", () => {
    const json = classForest.toJSON();
    const tree0 = { ...json.trees[0], values: json.trees[0].values.map((v, i) => (i === 0 ? 1e39 : v)) };
    expectFormatError(() => Forest.load(JSON.stringify({ ...json, trees: [tree0, ...json.trees.slice(1)] })), /not a finite number/);
  });
});

describe("forest format: load rejects what is not a valid model with a FormatError", () => {
  it("another format name, another version (JSON and binary)", () => {
    const json = classForest.toJSON();
    expectFormatError(() => Forest.load({ ...json, format: "sklearn-forest" }), /format/);
    const next = FOREST_VERSION + 1;
    expectFormatError(() => Forest.load({ ...json, version: next }), new RegExp(`version ${next}`));
    expectFormatError(() => Forest.load(JSON.stringify({ ...json, version: "1" })), /version/);
    const bin = classForest.toBinary();
    const vNext = bin.slice();
    new DataView(vNext.buffer).setUint32(8, next, true);
    expectFormatError(() => Forest.load(reseal(vNext)), new RegExp(`version ${next}`));
    expectFormatError(() => Forest.load(withHeader(bin, (h) => (h.format = "other"))), /format/);
    expectFormatError(() => Forest.load(withHeader(bin, (h) => (h.version = next))), new RegExp(`version ${next}`));
    // The header rewriter itself keeps a valid model valid.
    expectSameModel(classForest, Forest.load(withHeader(bin, () => {})));
  });

  it("empty and foreign inputs", () => {
    for (const input of [{}, [], "", "{}", "[]", "null", "42", "not json", new Uint8Array(0), new Uint8Array([0xff, 0xfe, 0x00])]) {
      expectFormatError(() => Forest.load(input as object));
    }
    expectFormatError(() => Forest.load(null as unknown as object));
    expectFormatError(() => Forest.load(new TextEncoder().encode("sepal_length,species\n5.1,setosa\n")), /JSON/);
  });

  it("random bytes, with and without the magic prefix", () => {
    const rnd = random(12);
    const magic = classForest.toBinary().subarray(0, 8);
    for (let i = 0; i < 40; i++) {
      const bytes = Uint8Array.from({ length: 16 + Math.floor(rnd() * 2000) }, () => Math.floor(rnd() * 256));
      if (i % 2 === 1) bytes.set(magic);
      expectFormatError(() => Forest.load(bytes));
    }
  });

  it("every truncation of a binary model", () => {
    const small = fitForest(irisPack, { n_estimators: 3, max_depth: 3, random_state: 1 });
    const bin = small.toBinary();
    for (let n = 0; n < bin.length; n++) {
      let caught: unknown;
      try {
        Forest.load(bin.slice(0, n));
      } catch (e) {
        caught = e;
      }
      expect(caught, `truncated to ${n} of ${bin.length} bytes`).toBeInstanceOf(FormatError);
    }
    const longer = new Uint8Array(bin.length + 8);
    longer.set(bin);
    expectFormatError(() => Forest.load(longer), /checksum mismatch/);
    expectFormatError(() => Forest.load(reseal(longer)), /trailing/);
  });

  it("a child index or a feature out of range in the tree section", () => {
    const bin = classForest.toBinary();
    const layout = firstTreeLayout(classForest, bin);
    const t = classForest.trees[0];
    const badChild = bin.slice();
    new DataView(badChild.buffer).setInt32(layout.right, t.nodeCount + 5, true);
    expectFormatError(() => Forest.load(reseal(badChild)), /tree 0 node 0 is malformed/);
    const backwards = bin.slice();
    new DataView(backwards.buffer).setInt32(layout.right, 0, true);
    expectFormatError(() => Forest.load(reseal(backwards)), /malformed/);
    const badFeature = bin.slice();
    new DataView(badFeature.buffer).setInt16(layout.feature, 99, true);
    expectFormatError(() => Forest.load(reseal(badFeature)), /malformed/);
    const leafToSplit = bin.slice(); // the last node is a leaf: a split there has no children
    new DataView(leafToSplit.buffer).setInt16(layout.feature + (t.nodeCount - 1) * 2, 0, true);
    expectFormatError(() => Forest.load(reseal(leafToSplit)));
  });

  it("any flipped byte in the tree section, checksum recomputed: a FormatError or a model that still predicts", () => {
    const small = fitForest(irisPack, { n_estimators: 2, max_depth: 4, random_state: 2 });
    const bin = small.toBinary();
    const { start } = firstTreeLayout(small, bin);
    let rejected = 0;
    for (let i = start; i < bin.length; i++) {
      const bad = bin.slice();
      bad[i] ^= 0xff;
      reseal(bad);
      let model: Forest;
      try {
        model = Forest.load(bad);
      } catch (e) {
        expect(e, `byte ${i} flipped`).toBeInstanceOf(FormatError);
        rejected++;
        continue;
      }
      // Accepted (a threshold, value or gain changed): traversal must still end in a leaf for every row.
      expect(model.predictProba(irisRows).length).toBe(irisRows.length * 3);
    }
    expect(rejected).toBeGreaterThan(0);
  });

  describe("crafted binary headers", () => {
    const bin = classForest.toBinary();
    type TreeHeader = { index: number; nodeCount: number; leafCount: number };
    const trees = (h: Record<string, unknown>) => h.trees as TreeHeader[];
    const cases: [string, (h: Record<string, unknown>) => void, RegExp?][] = [
      ["feature width 3", (h) => (h.featureWidth = 3)],
      ["trees not a list", (h) => (h.trees = "all")],
      ["no classes for classification", (h) => (h.classes = [])],
      ["unknown task", (h) => (h.task = "ranking")],
      ["a tree of 0 nodes", (h) => (trees(h)[0].nodeCount = 0)],
      ["more leaves than nodes", (h) => (trees(h)[0].leafCount = trees(h)[0].nodeCount + 1)],
      ["a negative tree index", (h) => (trees(h)[0].index = -1)],
      ["trees out of order", (h) => (trees(h)[1].index = 0), /order/],
      ["a null tree entry", (h) => (h.trees = [null])],
      ["a node count of 2^32", (h) => (h.trees = [{ index: 0, nodeCount: 2 ** 32, leafCount: 1 }])],
      ["a node count of 2^31", (h) => (h.trees = [{ index: 0, nodeCount: 2 ** 31, leafCount: 2 ** 30 }])],
    ];
    for (const [name, edit, message] of cases) {
      it(name, () => expectFormatError(() => Forest.load(withHeader(bin, edit)), message));
    }
  });

  it("JSON models with broken trees", () => {
    const json = classForest.toJSON();
    const tree0 = json.trees[0];
    const withTree = (t: unknown) => ({ ...json, trees: [t] });
    expectFormatError(() => Forest.load({ ...json, trees: undefined }), /trees/);
    expectFormatError(() => Forest.load(withTree(null)));
    expectFormatError(() => Forest.load(withTree({ ...tree0, right: tree0.right.slice(1) })), /lengths/);
    expectFormatError(() => Forest.load(withTree({ ...tree0, values: tree0.values.slice(1) })), /class count/);
    expectFormatError(() => Forest.load(withTree({ ...tree0, feature: tree0.feature.map((f) => (f >= 0 ? 7 : f)) })), /malformed/);
    expectFormatError(() => Forest.load(withTree({ ...tree0, threshold: tree0.threshold.map(String) })), /bad tree/);
    expectFormatError(() => Forest.load(withTree({ ...tree0, index: "0" })), /bad tree/);
    expectFormatError(() => Forest.load({ ...json, trees: [json.trees[1], json.trees[0]] }), /order/);
    expectFormatError(() => Forest.load({ ...json, featureNames: "a,b" }));
  });

  it("a tree index outside the build's 0..n_estimators-1 (Tree.index), in JSON and binary", () => {
    const json = classForest.toJSON();
    expectFormatError(() => Forest.load({ ...json, trees: [{ ...json.trees[0], index: -5 }] }));
    expectFormatError(() => Forest.load({ ...json, trees: [{ ...json.trees[0], index: 8 }] }));
    const bin = classForest.toBinary();
    expectFormatError(() => Forest.load(withHeader(bin, (h) => ((h.trees as { index: number }[])[7].index = 8))));
  });
});

describe("forest format: merge", () => {
  const params: FitParams = { n_estimators: 12, random_state: 21 };
  const whole = fitForest(irisPack, params);
  const grove = (from: number, to: number) =>
    fitForest(irisPack, params, { treeIndices: Array.from({ length: to - from }, (_, i) => from + i) });
  const groves = [grove(0, 3), grove(3, 4), grove(4, 9), grove(9, 12)];

  it("groves of one build merged in any order equal the one-piece forest, byte for byte", () => {
    const bytes = whole.toBinary();
    for (const order of [
      [0, 1, 2, 3],
      [3, 2, 1, 0],
      [2, 0, 3, 1],
    ]) {
      const merged = Forest.merge(order.map((i) => groves[i]));
      expect(merged.toBinary()).toEqual(bytes);
    }
    // Groves that went through their binary form merge the same way.
    expect(Forest.merge(groves.map((g) => Forest.load(g.toBinary()))).toBinary()).toEqual(bytes);
    // Merging is associative: merged pairs merge into the same forest.
    const pairs = [Forest.merge([groves[0], groves[2]]), Forest.merge([groves[3], groves[1]])];
    expect(Forest.merge(pairs).toBinary()).toEqual(bytes);
    expect(Forest.merge([whole]).toBinary()).toEqual(bytes);
  });

  it("rejects overlapping trees", () => {
    expect(() => Forest.merge([grove(0, 5), grove(4, 8)])).toThrow(/tree 4 appears in two groves/);
    expect(() => Forest.merge([groves[1], groves[1]])).toThrow(CanopyError);
  });

  it("rejects groves of different builds, and nothing", () => {
    const otherSeed = fitForest(irisPack, { ...params, random_state: 22 }, { treeIndices: [5] });
    expect(() => Forest.merge([groves[0], otherSeed])).toThrow(/different builds/);
    const otherParams = fitForest(irisPack, { ...params, max_depth: 3 }, { treeIndices: [5] });
    expect(() => Forest.merge([groves[0], otherParams])).toThrow(/different builds/);
    const otherData = fitForest(buildPack(fixture("iris")), params, { treeIndices: [5] });
    expect(otherData.featureNames).toEqual(groves[0].featureNames);
    const renamed = { ...fixture("iris"), featureNames: ["a", "b", "c", "d"] };
    expect(() => Forest.merge([groves[0], fitForest(buildPack(renamed), params, { treeIndices: [5] })])).toThrow(/different builds/);
    expect(() => Forest.merge([groves[0], regForest])).toThrow(/different builds/);
    expect(() => Forest.merge([])).toThrow(CanopyError);
  });
});

describe("forest format: feature importances", () => {
  // x0 decides the class (with 10% label noise); x1..x3 are noise.
  const rnd = random(13);
  const n = 400;
  const cols = [0, 1, 2, 3].map(() => Array.from({ length: n }, () => rnd()));
  const labels = cols[0].map((v) => ((v < 0.5) !== (rnd() < 0.1) ? "low" : "high"));
  const pack = buildPack(classification(cols, labels));
  const params: FitParams = { n_estimators: 20, random_state: 4, max_features: 2 };
  const forest = fitForest(pack, params);

  it("sum to 1, are non-negative, and the informative feature dominates", () => {
    const imp = Array.from(forest.featureImportances());
    expect(imp.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    for (const v of imp) expect(v).toBeGreaterThanOrEqual(0);
    expect(imp[0]).toBeGreaterThan(0.5);
    for (const v of imp.slice(1)) expect(v).toBeLessThan(imp[0] / 3);
  });

  it("regression: the step function's feature dominates", () => {
    const imp = regForest.featureImportances();
    expect(imp.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    const x = Array.from({ length: 200 }, (_, i) => i);
    const noise = Array.from({ length: 200 }, () => rnd());
    const step = fitForest(buildPack(regression([noise, x], x.map((v) => (v < 100 ? 0 : 10) + rnd()))), { n_estimators: 10 });
    expect(step.featureImportances()[1]).toBeGreaterThan(0.9);
  });

  it("are identical after a binary round trip and after merging groves", () => {
    const imp = forest.featureImportances();
    expect(Forest.load(forest.toBinary()).featureImportances()).toEqual(imp);
    expect(Forest.load(forest.toJSON()).featureImportances()).toEqual(imp);
    const a = fitForest(pack, params, { treeIndices: [0, 1, 2, 3, 4, 5, 6] });
    const b = fitForest(pack, params, { treeIndices: [7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19] });
    expect(Forest.merge([b, a]).featureImportances()).toEqual(imp);
  });

  it("are all zero when no tree has a split (as sklearn)", () => {
    const flat = fitForest(buildPack(classification([[1, 1, 1, 1]], ["a", "b", "a", "b"])), { n_estimators: 3 });
    expect(Array.from(flat.featureImportances())).toEqual([0]);
  });
});
