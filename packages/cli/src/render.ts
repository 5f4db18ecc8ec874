import type { BuildHandle, BuildReport, BuildView } from "@canopy/core";
import { printable, quoted } from "@canopy/forest";
import { bytes, duration, metricsLine, schemaRows, table, timingsLine } from "./format.ts";

/** Where a blob key lives, as the user can use it (a path, or s3://bucket/key): the runtime's locate(). */
export type Locate = (key: string) => string;

/** The end-of-build summary (train, publish --wait, dev): what was built, how well it does, how long it took, where it is. */
export function summary(report: BuildReport, modelPath: string, reportPath: string, pagePath?: string): string {
  const d = report.dataset;
  const target = d.task === "classification" ? `${d.classes.length} classes` : "regression";
  const missing = report.missingGroves.length;
  const rows: [string, string][] = [
    ["build", `${report.buildId}: ${report.model.trees} trees in ${report.groves.length} groves${missing ? ` (${missing} grove(s) failed and are missing)` : ""}`],
    ...(report.extends ? [["extends", extendsLine(report)] as [string, string]] : []),
    ["data", `${d.nRows} rows × ${d.nFeatures} features, label ${quoted(d.labelName)} (${target}); ${d.trainRows} train / ${d.testRows} test`],
    ...(d.schema ? schemaRows(d.schema, printable) : []),
    ["metrics", report.refitOf ? "none held out by this model (see refit)" : metricsLine(report.metrics as unknown as Record<string, unknown> | null)],
    ...(report.oob ? [["oob", oobLine(report)] as [string, string]] : []),
    ...(report.refitOf ? [["refit", refitLine(report)] as [string, string]] : []),
    ["timings", timingsLine(report.timings)],
    ["model", `${modelPath} (${bytes(report.model.bytes)}, ${report.model.nodes} nodes)`],
    ["report", reportPath],
    ...(pagePath ? [["page", `${pagePath} (charts; opens offline)`] as [string, string]] : []),
  ];
  return table(rows);
}

/** "oob_score 0.9464 (accuracy over 112 training rows, each by the trees that did not draw it)" and sklearn's warning. */
export function oobLine(report: BuildReport): string {
  const o = report.oob!;
  const never = o.rowsWithoutOob > 0 ? `; warning: ${o.rowsWithoutOob} row(s) were never out of bag and count as predicted 0, as in scikit-learn (more trees fix it)` : "";
  return `oob_score ${o.score.toFixed(4)} (${o.metric === "accuracy" ? "accuracy" : "R²"} over ${o.rows} training rows, each by the trees that did not draw it)${never}`;
}

/** A refit: which model the metrics describe, and what this one was trained on. */
export function refitLine(report: BuildReport): string {
  const r = report.refitOf!;
  const oob = r.oob_score !== undefined ? `, oob_score ${r.oob_score.toFixed(4)}` : "";
  return `this model is trained on all ${report.dataset.trainRows} rows; the held-out metrics are build ${r.of}'s (trained on ${r.trainRows}, tested on ${r.testRows}): ${metricsLine(r.metrics)}${oob}`;
}

/** What an extension took from its parent and what it trained: "b-… (40 trees): 4 groves copied, 60 trees trained". */
function extendsLine(report: BuildReport): string {
  const copied = report.groves.filter((g) => g.copied);
  const trained = report.groves.filter((g) => !g.copied).reduce((n, g) => n + g.trees, 0);
  return `${report.extends!.buildId} (${report.extends!.trees} trees): ${copied.length} grove(s) copied, ${trained} trees trained`;
}

/** The line a command prints when it starts an extension. */
export function extensionNote(handle: BuildHandle): string {
  const copied = handle.copied?.length ?? 0;
  return `build ${handle.buildId} extends ${handle.extends} to ${handle.trees} trees: ${copied} grove(s) copied from it, ${handle.queued.length} grove(s) of new trees queued`;
}

/** Estimated AWS cost of a build that ran on Lambda, one line (core's cost model: see cost.ts for its assumptions). */
export function costLine(report: BuildReport): string | undefined {
  const cost = report.cost;
  // No billed GB-s: not trained on Lambda (canopy train), so an AWS bill estimate would mislead.
  if (!cost?.usd || !(cost.totals.billedGbS > 0)) return undefined;
  const requests = cost.usd.total - cost.usd.lambdaCompute;
  return `$${cost.usd.total.toFixed(6)} estimated: ${cost.totals.billedGbS.toFixed(1)} GB-s of Lambda $${cost.usd.lambdaCompute.toFixed(6)}, requests $${requests.toFixed(6)}`;
}

const shownErrors = 10;

/** `canopy status`: state, groves, failures, times, and for a finished build metrics, timings, cost, model, page. */
export function statusText(view: BuildView, locate: Locate, page = pageOf(view, locate)): string {
  const r = view.record;
  const rows: [string, string][] = [["build", `${r.buildId}  ${r.status}`]];
  const trees = view.treesTotal !== undefined ? `, ${view.treesDone}/${view.treesTotal} trees` : "";
  const failed = r.failed.length > 0 ? `, ${r.failed.length} failed` : "";
  const outstanding = r.remaining > 0 ? `, ${r.remaining} outstanding` : "";
  rows.push(["groves", `${r.landed.length}/${r.total} landed${failed}${outstanding}${trees} (tolerates ${r.tolerated} failed)`]);
  for (const f of r.failed.slice(0, shownErrors)) rows.push(["failed", `grove ${f.grove}: ${f.error}`]);
  if (r.failed.length > shownErrors) rows.push(["failed", `... and ${r.failed.length - shownErrors} more (canopy status --json lists them all)`]);
  if (r.reason) rows.push(["reason", r.reason]);
  const tags = Object.entries(r.tags);
  if (tags.length > 0) rows.push(["tags", tags.map(([k, v]) => `${k}=${v}`).join(" ")]);
  const lastLanded = r.lastLandedAt !== undefined ? `, last grove landed after ${duration(r.lastLandedAt - r.createdAt)}` : "";
  rows.push(["submitted", `${new Date(r.createdAt).toISOString()}${lastLanded}, last update after ${duration(r.updatedAt - r.createdAt)}`]);
  const report = view.report;
  if (report) {
    if (report.extends) rows.push(["extends", extendsLine(report)]);
    rows.push(["metrics", metricsLine(report.metrics as unknown as Record<string, unknown> | null)]);
    if (report.oob) rows.push(["oob", oobLine(report)]);
    if (report.refitOf) rows.push(["refit", refitLine(report)]);
    rows.push(["timings", timingsLine(report.timings)]);
    const cost = costLine(report);
    if (cost) rows.push(["cost", cost]);
    rows.push(["model", `${locate(report.model.key)} (${bytes(report.model.bytes)}, ${report.model.trees} trees, ${report.model.nodes} nodes)`]);
    rows.push(["report", locate(r.result!.reportKey)]);
    if (page) rows.push(["page", page]);
  } else if (r.result) {
    rows.push(["metrics", metricsLine(r.result.metrics)]);
    if (r.result.modelKey) rows.push(["model", locate(r.result.modelKey)]);
  }
  return table(rows);
}

/** `canopy status --json` (and the last line of `publish --wait --json`). */
export function statusJson(view: BuildView, locate: Locate, page = pageOf(view, locate)): Record<string, unknown> {
  const r = view.record;
  const report = view.report;
  return {
    buildId: r.buildId,
    status: r.status,
    groves: { total: r.total, landed: r.landed.length, failed: r.failed, remaining: r.remaining, tolerated: r.tolerated },
    trees: { landed: view.treesDone, total: view.treesTotal ?? null },
    tags: r.tags,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    ...(r.reason !== undefined ? { reason: r.reason } : {}),
    ...(r.result ? { metrics: r.result.metrics, ...(r.result.modelKey ? { model: locate(r.result.modelKey) } : {}), report: locate(r.result.reportKey) } : {}),
    ...(report?.extends ? { extends: report.extends } : {}),
    ...(report?.oob_score !== undefined ? { oob_score: report.oob_score } : {}),
    ...(report?.refitOf ? { refitOf: report.refitOf } : {}),
    ...(report ? { timings: report.timings, cost: { totals: report.cost.totals, usd: report.cost.usd } } : {}),
    ...(page ? { page } : {}),
  };
}

/** Where the build's report.html is, once it was written. */
function pageOf(view: BuildView, locate: Locate): string | undefined {
  return view.pageKey !== undefined ? locate(view.pageKey) : undefined;
}
