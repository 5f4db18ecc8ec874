import type { Tree } from "./types.ts";

/**
 * A forest's trees laid out for prediction on raw rows: every tree's nodes in one pair of arrays (pre-order as the
 * model stores them, so the left child of node i is still i + 1), a node's feature and right child side by side,
 * and the leaves pointing straight at their values. Trees with categorical set splits are not compiled (base -1):
 * the caller walks them as stored.
 *
 * The comparisons are the model's own (`x <= threshold`, NaN by missingLeft), on the same raw values, and the leaf
 * values are added tree by tree in the model's order, so predictions are the same to the last bit.
 */
export class CompiledTrees {
  private constructor(
    /** Per node two words: [feature, or ~valueOffset for a leaf; right child | missingLeft << 31]. */
    readonly nodes: Int32Array,
    readonly threshold: Float64Array,
    /** Every tree's leaf values, concatenated. */
    readonly values: Float32Array,
    /** Per tree: its root in `nodes`, or -1 for a tree left uncompiled. */
    readonly base: Int32Array,
  ) {}

  static of(trees: Tree[], width: number): CompiledTrees {
    let nodeCount = 0;
    let valueCount = 0;
    for (const t of trees) {
      if (t.categorical !== undefined) continue;
      nodeCount += t.nodeCount;
      valueCount += t.values.length;
    }
    const nodes = new Int32Array(2 * nodeCount);
    const threshold = new Float64Array(nodeCount);
    const values = new Float32Array(valueCount);
    const base = new Int32Array(trees.length).fill(-1);
    let nb = 0;
    let vb = 0;
    trees.forEach((t, k) => {
      if (t.categorical !== undefined) return;
      base[k] = nb;
      const { feature, right, missingLeft } = t;
      for (let i = 0; i < t.nodeCount; i++) {
        const j = nb + i;
        if (feature[i] < 0) {
          nodes[2 * j] = ~(vb + right[i] * width);
          continue;
        }
        nodes[2 * j] = feature[i];
        nodes[2 * j + 1] = (nb + right[i]) | (missingLeft[i] << 31);
        threshold[j] = t.threshold[i];
      }
      values.set(t.values, vb);
      nb += t.nodeCount;
      vb += t.values.length;
    });
    return new CompiledTrees(nodes, threshold, values, base);
  }

  /**
   * Adds tree k's leaf values for rows r0..r1 of `out` (`width` per row); row r's features are
   * block[(r - r0) * nCols, ...). Four rows walk the tree together: their reads are independent, so the memory
   * latency of one row's next node overlaps the others' (a single walk waits on every level).
   */
  addLeaves(k: number, block: Float64Array, nCols: number, r0: number, r1: number, out: Float64Array, width: number): void {
    const { nodes, threshold, values } = this;
    const root = this.base[k];
    let r = r0;
    for (; r + 4 <= r1; r += 4) {
      const b0 = (r - r0) * nCols;
      const b1 = b0 + nCols;
      const b2 = b1 + nCols;
      const b3 = b2 + nCols;
      let i0 = root;
      let i1 = root;
      let i2 = root;
      let i3 = root;
      let f0 = nodes[2 * root];
      let f1 = f0;
      let f2 = f0;
      let f3 = f0;
      // Until all four reach a leaf (a negative word): the sign bit of the AND is set only then.
      while ((f0 & f1 & f2 & f3) >= 0) {
        if (f0 >= 0) {
          const v = block[b0 + f0];
          const n = nodes[2 * i0 + 1];
          i0 = v <= threshold[i0] || (v !== v && n < 0) ? i0 + 1 : n & 0x7fffffff;
          f0 = nodes[2 * i0];
        }
        if (f1 >= 0) {
          const v = block[b1 + f1];
          const n = nodes[2 * i1 + 1];
          i1 = v <= threshold[i1] || (v !== v && n < 0) ? i1 + 1 : n & 0x7fffffff;
          f1 = nodes[2 * i1];
        }
        if (f2 >= 0) {
          const v = block[b2 + f2];
          const n = nodes[2 * i2 + 1];
          i2 = v <= threshold[i2] || (v !== v && n < 0) ? i2 + 1 : n & 0x7fffffff;
          f2 = nodes[2 * i2];
        }
        if (f3 >= 0) {
          const v = block[b3 + f3];
          const n = nodes[2 * i3 + 1];
          i3 = v <= threshold[i3] || (v !== v && n < 0) ? i3 + 1 : n & 0x7fffffff;
          f3 = nodes[2 * i3];
        }
      }
      addValues(out, r * width, values, ~f0, width);
      addValues(out, (r + 1) * width, values, ~f1, width);
      addValues(out, (r + 2) * width, values, ~f2, width);
      addValues(out, (r + 3) * width, values, ~f3, width);
    }
    for (; r < r1; r++) {
      const b = (r - r0) * nCols;
      let i = root;
      let f = nodes[2 * root];
      while (f >= 0) {
        const v = block[b + f];
        const n = nodes[2 * i + 1];
        i = v <= threshold[i] || (v !== v && n < 0) ? i + 1 : n & 0x7fffffff;
        f = nodes[2 * i];
      }
      addValues(out, r * width, values, ~f, width);
    }
  }
}

function addValues(out: Float64Array, d: number, values: Float32Array, o: number, width: number): void {
  for (let c = 0; c < width; c++) out[d + c] += values[o + c];
}
