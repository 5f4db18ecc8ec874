// Impurity measures over weighted sufficient statistics. Classification statistics are per-class weight sums
// (width K); regression statistics are [sum w, sum w*y, sum w*y^2] (width 3).

export type CriterionName = "gini" | "entropy" | "squared_error";

/** Node impurity from its statistics `s` (offset `o`) and total weight `w`. Entropy is in bits, as sklearn. */
export function impurity(criterion: CriterionName, s: Float64Array, o: number, width: number, w: number): number {
  if (w <= 0) return 0;
  if (criterion === "squared_error") {
    const mean = s[o + 1] / w;
    const v = s[o + 2] / w - mean * mean;
    return v > 0 ? v : 0;
  }
  if (criterion === "gini") {
    let sq = 0;
    for (let c = 0; c < width; c++) sq += s[o + c] * s[o + c];
    return 1 - sq / (w * w);
  }
  let h = 0;
  for (let c = 0; c < width; c++) {
    const p = s[o + c] / w;
    if (p > 0) h -= p * Math.log2(p);
  }
  return h;
}

/**
 * A split's proxy improvement: larger is better, and ranking by it ranks by weighted impurity decrease
 * (the node's own impurity is a constant). `left` holds the left statistics; right = total - left.
 */
export function proxy(
  criterion: CriterionName,
  left: Float64Array,
  total: Float64Array,
  width: number,
  lw: number,
  rw: number,
): number {
  if (criterion === "squared_error") {
    const sl = left[1];
    const sr = total[1] - sl;
    return (sl * sl) / lw + (sr * sr) / rw;
  }
  if (criterion === "gini") {
    let sl = 0;
    let sr = 0;
    for (let c = 0; c < width; c++) {
      const l = left[c];
      const r = total[c] - l;
      sl += l * l;
      sr += r * r;
    }
    return sl / lw + sr / rw;
  }
  let e = -lw * Math.log(lw) - rw * Math.log(rw);
  for (let c = 0; c < width; c++) {
    const l = left[c];
    const r = total[c] - l;
    if (l > 0) e += l * Math.log(l);
    if (r > 0) e += r * Math.log(r);
  }
  return e;
}
