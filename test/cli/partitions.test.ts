import { createHash } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parsePartitionedModel, type PartitionReport } from "@canopy/core";
import { canopy, exists, exportedShas, finished, start, tempDir } from "./support.ts";

/**
 * A seeded table of our making: 8 stores of 60-100 rows, store 7 spelled "7", "07" and "7.0" (one partition), a
 * colour that is text in most stores and a numeric code in store s2 (kinds are inferred per partition), a store
 * of 6 rows (skipped), and a row without a store (only the fallback trains on it).
 */
function table(): { header: string; lines: { store: string; line: string }[] } {
  let s = 7;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const stores = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "7"];
  const lines: { store: string; line: string }[] = [];
  for (const [k, store] of stores.entries()) {
    for (let i = 0; i < 60 + k * 5; i++) {
      const x = rnd() * 10;
      const colour = store === "s2" ? String(Math.floor(rnd() * 3)) : ["red", "green", "blue"][Math.floor(rnd() * 3)];
      const spelled = store === "7" ? ["7", "07", "7.0"][i % 3] : store;
      lines.push({ store, line: `${spelled},${x.toFixed(3)},${(rnd() * 4).toFixed(2)},${colour},${x + k + (colour === "red" ? 2 : 0) > 9 ? "yes" : "no"}` });
    }
  }
  for (let i = 0; i < 6; i++) lines.push({ store: "tiny", line: `tiny,${i},1,red,${i % 2 ? "yes" : "no"}` });
  lines.push({ store: "", line: ",5,1,red,no" });
  // Interleaved, as a real log would be: a partition's rows are not contiguous.
  const order = lines.map((l, i) => ({ l, k: (i * 7919) % lines.length })).sort((a, b) => a.k - b.k);
  return { header: "store,x,y,colour,label", lines: order.map((o) => o.l) };
}

const csv = (t: { header: string; lines: { line: string }[] }) => `${t.header}\n${t.lines.map((l) => l.line).join("\n")}\n`;
const OPTIONS = ["--label", "label", "--trees", "12", "--seed", "3"];
const sha = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

async function dataDir(): Promise<{ dir: string; data: string; t: ReturnType<typeof table> }> {
  const dir = await tempDir();
  const t = table();
  await writeFile(join(dir, "sales.csv"), csv(t));
  return { dir, data: join(dir, "sales.csv"), t };
}


describe("canopy train --partition-by: bad usage and bad input are one line and exit 2, and store no pack", () => {
  const cases: [string, string[], RegExp][] = [
    ["a missing column", ["--partition-by", "shop"], /--partition-by: no column "shop"; columns are: store, x, y, colour, label\n?$/],
    ["an identifier column", ["--partition-by", "x"], /--partition-by "x": \d+ distinct values in \d+ rows: an identifier/],
    ["the label", ["--partition-by", "label"], /--partition-by: "label" is the label column/],
    ["a partition column also dropped", ["--partition-by", "store", "--drop", "store"], /--partition-by: "store" is also named by --drop/],
    ["--fallback without --partition-by", ["--fallback", "global"], /--fallback: only with --partition-by <column>/],
    ["--min-partition-rows 0", ["--partition-by", "store", "--min-partition-rows", "0"], /--min-partition-rows.*Expected an integer >= 1/],
    ["a fallback of another kind", ["--partition-by", "store", "--fallback", "store"], /--fallback.*Allowed choices are global/],
    ["--refit", ["--partition-by", "store", "--refit"], /--refit with --partition-by is not available yet/],
  ];
  it.each(cases)("%s", async (_, args, message) => {
    const { dir, data } = await dataDir();
    const run = await canopy(["train", data, ...OPTIONS, ...args], dir);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.stderr.trim().split("\n")).toHaveLength(1);
    expect(await exists(join(dir, ".canopy", "packs"))).toBe(false);
  });
});

describe("canopy train --partition-by on a table of our making", () => {
  it("each partition's model is byte-identical to canopy train on its rows alone with --drop store; the fallback to train on every row", { timeout: 300_000 }, async () => {
    const { dir, data, t } = await dataDir();
    const run = await canopy(["train", data, ...OPTIONS, "--partition-by", "store", "--fallback", "global", "--workers", "2", "--out", "out"], dir);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^partitioned run p-[0-9a-f]{16}: 8 of 9 partitions by store trained \(1 skipped, 0 failed\), fallback b-[0-9a-f]{16} on all 627 rows$/m);
    expect(run.stdout).toMatch(/^held-out, row-weighted over the partitions: accuracy \d\.\d{4}/m);
    expect(run.stdout).toMatch(/^skipped: tiny \(6 rows, fewer than --min-partition-rows 30\)$/m);
    // The run's page stays in the store, beside its report.json (its links to the builds' pages are relative).
    const page = /^page +(\S+)$/m.exec(run.stdout)?.[1];
    expect(page).toMatch(/^\.canopy\/partitions\/p-[0-9a-f]{16}\/report\.html$/);
    expect(await readFile(join(dir, page!), "utf8")).toMatch(/^<!doctype html>[^]*<h1>Canopy partitioned run p-[0-9a-f]{16}: sales\.csv<\/h1>/);
    expect(run.stderr).toMatch(/read 627 rows: 9 partitions/);
    expect(run.stderr).toMatch(/partitions 9\/9 done, groves 18\/18/);
    const shas = await exportedShas(join(dir, "out"));
    const model = parsePartitionedModel(await readFile(join(dir, "out", "model.json"), "utf8"), "model.json");
    // Files numbered in the keys' code-unit order.
    expect(Object.keys(model.partitions)).toEqual(["7", "s0", "s1", "s2", "s3", "s4", "s5", "s6"]);
    expect(Object.values(model.partitions).map((r) => r.file)).toEqual(Array.from({ length: 8 }, (_, i) => `partitions/${String(i).padStart(5, "0")}.canopy`));
    expect(model.fallback?.file).toBe("fallback.canopy");
    expect((await readdir(join(dir, "out"))).sort()).toEqual([".canopy-export.json", "fallback.canopy", "model.json", "partitions", "report.json"]);
    for (const key of Object.keys(model.partitions)) {
      const part = join(dir, `part-${key}.csv`);
      await writeFile(part, csv({ header: t.header, lines: t.lines.filter((l) => l.store === key) }));
      const alone = await canopy(["train", part, ...OPTIONS, "--drop", "store", "--workers", "1", "--root", "alone", "--out", `alone-${key}`], dir);
      expect(alone.code, alone.stderr).toBe(0);
      expect(sha(await readFile(join(dir, `alone-${key}`, "model.canopy"))), `partition ${key}`).toBe(shas[key]);
    }
    const all = await canopy(["train", data, ...OPTIONS, "--drop", "store", "--workers", "1", "--root", "alone", "--out", "alone-all"], dir);
    expect(all.code, all.stderr).toBe(0);
    expect(sha(await readFile(join(dir, "alone-all", "model.canopy")))).toBe(shas["(fallback)"]);
    // The kinds are each partition's: colour is numeric in s2's rows, categorical in s0's.
    const report = JSON.parse(await readFile(join(dir, "out", "report.json"), "utf8")) as PartitionReport;
    const kinds = async (build: string) =>
      (JSON.parse(await readFile(join(dir, ".canopy", "builds", build, "report.json"), "utf8")).dataset.schema.columns as { name: string; kind: string }[]).find((c) => c.name === "colour")!.kind;
    expect(await kinds(model.partitions.s2.build)).toBe("numeric");
    expect(await kinds(model.partitions.s0.build)).toBe("categorical");
    expect(report.counts).toEqual({ partitions: 9, completed: 8, failed: 0, skipped: 1, rows: 627, unkeyed: 1 });
  });

  it("the same models for 1 or 2 workers, any grove size, and a run stopped by Ctrl-C mid-way then resumed; status reads the run", { timeout: 300_000 }, async () => {
    const { dir, data } = await dataDir();
    const one = await canopy(["train", data, ...OPTIONS, "--partition-by", "store", "--workers", "1", "--grove-size", "4", "--out", "one"], dir);
    expect(one.code, one.stderr).toBe(0);
    const two = await canopy(["train", data, ...OPTIONS, "--partition-by", "store", "--workers", "2", "--grove-size", "5", "--root", "r2", "--out", "two"], dir);
    expect(two.code, two.stderr).toBe(0);
    const reference = await exportedShas(join(dir, "one"));
    expect(await exportedShas(join(dir, "two"))).toEqual(reference);

    const child = start(["train", data, ...OPTIONS, "--partition-by", "store", "--workers", "1", "--grove-size", "1", "--root", "r3"], dir);
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
      if (/partitions [2-6]\/8 done/.test(stderr) && !child.killed) child.kill("SIGINT");
    });
    // Ctrl-C: the trainers stop, the run waits for --resume, and the line says how.
    const stopped = await finished(child);
    const runId = /(p-[0-9a-f]{16}): partitions/.exec(stderr)![1];
    expect(stopped.code, stopped.stderr).toBe(130);
    expect(stopped.stderr).toContain(`interrupted; finish the run with: canopy train --resume ${runId} --root r3 --workers 1`);
    const unfinished = await canopy(["status", runId, "--root", "r3"], dir);
    expect(unfinished.stdout).toMatch(new RegExp(`^run +${runId}  TRAINING$`, "m"));
    const resumed = await canopy(["train", "--resume", runId, "--root", "r3", "--out", "three", "--json"], dir);
    expect(resumed.code, resumed.stderr).toBe(0);
    const report = JSON.parse(resumed.stdout) as PartitionReport;
    expect(report.runId).toBe(runId);
    expect(await exportedShas(join(dir, "three"))).toEqual(reference);

    const status = await canopy(["status", runId, "--root", "r3", "--json"], dir);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ runId, status: "COMPLETED", partitions: { total: 8, done: 8, failed: 0 }, counts: { completed: 8, skipped: 1 }, page: `r3/partitions/${runId}/report.html` });
    expect((await canopy(["status", runId, "--root", "r3"], dir)).stdout).toMatch(new RegExp(`^page +r3/partitions/${runId}/report\\.html$`, "m"));
    // --url presigns the deployed app's page; the local store's is a file, as for a build or a study.
    const url = await canopy(["status", runId, "--root", "r3", "--url"], dir);
    expect([url.code, url.stderr]).toEqual([2, "canopy: error: --url presigns an S3 URL of the deployed app's report page; with --root the page is a local file\n"]);
    // The same run again: found done, nothing trained.
    const again = await canopy(["train", data, ...OPTIONS, "--partition-by", "store", "--workers", "1", "--grove-size", "1", "--root", "r3"], dir);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/was already done with the same data and options; nothing to train/);
  });
});
