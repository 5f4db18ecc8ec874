import { errorLine } from "./errors.ts";
import { CONTENT_TYPES } from "./keys.ts";
import type { BlobStore } from "./ports.ts";

/** Where a report goes: report.json, and its page (report.html) beside it. */
export interface ReportKeys {
  json: string;
  html: string;
}

/** What became of the page: stored at `pageKey`, or not (`pageError`); neither when no renderer was given. */
export interface StoredPage {
  pageKey?: string;
  pageError?: string;
}

/**
 * Stores a report.json (a build's, a study's or a partitioned run's) and, when a renderer is given, its page beside
 * it. The page is a view of report.json: failing to render or store it never fails what the report describes, and
 * never costs the user a trained model; the error comes back for the caller to log.
 */
export async function storeReportWithPage<R>(blobs: BlobStore, report: R, at: ReportKeys, render?: (report: R) => string): Promise<StoredPage> {
  await blobs.put(at.json, new TextEncoder().encode(`${JSON.stringify(report, null, 2)}\n`), CONTENT_TYPES.json);
  if (!render) return {};
  try {
    await blobs.put(at.html, new TextEncoder().encode(render(report)), CONTENT_TYPES.html);
    return { pageKey: at.html };
  } catch (err) {
    return { pageError: errorLine(err) };
  }
}
