import { buildPack, type Dataset } from "@canopy/forest";
import { describe, expect, it } from "vitest";
import { TaskError } from "../src/errors.ts";
import { keys } from "../src/keys.ts";
import { PackCache } from "../src/pack-cache.ts";
import { MemoryBlobStore } from "../src/testing/index.ts";

function tinyPack(offset: number) {
  const dataset: Dataset = {
    featureNames: ["x"],
    labelName: "y",
    nRows: 4,
    columns: [Float64Array.from([1, 2, 3, 4].map((v) => v + offset))],
    target: { task: "regression", values: Float64Array.from([1, 2, 3, 4]) },
  };
  return buildPack(dataset);
}

class CountingBlobs extends MemoryBlobStore {
  gets = 0;
  override async get(key: string) {
    this.gets++;
    return super.get(key);
  }
}

async function stored(...packs: ReturnType<typeof tinyPack>[]) {
  const blobs = new CountingBlobs();
  for (const p of packs) await blobs.put(keys.pack(p.hash), p.bytes);
  return blobs;
}

describe("PackCache", () => {
  it("reads a pack once and serves it from memory afterwards, even to concurrent callers", async () => {
    const pack = tinyPack(0);
    const blobs = await stored(pack);
    const cache = new PackCache();
    const [a, b] = await Promise.all([cache.load(pack.hash, keys.pack(pack.hash), blobs), cache.load(pack.hash, keys.pack(pack.hash), blobs)]);
    expect(blobs.gets).toBe(1);
    expect(a.cached).toBe(false);
    expect(b.cached).toBe(true);
    expect(a.pack.hash).toBe(pack.hash);
    expect(Array.from(a.pack.bins)).toEqual(Array.from(pack.bins));
    expect((await cache.load(pack.hash, keys.pack(pack.hash), blobs)).cached).toBe(true);
    expect(blobs.gets).toBe(1);
  });

  it("uses a pre-filled pack without touching the store", async () => {
    const pack = tinyPack(0);
    const blobs = new CountingBlobs();
    const cache = new PackCache();
    cache.set(pack);
    expect((await cache.load(pack.hash, keys.pack(pack.hash), blobs)).pack).toBe(pack);
    expect(blobs.gets).toBe(0);
  });

  it("refuses a missing pack or one whose content does not match its hash, and does not cache the failure", async () => {
    const a = tinyPack(0);
    const b = tinyPack(10);
    const blobs = new CountingBlobs();
    const cache = new PackCache();
    await expect(cache.load(a.hash, keys.pack(a.hash), blobs)).rejects.toThrow(TaskError);
    await blobs.put(keys.pack(a.hash), b.bytes); // wrong content under a's key
    await expect(cache.load(a.hash, keys.pack(a.hash), blobs)).rejects.toThrow(/has hash/);
    await blobs.put(keys.pack(a.hash), a.bytes);
    expect((await cache.load(a.hash, keys.pack(a.hash), blobs)).pack.hash).toBe(a.hash);
  });

  it("drops the least recently used pack beyond its capacity", async () => {
    const [a, b, c] = [tinyPack(0), tinyPack(10), tinyPack(20)];
    const blobs = await stored(a, b, c);
    const cache = new PackCache(2);
    await cache.load(a.hash, keys.pack(a.hash), blobs);
    await cache.load(b.hash, keys.pack(b.hash), blobs);
    await cache.load(a.hash, keys.pack(a.hash), blobs); // a is now the most recent
    await cache.load(c.hash, keys.pack(c.hash), blobs);
    expect(cache.has(a.hash)).toBe(true);
    expect(cache.has(b.hash)).toBe(false);
    expect(cache.has(c.hash)).toBe(true);
  });
});
