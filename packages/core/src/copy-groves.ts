import { Forest, FormatError, OobSums, resolveParams } from "@canopy/forest";
import { InternalError } from "./errors.ts";
import { CONTENT_TYPES, keys } from "./keys.ts";
import type { GroveStats } from "./ledger.ts";
import type { BuildManifest } from "./manifest.ts";
import { systemClock, type BlobStore, type BuildLedger, type Clock } from "./ports.ts";
import { canonicalJson, toFitParams } from "./spec.ts";
import { sha256Hex } from "./digest.ts";

/** Copies run this many at a time: each is a read, a write and a ledger landing. */
const COPY_CONCURRENCY = 4;

/**
 * Copies groves of an extension's parent into the extension and lands them, `COPY_CONCURRENCY` at a time. Each
 * grove is checked (it decodes, holds exactly its planned trees, was trained with the extension's options) and
 * stamped with the extension's parameters (n_estimators = N), so it is what training it in the extension would
 * have stored. Returns the groves landed by this call (a grove that had landed meanwhile is not landed twice).
 */
export async function copyGroves(manifest: BuildManifest, groves: number[], ports: { blobs: BlobStore; ledger: BuildLedger; clock?: Clock }): Promise<number[]> {
  const parent = manifest.extends;
  if (!parent) throw new InternalError(`build ${manifest.buildId} extends no build: it has no groves to copy`);
  const clock = ports.clock ?? systemClock;
  const queuedAt = clock.now();
  const landed: number[] = [];
  const pending = [...groves];
  const copyNext = async (): Promise<void> => {
    try {
      for (let grove = pending.shift(); grove !== undefined; grove = pending.shift()) {
        const stats = await copyGrove(manifest, parent.buildId, grove, ports.blobs, clock, queuedAt);
        if ((await ports.ledger.landGrove(manifest.buildId, grove, stats)).landed) landed.push(grove);
      }
    } catch (err) {
      pending.length = 0; // the others stop after their current copy; resume copies what did not land
      throw err;
    }
  };
  await Promise.all(Array.from({ length: Math.min(COPY_CONCURRENCY, pending.length) }, copyNext));
  return landed.sort((a, b) => a - b);
}

async function copyGrove(manifest: BuildManifest, parentId: string, grove: number, blobs: BlobStore, clock: Clock, queuedAt: number): Promise<GroveStats> {
  const startedAt = clock.now();
  const from = keys.grove(parentId, grove);
  const bytes = await blobs.get(from);
  if (!bytes) throw new InternalError(`grove ${grove} of build ${parentId} (${from}) is missing: it cannot be copied into ${manifest.buildId}`);
  const loadedAt = clock.now();
  let part: Forest;
  try {
    part = Forest.load(bytes);
  } catch (err) {
    if (err instanceof FormatError) throw new InternalError(`grove ${grove} of build ${parentId} (${from}) is unreadable: ${err.message}`);
    throw err;
  }
  const { treeStart, treeEnd } = manifest.groves[grove];
  const indices = part.trees.map((t) => t.index);
  if (indices.length !== treeEnd - treeStart || indices.some((t, i) => t !== treeStart + i))
    throw new InternalError(`grove ${grove} of build ${parentId} holds trees [${indices.join(",")}], expected ${treeStart}..${treeEnd - 1}`);
  // The parameters the extension's trainers use; the parent's trees were grown with the same but n_estimators.
  const params = resolveParams(toFitParams(manifest.spec), part.task);
  if (canonicalJson({ ...part.params, n_estimators: params.n_estimators }) !== canonicalJson(params))
    throw new InternalError(`grove ${grove} of build ${parentId} was trained with other options than build ${manifest.buildId}'s`);
  const copy = new Forest(part.task, part.featureNames, part.labelName, part.classes, params, part.trees).toBinary();
  // Out-of-bag sums do not depend on the number of trees: copied as they are (the spec, oob_score included, is the parent's).
  const oob = manifest.spec.oob_score ? await parentOob(parentId, grove, blobs) : undefined;
  const trainedAt = clock.now();
  if (oob) await blobs.put(keys.groveOob(manifest.buildId, grove), oob, CONTENT_TYPES.oob);
  await blobs.put(keys.grove(manifest.buildId, grove), copy, CONTENT_TYPES.grove);
  const storedAt = clock.now();
  return {
    trees: part.nTrees,
    nodes: part.nodeCount,
    bytes: copy.length,
    digest: sha256Hex(copy),
    queuedAt,
    startedAt,
    loadedAt,
    trainedAt,
    storedAt,
    landedAt: clock.now(),
    packCached: false,
    copied: true,
    ...(oob ? { oob: { bytes: oob.length, digest: sha256Hex(oob) } } : {}),
  };
}

async function parentOob(parentId: string, grove: number, blobs: BlobStore): Promise<Uint8Array> {
  const from = keys.groveOob(parentId, grove);
  const bytes = await blobs.get(from);
  if (!bytes) throw new InternalError(`grove ${grove} of build ${parentId} has no out-of-bag sums (${from}): they cannot be copied`);
  try {
    OobSums.load(bytes);
  } catch (err) {
    if (err instanceof FormatError) throw new InternalError(`grove ${grove} of build ${parentId}'s out-of-bag sums (${from}) are unreadable: ${err.message}`);
    throw err;
  }
  return bytes;
}
