import { crc32 } from "node:zlib";
import { CanopyError, FormatError } from "./errors.ts";
import { resolveParams, type ResolvedParams } from "./options.ts";
import { schemaFeatures, schemaProblem, type TableSchema } from "./schema.ts";
import { MISSING_BIN, MISSING_WIDE_BIN, type DatasetPack, type PackRowCopy } from "./pack.ts";
import { BinnedTrees } from "./predictor.ts";
import { narrowBins } from "./tree-arrays.ts";
import type { CategorySets, Task, Tree } from "./types.ts";

export const FOREST_FORMAT = "canopy-forest";

/**
 * Each forest's binned form for prediction (null: it has none), made on its first raw predict; a WeakMap, so it
 * is not part of the forest's value.
 */
const BINNED = new WeakMap<Forest, BinnedTrees | null>();
/** Batches of fewer raw rows are predicted by walking the stored trees. */
const BINNED_MIN_ROWS = 64;

/** Each forest's binned form for rows of a pack's bins (predictPack), made and kept as BINNED's is. */
const PACK_BINNED = new WeakMap<Forest, BinnedTrees | null>();
/**
 * Version 2 adds a CRC-32 of the binary encoding (a damaged file is refused instead of predicting garbage);
 * version 3 adds the table schema (how input columns become features), so a model predicts from the same kind
 * of rows it was trained on; version 4 adds splits of categorical features into two sets of categories (stored
 * as bitsets) and 16-bit bin thresholds. A model is written in the oldest version that holds it: one with
 * neither is written as version 3, byte for byte as before, so Canopy releases that read version 3 still read
 * it. Versions 1 to 3 still load. The JSON form carries no checksum: it is text people may edit, and it is
 * validated field by field instead.
 */
export const FOREST_VERSION = 4;
/** The version of a model without categorical splits or 16-bit bins. */
const NUMERIC_VERSION = 3;
const READABLE_VERSIONS = [1, 2, 3, 4];
const MAGIC = "CNPYFRST";
/** Binary preamble: magic, version, header length (v1); v2 adds the CRC-32 and a reserved zero word. */
const PREAMBLE_V1 = 16;
const PREAMBLE = 24;

/** Rows to predict: an array of rows, or a row-major matrix. NaN marks a missing value. */
export type Matrix = number[][] | { data: Float64Array; nRows: number; nCols: number };

export interface TreeJSON {
  index: number;
  feature: number[];
  threshold: number[];
  thresholdBin: number[];
  right: number[];
  missingLeft: number[];
  gain: number[];
  values: number[];
  /** Version 4: the tree's category sets (see CategorySets). */
  categorical?: { set: number[]; bounds: number[]; bits: number[] };
}

export interface ForestJSON {
  format: typeof FOREST_FORMAT;
  version: number;
  task: Task;
  featureNames: string[];
  labelName: string;
  classes: string[];
  params: ResolvedParams;
  /** Version 3: how input columns become the features (absent: every feature is a numeric column). */
  schema?: TableSchema;
  trees: TreeJSON[];
}

interface BinaryHeader extends Omit<ForestJSON, "trees"> {
  featureWidth: 2 | 4;
  /** Version 4: `categorySets` and `categoryWords` when the tree has categorical splits. */
  trees: { index: number; nodeCount: number; leafCount: number; categorySets?: number; categoryWords?: number }[];
}

/**
 * A forest, or a grove (some of a build's trees). Trees are kept in ascending tree index; merging groves is
 * concatenation in that order, so a build gives the same model however it was cut into groves.
 */
export class Forest {
  readonly format = FOREST_FORMAT;

  constructor(
    readonly task: Task,
    readonly featureNames: string[],
    readonly labelName: string,
    /** Class names by code; empty for regression. */
    readonly classes: string[],
    readonly params: ResolvedParams,
    readonly trees: Tree[],
    /** The format version this forest was loaded from; encoding it writes the oldest version that holds it (3 or 4). */
    readonly version: number = FOREST_VERSION,
    /** How input columns become the features; absent for a forest of numeric columns only. */
    readonly schema?: TableSchema,
  ) {}

  /** This forest with the table schema of the data it was trained on (the aggregator adds the pack's). */
  withSchema(schema: TableSchema | undefined): Forest {
    if (schema === undefined) return this;
    const names = schemaFeatures(schema).map((f) => f.name);
    if (names.length !== this.featureNames.length || names.some((n, i) => n !== this.featureNames[i])) {
      throw new CanopyError("the schema's features are not the forest's features");
    }
    return new Forest(this.task, this.featureNames, this.labelName, this.classes, this.params, this.trees, this.version, schema);
  }

  get nTrees(): number {
    return this.trees.length;
  }

  get nFeatures(): number {
    return this.featureNames.length;
  }

  get nodeCount(): number {
    let n = 0;
    for (const t of this.trees) n += t.nodeCount;
    return n;
  }

  /** Values per leaf: K class probabilities, or 1 regression value. */
  get valueWidth(): number {
    return this.task === "classification" ? this.classes.length : 1;
  }

  /** Class probabilities averaged over trees (soft vote), n × K row-major. */
  predictProba(X: Matrix): Float64Array {
    this.requireTask("classification", "predictProba");
    const m = toMatrix(X, this.nFeatures);
    return this.average(this.sumRaw(m.data, m.nRows));
  }

  /** Labels (classification) or mean predictions (regression). */
  predict(X: Matrix): string[] | Float64Array {
    const m = toMatrix(X, this.nFeatures);
    return this.finish(this.sumRaw(m.data, m.nRows), m.nRows);
  }

  /**
   * Soft-vote probabilities for rows of a binned pack (e.g. the held-out split). `copy`: those rows' bins copied
   * row by row (PackRowCopy), for a caller that walks many one-tree forests over the same rows.
   */
  predictPackProba(pack: DatasetPack, rows: Uint32Array, copy?: PackRowCopy | null): Float64Array {
    this.requireTask("classification", "predictPackProba");
    return this.average(this.sumPack(pack, rows, copy ?? null));
  }

  predictPack(pack: DatasetPack, rows: Uint32Array, copy?: PackRowCopy | null): string[] | Float64Array {
    return this.finish(this.sumPack(pack, rows, copy ?? null), rows.length);
  }

  /** Mean decrease in impurity, normalised per tree then averaged (sklearn's feature_importances_). */
  featureImportances(): Float64Array {
    const sum = new ImportanceSum(this.nFeatures);
    for (const t of this.trees) sum.add(t);
    return sum.result();
  }

  private requireTask(task: Task, what: string): void {
    if (this.task !== task) throw new CanopyError(`${what} needs a ${task} model; this one is ${this.task}`);
  }

  private average(sums: Float64Array): Float64Array {
    const inv = 1 / this.trees.length;
    for (let i = 0; i < sums.length; i++) sums[i] *= inv;
    return sums;
  }

  private finish(sums: Float64Array, n: number): string[] | Float64Array {
    this.average(sums);
    if (this.task === "regression") return sums;
    const k = this.classes.length;
    const labels: string[] = new Array(n);
    for (let r = 0; r < n; r++) labels[r] = this.classes[argmax(sums, r * k, k)];
    return labels;
  }

  /**
   * Sum of leaf values over trees for raw rows: on the forest's binned form (see BinnedTrees, made once per
   * forest, at the first batch of BINNED_MIN_ROWS rows) when it has one, else by walking the stored trees. A few
   * rows (a server's single-row request) walk the stored trees: binning pays over many rows, and a first
   * request does not wait for the binned form (about 0.1 s for a 100-tree FM model).
   */
  private sumRaw(data: Float64Array, nRows: number): Float64Array {
    if (nRows < BINNED_MIN_ROWS) return this.walkRaw(data, nRows);
    let binned = BINNED.get(this);
    if (binned === undefined) {
      binned = BinnedTrees.of(this.trees, this.nFeatures, this.valueWidth, nRows);
      BINNED.set(this, binned);
    }
    return binned === null ? this.walkRaw(data, nRows) : binned.sumRaw(data, nRows);
  }

  /**
   * Sum of leaf values over trees for raw rows, walking the stored trees. Each block of rows is first copied (one
   * sequential read) into a small buffer that stays in cache while every tree walks it: walking rows in place
   * makes each level a dependent read from memory, and that, not the trees, was most of the time.
   */
  private walkRaw(data: Float64Array, nRows: number): Float64Array {
    const width = this.valueWidth;
    const nCols = this.nFeatures;
    const out = new Float64Array(nRows * width);
    const BLOCK = 64;
    const block = new Float64Array(Math.min(nRows, BLOCK) * nCols);
    for (let r0 = 0; r0 < nRows; r0 += BLOCK) {
      const r1 = Math.min(nRows, r0 + BLOCK);
      block.set(data.subarray(r0 * nCols, r1 * nCols));
      for (const t of this.trees) {
        const { feature, threshold, right, missingLeft, values } = t;
        if (t.categorical !== undefined) {
          for (let r = r0; r < r1; r++) addLeaf(out, r * width, values, right[rawLeaf(t, t.categorical, block, (r - r0) * nCols)] * width, width);
          continue;
        }
        for (let r = r0; r < r1; r++) {
          const base = (r - r0) * nCols;
          let node = 0;
          let f = feature[0];
          while (f >= 0) {
            const v = block[base + f];
            node = v <= threshold[node] || (v !== v && missingLeft[node] === 1) ? node + 1 : right[node];
            f = feature[node];
          }
          const o = right[node] * width;
          const d = r * width;
          for (let c = 0; c < width; c++) out[d + c] += values[o + c];
        }
      }
    }
    return out;
  }

  /**
   * Adds `tree`'s leaf values for rows `rows` of `pack` to `out` (valueWidth per row), as predictPack sums each tree:
   * for callers that add a model tree by tree (the trees curve), without a forest and an array per tree. `tree` is
   * one of a model of this forest's build (the same task, features and classes).
   */
  addPackLeaves(tree: Tree, pack: DatasetPack, rows: Uint32Array, copy: PackRowCopy | null, out: Float64Array): void {
    this.checkPack(pack, rows, copy);
    if (out.length !== rows.length * this.valueWidth) throw new CanopyError(`the sums hold ${out.length} values; ${rows.length} rows need ${rows.length * this.valueWidth}`);
    addTreeOnPack(tree, pack, rows, copy, out, this.valueWidth);
  }

  private checkPack(pack: DatasetPack, rows: Uint32Array, copy: PackRowCopy | null): void {
    if (pack.nFeatures !== this.nFeatures) {
      throw new CanopyError(`the dataset has ${pack.nFeatures} features; the model expects ${this.nFeatures}`);
    }
    if (copy !== null && copy.rows !== rows) throw new CanopyError("a row copy of other rows than those predicted");
  }

  private sumPack(pack: DatasetPack, rows: Uint32Array, copy: PackRowCopy | null): Float64Array {
    this.checkPack(pack, rows, copy);
    const width = this.valueWidth;
    // One tree (evaluation, OOB and the trees curve walk a model so, tree by tree) is walked on the pack's columns, or
    // on the caller's copy of the rows: copying each row's bins for the binned form costs more than one walk does.
    if (pack.wideColumn === undefined && this.trees.length > 1) {
      let binned = PACK_BINNED.get(this);
      if (binned === undefined) {
        binned = BinnedTrees.onPackBins(this.trees, this.nFeatures, width, rows.length);
        PACK_BINNED.set(this, binned);
      }
      if (binned !== null) return binned.sumPack(pack, rows);
    }
    const out = new Float64Array(rows.length * width);
    for (const t of this.trees) addTreeOnPack(t, pack, rows, copy, out, width);
    return out;
  }

  /** Concatenates groves of one build in tree-index order. */
  static merge(parts: Forest[]): Forest {
    if (parts.length === 0) throw new CanopyError("nothing to merge: no groves");
    const first = parts[0];
    const signature = compatibilityKey(first);
    for (const p of parts) {
      if (compatibilityKey(p) !== signature) {
        throw new CanopyError("cannot merge groves of different builds (task, features, classes or parameters differ)");
      }
    }
    const trees = parts.flatMap((p) => p.trees).sort((a, b) => a.index - b.index);
    for (let i = 1; i < trees.length; i++) {
      if (trees[i].index === trees[i - 1].index) throw new CanopyError(`tree ${trees[i].index} appears in two groves`);
    }
    return new Forest(first.task, first.featureNames, first.labelName, first.classes, first.params, trees);
  }

  /** The format version this forest is written in: the oldest that holds its trees. */
  get formatVersion(): number {
    const needs4 = this.trees.some((t) => t.categorical !== undefined || t.thresholdBin instanceof Uint16Array);
    return needs4 ? FOREST_VERSION : NUMERIC_VERSION;
  }

  /** The fields both encodings start with. */
  meta(): Omit<ForestJSON, "trees"> {
    return {
      format: FOREST_FORMAT,
      version: this.formatVersion,
      task: this.task,
      featureNames: this.featureNames,
      labelName: this.labelName,
      classes: this.classes,
      params: this.params,
      ...(this.schema ? { schema: this.schema } : {}),
    };
  }

  toJSON(): ForestJSON {
    return {
      ...this.meta(),
      trees: this.trees.map((t) => ({
        index: t.index,
        feature: Array.from(t.feature),
        threshold: Array.from(t.threshold),
        thresholdBin: Array.from(t.thresholdBin),
        right: Array.from(t.right),
        missingLeft: Array.from(t.missingLeft),
        gain: Array.from(t.gain),
        values: Array.from(t.values),
        ...(t.categorical
          ? { categorical: { set: Array.from(t.categorical.set), bounds: Array.from(t.categorical.bounds), bits: Array.from(t.categorical.bits) } }
          : {}),
      })),
    };
  }

  /**
   * Compact binary form: a 24-byte preamble (magic, version, header length, CRC-32), a JSON header, then per
   * tree its arrays; thresholds and gains are stored for split nodes only. Deterministic: the same trees always
   * give the same bytes.
   */
  toBinary(): Uint8Array {
    const featureWidth = featureWidthOf(this.nFeatures);
    const width = this.valueWidth;
    const version = this.formatVersion;
    const treeHeaders = this.trees.map((t) => treeHeader(t, width));
    const headerBytes = encodeHeader(this.meta(), featureWidth, treeHeaders);
    let size = align8(PREAMBLE + headerBytes.length);
    for (const [i, t] of this.trees.entries()) size += treeBytes(t.nodeCount, internalCount(t), t.values.length, featureWidth, version, treeHeaders[i]);
    const bytes = new Uint8Array(size);
    writePreamble(bytes, headerBytes, version);
    let off = align8(PREAMBLE + headerBytes.length);
    for (const t of this.trees) off = writeTree(bytes, off, t, featureWidth, version);
    new DataView(bytes.buffer).setUint32(16, checksum(bytes), true);
    return bytes;
  }

  /** Loads a model or grove from its binary form, its JSON text, or a parsed JSON object; validates everything. */
  static load(input: Uint8Array | string | object): Forest {
    if (input instanceof Uint8Array) {
      if (hasMagic(input)) return fromBinary(input);
      let text: string;
      try {
        text = new TextDecoder("utf-8", { fatal: true }).decode(input);
      } catch {
        throw new FormatError("not a Canopy model: neither the binary format nor JSON text");
      }
      return Forest.load(text);
    }
    if (typeof input === "string") {
      let parsed: unknown;
      try {
        parsed = JSON.parse(input);
      } catch {
        throw new FormatError("not a Canopy model: invalid JSON");
      }
      return Forest.load(parsed as object);
    }
    return fromJSON(input as Partial<ForestJSON>);
  }
}

function argmax(a: Float64Array, o: number, k: number): number {
  let best = 0;
  for (let c = 1; c < k; c++) if (a[o + c] > a[o + best]) best = c;
  return best;
}

function compatibilityKey(f: Forest): string {
  return JSON.stringify([f.task, f.featureNames, f.labelName, f.classes, f.params]);
}

function toMatrix(X: Matrix, nFeatures: number): { data: Float64Array; nRows: number } {
  if (Array.isArray(X)) {
    const data = new Float64Array(X.length * nFeatures);
    X.forEach((row, r) => {
      if (row.length !== nFeatures) throw new CanopyError(`row ${r + 1} has ${row.length} values; the model expects ${nFeatures}`);
      for (let f = 0; f < nFeatures; f++) data[r * nFeatures + f] = row[f];
    });
    return { data, nRows: X.length };
  }
  if (X.nCols !== nFeatures) throw new CanopyError(`the data has ${X.nCols} columns; the model expects ${nFeatures}`);
  if (X.data.length < X.nRows * X.nCols) throw new CanopyError("matrix data is shorter than nRows × nCols");
  return { data: X.data, nRows: X.nRows };
}

const hex32 = (n: number) => `0x${n.toString(16).padStart(8, "0")}`;

// Not `(n + 7) & ~7`: bitwise ops are 32-bit, and crafted headers can ask for sizes past 2^31.
const align8 = (n: number) => Math.ceil(n / 8) * 8;

function internalCount(t: Tree): number {
  let n = 0;
  for (let i = 0; i < t.nodeCount; i++) if (t.feature[i] >= 0) n++;
  return n;
}

const featureWidthOf = (nFeatures: number): 2 | 4 => (nFeatures < 0x8000 ? 2 : 4);

type TreeHeader = BinaryHeader["trees"][number];

function treeHeader(t: Tree, width: number): TreeHeader {
  return {
    index: t.index,
    nodeCount: t.nodeCount,
    leafCount: t.values.length / width,
    ...(t.categorical ? { categorySets: t.categorical.bounds.length - 1, categoryWords: t.categorical.bits.length } : {}),
  };
}

/** The binary header's JSON: the same fields in the same order for a model written whole or grove by grove. */
function encodeHeader(meta: Omit<ForestJSON, "trees">, featureWidth: 2 | 4, trees: TreeHeader[]): Uint8Array {
  const header: BinaryHeader = { ...meta, featureWidth, trees };
  return new TextEncoder().encode(JSON.stringify(header));
}

/** Magic, version, header length and the header; the checksum (bytes 16-19) is written last. */
function writePreamble(bytes: Uint8Array, headerBytes: Uint8Array, version: number): void {
  for (let i = 0; i < 8; i++) bytes[i] = MAGIC.charCodeAt(i);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  view.setUint32(8, version, true);
  view.setUint32(12, headerBytes.length, true);
  bytes.set(headerBytes, PREAMBLE);
}

/** One tree's arrays at `off` (8-aligned) in format `version`; returns where the next tree starts. */
function writeTree(bytes: Uint8Array, off: number, t: Tree, featureWidth: 2 | 4, version: number): number {
  const nInternal = internalCount(t);
  const thr = new Float64Array(bytes.buffer, bytes.byteOffset + off, nInternal);
  off += nInternal * 8;
  new Float32Array(bytes.buffer, bytes.byteOffset + off, t.values.length).set(t.values);
  off += t.values.length * 4;
  const gain = new Float32Array(bytes.buffer, bytes.byteOffset + off, nInternal);
  off += nInternal * 4;
  let k = 0;
  for (let i = 0; i < t.nodeCount; i++) {
    if (t.feature[i] >= 0) {
      thr[k] = t.threshold[i];
      gain[k] = t.gain[i];
      k++;
    }
  }
  new Int32Array(bytes.buffer, bytes.byteOffset + off, t.nodeCount).set(t.right);
  off += t.nodeCount * 4;
  if (featureWidth === 2) new Int16Array(bytes.buffer, bytes.byteOffset + off, t.nodeCount).set(t.feature);
  else new Int32Array(bytes.buffer, bytes.byteOffset + off, t.nodeCount).set(t.feature);
  off += t.nodeCount * featureWidth;
  if (version >= 4) {
    bytes.set(asBytes(Uint16Array.from(t.thresholdBin)), off);
    off += t.nodeCount * 2;
  } else {
    bytes.set(t.thresholdBin, off);
    off += t.nodeCount;
  }
  bytes.set(t.missingLeft, off);
  off = align8(off + t.nodeCount);
  if (t.categorical) {
    // The categorical split nodes in pre-order (set k belongs to the k-th), the sets' bounds, their words.
    const { set, bounds, bits } = t.categorical;
    const nodes = new Int32Array(bounds.length - 1);
    for (let i = 0; i < t.nodeCount; i++) if (set[i] >= 0) nodes[set[i]] = i;
    for (const part of [nodes, bounds, bits]) {
      bytes.set(asBytes(part), off);
      off += part.length * 4;
    }
    off = align8(off);
  }
  return off;
}

/** Bytes of one tree: version 4 stores bin thresholds in 16 bits, then its category sets if it has any. */
function treeBytes(
  nodes: number,
  internal: number,
  values: number,
  featureWidth: number,
  version: number,
  sets: { categorySets?: number; categoryWords?: number },
): number {
  const binWidth = version >= 4 ? 2 : 1;
  const m = sets.categorySets ?? 0;
  const categorical = m > 0 ? align8((2 * m + 1 + (sets.categoryWords ?? 0)) * 4) : 0;
  return align8(internal * 12 + values * 4 + nodes * (4 + featureWidth + binWidth + 1)) + categorical;
}

function asBytes(a: Uint16Array | Int32Array | Uint32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function addLeaf(out: Float64Array, d: number, values: Float32Array, o: number, width: number): void {
  for (let c = 0; c < width; c++) out[d + c] += values[o + c];
}

/** Adds tree t's leaf values for pack rows `rows` to `out` (see Forest.addPackLeaves). */
function addTreeOnPack(t: Tree, pack: DatasetPack, rows: Uint32Array, copy: PackRowCopy | null, out: Float64Array, width: number): void {
  const leaves = new Int32Array(rows.length);
  packLeaves(t, pack, rows, copy, leaves);
  for (let i = 0; i < rows.length; i++) addLeaf(out, i * width, t.values, leaves[i] * width, width);
}

/**
 * The leaf (its number: values from leaf × width) each of the pack rows `rows` reaches in tree t, into `out`; `copy`:
 * the caller's copy of those rows' bins side by side, or null to read the pack's columns.
 */
export function packLeaves(t: Tree, pack: DatasetPack, rows: Uint32Array, copy: PackRowCopy | null, out: Int32Array): void {
  // Row i's bin of feature f is src[f * fStride + at(i)]: the pack's columns, or the caller's copy of the rows'
  // bins side by side (one tree's walk then reads a few lines of each row, not a line of each column it visits), or
  // the pack's own row-major bins when a fit made them (rowMajorBins): a fit's OOB rows, walked right after its tree
  // (digits, 50 trees: the OOB sums 3.4 -> 3.15 ms; the pack's columns were out of cache after the fit).
  // Row i's bins start at (byRow ? i : rows[i]) * rowStride.
  const byRow = copy !== null && pack.wideColumn === undefined;
  const packRows = copy === null && pack.wideColumn === undefined && pack.rowBins !== undefined;
  const src = byRow ? copy.bins : packRows ? pack.rowBins! : pack.bins;
  const fStride = byRow || packRows ? 1 : pack.nRows;
  const rowStride = byRow || packRows ? pack.nFeatures : 1;
  const { feature, thresholdBin, right, missingLeft } = t;
  if (pack.wideColumn !== undefined) {
    for (let i = 0; i < rows.length; i++) out[i] = right[packLeaf(t, pack, rows[i])];
    return;
  }
  if (t.categorical !== undefined) {
    setTreeLeaves(t, src, fStride, rowStride, byRow, rows, out);
    return;
  }
  for (let i = 0; i < rows.length; i++) {
    const r = (byRow ? i : rows[i]) * rowStride;
    let node = 0;
    let f = feature[0];
    while (f >= 0) {
      const b = src[f * fStride + r];
      if (b <= thresholdBin[node] || (b === MISSING_BIN && missingLeft[node] === 1)) node++;
      else node = right[node];
      f = feature[node];
    }
    out[i] = right[node];
  }
}

/**
 * Per split node of a tree with categorical splits, the 256 bits of its rule on an 8-bit pack bin (bit b: bin b goes
 * left): a numeric split's bins up to its threshold, a set's codes as stored, and the missing bin and codes past the
 * set as missingLeft says, as packLeaf decides. Eight words a node.
 */
function binTables(t: Tree, sets: CategorySets): Int32Array {
  const { feature, thresholdBin, missingLeft, nodeCount } = t;
  const table = new Int32Array(nodeCount * 8);
  for (let n = 0; n < nodeCount; n++) {
    if (feature[n] < 0) continue;
    const k = sets.set[n];
    const o = n * 8;
    const otherwise = missingLeft[n] === 1;
    if (k < 0) {
      const thr = thresholdBin[n];
      for (let w = 0; w < 8; w++) {
        const lo = 32 * w;
        table[o + w] = thr >= lo + 31 ? -1 : thr < lo ? 0 : (2 ** (thr - lo + 1) - 1) | 0;
      }
    } else {
      const start = sets.bounds[k];
      const words = sets.bounds[k + 1] - start;
      for (let w = 0; w < 8; w++) table[o + w] = w < words ? sets.bits[start + w] : otherwise ? -1 : 0;
    }
    // Bin 255 is the missing bin.
    table[o + 7] = otherwise ? table[o + 7] | (1 << 31) : table[o + 7] & 0x7fffffff;
  }
  return table;
}

/**
 * The leaves pack rows `rows` reach in a tree with categorical splits (as packLeaves), walking its bin tables: a node's
 * rule is one bit whatever its kind, the next node chosen without a branch, four rows at a time so their reads
 * overlap (packLeaf's per-node tests were most of an aggregator's time on a table with a categorical column).
 */
function setTreeLeaves(t: Tree, bins: Uint8Array, fStride: number, rowStride: number, byRow: boolean, rows: Uint32Array, out: Int32Array): void {
  const { feature, right } = t;
  const table = binTables(t, t.categorical!);
  // Row i's bin of feature f is bins[f * fStride + at(i)]: the pack's columns, or rows side by side (fStride 1), the
  // caller's copy of `rows` (byRow) or the pack's row-major bins.
  const at = (i: number) => (byRow ? i : rows[i]) * rowStride;
  const step = (n: number, b: number): number => {
    const left = (table[n * 8 + (b >>> 5)] >>> (b & 31)) & 1;
    const r = right[n];
    return r + ((n + 1 - r) & -left);
  };
  let i = 0;
  for (; i + 4 <= rows.length; i += 4) {
    const r0 = at(i);
    const r1 = at(i + 1);
    const r2 = at(i + 2);
    const r3 = at(i + 3);
    let n0 = 0;
    let n1 = 0;
    let n2 = 0;
    let n3 = 0;
    let f0 = feature[0];
    let f1 = f0;
    let f2 = f0;
    let f3 = f0;
    // Until all four reach a leaf (feature -1): the sign bit of the AND is set only then.
    while ((f0 & f1 & f2 & f3) >= 0) {
      if (f0 >= 0) f0 = feature[(n0 = step(n0, bins[f0 * fStride + r0]))];
      if (f1 >= 0) f1 = feature[(n1 = step(n1, bins[f1 * fStride + r1]))];
      if (f2 >= 0) f2 = feature[(n2 = step(n2, bins[f2 * fStride + r2]))];
      if (f3 >= 0) f3 = feature[(n3 = step(n3, bins[f3 * fStride + r3]))];
    }
    out[i] = right[n0];
    out[i + 1] = right[n1];
    out[i + 2] = right[n2];
    out[i + 3] = right[n3];
  }
  for (; i < rows.length; i++) {
    const r = at(i);
    let n = 0;
    let f = feature[0];
    while (f >= 0) f = feature[(n = step(n, bins[f * fStride + r]))];
    out[i] = right[n];
  }
}

/** Whether a category code is in set k; anything else (missing, not a code of the set) goes by `otherwise`. */
function inSet(sets: CategorySets, k: number, code: number, otherwise: boolean): boolean {
  const start = sets.bounds[k];
  if (!(code >= 0 && code < (sets.bounds[k + 1] - start) * 32) || code !== Math.floor(code)) return otherwise;
  return ((sets.bits[start + (code >>> 5)] >>> (code & 31)) & 1) === 1;
}

/** The leaf a raw row (row[base + f]) reaches in a tree with categorical splits. */
function rawLeaf(t: Tree, sets: CategorySets, row: Float64Array, base: number): number {
  const { feature, threshold, right, missingLeft } = t;
  const set = sets.set;
  let node = 0;
  let f = feature[0];
  while (f >= 0) {
    const v = row[base + f];
    const k = set[node];
    const left = k < 0 ? v <= threshold[node] || (v !== v && missingLeft[node] === 1) : inSet(sets, k, v, missingLeft[node] === 1);
    node = left ? node + 1 : right[node];
    f = feature[node];
  }
  return node;
}

/** The leaf pack row r reaches (by its bins, 8- or 16-bit) in a tree with categorical splits, or on a pack with 16-bit features. */
function packLeaf(t: Tree, pack: DatasetPack, r: number): number {
  const { feature, thresholdBin, right, missingLeft } = t;
  const { bins, nRows, wideBins, wideColumn } = pack;
  const sets = t.categorical;
  let node = 0;
  let f = feature[0];
  while (f >= 0) {
    const w = wideColumn === undefined ? -1 : wideColumn[f];
    const b = w < 0 ? bins[f * nRows + r] : wideBins![w * nRows + r];
    const k = sets === undefined ? -1 : sets.set[node];
    const missing = w < 0 ? b === MISSING_BIN : b === MISSING_WIDE_BIN;
    const left = missing ? missingLeft[node] === 1 : k < 0 ? b <= thresholdBin[node] : inSet(sets!, k, b, missingLeft[node] === 1);
    node = left ? node + 1 : right[node];
    f = feature[node];
  }
  return node;
}

/**
 * Feature importances summed tree by tree (mean decrease in impurity, normalised per tree, then averaged, as
 * sklearn's feature_importances_): the forest's own computation, usable on trees that arrive one grove at a time.
 */
export class ImportanceSum {
  private readonly total: Float64Array;
  private readonly perTree: Float64Array;
  private used = 0;

  constructor(readonly nFeatures: number) {
    this.total = new Float64Array(nFeatures);
    this.perTree = new Float64Array(nFeatures);
  }

  add(t: Tree): void {
    if (t.nodeCount <= 1) return;
    const perTree = this.perTree;
    perTree.fill(0);
    let sum = 0;
    for (let i = 0; i < t.nodeCount; i++) {
      if (t.feature[i] >= 0) {
        perTree[t.feature[i]] += t.gain[i];
        sum += t.gain[i];
      }
    }
    if (sum <= 0) return;
    for (let f = 0; f < perTree.length; f++) this.total[f] += perTree[f] / sum;
    this.used++;
  }

  result(): Float64Array {
    const total = this.total.slice();
    if (this.used === 0) return total;
    let s = 0;
    for (const v of total) s += v;
    for (let f = 0; f < total.length; f++) total[f] /= s;
    return total;
  }
}

/** One grove's tree data in each format version the model may be written in (see ForestMerger). */
interface MergePart {
  /** The version the grove is stored in: its stored tree data is that version's encoding. */
  stored: number;
  /** CRC-32 and length of its tree data by format version, from the oldest that holds its trees to the newest. */
  encodings: Map<number, { crc: number; length: number }>;
}

/**
 * Writes the model of a build grove by grove, without ever holding it: the bytes are exactly those of
 * `Forest.merge(groves).withSchema(schema).toBinary()`. Two passes over the groves, in tree order:
 * 1. `add(bytes)` each grove (validated and decoded, returned for evaluation); its tree headers, the CRC-32 and
 *    length of its tree data are kept (a few bytes per tree).
 * 2. `prefix(schema)` gives the preamble and header (the checksum is the CRC-32 of the whole file, combined from
 *    the parts), then `body(i, bytes)` each grove again: its tree data as stored, which is what toBinary writes for
 *    those trees (the same encoder wrote the grove). A grove whose data changed between the passes is refused.
 * Format versions: a forest is written in the oldest version that holds its trees (4 for category sets or 16-bit
 * bins, else 3), so groves of one build can differ, and the model's version is only known after the last grove. Pass
 * 1 therefore keeps each grove's CRC in every version it could be written in (one encode of its trees per version
 * besides the stored one), and pass 2 re-encodes a grove stored in another version than the model's.
 * Memory: one grove at a time plus the header.
 */
export class ForestMerger {
  private first?: Forest;
  private signature = "";
  private readonly treeHeaders: TreeHeader[] = [];
  private readonly parts: MergePart[] = [];
  private nodes = 0;
  private lastIndex = -1;
  private version = NUMERIC_VERSION;

  get nTrees(): number {
    return this.treeHeaders.length;
  }

  get nodeCount(): number {
    return this.nodes;
  }

  /** Pass 1: one grove (binary, as a trainer stores it), after the previous one in tree order. */
  add(bytes: Uint8Array): Forest {
    const grove = Forest.load(bytes);
    const layout = groveLayout(bytes, grove);
    if (this.first === undefined) {
      this.first = grove;
      this.signature = compatibilityKey(grove);
    } else if (compatibilityKey(grove) !== this.signature) {
      throw new CanopyError("cannot merge groves of different builds (task, features, classes or parameters differ)");
    }
    const width = grove.valueWidth;
    for (const t of grove.trees) {
      if (t.index <= this.lastIndex) throw new CanopyError(`tree ${t.index} comes after tree ${this.lastIndex}: groves must be merged in tree order, each tree once`);
      this.lastIndex = t.index;
      this.treeHeaders.push(treeHeader(t, width));
      this.nodes += t.nodeCount;
    }
    const body = bytes.subarray(layout.bodyOffset);
    const encodings = new Map<number, { crc: number; length: number }>();
    for (let v = grove.formatVersion; v <= FOREST_VERSION; v++) {
      const data = v === grove.version ? body : encodeTrees(grove, v);
      encodings.set(v, { crc: crc32(data), length: data.length });
    }
    this.version = Math.max(this.version, grove.formatVersion);
    this.parts.push({ stored: grove.version, encodings });
    return grove;
  }

  /** After pass 1: the model's first bytes (preamble with its final checksum, header, padding) and its total size. */
  prefix(schema?: TableSchema): { bytes: Uint8Array; size: number } {
    if (this.first === undefined) throw new CanopyError("nothing to merge: no groves");
    const meta = { ...this.first.withSchema(schema).meta(), version: this.version };
    const headerBytes = encodeHeader(meta, featureWidthOf(this.first.nFeatures), this.treeHeaders);
    const bytes = new Uint8Array(align8(PREAMBLE + headerBytes.length));
    writePreamble(bytes, headerBytes, this.version);
    let crc = crc32(bytes.subarray(20), crc32(bytes.subarray(0, 16)));
    let size = bytes.length;
    for (const part of this.parts) {
      const written = part.encodings.get(this.version)!;
      crc = crc32Combine(crc, written.crc, written.length);
      size += written.length;
    }
    new DataView(bytes.buffer).setUint32(16, crc, true);
    return { bytes, size };
  }

  /** Pass 2: the tree data of the `i`-th grove added, from its bytes read again. */
  body(i: number, bytes: Uint8Array): Uint8Array {
    const part = this.parts[i];
    if (!part) throw new CanopyError(`grove ${i} was not added`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (!hasMagic(bytes) || bytes.length < PREAMBLE) throw new FormatError("not a Canopy grove in the binary format");
    const changed = () => new FormatError("the grove's tree data changed between the two passes of the merge");
    const stored = bytes.subarray(align8(PREAMBLE + view.getUint32(12, true)));
    const storedCrc = part.encodings.get(part.stored);
    if (storedCrc && (stored.length !== storedCrc.length || crc32(stored) !== storedCrc.crc)) throw changed();
    const body = part.stored === this.version ? stored : encodeTrees(Forest.load(bytes), this.version);
    const expected = part.encodings.get(this.version)!;
    if (body.length !== expected.length || crc32(body) !== expected.crc) throw changed();
    return body;
  }
}

/** A forest's tree data (what follows the header) in format `version`. */
function encodeTrees(forest: Forest, version: number): Uint8Array {
  const featureWidth = featureWidthOf(forest.nFeatures);
  const width = forest.valueWidth;
  let size = 0;
  for (const t of forest.trees) size += treeBytes(t.nodeCount, internalCount(t), t.values.length, featureWidth, version, treeHeader(t, width));
  const bytes = new Uint8Array(size);
  let off = 0;
  for (const t of forest.trees) off = writeTree(bytes, off, t, featureWidth, version);
  return bytes;
}

/** Where a grove's tree data starts; only groves in the binary formats trainers write (3 and 4) qualify. */
function groveLayout(bytes: Uint8Array, grove: Forest): { bodyOffset: number } {
  if (!hasMagic(bytes) || (grove.version !== FOREST_VERSION && grove.version !== NUMERIC_VERSION))
    throw new FormatError(`a grove to merge must be in the binary format version ${NUMERIC_VERSION} or ${FOREST_VERSION}, as trainers store it`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(PREAMBLE, PREAMBLE + view.getUint32(12, true)))) as BinaryHeader;
  if (header.featureWidth !== featureWidthOf(grove.nFeatures)) throw new FormatError("corrupt grove: unexpected feature width");
  return { bodyOffset: align8(PREAMBLE + view.getUint32(12, true)) };
}

/**
 * zlib's crc32_combine: the CRC-32 of A followed by B from crc(A), crc(B) and B's length, by applying B's length
 * in zeros to crc(A) as a linear operator over GF(2) (squared per bit of the length).
 */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  if (lengthB <= 0) return crcA >>> 0;
  const gf2Times = (mat: Uint32Array, vec: number) => {
    let sum = 0;
    for (let i = 0; vec !== 0; i++, vec >>>= 1) if (vec & 1) sum ^= mat[i];
    return sum >>> 0;
  };
  const gf2Square = (square: Uint32Array, mat: Uint32Array) => {
    for (let n = 0; n < 32; n++) square[n] = gf2Times(mat, mat[n]);
  };
  const even = new Uint32Array(32);
  const odd = new Uint32Array(32);
  odd[0] = 0xedb88320; // the CRC-32 polynomial: the operator for one zero bit
  let row = 1;
  for (let n = 1; n < 32; n++) {
    odd[n] = row;
    row <<= 1;
  }
  gf2Square(even, odd); // two zero bits
  gf2Square(odd, even); // four zero bits
  let crc = crcA >>> 0;
  let len = lengthB;
  do {
    gf2Square(even, odd); // first pass: one zero byte
    if (len & 1) crc = gf2Times(even, crc);
    len = Math.floor(len / 2);
    if (len === 0) break;
    gf2Square(odd, even);
    if (len & 1) crc = gf2Times(odd, crc);
    len = Math.floor(len / 2);
  } while (len !== 0);
  return (crc ^ crcB) >>> 0;
}

/** CRC-32 of a v2 encoding: every byte but the checksum's own four (bytes 16-19). */
function checksum(bytes: Uint8Array): number {
  return crc32(bytes.subarray(20), crc32(bytes.subarray(0, 16)));
}

function hasMagic(bytes: Uint8Array): boolean {
  if (bytes.length < PREAMBLE_V1) return false;
  for (let i = 0; i < 8; i++) if (bytes[i] !== MAGIC.charCodeAt(i)) return false;
  return true;
}

function checkFormat(format: unknown, version: unknown): void {
  if (format !== FOREST_FORMAT) {
    throw new FormatError(`not a Canopy model: format is ${JSON.stringify(format ?? null)}, expected "${FOREST_FORMAT}"`);
  }
  if (!READABLE_VERSIONS.includes(version as number)) {
    throw new FormatError(
      `unsupported ${FOREST_FORMAT} version ${JSON.stringify(version)} (this build reads versions ${READABLE_VERSIONS.join(" and ")}: the file is damaged, or from a newer Canopy)`,
    );
  }
}

function checkMeta(m: Partial<ForestJSON>): void {
  const ok =
    (m.task === "classification" || m.task === "regression") &&
    Array.isArray(m.featureNames) &&
    m.featureNames.every((n) => typeof n === "string") &&
    typeof m.labelName === "string" &&
    Array.isArray(m.classes) &&
    m.classes.every((c) => typeof c === "string") &&
    (m.task === "regression" || m.classes.length > 0) &&
    typeof m.params === "object" &&
    m.params !== null;
  if (!ok) throw new FormatError("corrupt model: bad header fields");
  if (m.schema !== undefined) {
    const problem = schemaProblem(m.schema);
    if (problem !== undefined) throw new FormatError(`corrupt model: ${problem}`);
    const names = schemaFeatures(m.schema).map((f) => f.name);
    if (names.length !== m.featureNames!.length || names.some((n, i) => n !== m.featureNames![i]))
      throw new FormatError("corrupt model: the schema does not match the features");
  }
}

function fromBinary(bytes: Uint8Array): Forest {
  const src = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const version = view.getUint32(8, true);
  checkFormat(FOREST_FORMAT, version);
  const preamble = version === 1 ? PREAMBLE_V1 : PREAMBLE;
  if (version >= 2) {
    if (src.length < PREAMBLE) throw new FormatError("corrupt model: truncated header");
    const stored = view.getUint32(16, true);
    const actual = checksum(src);
    if (stored !== actual || view.getUint32(20, true) !== 0) {
      throw new FormatError(`corrupt model: checksum mismatch (CRC-32 ${hex32(actual)}, recorded ${hex32(stored)}): the file is damaged`);
    }
  }
  const headerLength = view.getUint32(12, true);
  if (preamble + headerLength > src.length) throw new FormatError("corrupt model: truncated header");
  let header: BinaryHeader;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(src.subarray(preamble, preamble + headerLength))) as BinaryHeader;
  } catch {
    throw new FormatError("corrupt model: unreadable header");
  }
  checkFormat(header.format, header.version);
  if (header.version !== version) throw new FormatError(`corrupt model: the header says version ${header.version}, the preamble ${version}`);
  checkMeta(header as unknown as Partial<ForestJSON>);
  if ((header.featureWidth !== 2 && header.featureWidth !== 4) || !Array.isArray(header.trees)) {
    throw new FormatError("corrupt model: bad header fields");
  }
  const width = header.task === "classification" ? header.classes.length : 1;
  let off = align8(preamble + headerLength);
  const trees: Tree[] = [];
  for (const th of header.trees) {
    if (th === null || typeof th !== "object") throw new FormatError("corrupt model: bad tree header");
    const { nodeCount, leafCount, index } = th;
    if (![nodeCount, leafCount, index].every((v) => Number.isInteger(v) && v >= 0) || nodeCount < 1) {
      throw new FormatError("corrupt model: bad tree header");
    }
    const nInternal = nodeCount - leafCount;
    if (nInternal < 0) throw new FormatError("corrupt model: bad tree header");
    const { categorySets = 0, categoryWords = 0 } = version >= 4 ? th : {};
    if (![categorySets, categoryWords].every((v) => Number.isInteger(v) && v >= 0) || categorySets > nInternal || (categorySets === 0) !== (categoryWords === 0)) {
      throw new FormatError("corrupt model: bad tree header");
    }
    const size = treeBytes(nodeCount, nInternal, leafCount * width, header.featureWidth, version, th);
    if (off + size > src.length) throw new FormatError("corrupt model: truncated tree data");
    const base = src.byteOffset + off;
    const thr = new Float64Array(src.buffer, base, nInternal);
    let o = base + nInternal * 8;
    const values = new Float32Array(src.buffer.slice(o, o + leafCount * width * 4));
    o += leafCount * width * 4;
    const gainCompact = new Float32Array(src.buffer, o, nInternal);
    o += nInternal * 4;
    const right = new Int32Array(src.buffer.slice(o, o + nodeCount * 4));
    o += nodeCount * 4;
    const feature =
      header.featureWidth === 2
        ? Int32Array.from(new Int16Array(src.buffer, o, nodeCount))
        : new Int32Array(src.buffer.slice(o, o + nodeCount * 4));
    o += nodeCount * header.featureWidth;
    const binWidth = version >= 4 ? 2 : 1;
    const thresholdBin =
      binWidth === 2 ? narrowBins(new Uint16Array(src.buffer.slice(o, o + nodeCount * 2))) : new Uint8Array(src.buffer.slice(o, o + nodeCount));
    o += nodeCount * binWidth;
    const missingLeft = new Uint8Array(src.buffer.slice(o, o + nodeCount));
    o = base + align8(o - base + nodeCount);
    let categorical: CategorySets | undefined;
    if (categorySets > 0) {
      const words = (n: number) => new Uint32Array(src.buffer.slice(o, (o += n * 4)));
      const nodes = new Int32Array(words(categorySets).buffer);
      const bounds = words(categorySets + 1);
      const bits = words(categoryWords);
      const set = new Int32Array(nodeCount).fill(-1);
      for (let k = 0; k < categorySets; k++) {
        const i = nodes[k];
        if (!(i >= 0 && i < nodeCount && (k === 0 || i > nodes[k - 1]))) throw new FormatError("corrupt model: bad category sets");
        set[i] = k;
      }
      categorical = { set, bounds, bits };
    }
    const threshold = new Float64Array(nodeCount);
    const gain = new Float32Array(nodeCount);
    let k = 0;
    for (let i = 0; i < nodeCount; i++) {
      if (feature[i] >= 0) {
        if (k >= nInternal) throw new FormatError("corrupt model: node kinds disagree with the tree header");
        threshold[i] = thr[k];
        gain[i] = gainCompact[k];
        k++;
      }
    }
    if (k !== nInternal) throw new FormatError("corrupt model: node kinds disagree with the tree header");
    const tree: Tree = { index, nodeCount, feature, threshold, thresholdBin, right, missingLeft, gain, values, ...(categorical ? { categorical } : {}) };
    checkTree(tree, header.featureNames.length, width);
    trees.push(tree);
    off += size;
  }
  if (off !== src.length) throw new FormatError("corrupt model: trailing bytes");
  return build(header, trees);
}

function fromJSON(json: Partial<ForestJSON>): Forest {
  if (json === null || typeof json !== "object") throw new FormatError("not a Canopy model: not an object");
  checkFormat(json.format, json.version);
  checkMeta(json);
  if (!Array.isArray(json.trees)) throw new FormatError("corrupt model: trees missing");
  const width = json.task === "classification" ? json.classes!.length : 1;
  const trees = json.trees.map((t) => {
    const arrays = ["feature", "threshold", "thresholdBin", "right", "missingLeft", "gain", "values"] as const;
    const integral = ["feature", "thresholdBin", "right", "missingLeft"] as const;
    if (
      !t ||
      !Number.isInteger(t.index) ||
      !arrays.every((a) => Array.isArray(t[a]) && t[a].every((v) => typeof v === "number")) ||
      !integral.every((a) => t[a].every((v) => Number.isInteger(v)))
    ) {
      throw new FormatError("corrupt model: bad tree");
    }
    if (t.thresholdBin.some((b) => b < 0 || b > 0xffff)) throw new FormatError("corrupt model: bad tree");
    const tree: Tree = {
      index: t.index,
      nodeCount: t.feature.length,
      feature: Int32Array.from(t.feature),
      threshold: Float64Array.from(t.threshold),
      thresholdBin: narrowBins(Uint16Array.from(t.thresholdBin)),
      right: Int32Array.from(t.right),
      missingLeft: Uint8Array.from(t.missingLeft),
      gain: Float32Array.from(t.gain),
      values: Float32Array.from(t.values),
    };
    if (t.categorical !== undefined) {
      const c = t.categorical;
      const ints = (a: unknown, min: number, max: number) => Array.isArray(a) && a.every((v) => Number.isInteger(v) && v >= min && v <= max);
      if (!c || !ints(c.set, -1, 0x7fffffff) || !ints(c.bounds, 0, 0xffffffff) || !ints(c.bits, 0, 0xffffffff)) {
        throw new FormatError("corrupt model: bad category sets");
      }
      tree.categorical = { set: Int32Array.from(c.set), bounds: Uint32Array.from(c.bounds), bits: Uint32Array.from(c.bits) };
    }
    const n = tree.nodeCount;
    if (n < 1 || [tree.threshold, tree.thresholdBin, tree.right, tree.missingLeft, tree.gain].some((a) => a.length !== n)) {
      throw new FormatError("corrupt model: tree arrays have different lengths");
    }
    checkTree(tree, json.featureNames!.length, width);
    return tree;
  });
  return build(json as ForestJSON, trees);
}

/**
 * Structural checks that make traversal safe: children ahead of parents, leaf slots and features in range, and
 * category sets that split nodes use once each, within the words.
 */
function checkTree(t: Tree, nFeatures: number, width: number): void {
  if (t.categorical !== undefined) {
    const { set, bounds, bits } = t.categorical;
    const m = bounds.length - 1;
    const used = new Uint8Array(Math.max(0, m));
    if (set.length !== t.nodeCount || m < 1 || bounds[0] !== 0 || bounds[m] !== bits.length) throw new FormatError("corrupt model: bad category sets");
    for (let k = 0; k < m; k++) if (!(bounds[k + 1] > bounds[k])) throw new FormatError("corrupt model: bad category sets");
    for (let i = 0; i < t.nodeCount; i++) {
      const k = set[i];
      if (k === -1) continue;
      if (k < 0 || k >= m || used[k] || t.feature[i] < 0) throw new FormatError(`corrupt model: tree ${t.index} node ${i} has a bad category set`);
      used[k] = 1;
    }
    if (used.includes(0)) throw new FormatError("corrupt model: bad category sets");
  }
  if (t.values.length % width !== 0) throw new FormatError("corrupt model: leaf values do not match the class count");
  for (let i = 0; i < t.values.length; i++) {
    if (!Number.isFinite(t.values[i])) throw new FormatError(`corrupt model: tree ${t.index} has a leaf value that is not a finite number`);
  }
  const leaves = t.values.length / width;
  for (let i = 0; i < t.nodeCount; i++) {
    const f = t.feature[i];
    if (f >= 0) {
      if (f >= nFeatures || i + 1 >= t.nodeCount || t.right[i] <= i + 1 || t.right[i] >= t.nodeCount || Number.isNaN(t.threshold[i])) {
        throw new FormatError(`corrupt model: tree ${t.index} node ${i} is malformed`);
      }
    } else if (f !== -1 || t.right[i] < 0 || t.right[i] >= leaves) {
      throw new FormatError(`corrupt model: tree ${t.index} leaf ${i} is malformed`);
    }
  }
}

function build(meta: Omit<ForestJSON, "trees">, trees: Tree[]): Forest {
  let params: ResolvedParams;
  try {
    params = resolveParams(meta.params, meta.task);
  } catch (error) {
    throw new FormatError(`corrupt model: bad parameters (${(error as Error).message})`);
  }
  for (let i = 0; i < trees.length; i++) {
    const index = trees[i].index;
    if (index < 0 || index >= params.n_estimators) {
      throw new FormatError(`corrupt model: tree index ${index} is outside the build's ${params.n_estimators} trees`);
    }
    if (i > 0 && index <= trees[i - 1].index) throw new FormatError("corrupt model: trees out of order");
    if (meta.version < 4 && (trees[i].categorical !== undefined || trees[i].thresholdBin instanceof Uint16Array)) {
      throw new FormatError(`corrupt model: version ${meta.version} has no category sets or 16-bit bins`);
    }
  }
  return new Forest(meta.task, meta.featureNames, meta.labelName, meta.classes, params, trees, meta.version, meta.schema);
}
