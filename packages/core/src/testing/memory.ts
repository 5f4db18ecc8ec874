import {
  buildNotFound,
  checkNewRecord,
  ledgerRules,
  recordOf,
  summaryOf,
  type BuildRecord,
  type BuildResult,
  type BuildSummary,
  type Decision,
  type GroveStats,
  type LedgerChange,
  type SettledGrove,
} from "../ledger.ts";
import type { BuildNotification } from "../notification.ts";
import { systemClock, type BlobStore, type BuildLedger, type CanopyNotification, type Clock, type Notifier, type TaskQueue } from "../ports.ts";
import type { StudyNotification } from "../study-report.ts";
import type { PartitionNotification } from "../partition-report.ts";
import { decodeGroveTask, encodeGroveTask, type GroveTask } from "../task.ts";

/** Blobs in a Map. Stores and returns copies, like a real store: callers cannot alias what is stored. */
export class MemoryBlobStore implements BlobStore {
  readonly blobs = new Map<string, { bytes: Uint8Array; contentType?: string }>();
  /** How many times each key was written, to check content addressing and idempotent retries. */
  readonly putCount = new Map<string, number>();

  async get(key: string): Promise<Uint8Array | undefined> {
    const blob = this.blobs.get(key);
    return blob && blob.bytes.slice();
  }

  async put(key: string, bytes: Uint8Array, contentType?: string): Promise<void> {
    this.blobs.set(key, { bytes: bytes.slice(), contentType });
    this.putCount.set(key, (this.putCount.get(key) ?? 0) + 1);
  }

  /** Stored only once every chunk arrived: a failure part-way leaves the key as it was. */
  async putStream(key: string, chunks: AsyncIterable<Uint8Array>, contentType?: string): Promise<void> {
    const parts: Uint8Array[] = [];
    for await (const chunk of chunks) parts.push(chunk.slice());
    await this.put(key, Buffer.concat(parts), contentType);
    this.streamed.add(key);
  }

  /** Keys written with putStream. */
  readonly streamed = new Set<string>();

  async exists(key: string): Promise<boolean> {
    return this.blobs.has(key);
  }

  keys(): string[] {
    return [...this.blobs.keys()].sort();
  }
}

/** A queue that holds encoded messages, so everything sent goes through the real codec. */
export class MemoryQueue implements TaskQueue {
  readonly messages: string[] = [];

  async send(tasks: GroveTask[]): Promise<void> {
    for (const task of tasks) this.messages.push(encodeGroveTask(task));
  }

  /** Takes every queued message, decoded. */
  drain(): GroveTask[] {
    return this.messages.splice(0).map(decodeGroveTask);
  }
}

export class MemoryNotifier implements Notifier {
  /** Builds' notifications. */
  readonly published: BuildNotification[] = [];
  /** Studies' notifications. */
  readonly studies: StudyNotification[] = [];
  /** Partitioned runs' notifications. */
  readonly partitions: PartitionNotification[] = [];

  async publish(notification: CanopyNotification): Promise<void> {
    // Round-trip through JSON like any real transport would.
    const copy = JSON.parse(JSON.stringify(notification)) as CanopyNotification;
    if ("studyId" in copy) this.studies.push(copy);
    else if ("runId" in copy) this.partitions.push(copy);
    else this.published.push(copy);
  }
}

/**
 * The reference ledger: a counter per build and a Map of its groves' entries. Each update reads, decides
 * (ledgerRules) and writes with no await in between, so concurrent async callers are serialised by the event loop.
 * The change feed is delivered synchronously after each write; a listener that throws is reported through
 * `onListenerError` and does not fail the write.
 */
export class MemoryLedger implements BuildLedger {
  private readonly counters = new Map<string, BuildSummary>();
  private readonly groves = new Map<string, Map<number, SettledGrove>>();
  private readonly listeners = new Set<(change: LedgerChange) => void>();
  private readonly clock: Clock;
  private readonly onListenerError: (err: unknown) => void;

  constructor(options: { clock?: Clock; onListenerError?: (err: unknown) => void } = {}) {
    this.clock = options.clock ?? systemClock;
    this.onListenerError = options.onListenerError ?? ((err) => console.error("ledger listener failed:", err));
  }

  async create(record: BuildRecord): Promise<boolean> {
    checkNewRecord(record);
    await Promise.resolve(); // let concurrent callers interleave between calls, as they would over a network
    if (this.counters.has(record.buildId)) return false;
    this.groves.set(record.buildId, new Map());
    this.write(undefined, { next: summaryOf(structuredClone(record)), result: true });
    return true;
  }

  async startTraining(buildId: string): Promise<boolean> {
    return this.update(buildId, (s, now) => ledgerRules.startTraining(s, now));
  }

  async landGrove(buildId: string, grove: number, stats: GroveStats) {
    return this.update(buildId, (s, now, entry) => ledgerRules.landGrove(s, entry(grove), grove, stats, now));
  }

  async failGrove(buildId: string, grove: number, error: string) {
    return this.update(buildId, (s, now, entry) => ledgerRules.failGrove(s, entry(grove), grove, error, now));
  }

  async claimAggregation(buildId: string): Promise<boolean> {
    return this.update(buildId, (s, now) => ledgerRules.claimAggregation(s, now));
  }

  async reopenAggregation(buildId: string, options: { claim?: number } = {}): Promise<boolean> {
    return this.update(buildId, (s, now) => ledgerRules.reopenAggregation(s, now, options.claim));
  }

  async redriveAggregation(buildId: string): Promise<boolean> {
    return this.update(buildId, (s, now) => ledgerRules.redriveAggregation(s, now));
  }

  async recordRequeue(buildId: string): Promise<boolean> {
    return this.update(buildId, (s, now) => ledgerRules.recordRequeue(s, now));
  }

  async complete(buildId: string, result: BuildResult): Promise<boolean> {
    return this.update(buildId, (s, now) => ledgerRules.complete(s, result, now));
  }

  async fail(buildId: string, reason: string, options: { claim?: number } = {}): Promise<boolean> {
    return this.update(buildId, (s, now) => ledgerRules.fail(s, reason, now, options.claim));
  }

  async get(buildId: string): Promise<BuildRecord | undefined> {
    await Promise.resolve();
    const counter = this.counters.get(buildId);
    return counter && structuredClone(recordOf(counter, this.groves.get(buildId)!.values()));
  }

  async summary(buildId: string): Promise<BuildSummary | undefined> {
    await Promise.resolve();
    const counter = this.counters.get(buildId);
    return counter && structuredClone(counter);
  }

  async grove(buildId: string, grove: number): Promise<SettledGrove | undefined> {
    await Promise.resolve();
    const entry = this.groves.get(buildId)?.get(grove);
    return entry && structuredClone(entry);
  }

  watch(listener: (change: LedgerChange) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  private async update<R>(
    buildId: string,
    rule: (summary: BuildSummary, now: number, entry: (grove: number) => SettledGrove | undefined) => Decision<R>,
  ): Promise<R> {
    await Promise.resolve();
    const current = this.counters.get(buildId);
    if (!current) throw buildNotFound(buildId);
    const groves = this.groves.get(buildId)!;
    const decision = rule(current, this.clock.now(), (g) => groves.get(g));
    if (decision.next) this.write(current, decision);
    return decision.result;
  }

  private write(old: BuildSummary | undefined, decision: Decision<unknown>): void {
    const next = structuredClone(decision.next!);
    this.counters.set(next.buildId, next);
    if (decision.settle) this.groves.get(next.buildId)!.set(decision.settle.grove, structuredClone(decision.settle));
    for (const listener of [...this.listeners]) {
      try {
        listener({ ...(old ? { old: structuredClone(old) } : {}), new: structuredClone(next) });
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }
}
