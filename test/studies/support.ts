/** Labels drawn from a small LCG: uneven classes, in no order. */
export function labels(n: number, classes: number, seed: number, skew = false): number[] {
  let x = seed >>> 0;
  return Array.from({ length: n }, () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const u = x / 2 ** 32;
    return Math.min(classes - 1, Math.floor((skew ? u * u : u) * classes));
  });
}
