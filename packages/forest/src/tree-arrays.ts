import type { Tree } from "./types.ts";

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
  readonly thresholdBin: Uint8Array;
  readonly right: Int32Array;
  readonly missingLeft: Uint8Array;
  readonly gain: Float32Array;
  readonly values: Float32Array;
  nodeCount = 0;
  leafCount = 0;

  constructor(
    nSamples: number,
    /** Values per leaf: K class probabilities, or 1 regression mean. */
    readonly valueWidth: number,
  ) {
    const capacity = Math.max(1, 2 * nSamples - 1);
    this.feature = new Int32Array(capacity);
    this.threshold = new Float64Array(capacity);
    this.thresholdBin = new Uint8Array(capacity);
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

  /** The finished tree, arrays trimmed to its nodes and leaves. */
  toTree(index: number): Tree {
    const n = this.nodeCount;
    return {
      index,
      nodeCount: n,
      feature: this.feature.slice(0, n),
      threshold: this.threshold.slice(0, n),
      thresholdBin: this.thresholdBin.slice(0, n),
      right: this.right.slice(0, n),
      missingLeft: this.missingLeft.slice(0, n),
      gain: this.gain.slice(0, n),
      values: this.values.slice(0, this.leafCount * this.valueWidth),
    };
  }
}
