import type { BlobStore, BuildLedger, BuildRecord, BuildReport } from "@canopy/core";
import { bytes, duration, metricsLine, table, timingsLine } from "./format.ts";
import type { GroveProgress, ProgressView } from "./progress.ts";

/** What status and publish --wait read: the ledger record, and the blobs for the manifest and report. */
export interface StatusPorts {
  ledger: Pick<BuildLedger, "get">;
  blobs: BlobStore;
  /** Where a blob key lives, as the user can use it (s3://bucket/key, or a path). */
  locate(key: string): string;
}

export interface BuildStatus {
  record: BuildRecord;
  /** Trees the build asked for (from its manifest; undefined if unreadable). */
  treesTotal?: number;
  /** The report, once COMPLETED. */
  report?: BuildReport;
  /** Where report.html is (its location, or a presigned URL), once written. */
  page?: string;
  locate(key: string): string;
}

export async function treesOf(blobs: BlobStore, buildId: string): Promise<number | undefined> {
  const { readManifest } = await import("@canopy/core");
  const manifest = await readManifest(blobs, buildId).catch(() => undefined);
  return manifest && manifest.groves.length > 0 ? manifest.groves[manifest.groves.length - 1].treeEnd : undefined;
}

export async function readReport(blobs: BlobStore, record: BuildRecord): Promise<BuildReport | undefined> {
  if (record.status !== "COMPLETED" || !record.result) return undefined;
  const raw = await blobs.get(record.result.reportKey);
  return raw ? (JSON.parse(new TextDecoder().decode(raw)) as BuildReport) : undefined;
}

/** The build's record, trees and (when COMPLETED) report; undefined when the ledger has no such build. */
export async function loadBuildStatus(ports: StatusPorts, buildId: string): Promise<BuildStatus | undefined> {
  const record = await ports.ledger.get(buildId);
  if (!record) return undefined;
  const { keys } = await import("@canopy/core");
  const pageKey = record.status === "COMPLETED" ? keys.reportHtml(buildId) : undefined;
  const [treesTotal, report, page] = await Promise.all([
    treesOf(ports.blobs, buildId),
    readReport(ports.blobs, record),
    pageKey ? ports.blobs.exists(pageKey).catch(() => false) : false,
  ]);
  return {
    record,
    ...(treesTotal !== undefined ? { treesTotal } : {}),
    ...(report ? { report } : {}),
    ...(page ? { page: ports.locate(pageKey!) } : {}),
    locate: ports.locate,
  };
}

/** The progress canopy train shows, from a ledger record: groves settled, trees landed, time since submission. */
export function groveProgress(record: BuildRecord, treesTotal: number | undefined): GroveProgress {
  const treesDone = record.landed.reduce((sum, g) => sum + (record.groveStats[g]?.trees ?? 0), 0);
  return {
    buildId: record.buildId,
    landed: record.landed.length,
    failed: record.failed.length,
    total: record.total,
    treesDone,
    treesTotal: treesTotal ?? treesDone,
    elapsedMs: record.updatedAt - record.createdAt,
  };
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

/** `canopy status`: state, groves, failures, times, and for a finished build metrics, timings, cost, model. */
export function statusText(s: BuildStatus): string {
  const r = s.record;
  const rows: [string, string][] = [["build", `${r.buildId}  ${r.status}`]];
  const trees = s.treesTotal !== undefined ? `, ${groveProgress(r, s.treesTotal).treesDone}/${s.treesTotal} trees` : "";
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
  const report = s.report;
  if (report) {
    rows.push(["metrics", metricsLine(report.metrics as unknown as Record<string, unknown> | null)]);
    rows.push(["timings", timingsLine(report.timings)]);
    const cost = costLine(report);
    if (cost) rows.push(["cost", cost]);
    rows.push(["model", `${s.locate(report.model.key)} (${bytes(report.model.bytes)}, ${report.model.trees} trees, ${report.model.nodes} nodes)`]);
    rows.push(["report", s.locate(r.result!.reportKey)]);
    if (s.page) rows.push(["page", s.page]);
  } else if (r.result) {
    rows.push(["metrics", metricsLine(r.result.metrics)]);
    rows.push(["model", s.locate(r.result.modelKey)]);
  }
  return table(rows);
}

/** `canopy status --json` (and the last line of `publish --wait --json`). */
export function statusJson(s: BuildStatus): Record<string, unknown> {
  const r = s.record;
  const report = s.report;
  return {
    buildId: r.buildId,
    status: r.status,
    groves: { total: r.total, landed: r.landed.length, failed: r.failed, remaining: r.remaining, tolerated: r.tolerated },
    trees: { landed: groveProgress(r, s.treesTotal).treesDone, total: s.treesTotal ?? null },
    tags: r.tags,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    ...(r.reason !== undefined ? { reason: r.reason } : {}),
    ...(r.result ? { metrics: r.result.metrics, model: s.locate(r.result.modelKey), report: s.locate(r.result.reportKey) } : {}),
    ...(s.page ? { page: s.page } : {}),
    ...(report ? { timings: report.timings, cost: { totals: report.cost.totals, usd: report.cost.usd } } : {}),
  };
}

export interface FollowOptions {
  view: ProgressView;
  treesTotal?: number;
  /** Say how many groves and trees the build has before the first update (default true). */
  announce?: boolean;
  intervalMs?: number;
  signal?: AbortSignal;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

function sleepFor(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Polls the ledger until the build is COMPLETED or FAILED and shows canopy train's progress on the way (a note
 * when it starts, one update per grove settling, a note when it aggregates). Resolves to the last record, or
 * undefined if the signal aborted first.
 */
export async function followBuild(ports: Pick<StatusPorts, "ledger">, buildId: string, o: FollowOptions): Promise<BuildRecord | undefined> {
  const sleep = o.sleep ?? sleepFor;
  let settled = -1;
  let announced = o.announce === false;
  let aggregating = false;
  while (!o.signal?.aborted) {
    const r = await ports.ledger.get(buildId);
    if (!r) throw new Error(`build ${buildId} is not in the ledger`);
    if (!announced) {
      announced = true;
      const resumed = r.landed.length + r.failed.length > 0 ? `, ${r.landed.length} already landed` : "";
      o.view.note(`build ${buildId}: ${r.total} groves${o.treesTotal !== undefined ? `, ${o.treesTotal} trees` : ""}${resumed}`);
    }
    const now = r.landed.length + r.failed.length;
    if (now !== settled) {
      settled = now;
      o.view.update(groveProgress(r, o.treesTotal));
    }
    if (r.status === "AGGREGATING" && !aggregating) {
      aggregating = true;
      o.view.note(`${buildId}: all groves in; merging and evaluating`);
    }
    if (r.status === "COMPLETED" || r.status === "FAILED") {
      o.view.stop();
      return r;
    }
    await sleep(o.intervalMs ?? 1000, o.signal);
  }
  o.view.stop();
  return undefined;
}
