import { aggregate } from "../aggregate.ts";
import { isAggregationTrigger } from "../ledger.ts";
import type { PartitionRunOptions } from "../partition-plan.ts";
import { preparePartitions } from "../partition-table.ts";
import { isPartitionRunId } from "../partitioned-model.ts";
import { aggregatePartitionedRun, submitPartitionedRun, type PartitionAggregateOutcome, type PartitionAggregatePorts } from "../partitioned-run.ts";
import type { Clock } from "../ports.ts";
import type { BuildSpec } from "../spec.ts";
import { csvTable } from "../table-source.ts";
import { trainGrove } from "../train-grove.ts";
import { MemoryBlobStore, MemoryLedger, MemoryNotifier, MemoryQueue } from "./memory.ts";

export interface PartitionedRunInMemory {
  runId: string;
  blobs: MemoryBlobStore;
  ledger: MemoryLedger;
  notifier: MemoryNotifier;
  /** What the run's aggregator returned (the claim's winner). */
  outcome: PartitionAggregateOutcome;
}

/**
 * A partitioned run made end to end on memory ports, for tests of what reads its report or page: the CSV prepared
 * into partition packs, the run submitted, every grove trained, each build aggregated and then the run (with
 * `renderReport` when given). Real packs, models and reports.
 */
export async function partitionedRunInMemory(
  csv: string,
  spec: BuildSpec,
  options: PartitionRunOptions,
  extra: { renderReport?: PartitionAggregatePorts["renderReport"]; clock?: Clock } = {},
): Promise<PartitionedRunInMemory> {
  const ledger = new MemoryLedger(extra.clock ? { clock: extra.clock } : {});
  const ports = { blobs: new MemoryBlobStore(), ledger, queue: new MemoryQueue(), notifier: new MemoryNotifier(), ...(extra.clock ? { clock: extra.clock } : {}) };
  const work: Promise<unknown>[] = [];
  let outcome: PartitionAggregateOutcome | undefined;
  ledger.watch((change) => {
    if (!isAggregationTrigger(change)) return;
    const id = change.new.buildId;
    if (!isPartitionRunId(id)) work.push(aggregate(id, ports));
    else work.push(aggregatePartitionedRun(id, { ...ports, ...(extra.renderReport ? { renderReport: extra.renderReport } : {}) }).then((o) => (outcome = o)));
  });
  const prepared = await preparePartitions(spec, options, csvTable(csv), ports.blobs);
  const { runId } = await submitPartitionedRun(spec, options, ports, prepared);
  for (;;) {
    const tasks = ports.queue.drain();
    if (tasks.length === 0 && work.length === 0) break;
    for (const t of tasks) await trainGrove(t, ports);
    while (work.length > 0) await work.shift();
  }
  if (!outcome) throw new Error(`partitioned run ${runId} was not aggregated`);
  return { runId, blobs: ports.blobs, ledger, notifier: ports.notifier, outcome };
}
