import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildWithStatus, describeRegistryContract } from "@canopy/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { DiskLedger } from "../src/disk-ledger.ts";
import { DiskModelRegistry } from "../src/registry.ts";

const roots: string[] = [];
async function tempRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "canopy-registry-"));
  roots.push(root);
  return root;
}
afterEach(async () => {
  await Promise.all(roots.splice(0).map((r) => rm(r, { recursive: true, force: true })));
});

describeRegistryContract("DiskModelRegistry", async () => {
  const root = await mkdtemp(join(tmpdir(), "canopy-registry-contract-"));
  const ledger = new DiskLedger(root, { fsync: false });
  return { ledger, registry: new DiskModelRegistry(root, { ledger, fsync: false }), cleanup: () => rm(root, { recursive: true, force: true }) };
});

describe("DiskModelRegistry on disk", () => {
  it("keeps one JSON file per alias under <root>/aliases, read by a new registry on the same root", async () => {
    const root = await tempRoot();
    const ledger = new DiskLedger(root, { fsync: false });
    const build = await buildWithStatus(ledger, "COMPLETED");
    const record = await new DiskModelRegistry(root, { fsync: false }).promote(build, "production");
    expect(await readdir(join(root, "aliases"))).toEqual(["production.json"]);
    expect(JSON.parse(await readFile(join(root, "aliases", "production.json"), "utf8"))).toEqual(record);
    // The default ledger is the root's DiskLedger: a fresh registry checks builds and resolves on its own.
    const fresh = new DiskModelRegistry(root);
    expect(await fresh.resolve("production")).toBe(build);
    expect(await fresh.list()).toEqual([record]);
  });

  it("serialises concurrent promotions of one alias: each sees the one before it as previous", async () => {
    const root = await tempRoot();
    const ledger = new DiskLedger(root, { fsync: false });
    const registry = new DiskModelRegistry(root, { ledger, fsync: false });
    const builds = [];
    for (let i = 0; i < 5; i++) builds.push(await buildWithStatus(ledger, "COMPLETED"));
    const records = await Promise.all(builds.map((b) => registry.promote(b, "production")));
    expect(records.map((r) => r.previous)).toEqual([undefined, ...builds.slice(0, -1)]);
    expect(await registry.resolve("production")).toBe(builds[4]);
  });

  it("reports a damaged alias file by its path, and skips files that are not alias names", async () => {
    const root = await tempRoot();
    const registry = new DiskModelRegistry(root, { fsync: false });
    expect(await registry.list()).toEqual([]); // no directory yet
    const dir = join(root, "aliases");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, ".production.json.abc.tmp"), "{");
    await writeFile(join(dir, "notes.txt"), "hello");
    expect(await registry.list()).toEqual([]);
    await writeFile(join(dir, "production.json"), "{ not json");
    await expect(registry.resolve("production")).rejects.toThrow(`alias file ${join(dir, "production.json")} is not valid JSON`);
    await writeFile(join(dir, "production.json"), JSON.stringify({ alias: "staging", buildId: "b-0000000000000000", promotedAt: 1 }));
    await expect(registry.resolve("production")).rejects.toThrow("is not an alias record");
  });
});
