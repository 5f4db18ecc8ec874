import { buildNotFound, ledgerRules, type BuildRecord, type BuildResult, type Decision, type GroveStats, type LedgerChange } from "../ledger.ts";
import type { BuildNotification } from "../notification.ts";
import { systemClock, type BlobStore, type BuildLedger, type Clock, type Notifier, type TaskQueue } from "../ports.ts";
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
  readonly published: BuildNotification[] = [];

  async publish(notification: BuildNotification): Promise<void> {
    // Round-trip through JSON like any real transport would.
    this.published.push(JSON.parse(JSON.stringify(notification)) as BuildNotification);
  }
}

/**
 * The reference ledger. Each update reads, decides (ledgerRules) and writes with no await in between, so
 * concurrent async callers are serialised by the event loop. The change feed is delivered synchronously after
 * each write; a listener that throws is reported through `onListenerError` and does not fail the write.
 */
export class MemoryLedger implements BuildLedger {
  private readonly records = new Map<string, BuildRecord>();
  private readonly listeners = new Set<(change: LedgerChange) => void>();
  private readonly clock: Clock;
  private readonly onListenerError: (err: unknown) => void;

  constructor(options: { clock?: Clock; onListenerError?: (err: unknown) => void } = {}) {
    this.clock = options.clock ?? systemClock;
    this.onListenerError = options.onListenerError ?? ((err) => console.error("ledger listener failed:", err));
  }

  async create(record: BuildRecord): Promise<boolean> {
    await Promise.resolve(); // let concurrent callers interleave between calls, as they would over a network
    if (this.records.has(record.buildId)) return false;
    this.write(undefined, structuredClone(record));
    return true;
  }

  async startTraining(buildId: string): Promise<boolean> {
    return this.update(buildId, (r, now) => ledgerRules.startTraining(r, now));
  }

  async landGrove(buildId: string, grove: number, stats: GroveStats) {
    return this.update(buildId, (r, now) => ledgerRules.landGrove(r, grove, stats, now));
  }

  async failGrove(buildId: string, grove: number, error: string) {
    return this.update(buildId, (r, now) => ledgerRules.failGrove(r, grove, error, now));
  }

  async claimAggregation(buildId: string): Promise<boolean> {
    return this.update(buildId, (r, now) => ledgerRules.claimAggregation(r, now));
  }

  async reopenAggregation(buildId: string): Promise<boolean> {
    return this.update(buildId, (r, now) => ledgerRules.reopenAggregation(r, now));
  }

  async complete(buildId: string, result: BuildResult): Promise<boolean> {
    return this.update(buildId, (r, now) => ledgerRules.complete(r, result, now));
  }

  async fail(buildId: string, reason: string): Promise<boolean> {
    return this.update(buildId, (r, now) => ledgerRules.fail(r, reason, now));
  }

  async get(buildId: string): Promise<BuildRecord | undefined> {
    await Promise.resolve();
    const record = this.records.get(buildId);
    return record && structuredClone(record);
  }

  watch(listener: (change: LedgerChange) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  private async update<R>(buildId: string, rule: (record: BuildRecord, now: number) => Decision<R>): Promise<R> {
    await Promise.resolve();
    const current = this.records.get(buildId);
    if (!current) throw buildNotFound(buildId);
    const decision = rule(current, this.clock.now());
    if (decision.next) this.write(current, structuredClone(decision.next));
    return decision.result;
  }

  private write(old: BuildRecord | undefined, next: BuildRecord): void {
    this.records.set(next.buildId, next);
    for (const listener of [...this.listeners]) {
      try {
        listener({ old: old && structuredClone(old), new: structuredClone(next) });
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }
}
