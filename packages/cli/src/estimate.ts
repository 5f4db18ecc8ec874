/**
 * `canopy estimate` and `publish --dry-run`: train trees of the user's build here, turn what they took into the
 * work of a build on one Lambda vCPU (× the CPU factor), and run core's fan-out simulation for 100, 1,000 and
 * 10,000 trees in both modes of the trainer's SQS mapping, with the grove size that minimises time or cost.
 */
import {
  evaluateByTrees,
  estimateFanout,
  planBuild,
  prepareBuildData,
  suggestGroveSize,
  toFitParams,
  verifiedPack,
  type BlobStore,
  type BuildSpec,
  type FanoutEstimate,
  type FanoutInput,
  type MappingScaling,
  type WorkProfile,
} from "@canopy/core";
import type { openTable } from "@canopy/core/ingest";
import { fitForest, Forest } from "@canopy/forest";
import type { EstimateSettings } from "./estimate-options.ts";
import { bytes, duration } from "./format.ts";

type TableSource = Awaited<ReturnType<typeof openTable>>;

/**
 * Trees are trained here one at a time until this many seconds have passed (at least two trees, at most
 * MEASURED_TREES_MAX): on small data the engine's code is still being compiled over the first trees, and a trainer
 * container that trains many groves runs at the speed of the later ones, so the time per tree is the median of the
 * second half.
 */
export const MEASURE_SECONDS = 2;
export const MEASURED_TREES_MAX = 200;
/** The tree counts of the table. */
export const TABLE_TREES = [100, 1000, 10_000];

/** What training one grove here measured. */
export interface Measurement {
  rows: number;
  features: number;
  trainRows: number;
  testRows: number;
  packBytes: number;
  trees: number;
  /** Seconds a tree on this machine (one thread), once warm: the median of the second half of the trees. */
  trainPerTreeS: number;
  /** What the trees took beyond that while the engine's code was being compiled: a fresh process pays it once. */
  warmupS: number;
  packDecodeS: number;
  loadS: number;
  mergeS: number;
  /** Predicting the held-out rows with the grove. */
  predictS: number;
  /** Evaluating it as the aggregator does (predictions and metrics at each of its `trees` curve points). */
  evaluateS: number;
  groveBytes: number;
  buildId: string;
}

/** A blob store that keeps what it is given, for preparing the pack here without storing it anywhere. */
function keepingStore(): BlobStore & { kept: Map<string, Uint8Array> } {
  const kept = new Map<string, Uint8Array>();
  return {
    kept,
    get: async (key) => kept.get(key),
    put: async (key, value) => void kept.set(key, value),
    exists: async (key) => kept.has(key),
  };
}

const seconds = (since: number) => (performance.now() - since) / 1000;

/**
 * Prepares the pack as a build would, then times on this machine, on one thread, what a trainer and the aggregator
 * do with it: check and decode the pack, train trees of the build for about MEASURE_SECONDS, and (the aggregator)
 * decode them as a grove, merge and encode it, evaluate it on the held-out rows.
 */
export async function measureGrove(spec: BuildSpec, table: TableSource): Promise<Measurement> {
  const blobs = keepingStore();
  const prepared = await prepareBuildData(spec, table, blobs);
  const packBytes = blobs.kept.get(prepared.packKey)!;
  const plan = planBuild(spec, prepared.pack);

  let t = performance.now();
  const pack = verifiedPack(packBytes, prepared.packKey, prepared.hash);
  const packDecodeS = seconds(t);

  // (A tree depends on the seed and its index only, so the count is raised for a build of fewer trees.)
  const params = { ...toFitParams(spec), n_estimators: Math.max(spec.n_estimators, MEASURED_TREES_MAX) };
  const parts: Forest[] = [];
  const times: number[] = [];
  const started = performance.now();
  while (parts.length < MEASURED_TREES_MAX && (parts.length < 2 || seconds(started) < MEASURE_SECONDS)) {
    t = performance.now();
    parts.push(fitForest(pack, params, { rows: plan.split.train, treeIndices: [parts.length] }));
    times.push(seconds(t));
  }
  const later = times.slice(Math.floor(times.length / 2)).sort((a, b) => a - b);
  const trainPerTreeS = later[Math.floor(later.length / 2)];
  const warmupS = times.reduce((sum, s) => sum + Math.max(0, s - trainPerTreeS), 0);
  const encoded = Forest.merge(parts).toBinary();
  const trees = parts.length;

  // The aggregator's steps, each timed on its second run: the first pays for compiling the code, once per build.
  const timed = <T>(work: () => T): { value: T; s: number } => {
    work();
    const start = performance.now();
    const value = work();
    return { value, s: seconds(start) };
  };
  const { value: loaded, s: loadS } = timed(() => Forest.load(encoded));
  const { s: mergeS } = timed(() => Forest.merge([loaded]).withSchema(pack.schema).toBinary());
  let predictS = 0;
  let evaluateS = 0;
  if (plan.split.test.length > 0) {
    const test = plan.split.test;
    predictS = timed(() => (loaded.task === "classification" ? loaded.predictPackProba(pack, test) : loaded.predictPack(pack, test))).s;
    evaluateS = timed(() => evaluateByTrees(loaded, pack, test)).s;
  }

  return {
    rows: pack.nRows,
    features: pack.nFeatures,
    trainRows: plan.split.train.length,
    testRows: plan.split.test.length,
    packBytes: packBytes.length,
    trees,
    trainPerTreeS,
    warmupS,
    packDecodeS,
    loadS,
    mergeS,
    predictS,
    evaluateS,
    groveBytes: encoded.length,
    buildId: plan.buildId,
  };
}

/** The measurement as the work of one Lambda vCPU: per tree, × the CPU factor. */
export function workProfile(m: Measurement, cpuFactor: number): WorkProfile {
  const perTree = (s: number) => (s / m.trees) * cpuFactor;
  return {
    trainPerTreeS: m.trainPerTreeS * cpuFactor,
    bytesPerTree: m.groveBytes / m.trees,
    packBytes: m.packBytes,
    packDecodeS: m.packDecodeS * cpuFactor,
    warmupS: m.warmupS * cpuFactor,
    loadPerTreeS: perTree(m.loadS),
    mergePerTreeS: perTree(m.mergeS),
    evaluatePerTreeS: perTree(m.predictS),
    // What evaluating adds to predicting: the metrics at each curve point (every tree of a small grove is one).
    evaluatePerPointS: perTree(Math.max(0, m.evaluateS - m.predictS)),
  };
}

export interface EstimateRow {
  trees: number;
  groveSize: number;
  estimate: FanoutEstimate;
}

export interface EstimateResult {
  measurement: Measurement;
  settings: EstimateSettings;
  profile: WorkProfile;
  rows: EstimateRow[];
  /** For the spec's trees, per mapping mode: the grove size that minimises wall time, and cost. */
  suggestions: { mode: MappingScaling["mode"]; fastest?: FanoutEstimate; cheapest?: FanoutEstimate }[];
}

export function scalings(s: EstimateSettings): MappingScaling[] {
  return [
    { mode: "default", maxConcurrency: s.maxConcurrency },
    { mode: "provisioned", minPollers: s.minPollers, maxPollers: s.maxPollers },
  ];
}

/** Simulates the table (100, 1,000, 10,000 trees and the spec's own) and the suggestions. */
export function estimateBuilds(spec: BuildSpec, m: Measurement, s: EstimateSettings, maxGroves: number): EstimateResult {
  const profile = workProfile(m, s.cpuFactor);
  const base = (trees: number, scaling: MappingScaling): Omit<FanoutInput, "groveSize"> => ({
    trees,
    profile,
    trainer: { memoryMb: s.trainerMemoryMb, scaling },
    aggregator: { memoryMb: s.aggregatorMemoryMb },
  });
  const counts = [...new Set([...TABLE_TREES, spec.n_estimators])].sort((a, b) => a - b);
  const rows: EstimateRow[] = [];
  for (const trees of counts) {
    // The spec's grove size, or the smallest that keeps the build within the most groves it may have.
    const groveSize = Math.max(Math.min(spec.grove_size, trees), Math.ceil(trees / maxGroves));
    for (const scaling of scalings(s)) rows.push({ trees, groveSize, estimate: estimateFanout({ ...base(trees, scaling), groveSize }) });
  }
  const suggestions = scalings(s).map((scaling) => {
    const found = suggestGroveSize(base(spec.n_estimators, scaling), { maxGroves, timeoutS: s.timeoutS });
    return { mode: scaling.mode, ...(found ? { fastest: found.fastest, cheapest: found.cheapest } : {}) };
  });
  return { measurement: m, settings: s, profile, rows, suggestions };
}

const usd = (v: number) => (v >= 1 ? `$${v.toFixed(2)}` : `$${Number(v.toPrecision(3))}`);
/** Short times keep a decimal: a tree of small data takes a millisecond or two. */
const time = (s: number) => (s < 0.01 ? `${(s * 1000).toFixed(1)} ms` : duration(s * 1000));
const count = (n: number) => n.toLocaleString("en-US");
const modeLabel = (scaling: MappingScaling) =>
  scaling.mode === "default" ? `default (≤${scaling.maxConcurrency})` : scaling.mode === "provisioned" ? `provisioned (${scaling.minPollers}–${scaling.maxPollers} pollers)` : `fixed (${scaling.concurrency})`;

/** Columns, left-aligned, two spaces apart. */
function columns(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join("  ")).join("\n");
}

/** The estimate for people: what was measured, the table, the suggestions and what the numbers rest on. */
export function estimateText(spec: BuildSpec, dataName: string, r: EstimateResult): string {
  const m = r.measurement;
  const s = r.settings;
  const lines: string[] = [];
  lines.push(
    `measured here: ${m.trees} trees of ${dataName} (${count(m.rows)} rows × ${m.features} features, ${count(m.trainRows)} train / ${count(m.testRows)} test) ` +
      `on one thread: ${time(m.trainPerTreeS)} a tree once warm, ${bytes(m.groveBytes / m.trees)} of grove a tree; pack ${bytes(m.packBytes)}`,
  );
  lines.push(
    `on AWS: trainer ${s.trainerMemoryMb} MB, aggregator ${s.aggregatorMemoryMb} MB, Lambda CPU factor ${s.cpuFactor} (× this machine's time; 1 vCPU at ${1769} MB)`,
  );
  lines.push("");
  const table = [["trees", "groves", "grove size", "trainer mapping", "wall", "trainers at once", "cold starts", "cost"]];
  for (const row of r.rows) {
    const e = row.estimate;
    table.push([count(row.trees), count(e.groves), String(row.groveSize), modeLabel(e.scaling), duration(e.wallS * 1000), String(e.peakConcurrency), String(e.containers), usd(e.cost.usd)]);
  }
  lines.push(columns(table));
  lines.push("");
  lines.push(`grove size for ${count(spec.n_estimators)} trees (--trees), within the trainer's ${s.timeoutS} s timeout:`);
  for (const sug of r.suggestions) {
    const label = sug.mode === "default" ? "default mode" : "provisioned mode";
    if (!sug.fastest || !sug.cheapest) {
      lines.push(`  ${label}: no grove size trains within the timeout; raise CANOPY_TRAINER_TIMEOUT_SECONDS`);
      continue;
    }
    const f = sug.fastest;
    const c = sug.cheapest;
    lines.push(
      `  ${label}: fastest --grove-size ${f.groveSize} (${duration(f.wallS * 1000)}, ${usd(f.cost.usd)}); cheapest --grove-size ${c.groveSize} (${duration(c.wallS * 1000)}, ${usd(c.cost.usd)})`,
    );
  }
  const standing = r.rows.find((row) => row.estimate.scaling.mode === "provisioned")?.estimate.cost.standingPollersPerMonth ?? 0;
  lines.push("");
  lines.push(
    `provisioned mode also bills its ${s.minPollers} minimum pollers around the clock: ${usd(standing)} a month, builds or not (not in the costs above).`,
  );
  lines.push(
    "cost: Lambda time (inits included), requests and added pollers at us-east-1 prices; not S3 storage, logs or transfer. " +
      "Assumptions (latencies, throughput, scaling): AWS_ASSUMPTIONS in packages/core/src/estimate.ts.",
  );
  return lines.join("\n");
}

/** The estimate as JSON (--json). */
export function estimateJson(r: EstimateResult): Record<string, unknown> {
  const view = (e: FanoutEstimate) => ({
    trees: e.trees,
    groveSize: e.groveSize,
    groves: e.groves,
    mapping: e.scaling,
    wallS: e.wallS,
    timeline: e.timeline,
    peakConcurrency: e.peakConcurrency,
    coldStarts: e.containers,
    longestGroveS: e.longestGroveS,
    aggregateS: e.aggregateS,
    cost: e.cost,
  });
  return {
    measured: r.measurement,
    settings: r.settings,
    profile: r.profile,
    rows: r.rows.map((row) => view(row.estimate)),
    suggestions: r.suggestions.map((sug) => ({
      mode: sug.mode,
      fastest: sug.fastest ? view(sug.fastest) : null,
      cheapest: sug.cheapest ? view(sug.cheapest) : null,
    })),
  };
}

/**
 * The whole estimate: measure one grove of `table` here, simulate, render. Rules the data decides (an unknown label,
 * a task it does not fit) are usage errors, as for a build.
 */
export async function runEstimate(
  spec: BuildSpec,
  table: TableSource,
  dataName: string,
  settings: EstimateSettings,
  note: (line: string) => void,
): Promise<{ result: EstimateResult; text: string; json: Record<string, unknown> }> {
  const { SpecError } = await import("@canopy/core");
  const { specUsageError } = await import("./spec.ts");
  // The most groves a build on AWS may have (its ledger item's size).
  const { DYNAMO_MAX_GROVES } = await import("@canopy/runtime-aws");
  note(`estimate: preparing ${dataName} and training trees here for about ${MEASURE_SECONDS} s (at least two) to measure the work`);
  const measurement = await measureGrove(spec, table).catch((err: unknown) => {
    throw err instanceof SpecError ? specUsageError(err) : err;
  });
  const result = estimateBuilds(spec, measurement, settings, DYNAMO_MAX_GROVES);
  return { result, text: estimateText(spec, dataName, result), json: estimateJson(result) };
}
