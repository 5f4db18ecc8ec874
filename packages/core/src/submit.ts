import { buildPack, encodePack, TableBuilder, type DatasetPack, type TableSchema, type Task } from "@canopy/forest";
import { copyGroves } from "./copy-groves.ts";
import { optionWarnings, taskNote, type DataNote } from "./data-notes.ts";
import { TaskError } from "./errors.ts";
import { CONTENT_TYPES, keys } from "./keys.ts";
import { newBuildRecord, type BuildRecord, type BuildSummary, type MemberOf } from "./ledger.ts";
import { decodeManifest, manifestTrees, type BuildManifest } from "./manifest.ts";
import { planBuild, type BuildPlan, type GrovePlan, type PackSummary } from "./plan.ts";
import { systemClock, type BlobStore, type BuildLedger, type Clock, type TaskQueue } from "./ports.ts";
import { toFitParams, type BuildSpec } from "./spec.ts";
import type { BuildHandle } from "./runtime.ts";
import { GROVE_TASK_VERSION, type GroveTask } from "./task.ts";
import { csvTable, type TableSource } from "./table-source.ts";

export interface PreparedDataset {
  pack: DatasetPack;
  packKey: string;
  hash: string;
  /** True when this exact pack was already stored (content addressing): nothing was uploaded. */
  reused: boolean;
  prepareMs: number;
  /** How the input's columns became features (also in the pack). */
  schema: TableSchema;
  /** The input's format ("csv", "csv.gz", "parquet") and stored size in bytes, when known. */
  format: string;
  inputBytes?: number;
  /** What the data made of the spec (the detected task, options to hear about), said before training. */
  notes: DataNote[];
}

export interface PrepareOptions {
  label?: string;
  task?: Task | "auto";
  maxBins?: number;
  shared?: boolean;
  /** --categorical / --numeric / --drop. */
  columns?: BuildSpec["columns"];
  /** --weight-column: per-row sample weights, carried by the pack. */
  weightColumn?: string;
  /** --min-category-rows. */
  minCategoryRows?: number;
  /**
   * Checks the pack before it is stored (throws to refuse it): an error the data decides leaves nothing behind.
   * Returns notes about the data for the caller.
   */
  check?: (pack: DatasetPack) => DataNote[] | void;
}

/**
 * Reads the table (streamed: CSV in chunks, Parquet by row group) into typed columns, bins them into a pack and
 * stores the pack under its hash unless it is already there. Peak memory follows the typed columns and the pack,
 * not the size of the input's text. CSV bytes or text are read as a CSV table.
 */
export async function prepareDataset(
  input: TableSource | Uint8Array | string,
  options: PrepareOptions,
  blobs: BlobStore,
  clock: Clock = systemClock,
): Promise<PreparedDataset> {
  const started = clock.now();
  const source = typeof input === "string" || input instanceof Uint8Array ? csvTable(input) : input;
  const builder = new TableBuilder({
    ...(options.label !== undefined ? { label: options.label } : {}),
    ...(options.task && options.task !== "auto" ? { task: options.task } : {}),
    ...(options.columns?.categorical ? { categorical: options.columns.categorical } : {}),
    ...(options.columns?.numeric ? { numeric: options.columns.numeric } : {}),
    ...(options.columns?.drop ? { drop: options.columns.drop } : {}),
    ...(options.weightColumn !== undefined ? { weight: options.weightColumn } : {}),
    ...(options.minCategoryRows !== undefined ? { minCategoryRows: options.minCategoryRows } : {}),
  });
  await source.read(builder);
  const { dataset, schema } = builder.finish();
  const pack = buildPack(dataset, {
    ...(options.maxBins !== undefined ? { maxBins: options.maxBins } : {}),
    ...(options.shared ? { shared: true } : {}),
  });
  const notes = options.check?.(pack) ?? [];
  const packKey = keys.pack(pack.hash);
  const reused = await blobs.exists(packKey);
  if (!reused) await blobs.put(packKey, encodePack(pack), CONTENT_TYPES.pack);
  return {
    pack,
    packKey,
    hash: pack.hash,
    reused,
    prepareMs: clock.now() - started,
    schema,
    format: source.format,
    ...(source.bytes !== undefined ? { inputBytes: source.bytes } : {}),
    notes,
  };
}

/**
 * The one place a runtime turns a build's data into a stored pack: the label and task come from the spec, and the
 * build is planned on the pack before it is stored, so a spec the data refuses (a classification criterion on a
 * regression label, no training rows left) writes nothing. (`shared`: the pack's arrays in shared memory, for
 * trainer threads.)
 */
export function prepareBuildData(
  spec: BuildSpec,
  input: TableSource | Uint8Array | string,
  blobs: BlobStore,
  options: { shared?: boolean; clock?: Clock; /** More checks of the pack before it is stored (a study's). */ check?: (pack: DatasetPack) => void } = {},
): Promise<PreparedDataset> {
  const prepare: PrepareOptions = {
    ...(spec.label !== undefined ? { label: spec.label } : {}),
    task: spec.task,
    ...(spec.columns ? { columns: spec.columns } : {}),
    ...(spec.weight_column !== undefined ? { weightColumn: spec.weight_column } : {}),
    ...(spec.max_bins !== undefined ? { maxBins: spec.max_bins } : {}),
    ...(spec.min_category_rows !== undefined ? { minCategoryRows: spec.min_category_rows } : {}),
    ...(options.shared ? { shared: true } : {}),
    check: (pack) => {
      const { split } = planBuild(spec, pack);
      options.check?.(pack);
      const task = taskNote(spec, pack);
      return [...(task ? [task] : []), ...optionWarnings(spec, pack, split)];
    },
  };
  return prepareDataset(input, prepare, blobs, options.clock);
}

/** A runtime's answer to a submission, from what it wrote or found. */
export function buildHandle(o: {
  record: BuildRecord;
  groves: GrovePlan[];
  created: boolean;
  queued: number[];
  prepared?: Pick<PreparedDataset, "pack" | "packKey" | "reused" | "prepareMs"> & { notes?: DataNote[] };
  /** An extension's parent, and the groves this call copied from it. */
  extends?: string;
  copied?: number[];
  /** A refit's evaluation build. */
  refitOf?: string;
}): BuildHandle {
  const p = o.prepared;
  return {
    buildId: o.record.buildId,
    created: o.created,
    record: o.record,
    groves: o.groves.length,
    trees: manifestTrees(o),
    queued: o.queued,
    ...(o.extends !== undefined ? { extends: o.extends } : {}),
    ...(o.copied && o.copied.length > 0 ? { copied: o.copied } : {}),
    ...(o.refitOf !== undefined ? { refitOf: o.refitOf } : {}),
    ...(p ? { dataset: { packKey: p.packKey, reused: p.reused, nRows: p.pack.nRows, nFeatures: p.pack.nFeatures, bytes: p.pack.bytes.length, prepareMs: p.prepareMs, notes: p.notes ?? [] } } : {}),
  };
}

export async function readManifest(blobs: BlobStore, buildId: string): Promise<BuildManifest> {
  const key = keys.spec(buildId);
  const bytes = await blobs.get(key);
  if (!bytes) throw new TaskError(`${key} not found`);
  return decodeManifest(bytes, buildId, key);
}

export interface SubmitPorts {
  blobs: BlobStore;
  ledger: BuildLedger;
  queue: TaskQueue;
  clock?: Clock;
}

export interface Submission {
  buildId: string;
  plan: BuildPlan;
  /** False when this build already existed (same data and spec): nothing new was written or queued. */
  created: boolean;
  record: BuildRecord;
}

export function groveTasks(manifest: BuildManifest, groves: GrovePlan[], queuedAt: number): GroveTask[] {
  const params = toFitParams(manifest.spec);
  return groves.map((g) => ({
    v: GROVE_TASK_VERSION,
    buildId: manifest.buildId,
    grove: g.grove,
    treeStart: g.treeStart,
    treeEnd: g.treeEnd,
    packKey: manifest.packKey,
    packHash: manifest.packHash,
    seed: manifest.spec.seed,
    testFraction: manifest.spec.test_fraction,
    params,
    queuedAt,
  }));
}

/**
 * Starts a build: manifest, ledger record (PENDING -> TRAINING), one task per grove. The id is derived from
 * (pack, spec), so submitting the same thing twice returns the existing build instead of training it again.
 */
export async function submitBuild(
  spec: BuildSpec,
  ports: SubmitPorts,
  /** The pack's summary is enough (a partitioned run submits over packs it no longer holds). */
  prepared: { pack: PackSummary; packKey: string; prepareMs?: number },
  options: { memberOf?: MemberOf } = {},
): Promise<Submission> {
  const clock = ports.clock ?? systemClock;
  const plan = planBuild(spec, prepared.pack);
  const { buildId } = plan;
  const existing = await ports.ledger.get(buildId);
  if (existing) return { buildId, plan, created: false, record: existing };

  const manifest: BuildManifest = {
    v: 1,
    buildId,
    spec,
    packKey: prepared.packKey,
    packHash: prepared.pack.hash,
    groves: plan.groves,
    ...(prepared.prepareMs !== undefined ? { prepareMs: prepared.prepareMs } : {}),
  };
  return { buildId, plan, ...(await startBuild(manifest, { ...ports, clock }, options)) };
}

/**
 * Starts a build from its manifest: the manifest, the ledger record (PENDING -> TRAINING), every grove queued.
 * created: false when the record existed (an identical submission won the race: that one queues the work).
 */
export async function startBuild(
  manifest: BuildManifest,
  ports: SubmitPorts,
  options: { memberOf?: MemberOf } = {},
): Promise<{ created: boolean; record: BuildRecord }> {
  const clock = ports.clock ?? systemClock;
  const { buildId, spec, groves } = manifest;
  // Written before the record exists, so anyone who sees the record can read the manifest.
  const specKey = keys.spec(buildId);
  if (!(await ports.blobs.exists(specKey)))
    await ports.blobs.put(specKey, new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`), CONTENT_TYPES.json);

  const record = newBuildRecord({
    buildId,
    total: groves.length,
    tolerated: spec.tolerated_failures,
    tags: spec.tags,
    now: clock.now(),
    ...(options.memberOf ? { memberOf: options.memberOf } : {}),
  });
  if (!(await ports.ledger.create(record))) return { created: false, record: (await ports.ledger.get(buildId)) ?? record };
  await ports.ledger.startTraining(buildId);
  await ports.queue.send(groveTasks(manifest, groves, clock.now()));
  return { created: true, record: (await ports.ledger.get(buildId)) ?? record };
}

export interface Resumption {
  buildId: string;
  status: BuildRecord["status"];
  /** Groves queued again: neither landed nor given up on. */
  requeued: number[];
  /** An extension's groves copied from its parent by this call (they had not landed); absent when none were. */
  copied?: number[];
  /**
   * The aggregation was asked for again: every grove was in but no aggregator had it (a lost trigger fired again),
   * or its claim was older than the lease (a dead aggregator's claim reopened). The ledger's change feed carries
   * the trigger to whoever aggregates (the stream's aggregator, the embedded runtime).
   */
  redriven: boolean;
  /** AGGREGATING under a claim younger than the lease: an aggregator may be at work, so it was left alone. */
  aggregating: boolean;
}

/** When an AGGREGATING record's claim is taken for dead and reopened (resume, redriveFanIn). */
export interface ClaimLease {
  /**
   * How long an aggregation claim may live: an AGGREGATING build claimed longer ago than this has a dead aggregator
   * and is reopened. Default Infinity (never reopened).
   */
  aggregationLeaseMs?: number;
  /**
   * For a store this process alone owns: the time it opened it. A claim made before then is dead (its aggregator died
   * with the previous process); one made since is this process's own, alive however young. (A lease of 0 took this
   * process's own claims for dead too: a resume reopened an aggregation it had itself just started, and two
   * aggregators ran.) Takes the place of aggregationLeaseMs.
   */
  ownedSince?: number;
}

/** Whether `s`'s aggregation claim is dead under `lease`, at `now`. */
export function claimIsDead(s: BuildSummary, now: number, lease: ClaimLease): boolean {
  const claimedAt = s.claimedAt ?? s.updatedAt;
  if (lease.ownedSince !== undefined) return claimedAt < lease.ownedSince;
  return now - claimedAt >= (lease.aggregationLeaseMs ?? Number.POSITIVE_INFINITY);
}

export interface ResumeOptions extends ClaimLease {
  /**
   * Whether an extension's groves still to be copied from its parent are copied here (default) or queued for the
   * trainers, which give the same bytes (a copy is stamped to be the fresh build's grove): the sweeper queues them,
   * so it needs no access to groves.
   */
  copy?: boolean;
}

/**
 * Picks an unfinished build back up, like a redrive: re-queues only the groves that have not settled (training is
 * deterministic, so a grove that did land would come out identical anyway), and asks for the aggregation again
 * when every grove is in but nothing is aggregating it. Terminal builds are left alone. An extension's groves to be
 * copied from its parent are copied here rather than trained (their landings fire the trigger like any other).
 */
export async function resumeBuild(buildId: string, ports: SubmitPorts, options: ResumeOptions = {}): Promise<Resumption> {
  const clock = ports.clock ?? systemClock;
  let summary = await ports.ledger.summary(buildId);
  if (!summary) throw new TaskError(`build ${buildId} not found`);
  if (summary.status === "PENDING") {
    await ports.ledger.startTraining(buildId);
    summary = (await ports.ledger.summary(buildId)) ?? summary;
  }
  const out = (o: Partial<Resumption> = {}): Resumption => ({
    buildId,
    status: summary!.status,
    requeued: [],
    redriven: false,
    aggregating: false,
    ...o,
  });
  if (summary.status === "AGGREGATING") {
    if (claimIsDead(summary, clock.now(), options) && (await ports.ledger.reopenAggregation(buildId, { claim: summary.claims ?? 0 }))) return out({ status: "TRAINING", redriven: true });
    return out({ aggregating: true });
  }
  if (summary.status !== "TRAINING") return out();
  if (summary.remaining === 0) return out({ redriven: await ports.ledger.redriveAggregation(buildId) });
  const record = await ports.ledger.get(buildId);
  if (!record) throw new TaskError(`build ${buildId} not found`);
  const manifest = await readManifest(ports.blobs, buildId);
  const done = new Set([...record.landed, ...record.failed.map((f) => f.grove)]);
  const outstanding = manifest.groves.filter((g) => !done.has(g.grove));
  if (outstanding.length === 0) return out();
  const copies = new Set(options.copy === false ? [] : (manifest.extends?.groves ?? []));
  const trained = outstanding.filter((g) => !copies.has(g.grove));
  if (trained.length > 0) {
    await ports.queue.send(groveTasks(manifest, trained, clock.now()));
    await ports.ledger.recordRequeue(buildId);
  }
  const toCopy = outstanding.filter((g) => copies.has(g.grove)).map((g) => g.grove);
  const copied = toCopy.length > 0 ? await copyGroves(manifest, toCopy, ports) : [];
  return out({ requeued: trained.map((g) => g.grove), ...(copied.length > 0 ? { copied } : {}) });
}
