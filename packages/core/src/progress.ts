import { TERMINAL_STATUSES, type BuildSummary } from "./ledger.ts";
import type { GroveProgress, ProgressEvent, SettledGrove } from "./runtime.ts";

/** Trees in the groves that landed. */
export function treesLanded(record: Pick<BuildSummary, "treesLanded">): number {
  return record.treesLanded;
}

/** Trees in the groves that landed as copies (an extension's, from its parent): landed, but not trained. */
function treesCopied(record: Pick<BuildSummary, "treesCopied">): number {
  return record.treesCopied ?? 0;
}

/** A build's counts from its ledger counter; without a known total, the trees landed stand for it. */
export function groveProgress(record: BuildSummary, treesTotal: number | undefined, elapsedMs: number): GroveProgress {
  const treesDone = treesLanded(record);
  const copied = treesCopied(record);
  return {
    buildId: record.buildId,
    landed: record.landedCount,
    failed: record.failedCount,
    total: record.total,
    treesDone,
    treesTotal: treesTotal ?? treesDone,
    ...(copied > 0 ? { treesCopied: copied } : {}),
    elapsedMs,
  };
}

const settledOf = (r: BuildSummary) => r.landedCount + r.failedCount;

/**
 * The one place progress is computed: successive snapshots of one build's ledger counter in, progress events out.
 * Snapshots may come from a change feed (the embedded ledger, a DynamoDB stream: one write each) or from polling
 * (several groves may settle between two reads); repeated or stale ones (fewer groves settled than already
 * reported) give nothing, so a feed and a first read may overlap.
 *
 * - The first TRAINING (or later) snapshot gives the `training` stage and the counts so far; PENDING gives nothing.
 * - Each snapshot with more groves settled gives one `progress` event, naming the grove when exactly one settled.
 * - AGGREGATING gives the `aggregating` stage once, and so does COMPLETED if no snapshot showed it (a poll can
 *   miss it; a completed build did aggregate); COMPLETED or FAILED gives `done`, after which it is `ended`.
 */
export class ProgressTracker {
  private last?: BuildSummary;
  private started = false;
  /** Seen training (not found finished). */
  private training = false;
  private aggregating = false;
  private finished = false;

  /** `origin`: the epoch ms elapsed times count from (the submission, or the record's creation). */
  constructor(
    readonly buildId: string,
    private readonly treesTotal: number | undefined,
    private readonly origin: number,
  ) {}

  get ended(): boolean {
    return this.finished;
  }

  /** Events for a new snapshot; `now` is when it was true (the runtime's clock, or the record's updatedAt). */
  observe(record: BuildSummary, now: number): ProgressEvent[] {
    if (this.finished || record.buildId !== this.buildId) return [];
    const elapsedMs = now - this.origin;
    const terminal = TERMINAL_STATUSES.includes(record.status);
    const events: ProgressEvent[] = [];
    if (!this.started) {
      if (record.status === "PENDING") return [];
      this.started = true;
      // A build found finished shows no training: only that it is done.
      if (!terminal) {
        this.training = true;
        events.push({ type: "stage", stage: "training", buildId: this.buildId, elapsedMs });
        events.push({ type: "progress", ...groveProgress(record, this.treesTotal, elapsedMs) });
      }
      this.last = record;
    } else if (this.last && settledOf(record) > settledOf(this.last)) {
      const grove = settledGrove(this.last, record);
      events.push({ type: "progress", ...groveProgress(record, this.treesTotal, elapsedMs), ...(grove ? { grove } : {}) });
      this.last = record;
    }
    if ((record.status === "AGGREGATING" || (record.status === "COMPLETED" && this.training)) && !this.aggregating) {
      this.aggregating = true;
      events.push({ type: "stage", stage: "aggregating", buildId: this.buildId, elapsedMs });
    }
    if (terminal) {
      this.finished = true;
      events.push({ type: "stage", stage: "done", buildId: this.buildId, elapsedMs });
    }
    return events;
  }
}

/** The one grove that settled between two snapshots (the counter names the last), or undefined when none or several did. */
function settledGrove(before: BuildSummary, after: BuildSummary): SettledGrove | undefined {
  return settledOf(after) - settledOf(before) === 1 ? after.lastSettled : undefined;
}
