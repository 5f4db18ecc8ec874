// digits with --json, diabetes (regression), through the real CLI.
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { canopy, csvRows, fixture, tempDir } from "./support.ts";

describe("canopy train --json on digits", () => {
  it("prints only the final report as JSON on stdout", async () => {
    const dir = await tempDir();
    const run = await canopy(["train", fixture("digits.csv"), "--label", "digit", "--trees", "20", "--grove-size", "10", "--json", "--tag", "team=cli"], dir);
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout); // throws if anything else is on stdout
    expect(report).toMatchObject({
      v: 1,
      status: "COMPLETED",
      tags: { team: "cli" },
      spec: { n_estimators: 20, grove_size: 10, label: "digit" },
      // 3 of the 64 pixel columns are blank in every image: dropped as constant (issue 12).
      dataset: { labelName: "digit", task: "classification", nRows: 1797, nFeatures: 61 },
      model: { trees: 20, key: `builds/${report.buildId}/model.canopy` },
    });
    expect(report.dataset.classes).toEqual(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    expect(report.metrics.task).toBe("classification");
    expect(report.metrics.n).toBe(report.dataset.testRows);
    expect(report.metrics.accuracy).toBeGreaterThan(0.8);
    expect(report.groves.map((g: { grove: number; trees: number }) => [g.grove, g.trees])).toEqual([
      [0, 10],
      [1, 10],
    ]);
    for (const key of ["trainWallMs", "mergeMs", "evaluateMs", "treesPerSecond", "totalMs"]) expect(report.timings[key]).toBeGreaterThanOrEqual(0);
    // The report on stdout is the one stored with the build.
    const stored = JSON.parse(await readFile(join(dir, ".canopy", "builds", report.buildId, "report.json"), "utf8"));
    expect(stored).toEqual(report);
    // Progress still goes to stderr.
    expect(run.stderr).toContain(`${report.buildId}: groves 2/2 landed`);
  });
});

describe("canopy on diabetes (regression)", () => {
  it("detects regression, reports R²/MSE/MAE, predicts numbers, and refuses --proba", async () => {
    const dir = await tempDir();
    const train = await canopy(["train", fixture("diabetes.csv"), "--trees", "20", "--grove-size", "10", "--max-features", "0.5", "--out", "out"], dir);
    expect(train.code).toBe(0);
    expect(train.stdout).toMatch(/metrics\s+R² -?\d\.\d{4}\s+MSE \d+\.\d{4}\s+MAE \d+\.\d{4}\s+on \d+ held-out rows/);
    expect(train.stdout).toMatch(/label "progression" \(regression\)/);
    const report = JSON.parse(await readFile(join(dir, "out", "report.json"), "utf8"));
    expect(report.dataset.task).toBe("regression");
    expect(report.spec.max_features).toBe(0.5);
    expect(report.metrics.r2).toBeGreaterThan(0.2);

    const predict = await canopy(["predict", "--model", "out/model.canopy", fixture("diabetes.csv")], dir);
    expect(predict.code).toBe(0);
    const rows = csvRows(predict.stdout);
    const truth = csvRows(await readFile(fixture("diabetes.csv"), "utf8")).slice(1).map((r) => Number(r[10]));
    expect(rows[0]).toEqual(["progression"]);
    const values = rows.slice(1).map((r) => Number(r[0]));
    expect(values).toHaveLength(truth.length);
    // Leaf means: every prediction lies within the range of the targets.
    const [lo, hi] = [Math.min(...truth), Math.max(...truth)];
    for (const v of values) expect(v >= lo && v <= hi).toBe(true);

    const proba = await canopy(["predict", "--proba", "--model", "out/model.canopy", fixture("diabetes.csv")], dir);
    expect(proba.code).toBe(2);
    expect(proba.stderr).toBe("canopy: error: --proba needs a classification model; this one is regression\n");
    expect(proba.stdout).toBe("");
  });
});

describe("canopy train --notify-url", () => {
  it("POSTs the one build notification as JSON", async () => {
    const received: { method?: string; type?: string; body: string }[] = [];
    const server = createServer((req, res) => {
      let body = "";
      req.setEncoding("utf8").on("data", (d: string) => (body += d));
      req.on("end", () => {
        received.push({ method: req.method, type: req.headers["content-type"], body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
      const dir = await tempDir();
      const run = await canopy(["train", fixture("iris.csv"), "--trees", "10", "--grove-size", "5", "--tag", "run=ci", "--notify-url", url, "--json"], dir);
      expect(run.code).toBe(0);
      const report = JSON.parse(run.stdout);
      expect(received).toHaveLength(1);
      expect(received[0].method).toBe("POST");
      expect(received[0].type).toBe("application/json");
      const notification = JSON.parse(received[0].body);
      expect(notification).toMatchObject({
        v: 1,
        type: "build.completed",
        status: "COMPLETED",
        buildId: report.buildId,
        tags: { run: "ci" },
        modelKey: report.model.key,
        metrics: { accuracy: report.metrics.accuracy },
      });
    } finally {
      server.close();
    }
  });
});

describe("canopy train --oob-score --refit", () => {
  it("measures on the held-out rows, then ships a model trained on every row whose report says whose metrics it carries", async () => {
    const dir = await tempDir();
    const run = await canopy(["train", fixture("iris.csv"), "--trees", "20", "--oob-score", "--refit", "--out", "out"], dir);
    expect(run.code, run.stderr).toBe(0);
    const shipped = JSON.parse(await readFile(join(dir, "out", "report.json"), "utf8"));
    const evaluationId = shipped.refitOf.of;
    const evaluation = JSON.parse(await readFile(join(dir, ".canopy", "builds", evaluationId, "report.json"), "utf8"));
    expect(shipped.dataset).toMatchObject({ trainRows: 150, testRows: 0 });
    expect(shipped.metrics).toBeNull();
    expect(shipped.refitOf).toMatchObject({ trainRows: 112, testRows: 38, metrics: { accuracy: evaluation.metrics.accuracy }, oob_score: evaluation.oob_score });
    expect(shipped.oob).toMatchObject({ metric: "accuracy", rows: 150 });
    expect(JSON.parse(await readFile(join(dir, ".canopy", "builds", evaluationId, "refit.json"), "utf8"))).toEqual({ v: 1, refit: shipped.buildId });
    // --out exports the refit build, its oob.bin included.
    const exported = await readFile(join(dir, "out", "oob.bin"));
    expect(exported.equals(await readFile(join(dir, ".canopy", "builds", shipped.buildId, "oob.bin")))).toBe(true);
    expect(JSON.parse(await readFile(join(dir, "out", ".canopy-export.json"), "utf8")).files).toContain("oob.bin");
    // The summary says which model the metrics describe, and the out-of-bag score.
    expect(run.stdout).toMatch(new RegExp(`refit\\s+this model is trained on all 150 rows; the held-out metrics are build ${evaluationId}'s \\(trained on 112, tested on 38\\): accuracy \\d\\.\\d{4}`));
    expect(run.stdout).toMatch(/oob\s+oob_score \d\.\d{4} \(accuracy over 150 training rows/);
    expect(run.stderr).toContain(`refit: build ${evaluationId} measured the held-out metrics; build ${shipped.buildId} trains the shipped model on every row`);
  });
});

describe("canopy train --resume <id> --refit", () => {
  it("refits a finished build: nothing to resume, then the refit on every row; the interrupt line keeps --refit", async () => {
    const dir = await tempDir();
    const first = await canopy(["train", fixture("iris.csv"), "--trees", "10", "--json"], dir);
    expect(first.code, first.stderr).toBe(0);
    const evaluationId = JSON.parse(first.stdout).buildId;
    const run = await canopy(["train", "--resume", evaluationId, "--refit", "--json"], dir);
    expect(run.code, run.stderr).toBe(0);
    const refit = JSON.parse(run.stdout);
    expect(refit.refitOf.of).toBe(evaluationId);
    expect(refit.dataset.testRows).toBe(0);
    const { resumeCommand } = await import("../../packages/cli/src/commands/train.ts");
    expect(resumeCommand(evaluationId, { root: ".canopy", refit: true })).toBe(`canopy train --resume ${evaluationId} --refit`);
  });
});
