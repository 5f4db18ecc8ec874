import { errorLine } from "./errors.ts";
import { TERMINAL_STATUSES, type BuildSummary } from "./ledger.ts";
import { failedNotification } from "./notification.ts";
import { systemClock, type BlobStore, type BuildLedger, type Clock, type Notifier, type TaskQueue } from "./ports.ts";
import { resumeBuild } from "./submit.ts";
import { isStudyId } from "./keys.ts";
import { isPartitionRunId } from "./partitioned-model.ts";
import { settlePartitionedRun, submitMissingPartitionMembers } from "./partitioned-run.ts";
import { settleStudy, submitMissingMembers } from "./study.ts";

/**
 * When the build last made progress: its last landing, else its creation, or any later write (a grove given up on,
 * a claim, a re-trigger, a re-queue: all bump updatedAt).
 */
export function lastProgressAt(record: Pick<BuildSummary, "createdAt" | "updatedAt" | "lastLandedAt">): number {
  return Math.max(record.lastLandedAt ?? record.createdAt, record.updatedAt);
}

/** How the sweeper judges builds. Every limit is in milliseconds. */
export interface SweepPolicy {
  /**
   * A build with groves outstanding that made no progress for this long, while no task waited in the grove queue
   * (its tasks were lost), is re-queued; queued work is never stalled: it waits its turn.
   */
  stallMs: number;
  /** How long an aggregation claim may live: the aggregator's time limit plus a margin. An older claim is dead. */
  leaseMs: number;
  /** TRAINING with every grove in and no claim for this long: the trigger was lost. Default: leaseMs. */
  triggerGraceMs?: number;
  /** Times lost tasks are re-queued before the build fails as stalled. Default 3. */
  maxRequeues?: number;
  /** Aggregations started before a build whose aggregator keeps dying fails. Default 3. */
  maxClaims?: number;
  /** Times the aggregation is asked for again (re-triggers and reopened claims) before the build fails. Default 6. */
  maxRedrives?: number;
}

/** What the sweeper knows of the grove queue: whether any task is visible, in flight or delayed there. */
export interface QueueState {
  busy: boolean;
}

export type SweepAction =
  | { action: "none"; why: string }
  /** Every grove is in, nothing claimed it: fire the trigger again. */
  | { action: "redrive"; why: string }
  /** The claim outlived its lease: its aggregator is dead; reopen that claim (an aggregation trigger). */
  | { action: "reopen"; claim: number; why: string }
  /** Groves outstanding, no progress, nothing queued: their tasks were lost; queue them again. */
  | { action: "requeue"; why: string }
  /**
   * A study with members outstanding and no landing for stallMs: land the member builds that finished (settleStudy)
   * and start those a crash left unsubmitted (submitMissingMembers).
   */
  | { action: "settle"; why: string }
  | { action: "fail"; reason: string };

const seconds = (ms: number) => `${Math.round(ms / 1000)} s`;

/**
 * The sweeper's rule for one build (its counter as it is now). A build whose groves have all landed is always
 * finished: a lost trigger is fired again and a dead claim reopened, like a redrive, and only an aggregation that
 * keeps dying or never starts fails the build, with a reason that says so. A build with groves outstanding is
 * stalled only if nothing could have made progress: no task waited in the queue, and none landed for stallMs.
 */
export function sweepDecision(s: BuildSummary, now: number, policy: SweepPolicy, queue: () => QueueState): SweepAction {
  const maxClaims = policy.maxClaims ?? 3;
  const maxRedrives = policy.maxRedrives ?? 6;
  if (TERMINAL_STATUSES.includes(s.status)) return { action: "none", why: s.status };

  if (s.status === "AGGREGATING") {
    const age = now - (s.claimedAt ?? s.updatedAt);
    if (age < policy.leaseMs) return { action: "none", why: `aggregating for ${seconds(age)}` };
    const claims = s.claims ?? 0;
    if (claims >= maxClaims || (s.redrives ?? 0) >= maxRedrives)
      return {
        action: "fail",
        reason: `aggregation did not finish: ${claims} aggregator run(s) each outlived ${seconds(policy.leaseMs)} (out of time or memory?); every grove is in (${s.landedCount} landed)`,
      };
    return { action: "reopen", claim: claims, why: `claimed ${seconds(age)} ago, past the ${seconds(policy.leaseMs)} lease` };
  }

  const idle = now - lastProgressAt(s);
  if (s.status === "TRAINING" && s.remaining === 0) {
    const grace = policy.triggerGraceMs ?? policy.leaseMs;
    if (idle < grace) return { action: "none", why: "every grove is in; the trigger is on its way" };
    if ((s.redrives ?? 0) >= maxRedrives)
      return {
        action: "fail",
        reason: `every grove is in (${s.landedCount} landed) but no aggregator claimed the build after ${s.redrives} re-triggers: is the aggregator's stream mapping enabled?`,
      };
    return { action: "redrive", why: `every grove is in and nothing claimed the build for ${seconds(idle)}` };
  }

  // PENDING, or TRAINING with groves outstanding.
  if (idle <= policy.stallMs) return { action: "none", why: `progress ${seconds(idle)} ago` };
  if (queue().busy) return { action: "none", why: `no progress for ${seconds(idle)}, but tasks wait in the grove queue: queued, not stalled` };
  const requeues = s.requeues ?? 0;
  if (requeues >= (policy.maxRequeues ?? 3))
    return {
      action: "fail",
      reason:
        `stalled: no progress for ${seconds(idle)} (limit ${seconds(policy.stallMs)}) while ${s.status}; ${s.landedCount} of ${s.total} groves landed; ` +
        `the grove queue is empty and the outstanding groves were queued again ${requeues} time(s)`,
    };
  return { action: "requeue", why: `no progress for ${seconds(idle)} and the grove queue is empty: the outstanding tasks were lost` };
}

/**
 * The sweeper's rule for a study (a record whose members are builds). Its members are builds swept on their own, so
 * a study never stalls nor is re-queued: with members outstanding and no landing for stallMs, the finished ones are
 * landed (a crash between a build's completion and its landing in the study) and the unsubmitted ones started (a crash
 * in the study's submission, or before its final build was queued); with every member in, the rules of a
 * build's aggregation apply (a lost trigger fired again, a dead claim reopened).
 */
export function studySweepDecision(s: BuildSummary, now: number, policy: SweepPolicy): SweepAction {
  if (TERMINAL_STATUSES.includes(s.status)) return { action: "none", why: s.status };
  if (s.status === "AGGREGATING" || (s.status === "TRAINING" && s.remaining === 0)) return sweepDecision(s, now, policy, () => ({ busy: true }));
  const idle = now - lastProgressAt(s);
  if (idle <= policy.stallMs) return { action: "none", why: `a member landed ${seconds(idle)} ago` };
  return { action: "settle", why: `no member landed for ${seconds(idle)}: landing the builds that finished` };
}

export interface SweepPorts {
  ledger: BuildLedger;
  notifier: Notifier;
  /** To re-queue lost groves (their tasks come from the manifest). */
  blobs: BlobStore;
  queue: TaskQueue;
  /** Read once per sweep, and only when a build needs it. */
  queueState: () => Promise<QueueState>;
  clock?: Clock;
}

export interface SweepResult {
  buildId: string;
  action: SweepAction["action"];
  /** Why (or, for a failed build, its reason). */
  detail: string;
  /** The write did not happen (another writer got there first), or the build changed meanwhile. */
  skipped?: boolean;
  /** This build could not be swept; the others were. */
  error?: string;
}

/**
 * Sweeps the given open builds (ids or listed counters; each is read again, listings go stale), each on its own:
 * an error on one build is reported in its result and the sweep goes on with the next. A build failed here is
 * notified once (ledger.fail succeeds for one writer only).
 */
export async function sweepBuilds(listed: Iterable<string | Pick<BuildSummary, "buildId">>, policy: SweepPolicy, ports: SweepPorts): Promise<SweepResult[]> {
  const clock = ports.clock ?? systemClock;
  let queueState: QueueState | undefined;
  const results: SweepResult[] = [];
  for (const item of listed) {
    const buildId = typeof item === "string" ? item : item.buildId;
    try {
      const current = await ports.ledger.summary(buildId);
      if (!current) continue;
      // The queue's state matters only for a build that looks stalled: read it then, at most once per sweep.
      const now = clock.now();
      let asked = false;
      // A study and a partitioned run are fan-ins of builds: swept as records whose members are swept on their own.
      if (isStudyId(buildId) || isPartitionRunId(buildId)) {
        results.push(await apply(buildId, studySweepDecision(current, now, policy), ports));
        continue;
      }
      let decision = sweepDecision(current, now, policy, () => {
        asked = true;
        return queueState ?? { busy: true };
      });
      if (asked && queueState === undefined) {
        queueState = await ports.queueState();
        decision = sweepDecision(current, now, policy, () => queueState!);
      }
      results.push(await apply(buildId, decision, ports));
    } catch (err) {
      results.push({ buildId, action: "none", detail: "could not be swept", error: errorLine(err) });
    }
  }
  return results;
}

async function apply(buildId: string, decision: SweepAction, ports: SweepPorts): Promise<SweepResult> {
  switch (decision.action) {
    case "none":
      return { buildId, action: "none", detail: decision.why };
    case "redrive": {
      const done = await ports.ledger.redriveAggregation(buildId);
      return { buildId, action: "redrive", detail: decision.why, ...(done ? {} : { skipped: true }) };
    }
    case "reopen": {
      const done = await ports.ledger.reopenAggregation(buildId, { claim: decision.claim });
      return { buildId, action: "reopen", detail: decision.why, ...(done ? {} : { skipped: true }) };
    }
    case "requeue": {
      // An extension's uncopied groves are trained instead (the same bytes), so the sweeper never writes groves.
      const resumed = await resumeBuild(buildId, ports, { copy: false });
      const detail = `${decision.why}; queued groves ${resumed.requeued.join(", ") || "(none)"}`;
      return { buildId, action: "requeue", detail, ...(resumed.requeued.length > 0 ? {} : { skipped: true }) };
    }
    case "settle": {
      await ports.ledger.startTraining(buildId); // a study (or run) left PENDING by a crash in its submission
      const landed = await (isPartitionRunId(buildId) ? settlePartitionedRun : settleStudy)(buildId, ports);
      // A study's or a run's members (or final build) a crash left unsubmitted are started from its manifest.
      const submitted = await (isPartitionRunId(buildId) ? submitMissingPartitionMembers : submitMissingMembers)(buildId, ports);
      const detail = `${decision.why}; landed ${landed}${submitted.length > 0 ? `; submitted ${submitted.length} member build(s) a crash left unsubmitted: ${submitted.join(", ")}` : ""}`;
      return { buildId, action: "settle", detail, ...(landed > 0 || submitted.length > 0 ? {} : { skipped: true }) };
    }
    case "fail": {
      if (!(await ports.ledger.fail(buildId, decision.reason))) return { buildId, action: "fail", detail: decision.reason, skipped: true };
      const record = await ports.ledger.get(buildId);
      if (record) await ports.notifier.publish(failedNotification(record, record.reason ?? decision.reason));
      return { buildId, action: "fail", detail: decision.reason };
    }
  }
}
