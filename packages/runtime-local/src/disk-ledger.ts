import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import {
  buildNotFound,
  checkNewRecord,
  groveEntry,
  isBuildId,
  isLedgerId,
  isPartitionRunId,
  LedgerError,
  ledgerRules,
  recordOf,
  summaryOf,
  systemClock,
  type BuildLedger,
  type BuildRecord,
  type BuildResult,
  type BuildSummary,
  type Clock,
  type Decision,
  type GroveStats,
  type LedgerChange,
  type SettledGrove,
} from "@canopy/core";
import { isNotFound, jsonFileStems, writeFileAtomic } from "./atomic.ts";
import { LocalStoreError } from "./errors.ts";

export interface DiskLedgerOptions {
  clock?: Clock;
  /** Flush each record (and its directory) to disk before the update returns. Default true. */
  fsync?: boolean;
  /** A change-feed listener that throws is reported here; the write still counts. Default: console.error. */
  onListenerError?: (err: unknown) => void;
}

/**
 * The build ledger as one JSON file per build, `<root>/ledger/<buildId>.json` (its counter and its groves' entries).
 * Every update reads the file,
 * applies core's `ledgerRules` and writes the result atomically (temp file + rename), under a per-build async
 * mutex, so concurrent landings in this process are serialised. Nothing is cached: a new DiskLedger on the
 * same root (a resumed run) sees exactly what the previous one wrote. One process should own a root at a
 * time: the mutex does not reach across processes.
 */
export class DiskLedger implements BuildLedger {
  readonly dir: string;
  private readonly clock: Clock;
  private readonly fsync: boolean;
  private readonly onListenerError: (err: unknown) => void;
  private readonly listeners = new Set<(change: LedgerChange) => void>();
  private readonly locks = new Map<string, Promise<void>>();

  constructor(root: string, options: DiskLedgerOptions = {}) {
    this.dir = join(resolve(root), "ledger");
    this.clock = options.clock ?? systemClock;
    this.fsync = options.fsync ?? true;
    this.onListenerError = options.onListenerError ?? ((err) => console.error("ledger listener failed:", err));
  }

  async create(record: BuildRecord): Promise<boolean> {
    const file = this.file(record.buildId);
    if (!file) throw new LedgerError(`invalid build id ${JSON.stringify(record.buildId)}`);
    checkNewRecord(record);
    return this.exclusive(record.buildId, async () => {
      if (await this.read(record.buildId)) return false;
      await this.write(undefined, recordOf(summaryOf(structuredClone(record)), []));
      return true;
    });
  }

  startTraining(buildId: string): Promise<boolean> {
    return this.update(buildId, (r, now) => ledgerRules.startTraining(r, now));
  }

  landGrove(buildId: string, grove: number, stats: GroveStats) {
    return this.update(buildId, (r, now) => ledgerRules.landGrove(r, groveEntry(r, grove), grove, stats, now));
  }

  failGrove(buildId: string, grove: number, error: string) {
    return this.update(buildId, (r, now) => ledgerRules.failGrove(r, groveEntry(r, grove), grove, error, now));
  }

  claimAggregation(buildId: string): Promise<boolean> {
    return this.update(buildId, (r, now) => ledgerRules.claimAggregation(r, now));
  }

  reopenAggregation(buildId: string, options: { claim?: number } = {}): Promise<boolean> {
    return this.update(buildId, (r, now) => ledgerRules.reopenAggregation(r, now, options.claim));
  }

  redriveAggregation(buildId: string): Promise<boolean> {
    return this.update(buildId, (r, now) => ledgerRules.redriveAggregation(r, now));
  }

  recordRequeue(buildId: string): Promise<boolean> {
    return this.update(buildId, (r, now) => ledgerRules.recordRequeue(r, now));
  }

  complete(buildId: string, result: BuildResult): Promise<boolean> {
    return this.update(buildId, (r, now) => ledgerRules.complete(r, result, now));
  }

  fail(buildId: string, reason: string, options: { claim?: number } = {}): Promise<boolean> {
    return this.update(buildId, (r, now) => ledgerRules.fail(r, reason, now, options.claim));
  }

  /** Reads the file as it is now; a rename is atomic, so this never sees half a write. */
  get(buildId: string): Promise<BuildRecord | undefined> {
    return this.read(buildId);
  }

  async summary(buildId: string): Promise<BuildSummary | undefined> {
    const record = await this.read(buildId);
    return record && summaryOf(record);
  }

  async grove(buildId: string, grove: number): Promise<SettledGrove | undefined> {
    const record = await this.read(buildId);
    return record && groveEntry(record, grove);
  }

  /** Every build and partitioned run on this root (what `canopy models` lists), oldest first. */
  async list(): Promise<BuildRecord[]> {
    const ids = (await jsonFileStems(this.dir)).filter((id) => isBuildId(id) || isPartitionRunId(id));
    const records = (await Promise.all(ids.map((id) => this.read(id)))).filter((r): r is BuildRecord => r !== undefined);
    return records.sort((a, b) => a.createdAt - b.createdAt || a.buildId.localeCompare(b.buildId));
  }

  watch(listener: (change: LedgerChange) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  private file(buildId: string): string | undefined {
    return isLedgerId(buildId) ? join(this.dir, `${buildId}.json`) : undefined;
  }

  private async read(buildId: string): Promise<BuildRecord | undefined> {
    const file = this.file(buildId);
    if (!file) return undefined;
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    let record: BuildRecord;
    try {
      record = JSON.parse(text) as BuildRecord;
    } catch {
      throw new LocalStoreError(`ledger file ${file} is not valid JSON`);
    }
    return record.landedCount === undefined ? fromEarlierVersion(record) : record;
  }

  private update<R>(buildId: string, rule: (record: BuildRecord, now: number) => Decision<R>): Promise<R> {
    return this.exclusive(buildId, async () => {
      const current = await this.read(buildId);
      if (!current) throw buildNotFound(buildId);
      const decision = rule(current, this.clock.now());
      if (decision.next) {
        const groves = [...current.landed.map((g) => groveEntry(current, g)!), ...current.failed.map((f) => groveEntry(current, f.grove)!)];
        await this.write(current, recordOf(structuredClone(decision.next), decision.settle ? [...groves, structuredClone(decision.settle)] : groves));
      }
      return decision.result;
    });
  }

  private async write(old: BuildRecord | undefined, next: BuildRecord): Promise<void> {
    await writeFileAtomic(this.file(next.buildId)!, `${JSON.stringify(next, null, 2)}\n`, { fsync: this.fsync });
    // Still under the build's lock: the feed is in write order per build.
    for (const listener of [...this.listeners]) {
      try {
        listener({ ...(old ? { old: summaryOf(structuredClone(old)) } : {}), new: summaryOf(structuredClone(next)) });
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }

  /** Runs `fn` after every earlier call on the same build has settled. */
  private exclusive<T>(buildId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(buildId) ?? Promise.resolve();
    const run = previous.then(fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(buildId, tail);
    void tail.then(() => {
      if (this.locks.get(buildId) === tail) this.locks.delete(buildId);
    });
    return run;
  }
}

/** A record written before the counter kept its own counts (landedCount, failedCount, treesLanded). */
function fromEarlierVersion(record: BuildRecord): BuildRecord {
  const treesLanded = record.landed.reduce((sum, g) => sum + (record.groveStats[g]?.trees ?? 0), 0);
  return { ...record, landedCount: record.landed.length, failedCount: record.failed.length, treesLanded };
}
