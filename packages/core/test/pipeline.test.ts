import { decodePack, fitForest, Forest } from "@canopy/forest";
import { describe, expect, it } from "vitest";
import type { AggregateOutcome } from "../src/aggregate.ts";
import { keys } from "../src/keys.ts";
import { splitRows } from "../src/plan.ts";
import type { BuildReport } from "../src/report.ts";
import { parseBuildSpec, toFitParams } from "../src/spec.ts";
import { prepareDataset, submitBuild } from "../src/submit.ts";
import { trainGrove } from "../src/train-grove.ts";
import { fixture, memoryPipeline } from "./support.ts";

const digits = fixture("digits");

async function readJson<T>(blobs: { get(key: string): Promise<Uint8Array | undefined> }, key: string): Promise<T> {
  const bytes = await blobs.get(key);
  if (!bytes) throw new Error(`${key} missing`);
  return JSON.parse(new TextDecoder().decode(bytes)) as T;
}

/** Submits, then trains the queued tasks in the given order (indices into the queue; repeats = redeliveries). */
async function build(groveSize: number, order?: (n: number) => number[][], deliveries = 1) {
  const p = memoryPipeline({ deliveries });
  const prepared = await prepareDataset(digits, { label: "digit" }, p.blobs, p.clock);
  const spec = parseBuildSpec({ dataset: "test/fixtures/digits.csv", label: "digit", n_estimators: 20, grove_size: groveSize, seed: 3, tags: { suite: "core" } });
  const submission = await submitBuild(spec, p, prepared);
  const tasks = p.queue.drain();
  // Each inner list runs concurrently; the lists run one after another.
  for (const wave of order ? order(tasks.length) : [tasks.map((_, i) => i)]) {
    await Promise.all(wave.map((i) => trainGrove(tasks[i], { blobs: p.blobs, ledger: p.ledger, clock: p.clock })));
  }
  const outcomes = await Promise.all(p.aggregations);
  return { ...p, prepared, spec, submission, tasks, outcomes };
}

describe("a digits build with the memory ports", () => {
  it("trains shuffled, duplicated groves into the same model as one grove or one fitForest call", async () => {
    // 4 groves; grove 2 is delivered twice at once, grove 0 again after it landed; aggregation triggered twice.
    const shuffled = await build(5, () => [[3], [2, 2], [0], [1, 0]], 2);
    const { ledger, notifier, blobs, submission } = shuffled;
    const id = submission.buildId;

    expect(shuffled.tasks.map((t) => [t.treeStart, t.treeEnd])).toEqual([[0, 5], [5, 10], [10, 15], [15, 20]]);
    expect(shuffled.outcomes.map((o: AggregateOutcome) => o.outcome).sort()).toEqual(["completed", "not-claimed"]);
    expect(notifier.published).toHaveLength(1);
    const note = notifier.published[0];
    expect(note).toMatchObject({ v: 1, type: "build.completed", buildId: id, status: "COMPLETED", tags: { suite: "core" } });
    expect(note.modelKey).toBe(keys.model(id));
    expect(note.metrics?.accuracy).toBeGreaterThan(0.85);
    expect(note.metrics).not.toHaveProperty("confusion_matrix");

    const record = await ledger.get(id);
    expect(record?.status).toBe("COMPLETED");
    expect(record?.landed).toEqual([0, 1, 2, 3]);
    expect(blobs.putCount.get(keys.grove(id, 2))).toBe(2); // the twin rewrote it...
    expect(blobs.putCount.get(keys.grove(id, 0))).toBe(1); // ...the late duplicate was skipped

    const model = (await blobs.get(keys.model(id)))!;
    const single = await build(20);
    expect(single.submission.buildId).not.toBe(id);
    expect(single.tasks).toHaveLength(1);
    expect(Buffer.from((await single.blobs.get(keys.model(single.submission.buildId)))!).equals(Buffer.from(model))).toBe(true);

    const pack = decodePack((await blobs.get(shuffled.prepared.packKey))!);
    const { train } = splitRows(pack.nRows, shuffled.spec.test_fraction, shuffled.spec.seed);
    // The aggregated model is the engine's forest plus the table schema the pack was made with.
    const direct = fitForest(pack, toFitParams(shuffled.spec), { rows: train }).withSchema(pack.schema);
    expect(Buffer.from(direct.toBinary()).equals(Buffer.from(model))).toBe(true);

    const report = await readJson<BuildReport>(blobs, keys.report(id));
    expect(report.metrics?.task).toBe("classification");
    expect(report.metrics && "accuracy" in report.metrics && report.metrics.accuracy).toBeGreaterThan(0.85);
    // 64 pixel columns, 3 of them blank in every image: dropped as constant (issue 12).
    expect(report.dataset).toMatchObject({ nRows: 1797, nFeatures: 61, labelName: "digit", testRows: 450, trainRows: 1347 });
    expect(report.dataset.schema?.excluded).toEqual(["pixel0", "pixel32", "pixel39"].map((name) => ({ name, reason: "constant" })));
    expect(report.groves.map((g) => [g.grove, g.trees])).toEqual([[0, 5], [1, 5], [2, 5], [3, 5]]);
    expect(report.model).toMatchObject({ key: keys.model(id), bytes: model.length, trees: 20, nodes: Forest.load(model).nodeCount });
    expect(report.missingGroves).toEqual([]);
    expect(report.featureImportances).toHaveLength(10);
    const imp = report.featureImportances.map((f) => f.importance);
    expect([...imp].sort((a, b) => b - a)).toEqual(imp);
    for (const g of report.groves) {
      expect(g.startedAt).toBeGreaterThanOrEqual(g.queuedAt);
      expect(g.storedAt).toBeGreaterThan(g.trainedAt);
      expect(g.trainMs).toBe(g.trainedAt - g.loadedAt);
    }
    expect(report.timings.trainWallMs).toBe(
      Math.max(...report.groves.map((g) => g.landedAt)) - Math.min(...report.groves.map((g) => g.startedAt)),
    );
    expect(report.timings.treesPerSecond).toBeCloseTo((20 * 1000) / report.timings.trainWallMs, 6);
    expect(report.timings.prepareMs).toBe(shuffled.prepared.prepareMs);
    expect(report.kind).toBe("build");
    // 64 pixel columns, 3 of them blank on every row and dropped as constant.
    expect(report.dataset).toMatchObject({ featureTypes: { numeric: 61 }, missingCells: 0 });
    const curve = report.metricsByTrees!;
    expect(curve).toMatchObject({ rows: "test", n: 450 });
    expect(curve.points.map((p) => p.trees)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(curve.points[19].accuracy).toBe(note.metrics?.accuracy);
    expect(report.groves.every((g) => typeof g.straggler === "boolean")).toBe(true);
    expect(report.timings.aggregateMs).toBeGreaterThan(report.timings.loadGrovesMs + report.timings.mergeMs + report.timings.evaluateMs);
  });

  it("records who trained each grove and on which delivery, and stores report.html when given a renderer", async () => {
    const p = memoryPipeline();
    const prepared = await prepareDataset(digits, { label: "digit" }, p.blobs, p.clock);
    const spec = parseBuildSpec({ dataset: "test/fixtures/digits.csv", label: "digit", n_estimators: 4, grove_size: 2, seed: 1 });
    const { buildId } = await submitBuild(spec, p, prepared);
    const tasks = p.queue.drain();
    await trainGrove(tasks[0], { blobs: p.blobs, ledger: p.ledger, clock: p.clock }, { worker: "thread-7", attempt: 2 });
    await trainGrove(tasks[1], { blobs: p.blobs, ledger: p.ledger, clock: p.clock }, { worker: "thread-8", attempt: 1 });
    const record = await p.ledger.get(buildId);
    expect(record!.groveStats[0]).toMatchObject({ worker: "thread-7", attempt: 2 });
    // A first delivery is not recorded: absent means attempt 1.
    expect(record!.groveStats[1]).toMatchObject({ worker: "thread-8" });
    expect(record!.groveStats[1]).not.toHaveProperty("attempt");

    await Promise.all(p.aggregations);
    expect(await p.blobs.exists(keys.reportHtml(buildId))).toBe(false); // no renderer given
  });

  it("stores report.html rendered from the report it stores, and counts its PUT in the cost", async () => {
    const rendered: BuildReport[] = [];
    const p = memoryPipeline({
      renderReport: (r) => {
        rendered.push(r);
        return `<!doctype html><title>${r.buildId}</title>`;
      },
    });
    const prepared = await prepareDataset(digits, { label: "digit" }, p.blobs, p.clock);
    const spec = parseBuildSpec({ dataset: "test/fixtures/digits.csv", label: "digit", n_estimators: 4, grove_size: 2, seed: 1 });
    const { buildId } = await submitBuild(spec, p, prepared);
    for (const task of p.queue.drain()) await trainGrove(task, { blobs: p.blobs, ledger: p.ledger, clock: p.clock });
    const [outcome] = await Promise.all(p.aggregations);
    expect(outcome).toMatchObject({ outcome: "completed", reportHtmlKey: keys.reportHtml(buildId) });
    const html = new TextDecoder().decode((await p.blobs.get(keys.reportHtml(buildId)))!);
    expect(html).toBe(`<!doctype html><title>${buildId}</title>`);
    const report = await readJson<BuildReport>(p.blobs, keys.report(buildId));
    expect(rendered).toEqual([report]);
    expect(report.cost.requests.s3Puts).toBe(2 + 2 + 3); // spec, pack, 2 groves, model, report.json, report.html
  });

  it("completes the build when report.html cannot be made, and says why", async () => {
    const p = memoryPipeline({
      renderReport: () => {
        throw new Error("chart library missing");
      },
    });
    const prepared = await prepareDataset(digits, { label: "digit" }, p.blobs, p.clock);
    const spec = parseBuildSpec({ dataset: "test/fixtures/digits.csv", label: "digit", n_estimators: 2, grove_size: 2, seed: 1 });
    const { buildId } = await submitBuild(spec, p, prepared);
    for (const task of p.queue.drain()) await trainGrove(task, { blobs: p.blobs, ledger: p.ledger, clock: p.clock });
    const [outcome] = await Promise.all(p.aggregations);
    expect(outcome).toMatchObject({ outcome: "completed", reportHtmlError: "chart library missing" });
    expect(outcome).not.toHaveProperty("reportHtmlKey");
    expect((await p.ledger.get(buildId))?.status).toBe("COMPLETED");
    expect(await p.blobs.exists(keys.reportHtml(buildId))).toBe(false);
    expect(p.notifier.published.map((n) => n.type)).toEqual(["build.completed"]);
  });
});
