// Same data, spec and seed => byte-identical model.canopy, whatever the workers, the grove size, or a crash
// and --resume in between.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Forest } from "@canopy/forest";
import { beforeAll, describe, expect, it } from "vitest";
import { canopy, fixture, interruptedBuild, tempDir } from "./support.ts";

const DIGITS = fixture("digits.csv");
const TREES = "50";
const common = ["--label", "digit", "--trees", TREES, "--seed", "11", "--max-depth", "12"];

async function trainModel(extra: string[]): Promise<Buffer> {
  const dir = await tempDir(); // its own store: otherwise the second run would just find the first build
  const run = await canopy(["train", DIGITS, ...common, ...extra, "--out", "out"], dir);
  expect(run.stderr).not.toContain("error");
  expect(run.code).toBe(0);
  return readFile(join(dir, "out", "model.canopy"));
}

let reference: Buffer;
// Small groves, so the build below is still far from done when it is killed.
const REFERENCE = ["--workers", "1", "--grove-size", "2"];
const GROVES = 25;
beforeAll(async () => {
  reference = await trainModel(REFERENCE);
});

describe("deterministic builds through the CLI", () => {
  it.each([
    ["1 worker, groves of 5", ["--workers", "1", "--grove-size", "5"]],
    ["2 workers, groves of 5", ["--workers", "2", "--grove-size", "5"]],
    ["2 workers, groves of 10", ["--workers", "2", "--grove-size", "10"]],
    ["2 workers, groves of 25", ["--workers", "2", "--grove-size", "25"]],
  ])("%s gives the same bytes", async (_name, extra) => {
    const model = await trainModel(extra);
    expect(model.length).toBeGreaterThan(1000);
    expect(model.equals(reference)).toBe(true);
  });

  it("--oob-score: oob.bin and oob_score are the same bytes with 1 worker in groves of 2 and 2 workers in groves of 10", async () => {
    const run = async (extra: string[]) => {
      const dir = await tempDir();
      const done = await canopy(["train", DIGITS, ...common, "--oob-score", ...extra, "--out", "out"], dir);
      expect(done.code, done.stderr).toBe(0);
      const report = JSON.parse(await readFile(join(dir, "out", "report.json"), "utf8"));
      return { oob: await readFile(join(dir, "out", "oob.bin")), model: await readFile(join(dir, "out", "model.canopy")), report };
    };
    const [a, b] = await Promise.all([run(REFERENCE), run(["--workers", "2", "--grove-size", "10"])]);
    expect(a.report.groves).toHaveLength(25);
    expect(b.report.groves).toHaveLength(5);
    expect(a.oob.equals(b.oob)).toBe(true);
    expect(a.report.oob_score).toBe(b.report.oob_score);
    expect(a.report.oobMetricsByTrees).toEqual(b.report.oobMetricsByTrees);
    // The model is the one trained without --oob-score.
    expect(a.model.equals(reference)).toBe(true);
  });

  it("a build killed mid-way, then --resume'd, gives the same bytes as an uninterrupted one", async () => {
    const { cwd: dir, buildId, run: killed } = await interruptedBuild([DIGITS, ...common, ...REFERENCE], { landed: 2 });
    expect(killed.signal).toBe("SIGKILL");
    expect(await readFile(join(dir, ".canopy", "builds", buildId, "model.canopy")).catch(() => undefined)).toBeUndefined();

    const resumed = await canopy(["train", "--resume", buildId, "--out", "out"], dir);
    expect(resumed.code).toBe(0);
    // Only the groves that had not landed were trained again.
    const already = Number(/resuming with (\d+) already landed/.exec(resumed.stderr)?.[1]);
    expect(already).toBeGreaterThanOrEqual(2);
    expect(already).toBeLessThan(GROVES);
    const report = JSON.parse(await readFile(join(dir, "out", "report.json"), "utf8"));
    expect(report.buildId).toBe(buildId);
    expect(report.groves).toHaveLength(GROVES);
    expect((await readFile(join(dir, "out", "model.canopy"))).equals(reference)).toBe(true);
  });
});

/**
 * A table of every new column type: a 300-value category (16-bit codes), a 6-value one with gaps, numbers with
 * more than 255 distinct values under --max-bins 1000 (16-bit bins), a timestamp, and per-row sample weights.
 */
function mixedTable(): string {
  let seed = 7;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const lines = ["airport,colour,x,when,w,label"];
  for (let i = 0; i < 3000; i++) {
    const airport = Math.floor(rnd() * 300);
    const colour = rnd() < 0.05 ? "" : ["red", "green", "blue", "grey", "pink", "teal"][Math.floor(rnd() * 6)];
    const x = rnd();
    const when = new Date(Date.UTC(2024, 0, 1) + Math.floor(rnd() * 90 * 24) * 3_600_000).toISOString();
    const label = (airport % 7 < 3) !== (x > 0.6) || colour === "pink" ? "late" : rnd() < 0.1 ? "late" : "on time";
    lines.push(`A${airport},${colour},${x.toFixed(6)},${when},${(1 + (i % 4)) / 2},${label}`);
  }
  return `${lines.join("\n")}\n`;
}

describe("deterministic builds of categorical, 16-bit and weighted data through the CLI", () => {
  const flags = ["--label", "label", "--trees", "20", "--seed", "3", "--weight-column", "w", "--max-bins", "1000", "--class-weight", "balanced"];
  let file = "";
  let first: Buffer;
  const train = async (extra: string[]) => {
    const dir = await tempDir();
    const run = await canopy(["train", file, ...flags, ...extra, "--out", "out"], dir);
    expect(run.stderr).not.toContain("error");
    expect(run.code).toBe(0);
    return readFile(join(dir, "out", "model.canopy"));
  };
  beforeAll(async () => {
    file = join(await tempDir(), "mixed.csv");
    await writeFile(file, mixedTable());
    first = await train(["--workers", "1", "--grove-size", "2"]);
  });

  it("has categorical set splits and 16-bit features (model format 4)", () => {
    const model = Forest.load(first);
    expect(model.version).toBe(4);
    expect(model.trees.some((t) => t.categorical !== undefined)).toBe(true);
    expect(model.schema!.columns.find((c) => c.name === "airport")!.categories).toHaveLength(300);
    expect(model.schema!.excluded).toEqual([{ name: "w", reason: "weight" }]);
  });

  it.each([
    ["2 workers, groves of 5", ["--workers", "2", "--grove-size", "5"]],
    ["2 workers, groves of 20", ["--workers", "2", "--grove-size", "20"]],
  ])("%s gives the same bytes as 1 worker, groves of 2", async (_name, extra) => {
    expect((await train(extra)).equals(first)).toBe(true);
  });
});
