import { Forest, FormatError, missingCells, type DatasetPack } from "@canopy/forest";
import { buildCost, type Prices } from "./cost.ts";
import { evaluateByTrees, type HeldOutEvaluation } from "./curve.ts";
import { AggregationError, errorLine } from "./errors.ts";
import { CONTENT_TYPES, keys } from "./keys.ts";
import { completedNotification, failedNotification, summarizeMetrics, type BuildNotification } from "./notification.ts";
import { PackCache } from "./pack-cache.ts";
import { splitRows } from "./plan.ts";
import { systemClock, type BlobStore, type BuildLedger, type Clock, type Notifier } from "./ports.ts";
import { groveReports, topImportances, trainTimings, type BuildReport } from "./report.ts";
import { readManifest } from "./submit.ts";

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
 * Turns a build whose groves are all in (landed, or failed within tolerance) into a model: claim, merge in
 * grove order, evaluate on the held-out split, store model and report, complete, notify once. Safe to call
 * on every trigger: only the claim winner proceeds. Any error after the claim fails the build (and notifies).
 */
export async function aggregate(buildId: string, ports: AggregatePorts): Promise<AggregateOutcome> {
  const clock = ports.clock ?? systemClock;
  if (!(await ports.ledger.claimAggregation(buildId))) return { outcome: "not-claimed", buildId };

  let done: Extract<AggregateOutcome, { outcome: "completed" }>;
  let notification: BuildNotification;
  try {
    const started = clock.now();
    const record = await ports.ledger.get(buildId);
    if (!record) throw new AggregationError(`build ${buildId} vanished from the ledger`);
    const manifest = await readManifest(ports.blobs, buildId);
    if (record.landed.length === 0) throw new AggregationError("no grove landed");

    const groves: Forest[] = [];
    for (const grove of record.landed) {
      const key = keys.grove(buildId, grove);
      const bytes = await ports.blobs.get(key);
      if (!bytes) throw new AggregationError(`grove ${grove} landed but ${key} is missing`);
      let part: Forest;
      try {
        part = Forest.load(bytes);
      } catch (err) {
        // A damaged grove fails the build by name; merging whatever it decodes to would publish garbage.
        if (err instanceof FormatError) throw new AggregationError(`grove ${grove} (${key}) is unreadable: ${err.message}`);
        throw err;
      }
      const { treeStart, treeEnd } = manifest.groves[grove];
      const indices = part.trees.map((t) => t.index);
      if (indices.length !== treeEnd - treeStart || indices.some((t, i) => t !== treeStart + i))
        throw new AggregationError(`grove ${grove} holds trees [${indices.join(",")}], expected ${treeStart}..${treeEnd - 1}`);
      groves.push(part);
    }
    const loaded = clock.now();
    const { pack } = await (ports.packs ?? new PackCache(1)).load(manifest.packHash, manifest.packKey, ports.blobs);
    // The model carries the table schema, so predictions apply the same column kinds and categories.
    const forest = Forest.merge(groves).withSchema(pack.schema);
    const merged = clock.now();

    const split = splitRows(pack.nRows, manifest.spec.test_fraction, manifest.spec.seed);
    const heldOut: HeldOutEvaluation | null = split.test.length > 0 ? evaluateByTrees(forest, pack, split.test) : null;
    const metrics = heldOut?.metrics ?? null;
    const evaluated = clock.now();

    const modelKey = keys.model(buildId);
    const reportKey = keys.report(buildId);
    const modelBytes = forest.toBinary();
    await ports.blobs.put(modelKey, modelBytes, CONTENT_TYPES.model);

    const grovesReport = groveReports(manifest, record);
    const copied = grovesReport.filter((g) => g.copied).length;
    const completedAt = clock.now();
    const cost = buildCost(copied > 0 ? grovesReport.filter((g) => !g.copied) : grovesReport, {
      failedGroves: record.failed.length,
      ...(copied > 0 ? { copiedGroves: copied } : {}),
      aggregator: { ms: completedAt - started, ...(ports.memoryMb !== undefined ? { memoryMb: ports.memoryMb } : {}) },
      ...(ports.prices ? { prices: ports.prices } : {}),
      artifacts: ports.renderReport ? 3 : 2,
    });
    const report: BuildReport = {
      v: 1,
      kind: "build",
      buildId,
      status: "COMPLETED",
      spec: manifest.spec,
      ...(manifest.extends ? { extends: { buildId: manifest.extends.buildId, trees: manifest.extends.trees } } : {}),
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
      timings: {
        ...(manifest.prepareMs !== undefined ? { prepareMs: manifest.prepareMs } : {}),
        ...trainTimings(grovesReport),
        loadGrovesMs: loaded - started,
        mergeMs: merged - loaded,
        evaluateMs: evaluated - merged,
        totalMs: completedAt - record.createdAt,
        aggregateMs: completedAt - started,
      },
      groves: grovesReport,
      missingGroves: record.failed.map((f) => ({ ...f, treeStart: manifest.groves[f.grove].treeStart, treeEnd: manifest.groves[f.grove].treeEnd })),
      model: { key: modelKey, bytes: modelBytes.length, trees: forest.nTrees, nodes: forest.nodeCount },
      featureImportances: topImportances(forest),
      cost,
      createdAt: record.createdAt,
      completedAt,
    };
    await ports.blobs.put(reportKey, new TextEncoder().encode(`${JSON.stringify(report, null, 2)}\n`), CONTENT_TYPES.json);
    // The page is a view of report.json: failing to make it must not cost the user a trained model.
    let html: { reportHtmlKey: string } | { reportHtmlError: string } | undefined;
    if (ports.renderReport) {
      try {
        await ports.blobs.put(keys.reportHtml(buildId), new TextEncoder().encode(ports.renderReport(report)), CONTENT_TYPES.html);
        html = { reportHtmlKey: keys.reportHtml(buildId) };
      } catch (err) {
        html = { reportHtmlError: errorLine(err) };
      }
    }

    if (!(await ports.ledger.complete(buildId, { modelKey, reportKey, metrics: summarizeMetrics(metrics) })))
      throw new AggregationError("the build left AGGREGATING while the model was being made");
    done = { outcome: "completed", buildId, report, modelKey, reportKey, ...html };
    notification = completedNotification(record, report);
  } catch (err) {
    const reason = `aggregation failed: ${errorLine(err)}`;
    if (await ports.ledger.fail(buildId, reason)) {
      const record = await ports.ledger.get(buildId);
      if (record) await ports.notifier.publish(failedNotification(record, reason));
    }
    return { outcome: "failed", buildId, reason };
  }
  // Outside the try: once COMPLETED, a publishing error must not turn into a failed build. At most once.
  await ports.notifier.publish(notification);
  return done;
}

/** Feature columns by kind: the schema's column kinds (a date column counts once), else all numeric (older packs). */
function featureTypes(pack: DatasetPack): Record<string, number> {
  if (!pack.schema) return { numeric: pack.nFeatures };
  const counts: Record<string, number> = {};
  for (const column of pack.schema.columns) counts[column.kind] = (counts[column.kind] ?? 0) + 1;
  return counts;
}

