// canopy train writes report.html beside report.json (store and --out); canopy report writes or opens it.
import { chmod, mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { canopy, exists, finished, fixture, start, tempDir } from "./support.ts";

const isPage = (html: string, buildId: string) => html.startsWith("<!doctype html>") && html.includes(`<h1>Canopy build ${buildId}: digits.csv</h1>`);

describe("report.html of a local build", () => {
  it("is written with the build and exported by --out; canopy report rewrites it from a build id, an --out directory or a model file", async () => {
    const dir = await tempDir();
    const train = await canopy(["train", fixture("digits.csv"), "--label", "digit", "--trees", "10", "--grove-size", "5", "--out", "out"], dir);
    expect(train.code, train.stderr).toBe(0);
    const buildId = /^build +(b-[0-9a-f]{16}):/m.exec(train.stdout)![1];
    expect(train.stdout).toMatch(/^page +out\/report\.html \(charts; opens offline\)$/m);
    const stored = await readFile(join(dir, ".canopy", "builds", buildId, "report.html"), "utf8");
    expect(isPage(stored, buildId)).toBe(true);
    expect(await readFile(join(dir, "out", "report.html"), "utf8")).toBe(stored);
    const status = await canopy(["status", buildId, "--root", ".canopy"], dir);
    expect(status.stdout).toMatch(new RegExp(`^page +\\.canopy/builds/${buildId}/report\\.html$`, "m"));

    // From the build id: beside its model in the store; the path on stdout, a note on stderr.
    const byId = await canopy(["report", buildId], dir);
    expect(byId.code).toBe(0);
    expect(byId.stdout).toBe(`${join(dir, ".canopy", "builds", buildId, "report.html")}\n`);
    expect(byId.stderr).toMatch(new RegExp(`^canopy: wrote the report of ${buildId} \\([\\d.]+ KB; it opens offline\\)\\n$`));
    expect(await readFile(join(dir, ".canopy", "builds", buildId, "report.html"), "utf8")).toBe(stored);

    // From the --out directory and from the model file, to a file of one's choosing, as JSON for scripts.
    const byDir = await canopy(["report", "out", "--out", "digits.html", "--json"], dir);
    expect(byDir.code).toBe(0);
    expect(JSON.parse(byDir.stdout)).toEqual({ buildId, path: join(dir, "digits.html"), bytes: Buffer.byteLength(stored) });
    expect(await readFile(join(dir, "digits.html"), "utf8")).toBe(stored);
    const byFile = await canopy(["report", "out/model.canopy", "--out", "digits.html"], dir); // replaces its own earlier page
    expect(byFile.code).toBe(0);
    expect(byFile.stdout).toBe(`${join(dir, "digits.html")}\n`);
  });

  it("opens the page with the platform's opener, or says there is none", async () => {
    const dir = await tempDir();
    const train = await canopy(["train", fixture("digits.csv"), "--label", "digit", "--trees", "4", "--grove-size", "2", "--out", "out"], dir);
    expect(train.code).toBe(0);
    // A stand-in xdg-open that records what it was asked to open.
    const bin = join(dir, "bin");
    await mkdir(bin);
    await writeFile(join(bin, "xdg-open"), `#!/bin/sh\necho "$1" > "${join(dir, "opened.txt")}"\n`);
    await chmod(join(bin, "xdg-open"), 0o755);
    await symlink("/bin/sh", join(bin, "sh"));
    const opened = await finished(start(["report", "out", "--open"], dir, { ...process.env, PATH: bin }));
    expect(opened.code).toBe(0);
    for (let i = 0; i < 100 && !(await exists(join(dir, "opened.txt"))); i++) await new Promise((r) => setTimeout(r, 50));
    expect(await readFile(join(dir, "opened.txt"), "utf8")).toBe(`${join(dir, "out", "report.html")}\n`);

    const noBin = join(dir, "nobin");
    await mkdir(noBin);
    await symlink("/bin/sh", join(noBin, "sh"));
    const none = await finished(start(["report", "out", "--open"], dir, { ...process.env, PATH: noBin }));
    expect(none.code).toBe(0);
    expect(none.stderr).toContain(`canopy: no browser opener found (xdg-open, open or start); open ${join(dir, "out", "report.html")} in a browser\n`);
  });

  it("refuses bad usage with one line and exit 2, and never overwrites a file that is not a Canopy report", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "notes.html"), "<p>mine</p>");
    const runs = await Promise.all([
      canopy(["report", "b-0123456789abcdef"], dir),
      canopy(["report", "nothing.canopy"], dir),
      canopy(["report", "b-0123456789abcdef", "--out", "notes.html"], dir),
      canopy(["report", "b-0123456789abcdef", "--out", "page.txt"], dir),
      canopy(["report", "b-0123456789abcdef", "--root", "x", "--aws"], dir),
    ]);
    expect(runs.map((r) => [r.code, r.stderr])).toEqual([
      [2, `canopy: error: build b-0123456789abcdef not found in .canopy\n`],
      [2, "canopy: error: model not found: nothing.canopy\n"],
      [2, "canopy: error: --out notes.html already exists and is not a Canopy report; choose another file\n"],
      [2, "canopy: error: --out page.txt: the page is HTML; give a file name ending in .html\n"],
      [2, "canopy: error: --root is the local store; it does not go with --aws\n"],
    ]);
    expect(await readFile(join(dir, "notes.html"), "utf8")).toBe("<p>mine</p>");
  });
});

describe("canopy report of a study and of a partitioned run", () => {
  it("rewrites the page beside its report.json from the s- or p- id, the same page the run wrote; an unfinished or unknown id is one line, exit 2", async () => {
    const dir = await tempDir();
    const tune = await canopy(["tune", fixture("iris.csv"), "--label", "species", "--grid", "max_depth=2,none", "--cv", "2", "--trees", "4", "--grove-size", "2", "--json"], dir);
    expect(tune.code, tune.stderr).toBe(0);
    const studyId = (JSON.parse(tune.stdout) as { studyId: string }).studyId;
    const train = await canopy(["train", fixture("penguins.csv"), "--label", "Species", "--partition-by", "Island", "--trees", "4", "--grove-size", "2", "--json"], dir);
    expect(train.code, train.stderr).toBe(0);
    const runId = (JSON.parse(train.stdout) as { runId: string }).runId;
    for (const [id, where, title] of [
      [studyId, `.canopy/studies/${studyId}/report.html`, `<h1>Canopy study ${studyId}: iris.csv</h1>`],
      [runId, `.canopy/partitions/${runId}/report.html`, `<h1>Canopy partitioned run ${runId}: penguins.csv</h1>`],
    ]) {
      const written = await readFile(join(dir, where), "utf8");
      expect(written, id).toContain(title);
      await writeFile(join(dir, where), "stale");
      const again = await canopy(["report", id!], dir);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toBe(`${join(dir, where)}\n`);
      expect(again.stderr).toMatch(new RegExp(`^canopy: wrote the report of ${id} \\(`));
      expect(await readFile(join(dir, where), "utf8")).toBe(written);
      const json = JSON.parse((await canopy(["report", id!, "--out", "copy.html", "--json"], dir)).stdout) as { buildId: string; path: string };
      expect(json).toMatchObject({ buildId: id, path: join(dir, "copy.html") });
    }
    const unknown = await canopy(["report", "p-00000000000000ff"], dir);
    expect([unknown.code, unknown.stdout]).toEqual([2, ""]);
    expect(unknown.stderr).toBe("canopy: error: partitioned run p-00000000000000ff has no report in .canopy/partitions/p-00000000000000ff/report.json (not finished, or not in .canopy)\n");
  });
});
