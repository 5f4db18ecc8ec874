/**
 * report.html in real headless Chromium (Debian's package, driven by playwright-core; installed by the test
 * when missing, see chromium.ts): the pages of a 100-tree digits build and a diabetes (regression) build, as
 * `canopy train --out` writes them, open from disk with no console error and no request leaving file://, and
 * every chart is drawn with one mark per tree, class cell, grove or held-out row. Screenshots go to
 * test/report/screenshots/ (git-ignored).
 */
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { BuildReport, StudyReport } from "@canopy/core";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canopy, fixture, tempDir } from "../cli/support.ts";
import { launchChromium, type Headless } from "./chromium.ts";

const SHOTS = fileURLToPath(new URL("./screenshots/", import.meta.url));

let chromium: Headless;
const builds: Record<"digits" | "diabetes" | "extended" | "oob", { dir: string; report: BuildReport }> = {} as never;

async function train(name: "digits" | "diabetes" | "oob", args: string[]) {
  const dir = await tempDir();
  const run = await canopy(["train", fixture(`${name === "oob" ? "iris" : name}.csv`), ...args, "--workers", "2", "--out", "out"], dir);
  if (run.code !== 0) throw new Error(`canopy train ${name} exited ${run.code}: ${run.stderr}`);
  builds[name] = { dir: join(dir, "out"), report: JSON.parse(readFileSync(join(dir, "out", "report.json"), "utf8")) as BuildReport };
}

/** The diabetes build extended to 80 trees, in its store: canopy train --extend. */
async function extend() {
  const dir = join(builds.diabetes.dir, "..");
  const run = await canopy(["train", "--extend", builds.diabetes.report.buildId, "--trees", "80", "--workers", "2", "--out", "extended"], dir);
  if (run.code !== 0) throw new Error(`canopy train --extend exited ${run.code}: ${run.stderr}`);
  builds.extended = { dir: join(dir, "extended"), report: JSON.parse(readFileSync(join(dir, "extended", "report.json"), "utf8")) as BuildReport };
}

let study: { page: string; report: StudyReport };

/** A small study of iris: 3 x 2 candidates (max_depth with None: a band per value), 3 folds, as canopy tune writes it. */
async function tuneIris() {
  const dir = await tempDir();
  const args = ["tune", fixture("iris.csv"), "--label", "species", "--grid", "max_depth=1,3,none", "--grid", "min_samples_leaf=1,5", "--cv", "3", "--trees", "10"];
  const run = await canopy([...args, "--workers", "2", "--json"], dir);
  if (run.code !== 0) throw new Error(`canopy tune exited ${run.code}: ${run.stderr}`);
  const report = JSON.parse(run.stdout) as StudyReport;
  study = { page: join(dir, ".canopy", "studies", report.studyId, "report.html"), report };
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  // The first run on a machine may install chromium (apt-get): minutes, not seconds.
  [chromium] = await Promise.all([
    launchChromium(),
    tuneIris(),
    train("digits", ["--label", "digit", "--trees", "100"]),
    train("diabetes", ["--trees", "50", "--grove-size", "10"]).then(extend),
    train("oob", ["--trees", "30", "--oob-score"]),
  ]);
}, 900_000);

afterAll(async () => {
  await chromium?.close();
});

interface Opened {
  page: Page;
  errors: string[];
  requests: string[];
  /** Elements drawn by each mark, by the mark's aria-description. */
  marks: Record<string, number>;
  drawn: (string | null)[];
}

async function open(file: string): Promise<Opened> {
  const page = await chromium.context.newPage();
  const errors: string[] = [];
  const requests: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") errors.push(`${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`uncaught: ${e.message}`));
  page.on("request", (r) => requests.push(r.url()));
  await page.goto(pathToFileURL(file).href, { waitUntil: "load" });
  // A string: this program is type-checked without the DOM library.
  await page.waitForFunction(`[...document.querySelectorAll("figure[data-chart]")].every((f) => f.hasAttribute("data-drawn"))`);
  const drawn = await page.$$eval("figure[data-chart]", (figures) => figures.map((f) => f.getAttribute("data-drawn")));
  const marks = await page.$$eval("svg g[aria-description]", (groups) => {
    const out: Record<string, number> = {};
    for (const g of groups) {
      const key = g.getAttribute("aria-description")!;
      out[key] = (out[key] ?? 0) + g.childElementCount;
    }
    return out;
  });
  return { page, errors, requests, marks, drawn };
}

/** Opens `file`, runs `check` on it, always closes the page. */
async function withPage(file: string, check: (o: Opened) => Promise<void>): Promise<void> {
  const o = await open(file);
  try {
    await check(o);
  } finally {
    await o.page.close();
  }
}

async function shoot(o: Opened, name: string): Promise<void> {
  await o.page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  await o.page.locator("#timeline").screenshot({ path: join(SHOTS, `${name}-timeline.png`) });
  await o.page.locator("#trees").screenshot({ path: join(SHOTS, `${name}-trees.png`) });
}

describe("report.html in headless Chromium", () => {
  it("digits (100 trees): every chart drawn, a point per tree, a cell per pair of the 10 classes, a bar per grove", async () => {
    const { dir, report } = builds.digits;
    const file = join(dir, "report.html");
    await withPage(file, async (o) => {
      await shoot(o, "digits");
      expect(o.errors).toEqual([]);
      expect(o.requests).toEqual([pathToFileURL(file).href]);
      expect(o.drawn.length).toBeGreaterThanOrEqual(6);
      expect(o.drawn.every((d) => d === "true")).toBe(true);

      const groves = report.groves.length;
      expect(groves).toBe(10);
      expect(o.marks).toMatchObject({
        "curve-point": 100 + 100, // accuracy and log-loss, one point per number of trees
        "confusion-cell": 10 * 10,
        "importance-bar": 10,
        grove: groves,
        "grove-stage": groves * 4, // load, train, store, land
        "grove-wait": groves,
        aggregation: 1,
        straggler: report.groves.filter((g) => g.straggler).length,
      });
      // The class labels on both axes of the matrix.
      const ticks = await o.page.$$eval('figure[data-chart="confusion"] svg g[aria-label="x-axis tick label"] text', (t) => t.map((x) => x.textContent));
      expect(ticks).toEqual(report.dataset.classes);
      // Tooltips say what a mark is.
      const title = await o.page.$eval('svg g[aria-description="grove"] > *:first-child title', (t) => t.textContent);
      expect(title).toMatch(/^grove \d+: trees \d+–\d+ on thread-\d+/);

      const bytes = statSync(file).size;
      console.log(`report.html of a 100-tree digits build: ${(bytes / 1024).toFixed(0)} KB (${report.groves.length} groves, ${report.dataset.testRows} held-out rows)`);
      expect(bytes).toBeLessThan(1024 * 1024);
    });
  });

  it("diabetes (regression, 50 trees): the curve, predicted vs actual and residuals per held-out row, the timeline", async () => {
    const { dir, report } = builds.diabetes;
    const file = join(dir, "report.html");
    await withPage(file, async (o) => {
      await shoot(o, "diabetes");
      expect(o.errors).toEqual([]);
      expect(o.requests).toEqual([pathToFileURL(file).href]);
      expect(o.drawn.every((d) => d === "true")).toBe(true);
      expect(report.groves).toHaveLength(5);
      expect(o.marks).toMatchObject({
        "curve-point": 50 + 50, // R² and MSE
        "prediction-point": report.dataset.testRows,
        "residual-point": report.dataset.testRows,
        grove: 5,
        "importance-bar": 10,
      });
      expect(o.marks).not.toHaveProperty("confusion-cell");
    });
  });

  it("an extension (diabetes 50 -> 80 trees): the copied groves drawn as one copy bar each on their own row", async () => {
    const { dir, report } = builds.extended;
    const file = join(dir, "report.html");
    await withPage(file, async (o) => {
      await shoot(o, "extended");
      expect(o.errors).toEqual([]);
      expect(o.requests).toEqual([pathToFileURL(file).href]);
      expect(o.drawn.every((d) => d === "true")).toBe(true);
      const copied = report.groves.filter((g) => g.copied).length;
      expect([copied, report.groves.length]).toEqual([5, 8]);
      expect(o.marks).toMatchObject({
        "curve-point": 80 + 80,
        grove: 8,
        "grove-stage": 3 * 4 + copied, // a trained grove's load, train, store, land; a copy's one bar
        "grove-wait": 3,
      });
      const rows = await o.page.$$eval('figure[data-chart="timeline"] svg g[aria-label="y-axis tick label"] text', (t) => t.map((x) => x.textContent));
      expect(rows).toContain("copied");
      expect(await o.page.textContent("header")).toContain(`This build extends build ${builds.diabetes.report.buildId} (50 trees) to 80 trees`);
    });
  });

  it("an iris build with --oob-score: the out-of-bag curve beside the held-out ones, oob_score on a card", async () => {
    const { dir, report } = builds.oob;
    const file = join(dir, "report.html");
    await withPage(file, async (o) => {
      await shoot(o, "oob");
      expect(o.errors).toEqual([]);
      expect(o.requests).toEqual([pathToFileURL(file).href]);
      expect(o.drawn.every((d) => d === "true")).toBe(true);
      const oobPoints = report.oobMetricsByTrees!.points.length;
      expect(oobPoints).toBeGreaterThanOrEqual(29);
      expect(o.marks).toMatchObject({ "curve-point": 30 + 30 + oobPoints });
      const drawnOob = await o.page.$$eval('figure[data-chart="curve-oob"] svg g[aria-description="curve-point"]', (g) => g.reduce((n, x) => n + x.childElementCount, 0));
      expect(drawnOob).toBe(oobPoints);
      expect(await o.page.textContent(".cards")).toContain("out of bag (oob_score)");
      expect(await o.page.textContent("#trees")).toContain(`oob_score ${report.oob_score!.toFixed(4)}`);
    });
  });

  it("a study (iris, 6 candidates x 3 folds): the ranked table, a point and a spread per candidate against each parameter, the best marked", async () => {
    const r = study.report;
    const o = await open(study.page);
    expect(o.errors).toEqual([]);
    expect(o.requests.filter((u) => !u.startsWith("file://"))).toEqual([]);
    expect(o.drawn).toEqual(["true", "true"]);
    // Two charts (max_depth, min_samples_leaf), each a dot and a spread per candidate and one best ring.
    expect(o.marks["param-point"]).toBe(2 * r.candidates.length);
    expect(o.marks["param-spread"]).toBe(2 * r.candidates.length);
    expect(o.marks["param-best"]).toBe(2 * r.candidates.filter((c) => c.rank_test_score === 1).length);
    // max_depth has None among its values: its axis is one band per value, in the grid's order.
    const ticks = await o.page.$$eval('figure[data-chart="param-max_depth"] svg [aria-label="x-axis tick label"] text', (t) => t.map((e) => e.textContent));
    expect(ticks).toEqual(["1", "3", "None"]);
    const ranks = await o.page.$$eval("#ranking table.sortable tbody tr", (rows) => rows.map((row) => Number(row.querySelector("td")!.textContent)));
    expect(ranks).toEqual([...r.candidates.map((c) => c.rank_test_score)].sort((a, b) => a - b));
    expect(await o.page.$$eval("#best li a", (a) => a.map((e) => e.textContent))).toEqual(r.candidates[r.best_index_].buildIds);
    // The final model (canopy tune's default refit): its build and its held-out scores, measured once.
    expect(await o.page.$$eval("#final a", (a) => a.map((e) => e.textContent))).toEqual([r.final!.buildId]);
    const finalText = await o.page.textContent("#final");
    expect(finalText).toContain(`${r.final!.testRows} held-out rows`);
    expect(finalText).toMatch(/test accuracy\s*0\.\d+/);
    expect(await o.page.textContent(".cards")).toContain("final model's test accuracy");
    await o.page.screenshot({ path: join(SHOTS, "study.png"), fullPage: true });
    await o.page.close();
  });

  it("sorts the grove table by a column on click", async () => {
    await withPage(join(builds.digits.dir, "report.html"), async (o) => {
      await o.page.click("#timeline details summary");
      const column = (i: number) => o.page.$$eval(`#timeline table.sortable tbody tr td:nth-child(${i})`, (cells) => cells.map((c) => Number(c.getAttribute("data-sort"))));
      await o.page.click("#timeline table.sortable th:nth-child(7)"); // train time, ascending
      const train = await column(7);
      expect(train).toEqual([...train].sort((a, b) => a - b));
      await o.page.click("#timeline table.sortable th:nth-child(7)"); // again: descending
      expect(await column(7)).toEqual([...train].reverse());
      expect(o.errors).toEqual([]);
    });
  });
});
