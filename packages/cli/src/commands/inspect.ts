import { FOREST_FORMAT, printable } from "@canopy/forest";
import { bytes, columns, metricsLine, paramsLine, schemaRows, table } from "../format.ts";
import { loadModelRef, openModelRef, type LoadedPartitionedModel } from "../model.ts";

export interface InspectOptions {
  json?: boolean;
  root: string;
}

export interface ModelSummary {
  path: string;
  bytes: number;
  buildId: string | null;
  format: string;
  version: number;
  task: string;
  label: string;
  trees: number;
  nodes: number;
  features: number;
  classes: string[];
  /** How input columns become the features; null for a model of numeric columns only. */
  schema: import("@canopy/forest").TableSchema | null;
  params: object;
  /** From the build's report (held-out split), when it is available. */
  metrics: Record<string, unknown> | null;
  /** Mean decrease in impurity, top 10, most important first. */
  featureImportances: { feature: string; importance: number }[];
}

export async function summarize(ref: string, root: string): Promise<ModelSummary> {
  const { forest, path, bytes: size, buildId, report } = await loadModelRef(ref, root);
  const importances = forest.featureImportances();
  const top = forest.featureNames
    .map((feature, i) => ({ feature, importance: importances[i] }))
    .sort((a, b) => b.importance - a.importance || a.feature.localeCompare(b.feature))
    .slice(0, 10);
  return {
    path,
    bytes: size,
    buildId: buildId ?? null,
    format: FOREST_FORMAT,
    version: forest.version,
    task: forest.task,
    label: forest.labelName,
    trees: forest.nTrees,
    nodes: forest.nodeCount,
    features: forest.nFeatures,
    classes: forest.classes,
    schema: forest.schema ?? null,
    params: forest.params,
    metrics: (report?.metrics as Record<string, unknown> | null | undefined) ?? null,
    featureImportances: top,
  };
}

/** `canopy inspect` of a partitioned model: its manifest, without loading a partition's forest. */
export interface PartitionedSummary {
  kind: "partitioned";
  path: string;
  runId: string;
  task: string;
  partitionBy: string;
  features: string[];
  /** Partitions in key order (sorted), each with its build, rows and model size. */
  partitions: { value: string; build: string; rows: number; bytes: number }[];
  /** Model files summed, fallback included. */
  bytes: number;
  rows: number;
  fallback: { build: string; rows: number; bytes: number } | null;
  skipped: { value: string; rows: number; reason: string }[];
}

export function summarizePartitioned(opened: LoadedPartitionedModel): PartitionedSummary {
  const m = opened.model;
  const partitions = Object.keys(m.partitions)
    .sort()
    .map((key) => {
      const p = m.partitions[key]!;
      return { value: p.value, build: p.build, rows: p.rows, bytes: p.bytes };
    });
  const fallback = m.fallback ? { build: m.fallback.build, rows: m.fallback.rows, bytes: m.fallback.bytes } : null;
  return {
    kind: "partitioned",
    path: opened.path,
    runId: m.runId,
    task: m.task,
    partitionBy: m.partitionBy,
    features: m.features,
    partitions,
    bytes: partitions.reduce((sum, p) => sum + p.bytes, fallback?.bytes ?? 0),
    rows: partitions.reduce((sum, p) => sum + p.rows, 0),
    fallback,
    skipped: m.skipped,
  };
}

function inspectPartitioned(s: PartitionedSummary, out: NodeJS.WritableStream): void {
  const list = (names: string[]) => (names.length <= 12 ? names : [...names.slice(0, 12), `… (${names.length} in all)`]).map((n) => printable(n)).join(", ");
  const rows: [string, string][] = [
    ["model", `${s.path} (partitioned, ${bytes(s.bytes)} of models)`],
    ["run", s.runId],
    ["task", s.task],
    ["partition by", printable(s.partitionBy)],
    ["partitions", `${s.partitions.length} (${s.rows} rows)`],
    ["features", `${s.features.length}: ${list(s.features)}`],
    ["fallback", s.fallback ? `${s.fallback.build} (${s.fallback.rows} rows, ${bytes(s.fallback.bytes)})` : "none: rows of other values are refused"],
    ["skipped", s.skipped.length === 0 ? "none" : `${s.skipped.length}: ${s.skipped.map((k) => `${printable(k.value)} (${k.rows} rows)`).slice(0, 12).join(", ")}${s.skipped.length > 12 ? ", …" : ""}`],
  ];
  const parts = columns([["VALUE", "BUILD", "ROWS", "SIZE"], ...s.partitions.map((p) => [printable(p.value), p.build, String(p.rows), bytes(p.bytes)])], "  ");
  out.write(`${table(rows)}
partitions:
${parts}
`);
}

export async function inspect(ref: string, options: InspectOptions, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const opened = await openModelRef(ref, options.root);
  if (opened.kind === "partitioned") {
    const p = summarizePartitioned(opened);
    if (options.json) out.write(`${JSON.stringify(p, null, 2)}
`);
    else inspectPartitioned(p, out);
    return;
  }
  const s = await summarize(ref, options.root);
  if (options.json) {
    out.write(`${JSON.stringify(s, null, 2)}\n`);
    return;
  }
  const rows: [string, string][] = [
    ["model", `${s.path} (${bytes(s.bytes)})`],
    ["build", s.buildId ?? "unknown"],
    ["format", `${s.format} v${s.version}`],
    ["task", s.task],
    ["label", printable(s.label)],
    ["trees", String(s.trees)],
    ["nodes", String(s.nodes)],
    ["features", String(s.features)],
  ];
  if (s.schema) rows.push(...schemaRows(s.schema, printable));
  if (s.task === "classification") rows.push(["classes", `${s.classes.length}: ${s.classes.map((c) => printable(c)).join(", ")}`]);
  rows.push(["params", paramsLine(s.params)]);
  rows.push(["metrics", s.metrics ? metricsLine(s.metrics) : "unknown (no report.json for this model)"]);
  const imp = table(
    s.featureImportances.map(({ feature, importance }) => [printable(feature), importance.toFixed(4)]),
    "  ",
  );
  out.write(`${table(rows)}\nfeature importances (top ${s.featureImportances.length}):\n${imp}\n`);
}
