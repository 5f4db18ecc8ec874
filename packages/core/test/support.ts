import { readFileSync } from "node:fs";
import { aggregate, type AggregateOutcome, type AggregatePorts } from "../src/aggregate.ts";
import { isAggregationTrigger } from "../src/ledger.ts";
import type { Clock } from "../src/ports.ts";
import { MemoryBlobStore, MemoryLedger, MemoryNotifier, MemoryQueue } from "../src/testing/index.ts";

export function fixture(name: "iris" | "digits" | "diabetes"): Uint8Array {
  return readFileSync(new URL(`../../../test/fixtures/${name}.csv`, import.meta.url));
}

/** A clock that advances 1 ms per reading: timings are distinct and ordered without real waiting. */
export function tickingClock(start = 1_700_000_000_000): Clock {
  let t = start;
  return { now: () => t++ };
}

/**
 * Memory ports wired like a deployment: every aggregation trigger on the ledger's feed runs aggregate()
 * `deliveries` times (a stream delivers at least once).
 */
export function memoryPipeline(options: { deliveries?: number; renderReport?: AggregatePorts["renderReport"] } = {}) {
  const clock = tickingClock();
  const blobs = new MemoryBlobStore();
  const ledger = new MemoryLedger({ clock });
  const queue = new MemoryQueue();
  const notifier = new MemoryNotifier();
  const aggregations: Promise<AggregateOutcome>[] = [];
  ledger.watch((change) => {
    if (!isAggregationTrigger(change)) return;
    for (let i = 0; i < (options.deliveries ?? 1); i++) aggregations.push(aggregate(change.new.buildId, { blobs, ledger, notifier, clock, ...(options.renderReport ? { renderReport: options.renderReport } : {}) }));
  });
  return { clock, blobs, ledger, queue, notifier, aggregations };
}
