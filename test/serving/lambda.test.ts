// The predict function through its real event shape: Lambda function URL events (payload 2.0), on memory ports.
import { keys, prepareDataset } from "@canopy/core";
import { buildWithStatus, MemoryBlobStore, MemoryLedger, MemoryRegistry } from "@canopy/core/testing";
import { fitForest, Forest, RowEncoder } from "@canopy/forest";
import { createPredictFunction } from "@canopy/functions";
import { storeFromPorts, type ModelStore } from "@canopy/serving";
import { beforeAll, describe, expect, it } from "vitest";
import { bodyOf, context, fixture, functionUrlEvent, quiet, train } from "./support.ts";

const digitsLines = fixture("digits.csv").trim().split("\n");
const digitsHeader = digitsLines[0].split(",");
const digitsRows = digitsLines.slice(1).map((l) => l.split(",").slice(0, -1).map(Number));

let digits: Forest;
let digitsBytes: Uint8Array;

beforeAll(() => {
  digits = train("digits.csv", 100, 7);
  digitsBytes = digits.toBinary();
});

function manualClock(start = 1_800_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

/** Memory ports with completed builds; `reads` counts model blob reads (loads) per build. */
async function ports(clock?: { now(): number }) {
  const ledger = new MemoryLedger();
  const blobs = new MemoryBlobStore();
  const registry = new MemoryRegistry(ledger, clock ? { clock } : {});
  const reads = new Map<string, number>();
  const base = storeFromPorts(registry, blobs);
  const store: ModelStore = {
    resolveAlias: (alias) => base.resolveAlias(alias),
    modelBytes: (id) => {
      reads.set(id, (reads.get(id) ?? 0) + 1);
      return base.modelBytes(id);
    },
  };
  const addBuild = async (bytes: Uint8Array) => {
    const id = await buildWithStatus(ledger, "COMPLETED");
    await blobs.put(keys.model(id), bytes);
    return id;
  };
  return { registry, store, reads, addBuild };
}

describe("a 100-tree digits model behind the function URL", () => {
  it("predicts every row exactly as the engine does: labels (JSON rows) and probabilities (base64 CSV)", async () => {
    const { registry, store, addBuild } = await ports();
    const id = await addBuild(digitsBytes);
    await registry.promote(id, "production");
    const fn = createPredictFunction({ store: async () => store, logger: quiet(), env: {} });

    const labels = await fn(functionUrlEvent({ contentType: "application/json", body: JSON.stringify({ rows: digitsRows }) }), context());
    expect(labels.statusCode).toBe(200);
    const expected = digits.predict(digitsRows) as string[];
    expect(bodyOf(labels).predictions).toEqual(expected);
    // What was stored and loaded is the same model.
    expect(Forest.load(digitsBytes).predict(digitsRows)).toEqual(expected);
    expect(bodyOf(labels).model).toEqual({ buildId: id, alias: "production", task: "classification", label: "digit", trees: 100 });

    const csv = fixture("digits.csv");
    const proba = await fn(functionUrlEvent({ path: "/predict", query: { proba: "1" }, contentType: "text/csv", body: csv, base64: true }), context());
    expect(proba.statusCode).toBe(200);
    const body = bodyOf(proba);
    expect(body.classes).toEqual(digits.classes);
    expect((body.probabilities as number[][]).flat()).toEqual(Array.from(digits.predictProba(digitsRows)));
    expect(body.predictions).toEqual(expected);
    expect(proba.headers?.["x-canopy-build"]).toBe(id);
  });
});

describe("a model with categorical splits (penguins: island and sex split into sets) behind the function URL", () => {
  it("predicts raw CSV rows and JSON records exactly as the engine does through the model's schema", async () => {
    const csv = fixture("penguins.csv");
    const prepared = await prepareDataset(csv, { label: "Species" }, new MemoryBlobStore());
    const model = fitForest(prepared.pack, { n_estimators: 30, random_state: 2 }).withSchema(prepared.schema);
    expect(model.trees.some((t) => t.categorical !== undefined)).toBe(true);
    const bytes = model.toBinary();
    const { registry, store, addBuild } = await ports();
    const id = await addBuild(bytes);
    await registry.promote(id, "production");
    const fn = createPredictFunction({ store: async () => store, logger: quiet(), env: {} });

    // In process: the same rows through the schema's RowEncoder (unseen and missing categories included).
    const lines = csv.trim().split("\n");
    const header = lines[0].split(",");
    const records = lines.slice(1).map((l) => Object.fromEntries(l.split(",").map((v, i) => [header[i], v])));
    records.push({ ...records[0], Island: "Atlantis" }, { ...records[1], Sex: "" });
    const encoder = new RowEncoder(model.schema!);
    const X = records.map((rec, r) => {
      const out = new Float64Array(encoder.nFeatures);
      encoder.columnNames.forEach((name, c) => encoder.encode(c, rec[name] ?? null, out, 0, { row: r + 2 }));
      return Array.from(out);
    });
    const expected = Forest.load(bytes).predict(X) as string[];
    expect(expected.slice(0, 5)).toEqual(model.predict(X).slice(0, 5));

    const viaJson = await fn(functionUrlEvent({ contentType: "application/json", body: JSON.stringify({ records }) }), context());
    expect(viaJson.statusCode).toBe(200);
    expect(bodyOf(viaJson).predictions).toEqual(expected);
    const viaCsv = await fn(functionUrlEvent({ query: { proba: "1" }, contentType: "text/csv", body: csv, base64: true }), context());
    expect(viaCsv.statusCode).toBe(200);
    expect((bodyOf(viaCsv).probabilities as number[][]).flat()).toEqual(Array.from(model.predictProba(X.slice(0, -2))));
  });
});

describe("the function URL adapter", () => {
  let fn: ReturnType<typeof createPredictFunction>;
  let id: string;
  let reads: Map<string, number>;

  beforeAll(async () => {
    const p = await ports();
    id = await p.addBuild(digitsBytes);
    await p.registry.promote(id, "production");
    reads = p.reads;
    fn = createPredictFunction({ store: async () => p.store, logger: quiet(), env: { CANOPY_MAX_ROWS: "100" } });
  });

  it("answers GET / with the model summary, and keeps the model loaded across warm invocations", async () => {
    const summary = await fn(functionUrlEvent({ method: "GET" }), context());
    expect(summary.statusCode).toBe(200);
    expect(bodyOf(summary)).toMatchObject({
      status: "ok",
      model: { buildId: id, alias: "production", trees: 100, features: digitsHeader.slice(0, -1), bytes: digitsBytes.byteLength },
      limits: { maxRows: 100, maxBodyBytes: 6 * 1024 * 1024 },
    });
    for (let i = 0; i < 5; i++) {
      const r = await fn(functionUrlEvent({ contentType: "application/json", body: JSON.stringify({ rows: [digitsRows[i]] }) }), context());
      expect(bodyOf(r).predictions).toEqual(digits.predict([digitsRows[i]]));
    }
    expect(reads.get(id)).toBe(1);
  });

  it("decodes base64 bodies whatever their type, and sniffs JSON without a content type", async () => {
    const one = JSON.stringify({ records: [Object.fromEntries(digitsHeader.slice(0, -1).map((f, i) => [f, digitsRows[3][i]]))] });
    for (const event of [
      functionUrlEvent({ contentType: "application/octet-stream", body: one }),
      functionUrlEvent({ body: new TextEncoder().encode(one) }),
      functionUrlEvent({ contentType: "application/json", body: one, base64: true }),
    ]) {
      const r = await fn(event, context());
      expect(r.statusCode).toBe(200);
      expect(bodyOf(r).predictions).toEqual(digits.predict([digitsRows[3]]));
    }
  });

  const rowJson = (row: unknown[]) => JSON.stringify({ rows: [row] });
  const cases: [string, Parameters<typeof functionUrlEvent>[0], number, RegExp][] = [
    ["empty body", { contentType: "application/json" }, 400, /^empty body: send JSON/],
    ["payload over 6 MB", { contentType: "text/csv", body: `${digitsHeader.join(",")}\n${"0,".repeat(3.2 * 1024 * 1024)}0` }, 413, /^request body is \d+ bytes; the limit is 6291456 bytes/],
    ["too many rows (CANOPY_MAX_ROWS)", { contentType: "application/json", body: JSON.stringify({ rows: digitsRows.slice(0, 101) }) }, 413, /^101 rows in one request; the limit is 100/],
    ["wrong number of features", { contentType: "application/json", body: rowJson([1, 2, 3]) }, 400, /^rows\[0\] has 3 values; the model expects 64 features \(pixel0, pixel1, /],
    ["unknown feature", { contentType: "text/csv", body: "pixel_x\n1" }, 400, /^CSV header: unknown feature "pixel_x"/],
    ["non-numeric value", { contentType: "application/json", body: rowJson([...digitsRows[0].slice(0, 10), "ten", ...digitsRows[0].slice(11)]) }, 400, /^rows\[0\]\[10\] \("pixel10"\): "ten" is not a number/],
    ["unknown model", { query: { model: "b-00000000000000ff" }, contentType: "application/json", body: rowJson(digitsRows[0]) }, 404, /^model b-00000000000000ff not found/],
    ["unknown alias", { query: { alias: "canary" }, contentType: "application/json", body: rowJson(digitsRows[0]) }, 404, /^alias "canary" is not set \(canopy promote <build-id> --alias canary\)/],
    ["unsupported content type", { contentType: "application/xml", body: "<rows/>" }, 415, /^unsupported content type "application\/xml"/],
    ["wrong method", { method: "DELETE" }, 405, /^DELETE \/ is not allowed; use GET, POST/],
    ["unknown path", { path: "/v2/predict", contentType: "application/json", body: rowJson(digitsRows[0]) }, 404, /^no route POST \/v2\/predict/],
  ];
  it.each(cases)("%s: status and a message naming the problem", async (_name, event, status, message) => {
    const r = await fn(functionUrlEvent(event), context());
    expect(r.statusCode).toBe(status);
    expect(r.headers?.["content-type"]).toBe("application/json; charset=utf-8");
    expect(bodyOf(r).error).toMatch(message);
  });
});

describe("model versions in a warm container", () => {
  it("a promotion is picked up after the alias TTL, without a redeploy; each model is loaded once", async () => {
    const clock = manualClock();
    const { registry, store, reads, addBuild } = await ports(clock);
    const small = train("digits.csv", 5, 1);
    const first = await addBuild(digitsBytes);
    const second = await addBuild(small.toBinary());
    await registry.promote(first, "production");
    const fn = createPredictFunction({ store: async () => store, logger: quiet(), clock, env: { CANOPY_ALIAS_TTL_SECONDS: "30" } });
    const served = async () => {
      const r = await fn(functionUrlEvent({ contentType: "application/json", body: JSON.stringify({ rows: digitsRows.slice(0, 20) }) }), context());
      const body = bodyOf(r);
      return { build: (body.model as { buildId: string }).buildId, predictions: body.predictions };
    };
    expect((await served()).build).toBe(first);
    await registry.promote(second, "production");
    clock.advance(29_999);
    expect((await served()).build).toBe(first);
    clock.advance(1);
    const now = await served();
    expect(now.build).toBe(second);
    expect(now.predictions).toEqual(small.predict(digitsRows.slice(0, 20)));
    // Rolling back is just as quick, and the first model is still loaded.
    await registry.promote(first, "production");
    clock.advance(30_000);
    expect((await served()).build).toBe(first);
    expect([reads.get(first), reads.get(second)]).toEqual([1, 1]);
  });
});

describe("setup", () => {
  it("answers 500 naming what is missing, and retries on the next invocation", async () => {
    let attempts = 0;
    const { registry, store, addBuild } = await ports();
    await registry.promote(await addBuild(digitsBytes), "production");
    const fn = createPredictFunction({
      store: async () => {
        if (++attempts === 1) throw new Error("AWS resources not configured: table (set CANOPY_TABLE or link CanopyBuilds)");
        return store;
      },
      logger: quiet(),
      env: {},
    });
    const failed = await fn(functionUrlEvent({ method: "GET" }), context());
    expect(failed.statusCode).toBe(500);
    expect(bodyOf(failed).error).toBe("predict function not configured: AWS resources not configured: table (set CANOPY_TABLE or link CanopyBuilds)");
    expect((await fn(functionUrlEvent({ method: "GET" }), context())).statusCode).toBe(200);
    expect(attempts).toBe(2);
  });

  it("refuses a bad setting with the variable's name", async () => {
    const fn = createPredictFunction({ store: async () => (await ports()).store, logger: quiet(), env: { CANOPY_MAX_ROWS: "many" } });
    const r = await fn(functionUrlEvent({ method: "GET" }), context());
    expect(r.statusCode).toBe(500);
    expect(bodyOf(r).error).toBe('predict function not configured: CANOPY_MAX_ROWS must be an integer >= 1; got "many"');
  });
});

describe("a partitioned model behind the function URL (penguins by island, promoted as production)", () => {
  it("routes a mixed request by island, answers the documented 400 for an unknown island, and with skip_unknown a null and an errors entry; loads only the partitions asked for", async () => {
    const { partitionedFixture, storePartitioned } = await import("@canopy/core/testing");
    const penguins = partitionedFixture(fixture("penguins.csv"), { label: "Species", partitionBy: "Island", trees: 10 });
    const ledger = new MemoryLedger();
    const blobs = new MemoryBlobStore();
    const registry = new MemoryRegistry(ledger);
    await storePartitioned(blobs, penguins);
    await buildWithStatus(ledger, "COMPLETED", penguins.model.runId);
    await registry.promote(penguins.model.runId, "production");
    const reads: string[] = [];
    const base = storeFromPorts(registry, blobs);
    const store: ModelStore = { ...base, modelBytes: (id) => (reads.push(id), base.modelBytes(id)) };
    const fn = createPredictFunction({ store: async () => store, logger: quiet(), env: { AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "1769" } });
    const rec = (Island: string, beak: number, depth: number, flipper: number, mass: number, Sex: string) => ({
      Island,
      "Beak Length (mm)": beak,
      "Beak Depth (mm)": depth,
      "Flipper Length (mm)": flipper,
      "Body Mass (g)": mass,
      Sex,
    });
    const rows = [rec("Dream", 50.9, 19.1, 196, 3550, "MALE"), rec("Anvers", 40, 18, 190, 3800, "FEMALE"), rec("Biscoe", 46.1, 13.2, 211, 4500, "FEMALE")];
    const refused = await fn(functionUrlEvent({ contentType: "application/json", body: JSON.stringify({ records: rows }) }), context());
    expect(refused.statusCode).toBe(400);
    expect(bodyOf(refused).error).toBe('no model for "Island" "Anvers" (records[1]): 1 row in all, and the partitioned model has no fallback');
    expect(reads).toEqual([]);

    const answered = await fn(functionUrlEvent({ contentType: "application/json", query: { skip_unknown: "1" }, body: JSON.stringify({ records: rows }) }), context());
    expect(answered.statusCode).toBe(200);
    const engine = (island: string, r: Record<string, unknown>) => {
      const forest = penguins.forests.get(island)!;
      const encoder = new RowEncoder(forest.schema!);
      const x = new Float64Array(encoder.nFeatures);
      encoder.columnNames.forEach((name, c) => encoder.encode(c, r[name] as string | number, x, 0, { path: name }));
      return forest.predict({ data: x, nRows: 1, nCols: encoder.nFeatures })[0];
    };
    expect(bodyOf(answered).predictions).toEqual([engine("Dream", rows[0]!), null, engine("Biscoe", rows[2]!)]);
    expect(bodyOf(answered).errors).toEqual([{ row: 1, value: "Anvers", error: 'no model for Island "Anvers", and no fallback model' }]);
    expect(answered.headers?.["x-canopy-build"]).toBe(penguins.model.runId);
    expect(reads.sort()).toEqual([penguins.model.partitions.Biscoe!.build, penguins.model.partitions.Dream!.build].sort());
  });
});
