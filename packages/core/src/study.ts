import { AggregationError, errorLine, TaskError } from "./errors.ts";
import { sha256Hex } from "./digest.ts";
import { CONTENT_TYPES, keys } from "./keys.ts";
import { newBuildRecord, type BuildSummary, type GroveStats, type SettledGrove } from "./ledger.ts";
import { PackCache } from "./pack-cache.ts";
import { systemClock, type BlobStore, type BuildLedger, type Clock, type Notifier, type TaskQueue } from "./ports.ts";
import type { BuildReport } from "./report.ts";
import { resumeBuild, submitBuild, type PreparedDataset } from "./submit.ts";
import { candidateSpec, parseStudySpec, planStudy, scoreOf, type StudyManifest, type StudySpec } from "./study-spec.ts";
import { studyCompletedNotification, studyFailedNotification, type StudyReport, type StudyCandidate } from "./study-report.ts";

/**
 * A study is a fan-in one level up: a ledger record (`s-…`) whose members are builds, counted with the same rules
 * as a build's groves (ledgerRules): a member lands once, `remaining` reaches 0 exactly once, one claim wins the
 * study's aggregation. A member build names its study (`memberOf`); when it finishes, its outcome lands there
 * (`settleMember`), so the same change feed that triggers a build's aggregator triggers the study's.
 */
export interface StudyPorts {
  blobs: BlobStore;
  ledger: BuildLedger;
  queue: TaskQueue;
  clock?: Clock;
}

export interface StudySubmission {
  studyId: string;
  created: boolean;
  manifest: StudyManifest;
  /** Member builds this call created (queued their groves). */
  submitted: string[];
}

const encode = (value: unknown) => new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);

/**
 * Starts a study over a prepared pack: its manifest, its record (TRAINING before any member can land), then every
 * member build (an ordinary build: submitBuild), each naming the study. A member that existed already (the same
 * candidate and fold in an earlier study or train) is not trained again: it lands in the study when finished.
 */
export async function submitStudy(spec: StudySpec, ports: StudyPorts, prepared: Pick<PreparedDataset, "pack" | "packKey"> & { prepareMs?: number }): Promise<StudySubmission> {
  const clock = ports.clock ?? systemClock;
  const task = prepared.pack.target.task;
  // The scoring is checked against the task the data decided.
  const checked = parseStudySpec({ ...spec, base: spec.base }, task);
  const plan = planStudy(checked, prepared.pack);
  const { studyId } = plan;
  const manifest: StudyManifest = {
    v: 1,
    studyId,
    spec: checked,
    task,
    packKey: prepared.packKey,
    packHash: prepared.pack.hash,
    candidates: plan.candidates,
    members: plan.members,
    groves: plan.groves,
    createdAt: clock.now(),
  };
  const key = keys.study(studyId);
  const existing = await ports.blobs.get(key);
  const stored = existing ? decodeStudyManifest(existing, studyId, key) : manifest;
  if (!existing) await ports.blobs.put(key, encode(manifest), CONTENT_TYPES.json);
  const created = await ports.ledger.create(
    newBuildRecord({ buildId: studyId, total: stored.members.length, tolerated: stored.members.length - 1, tags: checked.base.tags, now: clock.now() }),
  );
  if (created) await ports.ledger.startTraining(studyId);
  const submitted = await submitMembers(stored, plan.specs, ports, prepared);
  await settleStudy(studyId, { ...ports, manifest: stored });
  return { studyId, created, manifest: stored, submitted };
}

async function submitMembers(
  manifest: StudyManifest,
  specs: StudySpec["base"][],
  ports: StudyPorts,
  prepared: Pick<PreparedDataset, "pack" | "packKey"> & { prepareMs?: number },
): Promise<string[]> {
  const submitted: string[] = [];
  for (const [member, m] of manifest.members.entries()) {
    if (await ports.ledger.summary(m.buildId)) continue;
    const s = await submitBuild(specs[member], ports, prepared, { memberOf: { id: manifest.studyId, member } });
    if (s.buildId !== m.buildId) throw new AggregationError(`study ${manifest.studyId}: member ${member} planned as ${m.buildId} but submitted as ${s.buildId}`);
    if (s.created) submitted.push(s.buildId);
  }
  return submitted;
}

export function decodeStudyManifest(bytes: Uint8Array, studyId: string, key: string): StudyManifest {
  let manifest: StudyManifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(bytes)) as StudyManifest;
  } catch {
    throw new TaskError(`${key} is not JSON`);
  }
  if (manifest?.v !== 1 || manifest.studyId !== studyId || !Array.isArray(manifest.members)) throw new TaskError(`${key} is not a v1 manifest of study ${studyId}`);
  return manifest;
}

export async function readStudyManifest(blobs: BlobStore, studyId: string): Promise<StudyManifest> {
  const key = keys.study(studyId);
  const bytes = await blobs.get(key);
  if (!bytes) throw new TaskError(`${key} not found`);
  return decodeStudyManifest(bytes, studyId, key);
}

/**
 * What lands in the study for a finished member: the model's trees, nodes and bytes from its report, and the
 * report's SHA-256 as the digest (the study's aggregator reads the report and checks it is the one that landed).
 */
export function memberStats(summary: BuildSummary, report: BuildReport, reportBytes: Uint8Array, now: number): GroveStats {
  const finished = report.completedAt;
  return {
    trees: report.model.trees,
    nodes: report.model.nodes,
    bytes: report.model.bytes,
    digest: sha256Hex(reportBytes),
    queuedAt: summary.createdAt,
    startedAt: summary.createdAt,
    loadedAt: summary.createdAt,
    trainedAt: finished - (report.timings.aggregateMs ?? 0),
    storedAt: finished,
    landedAt: now,
    packCached: false,
  };
}

/**
 * Lands a finished build in the study at `member` (COMPLETED: landed with its stats; FAILED: failed with its reason,
 * an error_score of NaN as sklearn's default). Idempotent: a second landing changes nothing. Returns whether this
 * call wrote (false while the build is unfinished).
 */
export async function landMember(studyId: string, member: number, build: BuildSummary, ports: { blobs: BlobStore; ledger: BuildLedger; clock?: Clock }): Promise<boolean> {
  const clock = ports.clock ?? systemClock;
  if (build.status === "FAILED") return (await ports.ledger.failGrove(studyId, member, `build ${build.buildId} failed: ${build.reason ?? "unknown reason"}`)).recorded;
  if (build.status !== "COMPLETED" || !build.result) return false;
  const bytes = await ports.blobs.get(build.result.reportKey);
  if (!bytes) throw new AggregationError(`build ${build.buildId} is COMPLETED but ${build.result.reportKey} is missing`);
  const report = JSON.parse(new TextDecoder().decode(bytes)) as BuildReport;
  return (await ports.ledger.landGrove(studyId, member, memberStats(build, report, bytes, clock.now()))).landed;
}

/** After a build finished: lands it in the study it names (if any). Called by the build's aggregator and failures. */
export async function settleMember(buildId: string, ports: { blobs: BlobStore; ledger: BuildLedger; clock?: Clock }): Promise<boolean> {
  const build = await ports.ledger.summary(buildId);
  if (!build?.memberOf) return false;
  return landMember(build.memberOf.id, build.memberOf.member, build, ports);
}

/**
 * Lands every finished member that has not landed yet: a study whose builds are all finished is always finished
 * (the sweeper, resume, and a submission over builds that existed call this). Returns how many it landed.
 */
export async function settleStudy(studyId: string, ports: { blobs: BlobStore; ledger: BuildLedger; clock?: Clock; manifest?: StudyManifest }): Promise<number> {
  const summary = await ports.ledger.summary(studyId);
  if (!summary || summary.status !== "TRAINING" || summary.remaining === 0) return 0;
  const manifest = ports.manifest ?? (await readStudyManifest(ports.blobs, studyId));
  const record = await ports.ledger.get(studyId);
  const settled = new Set([...(record?.landed ?? []), ...(record?.failed ?? []).map((f) => f.grove)]);
  let landed = 0;
  for (const [member, m] of manifest.members.entries()) {
    if (settled.has(member)) continue;
    const build = await ports.ledger.summary(m.buildId);
    if (build && (await landMember(studyId, member, build, ports))) landed++;
  }
  return landed;
}

export interface StudyResumption {
  studyId: string;
  status: BuildSummary["status"];
  /** Member builds submitted because a crash came before they were. */
  submitted: string[];
  /** Member builds whose groves were queued again. */
  resumed: string[];
  /** Finished members landed by this call. */
  settled: number;
  /** The study's aggregation asked for again (every member in, nothing aggregating, or a dead claim reopened). */
  redriven: boolean;
}

/**
 * Picks an unfinished study up: submits members a crash left unsubmitted, resumes each unfinished member build
 * (resumeBuild), lands finished ones, and asks for the study's aggregation again when every member is in.
 */
export async function resumeStudy(studyId: string, ports: StudyPorts & { packs?: PackCache }, options: { aggregationLeaseMs?: number } = {}): Promise<StudyResumption> {
  const clock = ports.clock ?? systemClock;
  let summary = await ports.ledger.summary(studyId);
  if (!summary) throw new TaskError(`study ${studyId} not found`);
  const manifest = await readStudyManifest(ports.blobs, studyId);
  if (summary.status === "PENDING") await ports.ledger.startTraining(studyId);
  const out: StudyResumption = { studyId, status: summary.status, submitted: [], resumed: [], settled: 0, redriven: false };
  if (summary.status === "COMPLETED" || summary.status === "FAILED") return out;
  if (summary.status !== "AGGREGATING") {
    const missing = [];
    for (const m of manifest.members) if (!(await ports.ledger.summary(m.buildId))) missing.push(m);
    if (missing.length > 0) {
      const { pack } = await (ports.packs ?? new PackCache(1)).load(manifest.packHash, manifest.packKey, ports.blobs);
      const specs = manifest.members.map((m) => candidateSpec(manifest.spec, manifest.candidates[m.candidate], { n_splits: manifest.spec.cv, fold: m.fold }));
      out.submitted = await submitMembers(manifest, specs, ports, { pack, packKey: manifest.packKey });
    }
    for (const m of manifest.members) {
      const build = await ports.ledger.summary(m.buildId);
      if (!build || build.status === "COMPLETED" || build.status === "FAILED") continue;
      const r = await resumeBuild(m.buildId, ports, options);
      if (r.requeued.length > 0 || r.redriven || (r.copied?.length ?? 0) > 0) out.resumed.push(m.buildId);
    }
    out.settled = await settleStudy(studyId, { ...ports, manifest });
  }
  summary = (await ports.ledger.summary(studyId))!;
  if (summary.status === "TRAINING" && summary.remaining === 0) out.redriven = await ports.ledger.redriveAggregation(studyId);
  else if (summary.status === "AGGREGATING" && clock.now() - (summary.claimedAt ?? summary.updatedAt) >= (options.aggregationLeaseMs ?? Number.POSITIVE_INFINITY))
    out.redriven = await ports.ledger.reopenAggregation(studyId, { claim: summary.claims ?? 0 });
  out.status = (await ports.ledger.summary(studyId))!.status;
  return out;
}

export interface StudyAggregatePorts {
  blobs: BlobStore;
  ledger: BuildLedger;
  notifier: Notifier;
  clock?: Clock;
  /** Renders report.html of the study (see @canopy/report); stored beside report.json when given. */
  renderReport?: (report: StudyReport) => string;
}

export type StudyAggregateOutcome =
  | { outcome: "not-claimed"; studyId: string }
  | { outcome: "completed"; studyId: string; report: StudyReport; reportKey: string }
  | { outcome: "failed"; studyId: string; reason: string };

/**
 * Ranks a study whose members are all in, as GridSearchCV does (scikit-learn 1.9.1, `_format_results`): per candidate
 * the mean and (population) standard deviation of its fold scores, `rank_test_score` = rankdata(-mean, "min") with
 * NaN means ranked last, `best_index_` the first rank 1. A member that failed scores NaN (error_score=nan). Safe on
 * every trigger: only the claim winner proceeds; one notification.
 */
export async function aggregateStudy(studyId: string, ports: StudyAggregatePorts): Promise<StudyAggregateOutcome> {
  const clock = ports.clock ?? systemClock;
  if (!(await ports.ledger.claimAggregation(studyId))) return { outcome: "not-claimed", studyId };
  let report: StudyReport;
  try {
    const started = clock.now();
    const record = await ports.ledger.get(studyId);
    if (!record) throw new AggregationError(`study ${studyId} vanished from the ledger`);
    const manifest = await readStudyManifest(ports.blobs, studyId);
    const entries = new Map<number, SettledGrove>();
    for (const g of record.landed) entries.set(g, { grove: g, outcome: "landed", stats: record.groveStats[g] });
    for (const f of record.failed) entries.set(f.grove, { grove: f.grove, outcome: "failed", error: f.error });
    const K = manifest.spec.cv;
    const scores: number[][] = manifest.candidates.map(() => new Array<number>(K).fill(Number.NaN));
    const perCandidate = manifest.candidates.map(() => ({ trees: 0, ms: 0, usd: 0, failed: [] as string[], builds: [] as string[] }));
    let buildsUsd = 0;
    let billedGbS = 0;
    for (const [member, m] of manifest.members.entries()) {
      const entry = entries.get(member);
      const c = perCandidate[m.candidate];
      c.builds.push(m.buildId);
      if (!entry) throw new AggregationError(`member ${member} (build ${m.buildId}) has not landed`);
      if (entry.outcome === "failed") {
        c.failed.push(entry.error);
        continue;
      }
      const key = keys.report(m.buildId);
      const bytes = await ports.blobs.get(key);
      if (!bytes) throw new AggregationError(`member ${member} landed but ${key} is missing`);
      if (sha256Hex(bytes) !== entry.stats.digest) throw new AggregationError(`member ${member}: ${key} is not the report that landed`);
      const r = JSON.parse(new TextDecoder().decode(bytes)) as BuildReport;
      scores[m.candidate][m.fold] = scoreOf(manifest.spec.scoring, r.metrics as unknown as Record<string, number>);
      c.trees += r.model.trees;
      c.ms += r.timings.totalMs;
      c.usd += r.cost.usd.total;
      buildsUsd += r.cost.usd.total;
      billedGbS += r.cost.totals.billedGbS;
    }
    const ranked = rankCandidates(scores);
    const candidates: StudyCandidate[] = manifest.candidates.map((params, i) => ({
      index: i,
      params,
      buildIds: perCandidate[i].builds,
      split_test_scores: scores[i],
      mean_test_score: ranked.mean[i],
      std_test_score: ranked.std[i],
      rank_test_score: ranked.rank[i],
      status: perCandidate[i].failed.length === 0 ? "COMPLETED" : "FAILED",
      ...(perCandidate[i].failed.length > 0 ? { error: perCandidate[i].failed[0] } : {}),
      trees: perCandidate[i].trees,
      timeMs: perCandidate[i].ms,
      usd: perCandidate[i].usd,
    }));
    const best = ranked.best;
    if (Number.isNaN(ranked.mean[best])) throw new AggregationError("every candidate failed or scored NaN: there is no best candidate");
    const completedAt = clock.now();
    report = {
      v: 1,
      kind: "study",
      studyId,
      status: "COMPLETED",
      spec: manifest.spec,
      task: manifest.task,
      scoring: manifest.spec.scoring,
      greaterIsBetter: true,
      cv: K,
      packKey: manifest.packKey,
      candidates,
      best_index_: best,
      best_params_: manifest.candidates[best],
      best_score_: ranked.mean[best],
      builds: { total: manifest.members.length, completed: record.landed.length, failed: record.failed.length },
      cost: { buildsUsd, billedGbS, aggregateMs: completedAt - started, usd: buildsUsd },
      tags: record.tags,
      createdAt: record.createdAt,
      completedAt,
    };
    const reportKey = keys.studyReport(studyId);
    await ports.blobs.put(reportKey, encode(report), CONTENT_TYPES.json);
    if (ports.renderReport) {
      try {
        await ports.blobs.put(keys.studyReportHtml(studyId), new TextEncoder().encode(ports.renderReport(report)), CONTENT_TYPES.html);
      } catch {
        // The page is a view of report.json: failing to make it must not fail the study.
      }
    }
    const metrics = { [manifest.spec.scoring]: report.best_score_, best_index: best };
    if (!(await ports.ledger.complete(studyId, { reportKey, metrics })))
      throw new AggregationError("the study left AGGREGATING while it was being ranked");
  } catch (err) {
    const reason = `study aggregation failed: ${errorLine(err)}`;
    if (await ports.ledger.fail(studyId, reason)) {
      const summary = await ports.ledger.summary(studyId);
      if (summary) await ports.notifier.publish(studyFailedNotification(summary, reason));
    }
    return { outcome: "failed", studyId, reason };
  }
  await ports.notifier.publish(studyCompletedNotification(report));
  return { outcome: "completed", studyId, report, reportKey: keys.studyReport(studyId) };
}

/**
 * sklearn 1.9.1's ranking of candidates by their fold scores: mean and population std (np.std); NaN means rank
 * after every number (they are given min - 1 before rankdata(-means, method="min")); all NaN: every rank 1.
 */
export function rankCandidates(scores: number[][]): { mean: number[]; std: number[]; rank: number[]; best: number } {
  const mean = scores.map((s) => s.reduce((a, b) => a + b, 0) / s.length);
  const std = scores.map((s, i) => Math.sqrt(s.reduce((a, b) => a + (b - mean[i]) ** 2, 0) / s.length));
  const finite = mean.filter((m) => !Number.isNaN(m));
  let rank: number[];
  if (finite.length === 0) rank = mean.map(() => 1);
  else {
    const floor = Math.min(...finite) - 1;
    const filled = mean.map((m) => (Number.isNaN(m) ? floor : m));
    rank = filled.map((m) => 1 + filled.filter((o) => o > m).length);
  }
  const best = rank.indexOf(Math.min(...rank));
  return { mean, std, rank, best };
}

/** What `canopy status <study-id>` shows: the study's counter, its members' groves settled, and its report once ranked. */
export interface StudyView {
  summary: BuildSummary;
  builds: { total: number; done: number; failed: number };
  groves: { total: number; settled: number };
  report?: StudyReport;
  reportKey?: string;
  pageKey?: string;
}

/** Reads a study's view (one counter read per member for the groves); undefined for an unknown study. */
export async function readStudyView(ports: { blobs: BlobStore; ledger: BuildLedger }, studyId: string): Promise<StudyView | undefined> {
  const summary = await ports.ledger.summary(studyId);
  if (!summary) return undefined;
  const manifest = await readStudyManifest(ports.blobs, studyId);
  let settled = 0;
  for (const m of manifest.members) {
    const s = await ports.ledger.summary(m.buildId);
    if (s) settled += s.landedCount + s.failedCount;
  }
  const view: StudyView = {
    summary,
    builds: { total: summary.total, done: summary.landedCount + summary.failedCount, failed: summary.failedCount },
    groves: { total: manifest.groves, settled },
  };
  if (summary.status === "COMPLETED" && summary.result) {
    const bytes = await ports.blobs.get(summary.result.reportKey);
    if (bytes) view.report = JSON.parse(new TextDecoder().decode(bytes)) as StudyReport;
    view.reportKey = summary.result.reportKey;
    if (await ports.blobs.exists(keys.studyReportHtml(studyId))) view.pageKey = keys.studyReportHtml(studyId);
  }
  return view;
}
