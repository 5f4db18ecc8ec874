// Small numeric helpers for the report.

/**
 * Least-squares slope of log(t) against log(n): t ≈ c·n^k, returns k. 1 = linear in rows.
 * Needs at least two distinct positive n and positive t.
 */
export function scalingExponent(points: { n: number; t: number }[]): number {
  const pts = points.filter((p) => p.n > 0 && p.t > 0);
  if (new Set(pts.map((p) => p.n)).size < 2) throw new Error("scalingExponent: need at least two distinct sizes");
  const xs = pts.map((p) => Math.log(p.n));
  const ys = pts.map((p) => Math.log(p.t));
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < xs.length; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  return sxy / sxx;
}

/** Index of the largest value in row r of an n × k row-major matrix (ties: first). */
export function argmaxRow(m: ArrayLike<number>, k: number, r: number): number {
  let best = 0;
  for (let j = 1; j < k; j++) if (m[r * k + j] > m[r * k + best]) best = j;
  return best;
}

/** The q-quantile (0..1) of `xs` by the nearest-rank method (xs is not modified). */
export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) throw new Error("quantile: no values");
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
