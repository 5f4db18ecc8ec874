import { crc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import { CanopyError, FormatError } from "../src/errors.ts";
import { fitForest } from "../src/fit.ts";
import { crc32Combine, Forest, ForestMerger, ImportanceSum } from "../src/forest.ts";
import { buildPack } from "../src/pack.ts";
import { TableBuilder } from "../src/table.ts";
import { fixture, random } from "./fixtures/data.ts";

const irisPack = buildPack(fixture("iris"));
const diabetesPack = buildPack(fixture("diabetes"));

/** Groves of a build as trainers make them: consecutive tree ranges, stored in the binary format. */
function groves(pack: typeof irisPack, sizes: number[], params: object): Uint8Array[] {
  const n = sizes.reduce((a, b) => a + b, 0);
  const out: Uint8Array[] = [];
  let start = 0;
  for (const size of sizes) {
    const treeIndices = Array.from({ length: size }, (_, i) => start + i);
    out.push(fitForest(pack, { n_estimators: n, random_state: 5, ...params }, { treeIndices }).toBinary());
    start += size;
  }
  return out;
}

function streamed(parts: Uint8Array[], schema?: Parameters<ForestMerger["prefix"]>[0]): Uint8Array {
  const merger = new ForestMerger();
  for (const bytes of parts) merger.add(bytes);
  const { bytes: head, size } = merger.prefix(schema);
  const out = new Uint8Array(size);
  out.set(head);
  let off = head.length;
  parts.forEach((bytes, i) => {
    const body = merger.body(i, bytes);
    out.set(body, off);
    off += body.length;
  });
  expect(off).toBe(size);
  return out;
}

describe("ForestMerger: a model written grove by grove", () => {
  it("is byte for byte Forest.merge(groves).toBinary(), for classification and regression, any grove sizes", () => {
    for (const [pack, sizes, params] of [
      [irisPack, [3, 3, 2], { max_depth: 4 }],
      [irisPack, [1], {}],
      [irisPack, [5, 1, 1, 4, 2], {}],
      [diabetesPack, [2, 4], { max_depth: 6 }],
    ] as const) {
      const parts = groves(pack, [...sizes], params);
      const whole = Forest.merge(parts.map((b) => Forest.load(b))).toBinary();
      expect(Buffer.from(streamed(parts)).equals(Buffer.from(whole))).toBe(true);
      expect(() => Forest.load(streamed(parts))).not.toThrow();
    }
  });

  it("writes the version its trees need whatever the groves are stored in, re-encoding a grove stored in another", () => {
    // Categorical splits need version 4; a grove of shallow trees that split on the numeric column only does not.
    const builder = new TableBuilder({ label: "label" });
    builder.header(["a", "b", "label"]);
    for (let i = 0; i < 120; i++) builder.row([String(i % 11), ["x", "y", "z", "w"][(i * 5) % 4], (i * 5) % 4 < 2 ? "p" : "q"], i + 2);
    const pack = buildPack(builder.finish().dataset);
    const categorical = groves(pack, [2, 2], {});
    // Stumps on one feature drawn at random: groves [0, 4) split on the numeric column only (version 3), [4, 6) on
    // the categorical one at least once (version 4).
    const stumps = groves(pack, [4, 2, 2], { max_features: 1, max_depth: 1 });
    expect(stumps.map((b) => Forest.load(b).version)).toEqual([3, 4, 4]);
    // A grove stored in version 4 whose trees need only version 3 (16-bit bins that all fit in 8 bits: they load narrow).
    const iris = groves(irisPack, [2, 2], {});
    const wide = Forest.load(iris[1]);
    const widened = new Forest(wide.task, wide.featureNames, wide.labelName, wide.classes, wide.params, wide.trees.map((t) => ({ ...t, thresholdBin: Uint16Array.from(t.thresholdBin) })));
    const cases: [Uint8Array[], number][] = [
      [categorical, 4],
      [stumps, 4],
      [[iris[0], widened.toBinary()], 3],
    ];
    expect(Forest.load(iris[0]).version).toBe(3);
    expect(Forest.load(cases[2][0][1]).version).toBe(4);
    for (const [set, version] of cases) {
      const whole = Forest.merge(set.map((b) => Forest.load(b))).toBinary();
      expect(Forest.load(whole).version).toBe(version);
      expect(Buffer.from(streamed(set)).equals(Buffer.from(whole))).toBe(true);
    }
  });

  it("carries the table schema like withSchema", () => {
    const builder = new TableBuilder({ label: "label" });
    builder.header(["a", "b", "label"]);
    for (let i = 0; i < 60; i++) builder.row([String(i % 7), ["x", "y", "z"][i % 3], i % 2 ? "p" : "q"], i + 2);
    const { dataset, schema } = builder.finish();
    const pack = buildPack(dataset);
    const parts = groves(pack, [2, 2], {});
    const whole = Forest.merge(parts.map((b) => Forest.load(b))).withSchema(schema).toBinary();
    expect(Buffer.from(streamed(parts, schema)).equals(Buffer.from(whole))).toBe(true);
  });

  it("refuses groves out of tree order, of another build, and a grove whose data changed between the passes", () => {
    const parts = groves(irisPack, [2, 2, 2], {});
    const backwards = new ForestMerger();
    backwards.add(parts[1]);
    expect(() => backwards.add(parts[0])).toThrow(CanopyError);
    const other = groves(irisPack, [2, 2, 2], { max_depth: 2 });
    const mixed = new ForestMerger();
    mixed.add(parts[0]);
    expect(() => mixed.add(other[1])).toThrow(/different builds/);

    const merger = new ForestMerger();
    for (const bytes of parts) merger.add(bytes);
    merger.prefix();
    const changed = parts[1].slice();
    changed[changed.length - 9] ^= 1; // a byte of the last tree's data
    expect(() => merger.body(1, changed)).toThrow(FormatError);
    expect(() => merger.body(1, parts[2])).toThrow(/changed between the two passes/);
  });

  it("counts trees and nodes as the merged forest does, and sums importances tree by tree the same way", () => {
    const parts = groves(irisPack, [3, 4], {});
    const merger = new ForestMerger();
    const sum = new ImportanceSum(4);
    for (const bytes of parts) for (const t of merger.add(bytes).trees) sum.add(t);
    const whole = Forest.merge(parts.map((b) => Forest.load(b)));
    expect(merger.nTrees).toBe(whole.nTrees);
    expect(merger.nodeCount).toBe(whole.nodeCount);
    expect(sum.result()).toEqual(whole.featureImportances());
  });
});

describe("crc32Combine", () => {
  it("gives the CRC-32 of two buffers end to end from their CRCs and the second's length", () => {
    const rnd = random(3);
    for (const [la, lb] of [[0, 0], [0, 5], [7, 0], [1, 1], [13, 1000], [1000, 4097], [65536, 3]]) {
      const a = Uint8Array.from({ length: la }, () => Math.floor(rnd() * 256));
      const b = Uint8Array.from({ length: lb }, () => Math.floor(rnd() * 256));
      const whole = new Uint8Array(la + lb);
      whole.set(a);
      whole.set(b, la);
      expect(crc32Combine(crc32(a), crc32(b), lb)).toBe(crc32(whole));
    }
  });
});
