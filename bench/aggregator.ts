// Aggregator section (issue 11, item 7): the aggregator's peak memory on a big model, measured in fresh processes on
// the same finished build: core's aggregate() (groves one at a time, the model streamed to its file) against the way
// it worked before (every grove held, one merged Forest, one model buffer), and the pack-only floor under both.
// The build (FM 60k + 10k test rows, 2,000 trees in groves of 10) is trained once with the embedded runtime into
// bench/.cache and reused.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { keys } from "@canopy/core";
import { createLocalRuntime, DiskBlobStore, DiskLedger } from "@canopy/runtime-local";
import { createHash } from "node:crypto";
import { loadFashionMnist } from "./data.ts";
import { writeCsv } from "./pipeline.ts";
import { check, type Section, type SectionContext, type SectionResult } from "./section.ts";

const MB = 1024 * 1024;

interface ChildResult {
  mode: string;
  maxRssMb: number;
  seconds: number;
  modelBytes?: number;
  modelSha256?: string;
  packBytes?: number;
  largestGroveBytes: number;
  accuracy?: number | null;
  groves: number;
}

/** The finished build in the cache store, trained now if it is not there yet. */
async function ensureBuild(ctx: SectionContext, nTrain: number, trees: number): Promise<{ root: string; buildId: string; label: string }> {
  const fm = loadFashionMnist(nTrain);
  const csv = join(ctx.cacheDir, `${fm.id}-with-test.csv`);
  writeCsv(fm, csv);
  const total = fm.train.nRows + fm.test.nRows;
  const testFraction = (fm.test.nRows - 0.5) / total;
  const root = join(ctx.cacheDir, `aggregator-${fm.id}-${trees}`);
  const done = (await new DiskLedger(root).list()).find((r) => r.status === "COMPLETED" && r.treesLanded === trees);
  const label = `${fm.label} (+10k test), ${trees} trees`;
  if (done) return { root, buildId: done.buildId, label };
  ctx.log(`aggregator: training ${label} once into ${root} (2 workers; reused by later runs)`);
  const runtime = createLocalRuntime({ root, workers: 2, onNotify: () => {}, onWarning: ctx.log, fsync: false });
  try {
    const outcome = await runtime.train({ dataset: csv, label: "label", n_estimators: trees, grove_size: 10, seed: 0, test_fraction: testFraction });
    if (outcome.status !== "COMPLETED") throw new Error(`aggregator bench build failed: ${outcome.reason}`);
    return { root, buildId: outcome.buildId, label };
  } finally {
    await runtime.close();
  }
}

function child(root: string, buildId: string, mode: string): ChildResult {
  const run = spawnSync(process.execPath, ["--import", "tsx", "bench/aggregator-child.ts", root, buildId, mode], { encoding: "utf8", maxBuffer: 16 * MB });
  if (run.status !== 0) throw new Error(`aggregator child (${mode}) failed: ${run.stderr.trim().split("\n").slice(-3).join(" | ")}`);
  return JSON.parse(run.stdout.trim().split("\n").pop()!) as ChildResult;
}

export const aggregatorSection: Section = async (ctx): Promise<SectionResult> => {
  const nTrain = ctx.quick ? 5000 : 60000;
  const trees = ctx.quick ? 200 : 2000;
  const { root, buildId, label } = await ensureBuild(ctx, nTrain, trees);
  const stored = (await new DiskBlobStore(root).get(keys.model(buildId)))!;
  const storedSha = createHash("sha256").update(stored).digest("hex");

  const pack = child(root, buildId, "pack");
  ctx.log(`aggregator: modules + pack ${pack.maxRssMb.toFixed(0)} MB`);
  const stream = child(root, buildId, "stream");
  ctx.log(`aggregator: streamed ${stream.maxRssMb.toFixed(0)} MB peak, ${stream.seconds.toFixed(1)} s`);
  const whole = child(root, buildId, "whole");
  ctx.log(`aggregator: whole model ${whole.maxRssMb.toFixed(0)} MB peak, ${whole.seconds.toFixed(1)} s`);

  const modelMb = stream.modelBytes! / MB;
  const above = (r: ChildResult) => r.maxRssMb - pack.maxRssMb;
  const row = (name: string, r: ChildResult) => [
    name,
    r.maxRssMb.toFixed(0),
    r === pack ? "-" : above(r).toFixed(0),
    r.modelBytes ? (r.modelBytes / MB).toFixed(1) : "-",
    r === pack ? "-" : (r.maxRssMb / modelMb).toFixed(2),
    r.seconds.toFixed(1),
  ];
  const same = stream.modelSha256 === storedSha && whole.modelSha256 === storedSha;
  const streamed = above(stream) / modelMb;
  return {
    title: "Aggregator memory",
    tables: [
      {
        title: `Aggregator peak memory, ${label} in ${stream.groves} groves (fresh process each; RSS in MB)`,
        headers: ["aggregation", "peak RSS MB", "above pack MB", "model MB", "RSS ÷ model", "seconds"],
        rows: [row("modules + dataset pack only", pack), row("streamed (core aggregate)", stream), row("whole model in memory (before)", whole)],
        notes: [
          `largest grove ${(stream.largestGroveBytes / MB).toFixed(1)} MB; pack ${(pack.packBytes! / MB).toFixed(1)} MB; both write the same model bytes as the build's own: ${same ? "yes" : "NO"}.`,
          "streamed: each grove read twice (verified, evaluated tree by tree; then its tree data copied into the model file), one in memory at a time plus one read ahead.",
        ],
      },
    ],
    targets: [
      check(
        `${trees}-tree FM ${nTrain / 1000}k: the streamed aggregator's memory above the pack is under a quarter of the model's size (the whole-model way: over it)`,
        `${above(stream).toFixed(0)} MB above the pack for a ${modelMb.toFixed(0)} MB model (${(streamed * 100).toFixed(0)}%); whole model: ${above(whole).toFixed(0)} MB`,
        ctx.quick ? undefined : same && streamed < 0.25,
      ),
    ],
    raw: { pack, stream, whole, modelBytes: stream.modelBytes, storedSha, trees, nTrain },
  };
};
