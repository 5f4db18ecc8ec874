import type { Forest, Metrics, TableSchema } from "@canopy/forest";
import type { BuildCost } from "./cost.ts";
import type { BuildRecord, GroveStats } from "./ledger.ts";
import type { BuildManifest } from "./submit.ts";

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
}

export interface GroveReport extends GroveStats {
  grove: number;
  treeStart: number;
  treeEnd: number;
  waitMs: number;
  loadMs: number;
  trainMs: number;
  storeMs: number;
}

/** report.json: everything about one finished build, for humans and benchmarks. */
export interface BuildReport {
  v: 1;
  buildId: string;
  status: "COMPLETED";
  spec: BuildManifest["spec"];
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
    /** How the input's columns became the features (kinds, categories, excluded columns); absent for old packs. */
    schema?: TableSchema;
  };
  /** On the held-out split; null when test_fraction is 0. */
  metrics: Metrics | null;
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
  return record.landed.map((grove) => {
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
}

export function trainTimings(groves: GroveReport[]): Pick<StageTimings, "trainWallMs" | "trainSumMs" | "parallelism" | "treesPerSecond"> {
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

export function topImportances(forest: Forest, k = 10): { feature: string; importance: number }[] {
  const imp = forest.featureImportances();
  return forest.featureNames
    .map((feature, i) => ({ feature, importance: imp[i] }))
    .sort((a, b) => b.importance - a.importance || a.feature.localeCompare(b.feature))
    .slice(0, k);
}
