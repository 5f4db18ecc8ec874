import { TaskError } from "./errors.ts";
import type { GrovePlan } from "./plan.ts";
import type { MetricsSummary } from "./ledger.ts";
import { parseBuildSpec, type BuildSpec } from "./spec.ts";

/**
 * builds/<id>/spec.json: what trainers, the aggregator and resume need to know about a build. A data shape:
 * it imports no port, so reports and notifications can name it without reaching up to the operations.
 */
export interface BuildManifest {
  v: 1;
  buildId: string;
  /** Validated, defaults filled. */
  spec: BuildSpec;
  packKey: string;
  packHash: string;
  groves: GrovePlan[];
  prepareMs?: number;
  /** Set when this build extends another: the groves it copied from it instead of training them (see extend.ts). */
  extends?: ManifestParent;
  /**
   * Set when this build is the refit of an evaluation build (see refit.ts): the same spec with test_fraction 0,
   * trained on every row; the held-out metrics that describe it are the evaluation build's, copied here.
   */
  refit?: ManifestRefit;
  /**
   * Set when a study started this build as its final model (study.ts): the study's id. The spec is the one
   * `canopy train` with the best parameters gives (the same id and bytes); absent when the build existed before.
   */
  finalOf?: string;
}

/** The evaluation build a refit build was trained after, and what it measured on its held-out rows. */
export interface ManifestRefit {
  /** The evaluation build. */
  of: string;
  /** Its test_fraction, rows trained on and held out. */
  testFraction: number;
  trainRows: number;
  testRows: number;
  /** Its held-out metrics (scalars), its oob_score when it had one. */
  metrics: MetricsSummary | null;
  oob_score?: number;
}

/**
 * The build an extension continues. Its groves keep their numbers and tree ranges in the extension, so grove g
 * of the extension is a copy of grove g of the parent for every g in `groves` (the parent's landed groves).
 */
export interface ManifestParent {
  buildId: string;
  /** The parent's number of trees (its n_estimators). */
  trees: number;
  /** Grove numbers copied from the parent, ascending. */
  groves: number[];
}

/** The stored manifest of `buildId`, validated; `key` names it in errors. */
export function decodeManifest(bytes: Uint8Array, buildId: string, key: string): BuildManifest {
  let manifest: BuildManifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(bytes)) as BuildManifest;
  } catch {
    throw new TaskError(`${key} is not JSON`);
  }
  if (manifest?.v !== 1 || manifest.buildId !== buildId || !Array.isArray(manifest.groves))
    throw new TaskError(`${key} is not a v1 manifest of build ${buildId}`);
  const parent = manifest.extends;
  if (parent !== undefined && (typeof parent?.buildId !== "string" || !Number.isInteger(parent.trees) || !Array.isArray(parent.groves)))
    throw new TaskError(`${key}: "extends" is not a build id, a number of trees and a list of groves`);
  const refit = manifest.refit;
  if (refit !== undefined && (typeof refit?.of !== "string" || typeof refit.testFraction !== "number"))
    throw new TaskError(`${key}: "refit" does not name an evaluation build`);
  return { ...manifest, spec: parseBuildSpec(manifest.spec) };
}

/** Trees the build asked for: where its last grove ends. */
export function manifestTrees(manifest: Pick<BuildManifest, "groves">): number {
  return manifest.groves.length > 0 ? manifest.groves[manifest.groves.length - 1].treeEnd : 0;
}
