// iris, string labels: train -> predict -> inspect -> export, through the real CLI.
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { RandomForestClassifier } from "ml-random-forest";
import { beforeAll, describe, expect, it } from "vitest";
import { canopy, csvRows, fixture, tempDir } from "./support.ts";

const IRIS = fixture("iris.csv");
let dir: string;
let report: { buildId: string; metrics: { accuracy: number }; model: { trees: number } };
let trainRun: Awaited<ReturnType<typeof canopy>>;

beforeAll(async () => {
  dir = await tempDir();
  trainRun = await canopy(["train", IRIS, "--trees", "20", "--grove-size", "5", "--seed", "3", "--out", "out"], dir);
  report = JSON.parse(await readFile(join(dir, "out", "report.json"), "utf8"));
});

async function irisTruth(): Promise<string[]> {
  return csvRows(await readFile(IRIS, "utf8"))
    .slice(1)
    .map((row) => row[4]);
}

describe("canopy on iris (string labels)", () => {
  it("train prints the metrics and where the model is, and fills --out", async () => {
    expect(trainRun.code).toBe(0);
    expect(trainRun.stdout).toMatch(/metrics\s+accuracy \d\.\d{4}\s+macro-F1 \d\.\d{4}\s+log-loss \d\.\d{4}/);
    expect(trainRun.stdout).toMatch(/model\s+out\/model\.canopy/);
    expect(trainRun.stdout).toMatch(/report\s+out\/report\.json/);
    expect(trainRun.stdout).toContain(report.buildId);
    // Not a TTY: plain progress lines on stderr, one per grove.
    expect(trainRun.stderr.match(/groves \d+\/4 landed/g)).toHaveLength(4);
    expect((await readdir(join(dir, "out"))).sort()).toEqual([".canopy-export.json", "groves", "model.canopy", "report.html", "report.json", "spec.json"]);
    expect((await readdir(join(dir, "out", "groves"))).sort()).toEqual(["00000.grove", "00001.grove", "00002.grove", "00003.grove"]);
    expect(report.model.trees).toBe(20);
    // The printed accuracy is the report's.
    expect(trainRun.stdout).toContain(`accuracy ${report.metrics.accuracy.toFixed(4)}`);
  });

  it("predict prints one label per row, named after the label column", async () => {
    const run = await canopy(["predict", "--model", "out/model.canopy", IRIS], dir);
    expect(run.code).toBe(0);
    const rows = csvRows(run.stdout);
    expect(rows[0]).toEqual(["species"]);
    const predicted = rows.slice(1).map((r) => r[0]);
    const truth = await irisTruth();
    expect(predicted).toHaveLength(truth.length);
    expect(new Set(predicted)).toEqual(new Set(["setosa", "versicolor", "virginica"]));
    // Three quarters of these rows were trained on: the forest must get nearly all of them right.
    const correct = predicted.filter((p, i) => p === truth[i]).length;
    expect(correct / truth.length).toBeGreaterThan(0.9);
  });

  it("predict matches features by name: reordered columns without the label give the same answers", async () => {
    const rows = csvRows(await readFile(IRIS, "utf8"));
    const reordered = rows.map((r) => [r[3], r[2], r[1], r[0]].join(",")).join("\n");
    await writeFile(join(dir, "reordered.csv"), `${reordered}\n`);
    const a = await canopy(["predict", "--model", "out/model.canopy", IRIS], dir);
    const b = await canopy(["predict", "--model", "out", "reordered.csv"], dir); // the --out directory names its model
    expect(b.code).toBe(0);
    expect(b.stdout).toBe(a.stdout);
  });

  it("predict --proba prints one probability column per class, rows summing to 1", async () => {
    const run = await canopy(["predict", "--proba", "--model", report.buildId, IRIS], dir);
    expect(run.code).toBe(0);
    const rows = csvRows(run.stdout);
    expect(rows[0]).toEqual(["setosa", "versicolor", "virginica"]);
    const labels = csvRows((await canopy(["predict", "--model", report.buildId, IRIS], dir)).stdout).slice(1);
    rows.slice(1).forEach((row, i) => {
      const p = row.map(Number);
      expect(p.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 9);
      // The label is the most probable class.
      expect(rows[0][p.indexOf(Math.max(...p))]).toBe(labels[i][0]);
    });
  });

  it("inspect describes the model, by file or by build id, with the report's metrics", async () => {
    const run = await canopy(["inspect", "out/model.canopy", "--json"], dir);
    expect(run.code).toBe(0);
    const s = JSON.parse(run.stdout);
    expect(s).toMatchObject({
      format: "canopy-forest",
      version: 3,
      task: "classification",
      label: "species",
      trees: 20,
      features: 4,
      classes: ["setosa", "versicolor", "virginica"],
      buildId: report.buildId,
      metrics: report.metrics,
    });
    expect(s.params).toMatchObject({ n_estimators: 20, random_state: 3 });
    expect(s.nodes).toBeGreaterThan(20);
    expect(s.featureImportances.map((f: { feature: string }) => f.feature).sort()).toEqual(["petal_length", "petal_width", "sepal_length", "sepal_width"]);
    const total = s.featureImportances.reduce((sum: number, f: { importance: number }) => sum + f.importance, 0);
    expect(total).toBeCloseTo(1, 9);

    const byId = await canopy(["inspect", report.buildId], dir);
    expect(byId.code).toBe(0);
    expect(byId.stdout).toMatch(/trees\s+20\n/);
    expect(byId.stdout).toMatch(/classes\s+3: setosa, versicolor, virginica/);
    expect(byId.stdout).toContain(`accuracy ${report.metrics.accuracy.toFixed(4)}`);
    expect(byId.stdout).toMatch(/feature importances \(top 4\):\n\s+petal_/);
  });

  it("export --format ml-random-forest writes JSON that ml-random-forest loads and predicts with", async () => {
    // --force: the export's majority vote differs from the model's averaged probabilities on a tie (see hardening.test.ts).
    const run = await canopy(["export", "--format", "ml-random-forest", "out/model.canopy", "--out", "mlrf.json", "--force"], dir);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe("");
    const model = RandomForestClassifier.load(JSON.parse(await readFile(join(dir, "mlrf.json"), "utf8")));
    const rows = csvRows(await readFile(IRIS, "utf8")).slice(1);
    const codes = model.predict(rows.map((r) => r.slice(0, 4).map(Number)));
    const classes = ["setosa", "versicolor", "virginica"];
    const truth = await irisTruth();
    const correct = codes.filter((c: number, i: number) => classes[c] === truth[i]).length;
    expect(correct / truth.length).toBeGreaterThan(0.9);

    // Without --out, the same JSON goes to stdout.
    const toStdout = await canopy(["export", "--format", "ml-random-forest", report.buildId, "--force"], dir);
    expect(toStdout.stdout).toBe(await readFile(join(dir, "mlrf.json"), "utf8"));
  });
});
