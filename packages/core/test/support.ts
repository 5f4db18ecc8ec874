import { readFileSync } from "node:fs";
import { aggregate, type AggregateOutcome, type AggregatePorts } from "../src/aggregate.ts";
import { isAggregationTrigger } from "../src/ledger.ts";
import { isStudyId } from "../src/keys.ts";
import { isPartitionRunId } from "../src/partitioned-model.ts";
import { aggregatePartitionedRun } from "../src/partitioned-run.ts";
import { aggregateStudy } from "../src/study.ts";
import { trainGrove } from "../src/train-grove.ts";
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

/**
 * Memory ports where every trigger (a build's, a study's, a partitioned run's) runs its aggregator `deliveries`
 * times; drain() trains every queued task (`copies` times each, in reverse with `reverse`) and runs the aggregations,
 * until nothing is left.
 */
export function fanInPipeline(deliveries = 1) {
  const clock = tickingClock();
  const blobs = new MemoryBlobStore();
  const ledger = new MemoryLedger({ clock });
  const queue = new MemoryQueue();
  const notifier = new MemoryNotifier();
  const work: Promise<unknown>[] = [];
  ledger.watch((change) => {
    if (!isAggregationTrigger(change)) return;
    const id = change.new.buildId;
    const ports = { blobs, ledger, notifier, queue, clock };
    for (let i = 0; i < deliveries; i++)
      work.push(isPartitionRunId(id) ? aggregatePartitionedRun(id, ports) : isStudyId(id) ? aggregateStudy(id, ports) : aggregate(id, { blobs, ledger, notifier, clock }));
  });
  const drain = async (copies = 1, reverse = false) => {
    for (;;) {
      const tasks = queue.drain();
      if (reverse) tasks.reverse();
      if (tasks.length === 0 && work.length === 0) return;
      for (const t of tasks) for (let c = 0; c < copies; c++) await trainGrove(t, { blobs, ledger });
      while (work.length > 0) await work.shift();
    }
  };
  return { clock, blobs, ledger, queue, notifier, drain, ports: { blobs, ledger, queue, clock } };
}
