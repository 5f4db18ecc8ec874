import { FOREST_FORMAT, printable } from "@canopy/forest";
import { bytes, metricsLine, paramsLine, schemaRows, table } from "../format.ts";
import { loadModelRef } from "../model.ts";

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

export async function inspect(ref: string, options: InspectOptions, out: NodeJS.WritableStream = process.stdout): Promise<void> {
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
