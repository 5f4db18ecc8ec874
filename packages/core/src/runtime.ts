import type { DataNote } from "./data-notes.ts";
import type { BuildRecord, GroveStats, SettledGrove } from "./ledger.ts";
import type { BuildReport } from "./report.ts";
import type { BuildSpec } from "./spec.ts";
import type { TableSource } from "./table-source.ts";

/**
 * The one interface both runtimes implement (the embedded one, runtime-local's createLocalRuntime; the AWS one,
 * runtime-aws's createAwsRuntime) and the commands talk to: submit, follow, status, close. It speaks of builds
 * now; it is shaped for what comes next: a study (many builds fanned out, a record counting finished builds) or
 * a partitioned run is meant to be another kind of request to `submit` and another target to `follow`, with the
 * same verbs, and `canopy resume <id>` on AWS is `submit({ resume })` there.
 */
export interface Runtime {
  /** Where a blob key lives, as a person can use it: a file under the local store, or s3://bucket/key. */
  locate(key: string): string;
  /**
   * Starts work and returns at once with a handle (it does not wait for the build to end). The same data and
   * spec give the same build id, so submitting twice trains once. Resuming re-queues only the groves that have
   * not landed; training is deterministic, so the model comes out byte-identical.
   */
  submit(request: BuildRequest): Promise<BuildHandle>;
  /**
   * The build's events until it ends: a `training` stage with the counts so far, one `progress` event per
   * change in groves settled, `aggregating`, `done`, then one `end` with what status() would say. Without a
   * build id: the events of every build the runtime sees, until the signal aborts or the runtime closes.
   */
  follow(buildId?: string, options?: FollowOptions): AsyncIterable<BuildEvent>;
  /** What the ledger and, once COMPLETED, the report say about a build; undefined when there is no such build. */
  status(buildId: string): Promise<BuildView | undefined>;
  /** Releases what the runtime holds (trainer threads, stream readers). Builds it was running are interrupted. */
  close(): Promise<void>;
}

/**
 * What `submit` takes. A new build is its spec and its data: CSV bytes, or a location the runtime reads (a path;
 * on AWS also an s3:// URL). Resuming names an existing build. Requests are a union so that other kinds
 * (a study) can join without new verbs.
 */
/**
 * A new build's data: CSV bytes, a path (or on AWS an s3:// URL) the runtime reads, or a table already opened
 * (`openTable` of @canopy/core/ingest: CSV, .csv.gz or Parquet, streamed), which is how the CLI hands it over.
 */
export type BuildRequest = { spec: BuildSpec; data: Uint8Array | string | TableSource } | { resume: string } | ExtendRequest | RefitRequest;

/**
 * The refit of a COMPLETED build that held rows out: the same spec with test_fraction 0, trained on every row, its
 * report carrying the evaluation build's held-out metrics (core's refit.ts). Exists already: it is the answer.
 */
export interface RefitRequest {
  refit: string;
}

/**
 * More trees for a COMPLETED build: the build of the same spec with n_estimators = `trees`, its id the one a fresh
 * build of that spec gets; only trees [old, trees) are trained, the parent's groves are copied (core's extend.ts).
 * If that build exists already (extended before, or trained fresh), it is the answer and nothing is queued.
 */
export interface ExtendRequest {
  extend: string;
  trees: number;
  /** Spec fields the caller set besides the trees (a CLI's typed flags): refused (SpecError) where they differ from the parent's. */
  expect?: Record<string, unknown>;
}

/** What a submission returns: enough to follow the build and to tell a new build from one that existed. */
export interface BuildHandle {
  buildId: string;
  /** True when this call created the build; false when it existed (the same data and spec) or was resumed. */
  created: boolean;
  /** The build's ledger record right after the call. */
  record: BuildRecord;
  /** Groves and trees the build asked for. */
  groves: number;
  trees: number;
  /** Groves this call queued: all of a new build's, the outstanding ones of a resumed build, else none. */
  queued: number[];
  /** A refit: the evaluation build whose held-out metrics describe it. */
  refitOf?: string;
  /** An extension: the build it extends, and the groves this call copied from it (not trained). */
  extends?: string;
  copied?: number[];
  /** The dataset pack this call prepared (absent when resuming). */
  dataset?: PreparedSummary;
}

export interface PreparedSummary {
  packKey: string;
  /** The same pack was already stored (content addressing): nothing was uploaded. */
  reused: boolean;
  nRows: number;
  nFeatures: number;
  /** Size of the pack. */
  bytes: number;
  prepareMs: number;
  /** What the data made of the spec: the detected task and why, options worth a warning (core's data-notes). */
  notes: DataNote[];
}

export interface FollowOptions {
  /** Stops following (the build goes on). */
  signal?: AbortSignal;
}

/** A build as status() reads it: the ledger record, the trees it asked for and has, and its report once COMPLETED. */
export interface BuildView {
  record: BuildRecord;
  /** Trees the build asked for (from its manifest); undefined if that cannot be read. */
  treesTotal?: number;
  /** Trees in the groves that landed. */
  treesDone: number;
  /** The report of a COMPLETED build; undefined otherwise or if it cannot be read. */
  report?: BuildReport;
  /** The key of the build's report.html, once it was written. */
  pageKey?: string;
}

export type Stage = "preparing" | "training" | "aggregating" | "done";

/** A build's counts, as a progress display needs them. */
export interface GroveProgress {
  buildId: string;
  landed: number;
  failed: number;
  total: number;
  treesDone: number;
  treesTotal: number;
  /** Of treesDone, the trees an extension copied from its parent rather than trained; absent when none. */
  treesCopied?: number;
  elapsedMs: number;
}

/** The grove whose settling an event reports, when exactly one settled since the previous event (the ledger's entry). */
export type { SettledGrove } from "./ledger.ts";

export type ProgressEvent =
  /** `buildId` is absent while preparing: the id depends on the prepared data. */
  | { type: "stage"; stage: Stage; buildId?: string; elapsedMs: number }
  /** Counts: once when training starts (a resumed build starts above 0), then after groves land or are given up on. */
  | (GroveProgress & { type: "progress"; grove?: SettledGrove });

/** The last event of a followed build: it is COMPLETED or FAILED, and this is what status() says of it. */
export interface BuildEnd {
  type: "end";
  buildId: string;
  elapsedMs: number;
  view: BuildView;
}

export type BuildEvent = ProgressEvent | BuildEnd;
