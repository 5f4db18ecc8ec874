import { createHash } from "node:crypto";
import { FormatError, OptionsError } from "./errors.ts";
import { schemaProblem, type FeatureKind, type TableSchema } from "./schema.ts";
import type { Dataset, Target } from "./types.ts";
import { ColumnKernels, TALLY_RANGE, transposeBins } from "./pack-kernels.ts";

/** Bin value that marks a missing cell. Real bins are 0..254. */
export const MISSING_BIN = 255;
/** Bins an 8-bit feature holds; a feature with more bins (or category codes) is a 16-bit feature. */
export const MAX_BINS = 255;
/** The missing bin of a 16-bit feature. Its real bins are 0..65534. */
export const MISSING_WIDE_BIN = 0xffff;
/** Bins a 16-bit feature holds, and the largest --max-bins. */
export const MAX_WIDE_BINS = 0xffff;

const MAGIC = "CNPYPACK";
/**
 * Version 2 records each feature's kind and, for a categorical feature, its category names (bin = category
 * code, MISSING_BIN for missing), plus the table schema. Version 3 adds 16-bit features (more than 255 bins or
 * category codes; their bins in a section of their own) and per-row sample weights. A pack is written in the
 * oldest version that holds it, so a pack without either is a version 2 pack, byte for byte (and keeps its
 * hash). Version 1 packs (all numeric) still decode.
 */
export const PACK_VERSION = 3;
const READABLE_VERSIONS = [1, 2, 3];

/**
 * A feature as the pack stores it. `bits` is the width of its bins: 8 (bins 0..254, MISSING_BIN 255), or 16
 * for a feature with more bins or category codes (bins 0..65534, MISSING_WIDE_BIN 65535), kept in the pack's
 * 16-bit section (`wideBins`).
 */
export interface PackFeature {
  kind: FeatureKind;
  /** categorical: category names by code (bin). */
  categories?: string[];
  bits: 8 | 16;
}

/**
 * A dataset prepared once for training: every feature quantile-binned to a Uint8 column. Column-major so a
 * split scans one contiguous column. `bytes` is the encoding itself; the arrays are views into it, so posting
 * a SharedArrayBuffer-backed pack to worker threads shares it instead of copying.
 */
export interface DatasetPack {
  featureNames: string[];
  labelName: string;
  nRows: number;
  nFeatures: number;
  /** bins[f * nRows + r]; MISSING_BIN for a missing cell. A 16-bit feature's column here is unused (zeros). */
  bins: Uint8Array;
  /** 16-bit features' bins: wideBins[wideColumn[f] * nRows + r]; MISSING_WIDE_BIN for a missing cell. */
  wideBins?: Uint16Array;
  /** Per feature: its column in wideBins, or -1 for an 8-bit feature; absent when every feature is 8-bit. */
  wideColumn?: Int32Array;
  /** Per-row sample weights (scikit-learn's sample_weight), when the table has a weight column. */
  weights?: Float64Array;
  /** Per feature, ascending; bin(x) = first b with x <= edges[b], else edges.length. */
  edges: Float64Array[];
  target: Target;
  /** Per feature: numeric (bins are quantile bins of `edges`) or categorical (bins are category codes). */
  features: PackFeature[];
  /** How the input's columns became these features, when the pack was made from a table with a schema. */
  schema?: TableSchema;
  /** sha256 (hex) of `bytes`. */
  hash: string;
  bytes: Uint8Array;
  /** Row-major copy of `bins` for training, made once per pack (see rowMajorBins); not part of the encoding. */
  rowBins?: Uint8Array;
  /** Row-major copy of `wideBins` (rowWideBins[r * nWide + wideColumn[f]]), made once like rowBins. */
  rowWideBins?: Uint16Array;
}

export interface PackOptions {
  /**
   * At most this many bins per numeric feature (plus the missing bin): default 255 (8-bit bins); up to 65535,
   * features with more than 255 bins are then 16-bit features.
   */
  maxBins?: number;
  /** Allocate the encoding in a SharedArrayBuffer (for worker threads). */
  shared?: boolean;
}

/** Integer-valued columns with a small range are counted and binned through lookup tables. */
const MAX_INTEGER_RANGE = TALLY_RANGE;

/** The distinct present values of a column, sorted, with their counts; `range` is [min, max] of an integer column. */
interface ColumnValues {
  range: [number, number] | null;
  distinct: number[];
  counts: number[];
  n: number;
  /** Some value is NaN (known for integer columns, which bin faster without). */
  hasNaN?: boolean;
}

/**
 * A column's distinct values and counts. A column of integers within MAX_INTEGER_RANGE is counted (pack-kernels.ts:
 * a pass finds that it is one and its range, a second counts, on the values the first left in the kernels' memory);
 * any other is sorted.
 */
function columnValues(column: Float64Array, kernels: ColumnKernels = new ColumnKernels()): ColumnValues {
  let first = 0;
  while (first < column.length && column[first] !== column[first]) first++;
  if (first === column.length) return { range: null, distinct: [], counts: [], n: 0 };
  const v0 = column[first];
  // Below 2^40 every v + offset is an exact integer.
  const range = Number.isInteger(v0) && Math.abs(v0) < 2 ** 40 ? kernels.integerRange(column, first, v0) : null;
  if (range !== null) {
    // Values lie within MAX_INTEGER_RANGE of v0, so v - v0 + offset indexes the counters (four per value).
    const offset = MAX_INTEGER_RANGE - v0;
    kernels.tally(column, first, offset, range.hasNaN);
    const tally = kernels.counts;
    const distinct: number[] = [];
    const counts: number[] = [];
    let n = 0;
    for (let k = range.min + offset; k <= range.max + offset; k++) {
      const c = tally[4 * k] + tally[4 * k + 1] + tally[4 * k + 2] + tally[4 * k + 3];
      if (c === 0) continue;
      distinct.push(k - offset);
      counts.push(c);
      n += c;
      tally[4 * k] = tally[4 * k + 1] = tally[4 * k + 2] = tally[4 * k + 3] = 0;
    }
    return { range: [range.min, range.max], distinct, counts, n, hasNaN: range.hasNaN || first > 0 };
  }
  const sorted = new Float64Array(column.length);
  let n = 0;
  for (let i = 0; i < column.length; i++) {
    const v = column[i];
    if (v === v) sorted[n++] = v;
  }
  const values = sorted.subarray(0, n).sort();
  const distinct: number[] = [];
  const counts: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (distinct.length > 0 && distinct[distinct.length - 1] === v) counts[counts.length - 1]++;
    else {
      distinct.push(v);
      counts.push(1);
    }
  }
  return { range: null, distinct, counts, n };
}

/**
 * Bin edges for one column. Distinct values get a bin each when they fit; otherwise bins are filled greedily
 * to about equal counts, and a value heavier than the running target (a spike, such as the zero pixel) gets a
 * bin of its own instead of swallowing its neighbours. Edges sit midway between adjacent distinct values.
 */
export function computeEdges(column: Float64Array, maxBins = MAX_BINS): Float64Array {
  return edgesOf(columnValues(column), maxBins);
}

function edgesOf({ distinct, counts, n }: ColumnValues, maxBins: number): Float64Array {
  const d = distinct.length;
  if (d <= 1) return new Float64Array(0);
  const cuts: number[] = []; // cut after distinct index i
  if (d <= maxBins) {
    for (let i = 0; i < d - 1; i++) cuts.push(i);
  } else {
    let remainingCount = n;
    let remainingBins = maxBins;
    let acc = 0;
    for (let i = 0; i < d - 1 && remainingBins > 1; i++) {
      const target = remainingCount / remainingBins;
      acc += counts[i];
      // Close the bin when it is full, or when the next value alone would overfill it.
      if (acc >= target || acc + counts[i + 1] > target * 1.5) {
        cuts.push(i);
        remainingCount -= acc;
        remainingBins--;
        acc = 0;
      }
    }
  }
  const edges = new Float64Array(cuts.length);
  for (let k = 0; k < cuts.length; k++) {
    const lo = distinct[cuts[k]];
    const hi = distinct[cuts[k] + 1];
    let mid = lo + (hi - lo) / 2;
    if (!(mid < hi)) mid = lo; // adjacent floats: keep lo on the left
    edges[k] = mid;
  }
  return edges;
}

/** The bin of a raw value under `edges` (binary search for the first edge >= x). */
export function binOf(edges: Float64Array, x: number): number {
  if (x !== x) return MISSING_BIN;
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (edges[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

interface PackHeader {
  featureNames: string[];
  labelName: string;
  nRows: number;
  edgeCounts: number[];
  task: Target["task"];
  classes?: string[];
  /** Version 2. */
  features?: PackFeature[];
  schema?: TableSchema;
  /** Version 3: the pack holds a weight per row. */
  weights?: true;
}

/** Edges that put category code c in bin c (codes are the raw values of a categorical feature). */
function categoricalEdges(count: number): Float64Array {
  return Float64Array.from({ length: Math.max(0, count - 1) }, (_, c) => c + 0.5);
}

// Not `(n + 7) & ~7`: bitwise ops are 32-bit, and crafted headers can ask for sizes past 2^31.
const align8 = (n: number) => Math.ceil(n / 8) * 8;

/** Bins a dataset and encodes it. The returned pack's arrays are views into its `bytes`. */
export function buildPack(dataset: Dataset, options: PackOptions = {}): DatasetPack {
  const maxBins = options.maxBins ?? MAX_BINS;
  if (!Number.isInteger(maxBins) || maxBins < 2 || maxBins > MAX_WIDE_BINS) {
    throw new OptionsError(`maxBins must be an integer in [2, ${MAX_WIDE_BINS}] (got ${maxBins})`);
  }
  const { nRows, columns } = dataset;
  const nFeatures = columns.length;
  // Two passes over each column: its values (and whether it is a small-range integer column), then its bins. Binning
  // each column right after its edges, while it is still in cache, measured no faster on FM 60k and needs a copy of
  // the bins until the pack's layout is known.
  const kernels = new ColumnKernels();
  const ranges: ([number, number] | null)[] = [];
  const hasNaN: boolean[] = [];
  const edges = columns.map((c, f) => {
    const info = dataset.features?.[f];
    const values = columnValues(c, kernels);
    ranges.push(values.range);
    hasNaN.push(values.hasNaN !== false);
    if (info?.kind !== "categorical") return edgesOf(values, maxBins);
    if (info.categories!.length > MAX_WIDE_BINS) {
      throw new OptionsError(`feature ${JSON.stringify(info.name)} has ${info.categories!.length} categories; a pack holds at most ${MAX_WIDE_BINS}`);
    }
    return categoricalEdges(info.categories!.length);
  });
  // A feature is 16-bit when its bins (edges + 1) do not fit below the 8-bit missing bin.
  const features: PackFeature[] = columns.map((_, f) => {
    const info = dataset.features?.[f];
    const bits = edges[f]!.length + 1 > MAX_BINS ? 16 : 8;
    return info?.kind === "categorical" ? { kind: "categorical", categories: info.categories!, bits } : { kind: "numeric", bits };
  });
  const weights = dataset.weights;
  if (weights !== undefined) checkWeights(weights, nRows);
  const header: PackHeader = {
    featureNames: dataset.featureNames,
    labelName: dataset.labelName,
    nRows,
    edgeCounts: edges.map((e) => e.length),
    task: dataset.target.task,
    ...(dataset.target.task === "classification" ? { classes: dataset.target.classes } : {}),
    features,
    ...(dataset.schema ? { schema: dataset.schema } : {}),
    ...(weights !== undefined ? { weights: true as const } : {}),
  };
  const layout = layoutFor(header, nFeatures);
  const buffer = options.shared ? new SharedArrayBuffer(layout.total) : new ArrayBuffer(layout.total);
  const bytes = new Uint8Array(buffer);
  writePreamble(bytes, layout.headerBytes, layout.version);
  let off = layout.edgesOffset;
  for (const e of edges) {
    new Float64Array(buffer, off, e.length).set(e);
    off += e.length * 8;
  }
  if (dataset.target.task === "classification") {
    new Uint16Array(buffer, layout.targetOffset, nRows).set(dataset.target.codes);
  } else {
    new Float64Array(buffer, layout.targetOffset, nRows).set(dataset.target.values);
  }
  if (weights !== undefined) new Float64Array(buffer, layout.weightsOffset, nRows).set(weights);
  const bins = new Uint8Array(buffer, layout.binsOffset, nFeatures * nRows);
  const wide = layout.nWide > 0 ? new Uint16Array(buffer, layout.wideOffset, layout.nWide * nRows) : new Uint16Array(0);
  let w = 0;
  for (let f = 0; f < nFeatures; f++) {
    if (features[f]!.bits === 8) binColumn(columns[f], edges[f], ranges[f], bins.subarray(f * nRows, (f + 1) * nRows), MISSING_BIN, kernels, hasNaN[f]);
    else binColumn(columns[f], edges[f], ranges[f], wide.subarray(w * nRows, ++w * nRows), MISSING_WIDE_BIN, kernels, hasNaN[f]);
  }
  return decodePack(bytes);
}

function checkWeights(weights: Float64Array, nRows: number): void {
  if (weights.length !== nRows) throw new OptionsError(`sample weights: ${weights.length} for ${nRows} rows`);
  let total = 0;
  for (let r = 0; r < nRows; r++) {
    const v = weights[r];
    if (!(v >= 0 && v < Infinity)) throw new OptionsError(`sample weight of row ${r + 1} is ${v}: weights are finite numbers >= 0`);
    total += v;
  }
  if (!(total > 0)) throw new OptionsError("sample weights sum to 0");
}

/**
 * Bins a column into `out`: an integer column through a lookup table of its range (by the kernels when `out` is
 * 8-bit), any other by binary search.
 */
function binColumn(column: Float64Array, edges: Float64Array, range: [number, number] | null, out: Uint8Array | Uint16Array, missing: number, kernels: ColumnKernels, hasNaN: boolean): void {
  if (range !== null) {
    const [min, max] = range;
    const lut = kernels.lut;
    for (let v = min; v <= max; v++) lut[v - min] = binOf(edges, v);
    if (out instanceof Uint8Array) {
      kernels.bin(column, min, out, missing, hasNaN);
      return;
    }
    for (let r = 0; r < column.length; r++) {
      const x = column[r];
      out[r] = x === x ? lut[(x - min) | 0] : missing;
    }
    return;
  }
  const m = edges.length;
  for (let r = 0; r < column.length; r++) {
    const x = column[r];
    if (x !== x) {
      out[r] = missing;
      continue;
    }
    let lo = 0;
    let hi = m;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (edges[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    out[r] = lo;
  }
}

interface Layout {
  headerBytes: Uint8Array;
  version: number;
  edgesOffset: number;
  targetOffset: number;
  /** Version 3: the weights (weights: true) then the 8-bit bins, then the 16-bit bins. */
  weightsOffset: number;
  binsOffset: number;
  nWide: number;
  wideOffset: number;
  total: number;
}

/** The pack version a header needs: 3 for 16-bit features or weights, else 2. */
function versionFor(header: PackHeader): number {
  return header.weights || header.features?.some((f) => f.bits === 16) ? 3 : 2;
}

function layoutFor(header: PackHeader, nFeatures: number): Layout {
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const edgesOffset = align8(16 + headerBytes.length);
  const totalEdges = header.edgeCounts.reduce((a, b) => a + b, 0);
  const targetOffset = edgesOffset + totalEdges * 8;
  const targetBytes = header.task === "classification" ? header.nRows * 2 : header.nRows * 8;
  const weightsOffset = align8(targetOffset + targetBytes);
  const binsOffset = weightsOffset + (header.weights ? header.nRows * 8 : 0);
  const nWide = header.features?.filter((f) => f.bits === 16).length ?? 0;
  const wideOffset = align8(binsOffset + nFeatures * header.nRows);
  const total = nWide > 0 ? wideOffset + nWide * header.nRows * 2 : binsOffset + nFeatures * header.nRows;
  return { headerBytes, version: versionFor(header), edgesOffset, targetOffset, weightsOffset, binsOffset, nWide, wideOffset, total };
}

function writePreamble(bytes: Uint8Array, headerBytes: Uint8Array, version: number): void {
  // Written in the oldest version that holds the pack (2 or 3); version 1 packs are only read.
  for (let i = 0; i < 8; i++) bytes[i] = MAGIC.charCodeAt(i);
  const view = new DataView(bytes.buffer, bytes.byteOffset, 16);
  view.setUint32(8, version, true);
  view.setUint32(12, headerBytes.length, true);
  bytes.set(headerBytes, 16);
}

/** The pack's encoding (the bytes it was built or decoded from). */
export function encodePack(pack: DatasetPack): Uint8Array {
  return pack.bytes;
}

/** Decodes a pack without copying: arrays are views into `bytes` (re-aligned by one copy if `bytes` is not 8-aligned). */
export function decodePack(input: Uint8Array): DatasetPack {
  let bytes = input;
  if (bytes.byteOffset % 8 !== 0) bytes = bytes.slice();
  if (bytes.length < 16) throw new FormatError("not a Canopy dataset pack: too short");
  let magic = "";
  for (let i = 0; i < 8; i++) magic += String.fromCharCode(bytes[i]);
  if (magic !== MAGIC) throw new FormatError("not a Canopy dataset pack: bad magic bytes");
  const view = new DataView(bytes.buffer, bytes.byteOffset, 16);
  const version = view.getUint32(8, true);
  if (!READABLE_VERSIONS.includes(version)) {
    throw new FormatError(`unsupported dataset pack version ${version} (this build reads versions ${READABLE_VERSIONS.join(" and ")})`);
  }
  const headerLength = view.getUint32(12, true);
  if (16 + headerLength > bytes.length) throw new FormatError("dataset pack is truncated (header)");
  let header: PackHeader;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(16, 16 + headerLength))) as PackHeader;
  } catch {
    throw new FormatError("dataset pack header is corrupt");
  }
  validateHeader(header, version);
  const nFeatures = header.featureNames.length;
  const layout = layoutFor(header, nFeatures);
  if (layout.total !== bytes.length) {
    throw new FormatError(`dataset pack is ${bytes.length < layout.total ? "truncated" : "oversized"}: ${bytes.length} bytes, expected ${layout.total}`);
  }
  const buffer = bytes.buffer;
  const base = bytes.byteOffset;
  const edges: Float64Array[] = [];
  let off = base + layout.edgesOffset;
  for (const count of header.edgeCounts) {
    edges.push(new Float64Array(buffer, off, count));
    off += count * 8;
  }
  const nRows = header.nRows;
  const target: Target =
    header.task === "classification"
      ? { task: "classification", classes: header.classes!, codes: new Uint16Array(buffer, base + layout.targetOffset, nRows) }
      : { task: "regression", values: new Float64Array(buffer, base + layout.targetOffset, nRows) };
  if (target.task === "classification") {
    const k = target.classes.length;
    for (let i = 0; i < nRows; i++) if (target.codes[i] >= k) throw new FormatError("dataset pack is corrupt: class code out of range");
  }
  const features: PackFeature[] = header.features ?? header.featureNames.map(() => ({ kind: "numeric", bits: 8 }));
  let wide: { wideBins: Uint16Array; wideColumn: Int32Array } | undefined;
  if (layout.nWide > 0) {
    let w = 0;
    const wideColumn = Int32Array.from(features, (f) => (f.bits === 16 ? w++ : -1));
    wide = { wideBins: new Uint16Array(buffer, base + layout.wideOffset, layout.nWide * nRows), wideColumn };
  }
  let weights: Float64Array | undefined;
  if (header.weights) {
    weights = new Float64Array(buffer, base + layout.weightsOffset, nRows);
    for (let r = 0; r < nRows; r++) if (!(weights[r] >= 0 && weights[r] < Infinity)) throw new FormatError("dataset pack is corrupt: a sample weight is not a finite number >= 0");
  }
  return {
    featureNames: header.featureNames,
    labelName: header.labelName,
    nRows,
    nFeatures,
    features,
    ...(header.schema ? { schema: header.schema } : {}),
    ...(wide ?? {}),
    ...(weights ? { weights } : {}),
    bins: new Uint8Array(buffer, base + layout.binsOffset, nFeatures * nRows),
    edges,
    target,
    hash: createHash("sha256").update(bytes).digest("hex"),
    bytes,
  };
}

function validateHeader(h: PackHeader, version: number): void {
  // Version 2 may say what each feature is (absent: all numeric, as in version 1).
  if (version >= 2 && h !== null && typeof h === "object" && h.features !== undefined) {
    const features = h.features;
    const okFeatures =
      Array.isArray(features) &&
      Array.isArray(h.featureNames) &&
      features.length === h.featureNames.length &&
      features.every(
        (f, i) =>
          f !== null &&
          typeof f === "object" &&
          (f.bits === 8 || (f.bits === 16 && version >= 3)) &&
          Number.isInteger(h.edgeCounts?.[i]) &&
          (f.bits === 8 ? h.edgeCounts[i]! < MAX_BINS : h.edgeCounts[i]! >= MAX_BINS && h.edgeCounts[i]! < MAX_WIDE_BINS) &&
          (f.kind === "numeric" ||
            (f.kind === "categorical" &&
              Array.isArray(f.categories) &&
              f.categories.every((c) => typeof c === "string") &&
              h.edgeCounts?.[i] === Math.max(0, f.categories.length - 1))),
      );
    if (!okFeatures) throw new FormatError("dataset pack header is corrupt (features)");
  }
  if (version >= 2 && h?.schema !== undefined && schemaProblem(h.schema) !== undefined) throw new FormatError("dataset pack header is corrupt (schema)");
  const ok =
    h !== null &&
    typeof h === "object" &&
    Array.isArray(h.featureNames) &&
    h.featureNames.every((n) => typeof n === "string") &&
    typeof h.labelName === "string" &&
    Number.isInteger(h.nRows) &&
    h.nRows >= 0 &&
    Array.isArray(h.edgeCounts) &&
    h.edgeCounts.length === h.featureNames.length &&
    h.edgeCounts.every((c, i) => Number.isInteger(c) && c >= 0 && c < (h.features?.[i]?.bits === 16 ? MAX_WIDE_BINS : MAX_BINS)) &&
    (h.weights === undefined || (h.weights === true && version >= 3)) &&
    (h.task === "regression" || (h.task === "classification" && Array.isArray(h.classes) && h.classes.length > 0));
  if (!ok) throw new FormatError("dataset pack header is corrupt");
}

/**
 * Rows of a pack with their 8-bit bins side by side (row i's at bins[i * nFeatures, ...)), made once by a caller that
 * walks many one-tree forests over the same rows (the held-out rows, tree by tree, for the trees curve): a tree's walk
 * then reads a few cache lines of each row, not a line of every column it visits (FM 20k, 30 trees over 6,700 rows:
 * 45 ms on the columns, 23 ms on the copy).
 */
export interface PackRowCopy {
  rows: Uint32Array;
  bins: Uint8Array;
}

/**
 * `rows`' bins copied row by row (into `out` when given, rows.length × nFeatures bytes), or null for a pack with 16-bit
 * features (walked on its columns).
 */
export function packRowCopy(pack: DatasetPack, rows: Uint32Array, out = new Uint8Array(rows.length * pack.nFeatures)): PackRowCopy | null {
  if (pack.wideColumn !== undefined) return null;
  const nFeatures = pack.nFeatures;
  // A tile of rows at a time: its reads stay near each other in every column, its writes in a small block.
  const TILE = 64;
  for (let i0 = 0; i0 < rows.length; i0 += TILE) copyRowBins(pack, rows, i0, Math.min(rows.length, i0 + TILE), out.subarray(i0 * nFeatures));
  return { rows, bins: out };
}

/** The 8-bit bins of pack rows rows[i0, i1) side by side into `out` (row rows[i]'s at (i - i0) * nFeatures); returns out. */
export function copyRowBins(pack: DatasetPack, rows: Uint32Array, i0: number, i1: number, out: Uint8Array): Uint8Array {
  const { bins, nRows, nFeatures, rowBins } = pack;
  if (rowBins !== undefined) {
    // The pack's row-major copy, when it has one (the embedded runtime makes one for its trainers): a row is one run of
    // bytes. FM 20k, 6,666 held-out rows: 1.7 ms, 13 ms from the columns.
    for (let i = i0; i < i1; i++) out.set(rowBins.subarray(rows[i] * nFeatures, (rows[i] + 1) * nFeatures), (i - i0) * nFeatures);
    return out;
  }
  for (let f = 0; f < nFeatures; f++) {
    const col = f * nRows;
    for (let i = i0; i < i1; i++) out[(i - i0) * nFeatures + f] = bins[col + rows[i]];
  }
  return out;
}

/**
 * The pack's bins row-major (rowBins[r * nFeatures + f]), made once and kept on the pack. Training reads each
 * sample's row once per node for all drawn features. `shared` puts it in a SharedArrayBuffer for worker threads.
 * Transposed by pack-kernels.ts (FM 60k: 95 -> 39 ms, of which 23 ms are the new array's first writes).
 */
export function rowMajorBins(pack: DatasetPack, shared = false): Uint8Array {
  if (pack.rowBins && (!shared || pack.rowBins.buffer instanceof SharedArrayBuffer)) return pack.rowBins;
  const { nRows, nFeatures, bins } = pack;
  const size = nRows * nFeatures;
  const out = new Uint8Array(shared ? new SharedArrayBuffer(size) : new ArrayBuffer(size));
  transposeBins(bins, nRows, nFeatures, out);
  pack.rowBins = out;
  return out;
}

/** The pack's 16-bit bins row-major (rowWideBins[r * nWide + wideColumn[f]]), made once and kept, as rowMajorBins. */
export function rowMajorWideBins(pack: DatasetPack, shared = false): Uint16Array | undefined {
  const wide = pack.wideBins;
  if (wide === undefined) return undefined;
  if (pack.rowWideBins && (!shared || pack.rowWideBins.buffer instanceof SharedArrayBuffer)) return pack.rowWideBins;
  const { nRows } = pack;
  const nWide = wide.length / nRows;
  const size = nRows * nWide * 2;
  const out = new Uint16Array(shared ? new SharedArrayBuffer(size) : new ArrayBuffer(size));
  for (let w = 0; w < nWide; w++) {
    const col = w * nRows;
    for (let r = 0; r < nRows; r++) out[r * nWide + w] = wide[col + r];
  }
  pack.rowWideBins = out;
  return out;
}

/** missingCells of each pack counted so far (a pack never changes): an aggregator reports it for every build on a pack. */
const MISSING_CELLS = new WeakMap<DatasetPack, number>();

/** Missing cells over every feature of the pack. */
export function missingCells(pack: DatasetPack): number {
  let n = MISSING_CELLS.get(pack);
  if (n === undefined) MISSING_CELLS.set(pack, (n = countMissingCells(pack)));
  return n;
}

function countMissingCells(pack: DatasetPack): number {
  const { bins, nRows, wideColumn, wideBins } = pack;
  let n = 0;
  for (let f = 0; f < pack.nFeatures; f++) {
    if (wideColumn !== undefined && wideColumn[f] >= 0) {
      const col = wideColumn[f] * nRows;
      for (let r = 0; r < nRows; r++) if (wideBins![col + r] === MISSING_WIDE_BIN) n++;
    } else {
      // A native search first: most columns have no missing value, and indexOf finds that faster than a loop
      // (FM 20k's 784 columns: 5 ms, 13 ms by the loop).
      const column = bins.subarray(f * nRows, (f + 1) * nRows);
      const first = column.indexOf(MISSING_BIN);
      if (first < 0) continue;
      for (let r = first; r < nRows; r++) if (column[r] === MISSING_BIN) n++;
    }
  }
  return n;
}
