import { readdirSync, readFileSync, rmSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { keys } from "@canopy/core";
import { Forest } from "@canopy/forest";
import { afterEach, describe, expect, it } from "vitest";
import { exportArtifacts, loadModel } from "../src/index.ts";
import { digits, digitsSpec, recordingRuntime, removeTempDirs, tempDir } from "./support/helpers.ts";

afterEach(removeTempDirs);

describe("exportArtifacts and loadModel", () => {
  it("export a completed build whole, replace an earlier export, and load the model by id, file or directory", async () => {
    const root = await tempDir();
    const { runtime } = recordingRuntime({ root, workers: 2 });
    const outcome = await runtime.train(digitsSpec(25), digits).finally(() => runtime.close());
    if (outcome.status !== "COMPLETED") throw new Error(outcome.reason);
    const id = outcome.buildId;
    const model = readFileSync(join(root, keys.model(id)));

    const parent = await tempDir();
    const out = join(parent, "out", "digits-model");
    const exported = await exportArtifacts(root, id, out);
    expect(exported).toEqual({ dir: out, files: ["groves/00000.grove", "groves/00001.grove", "model.canopy", "report.html", "report.json", "spec.json"] });
    // The store has report.html beside report.json (written at aggregation); the export is that file.
    expect(readFileSync(join(out, "report.html")).equals(readFileSync(join(root, keys.reportHtml(id))))).toBe(true);
    expect(readFileSync(join(out, "report.html"), "utf8")).toContain(`<h1>Canopy build ${id}: digits.csv</h1>`);
    expect(readFileSync(join(out, "model.canopy")).equals(model)).toBe(true);
    expect(readFileSync(join(out, "groves", "00001.grove")).equals(readFileSync(join(root, keys.grove(id, 1))))).toBe(true);
    expect(JSON.parse(readFileSync(join(out, "report.json"), "utf8"))).toEqual(outcome.report);
    expect(JSON.parse(readFileSync(join(out, "spec.json"), "utf8")).buildId).toBe(id);

    // Again into the same directory: replaced, and no temp or set-aside directories are left next to it. The
    // store's report.html is gone meanwhile (a build made before there was one): the export renders it again.
    await writeFile(join(out, "model.canopy"), "stale");
    const html = readFileSync(join(root, keys.reportHtml(id)));
    rmSync(join(root, keys.reportHtml(id)));
    await exportArtifacts(root, id, out);
    expect(readFileSync(join(out, "report.html")).equals(html)).toBe(true);
    expect(readFileSync(join(out, "model.canopy")).equals(model)).toBe(true);
    expect(readdirSync(join(parent, "out"))).toEqual(["digits-model"]);

    for (const from of [id, join(out, "model.canopy"), out]) {
      const forest = await loadModel(root, from);
      expect(forest).toBeInstanceOf(Forest);
      expect(Buffer.from(forest.toBinary()).equals(model), from).toBe(true);
    }
  });

  it("refuse to overwrite a directory with other files, or to export a build that did not complete", async () => {
    const root = await tempDir();
    const { runtime } = recordingRuntime({ root, workers: 1, log: join(root, "log"), faults: { 0: "bad-input" } });
    const failed = await runtime.train(digitsSpec(25), digits).finally(() => runtime.close());
    expect(failed.status).toBe("FAILED");
    const out = await tempDir();
    await expect(exportArtifacts(root, failed.buildId, join(out, "x"))).rejects.toThrow(`build ${failed.buildId} is FAILED; only a COMPLETED build has a model to export`);
    await expect(exportArtifacts(root, "b-0000000000000000", join(out, "x"))).rejects.toThrow(/^build b-0000000000000000 not found in /);
    await expect(exportArtifacts(root, "../etc", join(out, "x"))).rejects.toThrow(/^invalid build id/);
    await expect(loadModel(root, failed.buildId)).rejects.toThrow(`build ${failed.buildId} has no model in ${root}`);
    await expect(loadModel(root, join(out, "nothing.canopy"))).rejects.toThrow(/^no model at /);

    const done = await tempDir();
    const second = recordingRuntime({ root: done, workers: 1 });
    const ok = await second.runtime.train(digitsSpec(25), digits).finally(() => second.runtime.close());
    const precious = join(out, "home");
    await mkdir(precious);
    await writeFile(join(precious, "notes.txt"), "keep me");
    await expect(exportArtifacts(done, ok.buildId, precious)).rejects.toThrow(/home already holds other files \(notes\.txt\); choose a new or empty directory$/);
    expect(readdirSync(precious)).toEqual(["notes.txt"]);
    expect(readdirSync(out).sort()).toEqual(["home"]);
  });
});
