import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { keys } from "@canopy/core";
import { afterEach, describe, expect, it } from "vitest";
import { DiskBlobStore } from "../src/blob-store.ts";

const roots: string[] = [];
async function store(fsync = false): Promise<DiskBlobStore> {
  const root = await mkdtemp(join(tmpdir(), "canopy-blobs-"));
  roots.push(root);
  return new DiskBlobStore(root, { fsync });
}
afterEach(async () => {
  await Promise.all(roots.splice(0).map((r) => rm(r, { recursive: true, force: true })));
});

async function filesUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1)).sort();
}

describe("DiskBlobStore", () => {
  it("stores blobs as files under the S3 key layout and reads a missing key as undefined", async () => {
    const blobs = await store(true);
    const id = "b-0123456789abcdef";
    expect(await blobs.get(keys.model(id))).toBeUndefined();
    expect(await blobs.exists(keys.model(id))).toBe(false);
    await blobs.put(keys.model(id), new Uint8Array([1, 2, 3]));
    await blobs.put(keys.grove(id, 7), new Uint8Array([9]));
    expect(await blobs.exists(keys.model(id))).toBe(true);
    expect(Array.from((await blobs.get(keys.model(id)))!)).toEqual([1, 2, 3]);
    expect(await filesUnder(blobs.root)).toEqual([`builds/${id}/groves/00007.grove`, `builds/${id}/model.canopy`]);
    expect(Array.from(await readFile(join(blobs.root, "builds", id, "groves", "00007.grove")))).toEqual([9]);
    // A directory is not a blob.
    expect(await blobs.exists(`builds/${id}`)).toBe(false);
  });

  it("overwrites atomically: concurrent writers leave one whole value and no temp files", async () => {
    const blobs = await store();
    const key = "builds/b-0123456789abcdef/report.json";
    const values = Array.from({ length: 12 }, (_, i) => new Uint8Array(64 * 1024).fill(i + 1));
    await Promise.all(values.map((v) => blobs.put(key, v)));
    const final = (await blobs.get(key))!;
    expect(final.length).toBe(64 * 1024);
    expect(final.every((b) => b === final[0])).toBe(true);
    await blobs.put(key, new Uint8Array([42]));
    expect(Array.from((await blobs.get(key))!)).toEqual([42]);
    expect(await filesUnder(blobs.root)).toEqual([key]);
  });

  it("rejects keys that could leave the root or collide with temp files", async () => {
    const blobs = await store();
    for (const key of ["../x", "/etc/passwd", "builds/../../x", "builds//x", ".hidden", "builds/.x.tmp", ""]) {
      await expect(blobs.put(key, new Uint8Array([1])), key).rejects.toThrow(/^invalid blob key/);
      await expect(blobs.get(key), key).rejects.toThrow(/^invalid blob key/);
    }
    expect(await filesUnder(blobs.root).catch(() => [])).toEqual([]);
  });
});
