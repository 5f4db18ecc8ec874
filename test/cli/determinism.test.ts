// Same data, spec and seed => byte-identical model.canopy, whatever the workers, the grove size, or a crash
// and --resume in between.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
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
