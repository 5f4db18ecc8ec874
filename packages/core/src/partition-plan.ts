import { createHash } from "node:crypto";
import { InputError, SpecError } from "./errors.ts";
import { finalSpec, memberSpec, STUDY_LIMITS, type Params, type StudySpec } from "./study-spec.ts";
import { canonicalJson, groveCount, type BuildSpec } from "./spec.ts";
import type { PackSummary } from "./plan.ts";

/**
 * A partitioned run (`--partition-by <column>`): one ordinary build per value of a column, each over a pack of its
 * own rows, counted by one ledger record (`p-…`) whose members are those builds, as a study's are.
 */

/**
 * Partitions smaller than this are skipped (listed in the model's `skipped`) unless the user says otherwise. 30 rows
 * with the default test_fraction 0.25 hold 8 rows out and train on 22: below that the held-out metrics of a
 * partition say next to nothing and a forest has little to split.
 */
export const DEFAULT_MIN_PARTITION_ROWS = 30;

/**
 * What one run can carry. Every member build (each partition's, and the fallback's) is one entry of the run's ledger
 * record, and a record on DynamoDB has at most 10,000 (runtime-aws's DYNAMO_MAX_GROVES: its aggregator reads every
 * entry; a study has the same cap); every grove is one SQS message (at most 120,000 in flight per standard queue, so
 * a run stays at 100,000 with room for other builds).
 */
export const PARTITION_LIMITS = { maxPartitions: STUDY_LIMITS.maxBuilds - 1, maxGroves: STUDY_LIMITS.maxGroves } as const;

/**
 * A partition column with at least this share of distinct values among the rows that have one is an identifier
 * (the table builder's rule for excluded identifier columns), refused once it has this many rows.
 */
export const PARTITION_IDENTIFIER = { share: 0.95, minRows: 20 } as const;

/** The fallback model of `--fallback global`: every row's. */
export type PartitionFallback = "global";

export interface PartitionRunOptions {
  partitionBy: string;
  minPartitionRows: number;
  fallback?: PartitionFallback;
}

/**
 * Every member's spec: the run's spec with the partition column dropped (`--drop <col>` after the user's drops), so
 * a partition's build is the one `canopy train <its rows> --drop <col>` makes: the same id and the same model bytes.
 */
export function partitionMemberSpec(spec: BuildSpec, partitionBy: string): BuildSpec {
  const drop = [...(spec.columns?.drop ?? []), partitionBy];
  return { ...spec, columns: { ...spec.columns, drop } };
}

/** Checks a run's options against the spec before any row is read (a bad one is an input error naming it). */
export function checkPartitionOptions(spec: BuildSpec, options: PartitionRunOptions): void {
  const column = options.partitionBy.trim();
  if (column === "") throw new SpecError([{ path: "partition_by", message: "names no column" }]);
  if (spec.label !== undefined && spec.label.trim() === column) throw new SpecError([{ path: "partition_by", message: `${JSON.stringify(column)} is the label column` }]);
  if (spec.weight_column?.trim() === column) throw new SpecError([{ path: "partition_by", message: `${JSON.stringify(column)} is the weight column` }]);
  for (const kind of ["drop", "categorical", "numeric"] as const)
    if (spec.columns?.[kind]?.some((c) => c.trim() === column))
      throw new SpecError([{ path: "partition_by", message: `${JSON.stringify(column)} is also named by --${kind}; the partition column is never a feature` }]);
  if (!Number.isInteger(options.minPartitionRows) || options.minPartitionRows < 1)
    throw new SpecError([{ path: "min_partition_rows", message: `must be an integer >= 1 (got ${options.minPartitionRows})` }]);
  if (options.fallback !== undefined && options.fallback !== "global")
    throw new SpecError([{ path: "fallback", message: `must be "global" (got ${JSON.stringify(options.fallback)})` }]);
}

/** The message for a column with more values than a run can carry (met while `reading`), or one value per row. */
export function tooManyPartitions(column: string, values: number, rows: number, reading: boolean): InputError {
  const name = JSON.stringify(column);
  if (reading)
    return new InputError(
      `--partition-by ${name}: ${reading ? "more than " : ""}${values} distinct values${reading ? ` in the first ${rows} rows` : ""}; a partitioned run carries at most ` +
        `${PARTITION_LIMITS.maxPartitions} partitions (one ledger entry each, DynamoDB's item). Partition by a coarser column`,
    );
  return new InputError(
    `--partition-by ${name}: ${values} distinct values in ${rows} rows: an identifier (nearly one value per row), not a group. Partition by a column whose values repeat`,
  );
}

/** One member of a run: a partition's build, or the fallback's (trained on every row). */
export interface PartitionMember {
  /** partitionKey(value); absent for the fallback. */
  key?: string;
  /** The value as first read (a partition's spelling in messages and the model). */
  value?: string;
  fallback?: true;
  buildId: string;
  rows: number;
  groves: number;
  packKey: string;
  packHash: string;
  /** A tuning stage's member: the partition it scores (index in `tuning.partitions`), the candidate and the fold. */
  partition?: number;
  candidate?: number;
  fold?: number;
  /** A tuned run's final stage: the parameters of this member's final build (finalSpec of the base with them). */
  params?: Params;
}

/**
 * `tune --partition-by`: the tuning stage's plan (run.json's `tuning`). Its members are every partition's candidate x
 * fold builds (each the build `canopy tune` on that partition's rows alone makes); once ranked, a final stage (an
 * ordinary partitioned run whose members carry their `params`) trains each partition's model.
 */
export interface PartitionTuningPlan {
  /** independent: each partition's own best candidate; shared: one candidate for all (best mean over partitions). */
  mode: "independent" | "shared";
  /** The study's own fields; its base is the run's spec. */
  study: Omit<StudySpec, "base">;
  candidates: Params[];
  /** Every prepared partition in key order, then the fallback (trained in the final stage only). */
  partitions: { key?: string; value?: string; fallback?: true; rows: number; packKey: string; packHash: string }[];
}

/**
 * partitions/<p-id>/run.json: what the run is, so it can be resumed, aggregated and shown. Version 2 is a tuned run's
 * stage (`tuning` or `final`): a reader of version 1 only refuses it rather than take its members for partitions.
 */
export interface PartitionRunManifest {
  v: 1 | 2;
  runId: string;
  partitionBy: string;
  /** The run's spec as the user gave it (each member's is partitionMemberSpec of it). */
  spec: BuildSpec;
  minPartitionRows: number;
  fallback?: PartitionFallback;
  task: "classification" | "regression";
  /** The input's columns a row must carry: without label, weight, dropped columns and partitionBy. */
  features: string[];
  /** Partitions in key order (code units), then the fallback: member index = position. */
  members: PartitionMember[];
  skipped: { value: string; rows: number; reason: string }[];
  /** Rows read, and rows whose partition cell was empty (only the fallback trains on them). */
  rows: number;
  unkeyed: number;
  groves: number;
  createdAt: number;
  /** A tuning stage (tune --partition-by): members are candidate x fold builds, ranked per partition. */
  tuning?: PartitionTuningPlan;
  /**
   * A tuned run's final stage: `root` is the tuning record (the id the user sees, under which the model and report are
   * written); its ledger record counts one more entry than members, the ranking at `rankedKey` (landed as the stage
   * starts with its SHA-256 as digest), so a stage whose every build failed still aggregates and notifies as `root`.
   */
  final?: { root: string; rankedKey: string; oob?: true };
}

/** A member's build spec: the run's with the partition column dropped, and a tuning stage's candidate/fold or a final stage's params. */
export function runMemberSpec(manifest: Pick<PartitionRunManifest, "spec" | "partitionBy" | "tuning" | "final">, m: Pick<PartitionMember, "candidate" | "fold" | "params">): BuildSpec {
  const base = partitionMemberSpec(manifest.spec, manifest.partitionBy);
  const t = manifest.tuning;
  if (t) return memberSpec({ base, cv: t.study.cv, ...(t.study.oob ? { oob: true as const } : {}) }, t.candidates[m.candidate!], m.fold!);
  if (m.params) return finalSpec({ base, ...(manifest.final?.oob ? { oob: true as const } : {}) }, m.params);
  return base;
}

/** Same members (each build names its pack and spec) and options = same run. */
export function partitionRunIdFor(o: Pick<PartitionRunManifest, "partitionBy" | "minPartitionRows" | "fallback" | "members" | "skipped" | "final">): string {
  const members = o.members.map((m) => [m.key ?? null, m.buildId]);
  const skipped = o.skipped.map((s) => [s.value, s.rows]);
  // A final stage is its tuning record's: never the id of a plain run over the same builds.
  const final = o.final ? { final: o.final.root } : {};
  const digest = createHash("sha256")
    .update(`canopy-partitions-v1\n${canonicalJson({ partitionBy: o.partitionBy, minPartitionRows: o.minPartitionRows, fallback: o.fallback ?? null, members, skipped, ...final })}`)
    .digest("hex");
  return `p-${digest.slice(0, 16)}`;
}

/** Checks a run's size against PARTITION_LIMITS before anything of it is written. */
export function checkPartitionRun(spec: BuildSpec, members: number): void {
  const grovesEach = groveCount(spec.n_estimators, spec.grove_size);
  const groves = members * grovesEach;
  if (members > PARTITION_LIMITS.maxPartitions + 1 || groves > PARTITION_LIMITS.maxGroves)
    throw new SpecError([
      {
        path: "partition_by",
        message:
          `${members} builds x ${grovesEach} groves = ${groves} groves; a partitioned run is at most ${PARTITION_LIMITS.maxPartitions} partitions and ` +
          `${PARTITION_LIMITS.maxGroves} groves (SQS holds 120,000 messages in flight per queue): bigger groves (--grove-size), or a higher --min-partition-rows`,
      },
    ]);
}

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
