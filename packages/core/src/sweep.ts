import { TERMINAL_STATUSES, type BuildRecord } from "./ledger.ts";
import { failedNotification } from "./notification.ts";
import { systemClock, type BuildLedger, type Clock, type Notifier } from "./ports.ts";

/**
 * When the build last made progress: its last landing, else its creation. A grove given up on or the
 * aggregation claim also count (both bump updatedAt), so a build whose last groves went to the dead-letter
 * queue, or whose aggregator died after claiming, is judged from that write rather than from an old landing.
 */
export function lastProgressAt(record: BuildRecord): number {
  return Math.max(record.lastLandedAt ?? record.createdAt, record.updatedAt);
}

/** A non-terminal build that has not progressed for longer than `limitMs`. */
export function isStalled(record: BuildRecord, now: number, limitMs: number): boolean {
  if (TERMINAL_STATUSES.includes(record.status)) return false;
  return now - lastProgressAt(record) > limitMs;
}

export function stalledReason(record: BuildRecord, now: number, limitMs: number): string {
  const idle = Math.round((now - lastProgressAt(record)) / 1000);
  const landed = `${record.landed.length} of ${record.total} groves landed`;
  return `stalled: no progress for ${idle} s (limit ${Math.round(limitMs / 1000)} s) while ${record.status}; ${landed}`;
}

/**
 * Fails the stalled builds among `records` (a listing of non-terminal builds) and notifies once per build:
 * ledger.fail only succeeds for a build not yet terminal, so a sweeper racing a late landing or another
 * sweeper does not notify twice. Returns the ids it failed.
 */
export async function sweepStalledBuilds(
  records: Iterable<BuildRecord>,
  limitMs: number,
  ports: { ledger: BuildLedger; notifier: Notifier; clock?: Clock },
): Promise<string[]> {
  const clock = ports.clock ?? systemClock;
  const failed: string[] = [];
  for (const listed of records) {
    const now = clock.now();
    if (!isStalled(listed, now, limitMs)) continue;
    // The listing may be stale: decide on the current record.
    const current = await ports.ledger.get(listed.buildId);
    if (!current || !isStalled(current, now, limitMs)) continue;
    const reason = stalledReason(current, now, limitMs);
    if (!(await ports.ledger.fail(current.buildId, reason))) continue;
    const after = (await ports.ledger.get(current.buildId)) ?? { ...current, status: "FAILED" as const, reason };
    await ports.notifier.publish(failedNotification(after, reason));
    failed.push(current.buildId);
  }
  return failed;
}
