import { readFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import {
  aggregate,
  buildIdFor,
  decodeGroveTask,
  errorLine,
  failGroveTask,
  isAggregationTrigger,
  PackCache,
  parseBuildSpec,
  prepareDataset,
  readManifest,
  resumeBuild,
  submitBuild,
  systemClock,
  TERMINAL_STATUSES,
  type BuildNotification,
  type BuildRecord,
  type BuildReport,
  type BuildSpec,
  type Clock,
  type GroveStats,
  type GroveTask,
  type LedgerChange,
  type Notifier,
} from "@canopy/core";
import { CanopyError, decodePack } from "@canopy/forest";
import { DiskBlobStore } from "./blob-store.ts";
import { DiskLedger } from "./disk-ledger.ts";
import { formatNotification } from "./format.ts";
import { GrovePool, TrainerTaskError } from "./pool.ts";
import { LocalQueue, type QueueMessage } from "./queue.ts";

export type Stage = "preparing" | "training" | "aggregating" | "done";

export type ProgressEvent =
  /** `buildId` is absent while preparing: the id depends on the prepared data. */
  | { type: "stage"; stage: Stage; buildId?: string; elapsedMs: number }
  /**
   * Counts for a build: once when training starts (a resumed build starts above 0), then after each grove
   * that lands or is given up on, with that grove's stats (timings, bytes) or error.
   */
  | (GroveProgress & {
      type: "progress";
      grove?: { grove: number; outcome: "landed"; stats: GroveStats } | { grove: number; outcome: "failed"; error: string };
    });

/** A build's counts, as a progress display needs them (also derived from a ledger record by the CLI). */
export interface GroveProgress {
  buildId: string;
  landed: number;
  failed: number;
  total: number;
  treesDone: number;
  treesTotal: number;
  elapsedMs: number;
}

export interface LocalRuntimeOptions {
  /** Where blobs and the ledger live. Default `.canopy` in the current directory. */
  root?: string;
  /** Trainer threads. Default: the machine's available parallelism. */
  workers?: number;
  /** Deliveries of a failing grove task before it is dead-lettered (the grove given up on). Default 3. */
  maxReceives?: number;
  /** Also POST each notification (JSON) here; a failed POST is a warning, not a failed build. */
  notifyUrl?: string;
  onProgress?: (event: ProgressEvent) => void;
  /** Receives each build notification instead of the default one line on stderr. */
  onNotify?: (notification: BuildNotification) => void;
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

export type BuildOutcome =
  | (OutcomeBase & { status: "COMPLETED"; report: BuildReport; modelKey: string; modelPath: string })
  | (OutcomeBase & { status: "FAILED"; reason: string });

export interface LocalRuntime {
  readonly root: string;
  readonly blobs: DiskBlobStore;
  readonly ledger: DiskLedger;
  /**
   * Prepares the CSV (bytes, or a path; default `spec.dataset`), submits the build and resolves when it ends,
   * COMPLETED or FAILED. The same data and spec again returns the finished build, or picks an unfinished one
   * up where it stopped. Rejects with SpecError/CsvError on bad input, InterruptedError if closed meanwhile.
   */
  train(spec: BuildSpec | Record<string, unknown>, data?: Uint8Array | string): Promise<BuildOutcome>;
  /** Re-queues only the groves of `buildId` that have not landed, and waits for the build to end. */
  resume(buildId: string): Promise<BuildOutcome>;
  /** Stops taking tasks and stops the trainers; builds still running reject with InterruptedError. */
  close(): Promise<void>;
}

/** A build still running when its runtime was closed; `resume(buildId)` picks it up. */
export class InterruptedError extends CanopyError {
  constructor(readonly buildId: string) {
    super(`build ${buildId} was interrupted; resume it to finish the groves that have not landed`);
  }
}

/**
 * The compiled trainer thread (src/worker.ts): beside this code when it is itself compiled (the CLI bundles both),
 * in the package's dist/ when it runs from sources (`npm run build` makes it; vitest and the bench build first).
 */
const TRAINER_THREAD = new URL(import.meta.url.endsWith(".ts") ? "../dist/worker.js" : "./worker.js", import.meta.url);

export function createLocalRuntime(options: LocalRuntimeOptions = {}): LocalRuntime {
  return new Runtime(options);
}

interface Tracker {
  buildId: string;
  startedAt: number;
  treesTotal: number;
  promise: Promise<BuildNotification>;
  finish: (notification: BuildNotification) => void;
  abort: (err: Error) => void;
}

class Runtime implements LocalRuntime {
  readonly root: string;
  readonly blobs: DiskBlobStore;
  readonly ledger: DiskLedger;
  private readonly queue: LocalQueue;
  private readonly pool: GrovePool;
  private readonly clock: Clock;
  private readonly packs = new PackCache(4);
  private readonly notifier: Notifier;
  private readonly trackers = new Map<string, Tracker>();
  /** Aggregations and dead-letterings under way: close() lets them finish so no build is left half-moved. */
  private readonly background = new Set<Promise<unknown>>();
  private readonly unsubscribe: (() => void)[] = [];
  private closed = false;

  constructor(private readonly options: LocalRuntimeOptions) {
    this.root = resolve(options.root ?? ".canopy");
    const fsync = options.fsync ?? true;
    this.clock = options.clock ?? systemClock;
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
    this.notifier = { publish: (n) => this.publish(n) };
    this.unsubscribe.push(this.ledger.watch((change) => this.onChange(change)));
    this.unsubscribe.push(this.queue.onAvailable(() => this.pump()));
  }

  async train(specInput: BuildSpec | Record<string, unknown>, data?: Uint8Array | string): Promise<BuildOutcome> {
    this.checkOpen();
    const startedAt = this.clock.now();
    const spec = parseBuildSpec(specInput);
    this.emit({ type: "stage", stage: "preparing", elapsedMs: 0 });
    const csv = data instanceof Uint8Array ? data : await readFile(data ?? spec.dataset);
    this.checkOpen();
    const prepared = await prepareDataset(csv, { ...(spec.label !== undefined ? { label: spec.label } : {}), task: spec.task, shared: true }, this.blobs, this.clock);
    this.share(prepared.pack);
    const buildId = buildIdFor(prepared.hash, spec);
    const running = this.trackers.get(buildId);
    if (running) return this.outcome(buildId, await running.promise);

    // Tracked before submitting, so no landing is missed by the progress feed.
    const tracker = this.track(buildId, startedAt, spec.n_estimators);
    try {
      const submission = await submitBuild(spec, { blobs: this.blobs, ledger: this.ledger, queue: this.queue, clock: this.clock }, prepared);
      if (!submission.created) return await this.continueBuild(tracker, submission.record);
      this.startedTraining(tracker, submission.record);
      return this.outcome(buildId, await tracker.promise);
    } finally {
      this.untrack(tracker);
    }
  }

  async resume(buildId: string): Promise<BuildOutcome> {
    this.checkOpen();
    const startedAt = this.clock.now();
    const record = await this.ledger.get(buildId);
    if (!record) throw new CanopyError(`build ${buildId} not found in ${this.root}`);
    const running = this.trackers.get(buildId);
    if (running) return this.outcome(buildId, await running.promise);
    const manifest = await readManifest(this.blobs, buildId);
    const tracker = this.track(buildId, startedAt, manifest.spec.n_estimators);
    try {
      if (!TERMINAL_STATUSES.includes(record.status)) await this.loadPack(manifest.packKey, manifest.packHash);
      return await this.continueBuild(tracker, record);
    } finally {
      this.untrack(tracker);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue.purge();
    await this.pool.close();
    // Let aggregations and dead-letterings already started reach the ledger, then settle the waiters.
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
    for (const stop of this.unsubscribe.splice(0)) stop();
    for (const tracker of this.trackers.values()) tracker.abort(new InterruptedError(tracker.buildId));
  }

  /** An existing build: finished (return it), or interrupted (re-queue what has not landed). */
  private async continueBuild(tracker: Tracker, record: BuildRecord): Promise<BuildOutcome> {
    const { buildId } = tracker;
    const finished = () => {
      this.emit({ type: "stage", stage: "done", buildId, elapsedMs: this.clock.now() - tracker.startedAt });
      return this.outcome(buildId);
    };
    if (TERMINAL_STATUSES.includes(record.status)) return finished();
    // This process owns the store, so an AGGREGATING build found on resume has lost its aggregator: aggregate again.
    if (record.status === "AGGREGATING") await this.ledger.reopenAggregation(buildId);
    const resumption = await resumeBuild(buildId, { blobs: this.blobs, ledger: this.ledger, queue: this.queue, clock: this.clock });
    if (TERMINAL_STATUSES.includes(resumption.status)) return finished();
    if (resumption.needsAggregation) this.runAggregation(buildId);
    this.startedTraining(tracker, (await this.ledger.get(buildId)) ?? record);
    return this.outcome(buildId, await tracker.promise);
  }

  private startedTraining(tracker: Tracker, record: BuildRecord): void {
    this.emit({ type: "stage", stage: "training", buildId: tracker.buildId, elapsedMs: this.clock.now() - tracker.startedAt });
    this.emit(this.progress(tracker, record));
  }

  private async outcome(buildId: string, notification?: BuildNotification): Promise<BuildOutcome> {
    const record = await this.ledger.get(buildId);
    if (!record) throw new CanopyError(`build ${buildId} vanished from the ledger`);
    const base = { buildId, record, ...(notification ? { notification } : {}) };
    if (record.status === "COMPLETED" && record.result) {
      const bytes = await this.blobs.get(record.result.reportKey);
      if (!bytes) throw new CanopyError(`build ${buildId} is COMPLETED but ${record.result.reportKey} is missing`);
      const report = JSON.parse(new TextDecoder().decode(bytes)) as BuildReport;
      const modelKey = record.result.modelKey;
      return { ...base, status: "COMPLETED", report, modelKey, modelPath: this.blobs.path(modelKey) };
    }
    if (record.status === "FAILED") return { ...base, status: "FAILED", reason: record.reason ?? "unknown reason" };
    throw new CanopyError(`build ${buildId} is ${record.status}, not finished`);
  }

  private track(buildId: string, startedAt: number, treesTotal: number): Tracker {
    let finish!: (n: BuildNotification) => void;
    let abort!: (err: Error) => void;
    const promise = new Promise<BuildNotification>((res, rej) => {
      finish = res;
      abort = rej;
    });
    promise.catch(() => undefined); // awaited by the caller; never an unhandled rejection
    const tracker: Tracker = { buildId, startedAt, treesTotal, promise, finish, abort };
    this.trackers.set(buildId, tracker);
    // close() may have run while the data was being prepared: nothing would ever settle this build here.
    if (this.closed) abort(new InterruptedError(buildId));
    return tracker;
  }

  private untrack(tracker: Tracker): void {
    if (this.trackers.get(tracker.buildId) === tracker) this.trackers.delete(tracker.buildId);
  }

  private share(pack: Parameters<GrovePool["share"]>[0]): void {
    this.pool.share(pack);
    this.packs.set(pack);
  }

  /** The pack of an earlier build, read once from the blob store into shared memory for the trainers. */
  private async loadPack(packKey: string, packHash: string): Promise<void> {
    if (this.packs.has(packHash)) return;
    const stored = await this.blobs.get(packKey);
    if (!stored) throw new CanopyError(`dataset pack ${packKey} is missing from ${this.root}`);
    const bytes = new Uint8Array(new SharedArrayBuffer(stored.length));
    bytes.set(stored);
    const pack = decodePack(bytes);
    if (pack.hash !== packHash) throw new CanopyError(`dataset pack ${packKey} has hash ${pack.hash}, expected ${packHash}`);
    this.share(pack);
  }

  /** The ledger's change feed, as a DynamoDB stream would deliver it: aggregation triggers and progress. */
  private onChange(change: LedgerChange): void {
    if (isAggregationTrigger(change)) this.runAggregation(change.new.buildId);
    const tracker = this.trackers.get(change.new.buildId);
    if (!tracker || !change.old) return;
    const { old, new: next } = change;
    if (next.landed.length > old.landed.length) {
      const grove = next.landed.find((g) => !old.landed.includes(g))!;
      this.emit(this.progress(tracker, next, { grove, outcome: "landed", stats: next.groveStats[grove] }));
    } else if (next.failed.length > old.failed.length) {
      const failure = next.failed.find((f) => !old.failed.some((o) => o.grove === f.grove))!;
      this.emit(this.progress(tracker, next, { grove: failure.grove, outcome: "failed", error: failure.error }));
    }
    if (next.status === "AGGREGATING" && old.status !== "AGGREGATING")
      this.emit({ type: "stage", stage: "aggregating", buildId: tracker.buildId, elapsedMs: this.clock.now() - tracker.startedAt });
  }

  private progress(tracker: Tracker, record: BuildRecord, grove?: Extract<ProgressEvent, { type: "progress" }>["grove"]): ProgressEvent {
    const treesDone = record.landed.reduce((sum, g) => sum + (record.groveStats[g]?.trees ?? 0), 0);
    return {
      type: "progress",
      buildId: record.buildId,
      landed: record.landed.length,
      failed: record.failed.length,
      total: record.total,
      treesDone,
      treesTotal: tracker.treesTotal,
      elapsedMs: this.clock.now() - tracker.startedAt,
      ...(grove ? { grove } : {}),
    };
  }

  private runAggregation(buildId: string): void {
    if (this.closed) return;
    this.inBackground(
      aggregate(buildId, { blobs: this.blobs, ledger: this.ledger, notifier: this.notifier, clock: this.clock, packs: this.packs }).catch((err) => {
        this.warn(`aggregation of ${buildId} failed: ${errorLine(err)}`);
        this.trackers.get(buildId)?.abort(err instanceof Error ? err : new Error(String(err)));
      }),
    );
  }

  private inBackground(work: Promise<unknown>): void {
    this.background.add(work);
    void work.finally(() => this.background.delete(work));
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
      const retryable = err instanceof TrainerTaskError ? err.retryable : true;
      if (retryable && !this.queue.exhausted(message)) {
        this.queue.release(message);
      } else {
        this.queue.ack(message);
        this.inBackground(
          failGroveTask(task, err, { ledger: this.ledger, notifier: this.notifier }).catch((e) =>
            this.warn(`could not record the failure of grove ${task.grove} of ${task.buildId}: ${errorLine(e)}`),
          ),
        );
      }
    } finally {
      this.pump();
    }
  }

  /** Terminal line (or onNotify), webhook POST, then wakes whoever waits for the build. Never throws. */
  private async publish(notification: BuildNotification): Promise<void> {
    try {
      if (this.options.onNotify) this.options.onNotify(notification);
      else process.stderr.write(`${formatNotification(notification)}\n`);
    } catch (err) {
      this.warn(`notification callback failed: ${errorLine(err)}`);
    }
    const url = this.options.notifyUrl;
    if (url) {
      try {
        const response = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(notification),
          signal: AbortSignal.timeout(10_000),
        });
        if (!response.ok) this.warn(`notification POST to ${url} answered ${response.status} ${response.statusText}`.trim());
      } catch (err) {
        this.warn(`notification POST to ${url} failed: ${errorLine(err)}`);
      }
    }
    const tracker = this.trackers.get(notification.buildId);
    if (tracker) {
      this.emit({ type: "stage", stage: "done", buildId: tracker.buildId, elapsedMs: this.clock.now() - tracker.startedAt });
      tracker.finish(notification);
    }
  }

  private emit(event: ProgressEvent): void {
    try {
      this.options.onProgress?.(event);
    } catch (err) {
      this.warn(`progress callback failed: ${errorLine(err)}`);
    }
  }

  private warn(message: string): void {
    if (this.options.onWarning) this.options.onWarning(message);
    else process.stderr.write(`canopy: warning: ${message}\n`);
  }

  private checkOpen(): void {
    if (this.closed) throw new CanopyError("the runtime is closed");
  }
}

