// Internal faults are not the user's input: one `canopy: error:` line, but exit 1, never 2.
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { canopy, fixture, tempDir } from "./support.ts";

describe("internal faults exit 1", () => {
  it("resuming a build whose dataset pack is gone from the store", async () => {
    const dir = await tempDir();
    const trained = await canopy(["train", fixture("iris.csv"), "--trees", "4", "--grove-size", "2", "--json"], dir);
    expect(trained.code, trained.stderr).toBe(0);
    const { buildId } = JSON.parse(trained.stdout) as { buildId: string };

    // What a damaged store looks like: the build unfinished (nothing landed), its pack deleted.
    const ledgerFile = join(dir, ".canopy", "ledger", `${buildId}.json`);
    const { result: _result, ...record } = JSON.parse(await readFile(ledgerFile, "utf8"));
    await writeFile(ledgerFile, JSON.stringify({ ...record, status: "TRAINING", landed: [], remaining: record.total, groveStats: {} }));
    for (const pack of await readdir(join(dir, ".canopy", "packs"))) await rm(join(dir, ".canopy", "packs", pack));

    const resumed = await canopy(["train", "--resume", buildId], dir);
    expect(resumed.code, resumed.stderr).toBe(1);
    expect(resumed.stdout).toBe("");
    expect(resumed.stderr).toMatch(/^canopy: error: dataset pack packs\/[0-9a-f]{64}\.pack is missing from \S+\n$/);
  });
});
