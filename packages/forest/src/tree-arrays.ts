import type { CategorySets, Tree } from "./types.ts";

/** Nodes grown elsewhere, as TreeArrays.addSubtree takes them: per node its fields, then its leaves' values. */
export interface SubtreeNodes {
  readonly feature: Int32Array;
  readonly bin: Int32Array;
  readonly threshold: Float64Array;
  readonly right: Int32Array;
  readonly missingLeft: Uint8Array;
  readonly gain: Float32Array;
  readonly values: Float32Array;
  readonly leaves: number;
}

/** Largest finite double: the raw threshold of a split that only separates missing values. */
const ALL_FINITE = Number.MAX_VALUE;

/**
 * A tree under construction, in scikit-learn's Tree role (sklearn/tree/_tree.pyx): flat node arrays filled in
 * depth-first pre-order, so the left child of node i is i + 1 and only the right child is recorded. Sized for the
 * largest tree `nSamples` samples can grow (2n - 1 nodes, n leaves); `toTree` trims them.
 */
export class TreeArrays {
  readonly feature: Int32Array;
  readonly threshold: Float64Array;
  readonly thresholdBin: Uint16Array;
  readonly right: Int32Array;
  readonly missingLeft: Uint8Array;
  readonly gain: Float32Array;
  readonly values: Float32Array;
  nodeCount = 0;
  leafCount = 0;
  /** Categorical splits: per node its set or -1 (allocated at the first one), the sets' bounds and words. */
  private catSet: Int32Array | null = null;
  private readonly catBounds: number[] = [0];
  private catBits = new Uint32Array(0);

  constructor(
    nSamples: number,
    /** Values per leaf: K class probabilities, or 1 regression mean. */
    readonly valueWidth: number,
  ) {
    const capacity = Math.max(1, 2 * nSamples - 1);
    this.feature = new Int32Array(capacity);
    this.threshold = new Float64Array(capacity);
    this.thresholdBin = new Uint16Array(capacity);
    this.right = new Int32Array(capacity);
    this.missingLeft = new Uint8Array(capacity);
    this.gain = new Float32Array(capacity);
    this.values = new Float32Array(Math.max(1, nSamples) * valueWidth);
  }

  /** Adds the next node in pre-order; a right child is linked to its parent (a left child is parent + 1). */
  addNode(parent: number, isRight: boolean): number {
    const id = this.nodeCount++;
    if (isRight) this.right[parent] = id;
    return id;
  }

  /** Makes node `id` a leaf; returns the offset of its valueWidth values in `values`, for the caller to fill. */
  setLeaf(id: number): number {
    this.feature[id] = -1;
    this.right[id] = this.leafCount;
    return this.leafCount++ * this.valueWidth;
  }

  /** Makes node `id` a split: bin <= thresholdBin (raw value <= edges[thresholdBin]) goes left. */
  setSplit(id: number, feature: number, thresholdBin: number, edges: Float64Array, missingLeft: boolean, gain: number): void {
    this.feature[id] = feature;
    this.thresholdBin[id] = thresholdBin;
    this.threshold[id] = thresholdBin < edges.length ? edges[thresholdBin] : ALL_FINITE;
    this.missingLeft[id] = missingLeft ? 1 : 0;
    this.gain[id] = gain;
  }

  /**
   * Adds `count` nodes grown elsewhere (split-kernels.ts's growSubtree), in pre-order from the next id, their fields as
   * this class sets them (leaves' right: their leaf numbers, from this tree's next), and their leaves' values; the first
   * is the child of `parent` (right if `isRight`).
   */
  addSubtree(parent: number, isRight: boolean, count: number, nodes: SubtreeNodes): void {
    const id0 = this.nodeCount;
    if (isRight) this.right[parent] = id0;
    this.feature.set(nodes.feature.subarray(0, count), id0);
    this.thresholdBin.set(nodes.bin.subarray(0, count), id0);
    this.threshold.set(nodes.threshold.subarray(0, count), id0);
    this.right.set(nodes.right.subarray(0, count), id0);
    this.missingLeft.set(nodes.missingLeft.subarray(0, count), id0);
    this.gain.set(nodes.gain.subarray(0, count), id0);
    this.values.set(nodes.values.subarray(0, nodes.leaves * this.valueWidth), this.leafCount * this.valueWidth);
    this.nodeCount += count;
    this.leafCount += nodes.leaves;
  }

  /**
   * Makes node `id` a split of a categorical feature into two sets: rows whose code has its bit set in `words`
   * go left (see CategorySets).
   */
  setCategoricalSplit(id: number, feature: number, words: Uint32Array, missingLeft: boolean, gain: number): void {
    if (this.catSet === null) this.catSet = new Int32Array(this.feature.length).fill(-1);
    const k = this.catBounds.length - 1;
    const start = this.catBounds[k]!;
    const end = start + words.length;
    if (end > this.catBits.length) {
      const grown = new Uint32Array(Math.max(end, this.catBits.length * 2, 64));
      grown.set(this.catBits);
      this.catBits = grown;
    }
    this.catBits.set(words, start);
    this.catBounds.push(end);
    this.catSet[id] = k;
    this.feature[id] = feature;
    this.thresholdBin[id] = 0;
    this.threshold[id] = 0;
    this.missingLeft[id] = missingLeft ? 1 : 0;
    this.gain[id] = gain;
  }

  /** The finished tree, arrays trimmed to its nodes and leaves. */
  toTree(index: number): Tree {
    const n = this.nodeCount;
    const tree: Tree = {
      index,
      nodeCount: n,
      feature: this.feature.slice(0, n),
      threshold: this.threshold.slice(0, n),
      thresholdBin: narrowBins(this.thresholdBin.subarray(0, n)),
      right: this.right.slice(0, n),
      missingLeft: this.missingLeft.slice(0, n),
      gain: this.gain.slice(0, n),
      values: this.values.slice(0, this.leafCount * this.valueWidth),
    };
    if (this.catSet !== null) {
      const bounds = Uint32Array.from(this.catBounds);
      const sets: CategorySets = { set: this.catSet.slice(0, n), bounds, bits: this.catBits.slice(0, bounds[bounds.length - 1]) };
      tree.categorical = sets;
    }
    return tree;
  }
}

/** Bin thresholds as a Uint8Array when every one fits in 8 bits (every model before 16-bit bins), else 16-bit. */
export function narrowBins(bins: Uint16Array): Uint8Array | Uint16Array {
  for (let i = 0; i < bins.length; i++) if (bins[i] > 0xff) return bins.slice();
  return Uint8Array.from(bins);
}
