import { describe, expect, it } from "vitest";
import { FormatError, OptionsError } from "../src/errors.ts";
import { binOf, buildPack, computeEdges, decodePack, encodePack, MAX_BINS, MISSING_BIN, missingCells, PACK_VERSION, rowMajorBins, type DatasetPack } from "../src/pack.ts";
import { transposeBins } from "../src/pack-kernels.ts";
import { classification, fixture, random, regression } from "./fixtures/data.ts";

/** Bin sizes of a column under `edges` (present values only). */
function binCounts(column: ArrayLike<number>, edges: Float64Array): number[] {
  const counts = new Array<number>(edges.length + 1).fill(0);
  for (const x of Array.from(column)) if (!Number.isNaN(x)) counts[binOf(edges, x)]++;
  return counts;
}

/** Checks bin(x) <= b <=> x <= edges[b] for every present x and every b; returns the first violation. */
function binViolation(column: ArrayLike<number>, edges: Float64Array): string | null {
  for (const x of Array.from(column)) {
    if (Number.isNaN(x)) continue;
    const bin = binOf(edges, x);
    for (let b = 0; b < edges.length; b++) if (bin <= b !== x <= edges[b]) return `x=${x} bin=${bin} edges[${b}]=${edges[b]}`;
  }
  return null;
}

function expectSamePack(a: DatasetPack, b: DatasetPack): void {
  expect(b.featureNames).toEqual(a.featureNames);
  expect(b.labelName).toBe(a.labelName);
  expect(b.nRows).toBe(a.nRows);
  expect(b.nFeatures).toBe(a.nFeatures);
  expect(Array.from(b.bins)).toEqual(Array.from(a.bins));
  expect(b.edges.map((e) => Array.from(e))).toEqual(a.edges.map((e) => Array.from(e)));
  expect(b.target.task).toBe(a.target.task);
  if (a.target.task === "classification" && b.target.task === "classification") {
    expect(b.target.classes).toEqual(a.target.classes);
    expect(Array.from(b.target.codes)).toEqual(Array.from(a.target.codes));
  } else if (a.target.task === "regression" && b.target.task === "regression") {
    expect(Array.from(b.target.values)).toEqual(Array.from(a.target.values));
  }
  expect(b.hash).toBe(a.hash);
}

function expectFormatError(fn: () => unknown, message: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(FormatError);
  expect((caught as Error).message).toMatch(message);
  expect((caught as Error).message).not.toContain("\n");
}

const small = () =>
  classification(
    [
      [1, 2, 3, NaN, 5, 8],
      [0.5, 0.25, NaN, NaN, 0.75, 0.5],
    ],
    ["a", "b", "a", "b", "a", "b"],
  );

describe("computeEdges", () => {
  it("gives each of a few distinct values its own bin, with edges midway between neighbours", () => {
    expect(Array.from(computeEdges(Float64Array.from([3, 1, 2, 3, 5, 1])))).toEqual([1.5, 2.5, 4]);
    const edges = computeEdges(Float64Array.from([0.1, -2.5, 0.1, 7.25]));
    expect(edges.length).toBe(2);
    expect(edges[0]).toBeCloseTo(-1.2, 12);
    expect(edges[1]).toBeCloseTo(3.675, 12);
    // NaN is not a value: it does not get an edge.
    expect(Array.from(computeEdges(Float64Array.from([NaN, 4, NaN, 6])))).toEqual([5]);
  });

  it("gives no edges to a constant or all-missing column", () => {
    expect(computeEdges(Float64Array.from([7, 7, 7])).length).toBe(0);
    expect(computeEdges(Float64Array.from([NaN, NaN])).length).toBe(0);
    expect(computeEdges(new Float64Array(0)).length).toBe(0);
  });

  it("keeps exactly MAX_BINS bins when a column has that many distinct values", () => {
    const column = Float64Array.from({ length: MAX_BINS }, (_, i) => i * 0.5);
    const edges = computeEdges(column);
    expect(edges.length).toBe(MAX_BINS - 1);
    expect(binCounts(column, edges).every((c) => c === 1)).toBe(true);
  });

  it("puts many distinct values in at most 255 bins of about equal counts (float and integer columns)", () => {
    const rnd = random(1);
    const floats = Float64Array.from({ length: 20_000 }, () => rnd() * 100 - 50);
    const ints = Float64Array.from({ length: 20_000 }, () => Math.floor(rnd() * 30_000));
    for (const column of [floats, ints]) {
      const edges = computeEdges(column);
      expect(edges.length + 1).toBeLessThanOrEqual(MAX_BINS);
      expect(edges.length + 1).toBeGreaterThan(MAX_BINS * 0.9);
      for (let b = 1; b < edges.length; b++) expect(edges[b]).toBeGreaterThan(edges[b - 1]);
      const counts = binCounts(column, edges);
      const mean = column.length / counts.length;
      expect(Math.min(...counts)).toBeGreaterThan(mean * 0.5);
      expect(Math.max(...counts)).toBeLessThan(mean * 1.6);
    }
  });

  it("honours a smaller maxBins", () => {
    const column = Float64Array.from({ length: 1000 }, (_, i) => i);
    const edges = computeEdges(column, 16);
    expect(edges.length).toBeLessThanOrEqual(15);
    const counts = binCounts(column, edges);
    expect(Math.max(...counts)).toBeLessThan((1000 / 16) * 1.6);
  });

  it("gives a heavy spike value a bin of its own instead of merging it with its neighbours", () => {
    // Half the rows are the value 5000 (like the zero pixel in image data); the rest are spread out.
    for (const scale of [1, 0.001]) {
      const values: number[] = [];
      for (let i = 0; i < 10_000; i++) values.push(i * scale);
      for (let i = 0; i < 10_000; i++) values.push(5000 * scale);
      const column = Float64Array.from(values);
      const edges = computeEdges(column);
      const spike = binOf(edges, 5000 * scale);
      // The spike's bin holds the spike only: its neighbours fall into other bins.
      expect(binOf(edges, 4999 * scale)).toBeLessThan(spike);
      expect(binOf(edges, 5001 * scale)).toBeGreaterThan(spike);
      expect(binCounts(column, edges)[spike]).toBe(10_001);
    }
  });

  it("gives a spike at the minimum (zero pixels) its own bin", () => {
    const values = [...new Array<number>(5000).fill(0), ...Array.from({ length: 3000 }, (_, i) => 1 + (i % 1000) / 10)];
    const edges = computeEdges(Float64Array.from(values));
    expect(binOf(edges, 0)).toBe(0);
    expect(binOf(edges, 1)).toBe(1);
    expect(edges[0]).toBe(0.5);
  });
});

describe("binOf and buildPack bins", () => {
  it("bin(x) <= b exactly when x <= edges[b], for values on, between and beyond the edges", () => {
    const rnd = random(2);
    const column = Float64Array.from({ length: 3000 }, () => Math.round(rnd() * 1000) / 8);
    const edges = computeEdges(column);
    const probes = [...Array.from(column.subarray(0, 300)), ...Array.from(edges), -1e9, 1e9, -0, 0];
    expect(binViolation(probes, edges)).toBeNull();
    expect(binOf(edges, -1e9)).toBe(0);
    expect(binOf(edges, 1e9)).toBe(edges.length);
  });

  it("maps NaN to MISSING_BIN (255) whatever the edges", () => {
    expect(MISSING_BIN).toBe(255);
    expect(binOf(new Float64Array(0), NaN)).toBe(MISSING_BIN);
    expect(binOf(Float64Array.from([1, 2, 3]), NaN)).toBe(MISSING_BIN);
  });

  it("stores binOf(edges, x) for every cell, column-major, on both binning paths", () => {
    const rnd = random(3);
    const n = 500;
    const floatCol = Array.from({ length: n }, () => (rnd() < 0.1 ? NaN : rnd() * 10));
    const intCol = Array.from({ length: n }, () => (rnd() < 0.1 ? NaN : Math.floor(rnd() * 2000) - 1000));
    const wideIntCol = Array.from({ length: n }, () => Math.floor(rnd() * 1e9)); // range too wide for a lookup table
    const pack = buildPack(regression([floatCol, intCol, wideIntCol], floatCol.map((_, i) => i)));
    expect(pack.nFeatures).toBe(3);
    [floatCol, intCol, wideIntCol].forEach((col, f) => {
      const stored = Array.from(pack.bins.subarray(f * n, (f + 1) * n));
      expect(stored).toEqual(col.map((x) => binOf(pack.edges[f], x)));
      expect(binViolation(col, pack.edges[f])).toBeNull();
    });
    expect(pack.bins.filter((b) => b === MISSING_BIN).length).toBe(floatCol.filter(Number.isNaN).length + intCol.filter(Number.isNaN).length);
  });

  it("rejects a maxBins outside [2, 65535] with an OptionsError", () => {
    expect(() => buildPack(small(), { maxBins: 1 })).toThrow(OptionsError);
    expect(() => buildPack(small(), { maxBins: 65536 })).toThrow(/maxBins/);
    expect(buildPack(small(), { maxBins: 2 }).edges.every((e) => e.length <= 1)).toBe(true);
  });
});

describe("integer columns (counted and binned by pack-kernels.ts)", () => {
  const CHUNK = 1 << 16;
  const rnd = random(11);
  const ints = (n: number, lo: number, hi: number) => Array.from({ length: n }, () => lo + Math.floor(rnd() * (hi - lo + 1)));
  const withNaN = (col: number[], at: number[]) => col.map((x, i) => (at.includes(i) ? NaN : x));
  const twoChunks = ints(2 * CHUNK + 3, -300, 300);
  const cases: Record<string, number[]> = {
    "one value": [7],
    "two values": [3, -2],
    "three, the odd last value the greatest": [5, 5, 9],
    "three, the odd last value the least": [5, 6, 1],
    "five, NaN first": [NaN, 4, 1, 4, 4],
    "NaN only at the end": [2, 2, 3, NaN],
    "a fraction among integers": [1, 2.5, 3, 4],
    "a fraction last, after an even count": [1, 2, 2.5],
    "zero and minus zero": [0, -0, 0, -0, 1, -0],
    "one value repeated": new Array<number>(1001).fill(42),
    "zero pixels and a few others": ints(999, 0, 255).map((x, i) => (i % 3 === 0 ? x : 0)),
    "negative and positive, NaN inside": withNaN(ints(1001, -1000, 1000), [0, 17, 500, 1000]),
    "a range of 65535 (counted)": [0, 65535, ...ints(501, 0, 65535)],
    "a range of 65536 (sorted)": [0, 65536, ...ints(501, 0, 65536)],
    "large integers (sorted)": [1e15, 1e15 + 2, 1e15 + 2, 1e15 + 7],
    "an infinity among integers": [1, 2, Infinity, 2, -Infinity, 3],
    "integers over two chunks and a bit": twoChunks,
    "two chunks, NaN in the second": withNaN(twoChunks, [CHUNK + 5, 2 * CHUNK + 2]),
    "two chunks, a fraction in the last value": [...twoChunks.slice(0, -1), 0.5],
  };

  it("makes the edges the sorting path makes: the same column shifted by 0.5 (never integers) gives edges 0.5 higher", () => {
    for (const [name, col] of Object.entries(cases)) {
      const edges = Array.from(computeEdges(Float64Array.from(col)));
      const shifted = Array.from(computeEdges(Float64Array.from(col, (x) => x + 0.5)), (e) => e - 0.5);
      expect(edges, name).toEqual(shifted);
      if (new Set(col.filter((x) => !Number.isNaN(x))).size > 1) expect(edges.length, name).toBeGreaterThan(0);
    }
  });

  it("stores binOf(edges, x) for every cell, and each column's edges are its own (counters cleared between columns)", () => {
    const n = twoChunks.length;
    const fit = (col: number[]) => Array.from({ length: n }, (_, i) => col[i % col.length]);
    const columns = Object.values(cases).map(fit);
    const pack = buildPack(regression(columns, columns[0].map((_, i) => i % 7)));
    columns.forEach((col, f) => {
      const name = Object.keys(cases)[f];
      expect(Array.from(pack.edges[f]), name).toEqual(Array.from(computeEdges(Float64Array.from(col))));
      const stored = pack.bins.subarray(f * n, (f + 1) * n);
      const wrong = col.findIndex((x, r) => stored[r] !== binOf(pack.edges[f], x));
      expect(wrong, `${name}: row ${wrong}`).toBe(-1);
    });
  });
});

describe("missingCells", () => {
  it("counts the missing cells of every column: none, the first and last rows, all, and 16-bit columns", () => {
    const n = 3000;
    const columns = [
      Array.from({ length: n }, (_, r) => r % 7), // none
      Array.from({ length: n }, (_, r) => (r === 0 || r === n - 1 ? NaN : r % 5)), // the first and the last row
      Array.from({ length: n }, () => NaN), // all
      Array.from({ length: n }, (_, r) => (r % 3 === 1 ? NaN : r)), // every third, 3000 distinct values
      Array.from({ length: n }, (_, r) => (r >= n - 10 ? NaN : r % 11)), // a run at the end
    ];
    const labels = Array.from({ length: n }, (_, r) => (r % 2 === 0 ? "a" : "b"));
    const dataset = classification(columns, labels);
    const expected = columns.reduce((sum, c) => sum + c.filter(Number.isNaN).length, 0);
    expect(expected).toBe(2 + n + n / 3 + 10);
    // 8-bit bins only, then with the wide column in 16 bits.
    for (const maxBins of [MAX_BINS, 4000]) {
      const pack = buildPack(dataset, { maxBins });
      expect(pack.wideColumn !== undefined).toBe(maxBins > MAX_BINS);
      expect(missingCells(pack)).toBe(expected);
    }
  });
});

describe("encodePack / decodePack", () => {
  it("round-trips a classification pack through a copy of its bytes: equal arrays, same hash", () => {
    const pack = buildPack(small());
    const copy = encodePack(pack).slice();
    expect(copy.buffer).not.toBe(pack.bytes.buffer);
    const back = decodePack(copy);
    expectSamePack(pack, back);
    expect(Array.from(back.bins.subarray(0, 6))).toEqual([0, 1, 2, MISSING_BIN, 3, 4]);
  });

  it("round-trips the fixtures (string classes, integer classes, regression)", () => {
    for (const name of ["iris", "digits", "diabetes"] as const) {
      const pack = buildPack(fixture(name));
      expectSamePack(pack, decodePack(encodePack(pack).slice()));
    }
  });

  it("decodes bytes that do not start on an 8-byte boundary", () => {
    const pack = buildPack(small());
    const bytes = encodePack(pack);
    const shifted = new Uint8Array(bytes.length + 3);
    shifted.set(bytes, 3);
    expectSamePack(pack, decodePack(shifted.subarray(3)));
  });

  it("hash is the sha256 of the bytes and changes when one bin changes", () => {
    const ds = small();
    const pack = buildPack(ds);
    expect(pack.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(buildPack(small()).hash).toBe(pack.hash);
    // Swapping two cells keeps the edges and moves two rows to other bins.
    const swapped = small();
    swapped.columns[0][0] = 2;
    swapped.columns[0][1] = 1;
    const other = buildPack(swapped);
    expect(other.edges.map((e) => Array.from(e))).toEqual(pack.edges.map((e) => Array.from(e)));
    expect(other.hash).not.toBe(pack.hash);
    // The same in the bytes directly: the last byte is the last row's bin of the last feature.
    const bytes = encodePack(pack).slice();
    bytes[bytes.length - 1] ^= 1;
    const flipped = decodePack(bytes);
    expect(flipped.hash).not.toBe(pack.hash);
    expect(flipped.bins[flipped.bins.length - 1]).not.toBe(pack.bins[pack.bins.length - 1]);
  });

  it("hash depends on the target and names, not only the bins", () => {
    const pack = buildPack(small());
    const relabelled = small();
    relabelled.featureNames = ["x0", "renamed"];
    expect(buildPack(relabelled).hash).not.toBe(pack.hash);
    const y = small();
    (y.target as { codes: Uint16Array }).codes[0] = 1;
    expect(buildPack(y).hash).not.toBe(pack.hash);
  });

  it("rejects foreign bytes, wrong magic, wrong version and truncation with a one-line FormatError", () => {
    const bytes = encodePack(buildPack(small())).slice();
    expectFormatError(() => decodePack(new TextEncoder().encode("sepal_length,sepal_width\n5.1,3.5\n")), /not a Canopy dataset pack/);
    expectFormatError(() => decodePack(new Uint8Array(0)), /too short/);
    const rnd = random(4);
    expectFormatError(() => decodePack(Uint8Array.from({ length: 4096 }, () => Math.floor(rnd() * 256))), /not a Canopy dataset pack/);

    const badMagic = bytes.slice();
    badMagic[0] = "X".charCodeAt(0);
    expectFormatError(() => decodePack(badMagic), /bad magic/);

    const v2 = bytes.slice();
    new DataView(v2.buffer).setUint32(8, PACK_VERSION + 1, true);
    expectFormatError(() => decodePack(v2), new RegExp(`version ${PACK_VERSION + 1}`));

    expectFormatError(() => decodePack(bytes.subarray(0, bytes.length - 1).slice()), /truncated/);
    expectFormatError(() => decodePack(bytes.subarray(0, 20).slice()), /truncated/);
    const longer = new Uint8Array(bytes.length + 8);
    longer.set(bytes);
    expectFormatError(() => decodePack(longer), /oversized/);
  });

  it("rejects every truncation with a FormatError; a corrupted header byte never crashes nor alters the numbers", () => {
    const pack = buildPack(small());
    const bytes = encodePack(pack).slice();
    for (let n = 0; n < bytes.length; n++) {
      expect(() => decodePack(bytes.slice(0, n)), `truncated to ${n} bytes`).toThrow(FormatError);
    }
    const headerEnd = 16 + new DataView(bytes.buffer).getUint32(12, true);
    let rejected = 0;
    for (let i = 0; i < headerEnd; i++) {
      const bad = bytes.slice();
      bad[i] ^= 0xff;
      let decoded: DatasetPack;
      try {
        decoded = decodePack(bad);
      } catch (e) {
        expect(e, `byte ${i} flipped`).toBeInstanceOf(FormatError);
        rejected++;
        continue;
      }
      // Only a flip inside a name can still parse (there is no checksum); the hash then tells the packs apart.
      expect(decoded.hash, `byte ${i} flipped`).not.toBe(pack.hash);
      expect(Array.from(decoded.bins)).toEqual(Array.from(pack.bins));
      expect(decoded.edges.map((e) => Array.from(e))).toEqual(pack.edges.map((e) => Array.from(e)));
    }
    expect(rejected).toBeGreaterThan(headerEnd * 0.8);
  });

  it("rejects a crafted header whose row count overflows 32-bit offset arithmetic", () => {
    // 2^29 regression rows take 2^32 bytes of targets: a 32-bit offset computation would wrap to 0.
    const header = { featureNames: [], labelName: "y", nRows: 2 ** 29, edgeCounts: [], task: "regression" };
    const json = new TextEncoder().encode(JSON.stringify(header));
    const bytes = new Uint8Array(Math.ceil((16 + json.length) / 8) * 8);
    bytes.set(new TextEncoder().encode("CNPYPACK"));
    new DataView(bytes.buffer).setUint32(8, PACK_VERSION, true);
    new DataView(bytes.buffer).setUint32(12, json.length, true);
    bytes.set(json, 16);
    expectFormatError(() => decodePack(bytes), /truncated/);
  });

  it("rejects a class code out of range", () => {
    const pack = buildPack(small());
    const bytes = encodePack(pack).slice();
    const codeOffset = pack.target.task === "classification" ? pack.target.codes.byteOffset - pack.bytes.byteOffset : -1;
    new DataView(bytes.buffer).setUint16(codeOffset, 7, true);
    expectFormatError(() => decodePack(bytes), /class code/);
  });

  it("with shared: true, the pack lives in a SharedArrayBuffer and decoding it makes views, not copies", () => {
    const pack = buildPack(fixture("iris"), { shared: true });
    expect(pack.bytes.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(pack.bins.buffer).toBe(pack.bytes.buffer);
    expect(pack.edges[0].buffer).toBe(pack.bytes.buffer);
    const decoded = decodePack(pack.bytes);
    expect(decoded.bins.buffer).toBe(pack.bytes.buffer);
    expect(decoded.target.task === "classification" && decoded.target.codes.buffer).toBe(pack.bytes.buffer);
    expectSamePack(pack, decoded);
    // A write through the shared bytes is seen by the decoded view: it is the same memory.
    const before = decoded.bins[0];
    pack.bins[0] = before ^ 1;
    expect(decoded.bins[0]).toBe(before ^ 1);
    pack.bins[0] = before;
    // Without shared: an ordinary ArrayBuffer.
    expect(buildPack(fixture("iris")).bytes.buffer).toBeInstanceOf(ArrayBuffer);
  });
});

describe("rowMajorBins", () => {
  it("is the transpose of the column-major bins, whatever the feature count (whole 16 x 16 tiles and the bytes past them)", () => {
    const rnd = random(21);
    for (const nFeatures of [1, 3, 4, 5, 8, 16, 17, 68]) {
      const n = 150;
      const columns = Array.from({ length: nFeatures }, () => Array.from({ length: n }, () => (rnd() < 0.1 ? NaN : Math.floor(rnd() * 200))));
      const pack = buildPack(regression(columns, Array.from({ length: n }, () => rnd())));
      for (const shared of [false, true]) {
        const copy = { ...pack, rowBins: undefined };
        const rows = rowMajorBins(copy, shared);
        expect(rows.buffer instanceof SharedArrayBuffer).toBe(shared);
        for (let r = 0; r < n; r++) for (let f = 0; f < nFeatures; f++) expect(rows[r * nFeatures + f]).toBe(pack.bins[f * n + r]);
      }
    }
  });

  it("transposes in bands of rows: every band size, the last band short", () => {
    const rnd = random(22);
    for (const [nRows, nFeatures] of [[1, 1], [16, 16], [100, 48], [333, 37], [1000, 784]]) {
      const bins = Uint8Array.from({ length: nRows * nFeatures }, () => Math.floor(rnd() * 256));
      for (const bandRows of [16, 32, 48, 1024]) {
        const out = new Uint8Array(nRows * nFeatures);
        transposeBins(bins, nRows, nFeatures, out, bandRows * nFeatures);
        let wrong = -1;
        for (let r = 0; r < nRows && wrong < 0; r++) for (let f = 0; f < nFeatures; f++) if (out[r * nFeatures + f] !== bins[f * nRows + r]) wrong = r;
        expect(wrong, `${nRows} x ${nFeatures} in bands of ${bandRows}`).toBe(-1);
      }
    }
  });
});
