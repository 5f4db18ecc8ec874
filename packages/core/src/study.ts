import { AggregationError, errorLine, TaskError } from "./errors.ts";
import { sha256Hex } from "./digest.ts";
import { CONTENT_TYPES, keys, reportKeysOf } from "./keys.ts";
import { newBuildRecord, type BuildRecord, type BuildSummary, type GroveStats, type SettledGrove } from "./ledger.ts";
import type { BuildManifest } from "./manifest.ts";
import { buildIdFor, planGroves } from "./plan.ts";
import { PackCache } from "./pack-cache.ts";
import { systemClock, type BlobStore, type BuildLedger, type Clock, type Notifier, type TaskQueue } from "./ports.ts";
import type { BuildReport } from "./report.ts";
import { claimIsDead, resumeBuild, startBuild, submitBuild, type ClaimLease, type PreparedDataset } from "./submit.ts";
import { finalSpec, finalStageIdFor, memberScore, memberSpec, parseStudySpec, planStudy, roundIdFor, studyRounds, type StudyManifest, type StudyMember, type StudySpec } from "./study-spec.ts";
import { extendBuild, planExtension, startExtension } from "./extend.ts";
import { isPartitionRunId } from "./partitioned-model.ts";
import { partitionsFailedNotification } from "./partition-report.ts";
import { studyCompletedNotification, studyFailedNotification, type StudyReport, type StudyCandidate } from "./study-report.ts";
import { storeReportWithPage } from "./report-page.ts";

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
    ...(checked.halving ? { rounds: studyRounds(checked) } : {}),
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
export async function landMember(studyId: string, member: number, build: BuildSummary, ports: { blobs: BlobStore; ledger: BuildLedger; clock?: Clock; notifier?: Notifier }): Promise<boolean> {
  const clock = ports.clock ?? systemClock;
  if (build.status === "FAILED") {
    const failed = await ports.ledger.failGrove(studyId, member, `build ${build.buildId} failed: ${build.reason ?? "unknown reason"}`);
    // Every member failed: this write failed the record (no aggregation follows), so it notifies, once (only the
    // write that failed it sees buildFailed). A final stage never fails this way (it tolerates its final build).
    if (failed.buildFailed && ports.notifier) {
      const summary = await ports.ledger.summary(studyId);
      if (summary && isPartitionRunId(studyId))
        await ports.notifier.publish(partitionsFailedNotification(summary, `every partition's build failed; the last: ${summary.reason ?? "unknown reason"}`));
      else if (summary) {
        // Named by this record's id: the study's for its first round (a later halving round's record would be named,
        // since finding its study means reading the study's manifest, which the dead-letter consumer may not).
        const last = `build ${build.buildId} failed: ${build.reason ?? "unknown reason"}`;
        await ports.notifier.publish(studyFailedNotification(summary, `every build of the study failed (${summary.failedCount} of ${summary.total}); the last: ${last}`));
      }
    }
    return failed.recorded;
  }
  if (build.status !== "COMPLETED" || !build.result) return false;
  const bytes = await ports.blobs.get(build.result.reportKey);
  if (!bytes) throw new AggregationError(`build ${build.buildId} is COMPLETED but ${build.result.reportKey} is missing`);
  const report = JSON.parse(new TextDecoder().decode(bytes)) as BuildReport;
  return (await ports.ledger.landGrove(studyId, member, memberStats(build, report, bytes, clock.now()))).landed;
}

/** After a build finished: lands it in the study it names (if any). Called by the build's aggregator and failures. */
export async function settleMember(buildId: string, ports: { blobs: BlobStore; ledger: BuildLedger; clock?: Clock; notifier?: Notifier }): Promise<boolean> {
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
  return settleMembers(studyId, manifest.members.map((m) => m.buildId), ports);
}

/**
 * Lands in the fan-in record `id` (a study's, a partitioned run's) each of its member builds (`buildIds[member]`)
 * that finished and has not landed. Returns how many it landed.
 */
export async function settleMembers(id: string, buildIds: string[], ports: { blobs: BlobStore; ledger: BuildLedger; clock?: Clock; notifier?: Notifier }): Promise<number> {
  const record = await ports.ledger.get(id);
  if (!record || record.status !== "TRAINING") return 0;
  const settled = new Set([...record.landed, ...record.failed.map((f) => f.grove)]);
  let landed = 0;
  for (const [member, buildId] of buildIds.entries()) {
    if (settled.has(member)) continue;
    const build = await ports.ledger.summary(buildId);
    if (build && (await landMember(id, member, build, ports))) landed++;
  }
  return landed;
}

/** Resumes each unfinished member build (resumeBuild); returns the ones that had work queued, copied or redriven. */
export async function resumeMembers(buildIds: string[], ports: StudyPorts, options: ClaimLease = {}): Promise<string[]> {
  const resumed: string[] = [];
  for (const buildId of buildIds) {
    const build = await ports.ledger.summary(buildId);
    if (!build || build.status === "COMPLETED" || build.status === "FAILED") continue;
    const r = await resumeBuild(buildId, ports, options);
    if (r.requeued.length > 0 || r.redriven || (r.copied?.length ?? 0) > 0) resumed.push(buildId);
  }
  return resumed;
}

/**
 * A fan-in record with every member in asks for its aggregation again; one AGGREGATING past the lease is reopened.
 * Returns whether it asked.
 */
export async function redriveFanIn(id: string, ports: { ledger: BuildLedger; clock?: Clock }, options: ClaimLease = {}): Promise<boolean> {
  const clock = ports.clock ?? systemClock;
  const summary = await ports.ledger.summary(id);
  if (summary?.status === "TRAINING" && summary.remaining === 0) return ports.ledger.redriveAggregation(id);
  if (summary?.status === "AGGREGATING" && claimIsDead(summary, clock.now(), options))
    return ports.ledger.reopenAggregation(id, { claim: summary.claims ?? 0 });
  return false;
}

/**
 * Starts the member builds of a study that a crash left unsubmitted (their manifests made from the study's: no pack is
 * read, no grove written), and a final stage's final build. A later halving round's missing extension is left to
 * resume (extending copies groves). Returns the builds started. What the sweeper does for a study that stalls.
 */
export async function submitMissingMembers(studyId: string, ports: StudyPorts & { manifest?: StudyManifest }): Promise<string[]> {
  const manifest = ports.manifest ?? (await readStudyManifest(ports.blobs, studyId));
  if (manifest.final) return (await startFinalBuild(manifest, ports)) ? [manifest.members[0].buildId] : [];
  if (manifest.round) return [];
  const started: string[] = [];
  const trees = manifest.rounds ? manifest.rounds[0].trees : undefined;
  for (const [member, m] of manifest.members.entries()) {
    if (await ports.ledger.summary(m.buildId)) continue;
    const spec = memberSpec(manifest.spec, manifest.candidates[m.candidate], m.fold, trees);
    if (buildIdFor(manifest.packHash, spec) !== m.buildId) throw new AggregationError(`study ${studyId}: member ${member} was planned as ${m.buildId} but its spec gives ${buildIdFor(manifest.packHash, spec)}`);
    const build: BuildManifest = { v: 1, buildId: m.buildId, spec, packKey: manifest.packKey, packHash: manifest.packHash, groves: planGroves(spec.n_estimators, spec.grove_size) };
    if ((await startBuild(build, ports, { memberOf: { id: studyId, member } })).created) started.push(m.buildId);
  }
  return started;
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
export async function resumeStudy(studyId: string, ports: StudyPorts & { packs?: PackCache }, options: ClaimLease = {}): Promise<StudyResumption> {
  const clock = ports.clock ?? systemClock;
  // A halving study is at its latest round: resume that one.
  const head = await studyHead(ports.ledger, studyId);
  if (head && head.id !== studyId) return { ...(await resumeStudy(head.id, ports, options)), studyId };
  const summary = await ports.ledger.summary(studyId);
  if (!summary) throw new TaskError(`study ${studyId} not found`);
  const manifest = await readStudyManifest(ports.blobs, studyId);
  if (summary.status === "PENDING") await ports.ledger.startTraining(studyId);
  const out: StudyResumption = { studyId, status: summary.status, submitted: [], resumed: [], settled: 0, redriven: false };
  if (summary.status === "COMPLETED" || summary.status === "FAILED") return out;
  if (summary.status !== "AGGREGATING") {
    const missing = [];
    for (const m of manifest.members) if (!(await ports.ledger.summary(m.buildId))) missing.push(m);
    if (missing.length > 0 && manifest.final) {
      // The final stage whose aggregator died before queueing the final build: queue it.
      if (await startFinalBuild(manifest, ports)) out.submitted.push(manifest.members[0].buildId);
    } else if (missing.length > 0 && manifest.round) {
      // A round of a halving study whose aggregator died while extending: extend what it had not.
      for (const m of missing) {
        const member = manifest.members.indexOf(m);
        const parent = m.extends ? await ports.ledger.summary(m.extends) : undefined;
        if (parent?.status === "COMPLETED") await extendBuild(m.extends!, manifest.round.trees, ports, { memberOf: { id: studyId, member } });
        else await ports.ledger.failGrove(studyId, member, `build ${m.extends ?? "?"} of round ${manifest.round.index - 1} did not complete; nothing to extend`);
        out.submitted.push(m.buildId);
      }
    } else if (missing.length > 0) {
      const { pack } = await (ports.packs ?? new PackCache(1)).load(manifest.packHash, manifest.packKey, ports.blobs);
      const trees = manifest.rounds ? manifest.rounds[0].trees : undefined;
      const specs = manifest.members.map((m) => memberSpec(manifest.spec, manifest.candidates[m.candidate], m.fold, trees));
      out.submitted = await submitMembers(manifest, specs, ports, { pack, packKey: manifest.packKey });
    }
    // Not the builds just submitted (see resumePartitionedRun).
    out.resumed = await resumeMembers(manifest.members.map((m) => m.buildId).filter((id) => !out.submitted.includes(id)), ports, options);
    out.settled = await settleStudy(studyId, { ...ports, manifest });
  }
  out.redriven = await redriveFanIn(studyId, { ledger: ports.ledger, clock }, options);
  out.status = (await ports.ledger.summary(studyId))!.status;
  return out;
}

export interface StudyAggregatePorts {
  blobs: BlobStore;
  ledger: BuildLedger;
  notifier: Notifier;
  /** For successive halving: the next round's new trees are queued here (extendBuild). */
  queue?: TaskQueue;
  clock?: Clock;
  /** Renders report.html of the study (see @canopy/report); stored beside report.json when given. */
  renderReport?: (report: StudyReport) => string;
}

export type StudyAggregateOutcome =
  | { outcome: "not-claimed"; studyId: string }
  | { outcome: "completed"; studyId: string; report: StudyReport; reportKey: string }
  /** A round of successive halving ranked: its best candidates' builds extended into the next round's record. */
  | { outcome: "advanced"; studyId: string; round: number; next: string; survivors: number[] }
  /** Ranked, with a final build (refit): the study completes when the final stage `next` (its final build) does. */
  | { outcome: "ranked"; studyId: string; next: string; finalBuild: string }
  | { outcome: "failed"; studyId: string; reason: string };

/** What one round's members scored: per candidate taking part, its fold scores and what its builds cost. */
export interface RoundResult {
  index: number;
  trees: number;
  candidates: StudyCandidate[];
  buildsUsd: number;
  billedGbS: number;
  builds: { total: number; completed: number; failed: number };
}

/**
 * Scores the members of a fan-in record by candidate and fold. `only`: the member indices that make up this ranking
 * (a tuned partitioned run ranks each partition's members apart); default every member.
 */
export async function scoreRound(
  manifest: Pick<StudyManifest, "spec" | "candidates" | "members" | "round" | "rounds">,
  record: NonNullable<Awaited<ReturnType<BuildLedger["get"]>>>,
  blobs: BlobStore,
  only?: number[],
): Promise<RoundResult> {
  const entries = new Map<number, SettledGrove>();
  for (const g of record.landed) entries.set(g, { grove: g, outcome: "landed", stats: record.groveStats[g] });
  for (const f of record.failed) entries.set(f.grove, { grove: f.grove, outcome: "failed", error: f.error });
  const K = manifest.spec.cv;
  const scored = (only ?? manifest.members.map((_, member) => member)).map((member) => ({ member, m: manifest.members[member] }));
  const taking = [...new Set(scored.map(({ m }) => m.candidate))].sort((a, b) => a - b);
  const slot = new Map(taking.map((c, i) => [c, i]));
  const scores: number[][] = taking.map(() => new Array<number>(K).fill(Number.NaN));
  const per = taking.map(() => ({ trees: 0, ms: 0, usd: 0, failed: [] as string[], builds: [] as string[] }));
  let buildsUsd = 0;
  let billedGbS = 0;
  for (const { member, m } of scored) {
    const i = slot.get(m.candidate)!;
    const c = per[i];
    c.builds.push(m.buildId);
    const entry = entries.get(member);
    if (!entry) throw new AggregationError(`member ${member} (build ${m.buildId}) has not landed`);
    if (entry.outcome === "failed") {
      c.failed.push(entry.error);
      continue;
    }
    const key = keys.report(m.buildId);
    const bytes = await blobs.get(key);
    if (!bytes) throw new AggregationError(`member ${member} landed but ${key} is missing`);
    if (sha256Hex(bytes) !== entry.stats.digest) throw new AggregationError(`member ${member}: ${key} is not the report that landed`);
    const r = JSON.parse(new TextDecoder().decode(bytes)) as BuildReport;
    scores[i][m.fold] = memberScore(manifest.spec, r);
    c.trees += r.model.trees;
    c.ms += r.timings.totalMs;
    c.usd += r.cost.usd.total;
    buildsUsd += r.cost.usd.total;
    billedGbS += r.cost.totals.billedGbS;
  }
  const ranked = rankCandidates(scores);
  const candidates: StudyCandidate[] = taking.map((index, i) => ({
    index,
    params: manifest.candidates[index],
    buildIds: per[i].builds,
    split_test_scores: scores[i],
    mean_test_score: ranked.mean[i],
    std_test_score: ranked.std[i],
    rank_test_score: ranked.rank[i],
    status: per[i].failed.length === 0 ? "COMPLETED" : "FAILED",
    ...(per[i].failed.length > 0 ? { error: per[i].failed[0] } : {}),
    trees: per[i].trees,
    timeMs: per[i].ms,
    usd: per[i].usd,
  }));
  return {
    index: manifest.round?.index ?? 0,
    trees: manifest.round?.trees ?? (manifest.rounds ? manifest.rounds[0].trees : manifest.spec.base.n_estimators),
    candidates,
    buildsUsd,
    billedGbS,
    builds: {
      total: scored.length,
      completed: scored.filter(({ member }) => entries.get(member)?.outcome === "landed").length,
      failed: scored.filter(({ member }) => entries.get(member)?.outcome === "failed").length,
    },
  };
}

/** best_index_'s candidate: the first of rank 1 (its score may be NaN when every candidate's is). */
export function bestCandidate<C extends Pick<StudyCandidate, "rank_test_score">>(candidates: C[]): C {
  return candidates.find((c) => c.rank_test_score === Math.min(...candidates.map((x) => x.rank_test_score)))!;
}

/**
 * The `k` best candidates of a round, as sklearn's _top_k: by mean score, NaN below every number; ties keep the
 * lower candidate index (a stable order).
 */
export function topCandidates(candidates: Pick<StudyCandidate, "index" | "mean_test_score">[], k: number): number[] {
  const key = (c: Pick<StudyCandidate, "mean_test_score">) => (Number.isNaN(c.mean_test_score) ? Number.NEGATIVE_INFINITY : c.mean_test_score);
  return [...candidates]
    .sort((a, b) => key(b) - key(a) || a.index - b.index)
    .slice(0, k)
    .map((c) => c.index)
    .sort((a, b) => a - b);
}

/**
 * Ranks a study whose members are all in, as GridSearchCV does (scikit-learn 1.9.1, `_format_results`): per candidate
 * the mean and (population) standard deviation of its fold scores, `rank_test_score` = rankdata(-mean, "min") with
 * NaN means ranked last, `best_index_` the first rank 1. A member that failed scores NaN (error_score=nan). Safe on
 * every trigger: only the claim winner proceeds; one notification.
 *
 * With successive halving, a round other than the last keeps its best ceil(candidates / factor) and extends their
 * fold builds to the next round's trees (extendBuild: the trees already trained are copied, not retrained) as the
 * members of the next round's record; the last round ranks the survivors and publishes the study's notification.
 */
export async function aggregateStudy(studyId: string, ports: StudyAggregatePorts): Promise<StudyAggregateOutcome> {
  const clock = ports.clock ?? systemClock;
  if (!(await ports.ledger.claimAggregation(studyId))) return { outcome: "not-claimed", studyId };
  let report: StudyReport;
  let root = studyId;
  let claim: number | undefined;
  try {
    const started = clock.now();
    const record = await ports.ledger.get(studyId);
    if (!record) throw new AggregationError(`study ${studyId} vanished from the ledger`);
    claim = record.claims;
    const manifest = await readStudyManifest(ports.blobs, studyId);
    root = manifest.final?.root ?? manifest.round?.root ?? studyId;
    if (manifest.final) {
      report = await finishFinalStage(manifest, record, ports, started);
      const reportKey = await storeStudyReport(report, ports);
      const metrics = { [report.scoring]: report.best_score_, best_index: report.best_index_, final_build: report.final!.buildId };
      if (!(await ports.ledger.complete(studyId, { reportKey, metrics }))) throw new AggregationError("the study's final stage left AGGREGATING while it was being completed");
    } else {
      const rootManifest = manifest.round ? await readStudyManifest(ports.blobs, root) : manifest;
      const rounds = rootManifest.rounds;
      const result = await scoreRound(manifest, record, ports.blobs);
      if (rounds && result.index < rounds.length - 1) {
        const next = await startNextRound(rootManifest, manifest, result, ports);
        await ports.blobs.put(keys.studyRound(root, result.index), encode(result), CONTENT_TYPES.json);
        if (!(await ports.ledger.complete(studyId, { reportKey: keys.studyRound(root, result.index), metrics: { next_round: next.id, round: result.index } })))
          throw new AggregationError("the round left AGGREGATING while it was being ranked");
        return { outcome: "advanced", studyId, round: result.index, next: next.id, survivors: next.survivors };
      }
      // The last round (or the only one): the study's result.
      const earlier: RoundResult[] = [];
      for (let i = 0; i < result.index; i++) {
        const bytes = await ports.blobs.get(keys.studyRound(root, i));
        if (!bytes) throw new AggregationError(`round ${i} of study ${root} has no result (${keys.studyRound(root, i)})`);
        earlier.push(decodeRanking<RoundResult>(bytes));
      }
      const best = bestCandidate(result.candidates);
      if (!Number.isFinite(best.mean_test_score)) throw new AggregationError("every candidate failed or scored NaN: there is no best candidate");
      const all = [...earlier, result];
      const buildsUsd = all.reduce((sum, r) => sum + r.buildsUsd, 0);
      const completedAt = clock.now();
      const rootRecord = root === studyId ? record : await ports.ledger.summary(root);
      report = {
        v: 1,
        kind: "study",
        studyId: root,
        status: "COMPLETED",
        spec: rootManifest.spec,
        task: rootManifest.task,
        scoring: rootManifest.spec.scoring,
        greaterIsBetter: true,
        cv: rootManifest.spec.cv,
        packKey: rootManifest.packKey,
        candidates: result.candidates,
        best_index_: best.index,
        best_params_: best.params,
        best_score_: best.mean_test_score,
        builds: all.reduce((b, r) => ({ total: b.total + r.builds.total, completed: b.completed + r.builds.completed, failed: b.failed + r.builds.failed }), { total: 0, completed: 0, failed: 0 }),
        ...(rounds ? { rounds: all.map((r) => ({ round: r.index, trees: r.trees, candidates: r.candidates })) } : {}),
        cost: { buildsUsd, billedGbS: all.reduce((sum, r) => sum + r.billedGbS, 0), aggregateMs: completedAt - started, usd: buildsUsd },
        tags: rootRecord?.tags ?? record.tags,
        createdAt: rootRecord?.createdAt ?? record.createdAt,
        completedAt,
      };
      if (rootManifest.spec.refit) {
        // The study completes with its final model: the final stage's record counts the final build.
        const stage = await startFinalStage(rootManifest, report, result.index, ports);
        const metrics = { [rootManifest.spec.scoring]: report.best_score_, best_index: report.best_index_, next_round: stage.id, final_build: stage.buildId };
        if (!(await ports.ledger.complete(studyId, { reportKey: stage.rankedKey, metrics })))
          throw new AggregationError("the study left AGGREGATING while it was being ranked");
        return { outcome: "ranked", studyId: root, next: stage.id, finalBuild: stage.buildId };
      }
      const reportKey = await storeStudyReport(report, ports);
      const metrics = { [rootManifest.spec.scoring]: report.best_score_, best_index: report.best_index_ };
      if (!(await ports.ledger.complete(studyId, { reportKey, metrics })))
        throw new AggregationError("the study left AGGREGATING while it was being ranked");
    }
  } catch (err) {
    const reason = `study aggregation failed: ${errorLine(err)}`;
    if (await ports.ledger.fail(studyId, reason, { claim })) {
      const summary = await ports.ledger.summary(studyId);
      if (summary) await ports.notifier.publish(studyFailedNotification({ ...summary, buildId: root }, reason));
      return { outcome: "failed", studyId, reason };
    }
    // Not this aggregation's record any more (reopened as dead, claimed again, or finished): the live one goes on.
    return { outcome: "not-claimed", studyId };
  }
  return published(report, ports);
}

/** After the study's record COMPLETED (once: its claim's winner): its one notification. */
async function published(report: StudyReport, ports: StudyAggregatePorts): Promise<StudyAggregateOutcome> {
  await ports.notifier.publish(studyCompletedNotification(report));
  return { outcome: "completed", studyId: report.studyId, report, reportKey: keys.studyReport(report.studyId) };
}

/** report.json of the study, and its page when a renderer is given (a failed page does not fail the study). */
async function storeStudyReport(report: StudyReport, ports: StudyAggregatePorts): Promise<string> {
  const stored = reportKeysOf(report.studyId);
  const reportKey = stored.json;
  await storeReportWithPage(ports.blobs, report, stored, ports.renderReport);
  return reportKey;
}

/** A stored study report or round ranking: JSON has no NaN, so a failed candidate's scores come back from null. */
function decodeRanking<T extends { candidates: StudyCandidate[] }>(bytes: Uint8Array): T {
  const r = JSON.parse(new TextDecoder().decode(bytes)) as T & { rounds?: { candidates: StudyCandidate[] }[] };
  restoreNaN([...r.candidates, ...(r.rounds ?? []).flatMap((x) => x.candidates)]);
  return r;
}

/** Candidates read back from JSON: the scores stored as null (NaN) are NaN again. */
export function restoreNaN(candidates: StudyCandidate[]): void {
  for (const c of candidates) {
    c.split_test_scores = c.split_test_scores.map((x) => x ?? Number.NaN);
    c.mean_test_score ??= Number.NaN;
    c.std_test_score ??= Number.NaN;
  }
}

/**
 * The final stage of a ranked study (spec refit): the ranked report stored as the last round's ranking, the stage's
 * manifest and record (two members: the final build, and the ranking landed at once with the ranked report's digest),
 * then the final build (finalSpec: base + best_params_, no fold, the held-out rows held out) started as the stage's
 * member. Idempotent: a redriven ranking finds all of it (the final build is content-addressed: created once) and
 * lands a final build that existed already (out of bag, the best candidate's own build; or one `canopy train` made).
 */
async function startFinalStage(root: StudyManifest, ranked: StudyReport, index: number, ports: StudyAggregatePorts): Promise<{ id: string; buildId: string; rankedKey: string }> {
  if (!ports.queue) throw new AggregationError("the study's final build (refit) needs the grove queue");
  const clock = ports.clock ?? systemClock;
  const id = finalStageIdFor(root.studyId);
  const rankedKey = keys.studyRound(root.studyId, index);
  const spec = finalSpec(root.spec, ranked.best_params_);
  const buildId = buildIdFor(root.packHash, spec);
  const manifest: StudyManifest = {
    ...root,
    studyId: id,
    members: [{ buildId, candidate: ranked.best_index_, fold: 0, groves: planGroves(spec.n_estimators, spec.grove_size).length }],
    groves: planGroves(spec.n_estimators, spec.grove_size).length,
    createdAt: clock.now(),
    final: { root: root.studyId, candidate: ranked.best_index_, rankedKey },
  };
  delete manifest.rounds;
  delete manifest.round;
  // A redriven ranking keeps the ranking that landed (its digest is in the stage's record).
  let rankedBytes = await ports.blobs.get(rankedKey);
  const stage = await ports.ledger.get(id);
  if (!rankedBytes || !stage?.groveStats[1]) {
    rankedBytes = encode(ranked);
    await ports.blobs.put(rankedKey, rankedBytes, CONTENT_TYPES.json);
  }
  const key = keys.study(id);
  if (!(await ports.blobs.exists(key))) await ports.blobs.put(key, encode(manifest), CONTENT_TYPES.json);
  const stored = decodeStudyManifest((await ports.blobs.get(key))!, id, key);
  if (await ports.ledger.create(newBuildRecord({ buildId: id, total: 2, tolerated: 1, tags: root.spec.base.tags, now: clock.now() }))) await ports.ledger.startTraining(id);
  const now = clock.now();
  await ports.ledger.landGrove(id, 1, {
    trees: 0,
    nodes: 0,
    bytes: rankedBytes.length,
    digest: sha256Hex(rankedBytes),
    queuedAt: now,
    startedAt: now,
    loadedAt: now,
    trainedAt: now,
    storedAt: now,
    landedAt: now,
    packCached: false,
  });
  // Out of bag with successive halving, the best candidate's last-round build is the final build's first trees.
  const best = root.spec.oob && root.rounds ? ranked.candidates.find((c) => c.index === ranked.best_index_)?.buildIds[0] : undefined;
  await startFinalBuild(stored, { blobs: ports.blobs, ledger: ports.ledger, queue: ports.queue, clock }, best);
  await settleStudy(id, { blobs: ports.blobs, ledger: ports.ledger, clock, manifest: stored });
  return { id, buildId: stored.members[0].buildId, rankedKey };
}

/**
 * Starts the final build of a final stage unless it exists (made by `canopy train`, an earlier run, or a member). Given
 * `extendFrom` (an out-of-bag halving study's best build of its last round, fewer trees than the final spec's), it is
 * extended to the final build when that gives the same build (the same spec but its trees): its trees are copied, not
 * trained again, and the bytes are the same. The sweeper and resume, which copy no groves, start it fresh.
 */
async function startFinalBuild(stage: StudyManifest, ports: StudyPorts, extendFrom?: string): Promise<boolean> {
  const { buildId } = stage.members[0];
  if (await ports.ledger.summary(buildId)) return false;
  const spec = finalSpec(stage.spec, stage.candidates[stage.final!.candidate]);
  if (extendFrom !== undefined) {
    const plan = await planExtension(extendFrom, spec.n_estimators, ports).catch(() => undefined);
    if (plan?.manifest.buildId === buildId)
      return (await startExtension({ ...plan, manifest: { ...plan.manifest, finalOf: stage.final!.root } }, ports, { memberOf: { id: stage.studyId, member: 0 } })).created;
  }
  const manifest: BuildManifest = {
    v: 1,
    buildId,
    spec,
    packKey: stage.packKey,
    packHash: stage.packHash,
    groves: planGroves(spec.n_estimators, spec.grove_size),
    finalOf: stage.final!.root,
  };
  if (buildIdFor(stage.packHash, spec) !== buildId) throw new AggregationError(`study ${stage.final!.root}: its final build was planned as ${buildId} but its spec gives ${buildIdFor(stage.packHash, spec)}`);
  return (await startBuild(manifest, ports, { memberOf: { id: stage.studyId, member: 0 } })).created;
}

/**
 * The final stage's aggregation: the final build finished (landed or failed in the stage). Failed: the study fails
 * naming it. Completed: the ranked report (checked against the digest that landed) with `final` (the build's held-out
 * metrics and model), which is the study's report.
 */
async function finishFinalStage(stage: StudyManifest, record: BuildRecord, ports: StudyAggregatePorts, started: number): Promise<StudyReport> {
  const clock = ports.clock ?? systemClock;
  const { buildId } = stage.members[0];
  const failed = record.failed.find((f) => f.grove === 0);
  if (failed) throw new AggregationError(`the final build failed: ${failed.error}`);
  const rankedBytes = await ports.blobs.get(stage.final!.rankedKey);
  if (!rankedBytes) throw new AggregationError(`the ranking ${stage.final!.rankedKey} is missing`);
  if (sha256Hex(rankedBytes) !== record.groveStats[1]?.digest) throw new AggregationError(`${stage.final!.rankedKey} is not the ranking that landed`);
  const ranked = decodeRanking<StudyReport>(rankedBytes);
  const reportKey = keys.report(buildId);
  const bytes = await ports.blobs.get(reportKey);
  if (!bytes) throw new AggregationError(`its final build ${buildId} landed but ${reportKey} is missing`);
  if (sha256Hex(bytes) !== record.groveStats[0]?.digest) throw new AggregationError(`${reportKey} is not the final build's report that landed`);
  const build = JSON.parse(new TextDecoder().decode(bytes)) as BuildReport;
  const summary = await ports.ledger.summary(buildId);
  const members = [...ranked.candidates, ...(ranked.rounds ?? []).flatMap((r) => r.candidates)].flatMap((c) => c.buildIds);
  const usd = members.includes(buildId) ? 0 : build.cost.usd.total;
  const completedAt = clock.now();
  return {
    ...ranked,
    final: {
      buildId,
      reportKey,
      modelKey: build.model.key,
      metrics: summary?.result?.metrics ?? null,
      trainRows: build.dataset.trainRows,
      testRows: build.dataset.testRows,
      model: { bytes: build.model.bytes, trees: build.model.trees, nodes: build.model.nodes },
      usd,
    },
    cost: { ...ranked.cost, usd: ranked.cost.usd + usd, aggregateMs: ranked.cost.aggregateMs + (completedAt - started) },
    completedAt,
  };
}

/**
 * The next round of a halving study: its manifest and record (TRAINING before any member can land), then each
 * survivor's fold builds extended to the round's trees, naming the round's record. Idempotent: a redriven round
 * finds the record and the extensions made before it died and lands the finished ones.
 */
async function startNextRound(root: StudyManifest, current: StudyManifest, result: RoundResult, ports: StudyAggregatePorts): Promise<{ id: string; survivors: number[] }> {
  if (!ports.queue) throw new AggregationError("successive halving needs the grove queue to extend the survivors' builds");
  const clock = ports.clock ?? systemClock;
  const rounds = root.rounds!;
  const index = result.index + 1;
  const { trees, candidates: keep } = rounds[index];
  const survivors = topCandidates(result.candidates, keep);
  const id = roundIdFor(root.studyId, index);
  const K = root.spec.cv;
  const byCandidateFold = new Map(current.members.map((m) => [`${m.candidate}/${m.fold}`, m.buildId]));
  const parents = survivors.flatMap((c) => Array.from({ length: K }, (_, fold) => ({ candidate: c, fold, parent: byCandidateFold.get(`${c}/${fold}`)! })));
  const members: StudyMember[] = [];
  for (const p of parents) {
    const plan = await planExtension(p.parent, trees, ports).catch(() => undefined); // a FAILED parent: the member fails below
    members.push({ buildId: plan?.manifest.buildId ?? p.parent, candidate: p.candidate, fold: p.fold, groves: plan?.manifest.groves.length ?? 0, extends: p.parent });
  }
  const manifest: StudyManifest = {
    ...root,
    studyId: id,
    members,
    groves: members.reduce((sum, m) => sum + m.groves, 0),
    createdAt: clock.now(),
    round: { index, root: root.studyId, trees },
  };
  delete manifest.rounds;
  const key = keys.study(id);
  if (!(await ports.blobs.exists(key))) await ports.blobs.put(key, encode(manifest), CONTENT_TYPES.json);
  if (await ports.ledger.create(newBuildRecord({ buildId: id, total: members.length, tolerated: members.length - 1, tags: root.spec.base.tags, now: clock.now() })))
    await ports.ledger.startTraining(id);
  const submit = { blobs: ports.blobs, ledger: ports.ledger, queue: ports.queue, clock };
  for (const [member, p] of parents.entries()) {
    const parent = await ports.ledger.summary(p.parent);
    if (parent?.status !== "COMPLETED") {
      await ports.ledger.failGrove(id, member, `build ${p.parent} of round ${index - 1} did not complete; nothing to extend`);
      continue;
    }
    await extendBuild(p.parent, trees, submit, { memberOf: { id, member } });
  }
  await settleStudy(id, { blobs: ports.blobs, ledger: ports.ledger, clock, manifest });
  return { id, survivors };
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

/**
 * The record a study is at: its own, or with successive halving the latest round's (a ranked round names the next in
 * its result), or with a final build (refit) the final stage's once ranked (`final`; `ranking` is the ranked record).
 * What status, resume and waiting read.
 */
export async function studyHead(
  ledger: BuildLedger,
  studyId: string,
): Promise<{ id: string; round: number; summary: BuildSummary; final?: { buildId: string; ranking: { id: string; summary: BuildSummary } } } | undefined> {
  let id = studyId;
  let summary = await ledger.summary(id);
  let round = 0;
  let final: { buildId: string; ranking: { id: string; summary: BuildSummary } } | undefined;
  while (summary?.status === "COMPLETED" && typeof summary.result?.metrics?.next_round === "string") {
    const next = await ledger.summary(summary.result.metrics.next_round);
    if (!next) break; // the next round's record is being made: this one is the head until it exists
    const finalBuild = summary.result.metrics.final_build;
    if (typeof finalBuild === "string") final = { buildId: finalBuild, ranking: { id, summary } };
    else round++;
    id = summary.result.metrics.next_round;
    summary = next;
  }
  return summary && { id, round, summary, ...(final ? { final } : {}) };
}

/** What `canopy status <study-id>` shows: the study's counter, its members' groves settled, and its report once ranked. */
export interface StudyView {
  summary: BuildSummary;
  /** Successive halving: the round under way (absent for round 0 and studies without rounds). */
  round?: number;
  builds: { total: number; done: number; failed: number };
  groves: { total: number; settled: number };
  /** Ranked, with a final build (refit): that build and its groves (the study is its status once ranked). */
  final?: { buildId: string; status?: BuildSummary["status"]; groves: { total: number; settled: number } };
  report?: StudyReport;
  reportKey?: string;
  pageKey?: string;
}

/** Reads a study's view (one counter read per member for the groves); undefined for an unknown study. */
export async function readStudyView(ports: { blobs: BlobStore; ledger: BuildLedger }, studyId: string): Promise<StudyView | undefined> {
  const head = await studyHead(ports.ledger, studyId);
  if (!head) return undefined;
  // Builds and groves are the ranked record's; the status is the head's (the final stage's once ranked).
  const counted = head.final?.ranking ?? head;
  const summary = counted.id !== studyId || head.final ? { ...counted.summary, status: head.summary.status, buildId: studyId, ...(head.summary.reason !== undefined ? { reason: head.summary.reason } : {}) } : head.summary;
  const manifest = await readStudyManifest(ports.blobs, counted.id);
  let settled = 0;
  for (const m of manifest.members) {
    const s = await ports.ledger.summary(m.buildId);
    if (s) settled += s.landedCount + s.failedCount;
  }
  const view: StudyView = {
    summary,
    ...(head.round > 0 ? { round: head.round } : {}),
    builds: { total: counted.summary.total, done: counted.summary.landedCount + counted.summary.failedCount, failed: counted.summary.failedCount },
    groves: { total: manifest.groves, settled },
  };
  if (head.final) {
    const b = await ports.ledger.summary(head.final.buildId);
    view.final = { buildId: head.final.buildId, ...(b ? { status: b.status } : {}), groves: { total: b?.total ?? 0, settled: b ? b.landedCount + b.failedCount : 0 } };
  }
  if (head.summary.status === "COMPLETED" && head.summary.result) {
    const stored = reportKeysOf(studyId);
    const bytes = await ports.blobs.get(stored.json);
    if (bytes) view.report = JSON.parse(new TextDecoder().decode(bytes)) as StudyReport;
    view.reportKey = stored.json;
    if (await ports.blobs.exists(stored.html)) view.pageKey = stored.html;
  }
  return view;
}
