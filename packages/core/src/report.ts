import type { Forest, Metrics, TableSchema } from "@canopy/forest";
import type { BuildCost } from "./cost.ts";
import type { PredictionSample, TreeCurve } from "./curve.ts";
import type { BuildRecord, GroveStats } from "./ledger.ts";
import type { BuildManifest, ManifestRefit } from "./manifest.ts";
import type { OobSummary } from "./oob.ts";

export interface StageTimings {
  /** CSV -> pack, measured by the submitter (absent if it did not say). */
  prepareMs?: number;
  /** First grove started -> last grove landed. */
  trainWallMs: number;
  /** Sum over groves of started -> landed: the compute a serial run would need. */
  trainSumMs: number;
  /** trainSumMs / trainWallMs: how many groves were effectively in flight. */
  parallelism: number;
  loadGrovesMs: number;
  mergeMs: number;
  evaluateMs: number;
  /** Trees landed per second of train wall time. */
  treesPerSecond: number;
  /** Submission (record created) -> report written. */
  totalMs: number;
  /** The aggregator's run: claim -> report written (absent in reports written before it was recorded). */
  aggregateMs?: number;
}

export interface GroveReport extends GroveStats {
  grove: number;
  treeStart: number;
  treeEnd: number;
  waitMs: number;
  loadMs: number;
  trainMs: number;
  storeMs: number;
  /** Ran (started -> landed) much longer than the build's median grove: see STRAGGLER_RULE. Trained groves only. */
  straggler?: boolean;
}

/** report.json: everything about one finished build, for humans and benchmarks. */
export interface BuildReport {
  v: 1;
  /** What the report describes (a study or a partitioned run will have their own kinds). Absent in older reports. */
  kind?: "build";
  buildId: string;
  status: "COMPLETED";
  spec: BuildManifest["spec"];
  /**
   * The build this one extends (more trees for it, the same spec and seed otherwise): its id and number of trees.
   * Its groves `copied` in `groves` are the parent's, not trained here. Absent for a build trained from scratch.
   */
  extends?: { buildId: string; trees: number };
  tags: Record<string, string>;
  dataset: {
    packKey: string;
    packHash: string;
    labelName: string;
    task: Forest["task"];
    nRows: number;
    nFeatures: number;
    classes: string[];
    trainRows: number;
    testRows: number;
    /** Feature columns by type (numeric, categorical, boolean, datetime; a date column counts once). Absent in older reports. */
    featureTypes?: Record<string, number>;
    /** Feature cells without a value, over all rows. Absent in older reports. */
    missingCells?: number;
    /** How the input's columns became the features (kinds, categories, excluded columns); absent for old packs. */
    schema?: TableSchema;
  };
  /** On the held-out split; null when test_fraction is 0. */
  metrics: Metrics | null;
  /**
   * The held-out metrics of the first t trees, for t = 1..trees: the curve that tells whether more trees would
   * still help. Absent when nothing is held out (and in older reports).
   */
  metricsByTrees?: TreeCurve;
  /** Regression: a sample of held-out (actual, predicted) pairs. */
  predictions?: PredictionSample;
  /**
   * spec oob_score: scikit-learn 1.9.1's oob_score_ (accuracy or R² over the training rows, each predicted by the
   * trees whose bootstrap left it out), the same bytes whatever the grove split. Absent without oob_score.
   */
  oob_score?: number;
  /** What oob_score is and where the per-row decision function is stored (builds/<id>/oob.bin). */
  oob?: OobSummary;
  /**
   * A refit build (refit.ts): trained on every row after build `refitOf.of` measured the held-out metrics copied
   * here; `metrics` is null (nothing held out), so these describe the evaluation build's model, not this one.
   */
  refitOf?: ManifestRefit;
  /** The study whose final model this build is (its manifest's finalOf). */
  finalOf?: string;
  /** The OOB score of the first t trees on a sample of the training rows (rows: "oob"). */
  oobMetricsByTrees?: TreeCurve;
  timings: StageTimings;
  groves: GroveReport[];
  /** Groves that failed within the tolerance: the model has fewer trees than asked for. */
  missingGroves: { grove: number; treeStart: number; treeEnd: number; error: string }[];
  model: { key: string; bytes: number; trees: number; nodes: number };
  /** The ten most important features (mean decrease in impurity), most important first. */
  featureImportances: { feature: string; importance: number }[];
  /** Per grove time split and billed GB-s, request counts and estimated USD (see cost.ts for the assumptions). */
  cost: BuildCost;
  createdAt: number;
  completedAt: number;
}

export function groveReports(manifest: BuildManifest, record: BuildRecord): GroveReport[] {
  const groves = record.landed.map((grove) => {
    const s = record.groveStats[grove];
    const plan = manifest.groves[grove];
    return {
      grove,
      treeStart: plan.treeStart,
      treeEnd: plan.treeEnd,
      ...s,
      waitMs: s.startedAt - s.queuedAt,
      loadMs: s.loadedAt - s.startedAt,
      trainMs: s.trainedAt - s.loadedAt,
      storeMs: s.storedAt - s.trainedAt,
    };
  });
  // A copy is not a run of a trainer: it neither straggles nor counts toward the median.
  const slow = stragglers(groves.filter((g) => !g.copied));
  return groves.map((g) => ({ ...g, straggler: slow.has(g.grove) }));
}

/**
 * Spark's speculation rule (spark.speculation.multiplier 1.5, spark.speculation.minTaskRuntime 100 ms; Spark
 * 3.5 configuration), applied after the fact: a grove straggled if it ran (started -> landed) at least 100 ms
 * and more than 1.5 times the median of the build's landed groves.
 */
export const STRAGGLER_RULE = { multiplier: 1.5, minMs: 100 } as const;

/** The grove numbers that straggled (see STRAGGLER_RULE). */
export function stragglers(groves: Pick<GroveReport, "grove" | "startedAt" | "landedAt">[]): Set<number> {
  if (groves.length < 2) return new Set();
  const ran = groves.map((g) => g.landedAt - g.startedAt);
  const sorted = [...ran].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return new Set(groves.filter((_, i) => ran[i] >= STRAGGLER_RULE.minMs && ran[i] > STRAGGLER_RULE.multiplier * median).map((g) => g.grove));
}

/** Train timings of the groves that were trained (an extension's copied groves are left out). */
export function trainTimings(all: GroveReport[]): Pick<StageTimings, "trainWallMs" | "trainSumMs" | "parallelism" | "treesPerSecond"> {
  const groves = all.filter((g) => !g.copied);
  if (groves.length === 0) return { trainWallMs: 0, trainSumMs: 0, parallelism: 0, treesPerSecond: 0 };
  const first = Math.min(...groves.map((g) => g.startedAt));
  const last = Math.max(...groves.map((g) => g.landedAt));
  const trainWallMs = last - first;
  const trainSumMs = groves.reduce((sum, g) => sum + (g.landedAt - g.startedAt), 0);
  const trees = groves.reduce((sum, g) => sum + g.trees, 0);
  return {
    trainWallMs,
    trainSumMs,
    parallelism: trainWallMs > 0 ? trainSumMs / trainWallMs : 0,
    treesPerSecond: trainWallMs > 0 ? (trees * 1000) / trainWallMs : 0,
  };
}

export function topImportances(featureNames: string[], imp: Float64Array, k = 10): { feature: string; importance: number }[] {
  return featureNames
    .map((feature, i) => ({ feature, importance: imp[i] }))
    .sort((a, b) => b.importance - a.importance || a.feature.localeCompare(b.feature))
    .slice(0, k);
}
