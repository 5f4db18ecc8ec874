import { copyGroves } from "./copy-groves.ts";
import { InputError, InternalError, SpecError } from "./errors.ts";
import { CONTENT_TYPES, keys } from "./keys.ts";
import { newBuildRecord, type BuildRecord, type MemberOf } from "./ledger.ts";
import type { BuildManifest } from "./manifest.ts";
import { buildIdFor, planGroves } from "./plan.ts";
import { systemClock, type BlobStore, type BuildLedger } from "./ports.ts";
import { canonicalJson, parseBuildSpec, show, type BuildSpec } from "./spec.ts";
import { groveTasks, readManifest, type SubmitPorts } from "./submit.ts";

/**
 * Extending a build: more trees for a finished build, training only the new ones.
 *
 * Tree t is seeded by (seed, t) alone, so the trees [0, old) of a fresh N-tree build of the same spec are the
 * parent's trees. The extension is that N-tree build: its spec is the parent's with n_estimators = N, so its id is
 * the fresh build's id (`buildIdFor`), and extending again, or submitting the fresh build, finds it instead of
 * training twice. Its groves:
 * - the parent's groves, with the same numbers and tree ranges: the landed ones are copied (decoded, stamped with
 *   the N-tree build's parameters, stored under the extension's keys and landed through the ledger's API, marked
 *   `copied`); any the parent lost within its tolerance are trained, so the extension has every tree;
 * - then trees [old, N) cut into groves of grove_size, queued for the trainers.
 * When grove_size does not divide the parent's trees (45 in groves of 10), the parent's short last grove [40, 45)
 * stays as it is and the new groves start at 45: 11 groves where a fresh build has 10. The model is the same bytes,
 * since merging orders trees by index whatever the groves; a copied grove whose range matches the fresh build's is
 * the same bytes as the fresh build's grove too.
 *
 * The copies are the extension's own blobs (not references to the parent's), so the parent can be deleted later
 * and an aggregator reads an extension like any build. A crash part-way is resumed like any build: resumeBuild
 * copies the copied groves that have not landed and re-queues the trained ones.
 */

export interface ExtendOptions {
  /**
   * Spec fields the caller asked for besides the number of trees (the CLI's typed flags): each must equal the
   * parent's, since any other value would make another build. `dataset` and `n_estimators` are not compared.
   */
  expect?: Record<string, unknown>;
  /** Most groves a build may have in this runtime (DynamoDB's item size on AWS); more is refused before anything is written. */
  maxGroves?: number;
  /** The study (round) that counts the extension as a member: it lands there when it finishes. */
  memberOf?: MemberOf;
}

/** What an extension will be, worked out from the parent before anything is written. */
export interface ExtensionPlan {
  parentId: string;
  /** The extension's manifest: the N-tree spec, the parent's pack, the groves, and `extends`. */
  manifest: BuildManifest;
}

export interface Extension {
  buildId: string;
  parentId: string;
  manifest: BuildManifest;
  /** False when the N-tree build already existed (extended before, or submitted fresh): nothing was written or queued. */
  created: boolean;
  record: BuildRecord;
  /** Groves queued for training. */
  queued: number[];
  /** Groves copied from the parent by this call. */
  copied: number[];
}

/**
 * Plans extending build `parentId` to `trees` trees. Input errors, one line each: an unknown build, a parent that
 * is not COMPLETED, `trees` not above the parent's, an `expect`ed option that differs from the parent's, too many
 * groves. A parent whose groves are not all in its store is an internal error.
 */
export async function planExtension(
  parentId: string,
  trees: number,
  ports: { blobs: BlobStore; ledger: Pick<BuildLedger, "get"> },
  options: ExtendOptions = {},
): Promise<ExtensionPlan> {
  const parent = await ports.ledger.get(parentId);
  if (!parent) throw new InputError(`cannot extend build ${parentId}: there is no such build`);
  if (parent.status === "FAILED") throw new InputError(`cannot extend build ${parentId}: it FAILED (${parent.reason ?? "no reason recorded"})`);
  if (parent.status !== "COMPLETED") throw new InputError(`cannot extend build ${parentId}: it is ${parent.status}, not finished; finish it first (resume it)`);

  const from = await readManifest(ports.blobs, parentId);
  const old = from.spec.n_estimators;
  if (typeof trees === "number" && trees <= old) throw new InputError(`cannot extend build ${parentId} to ${trees} trees: it has ${old}; extending adds trees, so ask for more than ${old}`);
  const spec = parseBuildSpec({ ...from.spec, n_estimators: trees });
  const changed = changedFields(parentId, from.spec, trees, options.expect ?? {});
  if (changed.length > 0) throw new SpecError(changed);

  const added = planGroves(trees - old, spec.grove_size).map((g) => ({
    grove: from.groves.length + g.grove,
    treeStart: old + g.treeStart,
    treeEnd: old + g.treeEnd,
  }));
  const groves = [...from.groves, ...added];
  if (options.maxGroves !== undefined && groves.length > options.maxGroves)
    throw new InputError(
      `cannot extend build ${parentId} to ${trees} trees: with its ${from.groves.length} groves and new ones of ${spec.grove_size} trees that is ${groves.length} groves; a build here has at most ${options.maxGroves}`,
    );
  const copied = [...parent.landed];
  for (const grove of copied) {
    const key = keys.grove(parentId, grove);
    if (!(await ports.blobs.exists(key))) throw new InternalError(`cannot extend build ${parentId}: its grove ${grove} (${key}) is missing from the store`);
  }
  const manifest: BuildManifest = {
    v: 1,
    buildId: buildIdFor(from.packHash, spec),
    spec,
    packKey: from.packKey,
    packHash: from.packHash,
    groves,
    extends: { buildId: parentId, trees: old, groves: copied },
  };
  return { parentId, manifest };
}

/** The `expect`ed fields whose value differs from the parent's, as spec issues naming the parent. */
function changedFields(parentId: string, parent: BuildSpec, trees: number, expect: Record<string, unknown>): { path: string; message: string }[] {
  const asked = Object.entries(expect).filter(([field, value]) => value !== undefined && field !== "dataset" && field !== "n_estimators");
  if (asked.length === 0) return [];
  // Validated and defaulted like a spec, so "--task auto" equals an unset task and a bad value says what is wrong.
  const wanted = parseBuildSpec({ ...parent, ...Object.fromEntries(asked), n_estimators: trees }) as unknown as Record<string, unknown>;
  const had = parent as unknown as Record<string, unknown>;
  return asked
    .filter(([field]) => canonicalJson(wanted[field]) !== canonicalJson(had[field]))
    .map(([field]) => ({
      path: field,
      message: `would change build ${parentId}'s ${field} (${show(had[field])}) to ${show(wanted[field])}; an extension keeps every option but the number of trees`,
    }));
}

/**
 * Starts a planned extension: manifest, ledger record (PENDING -> TRAINING), the new groves queued, then the
 * parent's groves copied and landed. If the N-tree build already exists it is returned as it is (created: false),
 * as submitBuild does for the same data and spec.
 */
export async function startExtension(plan: ExtensionPlan, ports: SubmitPorts, options: Pick<ExtendOptions, "memberOf"> = {}): Promise<Extension> {
  const clock = ports.clock ?? systemClock;
  const { manifest, parentId } = plan;
  const { buildId } = manifest;
  const existing = await ports.ledger.get(buildId);
  const unchanged = (record: BuildRecord): Extension => ({ buildId, parentId, manifest, created: false, record, queued: [], copied: [] });
  if (existing) return unchanged(existing);

  // Written before the record exists, so anyone who sees the record can read the manifest.
  const specKey = keys.spec(buildId);
  if (!(await ports.blobs.exists(specKey)))
    await ports.blobs.put(specKey, new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`), CONTENT_TYPES.json);
  const record = newBuildRecord({
    buildId,
    total: manifest.groves.length,
    tolerated: manifest.spec.tolerated_failures,
    tags: manifest.spec.tags,
    now: clock.now(),
    ...(options.memberOf ? { memberOf: options.memberOf } : {}),
  });
  if (!(await ports.ledger.create(record))) return unchanged((await ports.ledger.get(buildId)) ?? record);
  await ports.ledger.startTraining(buildId);

  // The new trees go to the trainers first; the copies (quick) are made meanwhile.
  const copies = new Set(manifest.extends!.groves);
  const trained = manifest.groves.filter((g) => !copies.has(g.grove));
  await ports.queue.send(groveTasks(manifest, trained, clock.now()));
  const copied = await copyGroves(manifest, [...copies], ports);
  return { buildId, parentId, manifest, created: true, record: (await ports.ledger.get(buildId)) ?? record, queued: trained.map((g) => g.grove), copied };
}

/** Extends build `parentId` to `trees` trees: planExtension, then startExtension. What a study's aggregator calls. */
export async function extendBuild(parentId: string, trees: number, ports: SubmitPorts, options: ExtendOptions = {}): Promise<Extension> {
  return startExtension(await planExtension(parentId, trees, ports, options), ports, options);
}
