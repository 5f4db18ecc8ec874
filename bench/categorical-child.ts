// The embedded pipeline on one table in a fresh process, as `canopy train` runs it: `tsx bench/categorical-child.ts
// <file> <label> <trees> <min_samples_leaf>` trains on 2 workers in a scratch store and prints JSON: the wall time
// from start to the evaluated model, the process's peak RSS (trainer threads included) and R² on the held-out rows.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalRuntime } from "@canopy/runtime-local";

const [file, label, trees, minLeaf] = process.argv.slice(2);
const root = mkdtempSync(join(tmpdir(), "canopy-bench-"));
const started = performance.now();
const runtime = createLocalRuntime({ root, workers: 2, onNotify: () => {} });
try {
  const outcome = await runtime.train({ dataset: file!, label: label!, n_estimators: Number(trees), grove_size: 10, seed: 0, test_fraction: 0.25, min_samples_leaf: Number(minLeaf) });
  if (outcome.status !== "COMPLETED") throw new Error(`build failed: ${outcome.reason}`);
  const wallSeconds = (performance.now() - started) / 1000;
  const m = outcome.report.metrics;
  const r2 = m && m.task === "regression" ? m.r2 : NaN;
  process.stdout.write(`${JSON.stringify({ wallSeconds, maxRssMb: process.resourceUsage().maxRSS / 1024, r2, buildId: outcome.buildId })}\n`);
} finally {
  await runtime.close();
  rmSync(root, { recursive: true, force: true });
}
