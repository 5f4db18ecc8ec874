import { availableParallelism } from "node:os";
import { dirname, resolve } from "node:path";
import {
  aggregate,
  aggregateStudy,
  isStudyId,
  isPartitionRunId,
  aggregatePartitionedRun,
  planPartitionRun,
  readPartitionRun,
  resumeMembers,
  resumePartitionedRun,
  settlePartitionedRun,
  submitPartitionedRun,
  submitPartitionTuning,
  checkPartitionTuning,
  planPartitionTuning,
  type PartitionRunManifest,
  type PartitionTuningMode,
  type PartitionNotification,
  type PartitionReport,
  type PartitionRunOptions,
  type PartitionedModel,
  parseStudySpec,
  planStudy,
  readStudyManifest,
  resumeStudy,
  roundIdFor,
  finalStageIdFor,
  settleStudy,
  studyHead,
  studyRounds,
  submitStudy,
  type CanopyNotification,
  type StudyNotification,
  type StudyReport,
  type StudySpec,
  buildHandle,
  buildIdFor,
  csvTable,
  decodeGroveTask,
  errorLine,
  EventLog,
  failGroveTask,
  InputError,
  InternalError,
  isAggregationTrigger,
  isRetryable,
  keys,
  manifestTrees,
  PackCache,
  parseBuildSpec,
  planExtension,
  planRefit,
  prepareBuildData,
  ProgressTracker,
  readBuildView,
  readManifest,
  resumeBuild,
  startExtension,
  startRefit,
  submitBuild,
  systemClock,
  TERMINAL_STATUSES,
  viewOf,
  type BuildEvent,
  type BuildHandle,
  verifiedPack,
  type BuildNotification,
  type BuildManifest,
  type BuildRecord,
  type BuildReport,
  type BuildSummary,
  type BuildRequest,
  type BuildSpec,
  type BuildView,
  type Clock,
  type ExtendRequest,
  type FollowOptions,
  type GrovePlan,
  type GroveTask,
  type LedgerChange,
  type Notifier,
  type PreparedDataset,
  type ProgressEvent,
  type Runtime,
} from "@canopy/core";
import { fileSource, openTable, packSpilledPartition, preparePartitions, type PartitionPacker, type PartitionProgress } from "@canopy/core/ingest";
import { renderReport } from "@canopy/report";
import { checkStoreRoot, DiskBlobStore } from "./blob-store.ts";
import { DiskLedger } from "./disk-ledger.ts";
import { InterruptedError, LocalStoreError } from "./errors.ts";
import { formatNotification } from "./format.ts";
import { announce } from "./notify.ts";
import { GrovePool } from "./pool.ts";
import { LocalQueue, type QueueMessage } from "./queue.ts";

export type { GroveProgress, ProgressEvent, Stage } from "@canopy/core";

export interface LocalRuntimeOptions {
  /** Where blobs and the ledger live. Default `.canopy` in the current directory. */
  root?: string;
  /** Trainer threads. Default: the machine's available parallelism. */
  workers?: number;
  /** Deliveries of a failing grove task before it is dead-lettered (the grove given up on). Default 3. */
  maxReceives?: number;
  /** Also POST each notification (JSON) here; a failed POST is a warning, not a failed build. */
  notifyUrl?: string;
  /** Every progress event of the builds this runtime runs (also readable through follow()). */
  onProgress?: (event: ProgressEvent) => void;
  /** Receives each build notification instead of the default one line on stderr. */
  onNotify?: (notification: BuildNotification) => void;
  /** Receives each study notification instead of the default one line on stderr. */
  onStudyNotify?: (notification: StudyNotification) => void;
  /** Receives each partitioned run's notification instead of the default one line on stderr. */
  onPartitionNotify?: (notification: PartitionNotification) => void;
  /** Default: one line on stderr. */
  onWarning?: (message: string) => void;
  /** Flush blobs and ledger records to disk on every write (survives power loss). Default true. */
  fsync?: boolean;
  /** The task queue; tests pass a LocalQueue subclass that duplicates deliveries. */
  queue?: LocalQueue;
  /** The trainer thread, a JavaScript module that calls serveTrainer, and data for its hooks; tests inject faults with it. */
  trainer?: { module: URL; data?: unknown };
  clock?: Clock;
}

interface OutcomeBase {
  buildId: string;
  record: BuildRecord;
  /** Published by this call; absent when the build had already finished before it (nothing was run). */
  notification?: BuildNotification;
}

/** A study's progress: member builds finished, groves settled over all of them, and a linear ETA. */
export interface StudyProgress {
  studyId: string;
  buildsDone: number;
  buildsTotal: number;
  grovesDone: number;
  grovesTotal: number;
  elapsedMs: number;
  /** Remaining groves at the rate so far; absent until a grove settled. */
  etaMs?: number;
  /** Once ranked, with a final build (refit): its groves settled. */
  final?: { buildId: string; grovesDone: number; grovesTotal: number };
}

export interface StudyOutcome {
  studyId: string;
  status: "COMPLETED" | "FAILED";
  record: BuildSummary;
  report?: StudyReport;
  reason?: string;
  /** Published by this call; absent when the study had ended before it. */
  notification?: StudyNotification;
}

/** A partitioned run's progress: partition builds finished, groves settled over all of them, and a linear ETA. */
export interface PartitionRunProgress {
  runId: string;
  partitionsDone: number;
  partitionsTotal: number;
  grovesDone: number;
  grovesTotal: number;
  elapsedMs: number;
  etaMs?: number;
}

export interface PartitionRunOutcome {
  runId: string;
  status: "COMPLETED" | "FAILED";
  record: BuildSummary;
  report?: PartitionReport;
  /** The partitioned model (partitions/<p-id>/model.json). */
  model?: PartitionedModel;
  reason?: string;
  /** Published by this call; absent when the run had ended before it. */
  notification?: PartitionNotification;
}

export interface PartitionRunCallbacks {
  onProgress?: (progress: PartitionRunProgress) => void;
  /** A tuned run (tune --partition-by): builds (tuning, then final) and groves settled, instead of onProgress. */
  onTuneProgress?: (progress: StudyProgress) => void;
  /** Reading the input and packing its partitions, before any build is queued. */
  onPrepare?: (progress: PartitionProgress) => void;
}

export type BuildOutcome =
  | (OutcomeBase & { status: "COMPLETED"; report: BuildReport; modelKey: string; modelPath: string })
  | (OutcomeBase & { status: "FAILED"; reason: string });

/**
 * The embedded runtime: core's Runtime on a directory, with trainer threads. This process owns the store, so a
 * build found unfinished was interrupted: submitting it again or resuming it picks it up where it stopped.
 */
export interface LocalRuntime extends Runtime {
  readonly root: string;
  readonly blobs: DiskBlobStore;
  readonly ledger: DiskLedger;
  /**
   * submit() and wait: prepares the CSV (bytes, or a path; default `spec.dataset`), submits the build and
   * resolves when it ends, COMPLETED or FAILED. The same data and spec again returns the finished build, or picks
   * an unfinished one up where it stopped. Rejects with SpecError/CsvError on bad input, InterruptedError if
   * closed meanwhile.
   */
  train(spec: BuildSpec | Record<string, unknown>, data?: Uint8Array | string): Promise<BuildOutcome>;
  /** submit({ resume }) and wait: re-queues only the groves of `buildId` that have not landed. */
  resume(buildId: string): Promise<BuildOutcome>;
  /**
   * Runs a study (every candidate x fold build over one pack, core's submitStudy) and resolves when it ends. The same
   * data and study spec again returns the finished study, or picks an unfinished one up where it stopped.
   */
  tune(spec: StudySpec, data?: Uint8Array | string, options?: { onProgress?: (progress: StudyProgress) => void }): Promise<StudyOutcome>;
  /** Picks an unfinished study up by id (core's resumeStudy) and waits for it. */
  resumeStudy(studyId: string, options?: { onProgress?: (progress: StudyProgress) => void }): Promise<StudyOutcome>;
  /**
   * Trains one model per value of `options.partitionBy` (core's partitioned run: the input read once, a pack per
   * partition, every partition's groves on this runtime's trainers) and resolves when the run ends. The same data,
   * spec and options again return the finished run, or pick an unfinished one up where it stopped.
   */
  trainPartitions(spec: BuildSpec, options: PartitionRunOptions, data?: Uint8Array | string, callbacks?: PartitionRunCallbacks): Promise<PartitionRunOutcome>;
  /** Picks an unfinished partitioned run up by id (core's resumePartitionedRun) and waits for it. */
  resumePartitions(runId: string, callbacks?: PartitionRunCallbacks): Promise<PartitionRunOutcome>;
  /**
   * Tunes one model per value of `options.partitionBy` (core's submitPartitionTuning: every partition's candidate x
   * fold builds in one fan-out, ranked per partition, then each partition's final build) and resolves when the run
   * ends. The same data, search and options again return the finished run, or pick an unfinished one up.
   */
  tunePartitions(spec: StudySpec, options: PartitionRunOptions, mode: PartitionTuningMode, data?: Uint8Array | string, callbacks?: PartitionRunCallbacks): Promise<PartitionRunOutcome>;
}

/** A study (or a partitioned run: the same fan-in of builds) this runtime runs: its members' progress and its outcome once it ends. */
interface StudyRun<O = StudyOutcome> {
  studyId: string;
  members: Map<string, { settled: number; groves: number }>;
  /** Its ledger records: the study's, and with successive halving each round's, with their members settled. */
  records: Map<string, number>;
  /** Member builds over every round (the plan's), when known. */
  plannedBuilds?: number;
  /** The final stage's record, and its final build once started. */
  finalStage: string;
  /** Entries of its records that are not builds (a tuned partitioned run's final stage counts its ranking). */
  rankingEntries?: number;
  final?: { buildId: string; settled: number; groves: number };
  buildsDone: number;
  startedAt: number;
  onProgress?: (progress: StudyProgress) => void;
  outcome: Promise<O>;
  finish(notification?: StudyNotification | PartitionNotification): void;
  abort(err: Error): void;
}

/**
 * The compiled trainer thread (src/worker.ts): beside this code when it is itself compiled (the CLI bundles both),
 * in the package's dist/ when it runs from sources (`npm run build` makes it; vitest and the bench build first).
 */
const TRAINER_THREAD = new URL(import.meta.url.endsWith(".ts") ? "../dist/worker.js" : "./worker.js", import.meta.url);

export function createLocalRuntime(options: LocalRuntimeOptions = {}): LocalRuntime {
  return new EmbeddedRuntime(options);
}

/** A build this runtime runs: its progress, its events for followers, and its outcome once it ends. */
interface Run {
  buildId: string;
  tracker: ProgressTracker;
  log: EventLog<BuildEvent>;
  outcome: Promise<BuildOutcome>;
  /** Ends the run, with the notification this runtime published for it (none: it had ended before). */
  finish(notification?: BuildNotification): void;
  abort(err: Error): void;
}

const isTerminal = (r: Pick<BuildSummary, "status">) => TERMINAL_STATUSES.includes(r.status);

class EmbeddedRuntime implements LocalRuntime {
  readonly root: string;
  readonly blobs: DiskBlobStore;
  readonly ledger: DiskLedger;
  private readonly queue: LocalQueue;
  private readonly pool: GrovePool;
  private readonly clock: Clock;
  /** When this runtime opened the store, which it alone owns: an aggregation claimed before then is dead (ClaimLease). */
  private readonly openedAt: number;
  private readonly packs = new PackCache(4);
  private readonly notifier: Notifier;
  private readonly runs = new Map<string, Run>();
  private readonly studies = new Map<string, StudyRun<StudyOutcome | PartitionRunOutcome>>();
  /** Followers of every build (follow() without an id): each gets the events from when it started. */
  private readonly watchers = new Set<EventLog<BuildEvent>>();
  /** Aggregations and dead-letterings under way: close() lets them finish so no build is left half-moved. */
  private readonly background = new Set<Promise<unknown>>();
  private readonly unsubscribe: (() => void)[] = [];
  private closed = false;

  constructor(private readonly options: LocalRuntimeOptions) {
    this.root = resolve(options.root ?? ".canopy");
    const fsync = options.fsync ?? true;
    this.clock = options.clock ?? systemClock;
    this.openedAt = this.clock.now();
    this.blobs = new DiskBlobStore(this.root, { fsync });
    this.ledger = new DiskLedger(this.root, {
      fsync,
      clock: this.clock,
      onListenerError: (err) => this.warn(`ledger listener failed: ${errorLine(err)}`),
    });
    this.queue = options.queue ?? new LocalQueue(options.maxReceives !== undefined ? { maxReceives: options.maxReceives } : {});
    this.pool = new GrovePool({
      size: options.workers ?? availableParallelism(),
      init: { root: this.root, fsync, ...(options.trainer?.data !== undefined ? { data: options.trainer.data } : {}) },
      ledger: this.ledger,
      module: options.trainer?.module ?? TRAINER_THREAD,
    });
    const announced = announce({
      ...(options.notifyUrl !== undefined ? { notifyUrl: options.notifyUrl } : {}),
      onNotify: (n) => {
        if ("studyId" in n) (options.onStudyNotify ?? ((s) => process.stderr.write(`${formatNotification(s)}\n`)))(n);
        else if ("runId" in n) (options.onPartitionNotify ?? ((s) => process.stderr.write(`${formatNotification(s)}\n`)))(n);
        else (options.onNotify ?? ((b) => process.stderr.write(`${formatNotification(b)}\n`)))(n);
      },
      warn: (m) => this.warn(m),
    });
    this.notifier = {
      publish: async (n: CanopyNotification) => {
        await announced(n);
        if ("studyId" in n) this.studies.get(n.studyId)?.finish(n);
        else if ("runId" in n) this.studies.get(n.runId)?.finish(n);
        else this.runs.get(n.buildId)?.finish(n);
      },
    };
    this.unsubscribe.push(this.ledger.watch((change) => this.onChange(change)));
    this.unsubscribe.push(this.queue.onAvailable(() => this.pump()));
  }

  /** A property, so it can be handed around unbound. */
  readonly locate = (key: string): string => this.blobs.path(key);

  async submit(request: BuildRequest): Promise<BuildHandle> {
    return (await this.begin(request)).handle;
  }

  async train(spec: BuildSpec | Record<string, unknown>, data?: Uint8Array | string): Promise<BuildOutcome> {
    this.checkOpen();
    const parsed = parseBuildSpec(spec);
    return (await this.begin({ spec: parsed, data: data ?? parsed.dataset })).run.outcome;
  }

  async resume(buildId: string): Promise<BuildOutcome> {
    return (await this.begin({ resume: buildId })).run.outcome;
  }

  follow(buildId?: string, options: FollowOptions = {}): AsyncIterable<BuildEvent> {
    return buildId === undefined ? this.followAll(options.signal) : this.followOne(buildId, options.signal);
  }

  status(buildId: string): Promise<BuildView | undefined> {
    return readBuildView(this, buildId);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue.purge();
    await this.pool.close();
    // Let aggregations and dead-letterings already started reach the ledger, then settle the waiters.
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
    for (const stop of this.unsubscribe.splice(0)) stop();
    for (const run of this.runs.values()) run.abort(new InterruptedError(run.buildId));
    for (const run of this.studies.values()) run.abort(new InterruptedError(run.studyId));
    for (const log of this.watchers) log.close();
  }

  async tune(spec: StudySpec, data?: Uint8Array | string, options: { onProgress?: (progress: StudyProgress) => void } = {}): Promise<StudyOutcome> {
    this.checkOpen();
    const source = data ?? spec.base.dataset;
    const input = typeof source === "string" ? await openTable(fileSource(source)) : source;
    this.checkOpen();
    await checkStoreRoot(this.root);
    // The scoring against the task and the limits are checked before the pack is stored: a refused study writes nothing.
    const prepared = await prepareBuildData(spec.base, input, this.blobs, {
      shared: true,
      clock: this.clock,
      check: (pack) => void planStudy(parseStudySpec(spec, pack.target.task), pack),
    });
    this.share(prepared.pack);
    const checked = parseStudySpec(spec, prepared.pack.target.task);
    const plan = planStudy(checked, prepared.pack);
    const existing = (await studyHead(this.ledger, plan.studyId))?.summary;
    if (existing && (!isTerminal(existing) || existing.result?.metrics?.next_round)) return this.resumeStudy(plan.studyId, options);
    const rounds = studyRounds(checked);
    const run = this.trackStudy(plan.studyId, plan.members, options.onProgress, rounds.length, (n) => this.studyOutcome(plan.studyId, n as StudyNotification | undefined));
    run.plannedBuilds = rounds.reduce((sum, r) => sum + r.candidates * checked.cv, 0);
    try {
      if (!existing) await submitStudy(checked, this.ports(), prepared);
      await this.studyStarted(run);
    } catch (err) {
      run.abort(err instanceof Error ? err : new Error(String(err)));
    }
    return run.outcome;
  }

  async resumeStudy(studyId: string, options: { onProgress?: (progress: StudyProgress) => void } = {}): Promise<StudyOutcome> {
    this.checkOpen();
    const summary = await this.ledger.summary(studyId);
    if (!summary || !isStudyId(studyId)) throw new InputError(`study ${studyId} not found in ${this.root}`);
    const manifest = await readStudyManifest(this.blobs, studyId);
    const running = this.studies.get(studyId);
    if (running) return running.outcome as Promise<StudyOutcome>;
    const run = this.trackStudy(studyId, manifest.members, options.onProgress, manifest.rounds?.length ?? 1, (n) => this.studyOutcome(studyId, n as StudyNotification | undefined));
    if (manifest.rounds) run.plannedBuilds = manifest.rounds.reduce((sum, r) => sum + r.candidates * manifest.spec.cv, 0);
    try {
      const head = (await studyHead(this.ledger, studyId))!.summary;
      if (!isTerminal(head) || head.result?.metrics?.next_round) {
        await this.loadPack(manifest.packKey, manifest.packHash);
        // This process owns the store: a claim made before it opened it is dead, as for a build.
        await resumeStudy(studyId, { ...this.ports(), packs: this.packs }, { ownedSince: this.openedAt });
      }
      await this.studyStarted(run);
    } catch (err) {
      run.abort(err instanceof Error ? err : new Error(String(err)));
    }
    return run.outcome;
  }

  async trainPartitions(spec: BuildSpec, options: PartitionRunOptions, data?: Uint8Array | string, callbacks: PartitionRunCallbacks = {}): Promise<PartitionRunOutcome> {
    this.checkOpen();
    const parsed = parseBuildSpec(spec);
    const source = data ?? parsed.dataset;
    const input = typeof source === "string" ? await openTable(fileSource(source)) : csvTable(source);
    this.checkOpen();
    await checkStoreRoot(this.root);
    // The packs are not put in shared memory: each trainer reads a partition's pack from the store when it first
    // trains one of its groves (a run's packs together may not fit in memory; each one does).
    const prepared = await preparePartitions(parsed, options, input, this.blobs, this.prepareOptions(callbacks));
    this.checkOpen();
    const manifest = planPartitionRun(parsed, options, prepared, this.clock.now());
    const existing = await this.ledger.summary(manifest.runId);
    if (existing && !isTerminal(existing)) return this.resumePartitions(manifest.runId, callbacks);
    return this.startPartitions(manifest, callbacks, existing ? undefined : () => submitPartitionedRun(parsed, options, this.ports(), prepared));
  }

  /**
   * Tracks a run (before submitting, so the progress feed misses nothing), submits it, and picks up the member builds
   * found unfinished (an interrupted train or tune of the same rows was interrupted here).
   */
  private async startPartitions(manifest: PartitionRunManifest, callbacks: PartitionRunCallbacks, submit?: () => Promise<{ submitted: string[] }>): Promise<PartitionRunOutcome> {
    const run = this.trackPartitions(manifest.runId, manifest, callbacks);
    try {
      if (submit) {
        const { submitted } = await submit();
        const found = manifest.members.map((m) => m.buildId).filter((id) => !submitted.includes(id));
        await resumeMembers(found, this.ports(), { ownedSince: this.openedAt });
      }
      await this.studyStarted(run);
    } catch (err) {
      run.abort(err instanceof Error ? err : new Error(String(err)));
    }
    return run.outcome;
  }

  async tunePartitions(spec: StudySpec, options: PartitionRunOptions, mode: PartitionTuningMode, data?: Uint8Array | string, callbacks: PartitionRunCallbacks = {}): Promise<PartitionRunOutcome> {
    this.checkOpen();
    const study = parseStudySpec(spec);
    // Halving, and a search over the limits with one partition already, are refused before any row is read.
    checkPartitionTuning(study, 1);
    const source = data ?? study.base.dataset;
    const input = typeof source === "string" ? await openTable(fileSource(source)) : csvTable(source);
    this.checkOpen();
    await checkStoreRoot(this.root);
    const prepared = await preparePartitions(study.base, options, input, this.blobs, this.prepareOptions(callbacks));
    this.checkOpen();
    const checked = parseStudySpec(spec, prepared.task);
    const manifest = planPartitionTuning(checked, options, mode, prepared, this.clock.now());
    if (await this.ledger.summary(manifest.runId)) return this.resumePartitions(manifest.runId, callbacks);
    return this.startPartitions(manifest, callbacks, () => submitPartitionTuning(checked, options, mode, this.ports(), prepared));
  }

  async resumePartitions(runId: string, callbacks: PartitionRunCallbacks = {}): Promise<PartitionRunOutcome> {
    this.checkOpen();
    const summary = isPartitionRunId(runId) ? await this.ledger.summary(runId) : undefined;
    if (!summary) throw new InputError(`partitioned run ${runId} not found in ${this.root}`);
    const running = this.studies.get(runId);
    if (running) return running.outcome as Promise<PartitionRunOutcome>;
    const manifest = await readPartitionRun(this.blobs, runId);
    const run = this.trackPartitions(runId, manifest, callbacks);
    try {
      // This process owns the store: a claim made before it opened it is dead, as for a build.
      if (!isTerminal(summary)) await resumePartitionedRun(runId, this.ports(), { ownedSince: this.openedAt });
      await this.studyStarted(run);
    } catch (err) {
      run.abort(err instanceof Error ? err : new Error(String(err)));
    }
    return run.outcome;
  }

  private trackPartitions(runId: string, manifest: Pick<PartitionRunManifest, "members" | "tuning">, callbacks: PartitionRunCallbacks): StudyRun<PartitionRunOutcome> {
    const { members, tuning } = manifest;
    if (tuning) {
      const run = this.trackStudy(runId, members, callbacks.onTuneProgress, 1, (n) => this.partitionOutcome(runId, n as PartitionNotification | undefined));
      run.plannedBuilds = members.length + (tuning.study.refit ? tuning.partitions.length : 0);
      return run;
    }
    const user = callbacks.onProgress;
    const onProgress = user
      ? (p: StudyProgress) =>
          user({
            runId,
            partitionsDone: p.buildsDone,
            partitionsTotal: p.buildsTotal,
            grovesDone: p.grovesDone,
            grovesTotal: p.grovesTotal,
            elapsedMs: p.elapsedMs,
            ...(p.etaMs !== undefined ? { etaMs: p.etaMs } : {}),
          })
      : undefined;
    return this.trackStudy(runId, members, onProgress, 1, (n) => this.partitionOutcome(runId, n as PartitionNotification | undefined));
  }

  private async partitionOutcome(runId: string, notification?: PartitionNotification): Promise<PartitionRunOutcome> {
    // A tuned run ends with its final stage (its report and model are written under this id).
    const record = (await studyHead(this.ledger, runId))?.summary;
    if (!record) throw new LocalStoreError(`partitioned run ${runId} vanished from the ledger`);
    const base = { runId, record, ...(notification ? { notification } : {}) };
    if (record.status === "COMPLETED" && record.result) {
      const read = async (key: string) => {
        const bytes = await this.blobs.get(key);
        if (!bytes) throw new LocalStoreError(`partitioned run ${runId} is COMPLETED but ${key} is missing`);
        return JSON.parse(new TextDecoder().decode(bytes));
      };
      const report = (await read(keys.partitionReport(runId))) as PartitionReport;
      // A tuned run with --no-refit ends at its rankings: no model.
      return { ...base, status: "COMPLETED", report, ...(report.modelKey ? { model: (await read(report.modelKey)) as PartitionedModel } : {}) };
    }
    if (record.status === "FAILED") return { ...base, status: "FAILED", reason: record.reason ?? "unknown reason" };
    throw new InternalError(`partitioned run ${runId} is ${record.status}, not finished`);
  }

  private ports() {
    return { blobs: this.blobs, ledger: this.ledger, queue: this.queue, clock: this.clock };
  }

  private trackStudy<O extends StudyOutcome | PartitionRunOutcome>(
    studyId: string,
    members: { buildId: string; groves: number }[],
    onProgress: ((p: StudyProgress) => void) | undefined,
    rounds: number,
    outcome: (n?: StudyNotification | PartitionNotification) => Promise<O>,
  ): StudyRun<O> {
    let finish!: (n?: StudyNotification | PartitionNotification) => void;
    let abort!: (err: Error) => void;
    const ended = new Promise<StudyNotification | PartitionNotification | undefined>((res, rej) => {
      finish = res;
      abort = rej;
    });
    const run: StudyRun<O> = {
      studyId,
      members: new Map(members.map((m) => [m.buildId, { settled: 0, groves: m.groves }])),
      records: new Map(Array.from({ length: rounds }, (_, i) => [roundIdFor(studyId, i), 0])),
      finalStage: finalStageIdFor(studyId),
      buildsDone: 0,
      startedAt: this.clock.now(),
      ...(onProgress ? { onProgress } : {}),
      outcome: ended.then(outcome),
      finish,
      abort,
    };
    run.outcome.catch(() => {});
    run.outcome.finally(() => {
      if (this.studies.get(studyId) === run) this.studies.delete(studyId);
    }).catch(() => {});
    this.studies.set(studyId, run);
    if (this.closed) abort(new InterruptedError(studyId));
    return run;
  }

  /** After submitting or resuming: the counts so far, and the end at once for a study that had ended. */
  private async studyStarted(run: StudyRun<unknown>): Promise<void> {
    for (const [buildId, m] of run.members) {
      const s = await this.ledger.summary(buildId);
      if (s) m.settled = Math.max(m.settled, s.landedCount + s.failedCount);
    }
    const head = await studyHead(this.ledger, run.studyId);
    for (let i = 0; i <= (head?.round ?? 0); i++) {
      const id = roundIdFor(run.studyId, i);
      const s = await this.ledger.summary(id);
      if (s) run.records.set(id, s.landedCount + s.failedCount);
    }
    if (head && head.id !== run.studyId && isPartitionRunId(run.studyId)) await this.trackStage(run, head.id);
    run.buildsDone = [...run.records.values()].reduce((a, b) => a + b, 0);
    if (head?.final) {
      const s = await this.ledger.summary(head.final.buildId);
      if (s) run.final = { buildId: s.buildId, settled: s.landedCount + s.failedCount, groves: s.total };
    }
    this.studyProgress(run);
    if (head && isTerminal(head.summary) && !(head.summary.status === "COMPLETED" && head.summary.result?.metrics?.next_round)) run.finish();
  }

  /** A tuned partitioned run's final stage (known once ranked): its record and its final builds are counted from here on. */
  private async trackStage(run: StudyRun<unknown>, stageId: string): Promise<void> {
    if (!run.records.has(stageId)) run.records.set(stageId, 0);
    run.rankingEntries = 1;
    const stage = await readPartitionRun(this.blobs, stageId);
    for (const m of stage.members) {
      const s = await this.ledger.summary(m.buildId);
      const settled = s ? s.landedCount + s.failedCount : 0;
      const known = run.members.get(m.buildId);
      if (known) known.settled = Math.max(known.settled, settled);
      else run.members.set(m.buildId, { settled, groves: m.groves });
    }
    const s = await this.ledger.summary(stageId);
    if (s) run.records.set(stageId, Math.max(run.records.get(stageId)!, s.landedCount + s.failedCount));
    run.buildsDone = [...run.records.values()].reduce((a, b) => a + b, 0);
  }

  private studyProgress(run: StudyRun<unknown>): void {
    if (!run.onProgress) return;
    let grovesDone = 0;
    let grovesTotal = 0;
    for (const m of run.members.values()) {
      grovesDone += m.settled;
      grovesTotal += m.groves;
    }
    const elapsedMs = this.clock.now() - run.startedAt;
    const eta = grovesDone > 0 && grovesDone < grovesTotal ? { etaMs: Math.round((elapsedMs * (grovesTotal - grovesDone)) / grovesDone) } : {};
    try {
      const final = run.final ? { final: { buildId: run.final.buildId, grovesDone: run.final.settled, grovesTotal: run.final.groves } } : {};
      run.onProgress({ studyId: run.studyId, buildsDone: Math.max(0, run.buildsDone - (run.rankingEntries ?? 0)), buildsTotal: Math.max(run.plannedBuilds ?? 0, run.members.size), grovesDone, grovesTotal, elapsedMs, ...eta, ...final });
    } catch (err) {
      this.warn(`progress callback failed: ${errorLine(err)}`);
    }
  }

  private async studyOutcome(studyId: string, notification?: StudyNotification): Promise<StudyOutcome> {
    const head = await studyHead(this.ledger, studyId);
    if (!head) throw new LocalStoreError(`study ${studyId} vanished from the ledger`);
    const record = head.summary;
    const base = { studyId, record, ...(notification ? { notification } : {}) };
    if (record.status === "COMPLETED" && record.result) {
      const key = keys.studyReport(studyId);
      const bytes = await this.blobs.get(key);
      if (!bytes) throw new LocalStoreError(`study ${studyId} is COMPLETED but ${key} is missing`);
      return { ...base, status: "COMPLETED", report: JSON.parse(new TextDecoder().decode(bytes)) as StudyReport };
    }
    if (record.status === "FAILED") return { ...base, status: "FAILED", reason: record.reason ?? "unknown reason" };
    throw new InternalError(`study ${studyId} is ${record.status}, not finished`);
  }

  private async begin(request: BuildRequest): Promise<{ handle: BuildHandle; run: Run }> {
    this.checkOpen();
    const startedAt = this.clock.now();
    if ("resume" in request) return this.beginResume(request.resume, startedAt);
    if ("extend" in request) return this.beginExtension(request, startedAt);
    if ("refit" in request) return this.beginRefit(request.refit, startedAt);
    const spec = parseBuildSpec(request.spec);
    this.emit({ type: "stage", stage: "preparing", elapsedMs: 0 });
    // A path is streamed (CSV, .csv.gz or Parquet, by content); bytes are CSV.
    const input = typeof request.data === "string" ? await openTable(fileSource(request.data)) : request.data;
    this.checkOpen();
    // A root that is a file or cannot be written: one input error naming it, before anything is prepared.
    await checkStoreRoot(this.root);
    const prepared = await prepareBuildData(spec, input, this.blobs, { shared: true, clock: this.clock });
    this.share(prepared.pack);
    const buildId = buildIdFor(prepared.hash, spec);
    const running = this.running(buildId);
    if (running) return { handle: await this.handleOf(buildId, { prepared }), run: running };

    // Tracked before submitting, so the progress feed misses no landing.
    const run = this.track(buildId, startedAt, spec.n_estimators);
    try {
      const submission = await submitBuild(spec, { blobs: this.blobs, ledger: this.ledger, queue: this.queue, clock: this.clock }, prepared);
      const { groves } = submission.plan;
      if (!submission.created) {
        const { queued } = await this.continueBuild(run, submission.record);
        return { handle: await this.handleOf(buildId, { prepared, groves, queued }), run };
      }
      this.observe(run, submission.record);
      return { handle: buildHandle({ record: submission.record, groves, created: true, queued: groves.map((g) => g.grove), prepared }), run };
    } catch (err) {
      this.drop(run, err);
      throw err;
    }
  }

  private async beginResume(buildId: string, startedAt: number): Promise<{ handle: BuildHandle; run: Run }> {
    const record = await this.ledger.get(buildId);
    if (!record) throw new InputError(`build ${buildId} not found in ${this.root}`);
    const manifest = await readManifest(this.blobs, buildId);
    const running = this.running(buildId);
    if (running) return { handle: await this.handleOf(buildId, { groves: manifest.groves }), run: running };
    const run = this.track(buildId, startedAt, manifestTrees(manifest));
    try {
      if (!isTerminal(record)) await this.loadPack(manifest.packKey, manifest.packHash);
      const { queued, copied } = await this.continueBuild(run, record);
      const parent = manifest.extends ? { extends: manifest.extends.buildId } : {};
      return { handle: await this.handleOf(buildId, { groves: manifest.groves, queued, ...parent, ...(copied ? { copied } : {}) }), run };
    } catch (err) {
      this.drop(run, err);
      throw err;
    }
  }

  /**
   * More trees for a finished build (core's extension): the parent's groves are copied, the new ones trained here.
   * The N-tree build found already is finished (ends at once) or was interrupted here (picked up where it stopped).
   */
  private async beginExtension(request: ExtendRequest, startedAt: number): Promise<{ handle: BuildHandle; run: Run }> {
    const parentId = request.extend;
    if (!(await this.ledger.get(parentId))) throw new InputError(`cannot extend build ${parentId}: it is not in ${this.root}`);
    const ports = { blobs: this.blobs, ledger: this.ledger, queue: this.queue, clock: this.clock };
    const plan = await planExtension(parentId, request.trees, ports, request.expect ? { expect: request.expect } : {});
    return this.beginDerived(plan.manifest, startedAt, { extends: parentId }, () => startExtension(plan, ports));
  }

  /**
   * The refit of a finished build (core's refit.ts): its spec with test_fraction 0, trained here on every row. Found
   * already, it is finished (ends at once) or was interrupted here (picked up where it stopped).
   */
  private async beginRefit(evaluationId: string, startedAt: number): Promise<{ handle: BuildHandle; run: Run }> {
    if (!(await this.ledger.get(evaluationId))) throw new InputError(`cannot refit build ${evaluationId}: it is not in ${this.root}`);
    const ports = { blobs: this.blobs, ledger: this.ledger, queue: this.queue, clock: this.clock };
    const plan = await planRefit(evaluationId, ports);
    return this.beginDerived(plan.manifest, startedAt, { refitOf: evaluationId }, () => startRefit(plan, ports));
  }

  /**
   * A build made from another one (an extension, a refit), planned as `manifest` and started by `start`: a run of it
   * going on here is joined; found finished, it ends at once; interrupted here, it is picked up where it stopped.
   * Tracked before starting, so the progress feed misses no landing (an extension's copies included).
   */
  private async beginDerived(
    manifest: BuildManifest,
    startedAt: number,
    link: { extends: string } | { refitOf: string },
    start: () => Promise<{ created: boolean; record: BuildRecord; queued: number[]; copied?: number[] }>,
  ): Promise<{ handle: BuildHandle; run: Run }> {
    const { buildId, groves } = manifest;
    const running = this.running(buildId);
    if (running) return { handle: await this.handleOf(buildId, { groves, ...link }), run: running };
    const run = this.track(buildId, startedAt, manifest.spec.n_estimators);
    try {
      const existing = await this.ledger.get(buildId);
      if (!existing || !isTerminal(existing)) await this.loadPack(manifest.packKey, manifest.packHash);
      const started = await start();
      if (!started.created) {
        const { queued, copied } = await this.continueBuild(run, started.record);
        return { handle: await this.handleOf(buildId, { groves, queued, ...(copied ? { copied } : {}), ...link }), run };
      }
      this.observe(run, (await this.ledger.get(buildId)) ?? started.record);
      const copied = started.copied ? { copied: started.copied } : {};
      return { handle: buildHandle({ record: started.record, groves, created: true, queued: started.queued, ...copied, ...link }), run };
    } catch (err) {
      this.drop(run, err);
      throw err;
    }
  }

  /** An existing build: finished (it ends the run at once), or interrupted (re-queue what has not landed). */
  private async continueBuild(run: Run, record: BuildSummary): Promise<{ queued: number[]; copied?: number[] }> {
    const { buildId } = run;
    if (isTerminal(record)) return this.finished(run, record);
    // A temp file under the build is a write that was killed half-way: nothing will rename it.
    const stale = await this.blobs.removeTemporaries(dirname(keys.spec(buildId)));
    if (stale.length > 0) this.warn(`removed ${stale.length} temp file(s) an interrupted run left: ${stale.slice(0, 3).join(", ")}${stale.length > 3 ? ", ..." : ""}`);
    // This process owns the store, so a build found AGGREGATING under a claim older than this runtime has lost its
    // aggregator (ownedSince): resuming reopens it, and a build with every grove in fires its trigger again; the
    // change feed aggregates either.
    const resumption = await resumeBuild(buildId, { blobs: this.blobs, ledger: this.ledger, queue: this.queue, clock: this.clock }, { ownedSince: this.openedAt });
    const current = (await this.ledger.summary(buildId)) ?? record;
    if (isTerminal(resumption)) return this.finished(run, current);
    this.observe(run, current);
    return { queued: resumption.requeued, ...(resumption.copied ? { copied: resumption.copied } : {}) };
  }

  private finished(run: Run, record: BuildSummary): { queued: number[] } {
    this.observe(run, record);
    run.finish();
    return { queued: [] };
  }

  /** The handle of a build that existed: its record as it is now. */
  private async handleOf(
    buildId: string,
    o: { prepared?: PreparedDataset; groves?: GrovePlan[]; queued?: number[]; extends?: string; copied?: number[]; refitOf?: string },
  ): Promise<BuildHandle> {
    const record = await this.ledger.get(buildId);
    if (!record) throw new LocalStoreError(`build ${buildId} vanished from the ledger`);
    const { prepared, groves, queued, ...extension } = o;
    return buildHandle({
      record,
      groves: groves ?? (await readManifest(this.blobs, buildId)).groves,
      created: false,
      queued: queued ?? [],
      ...(prepared ? { prepared } : {}),
      ...extension,
    });
  }

  /** A run of this build still going on in this runtime (an ended one is replaced by the next submission). */
  private running(buildId: string): Run | undefined {
    const run = this.runs.get(buildId);
    return run && !run.log.closed ? run : undefined;
  }

  private track(buildId: string, startedAt: number, treesTotal: number): Run {
    const log = new EventLog<BuildEvent>();
    let finish!: (n?: BuildNotification) => void;
    let abort!: (err: Error) => void;
    const ended = new Promise<BuildNotification | undefined>((res, rej) => {
      finish = res;
      abort = rej;
    });
    const outcome = ended.then(async (notification) => {
      const result = await this.outcome(buildId, notification);
      // As status() would read it (report, page), so a follower's last view and a later status agree.
      const view: BuildView = { ...(await viewOf(this.blobs, result.record)), treesTotal };
      this.append(log, { type: "end", buildId, elapsedMs: this.clock.now() - startedAt, view });
      log.close();
      return result;
    });
    // Followers see what a waiter would: the end, or the error (also marks the outcome as handled).
    outcome.catch((err: unknown) => log.fail(err));
    const run: Run = { buildId, tracker: new ProgressTracker(buildId, treesTotal, startedAt), log, outcome, finish, abort };
    this.runs.set(buildId, run);
    // close() may have run while the data was being prepared: nothing would ever settle this build here.
    if (this.closed) abort(new InterruptedError(buildId));
    return run;
  }

  private drop(run: Run, err: unknown): void {
    run.abort(err instanceof Error ? err : new Error(String(err)));
    if (this.runs.get(run.buildId) === run) this.runs.delete(run.buildId);
  }

  /** Registered at the call, not at the first read, so a build submitted right after is seen from its start. */
  private followAll(signal?: AbortSignal): AsyncIterable<BuildEvent> {
    const log = new EventLog<BuildEvent>();
    if (this.closed) log.close();
    else this.watchers.add(log);
    const watchers = this.watchers;
    return (async function* () {
      try {
        yield* log.read(signal);
      } finally {
        watchers.delete(log);
      }
    })();
  }

  private async *followOne(buildId: string, signal?: AbortSignal): AsyncGenerator<BuildEvent> {
    const run = this.runs.get(buildId);
    if (run) return yield* run.log.read(signal);
    const record = await this.ledger.get(buildId);
    if (!record) throw new InputError(`build ${buildId} not found in ${this.root}`);
    if (!isTerminal(record)) throw new InputError(`build ${buildId} is ${record.status} and not running here; resume it to finish it`);
    const view = await viewOf(this.blobs, record);
    yield* new ProgressTracker(buildId, view.treesTotal, record.createdAt).observe(record, record.updatedAt);
    yield { type: "end", buildId, elapsedMs: record.updatedAt - record.createdAt, view };
  }

  private async outcome(buildId: string, notification?: BuildNotification): Promise<BuildOutcome> {
    const record = await this.ledger.get(buildId);
    if (!record) throw new LocalStoreError(`build ${buildId} vanished from the ledger`);
    const base = { buildId, record, ...(notification ? { notification } : {}) };
    if (record.status === "COMPLETED" && record.result) {
      const bytes = await this.blobs.get(record.result.reportKey);
      if (!bytes) throw new LocalStoreError(`build ${buildId} is COMPLETED but ${record.result.reportKey} is missing`);
      const report = JSON.parse(new TextDecoder().decode(bytes)) as BuildReport;
      const modelKey = record.result.modelKey ?? keys.model(buildId);
      return { ...base, status: "COMPLETED", report, modelKey, modelPath: this.blobs.path(modelKey) };
    }
    if (record.status === "FAILED") return { ...base, status: "FAILED", reason: record.reason ?? "unknown reason" };
    throw new InternalError(`build ${buildId} is ${record.status}, not finished`);
  }

  private share(pack: Parameters<GrovePool["share"]>[0]): void {
    this.pool.share(pack);
    this.packs.set(pack);
  }

  /** The pack of an earlier build, read once from the blob store into shared memory for the trainers. */
  private async loadPack(packKey: string, packHash: string): Promise<void> {
    if (this.packs.has(packHash)) return;
    const stored = await this.blobs.get(packKey);
    if (!stored) throw new LocalStoreError(`dataset pack ${packKey} is missing from ${this.root}`);
    const bytes = new Uint8Array(new SharedArrayBuffer(stored.length));
    bytes.set(stored);
    this.share(verifiedPack(bytes, packKey, packHash));
  }

  /** The ledger's change feed, as a DynamoDB stream would deliver it: aggregation triggers and progress. */
  private onChange(change: LedgerChange): void {
    if (isAggregationTrigger(change)) {
      if (isStudyId(change.new.buildId)) this.runStudyAggregation(change.new.buildId);
      else if (isPartitionRunId(change.new.buildId)) this.runPartitionAggregation(change.new.buildId);
      else this.runAggregation(change.new.buildId);
    }
    for (const study of this.studies.values()) {
      const next = change.new.buildId === study.studyId ? change.new.result?.metrics?.next_round : undefined;
      if (typeof next === "string" && isPartitionRunId(next) && !study.records.has(next) && !this.closed) {
        study.records.set(next, 0);
        this.inBackground(this.trackStage(study, next).then(() => this.studyProgress(study), (err) => this.warn(`tracking ${next}: ${errorLine(err)}`)));
      }
      if (change.new.memberOf?.id === study.finalStage) {
        // The final build (after the ranking): its groves, apart from the members'.
        study.final = { buildId: change.new.buildId, settled: change.new.landedCount + change.new.failedCount, groves: change.new.total };
        this.studyProgress(study);
        continue;
      }
      const round = change.new.memberOf && study.records.has(change.new.memberOf.id) ? change.new.memberOf : undefined;
      if (round && !study.members.has(change.new.buildId)) study.members.set(change.new.buildId, { settled: 0, groves: change.new.total });
      const member = study.members.get(change.new.buildId);
      if (member) {
        member.settled = Math.max(member.settled, change.new.landedCount + change.new.failedCount);
        // A member shared with another study (it names that one) lands in this one here.
        if (isTerminal(change.new) && change.new.memberOf?.id !== study.studyId && !this.closed)
          this.inBackground(
            (isPartitionRunId(study.studyId) ? settlePartitionedRun : settleStudy)(study.studyId, { blobs: this.blobs, ledger: this.ledger, clock: this.clock }).catch((err) =>
              this.warn(`settling ${study.studyId}: ${errorLine(err)}`),
            ),
          );
      }
      else if (study.records.has(change.new.buildId)) {
        study.records.set(change.new.buildId, Math.max(study.records.get(change.new.buildId)!, change.new.landedCount + change.new.failedCount));
        study.buildsDone = [...study.records.values()].reduce((a, b) => a + b, 0);
      } else continue;
      this.studyProgress(study);
    }
    const run = this.running(change.new.buildId);
    if (run) this.observe(run, change.new);
  }

  /** Core's progress rules on one snapshot of a run's counter. */
  private observe(run: Run, record: BuildSummary): void {
    for (const event of run.tracker.observe(record, this.clock.now())) this.emit(event, run);
  }

  private runAggregation(buildId: string): void {
    if (this.closed) return;
    this.inBackground(
      aggregate(buildId, { blobs: this.blobs, ledger: this.ledger, notifier: this.notifier, clock: this.clock, packs: this.packs, renderReport }).then(
        (outcome) => {
          if (outcome.outcome === "completed" && outcome.reportHtmlError) this.warn(`report.html of ${buildId} was not written: ${outcome.reportHtmlError}`);
        },
        (err) => {
          this.warn(`aggregation of ${buildId} failed: ${errorLine(err)}`);
          this.runs.get(buildId)?.abort(err instanceof Error ? err : new Error(String(err)));
        },
      ),
    );
  }

  private runStudyAggregation(studyId: string): void {
    if (this.closed) return;
    this.inBackground(
      aggregateStudy(studyId, { blobs: this.blobs, ledger: this.ledger, notifier: this.notifier, queue: this.queue, clock: this.clock, renderReport }).catch((err) => {
        this.warn(`aggregation of study ${studyId} failed: ${errorLine(err)}`);
        this.studies.get(studyId)?.abort(err instanceof Error ? err : new Error(String(err)));
      }),
    );
  }

  private runPartitionAggregation(runId: string): void {
    if (this.closed) return;
    this.inBackground(
      aggregatePartitionedRun(runId, { blobs: this.blobs, ledger: this.ledger, notifier: this.notifier, queue: this.queue, clock: this.clock, renderReport }).then(
        (outcome) => {
          if (outcome.outcome === "completed" && outcome.pageError !== undefined) this.warn(`report.html of ${runId} was not written: ${outcome.pageError}`);
        },
        (err) => {
          this.warn(`aggregation of partitioned run ${runId} failed: ${errorLine(err)}`);
          this.studies.get(runId)?.abort(err instanceof Error ? err : new Error(String(err)));
        },
      ),
    );
  }

  private inBackground(work: Promise<unknown>): void {
    this.background.add(work);
    void work.finally(() => this.background.delete(work));
  }

  /**
   * How a partitioned run is prepared here: its partitions packed on the trainer threads, as many at once as there
   * are trainers (they are idle until the run's groves exist); one a trainer cannot take now (another build's groves
   * hold them all) is packed on this thread.
   */
  private prepareOptions(callbacks: PartitionRunCallbacks): Parameters<typeof preparePartitions>[4] {
    const packer: PartitionPacker = {
      concurrency: this.pool.size,
      pack: async (job) => {
        if (this.pool.free === 0) return packSpilledPartition(job, this.blobs, this.clock);
        try {
          return await this.pool.packPartition(job);
        } finally {
          // The trainer is free again: groves waiting for one go on.
          this.pump();
        }
      },
    };
    return { clock: this.clock, packer, ...(callbacks.onPrepare ? { onProgress: callbacks.onPrepare } : {}) };
  }

  /** Hands visible tasks to free trainers. */
  private pump(): void {
    while (!this.closed && this.pool.free > 0) {
      const message = this.queue.receive();
      if (!message) return;
      void this.deliver(message);
    }
  }

  /** One delivery: ack on success; on failure release it for redelivery, or dead-letter it after the last try. */
  private async deliver(message: QueueMessage): Promise<void> {
    let task: GroveTask;
    try {
      task = decodeGroveTask(message.body);
    } catch (err) {
      this.queue.ack(message);
      this.warn(`dropped a grove task that does not decode: ${errorLine(err)}`);
      return;
    }
    try {
      await this.pool.run(message.body, message.receiveCount, task.packHash);
      this.queue.ack(message);
    } catch (err) {
      if (this.closed) return; // abandoned: the ledger still counts the grove as outstanding, resume re-queues it
      // The policy the trainer decided (TrainerTaskError), or this thread's own fault (no free trainer): internal.
      if (isRetryable(err) && !this.queue.exhausted(message)) {
        this.queue.release(message);
      } else {
        this.queue.ack(message);
        this.inBackground(
          failGroveTask(task, err, { ledger: this.ledger, notifier: this.notifier, blobs: this.blobs }).catch((e) =>
            this.warn(`could not record the failure of grove ${task.grove} of ${task.buildId}: ${errorLine(e)}`),
          ),
        );
      }
    } finally {
      this.pump();
    }
  }

  private emit(event: ProgressEvent, run?: Run): void {
    if (run) this.append(run.log, event);
    else for (const log of this.watchers) log.append(event);
    try {
      this.options.onProgress?.(event);
    } catch (err) {
      this.warn(`progress callback failed: ${errorLine(err)}`);
    }
  }

  private append(log: EventLog<BuildEvent>, event: BuildEvent): void {
    log.append(event);
    for (const watcher of this.watchers) watcher.append(event);
  }

  private warn(message: string): void {
    if (this.options.onWarning) this.options.onWarning(message);
    else process.stderr.write(`canopy: warning: ${message}\n`);
  }

  private checkOpen(): void {
    if (this.closed) throw new InternalError("the runtime is closed");
  }
}
