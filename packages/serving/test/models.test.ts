import type { Forest } from "@canopy/forest";
import { beforeAll, describe, expect, it } from "vitest";
import { AliasCache, createHandler, ModelCache, registryModels, ServingError, storeFromPorts } from "../src/index.ts";
import { json, manualClock, memoryRegistry, post, train } from "./support.ts";

let small: Forest;
let other: Forest;
beforeAll(() => {
  small = train("iris.csv", 4, 1);
  other = train("iris.csv", 6, 2);
});

describe("ModelCache", () => {
  it("reads and decodes a model once; concurrent requests share the load", async () => {
    let reads = 0;
    const bytes = small.toBinary();
    const cache = new ModelCache(async () => {
      reads++;
      await new Promise((resolve) => setTimeout(resolve, 5));
      return bytes;
    });
    const [a, b] = await Promise.all([cache.get("b-0000000000000001"), cache.get("b-0000000000000001")]);
    const c = await cache.get("b-0000000000000001");
    expect(a.forest).toBe(b.forest);
    expect(c.forest).toBe(a.forest);
    expect([reads, cache.loads]).toEqual([1, 1]);
    expect(a).toMatchObject({ buildId: "b-0000000000000001", bytes: bytes.byteLength, source: "builds/b-0000000000000001/model.canopy" });
  });

  it("keeps at most `capacity` models, evicting the least recently used", async () => {
    const reads: string[] = [];
    const cache = new ModelCache(
      async (id) => {
        reads.push(id);
        return small.toBinary();
      },
      { capacity: 2 },
    );
    const [x, y, z] = ["b-000000000000000a", "b-000000000000000b", "b-000000000000000c"];
    await cache.get(x);
    await cache.get(y);
    await cache.get(x); // x is now the most recent
    await cache.get(z); // evicts y
    expect(cache.held()).toEqual([x, z]);
    await cache.get(x);
    await cache.get(y);
    expect(reads).toEqual([x, y, z, y]);
  });

  it("does not keep a failed load: a model that appears later is found", async () => {
    let bytes: Uint8Array | undefined;
    const cache = new ModelCache(async () => bytes);
    const err = await cache.get("b-0000000000000001").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServingError);
    expect((err as ServingError).status).toBe(404);
    bytes = small.toBinary();
    expect((await cache.get("b-0000000000000001")).forest.nTrees).toBe(4);
  });
});

describe("AliasCache", () => {
  it("asks the registry once per alias per TTL", async () => {
    const clock = manualClock();
    let target = "b-000000000000000a";
    const asked: string[] = [];
    const aliases = new AliasCache(
      async (alias) => {
        asked.push(alias);
        return target;
      },
      { ttlMs: 10_000, clock },
    );
    expect(await aliases.get("production")).toBe("b-000000000000000a");
    target = "b-000000000000000b";
    clock.advance(9_999);
    expect(await aliases.get("production")).toBe("b-000000000000000a");
    expect(await aliases.get("staging")).toBe("b-000000000000000b");
    clock.advance(1);
    expect(await aliases.get("production")).toBe("b-000000000000000b");
    expect(asked).toEqual(["production", "staging", "production"]);
  });

  it("shares one lookup between concurrent requests", async () => {
    let lookups = 0;
    const aliases = new AliasCache(async () => {
      lookups++;
      await new Promise((resolve) => setTimeout(resolve, 5));
      return "b-000000000000000a";
    });
    await Promise.all(Array.from({ length: 10 }, () => aliases.get("production")));
    expect(lookups).toBe(1);
  });

  it("keeps serving the last answer when a refresh fails, and says so", async () => {
    const clock = manualClock();
    let fail = false;
    const stale: string[] = [];
    const aliases = new AliasCache(
      async () => {
        if (fail) throw new Error("throttled");
        return "b-000000000000000a";
      },
      { ttlMs: 1000, clock, onStale: (alias, err) => stale.push(`${alias}: ${(err as Error).message}`) },
    );
    await aliases.get("production");
    fail = true;
    clock.advance(5000);
    expect(await aliases.get("production")).toBe("b-000000000000000a");
    expect(stale).toEqual(["production: throttled"]);
    // Nothing to fall back on: the error goes to the caller.
    await expect(aliases.get("staging")).rejects.toThrow("throttled");
  });

  it("keeps at most maxEntries aliases", async () => {
    let lookups = 0;
    const aliases = new AliasCache(
      async () => {
        lookups++;
        return undefined;
      },
      { maxEntries: 2 },
    );
    for (const a of ["a", "b", "c", "a"]) await aliases.get(a);
    expect(lookups).toBe(4); // "a" had been evicted by "c"
    await aliases.get("c");
    expect(lookups).toBe(4);
  });
});

describe("a warm container picks up a promotion after the alias TTL, without reloading models it has", () => {
  it("promote A, serve A; promote B: A until the TTL passes, then B; back to A from the model cache", async () => {
    const clock = manualClock();
    const { registry, blobs, addBuild } = await memoryRegistry(clock);
    const a = await addBuild(small);
    const b = await addBuild(other);
    const models = registryModels(storeFromPorts(registry, blobs), { aliasTtlMs: 10_000, clock });
    const handler = createHandler({ models });
    const ask = async () => json(await handler(post(JSON.stringify({ rows: [[5.1, 3.5, 1.4, 0.2]] })))).model as { buildId: string; trees: number };

    expect((await handler(post('{"rows": [[1,2,3,4]]}'))).status).toBe(404); // nothing promoted yet
    await registry.promote(a, "production");
    expect((await handler(post('{"rows": [[1,2,3,4]]}'))).status).toBe(404); // "not set" is cached for the TTL too
    clock.advance(10_000);
    expect(await ask()).toMatchObject({ buildId: a, trees: 4 });
    await registry.promote(b, "production");
    clock.advance(9_000);
    expect((await ask()).buildId).toBe(a);
    clock.advance(1_000);
    expect(await ask()).toMatchObject({ buildId: b, trees: 6 });
    await registry.promote(a, "production");
    clock.advance(10_000);
    expect((await ask()).buildId).toBe(a);
    // A was still in the model cache; the registry was asked once per TTL, not per request.
    expect(models.cache.loads).toBe(2);
    expect(models.aliases.lookups).toBe(4);
  });
});
