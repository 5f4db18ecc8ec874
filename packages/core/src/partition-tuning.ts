import { createHash } from "node:crypto";
import { SpecError } from "./errors.ts";
import type { BuildRecord } from "./ledger.ts";
import { buildIdFor, planGroves } from "./plan.ts";
import type { BlobStore } from "./ports.ts";
import { canonicalJson, groveCount } from "./spec.ts";
import { bestCandidate, restoreNaN, scoreRound, topCandidates } from "./study.ts";
import { STUDY_LIMITS, studyCandidates, type Params, type StudySpec } from "./study-spec.ts";
import type { PartitionRanking, PartitionTuningReport } from "./partition-report.ts";
import {
  checkPartitionRun,
  partitionMemberSpec,
  runMemberSpec,
  type PartitionMember,
  type PartitionRunManifest,
  type PartitionRunOptions,
  type PartitionTuningPlan,
  type PreparedPartitions,
} from "./partition-plan.ts";

/**
 * `tune --partition-by`: every partition tuned in one fan-out. The tuning stage is a partitioned run's record (`p-…`,
 * the id the user sees) whose members are each partition's candidate x fold builds over its own pack, each the very
 * build `canopy tune` on that partition's rows alone makes. Once every member is in, the study's scoring ranks each
 * partition's candidates apart (scoreRound over its members); the picks then start the final stage, an ordinary
 * partitioned run of one final build per partition (finalSpec of the pick), whose aggregator writes the partitioned
 * model and report under the tuning stage's id. This file holds the rules; partitioned-run.ts runs them.
 */

export type PartitionTuningMode = PartitionTuningPlan["mode"];
export type { PartitionRanking, PartitionTuningReport };

/** Same partitions (their packs), search, mode and options = same tuned run. */
export function partitionTuningIdFor(o: Pick<PartitionRunManifest, "partitionBy" | "minPartitionRows" | "fallback" | "skipped" | "spec"> & { tuning: PartitionTuningPlan }): string {
  const { dataset: _ignored, ...spec } = o.spec;
  const partitions = o.tuning.partitions.map((p) => [p.key ?? null, p.packHash]);
  const skipped = o.skipped.map((s) => [s.value, s.rows]);
  const body = { partitionBy: o.partitionBy, minPartitionRows: o.minPartitionRows, fallback: o.fallback ?? null, spec, study: o.tuning.study, mode: o.tuning.mode, partitions, skipped };
  return `p-${createHash("sha256").update(`canopy-partition-tuning-v1\n${canonicalJson(body)}`).digest("hex").slice(0, 16)}`;
}

/**
 * The limits of a tuned run, checked before anything is written: every partition's candidate x fold builds are one
 * fan-in record (one entry each: STUDY_LIMITS.maxBuilds, a DynamoDB item's) and their groves SQS messages.
 */
export function checkPartitionTuning(study: StudySpec, partitions: number): void {
  if (study.halving) throw new SpecError([{ path: "halving", message: "--halving with --partition-by is not available yet: tune each partition with every candidate at full trees (drop --halving)" }]);
  const candidates = studyCandidates(study).length;
  const base = study.base;
  const grovesEach = groveCount(base.n_estimators, base.grove_size);
  const builds = partitions * candidates * study.cv;
  const groves = builds * grovesEach;
  if (builds > STUDY_LIMITS.maxBuilds || groves > STUDY_LIMITS.maxGroves)
    throw new SpecError([
      {
        path: "partition_by",
        message:
          `${partitions} partitions x ${candidates} candidates x ${study.cv} ${study.oob ? "(out of bag)" : "folds"} = ${builds} builds of ${grovesEach} groves (${groves} groves); ` +
          `a tuned partitioned run is at most ${STUDY_LIMITS.maxBuilds} builds (one ledger entry each, DynamoDB's item) and ${STUDY_LIMITS.maxGroves} groves ` +
          "(SQS holds 120,000 messages in flight per queue): fewer candidates or folds, a higher --min-partition-rows, or bigger groves",
      },
    ]);
}

/** The tuning stage's manifest: every partition's candidate x fold builds (the fallback is trained in the final stage). */
export function planPartitionTuning(study: StudySpec, options: PartitionRunOptions, mode: PartitionTuningMode, prepared: PreparedPartitions, now: number): PartitionRunManifest {
  const tuned = prepared.partitions.filter((p) => !p.fallback);
  checkPartitionTuning(study, tuned.length);
  checkPartitionRun(partitionMemberSpec(study.base, options.partitionBy), prepared.partitions.length);
  const { base, ...rest } = study;
  const tuning: PartitionTuningPlan = {
    mode,
    study: rest,
    candidates: studyCandidates(study),
    partitions: prepared.partitions.map((p) => ({ ...(p.fallback ? { fallback: true as const } : { key: p.key!, value: p.value! }), rows: p.rows, packKey: p.packKey, packHash: p.pack.hash })),
  };
  const head = { spec: base, partitionBy: options.partitionBy, tuning };
  const members: PartitionMember[] = [];
  prepared.partitions.forEach((p, partition) => {
    if (p.fallback) return;
    tuning.candidates.forEach((_, candidate) => {
      for (let fold = 0; fold < study.cv; fold++) {
        const m = { key: p.key!, value: p.value!, rows: p.rows, packKey: p.packKey, packHash: p.pack.hash, partition, candidate, fold };
        const spec = runMemberSpec(head, m);
        members.push({ ...m, buildId: buildIdFor(p.pack.hash, spec), groves: planGroves(spec.n_estimators, spec.grove_size).length });
      }
    });
  });
  const ids = { partitionBy: options.partitionBy, minPartitionRows: options.minPartitionRows, ...(options.fallback ? { fallback: options.fallback } : {}), skipped: prepared.skipped };
  return {
    v: 2,
    runId: partitionTuningIdFor({ ...ids, spec: base, tuning }),
    spec: base,
    task: prepared.task,
    features: prepared.features,
    rows: prepared.rows,
    unkeyed: prepared.unkeyed,
    groves: members.reduce((sum, m) => sum + m.groves, 0),
    createdAt: now,
    ...ids,
    members,
    tuning,
  };
}

/**
 * The shared pick: per candidate the mean over partitions of their mean_test_score (NaN in any partition -> NaN),
 * the highest first, NaN below every number, ties to the lower candidate index (topCandidates' order).
 */
export function sharedCandidate(partitions: Pick<PartitionRanking, "candidates">[], count: number): { index: number; means: number[] } {
  const means = Array.from({ length: count }, (_, c) => partitions.reduce((sum, p) => sum + p.candidates[c].mean_test_score, 0) / partitions.length);
  const [index] = topCandidates(
    means.map((mean_test_score, index) => ({ index, mean_test_score })),
    1,
  );
  return { index, means };
}

/** Ranks every partition of a tuning stage whose members are all in; the shared pick in shared mode. */
export async function rankPartitionTuning(manifest: PartitionRunManifest, record: BuildRecord, blobs: BlobStore): Promise<PartitionTuningReport> {
  const t = manifest.tuning!;
  const view = {
    spec: { ...t.study, base: partitionMemberSpec(manifest.spec, manifest.partitionBy) },
    candidates: t.candidates,
    members: manifest.members.map((m) => ({ buildId: m.buildId, candidate: m.candidate!, fold: m.fold!, groves: m.groves })),
  };
  const partitions: PartitionRanking[] = [];
  let buildsUsd = 0;
  let billedGbS = 0;
  for (const [partition, p] of t.partitions.entries()) {
    if (p.fallback) continue;
    const only = manifest.members.flatMap((m, member) => (m.partition === partition ? [member] : []));
    const result = await scoreRound(view, record, blobs, only);
    const best = bestCandidate(result.candidates);
    buildsUsd += result.buildsUsd;
    billedGbS += result.billedGbS;
    partitions.push({ key: p.key!, value: p.value!, rows: p.rows, candidates: result.candidates, best_index_: best.index, best_params_: best.params, best_score_: best.mean_test_score, builds: result.builds });
  }
  const ranked = partitions.filter((p) => Number.isFinite(p.best_score_));
  let shared: PartitionTuningReport["shared"];
  if (t.mode === "shared" && ranked.length > 0) {
    const { index, means } = sharedCandidate(ranked, t.candidates.length);
    shared = { best_index_: index, best_params_: t.candidates[index], best_score_: means[index], mean_test_scores: means };
  }
  const sum = (k: "total" | "completed" | "failed") => partitions.reduce((n, p) => n + p.builds[k], 0);
  return {
    v: 1,
    runId: manifest.runId,
    mode: t.mode,
    scoring: t.study.scoring,
    cv: t.study.cv,
    ...(t.study.oob ? { oob: true as const } : {}),
    candidates: t.candidates,
    partitions,
    ...(shared ? { shared } : {}),
    builds: { total: sum("total"), completed: sum("completed"), failed: sum("failed") },
    cost: { buildsUsd, billedGbS },
  };
}

/**
 * What the final stage trains: per prepared partition, the parameters of its final build (its own best, or the shared
 * pick), or why it gets none (every candidate failed or scored NaN; shared: the pick failed on it). The fallback is
 * trained with the shared parameters, or with the run's own options in independent mode (it is not tuned).
 */
export function finalPicks(plan: PartitionTuningPlan, ranking: PartitionTuningReport): { params: (Params | undefined)[]; skipped: { value: string; rows: number; reason: string }[] } {
  const byKey = new Map(ranking.partitions.map((p) => [p.key, p]));
  const skipped: { value: string; rows: number; reason: string }[] = [];
  const params = plan.partitions.map((p) => {
    if (p.fallback) return ranking.shared?.best_params_ ?? {};
    const r = byKey.get(p.key!)!;
    if (!Number.isFinite(r.best_score_)) {
      skipped.push({ value: p.value!, rows: p.rows, reason: "every candidate failed or scored NaN" });
      return undefined;
    }
    if (!ranking.shared) return r.best_params_;
    if (!Number.isFinite(r.candidates[ranking.shared.best_index_].mean_test_score)) {
      skipped.push({ value: p.value!, rows: p.rows, reason: `the shared candidate ${ranking.shared.best_index_} failed or scored NaN on it` });
      return undefined;
    }
    return ranking.shared.best_params_;
  });
  return { params, skipped };
}

/** A stored ranking read back (JSON has no NaN: its scores come back from null). */
export function decodePartitionTuning(bytes: Uint8Array): PartitionTuningReport {
  const r = JSON.parse(new TextDecoder().decode(bytes)) as PartitionTuningReport;
  for (const p of r.partitions) {
    restoreNaN(p.candidates);
    p.best_score_ ??= Number.NaN;
  }
  if (r.shared) r.shared.mean_test_scores = r.shared.mean_test_scores.map((x) => x ?? Number.NaN);
  return r;
}
