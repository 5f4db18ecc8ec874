import { SpecError } from "./errors.ts";

/**
 * Cross-validation folds exactly as scikit-learn 1.9.1 assigns them without shuffling, so a study's CV scores can be
 * checked against GridSearchCV on the same folds. Each returns, per position of the rows it was given, the fold in
 * which that row is scored (sklearn's `_make_test_folds` / the blocks of `KFold._iter_test_indices`).
 */

/** KFold(n_splits=k, shuffle=False): consecutive blocks, the first n % k of them one row longer. */
export function kFoldAssignment(n: number, k: number): Uint32Array {
  checkSplits(n, k);
  const out = new Uint32Array(n);
  const base = Math.floor(n / k);
  let start = 0;
  for (let fold = 0; fold < k; fold++) {
    const size = base + (fold < n % k ? 1 : 0);
    out.fill(fold, start, start + size);
    start += size;
  }
  return out;
}

/**
 * StratifiedKFold(n_splits=k, shuffle=False) on class labels (any integer codes). sklearn encodes classes by order
 * of first appearance, deals the sorted labels round-robin to the folds to decide how many of each class each fold
 * gets, then gives each class's rows to the folds in blocks, in row order.
 */
export function stratifiedKFoldAssignment(labels: ArrayLike<number>, k: number): Uint32Array {
  const n = labels.length;
  checkSplits(n, k);
  const order = new Map<number, number>(); // label -> class index by first appearance
  const encoded = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    let c = order.get(labels[i]);
    if (c === undefined) order.set(labels[i], (c = order.size));
    encoded[i] = c;
  }
  const nClasses = order.size;
  const counts = new Array<number>(nClasses).fill(0);
  for (let i = 0; i < n; i++) counts[encoded[i]]++;
  if (counts.every((c) => k > c))
    throw new SpecError([{ path: "cv", message: `n_splits=${k} cannot be greater than the number of members in each class (at most ${Math.max(...counts)})` }]);
  // allocation[fold][class] = bincount(sorted(encoded)[fold::k]); the sorted labels are runs of each class in order.
  const allocation = Array.from({ length: k }, () => new Array<number>(nClasses).fill(0));
  let position = 0;
  for (let c = 0; c < nClasses; c++) {
    for (let j = 0; j < counts[c]; j++) allocation[(position + j) % k][c]++;
    position += counts[c];
  }
  const out = new Uint32Array(n);
  const next = new Array<number>(nClasses).fill(0); // how many rows of each class were given a fold so far
  const blocks = Array.from({ length: nClasses }, (_, c) => {
    const folds: number[] = [];
    for (let fold = 0; fold < k; fold++) for (let j = 0; j < allocation[fold][c]; j++) folds.push(fold);
    return folds;
  });
  for (let i = 0; i < n; i++) out[i] = blocks[encoded[i]][next[encoded[i]]++];
  return out;
}

/** Rows of `rows` scored in `fold` and the rest (training), both in the order given. */
export function foldSplit(rows: Uint32Array, assignment: Uint32Array, fold: number): { train: Uint32Array; test: Uint32Array } {
  const train: number[] = [];
  const test: number[] = [];
  for (let i = 0; i < rows.length; i++) (assignment[i] === fold ? test : train).push(rows[i]);
  return { train: Uint32Array.from(train), test: Uint32Array.from(test) };
}

function checkSplits(n: number, k: number): void {
  if (!Number.isInteger(k) || k < 2) throw new SpecError([{ path: "cv", message: `n_splits must be an integer >= 2 (got ${k})` }]);
  if (k > n) throw new SpecError([{ path: "cv", message: `cannot have n_splits=${k} greater than the number of training rows (${n})` }]);
}
