// Benchmark datasets: digits (fixed 75/25 split) and Fashion-MNIST subsets, loaded ONCE in TS and handed to
// every engine (Canopy in-process, sklearn and ml-random-forest via files) so all engines see the same rows.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";

/** One split of a dataset: pixel-like features stored as uint8, row-major. */
export interface Part {
  nRows: number;
  /** nRows × nFeatures, row-major. */
  X: Uint8Array;
  /** Class codes indexing BenchCase.classes. */
  y: Uint8Array;
}

export interface BenchCase {
  id: string;
  label: string;
  featureNames: string[];
  labelName: string;
  classes: string[];
  nFeatures: number;
  train: Part;
  test: Part;
}

export const FM_DIR = "/usr/share/datasets/fashion-mnist";

/** A small seeded PRNG (mulberry32) so the digits split is the same on every machine. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Deterministic shuffle split: returns ascending train and test row indices (testFraction of rows, rounded). */
export function splitIndices(nRows: number, testFraction: number, seed: number): { train: Uint32Array; test: Uint32Array } {
  const order = Array.from({ length: nRows }, (_, i) => i);
  const rand = mulberry32(seed);
  for (let i = nRows - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const nTest = Math.round(nRows * testFraction);
  const test = Uint32Array.from(order.slice(0, nTest)).sort();
  const train = Uint32Array.from(order.slice(nTest)).sort();
  return { train, test };
}

/** Parse the digits CSV (all-numeric, label last). Values must be integers 0..255 so they fit the uint8 handoff. */
export function parseNumericCsv(text: string): { header: string[]; rows: number[][] } {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  const header = lines[0].split(",").map((s) => s.trim());
  const rows = lines.slice(1).map((line, i) => {
    const cells = line.split(",");
    if (cells.length !== header.length) throw new Error(`digits csv: row ${i + 2} has ${cells.length} cells, expected ${header.length}`);
    return cells.map((c) => {
      const v = Number(c);
      if (!Number.isInteger(v) || v < 0 || v > 255) throw new Error(`digits csv: row ${i + 2} has non-uint8 value "${c}"`);
      return v;
    });
  });
  return { header, rows };
}

function takeRows(rows: number[][], idx: Uint32Array, nFeatures: number, codeOf: Map<number, number>): Part {
  const X = new Uint8Array(idx.length * nFeatures);
  const y = new Uint8Array(idx.length);
  idx.forEach((r, i) => {
    const row = rows[r];
    for (let f = 0; f < nFeatures; f++) X[i * nFeatures + f] = row[f];
    y[i] = codeOf.get(row[nFeatures])!;
  });
  return { nRows: idx.length, X, y };
}

export function loadDigits(path = "test/fixtures/digits.csv", seed = 42): BenchCase {
  const { header, rows } = parseNumericCsv(readFileSync(path, "utf8"));
  const nFeatures = header.length - 1;
  const labels = [...new Set(rows.map((r) => r[nFeatures]))].sort((a, b) => a - b);
  const codeOf = new Map(labels.map((l, i) => [l, i]));
  const split = splitIndices(rows.length, 0.25, seed);
  return {
    id: "digits",
    label: "digits",
    featureNames: header.slice(0, nFeatures),
    labelName: header[nFeatures],
    classes: labels.map(String),
    nFeatures,
    train: takeRows(rows, split.train, nFeatures, codeOf),
    test: takeRows(rows, split.test, nFeatures, codeOf),
  };
}

/** Read an idx file (gzipped or not): magic 0x0000 0x08 (uint8) ndim, then big-endian uint32 dims, then data. */
export function readIdx(bytes: Uint8Array): { dims: number[]; data: Uint8Array } {
  const buf = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.byteLength < 4 || view.getUint16(0) !== 0 || view.getUint8(2) !== 0x08) {
    throw new Error("idx: not an unsigned-byte idx file");
  }
  const ndim = view.getUint8(3);
  const dims: number[] = [];
  for (let i = 0; i < ndim; i++) dims.push(view.getUint32(4 + 4 * i));
  const offset = 4 + 4 * ndim;
  const size = dims.reduce((a, b) => a * b, 1);
  if (buf.byteLength - offset !== size) throw new Error(`idx: expected ${size} data bytes, found ${buf.byteLength - offset}`);
  return { dims, data: new Uint8Array(buf.buffer, buf.byteOffset + offset, size) };
}

function readIdxPair(images: string, labels: string, limit?: number): Part & { nFeatures: number } {
  const img = readIdx(readFileSync(images));
  const lab = readIdx(readFileSync(labels));
  if (img.dims[0] !== lab.dims[0]) throw new Error(`idx: ${images} has ${img.dims[0]} rows but ${labels} has ${lab.dims[0]}`);
  const nFeatures = img.dims.slice(1).reduce((a, b) => a * b, 1);
  const nRows = Math.min(limit ?? img.dims[0], img.dims[0]);
  return { nRows, nFeatures, X: img.data.slice(0, nRows * nFeatures), y: lab.data.slice(0, nRows) };
}

export const FM_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/** Fashion-MNIST: the first nTrain rows of the train idx, and the full 10k test idx. */
export function loadFashionMnist(nTrain: number, dir = FM_DIR): BenchCase {
  const train = readIdxPair(join(dir, "train-images-idx3-ubyte.gz"), join(dir, "train-labels-idx1-ubyte.gz"), nTrain);
  const test = readIdxPair(join(dir, "t10k-images-idx3-ubyte.gz"), join(dir, "t10k-labels-idx1-ubyte.gz"));
  if (train.nRows < nTrain) throw new Error(`fashion-mnist: asked for ${nTrain} train rows, found ${train.nRows}`);
  return {
    id: `fm-${nTrain / 1000}k`,
    label: `FM ${nTrain / 1000}k`,
    featureNames: Array.from({ length: train.nFeatures }, (_, i) => `pixel${i}`),
    labelName: "label",
    // idx labels are codes 0..9; the class names only label the output.
    classes: FM_CLASSES,
    nFeatures: train.nFeatures,
    train: { nRows: train.nRows, X: train.X, y: train.y },
    test: { nRows: test.nRows, X: test.X, y: test.y },
  };
}

/** sha256 over the exact bytes every engine trains and tests on; the Python side recomputes it after loading. */
export function fingerprint(c: BenchCase): string {
  const h = createHash("sha256");
  for (const part of [c.train.X, c.train.y, c.test.X, c.test.y]) h.update(part);
  return h.digest("hex");
}

/** Write the case as raw uint8 files + meta.json under dir/<id>; returns that folder. */
export function writeCaseFiles(c: BenchCase, dir: string): string {
  const out = join(dir, c.id);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, "X_train.u8"), c.train.X);
  writeFileSync(join(out, "y_train.u8"), c.train.y);
  writeFileSync(join(out, "X_test.u8"), c.test.X);
  writeFileSync(join(out, "y_test.u8"), c.test.y);
  const meta = { id: c.id, label: c.label, nTrain: c.train.nRows, nTest: c.test.nRows, nFeatures: c.nFeatures, classes: c.classes, featureNames: c.featureNames, labelName: c.labelName, fingerprint: fingerprint(c) };
  writeFileSync(join(out, "meta.json"), JSON.stringify(meta, null, 2));
  return out;
}

/** Read back what writeCaseFiles wrote (used by the ml-random-forest child process). */
export function readCaseFiles(caseDir: string): { meta: { nTrain: number; nTest: number; nFeatures: number; classes: string[] }; train: Part; test: Part } {
  const meta = JSON.parse(readFileSync(join(caseDir, "meta.json"), "utf8"));
  const part = (x: string, y: string, n: number): Part => ({ nRows: n, X: new Uint8Array(readFileSync(join(caseDir, x))), y: new Uint8Array(readFileSync(join(caseDir, y))) });
  return { meta, train: part("X_train.u8", "y_train.u8", meta.nTrain), test: part("X_test.u8", "y_test.u8", meta.nTest) };
}

/** The case writeCaseFiles wrote, whole again (for Canopy's child process). */
export function readCase(caseDir: string): BenchCase {
  const { meta, train, test } = readCaseFiles(caseDir) as ReturnType<typeof readCaseFiles> & { meta: { id: string; label: string; featureNames: string[]; labelName: string } };
  return { id: meta.id, label: meta.label, featureNames: meta.featureNames, labelName: meta.labelName, classes: meta.classes, nFeatures: meta.nFeatures, train, test };
}

/** Row-major uint8 → number[][] (ml-random-forest's input). */
export function toRows(p: Part, nFeatures: number): number[][] {
  return Array.from({ length: p.nRows }, (_, r) => Array.from(p.X.subarray(r * nFeatures, (r + 1) * nFeatures)));
}
