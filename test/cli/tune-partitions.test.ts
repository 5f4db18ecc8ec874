import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parsePartitionedModel, showParams, type PartitionReport, type StudyReport } from "@canopy/core";
import { canopy, exists, exportedShas, finished, start, tempDir } from "./support.ts";

/**
 * A seeded table of our making: three stores of 54-66 rows whose label depends on x and y differently (so their best
 * parameters can differ), a colour column, and a store of 6 rows (skipped). Rows interleaved, as a log's would be.
 */
function table(): { header: string; lines: { store: string; line: string }[] } {
  let s = 11;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const stores = ["north", "south", "west"];
  const lines: { store: string; line: string }[] = [];
  for (const [k, store] of stores.entries()) {
    for (let i = 0; i < 54 + k * 6; i++) {
      const x = rnd() * 10;
      const y = rnd() * 5;
      const colour = ["red", "green", "blue"][Math.floor(rnd() * 3)];
      const noise = rnd() < 0.12;
      lines.push({ store, line: `${store},${x.toFixed(3)},${y.toFixed(3)},${colour},${(x + y * (k - 1) + (colour === "red" ? k : 0) > 6) !== noise ? "yes" : "no"}` });
    }
  }
  for (let i = 0; i < 6; i++) lines.push({ store: "tiny", line: `tiny,${i},1,red,${i % 2 ? "yes" : "no"}` });
  const order = lines.map((l, i) => ({ l, k: (i * 7919) % lines.length })).sort((a, b) => a.k - b.k);
  return { header: "store,x,y,colour,label", lines: order.map((o) => o.l) };
}

const csv = (t: { header: string; lines: { line: string }[] }) => `${t.header}\n${t.lines.map((l) => l.line).join("\n")}\n`;
const OPTIONS = ["--label", "label", "--trees", "8", "--grove-size", "2", "--seed", "3"];
const SEARCH = ["--grid", "max_depth=1,4", "--grid", "min_samples_leaf=1,10", "--cv", "3"];
const sha = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

async function dataDir(): Promise<{ dir: string; data: string; t: ReturnType<typeof table> }> {
  const dir = await tempDir();
  const t = table();
  await writeFile(join(dir, "sales.csv"), csv(t));
  return { dir, data: join(dir, "sales.csv"), t };
}


/** One partition's rows alone, without the store column kept out (--drop store does that). */
async function partitionCsv(dir: string, t: ReturnType<typeof table>, key: string): Promise<string> {
  const path = join(dir, `part-${key}.csv`);
  await writeFile(path, csv({ header: t.header, lines: t.lines.filter((l) => l.store === key) }));
  return path;
}

describe("canopy tune --partition-by: bad usage is one line and exit 2, and stores nothing", () => {
  const cases: [string, string[], RegExp][] = [
    ["--shared-params without --partition-by", ["--shared-params"], /--shared-params: only with --partition-by <column>/],
    ["--halving", ["--partition-by", "store", "--halving"], /--halving with --partition-by is not available yet/],
    ["--out with --no-refit", ["--partition-by", "store", "--no-refit", "--out", "o"], /--out exports the study's final model; --no-refit builds none/],
    ["--fallback without --partition-by", ["--fallback", "global"], /--fallback: only with --partition-by <column>/],
    [
      "a search over the limits with one partition already",
      ["--partition-by", "store", "--grid", `max_features=${Array.from({ length: 40 }, (_, i) => (i + 1) / 40).join(",")}`, "--trees", "1000", "--grove-size", "1", "--cv", "5"],
      /1 partitions x 40 candidates x 5 folds = 200 builds of 1000 groves \(200000 groves\); a tuned partitioned run is at most 10000 builds .* and 100000 groves/,
    ],
  ];
  it.each(cases)("%s", async (_, args, message) => {
    const { dir, data } = await dataDir();
    const run = await canopy(["tune", data, "--label", "label", ...(args.includes("--grid") ? [] : ["--grid", "max_depth=1,4"]), ...args], dir);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.stderr.trim().split("\n")).toHaveLength(1);
    expect(await exists(join(dir, ".canopy", "packs"))).toBe(false);
  });
});

describe("canopy tune --partition-by on a table of our making", () => {
  it("independent: each partition's model and best_params_ are canopy tune's on its rows alone (--drop store)", { timeout: 300_000 }, async () => {
    const { dir, data, t } = await dataDir();
    const run = await canopy(["tune", data, ...OPTIONS, ...SEARCH, "--partition-by", "store", "--workers", "2", "--out", "out"], dir);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^tuned partitioned run p-[0-9a-f]{16}: 3 partitions by store, 4 candidates x 3 folds each \(36 builds, 0 failed\); each partition its own best$/m);
    expect(run.stdout).toMatch(/^3 of 4 partitions trained; held-out, row-weighted over the partitions: accuracy \d\.\d{4}/m);
    expect(run.stdout).toMatch(/^skipped: tiny \(6 rows, fewer than --min-partition-rows 30\)$/m);
    // Progress on stderr: builds (tuning, then final) and groves.
    expect(run.stderr).toMatch(/tuned run p-[0-9a-f]{16}: builds 39\/39 done, groves \d+\/\d+/);
    const report = JSON.parse(await readFile(join(dir, "out", "report.json"), "utf8")) as PartitionReport;
    expect(report.tuning!.mode).toBe("independent");
    // The run's page shows how each partition was tuned: the parameters its model uses, its best score.
    const pagePath = /^page +(.+)$/m.exec(run.stdout)?.[1];
    expect(pagePath, run.stdout).toBeDefined();
    const tuning = /<section id="tuning">(.*?)<\/section>/s.exec(await readFile(join(dir, pagePath!), "utf8"))?.[1] ?? "";
    for (const p of report.tuning!.partitions) expect(tuning, p.key).toMatch(new RegExp(`<td[^>]*>${p.value}</td>.*?${p.best_score_.toFixed(4)}.*?${showParams(p.best_params_)}`, "s"));
    const shas = await exportedShas(join(dir, "out"));
    expect(Object.keys(shas)).toEqual(["north", "south", "west"]);
    const picks = new Set<string>();
    for (const key of Object.keys(shas)) {
      const ranking = report.tuning!.partitions.find((p) => p.key === key)!;
      // The compact table names the partition, its best cv score and parameters.
      expect(run.stdout).toMatch(new RegExp(`^${key} +\\d+ +${ranking.best_score_.toFixed(4)} +\\d\\.\\d{4} +${showParams(ranking.best_params_)}$`, "m"));
      const alone = await canopy(["tune", await partitionCsv(dir, t, key), ...OPTIONS, ...SEARCH, "--drop", "store", "--workers", "1", "--root", "alone", "--out", `alone-${key}`, "--json"], dir);
      expect(alone.code, alone.stderr).toBe(0);
      const study = JSON.parse(alone.stdout) as StudyReport;
      expect(ranking.best_params_, key).toEqual(study.best_params_);
      expect(ranking.candidates.map((c) => c.mean_test_score), key).toEqual(study.candidates.map((c) => c.mean_test_score));
      expect(sha(await readFile(join(dir, `alone-${key}`, "model.canopy"))), `partition ${key}`).toBe(shas[key]);
      picks.add(JSON.stringify(study.best_params_));
    }
    // The table is made so that the partitions do not all pick the same: independent is not shared here.
    expect(picks.size).toBeGreaterThan(1);
  });

  it("--shared-params: one set for all, the best mean over the partitions; each model is canopy train's with it as flags", { timeout: 300_000 }, async () => {
    const { dir, data, t } = await dataDir();
    const run = await canopy(["tune", data, ...OPTIONS, ...SEARCH, "--partition-by", "store", "--shared-params", "--workers", "2", "--out", "out", "--json"], dir);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as PartitionReport;
    const t2 = report.tuning!;
    expect(t2.mode).toBe("shared");
    const means = t2.candidates.map((_, c) => t2.partitions.reduce((sum, p) => sum + p.candidates[c].mean_test_score, 0) / t2.partitions.length);
    const best = means.indexOf(Math.max(...means));
    expect(t2.shared!.best_index_).toBe(best);
    expect(t2.shared!.best_params_).toEqual(t2.candidates[best]);
    const shared = t2.candidates[best] as { max_depth: number; min_samples_leaf: number };
    const shas = await exportedShas(join(dir, "out"));
    for (const key of Object.keys(shas)) {
      expect(report.partitions.find((p) => p.key === key)!.params).toEqual(shared);
      const alone = await canopy(
        ["train", await partitionCsv(dir, t, key), ...OPTIONS, "--max-depth", String(shared.max_depth), "--min-samples-leaf", String(shared.min_samples_leaf), "--drop", "store", "--workers", "1", "--root", "alone", "--out", `alone-${key}`],
        dir,
      );
      expect(alone.code, alone.stderr).toBe(0);
      expect(sha(await readFile(join(dir, `alone-${key}`, "model.canopy"))), `partition ${key}`).toBe(shas[key]);
    }
  });

  it("the same models for 1 or 2 workers and any grove size, and after a SIGKILL mid-run and --resume; status follows the run", { timeout: 300_000 }, async () => {
    const { dir, data } = await dataDir();
    const one = await canopy(["tune", data, ...OPTIONS, ...SEARCH, "--partition-by", "store", "--workers", "1", "--grove-size", "4", "--out", "one"], dir);
    expect(one.code, one.stderr).toBe(0);
    const two = await canopy(["tune", data, ...OPTIONS, ...SEARCH, "--partition-by", "store", "--workers", "2", "--grove-size", "1", "--root", "r2", "--out", "two"], dir);
    expect(two.code, two.stderr).toBe(0);
    const reference = await exportedShas(join(dir, "one"));
    expect(await exportedShas(join(dir, "two"))).toEqual(reference);

    const child = start(["tune", data, ...OPTIONS, ...SEARCH, "--partition-by", "store", "--workers", "1", "--grove-size", "1", "--root", "r3"], dir);
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
      if (/builds (1\d|2\d)\/39 done/.test(stderr) && !child.killed) child.kill("SIGKILL");
    });
    const killed = await finished(child);
    expect(killed.signal).toBe("SIGKILL");
    const runId = /tuned run (p-[0-9a-f]{16}): builds/.exec(stderr)![1];
    const unfinished = await canopy(["status", runId, "--root", "r3"], dir);
    expect(unfinished.code, unfinished.stderr).toBe(0);
    expect(unfinished.stdout).toMatch(new RegExp(`^run +${runId}  TRAINING$`, "m"));
    expect(unfinished.stdout).toMatch(/^tuning +each partition its own best$/m);
    const resumed = await canopy(["tune", "--resume", runId, "--root", "r3", "--out", "three"], dir);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain(`tuned partitioned run ${runId}:`);
    expect(await exportedShas(join(dir, "three"))).toEqual(reference);
    const status = await canopy(["status", runId, "--root", "r3", "--json"], dir);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ runId, status: "COMPLETED", partitions: { total: 36, done: 36 }, tuning: { mode: "independent", final: { builds: { total: 3, done: 3 } } }, counts: { completed: 3, skipped: 1 } });
    // The same run again: found done, nothing trained.
    const again = await canopy(["tune", data, ...OPTIONS, ...SEARCH, "--partition-by", "store", "--workers", "1", "--grove-size", "1", "--root", "r3"], dir);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/was already done with the same data and options; nothing to train/);
  });
});
