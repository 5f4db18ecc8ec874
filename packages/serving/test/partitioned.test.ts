import { keys } from "@canopy/core";
import { buildWithStatus, MemoryBlobStore, MemoryLedger, MemoryRegistry, partitionedFixture, storePartitioned, type PartitionedFixture } from "@canopy/core/testing";
import { beforeAll, describe, expect, it } from "vitest";
import { createHandler, ModelCache, registryModels, storeFromPorts, type ModelStore } from "../src/index.ts";
import { fixture, get, json, post, train } from "./support.ts";

/**
 * A partitioned model served by the same handler as a single one: penguins by island (three partitions whose
 * models know different species and read "Sex" through their own categories), real models in memory ports.
 */
let penguins: PartitionedFixture;
beforeAll(() => {
  penguins = partitionedFixture(fixture("penguins.csv"), { label: "Species", partitionBy: "Island", trees: 5 });
});

const record = (island: string, beak: number, depth: number, flipper: number, mass: number, sex: string | null) => ({
  Island: island,
  "Beak Length (mm)": beak,
  "Beak Depth (mm)": depth,
  "Flipper Length (mm)": flipper,
  "Body Mass (g)": mass,
  Sex: sex,
});
// One row of each island (values from the table: Torgersen Adelie, Dream Chinstrap, Biscoe Gentoo) and one of an island without a model.
const torgersen = record("Torgersen", 39.1, 18.7, 181, 3750, "MALE");
const dream = record("Dream", 50.9, 19.1, 196, 3550, "MALE");
const biscoe = record("Biscoe", 46.1, 13.2, 211, 4500, "FEMALE");
const anvers = record("Anvers", 40, 18, 190, 3800, "FEMALE");

async function served(options: { maxModelBytes?: number; store?: (s: ModelStore) => ModelStore } = {}) {
  const ledger = new MemoryLedger();
  const blobs = new MemoryBlobStore();
  const registry = new MemoryRegistry(ledger);
  await storePartitioned(blobs, penguins);
  await buildWithStatus(ledger, "COMPLETED", penguins.model.runId);
  const base = storeFromPorts(registry, blobs);
  const models = registryModels(options.store ? options.store(base) : base, {
    defaultSelector: { buildId: penguins.model.runId },
    ...(options.maxModelBytes !== undefined ? { maxModelBytes: options.maxModelBytes } : {}),
  });
  const handler = createHandler({ models });
  return { handler, models, registry, blobs };
}

const build = (island: string) => penguins.model.partitions[island]!.build;
const records = (...rows: object[]) => JSON.stringify({ records: rows });

/** What each partition's build answers on its own (?model=b-…, the single-model path: another parser, no routing). */
async function alone(handler: ReturnType<typeof createHandler>, rows: Record<string, unknown>[]): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const { Island, ...features } of rows) {
    const res = json(await handler(post(records(features), { query: { model: build(Island as string) } })));
    out.push((res.predictions as unknown[])[0]);
  }
  return out;
}

describe("serving a partitioned model", () => {
  it("a request mixing three partitions and an unknown value is refused (400 naming the value and row), nothing loaded", async () => {
    const { handler, models } = await served();
    const res = await handler(post(records(torgersen, dream, anvers, biscoe)));
    expect(res.status).toBe(400);
    expect(json(res).error).toBe('no model for "Island" "Anvers" (records[2]): 1 row in all, and the partitioned model has no fallback');
    expect(models.cache.loads).toBe(0);
  });

  it("with skip_unknown (query or body): the three right predictions, null and an errors entry for the unknown row", async () => {
    const { handler } = await served();
    const expected = await alone(handler, [torgersen, dream, biscoe]);
    expect(expected).toEqual(["Adelie", "Chinstrap", "Gentoo"]);
    for (const request of [post(records(torgersen, dream, anvers, biscoe), { query: { skip_unknown: "1" } }), post(JSON.stringify({ records: [torgersen, dream, anvers, biscoe], skip_unknown: true }))]) {
      const res = await handler(request);
      expect(res.status).toBe(200);
      expect(res.headers["x-canopy-build"]).toBe(penguins.model.runId);
      const body = json(res);
      expect(body.predictions).toEqual([expected[0], expected[1], null, expected[2]]);
      expect(body.errors).toEqual([{ row: 2, value: "Anvers", error: 'no model for Island "Anvers", and no fallback model' }]);
      expect(body.model).toEqual({ buildId: penguins.model.runId, alias: null, task: "classification", partitionBy: "Island", partitions: 3, fallback: false });
    }
  });

  it("echoes a long unknown value only in short, in the refusal and in errors", async () => {
    const { handler } = await served();
    const long = record("x".repeat(5000), 40, 18, 190, 3800, "FEMALE");
    const refused = await handler(post(records(dream, long)));
    expect(json(refused).error).toBe(`no model for "Island" "${"x".repeat(40)}…" (records[1]): 1 row in all, and the partitioned model has no fallback`);
    const body = json(await handler(post(records(dream, long), { query: { skip_unknown: "true" } })));
    expect(body.errors).toEqual([{ row: 1, value: `${"x".repeat(100)}…`, error: `no model for Island "${"x".repeat(40)}…", and no fallback model` }]);
  });

  it("reads CSV too, and gives probabilities over the served partitions' classes", async () => {
    const { handler } = await served();
    const header = Object.keys(torgersen).map((k) => (k.includes(" ") ? `"${k}"` : k));
    const line = (r: Record<string, unknown>) => Object.values(r).map((v) => (v === null ? "" : String(v))).join(",");
    const csv = [header.join(","), line(biscoe), line(torgersen)].join("\n");
    const body = json(await handler(post(csv, { type: "text/csv", query: { proba: "1" } })));
    expect(body.predictions).toEqual(["Gentoo", "Adelie"]);
    expect(body.classes).toEqual(["Adelie", "Gentoo"]);
    expect(body.probabilities).toHaveLength(2);
    expect((body.probabilities as number[][])[1]).toEqual([1, 0]);
  });

  it("refuses feature vectors (\"rows\"): they carry no column to route by", async () => {
    const { handler } = await served();
    const res = await handler(post('{"rows": [[1, 2, 3, 4, 5]]}'));
    expect(res.status).toBe(400);
    expect(json(res).error).toMatch(/^this is a partitioned model: send "records"/);
  });

  it("a warm server loads only the partitions it is asked for, once", async () => {
    const { handler, models } = await served();
    expect((await handler(post(records(dream, dream)))).status).toBe(200);
    expect(models.cache.loads).toBe(1);
    expect(models.cache.held()).toEqual([build("Dream")]);
    await handler(post(records(dream)));
    expect(models.cache.loads).toBe(1);
    await handler(post(records(biscoe, dream)));
    expect(models.cache.loads).toBe(2);
    expect(models.cache.held().sort()).toEqual([build("Biscoe"), build("Dream")].sort());
  });

  it("concurrent requests for one partition share one read", async () => {
    let reads = 0;
    const { handler, models } = await served({
      store: (s) => ({
        ...s,
        modelBytes: async (id) => {
          reads++;
          await new Promise((resolve) => setTimeout(resolve, 10));
          return s.modelBytes(id);
        },
      }),
    });
    const answers = await Promise.all([1, 2, 3].map(() => handler(post(records(dream)))));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect([reads, models.cache.loads]).toEqual([1, 1]);
  });

  it("a request for more partitions than the cache's byte budget still answers right, evicting as it goes", async () => {
    const sizes = Object.values(penguins.model.partitions).map((p) => p.bytes);
    const budget = Math.max(...sizes); // room for the largest partition, not for two
    const { handler, models } = await served({ maxModelBytes: budget });
    const { handler: roomy } = await served();
    const rows = [torgersen, dream, biscoe, dream, torgersen];
    const tight = json(await handler(post(records(...rows))));
    expect(tight.predictions).toEqual(json(await roomy(post(records(...rows)))).predictions);
    expect(models.cache.loads).toBe(3);
    expect(models.cache.heldBytes()).toBeLessThanOrEqual(budget);
    expect(models.cache.held()).toHaveLength(1);
    // Smaller than any model: each still loads and answers, and is kept alone until the next.
    const { handler: tiny, models: tinyModels } = await served({ maxModelBytes: 1 });
    expect(json(await tiny(post(records(...rows)))).predictions).toEqual(tight.predictions);
    expect(tinyModels.cache.held()).toHaveLength(1);
  });

  it("serves through an alias that points at the partitioned run, and summarises it without loading a partition", async () => {
    const { handler, registry, models } = await served();
    await registry.promote(penguins.model.runId, "production");
    const summary = json(await handler(get({ alias: "production" })));
    expect(summary.model).toMatchObject({ buildId: penguins.model.runId, alias: "production", partitionBy: "Island", partitions: 3, features: penguins.model.features, skipped: 0 });
    expect(models.cache.loads).toBe(0);
    const body = json(await handler(post(records(dream), { query: { alias: "production" } })));
    expect(body.predictions).toEqual(["Chinstrap"]);
    expect(json(await handler(post(records(dream), { query: { model: penguins.model.runId } }))).predictions).toEqual(["Chinstrap"]);
    const missing = await handler(post(records(dream), { query: { model: "p-00000000000000ff" } }));
    expect([missing.status, json(missing).error]).toEqual([404, "partitioned model p-00000000000000ff not found (no finished partitioned run with that id)"]);
  });

  it("a partition model that is not the manifest's file is a 500 naming it; a missing one too", async () => {
    const { handler, blobs } = await served();
    const other = train("iris.csv", 2).toBinary();
    await blobs.put(keys.model(build("Dream")), other);
    const res = await handler(post(records(dream)));
    expect(res.status).toBe(500);
    expect(json(res).error).toBe(`builds/${build("Dream")}/model.canopy (partition "Dream" of ${penguins.model.runId}) is not the model its manifest names: it was changed or replaced`);
    const { handler: lacking } = await served({ store: (st) => ({ ...st, modelBytes: async (id) => (id === build("Biscoe") ? undefined : st.modelBytes(id)) }) });
    const gone = await lacking(post(records(biscoe)));
    expect([gone.status, json(gone).error]).toEqual([500, `builds/${build("Biscoe")}/model.canopy (partition "Biscoe" of ${penguins.model.runId}) is missing`]);
  });
});

describe("ModelCache bounded in bytes", () => {
  it("keeps the loaded models' sizes under the budget, least recently used evicted first", async () => {
    const small = train("iris.csv", 2).toBinary();
    const cache = new ModelCache(async () => small, { maxBytes: small.byteLength * 2 });
    const [x, y, z] = ["b-000000000000000a", "b-000000000000000b", "b-000000000000000c"];
    await cache.get(x);
    await cache.get(y);
    expect(cache.heldBytes()).toBe(small.byteLength * 2);
    await cache.get(x);
    await cache.get(z); // evicts y
    expect(cache.held()).toEqual([x, z]);
    expect(cache.heldBytes()).toBe(small.byteLength * 2);
    expect(cache.loads).toBe(3);
  });

  it("does not drop a load in flight to make room in bytes: a request waiting for it still shares it", async () => {
    const small = train("iris.csv", 2).toBinary();
    const reads: string[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const cache = new ModelCache(
      async (id) => {
        reads.push(id);
        if (id === "b-000000000000000a") await gate;
        return small;
      },
      { maxBytes: small.byteLength },
    );
    const slow = cache.get("b-000000000000000a");
    await cache.get("b-000000000000000b");
    await cache.get("b-000000000000000c"); // over the budget: b goes, not the pending a
    expect(cache.held()).toEqual(["b-000000000000000a", "b-000000000000000c"]);
    const again = cache.get("b-000000000000000a");
    release();
    expect(await again).toBe(await slow);
    expect(reads).toEqual(["b-000000000000000a", "b-000000000000000b", "b-000000000000000c"]);
    expect(cache.held()).toEqual(["b-000000000000000a"]);
  });
});
