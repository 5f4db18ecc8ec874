// Child process for the trainer-memory row (run by bench/compare.ts): what one trainer holds while it trains a
// grove. argv: <pack file> <grove size> <n_estimators>; decodes the pack as a trainer does, trains trees
// 0..grove-1 of the build on every row, prints one JSON line (sizes in MB).
import { readFileSync } from "node:fs";
import { decodePack, fitForest, rowMajorBins } from "@canopy/forest";

const [packFile, groveArg, treesArg] = process.argv.slice(2);
const mb = (bytes: number) => bytes / (1 << 20);
const pack = decodePack(new Uint8Array(readFileSync(packFile)));
const rowCopy = rowMajorBins(pack).byteLength;
const rssBeforeFit = mb(process.memoryUsage().rss);
const grove = Number(groveArg);
const t0 = performance.now();
const forest = fitForest(pack, { n_estimators: Number(treesArg), random_state: 0, max_features: "sqrt" }, { treeIndices: Array.from({ length: grove }, (_, i) => i) });
const fitSeconds = (performance.now() - t0) / 1000;
process.stdout.write(
  `${JSON.stringify({
    packMb: mb(pack.bytes.byteLength),
    rowCopyMb: mb(rowCopy),
    rssBeforeFitMb: rssBeforeFit,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    groveMb: mb(forest.toBinary().byteLength),
    fitSeconds,
    trees: grove,
  })}\n`,
);
