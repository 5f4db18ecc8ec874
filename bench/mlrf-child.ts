// Child process for ml-random-forest (run by bench/mlrf.ts, which kills it at the time cap).
// argv: <caseDir> <trees> <seed>; prints one JSON line.
import { performance } from "node:perf_hooks";
import { RandomForestClassifier } from "ml-random-forest";
import { readCaseFiles, toRows } from "./data.ts";

const [caseDir, treesArg, seedArg] = process.argv.slice(2);
const { meta, train, test } = readCaseFiles(caseDir);
const Xtr = toRows(train, meta.nFeatures);
const Xte = toRows(test, meta.nFeatures);

const model = new RandomForestClassifier({
  nEstimators: Number(treesArg),
  // ml-random-forest wants an integer count here (a float means a fraction).
  maxFeatures: Math.round(Math.sqrt(meta.nFeatures)),
  replacement: true,
  seed: Number(seedArg),
  useSampleBagging: true,
  noOOB: true,
} as any);

const t0 = performance.now();
model.train(Xtr, Array.from(train.y));
const fitSeconds = (performance.now() - t0) / 1000;
const t1 = performance.now();
const pred = model.predict(Xte);
const predictSeconds = (performance.now() - t1) / 1000;

let correct = 0;
pred.forEach((p, i) => (correct += p === test.y[i] ? 1 : 0));

// ml-cart nodes: internal nodes have left/right children.
function countNodes(node: any): number {
  return node ? 1 + countNodes(node.left) + countNodes(node.right) : 0;
}
const nodeCount = ((model as any).estimators as any[]).reduce((s, e) => s + countNodes(e.root), 0);

console.log(JSON.stringify({
  fitSeconds,
  predictSeconds,
  predictRowsPerSec: test.nRows / predictSeconds,
  accuracy: correct / test.nRows,
  modelBytes: Buffer.byteLength(JSON.stringify(model.toJSON())),
  nodeCount,
}));
