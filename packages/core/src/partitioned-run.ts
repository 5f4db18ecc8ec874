import { AggregationError, errorLine, TaskError } from "./errors.ts";
import { sha256Hex } from "./digest.ts";
import { CONTENT_TYPES, keys } from "./keys.ts";
import { newBuildRecord, type BuildSummary } from "./ledger.ts";
import { buildIdFor, planGroves, type PackSummary } from "./plan.ts";
import { systemClock, type BlobStore, type BuildLedger, type Clock, type Notifier } from "./ports.ts";
import type { BuildReport } from "./report.ts";
import { submitBuild } from "./submit.ts";
import { redriveFanIn, resumeMembers, settleMembers, type StudyPorts } from "./study.ts";
import {
  checkPartitionRun,
  partitionMemberSpec,
  partitionRunIdFor,
  type PartitionMember,
  type PartitionRunManifest,
  type PartitionRunOptions,
} from "./partition-plan.ts";
import {
  partitionsCompletedNotification,
  partitionsFailedNotification,
  weightedMetrics,
  type PartitionOutcome,
  type PartitionReport,
} from "./partition-report.ts";
import { parsePartitionedModel, PARTITIONED_MODEL_FORMAT, PARTITIONED_MODEL_VERSION, type PartitionedModel } from "./partitioned-model.ts";
import type { BuildSpec } from "./spec.ts";
import { storeReportWithPage, type StoredPage } from "./report-page.ts";

/**
 * A partitioned run is the study's fan-in with other members: a ledger record (`p-…`) whose members are builds, one
 * per partition (and the fallback's), each an ordinary build over its own pack. The study's machinery counts them
 * (memberOf, settleMember, settleMembers, resumeMembers); the run's aggregator writes the partitioned model.
 */

/** A partition's prepared pack, as the submission needs it (the pack itself is not held: each is stored already). */
export interface PreparedPartition {
  key?: string;
  value?: string;
  fallback?: true;
  rows: number;
  packKey: string;
  pack: PackSummary;
}

/** What preparing a partitioned input made (core/ingest's preparePartitions). */
export interface PreparedPartitions {
  partitionBy: string;
  task: "classification" | "regression";
  features: string[];
  /** Partitions in key order, then the fallback. */
  partitions: PreparedPartition[];
  skipped: PartitionRunManifest["skipped"];
  rows: number;
  unkeyed: number;
  prepareMs: number;
}

export interface PartitionSubmission {
  runId: string;
  created: boolean;
  manifest: PartitionRunManifest;
  /** Member builds this call created (queued their groves). */
  submitted: string[];
}

const encode = (value: unknown) => new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);

/** The run's plan: its members and id, checked against the limits, nothing written. */
export function planPartitionRun(spec: BuildSpec, options: PartitionRunOptions, prepared: PreparedPartitions, now: number): PartitionRunManifest {
  const memberSpec = partitionMemberSpec(spec, options.partitionBy);
  checkPartitionRun(memberSpec, prepared.partitions.length);
  const groves = planGroves(memberSpec.n_estimators, memberSpec.grove_size).length;
  const members: PartitionMember[] = prepared.partitions.map((p) => ({
    ...(p.fallback ? { fallback: true as const } : { key: p.key!, value: p.value! }),
    buildId: buildIdFor(p.pack.hash, memberSpec),
    rows: p.rows,
    groves,
    packKey: p.packKey,
    packHash: p.pack.hash,
  }));
  const base = { partitionBy: options.partitionBy, minPartitionRows: options.minPartitionRows, ...(options.fallback ? { fallback: options.fallback } : {}), members, skipped: prepared.skipped };
  return {
    v: 1,
    runId: partitionRunIdFor(base),
    spec,
    task: prepared.task,
    features: prepared.features,
    rows: prepared.rows,
    unkeyed: prepared.unkeyed,
    groves: groves * members.length,
    createdAt: now,
    ...base,
  };
}

/**
 * Starts a partitioned run over prepared packs: its manifest, its record (TRAINING before any member can land),
 * then every member build (submitBuild with memberOf), all their groves on the one queue. A member that existed
 * (the same partition rows and spec trained before) is not trained again: it lands when finished.
 */
export async function submitPartitionedRun(spec: BuildSpec, options: PartitionRunOptions, ports: StudyPorts, prepared: PreparedPartitions): Promise<PartitionSubmission> {
  const clock = ports.clock ?? systemClock;
  const planned = planPartitionRun(spec, options, prepared, clock.now());
  const { runId } = planned;
  const key = keys.partitionRun(runId);
  const existing = await ports.blobs.get(key);
  const manifest = existing ? decodePartitionRun(existing, runId, key) : planned;
  if (!existing) await ports.blobs.put(key, encode(manifest), CONTENT_TYPES.json);
  const created = await ports.ledger.create(
    newBuildRecord({ buildId: runId, total: manifest.members.length, tolerated: manifest.members.length - 1, tags: spec.tags, now: clock.now() }),
  );
  if (created) await ports.ledger.startTraining(runId);
  const submitted = await submitMembers(manifest, ports, prepared.prepareMs);
  await settleMembers(runId, memberIds(manifest), ports);
  return { runId, created, manifest, submitted };
}

const memberIds = (manifest: PartitionRunManifest) => manifest.members.map((m) => m.buildId);

/** Submits the members not in the ledger yet (each spec is the run's with the partition column dropped). */
async function submitMembers(manifest: PartitionRunManifest, ports: StudyPorts, prepareMs?: number): Promise<string[]> {
  const spec = partitionMemberSpec(manifest.spec, manifest.partitionBy);
  const submitted: string[] = [];
  for (const [member, m] of manifest.members.entries()) {
    if (await ports.ledger.summary(m.buildId)) continue;
    const pack: PackSummary = { hash: m.packHash, nRows: m.rows, target: { task: manifest.task } };
    const s = await submitBuild(spec, ports, { pack, packKey: m.packKey, ...(prepareMs !== undefined ? { prepareMs } : {}) }, { memberOf: { id: manifest.runId, member } });
    if (s.buildId !== m.buildId) throw new AggregationError(`partitioned run ${manifest.runId}: member ${member} planned as ${m.buildId} but submitted as ${s.buildId}`);
    if (s.created) submitted.push(s.buildId);
  }
  return submitted;
}

export function decodePartitionRun(bytes: Uint8Array, runId: string, key: string): PartitionRunManifest {
  let manifest: PartitionRunManifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(bytes)) as PartitionRunManifest;
  } catch {
    throw new TaskError(`${key} is not JSON`);
  }
  if (manifest?.v !== 1 || manifest.runId !== runId || !Array.isArray(manifest.members)) throw new TaskError(`${key} is not a v1 manifest of partitioned run ${runId}`);
  return manifest;
}

export async function readPartitionRun(blobs: BlobStore, runId: string): Promise<PartitionRunManifest> {
  const key = keys.partitionRun(runId);
  const bytes = await blobs.get(key);
  if (!bytes) throw new TaskError(`${key} not found`);
  return decodePartitionRun(bytes, runId, key);
}

/** Lands the finished members that have not landed (the sweeper, resume, and a member shared with another run). */
export async function settlePartitionedRun(runId: string, ports: { blobs: BlobStore; ledger: BuildLedger; clock?: Clock }): Promise<number> {
  const summary = await ports.ledger.summary(runId);
  if (!summary || summary.status !== "TRAINING" || summary.remaining === 0) return 0;
  return settleMembers(runId, memberIds(await readPartitionRun(ports.blobs, runId)), ports);
}

export interface PartitionResumption {
  runId: string;
  status: BuildSummary["status"];
  submitted: string[];
  resumed: string[];
  settled: number;
  redriven: boolean;
}

/**
 * Picks an unfinished run up: submits the members a crash left unsubmitted (their packs are stored), resumes each
 * unfinished member build, lands finished ones, and asks for the run's aggregation again when every member is in.
 */
export async function resumePartitionedRun(runId: string, ports: StudyPorts, options: { aggregationLeaseMs?: number } = {}): Promise<PartitionResumption> {
  const summary = await ports.ledger.summary(runId);
  if (!summary) throw new TaskError(`partitioned run ${runId} not found`);
  const manifest = await readPartitionRun(ports.blobs, runId);
  if (summary.status === "PENDING") await ports.ledger.startTraining(runId);
  const out: PartitionResumption = { runId, status: summary.status, submitted: [], resumed: [], settled: 0, redriven: false };
  if (summary.status === "COMPLETED" || summary.status === "FAILED") return out;
  if (summary.status !== "AGGREGATING") {
    out.submitted = await submitMembers(manifest, ports);
    out.resumed = await resumeMembers(memberIds(manifest), ports, options);
    out.settled = await settleMembers(runId, memberIds(manifest), ports);
  }
  out.redriven = await redriveFanIn(runId, ports, options);
  out.status = (await ports.ledger.summary(runId))!.status;
  return out;
}

export interface PartitionAggregatePorts {
  blobs: BlobStore;
  ledger: BuildLedger;
  notifier: Notifier;
  clock?: Clock;
  /** Renders the run's report.html (see @canopy/report); stored beside report.json when given. */
  renderReport?: (report: PartitionReport) => string;
}

export type PartitionAggregateOutcome =
  | { outcome: "not-claimed"; runId: string }
  | ({ outcome: "completed"; runId: string; report: PartitionReport; model: PartitionedModel } & StoredPage)
  | { outcome: "failed"; runId: string; reason: string };

/**
 * The run's aggregator, once every member is in (safe on every trigger: only the claim winner proceeds): reads each
 * member's report (checked against the digest it landed with) and model (its SHA-256 and size for the manifest),
 * writes partitions/<p-id>/model.json (the partitioned model), report.json (and its page, report.html, when given a
 * renderer: a page that fails is not written and does not fail the run), completes and publishes one notification.
 *
 * A partition whose build failed is listed in `skipped` with its reason and served as an unknown value is (the
 * fallback, or a per-row error): the others' models are good and the failure is named in the report and the
 * notification's counts. The run fails when no partition has a model, or when the fallback asked for failed (rows
 * the user expected it to serve would be refused instead).
 */
export async function aggregatePartitionedRun(runId: string, ports: PartitionAggregatePorts): Promise<PartitionAggregateOutcome> {
  const clock = ports.clock ?? systemClock;
  if (!(await ports.ledger.claimAggregation(runId))) return { outcome: "not-claimed", runId };
  let report: PartitionReport;
  let model: PartitionedModel;
  let page: StoredPage;
  try {
    const started = clock.now();
    const record = await ports.ledger.get(runId);
    if (!record) throw new AggregationError(`partitioned run ${runId} vanished from the ledger`);
    const manifest = await readPartitionRun(ports.blobs, runId);
    const failed = new Map(record.failed.map((f) => [f.grove, f.error]));
    const outcomes: PartitionOutcome[] = [];
    const skipped = [...manifest.skipped];
    const partitions: PartitionedModel["partitions"] = {};
    let fallback: PartitionedModel["fallback"];
    let buildsUsd = 0;
    let billedGbS = 0;
    for (const [member, m] of manifest.members.entries()) {
      const who = m.fallback ? { fallback: true as const } : { key: m.key!, value: m.value! };
      const error = failed.get(member);
      if (error !== undefined) {
        if (m.fallback) throw new AggregationError(`the fallback model (build ${m.buildId}) failed: ${error}`);
        outcomes.push({ ...who, buildId: m.buildId, rows: m.rows, status: "FAILED", error });
        skipped.push({ value: m.value!, rows: m.rows, reason: `its build failed: ${error}` });
        continue;
      }
      const stats = record.groveStats[member];
      if (!stats) throw new AggregationError(`member ${member} (build ${m.buildId}) has not landed`);
      const reportKey = keys.report(m.buildId);
      const bytes = await ports.blobs.get(reportKey);
      if (!bytes) throw new AggregationError(`member ${member} landed but ${reportKey} is missing`);
      if (sha256Hex(bytes) !== stats.digest) throw new AggregationError(`member ${member}: ${reportKey} is not the report that landed`);
      const r = JSON.parse(new TextDecoder().decode(bytes)) as BuildReport;
      const modelBytes = await ports.blobs.get(r.model.key);
      if (!modelBytes) throw new AggregationError(`member ${member} landed but ${r.model.key} is missing`);
      const ref = { build: m.buildId, sha256: sha256Hex(modelBytes), bytes: modelBytes.length, rows: m.rows };
      if (m.fallback) fallback = ref;
      else partitions[m.key!] = { ...ref, value: m.value! };
      const scalars = r.metrics ? Object.fromEntries(Object.entries(r.metrics).filter(([, v]) => typeof v === "number" || typeof v === "string")) : null;
      outcomes.push({
        ...who,
        buildId: m.buildId,
        rows: m.rows,
        status: "COMPLETED",
        metrics: scalars as PartitionOutcome["metrics"],
        trainRows: r.dataset.trainRows,
        testRows: r.dataset.testRows,
        trees: r.model.trees,
        modelBytes: modelBytes.length,
        usd: r.cost.usd.total,
      });
      buildsUsd += r.cost.usd.total;
      billedGbS += r.cost.totals.billedGbS;
    }
    const completed = outcomes.filter((o) => o.status === "COMPLETED" && !o.fallback);
    if (completed.length === 0) throw new AggregationError("no partition has a model: every partition's build failed");
    const modelKey = keys.partitionedModel(runId);
    model = {
      format: PARTITIONED_MODEL_FORMAT,
      version: PARTITIONED_MODEL_VERSION,
      runId,
      partitionBy: manifest.partitionBy,
      features: manifest.features,
      task: manifest.task,
      partitions,
      ...(fallback ? { fallback } : {}),
      skipped,
    };
    const modelJson = `${JSON.stringify(model, null, 2)}\n`;
    parsePartitionedModel(modelJson, modelKey); // the contract, checked before anything reads it
    await ports.blobs.put(modelKey, new TextEncoder().encode(modelJson), CONTENT_TYPES.json);
    const completedAt = clock.now();
    const partitionsFailed = outcomes.filter((o) => o.status === "FAILED").length;
    report = {
      v: 1,
      kind: "partitions",
      runId,
      status: "COMPLETED",
      partitionBy: manifest.partitionBy,
      spec: manifest.spec,
      task: manifest.task,
      minPartitionRows: manifest.minPartitionRows,
      ...(manifest.fallback ? { fallback: manifest.fallback } : {}),
      partitions: outcomes,
      skipped,
      counts: {
        partitions: manifest.members.filter((m) => !m.fallback).length + manifest.skipped.length,
        completed: completed.length,
        failed: partitionsFailed,
        skipped: manifest.skipped.length,
        rows: manifest.rows,
        unkeyed: manifest.unkeyed,
      },
      metrics: weightedMetrics(completed),
      modelKey,
      cost: { buildsUsd, billedGbS, aggregateMs: completedAt - started, usd: buildsUsd },
      tags: record.tags,
      createdAt: record.createdAt,
      completedAt,
    };
    const reportKey = keys.partitionReport(runId);
    page = await storeReportWithPage(ports.blobs, report, { json: reportKey, html: keys.partitionReportHtml(runId) }, ports.renderReport);
    const metrics = { ...report.metrics, partitions: completed.length, failed: partitionsFailed, skipped: manifest.skipped.length };
    if (!(await ports.ledger.complete(runId, { modelKey, reportKey, metrics }))) throw new AggregationError("the run left AGGREGATING while it was being aggregated");
  } catch (err) {
    const reason = `partitioned run aggregation failed: ${errorLine(err)}`;
    if (await ports.ledger.fail(runId, reason)) {
      const summary = await ports.ledger.summary(runId);
      if (summary) await ports.notifier.publish(partitionsFailedNotification(summary, reason));
    }
    return { outcome: "failed", runId, reason };
  }
  await ports.notifier.publish(partitionsCompletedNotification(report));
  return { outcome: "completed", runId, report, model, ...page };
}

/** What `canopy status <p-id>` shows: the run's counter, its members' groves settled, and its report once done. */
export interface PartitionView {
  summary: BuildSummary;
  builds: { total: number; done: number; failed: number };
  groves: { total: number; settled: number };
  report?: PartitionReport;
  reportKey?: string;
  modelKey?: string;
  /** report.html, when it was written. */
  pageKey?: string;
}

/** Reads a run's view (one counter read per member for the groves); undefined for an unknown run. */
export async function readPartitionView(ports: { blobs: BlobStore; ledger: BuildLedger }, runId: string): Promise<PartitionView | undefined> {
  const summary = await ports.ledger.summary(runId);
  if (!summary) return undefined;
  const manifest = await readPartitionRun(ports.blobs, runId);
  let settled = 0;
  for (const m of manifest.members) {
    const s = await ports.ledger.summary(m.buildId);
    if (s) settled += s.landedCount + s.failedCount;
  }
  const view: PartitionView = {
    summary,
    builds: { total: summary.total, done: summary.landedCount + summary.failedCount, failed: summary.failedCount },
    groves: { total: manifest.groves, settled },
  };
  if (summary.status === "COMPLETED" && summary.result) {
    const bytes = await ports.blobs.get(keys.partitionReport(runId));
    if (bytes) view.report = JSON.parse(new TextDecoder().decode(bytes)) as PartitionReport;
    view.reportKey = keys.partitionReport(runId);
    view.modelKey = keys.partitionedModel(runId);
    if (await ports.blobs.exists(keys.partitionReportHtml(runId))) view.pageKey = keys.partitionReportHtml(runId);
  }
  return view;
}
