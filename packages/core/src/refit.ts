import { InputError } from "./errors.ts";
import { CONTENT_TYPES, keys } from "./keys.ts";
import type { BuildRecord } from "./ledger.ts";
import type { BuildManifest } from "./manifest.ts";
import { buildIdFor, planGroves } from "./plan.ts";
import type { BlobStore, BuildLedger } from "./ports.ts";
import type { BuildReport } from "./report.ts";
import { parseBuildSpec, type BuildSpec } from "./spec.ts";
import { readManifest, startBuild, type SubmitPorts } from "./submit.ts";

/**
 * Refitting: the model shipped after the held-out metrics were measured is trained on every row.
 *
 * Two builds, linked both ways: the evaluation build (any COMPLETED build that held rows out) measures; its refit is
 * the build of the same spec with test_fraction 0 over the same pack, so its id is the one a fresh build of that spec
 * gets (submitting it again, or refitting twice, trains once). The refit's manifest and report name the evaluation
 * build and carry its held-out metrics (`refitOf`); the evaluation build gets builds/<id>/refit.json naming the refit
 * (written before the refit is queued, so the link exists before the model does). Both runtimes start it the same way
 * (a `{ refit: <id> }` request); a study's final model can use planRefit/startRefit with the best trial's build.
 */

/** The refit's spec: the evaluation build's, trained on every row. */
export function refitSpec(spec: BuildSpec): BuildSpec {
  return parseBuildSpec({ ...spec, test_fraction: 0 });
}

/** builds/<evaluation id>/refit.json: which build is its refit. */
export interface RefitLink {
  v: 1;
  refit: string;
}

export interface RefitPlan {
  evaluationId: string;
  manifest: BuildManifest;
}

/**
 * Plans the refit of `evaluationId`. Input errors, one line each: no such build, not COMPLETED, nothing held out
 * (test_fraction 0: it was trained on every row already).
 */
export async function planRefit(evaluationId: string, ports: { blobs: BlobStore; ledger: Pick<BuildLedger, "get"> }): Promise<RefitPlan> {
  const record = await ports.ledger.get(evaluationId);
  if (!record) throw new InputError(`cannot refit build ${evaluationId}: there is no such build`);
  if (record.status !== "COMPLETED")
    throw new InputError(`cannot refit build ${evaluationId}: it is ${record.status}${record.reason ? ` (${record.reason})` : ""}; the metrics come from a finished build`);
  const from = await readManifest(ports.blobs, evaluationId);
  if (from.spec.test_fraction === 0)
    throw new InputError(`cannot refit build ${evaluationId}: it held nothing out (test_fraction 0), so it is already trained on every row`);
  const report = await readReport(ports.blobs, record);
  const spec = refitSpec(from.spec);
  const manifest: BuildManifest = {
    v: 1,
    buildId: buildIdFor(from.packHash, spec),
    spec,
    packKey: from.packKey,
    packHash: from.packHash,
    groves: planGroves(spec.n_estimators, spec.grove_size),
    refit: {
      of: evaluationId,
      testFraction: from.spec.test_fraction,
      trainRows: report.dataset.trainRows,
      testRows: report.dataset.testRows,
      metrics: record.result?.metrics ?? null,
      ...(report.oob_score !== undefined ? { oob_score: report.oob_score } : {}),
    },
  };
  return { evaluationId, manifest };
}

/**
 * Starts a planned refit: the link from the evaluation build, then the build (manifest, record, groves queued). If
 * the build exists already (refit before, or trained fresh with test_fraction 0) it is returned as it is.
 */
export async function startRefit(plan: RefitPlan, ports: SubmitPorts): Promise<{ buildId: string; created: boolean; record: BuildRecord; queued: number[] }> {
  const { manifest, evaluationId } = plan;
  const link: RefitLink = { v: 1, refit: manifest.buildId };
  await ports.blobs.put(keys.refitLink(evaluationId), new TextEncoder().encode(`${JSON.stringify(link, null, 2)}\n`), CONTENT_TYPES.json);
  const existing = await ports.ledger.get(manifest.buildId);
  if (existing) return { buildId: manifest.buildId, created: false, record: existing, queued: [] };
  const started = await startBuild(manifest, ports);
  return { buildId: manifest.buildId, ...started, queued: started.created ? manifest.groves.map((g) => g.grove) : [] };
}

/** planRefit, then startRefit. */
export async function refitBuild(evaluationId: string, ports: SubmitPorts) {
  return startRefit(await planRefit(evaluationId, ports), ports);
}

/** The refit a build links to (builds/<id>/refit.json), if one was started. */
export async function readRefitLink(blobs: BlobStore, buildId: string): Promise<string | undefined> {
  const bytes = await blobs.get(keys.refitLink(buildId));
  if (!bytes) return undefined;
  const link = JSON.parse(new TextDecoder().decode(bytes)) as Partial<RefitLink>;
  return typeof link.refit === "string" ? link.refit : undefined;
}

async function readReport(blobs: BlobStore, record: BuildRecord): Promise<BuildReport> {
  const key = record.result?.reportKey ?? keys.report(record.buildId);
  const bytes = await blobs.get(key);
  if (!bytes) throw new InputError(`cannot refit build ${record.buildId}: its report ${key} is missing`);
  return JSON.parse(new TextDecoder().decode(bytes)) as BuildReport;
}
