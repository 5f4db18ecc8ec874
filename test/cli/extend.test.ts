// canopy train --extend: a finished build gets more trees, only the new ones trained, into the bytes of a fresh
// build of the bigger size; everything that cannot be extended is refused in one line (exit 2).
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { BuildReport } from "@canopy/core";
import { beforeAll, describe, expect, it } from "vitest";
import { canopy, fixture, tempDir } from "./support.ts";

const DIGITS = fixture("digits.csv");
const common = ["--label", "digit", "--seed", "4", "--grove-size", "10", "--workers", "2"];
let dir: string;
let parent: BuildReport;

const readReport = async (path: string) => JSON.parse(await readFile(path, "utf8")) as BuildReport;

beforeAll(async () => {
  dir = await tempDir();
  const run = await canopy(["train", DIGITS, ...common, "--trees", "40", "--out", "parent"], dir);
  expect(run.code, run.stderr).toBe(0);
  parent = await readReport(join(dir, "parent", "report.json"));
});

describe("canopy train --extend", () => {
  it("40 -> 100 trees: copies the 4 groves, trains 6, and writes the model a fresh 100-tree build writes", async () => {
    const run = await canopy(["train", "--extend", parent.buildId, "--trees", "100", "--out", "extended"], dir);
    expect(run.code, run.stderr).toBe(0);
    const report = await readReport(join(dir, "extended", "report.json"));
    expect(run.stderr).toContain(`canopy: build ${report.buildId} extends ${parent.buildId} to 100 trees: 4 grove(s) copied from it, 6 grove(s) of new trees queued\n`);
    expect(run.stdout).toMatch(new RegExp(`^build +${report.buildId}: 100 trees in 10 groves$`, "m"));
    expect(run.stdout).toMatch(new RegExp(`^extends +${parent.buildId} \\(40 trees\\): 4 grove\\(s\\) copied, 60 trees trained$`, "m"));
    expect(report.extends).toEqual({ buildId: parent.buildId, trees: 40 });
    expect(report.groves.filter((g) => g.copied).map((g) => g.grove)).toEqual([0, 1, 2, 3]);
    // The page shows the copies on a row of their own, as copied.
    const page = await readFile(join(dir, "extended", "report.html"), "utf8");
    expect(page).toContain(`extends build ${parent.buildId}`);

    const fresh = await tempDir();
    const scratch = await canopy(["train", DIGITS, ...common, "--trees", "100", "--out", "out"], fresh);
    expect(scratch.code, scratch.stderr).toBe(0);
    expect((await readReport(join(fresh, "out", "report.json"))).buildId).toBe(report.buildId);
    const [a, b] = await Promise.all([readFile(join(dir, "extended", "model.canopy")), readFile(join(fresh, "out", "model.canopy"))]);
    expect(a.length).toBeGreaterThan(1000);
    expect(a.equals(b)).toBe(true);

    const status = await canopy(["status", report.buildId, "--root", ".canopy"], dir);
    expect(status.stdout).toMatch(new RegExp(`^extends +${parent.buildId} \\(40 trees\\): 4 grove\\(s\\) copied, 60 trees trained$`, "m"));

    // Again: the same build, already done.
    const again = await canopy(["train", "--extend", parent.buildId, "--trees", "100"], dir);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain(`canopy: build ${report.buildId} is build ${parent.buildId} with 100 trees, and was already done; nothing to train\n`);
    expect(again.stdout).toMatch(new RegExp(`^build +${report.buildId}: 100 trees in 10 groves$`, "m"));
  });

  it.concurrent.each<[string, (id: string) => string[], (id: string) => string]>([
    ["no more trees", (id) => ["--extend", id, "--trees", "40"], (id) => `cannot extend build ${id} to 40 trees: it has 40; extending adds trees, so ask for more than 40`],
    ["fewer trees", (id) => ["--extend", id, "--trees", "20"], (id) => `cannot extend build ${id} to 20 trees: it has 40; extending adds trees, so ask for more than 40`],
    ["no --trees", (id) => ["--extend", id], (id) => `--extend needs --trees: how many trees build ${id} should have in all`],
    [
      "an option that would change the spec",
      (id) => ["--extend", id, "--trees", "60", "--seed", "5", "--max-depth", "3"],
      (id) =>
        `--seed: would change build ${id}'s seed (4) to 5; an extension keeps every option but the number of trees; ` +
        `--max-depth: would change build ${id}'s max_depth (nothing) to 3; an extension keeps every option but the number of trees`,
    ],
    ["data", (id) => [DIGITS, "--extend", id, "--trees", "60"], (id) => `--extend trains on the data of build ${id}; leave out ${DIGITS}`],
    ["--resume too", (id) => ["--extend", id, "--resume", id, "--trees", "60"], () => "--resume and --extend: one at a time"],
    ["a malformed id", () => ["--extend", "b-12", "--trees", "60"], () => '--extend: "b-12" is not a build id (b- and 16 hex digits)'],
    ["an unknown build", () => ["--extend", "b-0123456789abcdef", "--trees", "60"], () => "cannot extend build b-0123456789abcdef: it is not in "],
  ])("refuses %s in one line, exit 2", async (_name, args, message) => {
    const run = await canopy(["train", ...args(parent.buildId)], dir);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr.startsWith(`canopy: error: ${message(parent.buildId)}`), run.stderr).toBe(true);
    expect(run.stderr.trimEnd().split("\n")).toHaveLength(1);
  });

  it("refuses a FAILED or an unfinished build in one line, exit 2, and starts nothing", async () => {
    // What such builds look like in the store: the ledger record of a copy of the parent's store, edited.
    const store = await tempDir();
    const run = await canopy(["train", DIGITS, ...common, "--trees", "20", "--json"], store);
    expect(run.code, run.stderr).toBe(0);
    const { buildId } = JSON.parse(run.stdout) as BuildReport;
    const ledgerFile = join(store, ".canopy", "ledger", `${buildId}.json`);
    const { result: _result, ...record } = JSON.parse(await readFile(ledgerFile, "utf8"));

    await writeFile(ledgerFile, JSON.stringify({ ...record, status: "FAILED", reason: "grove 1 failed: out of memory" }));
    const failed = await canopy(["train", "--extend", buildId, "--trees", "40"], store);
    expect(failed.code).toBe(2);
    expect(failed.stderr).toBe(`canopy: error: cannot extend build ${buildId}: it FAILED (grove 1 failed: out of memory)\n`);

    await writeFile(ledgerFile, JSON.stringify({ ...record, status: "TRAINING", landed: [0], remaining: 1 }));
    const unfinished = await canopy(["train", "--extend", buildId, "--trees", "40"], store);
    expect(unfinished.code).toBe(2);
    expect(unfinished.stderr).toBe(`canopy: error: cannot extend build ${buildId}: it is TRAINING, not finished; finish it first (resume it)\n`);
    expect(JSON.parse(await readFile(ledgerFile, "utf8")).status).toBe("TRAINING");
  });
});
