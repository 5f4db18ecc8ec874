import { readFile } from "node:fs/promises";
import {
  buildHandle,
  extendBuild,
  followChanges,
  InputError,
  InternalError,
  parseBuildSpec,
  planRefit,
  pollBuild,
  prepareBuildData,
  readBuildView,
  readManifest,
  resumeBuild,
  startRefit,
  submitBuild,
  systemClock,
  TERMINAL_STATUSES,
  type BuildEvent,
  type BuildHandle,
  type BuildRequest,
  type BuildView,
  type Clock,
  type FollowOptions,
  type Runtime,
  parseStudySpec,
  planPartitionRun,
  planStudy,
  resumePartitionedRun,
  resumeStudy,
  studyHead,
  submitPartitionedRun,
  submitPartitionTuning,
  planPartitionTuning,
  submitStudy,
  type BuildSpec,
  type PartitionRunManifest,
  type PartitionTuningMode,
  type PartitionRunOptions,
  type PreparedPartitions,
  type StudySpec,
  type TableSource,
} from "@canopy/core";
import { DYNAMO_MAX_GROVES, DynamoLedger } from "./dynamo-ledger.ts";
import { aggregationLeaseMs } from "./settings.ts";
import type { AwsResources } from "./names.ts";
import { S3BlobStore } from "./s3-blob-store.ts";
import { SqsTaskQueue } from "./sqs-task-queue.ts";

export interface AwsRuntimeOptions {
  /** The app's bucket and builds table; the grove queue too, to submit. */
  resources: Pick<AwsResources, "bucket" | "table"> & Partial<Pick<AwsResources, "queueUrl">>;
  /**
   * How follow() learns of a build's progress. "poll" (default) reads its record every `pollIntervalMs`: it needs
   * only GetItem, what a laptop following a deployed build has. "stream" reads the table's stream, one event per
   * write, as the deployed aggregator sees it (canopy dev). Following every build always reads the stream.
   */
  progress?: "poll" | "stream";
  /** Between two reads of a record. Default 1000 ms. */
  pollIntervalMs?: number;
  /** Between two reads of the stream. Default: the ledger's (250 ms). */
  streamPollIntervalMs?: number;
  clock?: Clock;
  /**
   * How long an aggregation claim lives before resuming reopens it (its aggregator is dead). Default: the aggregator's
   * time limit plus a margin (CANOPY_AGGREGATOR_TIMEOUT_SECONDS, default 300 s, + 60 s); `canopy dev` passes 0 for an
   * emulator it just started (no aggregator of it can be running).
   */
  aggregationLeaseMs?: number;
  /**
   * A build whose progress could not be read (its manifest or report), or a stream read that failed; following
   * goes on with the other builds. Default: following every build throws, following one build throws.
   */
  onWarning?: (message: string) => void;
}

/**
 * The AWS runtime: core's Runtime on the deployed app's bucket, table and queue. Submitting prepares the data here
 * and uploads its pack once; the trainers, the aggregator and the notifications are the deployed functions' (or
 * `canopy dev`'s emulator's) work, which this runtime follows through the ledger.
 */
export interface AwsRuntime extends Runtime {
  readonly blobs: S3BlobStore;
  readonly ledger: DynamoLedger;
  /**
   * Starts a study (core's submitStudy: one pack, every candidate x fold build queued for the deployed trainers), or
   * picks an unfinished one with the same data and spec up (resumeStudy). The deployed aggregator ranks it.
   */
  tune(spec: StudySpec, data: TableSource | Uint8Array): Promise<StudyHandle>;
  /**
   * Starts a partitioned run over partitions prepared and uploaded by the caller (core/ingest's preparePartitions
   * with this runtime's blobs): one build per partition queued for the deployed trainers, or picks an unfinished
   * run with the same data and options up (resumePartitionedRun). The deployed aggregator writes the partitioned model.
   */
  partitions(spec: BuildSpec, options: PartitionRunOptions, prepared: PreparedPartitions): Promise<PartitionRunHandle>;
  /**
   * `tune --partition-by` on the deployed app (core's submitPartitionTuning): every partition's candidate x fold builds
   * queued in one fan-out over partitions prepared and uploaded by the caller, or an unfinished run with the same data,
   * search and options picked up. The deployed aggregator ranks each partition, queues the final builds and writes the
   * partitioned model.
   */
  tunePartitions(study: StudySpec, options: PartitionRunOptions, mode: PartitionTuningMode, prepared: PreparedPartitions): Promise<PartitionRunHandle>;
}

export interface PartitionRunHandle {
  runId: string;
  created: boolean;
  status: string;
  /** Member builds: the partitions trained (and the fallback's). */
  builds: number;
  groves: number;
  skipped: number;
  /** Member builds this call created (their groves queued). */
  submitted: number;
}

export interface StudyHandle {
  studyId: string;
  created: boolean;
  status: string;
  candidates: number;
  builds: number;
  groves: number;
  /** Member builds this call created (their groves queued). */
  submitted: number;
  pack: { packKey: string; reused: boolean; nRows: number; nFeatures: number; bytes: number };
}

export function createAwsRuntime(options: AwsRuntimeOptions): AwsRuntime {
  return new DeployedRuntime(options);
}

/** s3://bucket/key, or undefined for anything else (a local path). Throws an input error on a malformed one. */
export function parseS3Url(text: string): { bucket: string; key: string } | undefined {
  if (!/^s3:\/\//i.test(text)) return undefined;
  const m = /^s3:\/\/([^/]+)\/(.+)$/i.exec(text);
  if (!m) throw new InputError(`${text}: expected s3://bucket/key`);
  return { bucket: m[1], key: m[2] };
}

class DeployedRuntime implements AwsRuntime {
  readonly blobs: S3BlobStore;
  readonly ledger: DynamoLedger;
  private readonly clock: Clock;
  /** Trees of the builds this runtime submitted, so following them needs no read of their manifest. */
  private readonly trees = new Map<string, number>();

  constructor(private readonly options: AwsRuntimeOptions) {
    this.clock = options.clock ?? systemClock;
    this.blobs = new S3BlobStore(options.resources.bucket);
    const warn = options.onWarning;
    this.ledger = new DynamoLedger(options.resources.table, undefined, {
      clock: this.clock,
      ...(options.streamPollIntervalMs !== undefined ? { pollIntervalMs: options.streamPollIntervalMs } : {}),
      ...(warn ? { onStreamError: (err: unknown) => warn(`ledger stream: ${(err as Error)?.message ?? String(err)}`) } : {}),
    });
  }

  /** A property, so it can be handed around unbound. */
  readonly locate = (key: string): string => `s3://${this.options.resources.bucket}/${key}`;

  /**
   * Submitting a build that exists already, or resuming one, picks up what is unfinished, like a redrive: the groves
   * neither landed nor given up on are queued again (a grove still in flight may then train twice, which lands once:
   * the ledger's rule), a build with every grove in that nothing aggregates has its trigger fired again, and a claim
   * older than the aggregator's time limit is reopened (its aggregator is dead). A finished build is left as it is.
   */
  async submit(request: BuildRequest): Promise<BuildHandle> {
    const ports = { blobs: this.blobs, ledger: this.ledger, queue: this.queue(), clock: this.clock };
    const leaseMs = this.options.aggregationLeaseMs ?? aggregationLeaseMs();
    if ("resume" in request) {
      const buildId = request.resume;
      if (!(await this.ledger.summary(buildId))) throw new InputError(`build ${buildId} not found in table ${this.options.resources.table}`);
      const manifest = await readManifest(this.blobs, buildId);
      const { requeued, copied } = await resumeBuild(buildId, ports, { aggregationLeaseMs: leaseMs });
      const record = (await this.ledger.get(buildId))!;
      const parent = manifest.extends ? { extends: manifest.extends.buildId } : {};
      return this.remember(buildHandle({ record, groves: manifest.groves, created: false, queued: requeued, ...parent, ...(copied ? { copied } : {}) }));
    }
    if ("extend" in request) {
      const { extend: parentId, trees, expect } = request;
      if (!(await this.ledger.get(parentId))) throw new InputError(`cannot extend build ${parentId}: it is not in table ${this.options.resources.table}`);
      // The trainers, the aggregator and the stream are the deployed app's, as for any build.
      const ext = await extendBuild(parentId, trees, ports, { maxGroves: DYNAMO_MAX_GROVES, ...(expect ? { expect } : {}) });
      return this.remember(buildHandle({ record: ext.record, groves: ext.manifest.groves, created: ext.created, queued: ext.queued, extends: parentId, copied: ext.copied }));
    }
    if ("refit" in request) {
      const evaluationId = request.refit;
      if (!(await this.ledger.get(evaluationId))) throw new InputError(`cannot refit build ${evaluationId}: it is not in table ${this.options.resources.table}`);
      const plan = await planRefit(evaluationId, ports);
      const refit = await startRefit(plan, ports);
      const groves = plan.manifest.groves;
      if (refit.created || TERMINAL_STATUSES.includes(refit.record.status))
        return this.remember(buildHandle({ record: refit.record, groves, created: refit.created, queued: refit.queued, refitOf: evaluationId }));
      const { requeued } = await resumeBuild(refit.buildId, ports, { aggregationLeaseMs: leaseMs });
      return this.remember(buildHandle({ record: (await this.ledger.get(refit.buildId)) ?? refit.record, groves, created: false, queued: requeued, refitOf: evaluationId }));
    }
    const spec = parseBuildSpec(request.spec);
    // A path or s3:// URL read here is CSV bytes; the CLI hands over an opened table (any format, streamed).
    const input = typeof request.data === "string" ? await this.read(request.data) : request.data;
    const prepared = await prepareBuildData(spec, input, this.blobs, { clock: this.clock });
    const submission = await submitBuild(spec, ports, prepared);
    const { plan, created } = submission;
    if (created || TERMINAL_STATUSES.includes(submission.record.status))
      return this.remember(buildHandle({ record: submission.record, groves: plan.groves, created, queued: created ? plan.groves.map((g) => g.grove) : [], prepared }));
    const { requeued } = await resumeBuild(submission.buildId, ports, { aggregationLeaseMs: leaseMs });
    const record = (await this.ledger.get(submission.buildId)) ?? submission.record;
    return this.remember(buildHandle({ record, groves: plan.groves, created: false, queued: requeued, prepared }));
  }

  async tune(spec: StudySpec, data: TableSource | Uint8Array): Promise<StudyHandle> {
    const ports = { blobs: this.blobs, ledger: this.ledger, queue: this.queue(), clock: this.clock };
    // The scoring against the task and the limits are checked before the pack is uploaded.
    const prepared = await prepareBuildData(spec.base, data, this.blobs, {
      clock: this.clock,
      check: (pack) => void planStudy(parseStudySpec(spec, pack.target.task), pack),
    });
    const plan = planStudy(parseStudySpec(spec, prepared.pack.target.task), prepared.pack);
    const existing = await this.ledger.summary(plan.studyId);
    let created = false;
    let submitted = 0;
    if (existing && !TERMINAL_STATUSES.includes(existing.status)) {
      const r = await resumeStudy(plan.studyId, ports, { aggregationLeaseMs: this.options.aggregationLeaseMs ?? aggregationLeaseMs() });
      submitted = r.submitted.length;
    } else if (!existing) {
      const s = await submitStudy(spec, ports, prepared);
      created = s.created;
      submitted = s.submitted.length;
    }
    const p = prepared.pack;
    return {
      studyId: plan.studyId,
      created,
      status: (await this.ledger.summary(plan.studyId))?.status ?? "PENDING",
      candidates: plan.candidates.length,
      builds: plan.members.length,
      groves: plan.groves,
      submitted,
      pack: { packKey: prepared.packKey, reused: prepared.reused, nRows: p.nRows, nFeatures: p.nFeatures, bytes: p.bytes.length },
    };
  }

  async partitions(spec: BuildSpec, options: PartitionRunOptions, prepared: PreparedPartitions): Promise<PartitionRunHandle> {
    const plan = planPartitionRun(spec, options, prepared, this.clock.now());
    return this.startPartitions(plan, (ports) => submitPartitionedRun(spec, options, ports, prepared));
  }

  async tunePartitions(study: StudySpec, options: PartitionRunOptions, mode: PartitionTuningMode, prepared: PreparedPartitions): Promise<PartitionRunHandle> {
    const checked = parseStudySpec(study, prepared.task);
    const plan = planPartitionTuning(checked, options, mode, prepared, this.clock.now());
    return this.startPartitions(plan, (ports) => submitPartitionTuning(checked, options, mode, ports, prepared));
  }

  /** Submits a planned run, or picks an unfinished one (a tuned run at its final stage too) up. */
  private async startPartitions(plan: PartitionRunManifest, submit: (ports: { blobs: S3BlobStore; ledger: DynamoLedger; queue: SqsTaskQueue; clock: Clock }) => Promise<{ created: boolean; submitted: string[] }>): Promise<PartitionRunHandle> {
    const ports = { blobs: this.blobs, ledger: this.ledger, queue: this.queue(), clock: this.clock };
    const existing = (await studyHead(this.ledger, plan.runId))?.summary;
    let created = false;
    let submitted = 0;
    if (existing && !TERMINAL_STATUSES.includes(existing.status)) {
      const r = await resumePartitionedRun(plan.runId, ports, { aggregationLeaseMs: this.options.aggregationLeaseMs ?? aggregationLeaseMs() });
      submitted = r.submitted.length;
    } else if (!existing) {
      const s = await submit(ports);
      created = s.created;
      submitted = s.submitted.length;
    }
    return {
      runId: plan.runId,
      created,
      status: (await this.ledger.summary(plan.runId))?.status ?? "PENDING",
      builds: plan.members.length,
      groves: plan.groves,
      skipped: plan.skipped.length,
      submitted,
    };
  }

  private remember(handle: BuildHandle): BuildHandle {
    this.trees.set(handle.buildId, handle.trees);
    return handle;
  }

  follow(buildId?: string, options: FollowOptions = {}): AsyncIterable<BuildEvent> {
    const ports = { blobs: this.blobs, ledger: this.ledger };
    const known = { ...options, trees: (id: string) => this.trees.get(id) };
    const warn = this.options.onWarning;
    const onError = warn ? { onError: (err: unknown, id: string) => warn(`progress of ${id}: ${(err as Error)?.message ?? String(err)}`) } : {};
    if (buildId === undefined || this.options.progress === "stream") return followChanges(ports, buildId, { ...known, ...onError });
    return pollBuild(ports, buildId, { ...known, intervalMs: this.options.pollIntervalMs ?? 1000 });
  }

  status(buildId: string): Promise<BuildView | undefined> {
    return readBuildView(this, buildId);
  }

  async close(): Promise<void> {
    await this.ledger.close();
  }

  private queue(): SqsTaskQueue {
    const url = this.options.resources.queueUrl;
    if (!url) throw new InternalError("this AWS runtime was opened without the grove queue; it can follow builds but not submit them");
    return new SqsTaskQueue(url);
  }

  /** A CSV at s3://bucket/key (any bucket the caller may read) or a local path. */
  private async read(location: string): Promise<Uint8Array> {
    const s3 = parseS3Url(location);
    if (!s3) return new Uint8Array(await readFile(location));
    const bytes = await new S3BlobStore(s3.bucket).get(s3.key);
    if (!bytes) throw new InputError(`data file not found: ${location}`);
    return bytes;
  }
}
