import { fitForest } from "@canopy/forest";
import { errorLine, inShort, TaskError } from "./errors.ts";
import { CONTENT_TYPES, keys } from "./keys.ts";
import type { GroveStats } from "./ledger.ts";
import { failedNotification } from "./notification.ts";
import { PackCache } from "./pack-cache.ts";
import { splitRows } from "./plan.ts";
import { systemClock, type BlobStore, type BuildLedger, type Clock, type Notifier } from "./ports.ts";
import type { GroveTask } from "./task.ts";

export interface TrainGrovePorts {
  blobs: BlobStore;
  ledger: BuildLedger;
  clock?: Clock;
  /** Reused across calls so a warm trainer decodes each pack once. */
  packs?: PackCache;
  /** The trainer's memory size (Lambda), recorded in the grove's stats for cost accounting. */
  memoryMb?: number;
}

/** Who runs this delivery of a grove task, recorded in the grove's stats for the build's timeline. */
export interface GroveDelivery {
  /** The trainer's identity: a thread, a Lambda container. */
  worker?: string;
  /** 1 for the first delivery of the task, 2 for its first retry, ... */
  attempt?: number;
}

export type GroveResult =
  | { status: "landed"; buildId: string; grove: number; remaining: number; stats: GroveStats }
  /** Trained and stored, but the ledger had already counted this grove or the build stopped TRAINING meanwhile. */
  | { status: "not-landed"; buildId: string; grove: number; remaining: number; stats: GroveStats }
  /** Nothing done: the build is unknown, not TRAINING, or already has this grove. */
  | { status: "skipped"; buildId: string; grove: number; reason: string };

/** Used when the caller brings no cache: still spares repeated decodes within one process. */
const defaultPacks = new PackCache();

/**
 * Trains one grove: trees [treeStart, treeEnd) on the build's train split, stores them, lands them in the
 * ledger. Deterministic, so a redelivered task rewrites identical bytes. Throws on failure; the runtime retries
 * (see isRetryable) and finally calls failGroveTask.
 */
export async function trainGrove(task: GroveTask, ports: TrainGrovePorts, delivery: GroveDelivery = {}): Promise<GroveResult> {
  const clock = ports.clock ?? systemClock;
  const { buildId, grove } = task;
  const startedAt = clock.now();
  const record = await ports.ledger.get(buildId);
  const skip = (reason: string): GroveResult => ({ status: "skipped", buildId, grove, reason });
  if (!record) return skip(`build ${buildId} not found`);
  if (record.status !== "TRAINING") return skip(`build is ${record.status}`);
  if (record.landed.includes(grove)) return skip(`grove ${grove} already landed`);
  if (record.failed.some((f) => f.grove === grove)) return skip(`grove ${grove} was given up on`);

  // The pack is read by its key and checked by its hash: they must name the same pack, or a task could make a
  // trainer read any blob in the store (and report it as a damaged pack).
  if (task.packKey !== keys.pack(task.packHash))
    throw new TaskError(`grove task's packKey ${inShort(task.packKey, 120)} is not the key of its packHash (${keys.pack(task.packHash)}); the pack is not read`);
  const { pack, cached } = await (ports.packs ?? defaultPacks).load(task.packHash, task.packKey, ports.blobs);
  const loadedAt = clock.now();

  const { train } = splitRows(pack.nRows, task.testFraction, task.seed);
  const treeIndices = Array.from({ length: task.treeEnd - task.treeStart }, (_, i) => task.treeStart + i);
  const forest = fitForest(pack, task.params, { rows: train, treeIndices });
  const bytes = forest.toBinary();
  const trainedAt = clock.now();

  await ports.blobs.put(keys.grove(buildId, grove), bytes, CONTENT_TYPES.grove);
  const storedAt = clock.now();

  const stats: GroveStats = {
    trees: forest.nTrees,
    nodes: forest.nodeCount,
    bytes: bytes.length,
    queuedAt: task.queuedAt,
    startedAt,
    loadedAt,
    trainedAt,
    storedAt,
    landedAt: clock.now(),
    packCached: cached,
    ...(ports.memoryMb !== undefined ? { memoryMb: ports.memoryMb } : {}),
    ...(delivery.worker !== undefined ? { worker: delivery.worker } : {}),
    ...(delivery.attempt !== undefined && delivery.attempt > 1 ? { attempt: delivery.attempt } : {}),
  };
  const landing = await ports.ledger.landGrove(buildId, grove, stats);
  return { status: landing.landed ? "landed" : "not-landed", buildId, grove, remaining: landing.remaining, stats };
}

/**
 * Gives up on a grove after the runtime's last attempt (or at once for a non-retryable error). If that takes
 * the build over its tolerance, this caller moved it to FAILED and so publishes the one failure notification.
 * A failure that leaves remaining at 0 within tolerance fires the aggregation trigger like a landing would.
 */
export async function failGroveTask(
  task: Pick<GroveTask, "buildId" | "grove">,
  error: unknown,
  ports: { ledger: BuildLedger; notifier: Notifier },
): Promise<{ recorded: boolean; buildFailed: boolean }> {
  const outcome = await ports.ledger.failGrove(task.buildId, task.grove, errorLine(error));
  if (outcome.buildFailed) {
    const record = await ports.ledger.get(task.buildId);
    if (record) await ports.notifier.publish(failedNotification(record, record.reason ?? errorLine(error)));
  }
  return { recorded: outcome.recorded, buildFailed: outcome.buildFailed };
}
