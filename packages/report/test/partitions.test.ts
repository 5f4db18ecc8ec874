import { keys, parseBuildSpec, type PartitionReport } from "@canopy/core";
import { partitionedRunInMemory } from "@canopy/core/testing";
import { describe, expect, it } from "vitest";
import { PAGE_ROWS } from "../src/html.ts";
import { renderReport } from "../src/index.ts";

/**
 * A seeded table of our making: three stores of 40-60 rows, one of them named `<b>&"` (markup, an ampersand and a
 * quote, as a value in the data may be), and a store of 5 rows below the minimum (skipped).
 */
function sales(): string {
  let s = 11;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const stores = ['"<b>&"""', "north", "south"];
  const lines = ["store,x,y,label"];
  for (const [k, store] of stores.entries())
    for (let i = 0; i < 40 + 10 * k; i++) {
      const x = rnd() * 10;
      lines.push(`${store},${x.toFixed(3)},${(rnd() * 3).toFixed(2)},${x + k > 6 ? "yes" : "no"}`);
    }
  for (let i = 0; i < 5; i++) lines.push(`tiny,${i},1,${i % 2 ? "yes" : "no"}`);
  return `${lines.join("\n")}\n`;
}

async function salesReport(o: Record<string, unknown> = {}, fallback = true): Promise<PartitionReport> {
  const spec = parseBuildSpec({ dataset: "data/sales.csv", label: "label", n_estimators: 6, grove_size: 3, seed: 4, ...o });
  const run = await partitionedRunInMemory(sales(), spec, { partitionBy: "store", minPartitionRows: 20, ...(fallback ? { fallback: "global" as const } : {}) });
  return JSON.parse(new TextDecoder().decode((await run.blobs.get(keys.partitionReport(run.runId)))!)) as PartitionReport;
}

/** The chart specs a page carries, as its script reads them. */
function chartsOf(html: string): Record<string, any> {
  const match = /<script type="application\/json" id="canopy-charts">(.*?)<\/script>/s.exec(html);
  if (!match) throw new Error("no chart specs in the page");
  return JSON.parse(match[1]);
}

/** The rows of the table in section `id`, each as its cells' HTML. */
function tableRows(html: string, id: string): string[][] {
  const section = new RegExp(`<section id="${id}">(.*?)</section>`, "s").exec(html)![1];
  const body = /<tbody>(.*?)<\/tbody>/s.exec(section)![1];
  return [...body.matchAll(/<tr>(.*?)<\/tr>/gs)].map((row) => [...row[1].matchAll(/<td[^>]*>(.*?)<\/td>/gs)].map((c) => c[1]));
}

const report = salesReport();

describe("report.html of a partitioned run", () => {
  it("has a row per partition with its rows, test metrics, trees, size and its build's page; the skipped ones named with why", async () => {
    const r = await report;
    const html = renderReport(r);
    const partitions = r.partitions.filter((p) => !p.fallback);
    expect(partitions.map((p) => p.value)).toEqual(['<b>&"', "north", "south"]);
    const rows = tableRows(html, "partitions");
    expect(rows.map((cells) => cells[0])).toEqual(["&#60;b&#62;&#38;&#34;", "north", "south"]);
    for (const [i, p] of partitions.entries()) {
      const metric = (key: string) => (p.metrics![key] as number).toFixed(4);
      expect(rows[i].slice(1, 8)).toEqual([String(p.rows), String(p.trainRows), String(p.testRows), metric("accuracy"), metric("macro_f1"), metric("log_loss"), String(p.trees)]);
      expect(rows[i].at(-2)).toBe("COMPLETED");
      expect(rows[i].at(-1)).toBe(`<a class="nowrap" href="../../builds/${p.buildId}/report.html">${p.buildId}</a>`);
    }
    expect(tableRows(html, "skipped")).toEqual([["tiny", "5", "5 rows, fewer than --min-partition-rows 20"]]);
    expect(r.counts).toMatchObject({ partitions: 4, completed: 3, skipped: 1 });
    expect(html).toContain("<b>3 of 4</b><span>partitions by store trained</span>");
    // The fallback has a section of its own, not a row among the partitions.
    const fallback = r.partitions.find((p) => p.fallback)!;
    expect(/<section id="fallback">.*<\/section>/s.exec(html)![0]).toContain(`href="../../builds/${fallback.buildId}/report.html"`);
  });

  it("escapes a partition value everywhere: the markup never reaches the page as markup, nor closes the chart JSON", async () => {
    const html = renderReport(await report);
    expect(html).not.toContain('<b>&"');
    expect(html).toContain("&#60;b&#62;&#38;&#34;");
    const charts = chartsOf(html);
    expect(charts.spread.points.map((p: { title: string }) => p.title)).toContainEqual(expect.stringMatching(/^store = <b>&": \d+ rows, test accuracy /));
  });

  it("charts one point per completed partition (rows against its test accuracy), the row-weighted mean and the fallback", async () => {
    const r = await report;
    const charts = chartsOf(renderReport(r));
    const partitions = r.partitions.filter((p) => !p.fallback);
    expect(charts.spread).toMatchObject({ kind: "partitions", yLabel: "test accuracy" });
    expect(charts.spread.points.map((p: { x: number; y: number }) => [p.x, p.y])).toEqual(partitions.map((p) => [p.rows, p.metrics!.accuracy]));
    expect(charts.spread.mean.map((m: { y: number }) => m.y)).toEqual([r.metrics.accuracy]);
    const fallback = r.partitions.find((p) => p.fallback)!;
    expect(charts.spread.fallback.map((p: { x: number; y: number }) => [p.x, p.y])).toEqual([[fallback.rows, fallback.metrics!.accuracy]]);
  });

  it("a failed partition: FAILED with its error (escaped) and no link, no point in the chart", async () => {
    const r = structuredClone(await report);
    const failed = r.partitions[1];
    Object.assign(failed, { status: "FAILED", error: 'grove 0: out of memory <script>' });
    for (const k of ["metrics", "trainRows", "testRows", "trees", "modelBytes", "usd"] as const) delete failed[k];
    const html = renderReport(r);
    const row = tableRows(html, "partitions")[1];
    expect(row.at(-2)).toBe('<span class="bad" title="grove 0: out of memory &#60;script&#62;">FAILED</span>');
    expect(row.at(-1)).toBe(`<span class="nowrap">${failed.buildId}</span>`);
    expect(row.slice(2, 8)).toEqual(Array(6).fill("–"));
    expect(chartsOf(html).spread.points).toHaveLength(r.partitions.filter((p) => !p.fallback).length - 1);
  });

  it("regression: R² on the chart and in the table; nothing held out: no chart, and the page says why", async () => {
    const regression = await salesReport({ label: "x" }, false);
    expect(regression.task).toBe("regression");
    const html = renderReport(regression);
    expect(chartsOf(html).spread.yLabel).toBe("test R²");
    expect(html).toContain("<th scope=\"col\" class=\"num\">test R²</th>");
    expect(html).not.toContain('id="fallback"');
    const none = renderReport(await salesReport({ test_fraction: 0 }, false));
    expect(chartsOf(none)).toEqual({});
    expect(none).toContain("No partition has a held-out score (test_fraction 0): nothing to chart.");
  });

  it(`a run of thousands of partitions: every row in the page, the table marked to show ${PAGE_ROWS} at a time`, async () => {
    const r = structuredClone(await report);
    const one = r.partitions[0];
    r.partitions = Array.from({ length: 2 * PAGE_ROWS + 1 }, (_, i) => ({ ...one, key: `s${i}`, value: `s${i}`, rows: 20 + i }));
    const html = renderReport(r);
    expect(tableRows(html, "partitions").map((cells) => cells[0])).toEqual(r.partitions.map((p) => p.value));
    expect(html).toContain(`<table class="sortable paged" data-page-rows="${PAGE_ROWS}">`);
    expect(chartsOf(html).spread.points).toHaveLength(2 * PAGE_ROWS + 1);
    // A short table is not paged.
    expect(tableRows(html, "skipped")).toHaveLength(1);
    expect((/<section id="skipped">.*?<table class="([^"]*)"/s.exec(html) ?? [])[1]).toBe("sortable");
  });
});
