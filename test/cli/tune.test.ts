import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { StudyReport } from "@canopy/core";
import { canopy, exists, finished, fixture, start, tempDir } from "./support.ts";

const IRIS = fixture("iris.csv");
const SEARCH = ["--label", "species", "--grid", "max_depth=1,none", "--grid", "max_features=sqrt,0.5", "--cv", "3", "--trees", "12", "--seed", "5"];

async function models(root: string, report: StudyReport): Promise<string[]> {
  const out: string[] = [];
  for (const c of report.candidates) for (const id of c.buildIds) out.push((await readFile(join(root, ".canopy", "builds", id, "model.canopy"))).toString("base64"));
  return out;
}

describe("canopy tune: bad usage is one line and exit 2, and writes nothing", () => {
  const cases: [string, string[], RegExp][] = [
    ["a grid key that is not a forest option", ["--grid", "n_trees=1,2"], /--grid n_trees: "n_trees" is not a forest option/],
    ["a value of the wrong type", ["--grid", "max_depth=2,deep"], /--grid max_depth: .*candidate max_depth=deep/],
    ["an empty grid value", ["--grid", "max_depth="], /--grid: expected name=values/],
    ["no search space", [], /a study needs a search space/],
    ["a scorer of the other task", ["--grid", "max_depth=2,3", "--scoring", "r2"], /--scoring: r2 does not score classification/],
    ["an option both fixed and searched", ["--grid", "max_depth=2,3", "--max-depth", "4"], /--max-depth is fixed but max_depth is also searched/],
    ["a study over the cap", ["--grid", `max_depth=${Array.from({ length: 40 }, (_, i) => i + 1).join(",")}`, "--trees", "1000", "--grove-size", "1", "--cv", "5"], /200 builds and 200000 groves; a study is at most 10000 builds and 100000 groves/],
    ["one fold", ["--grid", "max_depth=2,3", "--cv", "1"], /--cv: must be an integer 2..20/],
    ["--factor without --halving", ["--grid", "max_depth=2,3", "--factor", "2"], /--factor is a setting of --halving; add --halving/],
    ["--cv with --oob", ["--grid", "max_depth=2,3", "--cv", "3", "--oob"], /--cv and --oob are exclusive/],
    ["neg_log_loss out of bag", ["--grid", "max_depth=2,3", "--oob", "--scoring", "neg_log_loss"], /--scoring neg_log_loss and --oob do not go together/],
    ["halving with nothing to halve", ["--grid", "max_depth=2,3", "--trees", "4", "--grove-size", "2", "--halving"], /--halving: 2 candidates and 4 trees make one round/],
  ];
  it.each(cases)("%s", async (_, args, message) => {
    const dir = await tempDir();
    const run = await canopy(["tune", IRIS, "--label", "species", ...args], dir);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.stderr.trim().split("\n")).toHaveLength(1);
    expect(await exists(join(dir, ".canopy"))).toBe(false);
  });
});

describe("canopy tune on iris", () => {
  it("ranks the candidates: the same models and ranking for 1 or 2 workers and any grove size", { timeout: 180_000 }, async () => {
    const a = await tempDir();
    const one = await canopy(["tune", IRIS, ...SEARCH, "--workers", "1", "--grove-size", "4", "--json"], a);
    expect(one.code, one.stderr).toBe(0);
    const ra = JSON.parse(one.stdout) as StudyReport;
    expect(ra.candidates).toHaveLength(4);
    expect(ra.builds).toEqual({ total: 12, completed: 12, failed: 0 });
    expect(one.stderr).toMatch(/builds 12\/12 done, groves 36\/36/);
    const b = await tempDir();
    const two = await canopy(["tune", IRIS, ...SEARCH, "--workers", "2", "--grove-size", "5", "--json"], b);
    expect(two.code, two.stderr).toBe(0);
    const rb = JSON.parse(two.stdout) as StudyReport;
    // Another grove size is another spec (other ids) but the same trees: the same bytes, scores and ranking.
    expect(rb.studyId).not.toBe(ra.studyId);
    expect(await models(b, rb)).toEqual(await models(a, ra));
    for (const key of ["split_test_scores", "mean_test_score", "rank_test_score", "params"] as const)
      expect(rb.candidates.map((c) => c[key])).toEqual(ra.candidates.map((c) => c[key]));
    expect(rb.best_params_).toEqual(ra.best_params_);
    // The same study again: found done, nothing trained.
    const again = await canopy(["tune", IRIS, ...SEARCH, "--workers", "1", "--grove-size", "4"], a);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/already done with the same data and search; nothing to train/);
    expect(again.stdout).toMatch(new RegExp(`best accuracy ${ra.best_score_.toFixed(4)}`));
    expect(again.stdout).toMatch(/^rank\s+mean accuracy\s+std\s+params$/m);
    // canopy status understands a study id.
    const status = await canopy(["status", ra.studyId, "--root", ".canopy"], a);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`^study +${ra.studyId}  COMPLETED$`, "m"));
    expect(status.stdout).toMatch(/^builds +12\/12 done$/m);
    expect(status.stdout).toMatch(/^groves +36\/36 settled$/m);
    expect(status.stdout).toMatch(/^page +\S+report\.html$/m);
    // --url presigns the deployed app's page; the local store's is a file (this was a TypeError, exit 1).
    const url = await canopy(["status", ra.studyId, "--root", ".canopy", "--url"], a);
    expect([url.code, url.stderr]).toEqual([2, "canopy: error: --url presigns an S3 URL of the deployed app's report page; with --root the page is a local file\n"]);
    const json = JSON.parse((await canopy(["status", ra.studyId, "--root", ".canopy", "--json"], a)).stdout);
    expect(json).toMatchObject({ studyId: ra.studyId, status: "COMPLETED", best_params_: ra.best_params_, best_score_: ra.best_score_, builds: { total: 12, done: 12, failed: 0 } });
  });

  it("a study killed mid-way and resumed ends identical", { timeout: 180_000 }, async () => {
    const ref = await tempDir();
    const reference = JSON.parse((await canopy(["tune", IRIS, ...SEARCH, "--workers", "1", "--json"], ref)).stdout) as StudyReport;
    const dir = await tempDir();
    const child = start(["tune", IRIS, ...SEARCH, "--workers", "1", "--grove-size", "1"], dir);
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
      if (/builds [3-9]\/12 done/.test(stderr)) child.kill("SIGKILL");
    });
    const killed = await finished(child);
    expect(killed.signal).toBe("SIGKILL");
    const studyId = /study (s-[0-9a-f]{16})/.exec(stderr)![1];
    const resumed = await canopy(["tune", "--resume", studyId, "--json"], dir);
    expect(resumed.code, resumed.stderr).toBe(0);
    const report = JSON.parse(resumed.stdout) as StudyReport;
    expect(report.studyId).toBe(studyId);
    expect(report.candidates.map((c) => c.split_test_scores)).toEqual(reference.candidates.map((c) => c.split_test_scores));
    expect(await models(dir, report)).toEqual(await models(ref, reference));
  });

  it("--halving: the same rounds, survivors and best for 1 or 2 workers; the survivors' builds are extensions", { timeout: 180_000 }, async () => {
    const args = ["tune", IRIS, "--label", "species", "--grid", "max_depth=1,2,none", "--grid", "min_samples_leaf=1,4,8", "--cv", "3", "--trees", "18", "--grove-size", "3", "--halving", "--min-trees", "2", "--json"];
    const [a, b] = [await tempDir(), await tempDir()];
    const one = await canopy([...args, "--workers", "1"], a);
    const two = await canopy([...args, "--workers", "2"], b);
    expect(one.code, one.stderr).toBe(0);
    expect(two.code, two.stderr).toBe(0);
    const [ra, rb] = [JSON.parse(one.stdout) as StudyReport, JSON.parse(two.stdout) as StudyReport];
    expect(ra.rounds!.map((r) => [r.trees, r.candidates.length])).toEqual([[2, 9], [6, 3], [18, 1]]);
    expect(rb.rounds!.map((r) => r.candidates.map((c) => c.split_test_scores))).toEqual(ra.rounds!.map((r) => r.candidates.map((c) => c.split_test_scores)));
    expect(rb.best_params_).toEqual(ra.best_params_);
    expect(await models(b, rb)).toEqual(await models(a, ra));
    for (const id of ra.candidates[0].buildIds) {
      const manifest = JSON.parse(await readFile(join(a, ".canopy", "builds", id, "spec.json"), "utf8"));
      expect(manifest.extends).toMatchObject({ trees: 6 });
    }
    expect(one.stderr).toMatch(/builds 39\/39 done/);
    // Its page renders (best_index_ is a candidate's index; the last round holds a few of them).
    expect(await exists(join(a, ".canopy", "studies", ra.studyId, "report.html"))).toBe(true);
  });

  it("--oob: one build per candidate scored out of bag; the same models and ranking for 1 or 2 workers", { timeout: 180_000 }, async () => {
    const args = ["tune", IRIS, "--label", "species", "--grid", "max_depth=1,none", "--grid", "max_features=sqrt,0.5", "--oob", "--trees", "12", "--seed", "5"];
    const [a, b] = [await tempDir(), await tempDir()];
    const one = await canopy([...args, "--workers", "1", "--json"], a);
    expect(one.code, one.stderr).toBe(0);
    const ra = JSON.parse(one.stdout) as StudyReport;
    expect(ra.spec).toMatchObject({ oob: true, cv: 1 });
    expect(ra.builds).toEqual({ total: 4, completed: 4, failed: 0 });
    for (const c of ra.candidates) {
      const build = JSON.parse(await readFile(join(a, ".canopy", "builds", c.buildIds[0], "report.json"), "utf8"));
      expect(c.split_test_scores).toEqual([build.oob_score]);
    }
    const two = await canopy([...args, "--workers", "2", "--grove-size", "5"], b);
    expect(two.code, two.stderr).toBe(0);
    expect(two.stdout).toMatch(/^study s-[0-9a-f]{16}: 4 candidates scored out of bag \(4 builds, 0 failed\)$/m);
    expect(two.stdout).toMatch(new RegExp(`^best out-of-bag accuracy ${ra.best_score_.toFixed(4)} with `, "m"));
    const id = /^study (s-[0-9a-f]{16})/m.exec(two.stdout)![1];
    const rb = JSON.parse(await readFile(join(b, ".canopy", "studies", id, "report.json"), "utf8")) as StudyReport;
    expect(await models(b, rb)).toEqual(await models(a, ra));
    expect(rb.best_params_).toEqual(ra.best_params_);
  });
});

describe("canopy tune's final model (refit, the default)", () => {
  it("builds the best parameters over the training rows, prints its test score and exports it; the bytes canopy train gives", { timeout: 180_000 }, async () => {
    const dir = await tempDir();
    const run = await canopy(["tune", IRIS, ...SEARCH, "--workers", "2", "--out", "final"], dir);
    expect(run.code, run.stderr).toBe(0);
    const m = /^final model (b-[0-9a-f]{16}): test accuracy (\d\.\d{4}) on (\d+) held-out rows \(trained on (\d+) rows: 12 trees, /m.exec(run.stdout);
    expect(m, run.stdout).not.toBeNull();
    expect(run.stdout).toMatch(/^model  final\/model\.canopy$/m);
    expect(run.stderr).toMatch(new RegExp(`; final model ${m![1]}: groves (\\d+)/\\1 `));
    const id = /^study (s-[0-9a-f]{16})/m.exec(run.stdout)![1];
    const report = JSON.parse(await readFile(join(dir, ".canopy", "studies", id, "report.json"), "utf8")) as StudyReport;
    expect(report.final).toMatchObject({ buildId: m![1], testRows: Number(m![3]), trainRows: Number(m![4]) });
    expect((report.final!.metrics!.accuracy as number).toFixed(4)).toBe(m![2]);
    // canopy train of the same options + best_params_ (as flags) on the same data: the same build, the same bytes.
    // (max_depth None is train's default: no flag.)
    const flags = Object.entries(report.best_params_).flatMap(([k, v]) => (v === null ? [] : [`--${k.replace(/_/g, "-")}`, String(v)]));
    const other = await tempDir();
    const train = await canopy(["train", IRIS, "--label", "species", "--trees", "12", "--seed", "5", ...flags, "--json"], other);
    expect(train.code, train.stderr).toBe(0);
    expect(JSON.parse(train.stdout).buildId).toBe(m![1]);
    expect(await readFile(join(other, ".canopy", "builds", m![1], "model.canopy"))).toEqual(await readFile(join(dir, "final", "model.canopy")));
    // status of the study names its final model.
    const status = await canopy(["status", id, "--root", ".canopy"], dir);
    expect(status.stdout).toMatch(new RegExp(`^study +${id}  COMPLETED$`, "m"));
    expect(status.stdout).toMatch(/^builds +12\/12 done$/m);
    expect(status.stdout).toMatch(new RegExp(`^final +${m![1]}: test accuracy ${m![2]} on ${m![3]} held-out rows$`, "m"));
    // --no-refit: ranks only; --out has nothing to export then.
    const none = await canopy(["tune", IRIS, ...SEARCH, "--no-refit", "--workers", "2", "--json"], dir);
    expect(none.code, none.stderr).toBe(0);
    const ranked = JSON.parse(none.stdout) as StudyReport;
    expect(ranked.final).toBeUndefined();
    expect(ranked.studyId).not.toBe(id);
    expect(ranked.candidates.map((c) => c.split_test_scores)).toEqual(report.candidates.map((c) => c.split_test_scores));
    const refused = await canopy(["tune", IRIS, ...SEARCH, "--no-refit", "--out", "x"], dir);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--out exports the study's final model; --no-refit builds none/);
  });

  it("a study killed while its final model trains: tune --resume finishes it, the same final model", { timeout: 180_000 }, async () => {
    const ref = await tempDir();
    const reference = JSON.parse((await canopy(["tune", IRIS, ...SEARCH, "--workers", "1", "--grove-size", "1", "--json"], ref)).stdout) as StudyReport;
    const dir = await tempDir();
    const child = start(["tune", IRIS, ...SEARCH, "--workers", "1", "--grove-size", "1"], dir);
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
      if (/final model b-[0-9a-f]{16}: groves ([1-9]|1[01])\/12/.test(stderr)) child.kill("SIGKILL");
    });
    const killed = await finished(child);
    expect(killed.signal, stderr).toBe("SIGKILL");
    const studyId = /study (s-[0-9a-f]{16})/.exec(stderr)![1];
    const resumed = await canopy(["tune", "--resume", studyId, "--json"], dir);
    expect(resumed.code, resumed.stderr).toBe(0);
    const report = JSON.parse(resumed.stdout) as StudyReport;
    expect(report.final!.buildId).toBe(reference.final!.buildId);
    expect(report.final!.metrics).toEqual(reference.final!.metrics);
    const model = (root: string) => readFile(join(root, ".canopy", "builds", reference.final!.buildId, "model.canopy"));
    expect(await model(dir)).toEqual(await model(ref));
  });
});
