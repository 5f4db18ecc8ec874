import { fitForest, OobSums } from "@canopy/forest";
import { errorLine, inShort, TaskError } from "./errors.ts";
import { CONTENT_TYPES, keys } from "./keys.ts";
import type { GroveStats } from "./ledger.ts";
import type { BuildManifest } from "./manifest.ts";
import { failedNotification } from "./notification.ts";
import { PackCache } from "./pack-cache.ts";
import { buildSplit } from "./plan.ts";
import { systemClock, type BlobStore, type BuildLedger, type Clock, type Notifier } from "./ports.ts";
import { toFitParams } from "./spec.ts";
import { readManifest } from "./submit.ts";
import { settleMember } from "./study.ts";
import type { GroveTask, GroveTaskRef } from "./task.ts";
import { sha256Hex } from "./digest.ts";

export interface TrainGrovePorts {
  blobs: BlobStore;
  ledger: BuildLedger;
  clock?: Clock;
  /** Reused across calls so a warm trainer decodes each pack once. */
  packs?: PackCache;
  /** Reused across calls so a warm trainer reads each build's manifest once. */
  manifests?: ManifestCache;
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
  | { status: "landed"; buildId: string; grove: number; remaining: number; stats: GroveStats; disagreements?: string[] }
  /** Trained and stored, but the ledger had already counted this grove or the build stopped TRAINING meanwhile. */
  | { status: "not-landed"; buildId: string; grove: number; remaining: number; stats: GroveStats; disagreements?: string[] }
  /** Nothing done: the build is unknown, not TRAINING, or already has this grove. */
  | { status: "skipped"; buildId: string; grove: number; reason: string };

/** Used when the caller brings no cache: still spares repeated decodes within one process. */
const defaultPacks = new PackCache();

/**
 * Manifests by store and build id, kept across calls. A manifest is written once, before its build's record exists,
 * and never changes, so a cached one cannot be stale; the same id in another store (another root, another bucket) is
 * another build. Least recently used ones are dropped beyond `maxEntries` per store.
 */
export class ManifestCache {
  private readonly stores = new WeakMap<BlobStore, Map<string, Promise<BuildManifest>>>();

  constructor(private readonly maxEntries = 16) {}

  async load(buildId: string, blobs: BlobStore): Promise<BuildManifest> {
    let entries = this.stores.get(blobs);
    if (!entries) this.stores.set(blobs, (entries = new Map()));
    const hit = entries.get(buildId) ?? readManifest(blobs, buildId);
    entries.delete(buildId);
    entries.set(buildId, hit);
    while (entries.size > this.maxEntries) entries.delete(entries.keys().next().value as string);
    try {
      return await hit;
    } catch (err) {
      if (entries.get(buildId) === hit) entries.delete(buildId);
      throw err;
    }
  }
}

const defaultManifests = new ManifestCache();

/**
 * Where a task message says something other than its build's manifest (another pack, other parameters or trees):
 * one line per field. The manifest is what the build was submitted with, so it wins; a message is only a pointer
 * to (build, grove).
 */
export function taskDisagreements(task: GroveTaskRef, manifest: BuildManifest): string[] {
  const plan = manifest.groves[task.grove];
  const expected: Partial<Record<keyof GroveTask, unknown>> = {
    packKey: manifest.packKey,
    packHash: manifest.packHash,
    seed: manifest.spec.seed,
    testFraction: manifest.spec.test_fraction,
    treeStart: plan?.treeStart,
    treeEnd: plan?.treeEnd,
    params: toFitParams(manifest.spec),
  };
  const out: string[] = [];
  for (const [field, value] of Object.entries(expected)) {
    if (!(field in task)) continue;
    const got = task[field as keyof GroveTaskRef];
    if (JSON.stringify(got) !== JSON.stringify(value)) out.push(`${field}: the message says ${short(got)}, the manifest ${short(value)}`);
  }
  return out;
}

const short = (value: unknown) => {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
};


/**
 * Trains one grove: trees [treeStart, treeEnd) on the build's train split, stores them, lands them in the ledger
 * with their digest. The pack, parameters, split and trees come from the build's manifest (written at submit), not
 * from the message, so a stray or altered message cannot train another model into the build. Deterministic, so a
 * redelivered task rewrites identical bytes. Throws on failure; the runtime retries (see isRetryable) and finally
 * calls failGroveTask.
 */
export async function trainGrove(task: GroveTaskRef, ports: TrainGrovePorts, delivery: GroveDelivery = {}): Promise<GroveResult> {
  const clock = ports.clock ?? systemClock;
  const { buildId, grove } = task;
  const startedAt = clock.now();
  const [record, entry] = await Promise.all([ports.ledger.summary(buildId), ports.ledger.grove(buildId, grove)]);
  const skip = (reason: string): GroveResult => ({ status: "skipped", buildId, grove, reason });
  if (!record) return skip(`build ${buildId} not found`);
  if (record.status !== "TRAINING") return skip(`build is ${record.status}`);
  if (entry?.outcome === "landed") return skip(`grove ${grove} already landed`);
  if (entry?.outcome === "failed") return skip(`grove ${grove} was given up on`);

  // The trainer reads the manifest's pack, never the message's; still, a message whose packKey is not the key of its
  // packHash was altered or forged, and is refused before anything is read (issue 9.13).
  if (task.packKey !== undefined && task.packHash !== undefined && task.packKey !== keys.pack(task.packHash))
    throw new TaskError(`grove task's packKey ${inShort(task.packKey, 120)} is not the key of its packHash (${keys.pack(task.packHash)}); the pack is not read`);
  const manifest = await (ports.manifests ?? defaultManifests).load(buildId, ports.blobs);
  const plan = manifest.groves[grove];
  if (!plan || plan.grove !== grove) throw new TaskError(`builds/${buildId}/spec.json has no grove ${grove} (groves 0..${manifest.groves.length - 1})`);
  const disagreements = taskDisagreements(task, manifest);
  const { pack, cached } = await (ports.packs ?? defaultPacks).load(manifest.packHash, manifest.packKey, ports.blobs);
  const loadedAt = clock.now();

  const { train } = buildSplit(manifest.spec, pack);
  const treeIndices = Array.from({ length: plan.treeEnd - plan.treeStart }, (_, i) => plan.treeStart + i);
  // Out-of-bag sums: training rows × (4 + 8 × classes) bytes more while the grove trains.
  const oob = manifest.spec.oob_score ? OobSums.of(pack, train) : undefined;
  const forest = fitForest(pack, toFitParams(manifest.spec), { rows: train, treeIndices, ...(oob ? { oob } : {}) });
  const bytes = forest.toBinary();
  const oobBytes = oob?.toBinary();
  const trainedAt = clock.now();

  // The sums first: a landed grove's sums are in the store.
  if (oobBytes) await ports.blobs.put(keys.groveOob(buildId, grove), oobBytes, CONTENT_TYPES.oob);
  await ports.blobs.put(keys.grove(buildId, grove), bytes, CONTENT_TYPES.grove);
  const storedAt = clock.now();

  const stats: GroveStats = {
    trees: forest.nTrees,
    nodes: forest.nodeCount,
    bytes: bytes.length,
    digest: sha256Hex(bytes),
    queuedAt: task.queuedAt ?? startedAt,
    startedAt,
    loadedAt,
    trainedAt,
    storedAt,
    landedAt: clock.now(),
    packCached: cached,
    ...(ports.memoryMb !== undefined ? { memoryMb: ports.memoryMb } : {}),
    ...(delivery.worker !== undefined ? { worker: delivery.worker } : {}),
    ...(delivery.attempt !== undefined && delivery.attempt > 1 ? { attempt: delivery.attempt } : {}),
    ...(oobBytes ? { oob: { bytes: oobBytes.length, digest: sha256Hex(oobBytes) } } : {}),
  };
  const landing = await ports.ledger.landGrove(buildId, grove, stats);
  const noted = disagreements.length > 0 ? { disagreements } : {};
  return { status: landing.landed ? "landed" : "not-landed", buildId, grove, remaining: landing.remaining, stats, ...noted };
}

/**
 * Gives up on a grove after the runtime's last attempt (or at once for a non-retryable error). If that takes
 * the build over its tolerance, this caller moved it to FAILED and so publishes the one failure notification.
 * A failure that leaves remaining at 0 within tolerance fires the aggregation trigger like a landing would.
 */
export async function failGroveTask(
  task: Pick<GroveTask, "buildId" | "grove">,
  error: unknown,
  ports: { ledger: BuildLedger; notifier: Notifier; blobs?: BlobStore },
): Promise<{ recorded: boolean; buildFailed: boolean }> {
  const outcome = await ports.ledger.failGrove(task.buildId, task.grove, errorLine(error));
  if (outcome.buildFailed) {
    const record = await ports.ledger.get(task.buildId);
    if (record) await ports.notifier.publish(failedNotification(record, record.reason ?? errorLine(error)));
    if (ports.blobs) await settleMember(task.buildId, { blobs: ports.blobs, ledger: ports.ledger, notifier: ports.notifier });
  }
  return { recorded: outcome.recorded, buildFailed: outcome.buildFailed };
}
