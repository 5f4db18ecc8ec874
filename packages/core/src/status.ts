import { keys } from "./keys.ts";
import type { BuildRecord } from "./ledger.ts";
import { manifestTrees } from "./manifest.ts";
import type { BlobStore, BuildLedger } from "./ports.ts";
import { treesLanded } from "./progress.ts";
import type { BuildReport } from "./report.ts";
import type { BuildView } from "./runtime.ts";
import { readManifest } from "./submit.ts";

/** The report of a COMPLETED build, or undefined (not completed, or its report is not there). */
export async function readReport(blobs: BlobStore, record: BuildRecord): Promise<BuildReport | undefined> {
  if (record.status !== "COMPLETED" || !record.result) return undefined;
  const raw = await blobs.get(record.result.reportKey);
  return raw ? (JSON.parse(new TextDecoder().decode(raw)) as BuildReport) : undefined;
}

/**
 * What a runtime's status() says: the record, the trees the manifest asks for and the landed groves hold, and the
 * report once COMPLETED. A manifest or report that cannot be read leaves its part out rather than hiding the
 * record. Undefined when the ledger has no such build.
 */
export async function readBuildView(ports: { ledger: Pick<BuildLedger, "get">; blobs: BlobStore }, buildId: string): Promise<BuildView | undefined> {
  const record = await ports.ledger.get(buildId);
  return record && viewOf(ports.blobs, record);
}

/** The view of a record already read (e.g. the last one a follower saw). */
export async function viewOf(blobs: BlobStore, record: BuildRecord): Promise<BuildView> {
  const pageKey = record.status === "COMPLETED" ? keys.reportHtml(record.buildId) : undefined;
  const [treesTotal, report, page] = await Promise.all([
    readManifest(blobs, record.buildId).then(manifestTrees, () => undefined),
    readReport(blobs, record).catch(() => undefined),
    pageKey ? blobs.exists(pageKey).catch(() => false) : false,
  ]);
  return {
    record,
    ...(treesTotal !== undefined ? { treesTotal } : {}),
    treesDone: treesLanded(record),
    ...(report ? { report } : {}),
    ...(page ? { pageKey } : {}),
  };
}
