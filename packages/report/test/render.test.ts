import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { aggregate, extendBuild, isAggregationTrigger, refitBuild, keys, parseBuildSpec, prepareDataset, submitBuild, trainGrove, type BuildReport } from "@canopy/core";
import { MemoryBlobStore, MemoryLedger, MemoryNotifier, MemoryQueue } from "@canopy/core/testing";
import { afterAll, describe, expect, it } from "vitest";
import { chartLibrary, CHART_LIBRARY_FILES, findInNodeModules, renderReport } from "../src/index.ts";

const fixture = (name: string) => new URL(`../../../test/fixtures/${name}`, import.meta.url);

/** A finished build's report.json, made by core on memory ports (the grove stats name a worker, as trainers do). */
async function buildReport(csv: string, spec: Record<string, unknown>): Promise<BuildReport> {
  const ports = { blobs: new MemoryBlobStore(), ledger: new MemoryLedger(), queue: new MemoryQueue(), notifier: new MemoryNotifier() };
  const done: Promise<unknown>[] = [];
  ports.ledger.watch((change) => {
    if (isAggregationTrigger(change)) done.push(aggregate(change.new.buildId, ports));
  });
  const prepared = await prepareDataset(readFileSync(fixture(csv)), spec.label ? { label: String(spec.label) } : {}, ports.blobs);
  const { buildId } = await submitBuild(parseBuildSpec({ dataset: `test/fixtures/${csv}`, ...spec }), ports, prepared);
  const tasks = ports.queue.drain();
  for (const [i, task] of tasks.entries()) await trainGrove(task, ports, { worker: `thread-${i % 2}`, attempt: i === 1 ? 2 : 1 });
  await Promise.all(done);
  return JSON.parse(new TextDecoder().decode((await ports.blobs.get(keys.report(buildId)))!)) as BuildReport;
}

/** The chart specs a page carries, as its script reads them. */
function chartsOf(html: string): Record<string, any> {
  const match = /<script type="application\/json" id="canopy-charts">(.*?)<\/script>/s.exec(html);
  if (!match) throw new Error("no chart specs in the page");
  return JSON.parse(match[1]);
}

const digits = buildReport("digits.csv", { label: "digit", n_estimators: 12, grove_size: 3, seed: 2 });
const diabetes = buildReport("diabetes.csv", { n_estimators: 8, grove_size: 4, seed: 2 });

describe("report.html of a build", () => {
  it("is one page carrying d3, Plot and a chart spec per chart, sized by the report", async () => {
    const report = await digits;
    const html = renderReport(report);
    const library = chartLibrary();
    for (const script of library.scripts) expect(html).toContain(`<script>${script.text}</script>`);
    expect(html.indexOf("d3js.org")).toBeLessThan(html.indexOf("@observablehq/plot")); // d3 first: Plot reads the global
    expect(html).toMatch(/<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">/);
    expect(html).not.toMatch(/<(?:script|link|img)[^>]+(?:src|href)="(?!data:)/); // nothing loaded from elsewhere

    const charts = chartsOf(html);
    expect(charts["curve-accuracy"].points).toHaveLength(12);
    expect(charts["curve-accuracy"].points.at(-1).value).toBe(report.metrics!.task === "classification" && report.metrics!.accuracy);
    expect(charts["curve-log_loss"].points).toHaveLength(12);
    expect(charts.confusion.classes).toEqual(report.dataset.classes);
    expect(charts.confusion.cells).toHaveLength(10 * 10);
    const cells = charts.confusion.cells as { actual: string; predicted: string; count: number }[];
    expect(cells.reduce((s, c) => s + c.count, 0)).toBe(report.dataset.testRows);
    expect(charts.importances.bars.map((b: { label: string }) => b.label)).toEqual(report.featureImportances.map((f) => f.feature));
    expect(charts.timeline.groves).toHaveLength(4);
    expect(charts.timeline.rows).toEqual(["thread-0", "thread-1", "aggregator"]);
    expect(charts.timeline.segments).toHaveLength(4 * 5);
    expect(charts.timeline.groves.map((g: { attempt: number }) => g.attempt)).toEqual([1, 2, 1, 1]);
    expect(charts).not.toHaveProperty("predicted");
    expect(charts).not.toHaveProperty("cost"); // trained without Lambda memory: no bill to chart
    expect(html).toContain("1 grove(s) landed on a retry");
    expect(html).toContain("whether extending the model (adding trees) is worth it");
  });

  it("shows predicted against actual and residuals for regression, and the cost when groves ran on Lambda", async () => {
    const report = await diabetes;
    const onLambda: BuildReport = {
      ...report,
      cost: { ...report.cost, totals: { ...report.cost.totals, billedGbS: 12.5 }, usd: { ...report.cost.usd, lambdaCompute: 0.0002, total: 0.00025 } },
    };
    const charts = chartsOf(renderReport(onLambda));
    expect(charts).not.toHaveProperty("confusion");
    expect(charts["curve-r2"].points).toHaveLength(8);
    expect(charts.predicted.points).toHaveLength(report.dataset.testRows);
    expect(charts.predicted.points.map((p: { x: number }) => p.x)).toEqual(report.predictions!.actual);
    expect(charts.residuals.points[0].y).toBeCloseTo(report.predictions!.actual[0] - report.predictions!.predicted[0], 12);
    expect(charts.cost.bars.map((b: { label: string }) => b.label)).toEqual(["Lambda compute", "Lambda requests", "SQS", "DynamoDB", "S3", "SNS"]);
    expect(charts.cost.bars[0].value).toBe(0.0002);
  });

  it("escapes what came from the data: names cannot close the chart JSON or inject markup", async () => {
    const report = await digits;
    const evil = '</script><img src=x onerror="alert(1)">';
    const tampered: BuildReport = {
      ...report,
      dataset: { ...report.dataset, labelName: evil },
      featureImportances: [{ feature: evil, importance: 1 }],
      tags: { note: evil },
    };
    const html = renderReport(tampered);
    expect(html).not.toContain(evil);
    expect(html).toContain("&#60;/script&#62;&#60;img src=x onerror=&#34;alert(1)&#34;&#62;");
    expect(chartsOf(html).importances.bars[0].label).toBe(evil); // intact once parsed
  });

  it("renders a report written before the curve, worker and feature types existed, and says what is missing", async () => {
    const { metricsByTrees, kind, ...old } = await digits;
    const older = {
      ...old,
      dataset: { ...old.dataset, featureTypes: undefined, missingCells: undefined },
      groves: old.groves.map(({ worker, attempt, straggler, ...g }) => g),
      timings: { ...old.timings, aggregateMs: undefined },
    } as BuildReport;
    const html = renderReport(older);
    expect(html).toContain("Not recorded: this report predates the curve");
    const charts = chartsOf(html);
    expect(charts).not.toHaveProperty("curve-accuracy");
    expect(charts.timeline.rows).toEqual(["grove 0", "grove 1", "grove 2", "grove 3"]);
    expect(html).toContain("this report does not say which worker trained each grove");
  });

  it("an extension: says what it extends, draws its copied groves as copies on a row of their own, not as trained", async () => {
    const ports = { blobs: new MemoryBlobStore(), ledger: new MemoryLedger(), queue: new MemoryQueue(), notifier: new MemoryNotifier() };
    const done: Promise<unknown>[] = [];
    ports.ledger.watch((change) => {
      if (isAggregationTrigger(change)) done.push(aggregate(change.new.buildId, ports));
    });
    const prepared = await prepareDataset(readFileSync(fixture("iris.csv")), {}, ports.blobs);
    const { buildId: parent } = await submitBuild(parseBuildSpec({ dataset: "test/fixtures/iris.csv", n_estimators: 6, grove_size: 3 }), ports, prepared);
    const train = async () => {
      for (const [i, task] of ports.queue.drain().entries()) await trainGrove(task, ports, { worker: `thread-${i % 2}` });
      await Promise.all(done.splice(0));
    };
    await train();
    const { buildId } = await extendBuild(parent, 12, ports);
    await train();
    const report = JSON.parse(new TextDecoder().decode((await ports.blobs.get(keys.report(buildId)))!)) as BuildReport;

    const html = renderReport(report);
    expect(html).toContain(`This build extends build ${parent} (6 trees) to 12 trees with the same options and seed: 2 of its groves were copied, 2 trained here.`);
    expect(html).toContain("2 grove(s) copied from build");
    expect(html).toContain("2 groves trained on 2 worker(s)");
    const { timeline } = chartsOf(html);
    expect(timeline.rows).toEqual(["copied", "thread-0", "thread-1", "aggregator"]);
    expect(timeline.stages).toContain("copy");
    const stagesOf = (grove: number) => timeline.segments.filter((x: { grove: number }) => x.grove === grove).map((x: { stage: string; row: string }) => `${x.row}:${x.stage}`);
    expect(stagesOf(0)).toEqual(["copied:copy"]);
    expect(stagesOf(1)).toEqual(["copied:copy"]);
    expect(stagesOf(2)).toEqual(["thread-0:queued", "thread-0:load", "thread-0:train", "thread-0:store", "thread-0:land"]);
    expect(timeline.groves[0].title).toMatch(new RegExp(`^grove 0: trees 0–2 copied from build ${parent}, not trained\n`));
  });

  it("a refit with oob_score: the evaluation's held-out metrics, named as its, and the out-of-bag curve alone", async () => {
    const ports = { blobs: new MemoryBlobStore(), ledger: new MemoryLedger(), queue: new MemoryQueue(), notifier: new MemoryNotifier() };
    const done: Promise<unknown>[] = [];
    ports.ledger.watch((change) => void (isAggregationTrigger(change) && done.push(aggregate(change.new.buildId, ports))));
    const train = async () => {
      for (const task of ports.queue.drain()) await trainGrove(task, ports);
      await Promise.all(done.splice(0));
    };
    const prepared = await prepareDataset(readFileSync(fixture("iris.csv")), {}, ports.blobs);
    const { buildId } = await submitBuild(parseBuildSpec({ dataset: "iris.csv", n_estimators: 10, grove_size: 5, oob_score: true }), ports, prepared);
    await train();
    const refit = await refitBuild(buildId, ports);
    await train();
    const report = JSON.parse(new TextDecoder().decode((await ports.blobs.get(keys.report(refit.buildId)))!)) as BuildReport;
    const html = renderReport(report);
    expect(html).toContain(`This model is trained on all 150 rows, after build ${buildId} (the same options, 38 rows held out) measured the held-out metrics shown here`);
    expect(html).toContain(`accuracy (held out, build ${buildId})</span>`);
    expect(html).toContain(`Measured by build ${buildId} on its 38 held-out rows`);
    expect(html).toContain("out of bag (oob_score)");
    expect(html).toContain("Held-out curve not recorded: nothing was held out (test_fraction 0).");
    const charts = chartsOf(html);
    expect(charts).not.toHaveProperty("curve-accuracy");
    expect(charts["curve-oob"].points).toHaveLength(report.oobMetricsByTrees!.points.length);
    expect(charts["curve-oob"].label).toBe("accuracy out of bag, 150 training rows");
  });

  it("dispatches on the report's kind and refuses a kind it does not know", async () => {
    const report = await digits;
    expect(() => renderReport({ ...report, kind: "partition" } as unknown as BuildReport)).toThrow('cannot render a report of kind "partition"');
  });
});

describe("the chart library files", () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it("are found in node_modules of a directory or any above it, as Node finds packages", () => {
    const root = mkdtempSync(join(tmpdir(), "canopy-assets-"));
    dirs.push(root);
    const deep = join(root, "packages", "functions", "src");
    mkdirSync(deep, { recursive: true });
    expect(findInNodeModules(deep, CHART_LIBRARY_FILES[0])).toBeUndefined();
    expect(() => chartLibrary(deep)).toThrow(`report.html needs the chart library file node_modules/${CHART_LIBRARY_FILES[0]}, found nowhere above ${deep}`);
    for (const file of CHART_LIBRARY_FILES) {
      mkdirSync(join(root, "node_modules", file, ".."), { recursive: true });
      writeFileSync(join(root, "node_modules", file), `/* ${file} */`);
    }
    expect(findInNodeModules(deep, CHART_LIBRARY_FILES[1])).toBe(join(root, "node_modules", CHART_LIBRARY_FILES[1]));
    expect(chartLibrary(deep).scripts.map((s) => s.text)).toEqual(CHART_LIBRARY_FILES.map((f) => `/* ${f} */`));
  });
});
