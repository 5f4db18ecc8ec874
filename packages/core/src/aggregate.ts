import { FormatError, ForestMerger, ImportanceSum, missingCells, type DatasetPack, type Forest } from "@canopy/forest";
import { buildCost, type Prices } from "./cost.ts";
import { TreeEvaluator, type HeldOutEvaluation } from "./curve.ts";
import { AggregationError, errorLine } from "./errors.ts";
import { CONTENT_TYPES, keys, reportKeysOf } from "./keys.ts";
import { completedNotification, failedNotification, summarizeMetrics, type BuildNotification } from "./notification.ts";
import { OobAggregation, type OobResult } from "./oob.ts";
import { PackCache } from "./pack-cache.ts";
import { buildSplit } from "./plan.ts";
import type { BuildRecord } from "./ledger.ts";
import type { BuildManifest } from "./manifest.ts";
import { systemClock, type BlobStore, type BuildLedger, type Clock, type Notifier } from "./ports.ts";
import { groveReports, topImportances, trainTimings, type BuildReport } from "./report.ts";
import { readManifest } from "./submit.ts";
import { settleMember } from "./study.ts";
import { storeReportWithPage } from "./report-page.ts";
import { sha256Hex } from "./digest.ts";

export interface AggregatePorts {
  blobs: BlobStore;
  ledger: BuildLedger;
  notifier: Notifier;
  clock?: Clock;
  packs?: PackCache;
  /** The aggregator's memory size (Lambda), to bill its own run in the report's cost. */
  memoryMb?: number;
  /** Overrides of the default (us-east-1) prices used for the report's cost estimate. */
  prices?: Partial<Prices>;
  /**
   * Renders report.html from the report (the charting renderer lives outside core: see @canopy/report). When
   * given, report.html is stored beside report.json before the build completes; if rendering or storing it
   * fails, the build still completes and the outcome says why (reportHtmlError).
   */
  renderReport?: (report: BuildReport) => string;
}

export type AggregateOutcome =
  /** Someone else claimed it, or the build is not ready: nothing was done. */
  | { outcome: "not-claimed"; buildId: string }
  | {
      outcome: "completed";
      buildId: string;
      report: BuildReport;
      modelKey: string;
      reportKey: string;
      /** Where report.html is, when a renderer was given and it was stored. */
      reportHtmlKey?: string;
      /** Why report.html was not stored although a renderer was given (the build completes all the same). */
      reportHtmlError?: string;
    }
  | { outcome: "failed"; buildId: string; reason: string };

/**
 * Turns a build whose groves are all in (landed, or failed within tolerance) into a model: claim, merge in grove
 * order, evaluate on the held-out split, store model and report, complete, notify once. Safe to call on every
 * trigger: only the claim winner proceeds. Any error after the claim fails the build (and notifies).
 *
 * The model is never held whole: the groves are read one at a time (plus one read ahead), twice. The first pass
 * checks each against the digest its trainer recorded, and evaluates and sums importances tree by tree; the second
 * streams the model file (preamble and header first, then each grove's tree data as stored). Memory is the largest
 * grove and the held-out rows' sums, plus the pack, whatever the model's size; with oob_score, also the training
 * rows' out-of-bag sums (oob.ts).
 */
export async function aggregate(buildId: string, ports: AggregatePorts): Promise<AggregateOutcome> {
  const clock = ports.clock ?? systemClock;
  if (!(await ports.ledger.claimAggregation(buildId))) return { outcome: "not-claimed", buildId };

  let done: Extract<AggregateOutcome, { outcome: "completed" }>;
  let notification: BuildNotification;
  // This aggregation's claim: its own failure fails the build only while the claim is still the build's.
  let claim: number | undefined;
  try {
    const started = clock.now();
    const record = await ports.ledger.get(buildId);
    if (!record) throw new AggregationError(`build ${buildId} vanished from the ledger`);
    claim = record.claims;
    const manifest = await readManifest(ports.blobs, buildId);
    if (record.landed.length === 0) throw new AggregationError("no grove landed");
    if (record.landed.length !== record.landedCount)
      throw new AggregationError(`the ledger counts ${record.landedCount} landed groves but holds entries for ${record.landed.length}`);
    const { pack } = await (ports.packs ?? new PackCache(1)).load(manifest.packHash, manifest.packKey, ports.blobs);
    const split = buildSplit(manifest.spec, pack);
    const time = { loadMs: 0, mergeMs: 0, evaluateMs: 0 };
    const timed = async <T>(phase: keyof typeof time, work: () => T | Promise<T>): Promise<T> => {
      const t0 = clock.now();
      try {
        return await work();
      } finally {
        time[phase] += clock.now() - t0;
      }
    };

    // Pass 1: verify, decode, evaluate and sum importances, one grove at a time.
    const merger = new ForestMerger();
    const importances = new ImportanceSum(pack.nFeatures);
    const nTrees = record.landed.reduce((sum, g) => sum + manifest.groves[g].treeEnd - manifest.groves[g].treeStart, 0);
    let evaluator: TreeEvaluator | undefined;
    let first: Forest | undefined;
    // Out-of-bag sums merged grove by grove (exact, so the grove split does not matter), the curve tree by tree.
    const oob = manifest.spec.oob_score ? new OobAggregation(pack, split.train, nTrees) : undefined;
    for await (const { grove, bytes, oobBytes } of verifiedGroves(buildId, record, ports.blobs, (work) => timed("loadMs", work), oob !== undefined)) {
      const part = await timed("mergeMs", () => mergeGrove(merger, grove, bytes, manifest));
      first ??= part;
      if (split.test.length > 0) evaluator ??= new TreeEvaluator(part, pack, split.test, nTrees);
      await timed("evaluateMs", () => {
        if (oob) oob.addGrove(grove, keys.groveOob(buildId, grove), oobBytes!);
        for (const t of part.trees) {
          importances.add(t);
          evaluator?.add(t);
          oob?.addTree(t, part.params);
        }
      });
    }
    const heldOut: HeldOutEvaluation | null = evaluator ? evaluator.finish() : null;
    const oobResult: OobResult | undefined = oob ? await timed("evaluateMs", () => oob.finish()) : undefined;
    const metrics = heldOut?.metrics ?? null;
    const forest = first!;

    // Pass 2: the model file, streamed: preamble and header (the model carries the pack's schema), then the groves.
    const modelKey = keys.model(buildId);
    const reportKey = keys.report(buildId);
    const { bytes: head, size: modelSize } = merger.prefix(pack.schema);
    const chunks = async function* () {
      yield head;
      let i = 0;
      for await (const { bytes } of verifiedGroves(buildId, record, ports.blobs)) yield merger.body(i++, bytes);
    };
    await timed("mergeMs", () => storeStream(ports.blobs, modelKey, chunks(), CONTENT_TYPES.model));
    if (oobResult) await ports.blobs.put(keys.oob(buildId), oobResult.decision, CONTENT_TYPES.oob);

    const grovesReport = groveReports(manifest, record);
    const copied = grovesReport.filter((g) => g.copied).length;
    const completedAt = clock.now();
    const cost = buildCost(copied > 0 ? grovesReport.filter((g) => !g.copied) : grovesReport, {
      failedGroves: record.failed.length,
      ...(copied > 0 ? { copiedGroves: copied } : {}),
      aggregator: { ms: completedAt - started, ...(ports.memoryMb !== undefined ? { memoryMb: ports.memoryMb } : {}) },
      ...(ports.prices ? { prices: ports.prices } : {}),
      artifacts: (ports.renderReport ? 3 : 2) + (oobResult ? 1 : 0),
    });
    const report: BuildReport = {
      v: 1,
      kind: "build",
      buildId,
      status: "COMPLETED",
      spec: manifest.spec,
      ...(manifest.extends ? { extends: { buildId: manifest.extends.buildId, trees: manifest.extends.trees } } : {}),
      ...(manifest.refit ? { refitOf: manifest.refit } : {}),
      ...(manifest.finalOf ? { finalOf: manifest.finalOf } : {}),
      tags: record.tags,
      dataset: {
        packKey: manifest.packKey,
        packHash: manifest.packHash,
        labelName: pack.labelName,
        task: forest.task,
        nRows: pack.nRows,
        nFeatures: pack.nFeatures,
        classes: forest.classes,
        trainRows: split.train.length,
        testRows: split.test.length,
        featureTypes: featureTypes(pack),
        missingCells: missingCells(pack),
        ...(pack.schema ? { schema: pack.schema } : {}),
      },
      metrics,
      ...(heldOut ? { metricsByTrees: heldOut.curve } : {}),
      ...(heldOut?.predictions ? { predictions: heldOut.predictions } : {}),
      ...(oobResult
        ? {
            oob_score: oobResult.summary.score,
            oob: { ...oobResult.summary, key: keys.oob(buildId), bytes: oobResult.decision.length },
            oobMetricsByTrees: oobResult.curve,
          }
        : {}),
      timings: {
        ...(manifest.prepareMs !== undefined ? { prepareMs: manifest.prepareMs } : {}),
        ...trainTimings(grovesReport),
        loadGrovesMs: time.loadMs,
        mergeMs: time.mergeMs,
        evaluateMs: time.evaluateMs,
        totalMs: completedAt - record.createdAt,
        aggregateMs: completedAt - started,
      },
      groves: grovesReport,
      missingGroves: record.failed.map((f) => ({ ...f, treeStart: manifest.groves[f.grove].treeStart, treeEnd: manifest.groves[f.grove].treeEnd })),
      model: { key: modelKey, bytes: modelSize, trees: merger.nTrees, nodes: merger.nodeCount },
      featureImportances: topImportances(forest.featureNames, importances.result()),
      cost,
      createdAt: record.createdAt,
      completedAt,
    };
    const page = await storeReportWithPage(ports.blobs, report, reportKeysOf(buildId), ports.renderReport);
    const html = page.pageKey !== undefined ? { reportHtmlKey: page.pageKey } : page.pageError !== undefined ? { reportHtmlError: page.pageError } : undefined;

    if (!(await ports.ledger.complete(buildId, { modelKey, reportKey, metrics: summarizeMetrics(metrics) })))
      throw new AggregationError("the build left AGGREGATING while the model was being made");
    done = { outcome: "completed", buildId, report, modelKey, reportKey, ...html };
    notification = completedNotification(record, report);
  } catch (err) {
    const reason = `aggregation failed: ${errorLine(err)}`;
    if (await ports.ledger.fail(buildId, reason, { claim })) {
      const record = await ports.ledger.get(buildId);
      if (record) await ports.notifier.publish(failedNotification(record, reason));
      await settleMember(buildId, ports);
      return { outcome: "failed", buildId, reason };
    }
    // Not this aggregation's build any more (reopened as dead, claimed again, or finished by the live one): every
    // grove is in and the build is not failed for it; the live aggregator makes the model.
    await settleMember(buildId, ports);
    return { outcome: "not-claimed", buildId };
  }
  // Outside the try: once COMPLETED, a publishing error must not turn into a failed build. At most once.
  await ports.notifier.publish(notification);
  // A study's member lands there once finished (idempotent; the sweeper lands what a crash here left).
  await settleMember(buildId, ports);
  return done;
}

/** Reads lookahead: one grove read ahead of the one being processed. */
const READ_AHEAD = 1;

/**
 * The landed groves of a build in grove order, each checked against the digest its trainer recorded: a grove that
 * is missing, or whose bytes are not the ones that landed, fails the build by name.
 */
async function* verifiedGroves(
  buildId: string,
  record: BuildRecord,
  blobs: BlobStore,
  timed: <T>(work: () => Promise<T>) => Promise<T> = (work) => work(),
  withOob = false,
): AsyncGenerator<VerifiedGrove> {
  const read = async (grove: number): Promise<VerifiedGrove> => {
    const key = keys.grove(buildId, grove);
    const bytes = await blobs.get(key);
    if (!bytes) throw new AggregationError(`grove ${grove} landed but ${key} is missing`);
    const recorded = record.groveStats[grove]?.digest;
    if (!recorded) throw new AggregationError(`grove ${grove} landed without a digest; it cannot be checked`);
    const actual = sha256Hex(bytes);
    if (actual !== recorded)
      throw new AggregationError(`grove ${grove} (${key}) is not the grove that landed: its SHA-256 is ${actual.slice(0, 12)}..., the trainer recorded ${recorded.slice(0, 12)}...`);
    return withOob ? { grove, bytes, oobBytes: await readGroveOob(buildId, grove, record, blobs) } : { grove, bytes };
  };
  // While the caller works on one grove, the next READ_AHEAD are being read: at most 1 + READ_AHEAD in memory.
  const pending: Promise<VerifiedGrove>[] = [];
  let next = 0;
  for (;;) {
    while (next < record.landed.length && pending.length < 1 + READ_AHEAD) {
      const p = read(record.landed[next++]);
      p.catch(() => {}); // awaited in order below; a read ahead of a failure must not go unhandled
      pending.push(p);
    }
    if (pending.length === 0) return;
    yield await timed(() => pending.shift()!);
  }
}

interface VerifiedGrove {
  grove: number;
  bytes: Uint8Array;
  /** The grove's out-of-bag sums, when asked for (a build with oob_score). */
  oobBytes?: Uint8Array;
}

/** A grove's out-of-bag sums, checked against the digest its trainer recorded like the grove itself. */
async function readGroveOob(buildId: string, grove: number, record: BuildRecord, blobs: BlobStore): Promise<Uint8Array> {
  const key = keys.groveOob(buildId, grove);
  const recorded = record.groveStats[grove]?.oob?.digest;
  if (!recorded) throw new AggregationError(`grove ${grove} landed without out-of-bag sums; the build asks for oob_score`);
  const bytes = await blobs.get(key);
  if (!bytes) throw new AggregationError(`grove ${grove} landed but its out-of-bag sums ${key} are missing`);
  const actual = sha256Hex(bytes);
  if (actual !== recorded)
    throw new AggregationError(`grove ${grove}'s out-of-bag sums (${key}) are not the ones that landed: their SHA-256 is ${actual.slice(0, 12)}..., the trainer recorded ${recorded.slice(0, 12)}...`);
  return bytes;
}

/** Adds a grove to the merge: decodable, and holding exactly the trees its manifest range names. */
function mergeGrove(merger: ForestMerger, grove: number, bytes: Uint8Array, manifest: BuildManifest): Forest {
  const key = keys.grove(manifest.buildId, grove);
  let part: Forest;
  try {
    part = merger.add(bytes);
  } catch (err) {
    // A damaged grove fails the build by name; merging whatever it decodes to would publish garbage.
    if (err instanceof FormatError) throw new AggregationError(`grove ${grove} (${key}) is unreadable: ${err.message}`);
    throw new AggregationError(`grove ${grove} (${key}): ${(err as Error).message}`);
  }
  const { treeStart, treeEnd } = manifest.groves[grove];
  const indices = part.trees.map((t) => t.index);
  if (indices.length !== treeEnd - treeStart || indices.some((t, i) => t !== treeStart + i))
    throw new AggregationError(`grove ${grove} holds trees [${indices.join(",")}], expected ${treeStart}..${treeEnd - 1}`);
  return part;
}

/** Streams to the store when it can (nothing half-written on failure), else collects the chunks and puts them. */
async function storeStream(blobs: BlobStore, key: string, chunks: AsyncIterable<Uint8Array>, contentType: string): Promise<void> {
  if (blobs.putStream) return blobs.putStream(key, chunks, contentType);
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  await blobs.put(key, Buffer.concat(parts), contentType);
}

/** Feature columns by kind: the schema's column kinds (a date column counts once), else all numeric (older packs). */
function featureTypes(pack: DatasetPack): Record<string, number> {
  if (!pack.schema) return { numeric: pack.nFeatures };
  const counts: Record<string, number> = {};
  for (const column of pack.schema.columns) counts[column.kind] = (counts[column.kind] ?? 0) + 1;
  return counts;
}

