import { AggregationError, errorLine, TaskError } from "./errors.ts";
import { sha256Hex } from "./digest.ts";
import { CONTENT_TYPES, keys, reportKeysOf } from "./keys.ts";
import { newBuildRecord, type BuildRecord, type BuildSummary } from "./ledger.ts";
import { buildIdFor, planGroves, type PackSummary } from "./plan.ts";
import { systemClock, type BlobStore, type BuildLedger, type Clock, type Notifier, type TaskQueue } from "./ports.ts";
import type { BuildReport } from "./report.ts";
import { startBuild, submitBuild, type ClaimLease } from "./submit.ts";
import type { BuildManifest } from "./manifest.ts";
import { PackCache } from "./pack-cache.ts";
import { redriveFanIn, resumeMembers, settleMembers, studyHead, type StudyPorts } from "./study.ts";
import type { Params, StudySpec } from "./study-spec.ts";
import {
  checkPartitionRun,
  partitionMemberSpec,
  partitionRunIdFor,
  runMemberSpec,
  type PartitionMember,
  type PartitionRunManifest,
  type PartitionRunOptions,
  type PreparedPartitions,
} from "./partition-plan.ts";
export type { PreparedPartition, PreparedPartitions } from "./partition-plan.ts";
import { decodePartitionTuning, finalPicks, planPartitionTuning, rankPartitionTuning, type PartitionTuningMode, type PartitionTuningReport } from "./partition-tuning.ts";
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

export interface PartitionSubmission {
  runId: string;
  created: boolean;
  manifest: PartitionRunManifest;
  /** Member builds this call created (queued their groves). */
  submitted: string[];
}

const encode = (value: unknown) => new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);

/**
 * The run's plan: its members and id, checked against the limits, nothing written. `stage`: a tuned run's final stage,
 * each prepared partition's build with its parameters (`params[i]`, aligned with prepared.partitions).
 */
export function planPartitionRun(
  spec: BuildSpec,
  options: PartitionRunOptions,
  prepared: PreparedPartitions,
  now: number,
  stage?: { final: NonNullable<PartitionRunManifest["final"]>; params: Params[] },
): PartitionRunManifest {
  const memberSpec = partitionMemberSpec(spec, options.partitionBy);
  checkPartitionRun(memberSpec, prepared.partitions.length);
  const groves = planGroves(memberSpec.n_estimators, memberSpec.grove_size).length;
  const head = { spec, partitionBy: options.partitionBy, ...(stage ? { final: stage.final } : {}) };
  const members: PartitionMember[] = prepared.partitions.map((p, i) => {
    const params = stage ? { params: stage.params[i] } : {};
    return {
      ...(p.fallback ? { fallback: true as const } : { key: p.key!, value: p.value! }),
      buildId: buildIdFor(p.pack.hash, runMemberSpec(head, params)),
      rows: p.rows,
      groves,
      packKey: p.packKey,
      packHash: p.pack.hash,
      ...params,
    };
  });
  const base = {
    partitionBy: options.partitionBy,
    minPartitionRows: options.minPartitionRows,
    ...(options.fallback ? { fallback: options.fallback } : {}),
    members,
    skipped: prepared.skipped,
    ...(stage ? { final: stage.final } : {}),
  };
  return {
    v: stage ? 2 : 1,
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
  return submitPlanned(planPartitionRun(spec, options, prepared, clock.now()), ports, prepared.prepareMs);
}

/**
 * `tune --partition-by`: starts the tuning stage over prepared packs (partition-tuning.ts): its manifest, its record,
 * then every partition's candidate x fold builds, all on the one queue. Once ranked, its aggregator starts the final
 * stage; the run's model and report are written under this record's id.
 */
export async function submitPartitionTuning(
  study: StudySpec,
  options: PartitionRunOptions,
  mode: PartitionTuningMode,
  ports: StudyPorts,
  prepared: PreparedPartitions,
): Promise<PartitionSubmission> {
  const clock = ports.clock ?? systemClock;
  return submitPlanned(planPartitionTuning(study, options, mode, prepared, clock.now()), ports, prepared.prepareMs);
}

async function submitPlanned(planned: PartitionRunManifest, ports: StudyPorts, prepareMs?: number): Promise<PartitionSubmission> {
  const { manifest, created } = await openRun(planned, ports);
  const submitted = await submitMembers(manifest, ports, prepareMs);
  await settleMembers(manifest.runId, memberIds(manifest), ports);
  return { runId: manifest.runId, created, manifest, submitted };
}

/** The run's manifest (the stored one if any) and its record, TRAINING before any member can land; `extra` entries beyond the members. */
async function openRun(planned: PartitionRunManifest, ports: StudyPorts, extra = 0): Promise<{ manifest: PartitionRunManifest; created: boolean }> {
  const clock = ports.clock ?? systemClock;
  const { runId } = planned;
  const key = keys.partitionRun(runId);
  const existing = await ports.blobs.get(key);
  const manifest = existing ? decodePartitionRun(existing, runId, key) : planned;
  if (!existing) await ports.blobs.put(key, encode(manifest), CONTENT_TYPES.json);
  const total = manifest.members.length + extra;
  const created = await ports.ledger.create(newBuildRecord({ buildId: runId, total, tolerated: total - 1, tags: manifest.spec.tags, now: clock.now() }));
  if (created) await ports.ledger.startTraining(runId);
  return { manifest, created };
}

const memberIds = (manifest: PartitionRunManifest) => manifest.members.map((m) => m.buildId);

/** Submits the members not in the ledger yet (each spec is runMemberSpec's: the run's with the partition column dropped). */
async function submitMembers(manifest: PartitionRunManifest, ports: StudyPorts, prepareMs?: number): Promise<string[]> {
  const submitted: string[] = [];
  // A fold's build is planned on its pack's labels (a stratified split): read back once per partition (members of a
  // partition are contiguous), never more than one pack held.
  const packs = new PackCache(1);
  for (const [member, m] of manifest.members.entries()) {
    if (await ports.ledger.summary(m.buildId)) continue;
    const spec = runMemberSpec(manifest, m);
    const pack: PackSummary = spec.cv ? (await packs.load(m.packHash, m.packKey, ports.blobs)).pack : { hash: m.packHash, nRows: m.rows, target: { task: manifest.task } };
    const s = await submitBuild(spec, ports, { pack, packKey: m.packKey, ...(prepareMs !== undefined ? { prepareMs } : {}) }, { memberOf: { id: manifest.runId, member } });
    if (s.buildId !== m.buildId) throw new AggregationError(`partitioned run ${manifest.runId}: member ${member} planned as ${m.buildId} but submitted as ${s.buildId}`);
    if (s.created) submitted.push(s.buildId);
  }
  return submitted;
}

/**
 * Starts the member builds of a run (a partitioned run, a tuned run's tuning or final stage) that a crash left
 * unsubmitted, from the run's manifest alone: their build manifests are made from it (no pack read, no grove written,
 * each id checked against the one planned), as a study's are. What the sweeper does for a run that stalls.
 */
export async function submitMissingPartitionMembers(runId: string, ports: StudyPorts): Promise<string[]> {
  const manifest = await readPartitionRun(ports.blobs, runId);
  const started: string[] = [];
  for (const [member, m] of manifest.members.entries()) {
    if (await ports.ledger.summary(m.buildId)) continue;
    const spec = runMemberSpec(manifest, m);
    const planned = buildIdFor(m.packHash, spec);
    if (planned !== m.buildId) throw new AggregationError(`partitioned run ${runId}: member ${member} was planned as ${m.buildId} but its spec gives ${planned}`);
    const build: BuildManifest = { v: 1, buildId: m.buildId, spec, packKey: m.packKey, packHash: m.packHash, groves: planGroves(spec.n_estimators, spec.grove_size) };
    if ((await startBuild(build, ports, { memberOf: { id: runId, member } })).created) started.push(m.buildId);
  }
  return started;
}

export function decodePartitionRun(bytes: Uint8Array, runId: string, key: string): PartitionRunManifest {
  let manifest: PartitionRunManifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(bytes)) as PartitionRunManifest;
  } catch {
    throw new TaskError(`${key} is not JSON`);
  }
  const staged = manifest?.tuning !== undefined || manifest?.final !== undefined;
  if (manifest?.v !== (staged ? 2 : 1) || manifest.runId !== runId || !Array.isArray(manifest.members))
    throw new TaskError(`${key} is not a v1 or v2 manifest of partitioned run ${runId}`);
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
export async function resumePartitionedRun(runId: string, ports: StudyPorts, options: ClaimLease = {}): Promise<PartitionResumption> {
  // A tuned run that ranked is at its final stage: resume that one.
  const head = await studyHead(ports.ledger, runId);
  if (head && head.id !== runId) return { ...(await resumePartitionedRun(head.id, ports, options)), runId };
  const summary = await ports.ledger.summary(runId);
  if (!summary) throw new TaskError(`partitioned run ${runId} not found`);
  const manifest = await readPartitionRun(ports.blobs, runId);
  if (summary.status === "PENDING") await ports.ledger.startTraining(runId);
  const out: PartitionResumption = { runId, status: summary.status, submitted: [], resumed: [], settled: 0, redriven: false };
  if (summary.status === "COMPLETED" || summary.status === "FAILED") return out;
  if (summary.status !== "AGGREGATING") {
    out.submitted = await submitMembers(manifest, ports);
    // Not the builds just submitted: their groves are queued, and their aggregation, once their trainers finish, is
    // this process's own, which a lease of 0 would take for a dead one and claim again.
    out.resumed = await resumeMembers(memberIds(manifest).filter((id) => !out.submitted.includes(id)), ports, options);
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
  /** A tuned run's final stage: its final builds are queued here. */
  queue?: TaskQueue;
  clock?: Clock;
  /** Renders the run's report.html (see @canopy/report); stored beside report.json when given. */
  renderReport?: (report: PartitionReport) => string;
}

export type PartitionAggregateOutcome =
  | { outcome: "not-claimed"; runId: string }
  /** A tuned run ranked: it completes when its final stage `next` (one final build per partition) does. */
  | { outcome: "ranked"; runId: string; next: string }
  /** `model` absent: a tuned run with --no-refit (rankings only). */
  | ({ outcome: "completed"; runId: string; report: PartitionReport; model?: PartitionedModel } & StoredPage)
  | { outcome: "failed"; runId: string; reason: string };

/**
 * The run's aggregator, once every member is in (safe on every trigger: only the claim winner proceeds). A run (or a
 * tuned run's final stage) writes partitions/<p-id>/model.json (the partitioned model; assembleRun), report.json (and
 * its page, report.html, when given a renderer: a page that fails is not written and does not fail the run),
 * completes and publishes one notification. A tuning stage ranks each partition (partition-tuning.ts) and starts its
 * final stage, publishing nothing (with --no-refit it ends at the rankings, and notifies).
 */
export async function aggregatePartitionedRun(runId: string, ports: PartitionAggregatePorts): Promise<PartitionAggregateOutcome> {
  const clock = ports.clock ?? systemClock;
  if (!(await ports.ledger.claimAggregation(runId))) return { outcome: "not-claimed", runId };
  let report: PartitionReport;
  let model: PartitionedModel | undefined;
  let page: StoredPage = {};
  let root = runId;
  let claim: number | undefined;
  try {
    const started = clock.now();
    const record = await ports.ledger.get(runId);
    if (!record) throw new AggregationError(`partitioned run ${runId} vanished from the ledger`);
    claim = record.claims;
    const manifest = await readPartitionRun(ports.blobs, runId);
    root = manifest.final?.root ?? runId;
    if (manifest.tuning) {
      const ranking = await rankPartitionTuning(manifest, record, ports.blobs);
      if (ranking.partitions.every((p) => !Number.isFinite(p.best_score_))) throw new AggregationError("every candidate failed or scored NaN in every partition: there is no best candidate");
      if (manifest.tuning.study.refit) {
        // The run completes with its final stage, which notifies; this record only says where it went.
        const stage = await startTunedFinalStage(manifest, ranking, ports);
        if (!(await ports.ledger.complete(runId, { reportKey: stage.rankedKey, metrics: { next_round: stage.id } })))
          throw new AggregationError("the run left AGGREGATING while it was being ranked");
        return { outcome: "ranked", runId, next: stage.id };
      }
      report = rankingReport(manifest, ranking, record, started, clock.now());
    } else {
      const ranking = manifest.final ? await landedRanking(manifest, record, ports.blobs) : undefined;
      ({ report, model } = await assembleRun(root, manifest, record, ports.blobs, ranking));
      report.cost.aggregateMs = clock.now() - started;
      report.completedAt = clock.now();
    }
    const stored = reportKeysOf(root);
    const reportKey = stored.json;
    page = await storeReportWithPage(ports.blobs, report, stored, ports.renderReport);
    const metrics = { ...report.metrics, partitions: report.counts.completed, failed: report.counts.failed, skipped: report.counts.skipped };
    if (!(await ports.ledger.complete(runId, { ...(report.modelKey ? { modelKey: report.modelKey } : {}), reportKey, metrics })))
      throw new AggregationError("the run left AGGREGATING while it was being aggregated");
  } catch (err) {
    const reason = `partitioned run aggregation failed: ${errorLine(err)}`;
    if (await ports.ledger.fail(runId, reason, { claim })) {
      const summary = await ports.ledger.summary(runId);
      // A final stage fails as the run the user started.
      if (summary) await ports.notifier.publish(partitionsFailedNotification({ ...summary, buildId: root }, reason));
      return { outcome: "failed", runId, reason };
    }
    // Not this aggregation's record any more (reopened as dead, claimed again, or finished): the live one goes on.
    return { outcome: "not-claimed", runId };
  }
  await ports.notifier.publish(partitionsCompletedNotification(report));
  return { outcome: "completed", runId: root, report, ...(model ? { model } : {}), ...page };
}

/**
 * The partitioned model and report of a run whose members are all in, written under `root` (the run's own id, or a
 * final stage's tuning record): each member's report (checked against the digest it landed with) and model (its
 * SHA-256 and size for the manifest).
 *
 * A partition whose build failed is listed in `skipped` with its reason and served as an unknown value is (the
 * fallback, or a per-row error): the others' models are good and the failure is named in the report and the
 * notification's counts. The run fails when no partition has a model, or when the fallback asked for failed (rows
 * the user expected it to serve would be refused instead).
 */
async function assembleRun(
  root: string,
  manifest: PartitionRunManifest,
  record: BuildRecord,
  blobs: BlobStore,
  ranking: PartitionTuningReport | undefined,
): Promise<{ report: PartitionReport; model: PartitionedModel }> {
  const failed = new Map(record.failed.map((f) => [f.grove, f.error]));
  const outcomes: PartitionOutcome[] = [];
  const skipped = [...manifest.skipped];
  const partitions: PartitionedModel["partitions"] = {};
  let fallback: PartitionedModel["fallback"];
  let buildsUsd = 0;
  let billedGbS = 0;
  // Out of bag a partition's final build is its pick's own tuning build, counted by the ranking already.
  const counted = new Set(ranking?.partitions.flatMap((p) => p.candidates.flatMap((c) => c.buildIds)) ?? []);
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
    const bytes = await blobs.get(reportKey);
    if (!bytes) throw new AggregationError(`member ${member} landed but ${reportKey} is missing`);
    if (sha256Hex(bytes) !== stats.digest) throw new AggregationError(`member ${member}: ${reportKey} is not the report that landed`);
    const r = JSON.parse(new TextDecoder().decode(bytes)) as BuildReport;
    const modelBytes = await blobs.get(r.model.key);
    if (!modelBytes) throw new AggregationError(`member ${member} landed but ${r.model.key} is missing`);
    const ref = { build: m.buildId, sha256: sha256Hex(modelBytes), bytes: modelBytes.length, rows: m.rows };
    if (m.fallback) fallback = ref;
    else partitions[m.key!] = { ...ref, value: m.value! };
    const scalars = r.metrics ? Object.fromEntries(Object.entries(r.metrics).filter(([, v]) => typeof v === "number" || typeof v === "string")) : null;
    const usd = counted.has(m.buildId) ? 0 : r.cost.usd.total;
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
      usd,
      ...(m.params ? { params: m.params } : {}),
    });
    buildsUsd += usd;
    if (!counted.has(m.buildId)) billedGbS += r.cost.totals.billedGbS;
  }
  const completed = outcomes.filter((o) => o.status === "COMPLETED" && !o.fallback);
  if (completed.length === 0) throw new AggregationError("no partition has a model: every partition's build failed");
  const modelKey = keys.partitionedModel(root);
  const model: PartitionedModel = {
    format: PARTITIONED_MODEL_FORMAT,
    version: PARTITIONED_MODEL_VERSION,
    runId: root,
    partitionBy: manifest.partitionBy,
    features: manifest.features,
    task: manifest.task,
    partitions,
    ...(fallback ? { fallback } : {}),
    skipped,
  };
  const modelJson = `${JSON.stringify(model, null, 2)}\n`;
  parsePartitionedModel(modelJson, modelKey); // the contract, checked before anything reads it
  await blobs.put(modelKey, new TextEncoder().encode(modelJson), CONTENT_TYPES.json);
  if (ranking) {
    buildsUsd += ranking.cost.buildsUsd;
    billedGbS += ranking.cost.billedGbS;
  }
  const tuningRecord = ranking ? await blobs.get(keys.partitionRun(root)) : undefined;
  const createdAt = tuningRecord ? decodePartitionRun(tuningRecord, root, keys.partitionRun(root)).createdAt : record.createdAt;
  const report: PartitionReport = {
    ...reportHead(root, manifest),
    partitions: outcomes,
    skipped,
    counts: {
      partitions: manifest.members.filter((m) => !m.fallback).length + manifest.skipped.length,
      completed: completed.length,
      failed: outcomes.filter((o) => o.status === "FAILED").length,
      skipped: manifest.skipped.length,
      rows: manifest.rows,
      unkeyed: manifest.unkeyed,
    },
    metrics: weightedMetrics(completed),
    modelKey,
    cost: { buildsUsd, billedGbS, aggregateMs: 0, usd: buildsUsd },
    ...(ranking ? { tuning: ranking } : {}),
    tags: record.tags,
    createdAt,
    completedAt: 0,
  };
  return { report, model };
}

/** What every run's report starts with: the run (under the id the user sees) and its options. */
function reportHead(runId: string, manifest: PartitionRunManifest) {
  return {
    v: 1 as const,
    kind: "partitions" as const,
    runId,
    status: "COMPLETED" as const,
    partitionBy: manifest.partitionBy,
    spec: manifest.spec,
    task: manifest.task,
    minPartitionRows: manifest.minPartitionRows,
    ...(manifest.fallback ? { fallback: manifest.fallback } : {}),
  };
}

/** `--no-refit`: the run ends at its rankings (each partition's candidates table and best_*), no model. */
function rankingReport(manifest: PartitionRunManifest, ranking: PartitionTuningReport, record: BuildRecord, started: number, completedAt: number): PartitionReport {
  const unranked = ranking.partitions.filter((p) => !Number.isFinite(p.best_score_)).map((p) => ({ value: p.value, rows: p.rows, reason: "every candidate failed or scored NaN" }));
  const skipped = [...manifest.skipped, ...unranked];
  const partitions = ranking.partitions.length + manifest.skipped.length;
  return {
    ...reportHead(manifest.runId, manifest),
    partitions: [],
    skipped,
    counts: { partitions, completed: 0, failed: unranked.length, skipped: manifest.skipped.length, rows: manifest.rows, unkeyed: manifest.unkeyed },
    metrics: {},
    cost: { ...ranking.cost, aggregateMs: completedAt - started, usd: ranking.cost.buildsUsd },
    tuning: ranking,
    tags: record.tags,
    createdAt: record.createdAt,
    completedAt,
  };
}

/** A final stage's ranking, checked against the digest that landed with the stage (its last entry). */
async function landedRanking(manifest: PartitionRunManifest, record: BuildRecord, blobs: BlobStore): Promise<PartitionTuningReport> {
  const { rankedKey } = manifest.final!;
  const bytes = await blobs.get(rankedKey);
  if (!bytes) throw new AggregationError(`the ranking ${rankedKey} is missing`);
  if (sha256Hex(bytes) !== record.groveStats[manifest.members.length]?.digest) throw new AggregationError(`${rankedKey} is not the ranking that landed`);
  return decodePartitionTuning(bytes);
}

/**
 * A tuned run's final stage: the ranking stored (a redriven ranking keeps the one that landed), the stage's manifest
 * (one final build per partition with its pick, finalSpec; the fallback's) and record (one entry more: the ranking,
 * landed at once), then the final builds, content-addressed (one that exists, out of bag the pick's own build or one
 * `canopy train` made, lands when finished). Idempotent: a redriven ranking finds all of it.
 */
async function startTunedFinalStage(tuning: PartitionRunManifest, ranking: PartitionTuningReport, ports: PartitionAggregatePorts): Promise<{ id: string; rankedKey: string }> {
  if (!ports.queue) throw new AggregationError("a tuned partitioned run's final builds need the grove queue");
  const clock = ports.clock ?? systemClock;
  const plan = tuning.tuning!;
  const rankedKey = keys.partitionTuning(tuning.runId);
  const picks = finalPicks(plan, ranking);
  const chosen = plan.partitions.flatMap((p, i) => (picks.params[i] ? [{ p, params: picks.params[i]! }] : []));
  const prepared: PreparedPartitions = {
    partitionBy: tuning.partitionBy,
    task: tuning.task,
    features: tuning.features,
    partitions: chosen.map(({ p }) => ({ ...p, pack: { hash: p.packHash, nRows: p.rows, target: { task: tuning.task } } })),
    skipped: [...tuning.skipped, ...picks.skipped],
    rows: tuning.rows,
    unkeyed: tuning.unkeyed,
    prepareMs: 0,
  };
  const options = { partitionBy: tuning.partitionBy, minPartitionRows: tuning.minPartitionRows, ...(tuning.fallback ? { fallback: tuning.fallback } : {}) };
  const final = { root: tuning.runId, rankedKey, ...(plan.study.oob ? { oob: true as const } : {}) };
  const planned = planPartitionRun(tuning.spec, options, prepared, clock.now(), { final, params: chosen.map((c) => c.params) });
  const stagePorts = { blobs: ports.blobs, ledger: ports.ledger, queue: ports.queue, clock };
  const n = planned.members.length;
  let rankedBytes = await ports.blobs.get(rankedKey);
  const stage = await ports.ledger.get(planned.runId);
  if (!rankedBytes || !stage?.groveStats[n]) {
    rankedBytes = encode(ranking);
    await ports.blobs.put(rankedKey, rankedBytes, CONTENT_TYPES.json);
  }
  const { manifest } = await openRun(planned, stagePorts, 1);
  const now = clock.now();
  const at = { queuedAt: now, startedAt: now, loadedAt: now, trainedAt: now, storedAt: now, landedAt: now };
  await ports.ledger.landGrove(planned.runId, n, { trees: 0, nodes: 0, bytes: rankedBytes.length, digest: sha256Hex(rankedBytes), ...at, packCached: false });
  await submitMembers(manifest, stagePorts);
  await settleMembers(manifest.runId, memberIds(manifest), stagePorts);
  return { id: planned.runId, rankedKey };
}

/** What `canopy status <p-id>` shows: the run's counter, its members' groves settled, and its report once done. */
export interface PartitionView {
  /** The run's record; a tuned run's status is its final stage's once ranked. */
  summary: BuildSummary;
  builds: { total: number; done: number; failed: number };
  groves: { total: number; settled: number };
  /** A tuned run: its mode (its builds and groves above are the tuning stage's). */
  tuning?: PartitionTuningMode;
  /** A tuned run, ranked: its final stage (one final build per partition). */
  final?: { runId: string; builds: { total: number; done: number; failed: number }; groves: { total: number; settled: number } };
  report?: PartitionReport;
  reportKey?: string;
  modelKey?: string;
  /** report.html, when it was written. */
  pageKey?: string;
}

/** Groves settled over a run's member builds (one counter read each). */
async function grovesSettled(ledger: BuildLedger, manifest: PartitionRunManifest): Promise<{ total: number; settled: number }> {
  let settled = 0;
  for (const m of manifest.members) {
    const s = await ledger.summary(m.buildId);
    if (s) settled += s.landedCount + s.failedCount;
  }
  return { total: manifest.groves, settled };
}

/** Reads a run's view (one counter read per member for the groves); undefined for an unknown run. */
export async function readPartitionView(ports: { blobs: BlobStore; ledger: BuildLedger }, runId: string): Promise<PartitionView | undefined> {
  const head = await studyHead(ports.ledger, runId);
  if (!head) return undefined;
  const own = head.id === runId ? head.summary : await ports.ledger.summary(runId);
  if (!own) return undefined;
  const summary = head.id === runId ? own : { ...own, status: head.summary.status, ...(head.summary.reason !== undefined ? { reason: head.summary.reason } : {}) };
  const manifest = await readPartitionRun(ports.blobs, runId);
  const view: PartitionView = {
    summary,
    builds: { total: own.total, done: own.landedCount + own.failedCount, failed: own.failedCount },
    groves: await grovesSettled(ports.ledger, manifest),
    ...(manifest.tuning ? { tuning: manifest.tuning.mode } : {}),
  };
  if (head.id !== runId) {
    const stage = await readPartitionRun(ports.blobs, head.id);
    // The stage's record counts the ranking too (its last entry, landed as it started).
    const s = head.summary;
    view.final = { runId: head.id, builds: { total: stage.members.length, done: s.landedCount + s.failedCount - 1, failed: s.failedCount }, groves: await grovesSettled(ports.ledger, stage) };
  }
  if (head.summary.status === "COMPLETED" && head.summary.result) {
    const stored = reportKeysOf(runId);
    const bytes = await ports.blobs.get(stored.json);
    if (bytes) view.report = JSON.parse(new TextDecoder().decode(bytes)) as PartitionReport;
    view.reportKey = stored.json;
    if (!manifest.tuning || manifest.tuning.study.refit) view.modelKey = keys.partitionedModel(runId);
    if (await ports.blobs.exists(stored.html)) view.pageKey = stored.html;
  }
  return view;
}
