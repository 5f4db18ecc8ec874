import { keys } from "@canopy/core";
import type { Forest } from "@canopy/forest";
import { beforeAll, describe, expect, it } from "vitest";
import { createHandler, fixedModel, LAMBDA_PAYLOAD_LIMIT, registryModels, storeFromPorts, type Handler } from "../src/index.ts";
import { featureRows, fixture, get, json, memoryRegistry, post, train } from "./support.ts";

let iris: Forest;
let diabetes: Forest;
let handler: Handler;
const irisRows = featureRows("iris.csv");
const FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"];

beforeAll(() => {
  iris = train("iris.csv", 15, 3);
  diabetes = train("diabetes.csv", 8, 5, { maxDepth: 6 });
  handler = createHandler({ models: fixedModel(iris, { bytes: iris.toBinary().byteLength, source: "iris.canopy" }), maxRows: 200 });
});

const rowsBody = (rows: unknown[], extra: object = {}) => JSON.stringify({ rows, ...extra });

async function expectError(request: Parameters<Handler>[0], status: number, message: string | RegExp, h: Handler = handler) {
  const response = await h(request);
  expect(response.status).toBe(status);
  expect(response.headers["content-type"]).toBe("application/json; charset=utf-8");
  const body = json(response);
  expect(Object.keys(body)).toEqual(["error"]);
  if (typeof message === "string") expect(body.error).toBe(message);
  else expect(body.error).toMatch(message);
  expect(body.error).not.toContain("\n");
}

describe("predictions", () => {
  it("JSON rows: one label per row, as the engine predicts them", async () => {
    const response = await handler(post(rowsBody(irisRows.rows)));
    expect(response.status).toBe(200);
    const body = json(response);
    expect(body.predictions).toEqual(iris.predict(irisRows.rows));
    expect(body.model).toEqual({ buildId: null, alias: null, task: "classification", label: "species", trees: 15 });
    expect(body.probabilities).toBeUndefined();
  });

  it("records in any key order (the label ignored) and CSV with shuffled columns give the same predictions", async () => {
    const rows = irisRows.rows.slice(0, 40);
    const records = rows.map((r, i) => ({ species: irisRows.labels[i], petal_width: r[3], sepal_length: r[0], petal_length: r[2], sepal_width: r[1] }));
    const csv = ["petal_width,species,sepal_width,petal_length,sepal_length", ...rows.map((r, i) => `${r[3]},${irisRows.labels[i]},${r[1]},${r[2]},${r[0]}`)].join("\n");
    const expected = iris.predict(rows);
    expect(json(await handler(post(JSON.stringify({ records })))).predictions).toEqual(expected);
    expect(json(await handler(post(csv, { type: "text/csv; charset=utf-8" }))).predictions).toEqual(expected);
    expect(json(await handler(post(`${csv}\n\n`, { type: "application/csv" }))).predictions).toEqual(expected);
  });

  it("probabilities on request (?proba=1 or \"proba\": true) equal the engine's, with the argmax as the label", async () => {
    const rows = irisRows.rows.filter((_, i) => i % 7 === 0);
    const expected = iris.predictProba(rows);
    for (const request of [post(rowsBody(rows), { query: { proba: "1" } }), post(rowsBody(rows, { proba: true })), post(rowsBody(rows, { proba: true }), { query: { proba: "true" } })]) {
      const body = json(await handler(request));
      expect(body.classes).toEqual(["setosa", "versicolor", "virginica"]);
      expect((body.probabilities as number[][]).flat()).toEqual(Array.from(expected));
      expect(body.predictions).toEqual(iris.predict(rows));
    }
    // The query wins over the body.
    expect(json(await handler(post(rowsBody(rows, { proba: true }), { query: { proba: "0" } }))).probabilities).toBeUndefined();
  });

  it("regression values, identical to the engine's", async () => {
    const h = createHandler({ models: fixedModel(diabetes, { bytes: 1, source: "d" }) });
    const { rows } = featureRows("diabetes.csv");
    const body = json(await h(post(rowsBody(rows.slice(0, 50)))));
    expect(body.predictions).toEqual(Array.from(diabetes.predict(rows.slice(0, 50)) as Float64Array));
    expect(body.model).toMatchObject({ task: "regression", label: "progression" });
    await expectError(post(rowsBody(rows.slice(0, 1)), { query: { proba: "1" } }), 400, "proba needs a classification model; this one is regression", h);
  });

  it("null is a missing value, exactly as NaN is to the engine; CSV spells it as the engine's reader does", async () => {
    const rows = [
      [5.1, null, 1.4, null],
      [null, null, null, null],
    ];
    const nan = rows.map((r) => r.map((v) => (v === null ? NaN : v)));
    const expected = Array.from(iris.predictProba(nan));
    expect((json(await handler(post(rowsBody(rows, { proba: true })))).probabilities as number[][]).flat()).toEqual(expected);
    const csv = `${FEATURES.join(",")}\n5.1,NA,1.4,\nnan,null,N/A,`;
    expect((json(await handler(post(csv, { type: "text/csv", query: { proba: "1" } }))).probabilities as number[][]).flat()).toEqual(expected);
  });

  it("serves POST /predict and trailing slashes; sniffs JSON or CSV when the type says nothing (curl -d)", async () => {
    const one = [irisRows.rows[60]];
    const expected = iris.predict(one);
    for (const request of [
      post(rowsBody(one), { path: "/predict" }),
      post(rowsBody(one), { path: "/predict/" }),
      post(rowsBody(one), { type: "" }),
      post(rowsBody(one), { type: "application/x-www-form-urlencoded" }),
      post(`${FEATURES.join(",")}\n${one[0].join(",")}`, { type: "" }),
      post(`${FEATURES.join(",")}\n${one[0].join(",")}`, { type: "text/plain" }),
      post(new TextEncoder().encode(rowsBody(one))),
    ]) {
      const response = await handler(request);
      expect(response.status).toBe(200);
      expect(json(response).predictions).toEqual(expected);
    }
  });

  it("never reads JSON from text/plain or a multipart form (a page may send them cross-site without a preflight): 415", async () => {
    const one = [irisRows.rows[60]];
    for (const type of ["text/plain", "text/plain; charset=UTF-8", "multipart/form-data; boundary=x"]) {
      const response = await handler(post(rowsBody(one), { type }));
      expect(response.status).toBe(415);
      expect(json(response).error).toBe(`JSON sent as ${type.split(";")[0]} is not read (a web page can send ${type.split(";")[0]} to any site): send it as application/json`);
    }
  });

  it("GET / summarises the default model and the limits", async () => {
    const response = await handler(get());
    expect(response.status).toBe(200);
    expect(json(response)).toEqual({
      status: "ok",
      model: {
        buildId: null,
        alias: null,
        task: "classification",
        label: "species",
        trees: 15,
        classes: ["setosa", "versicolor", "virginica"],
        features: FEATURES,
        bytes: iris.toBinary().byteLength,
        loadedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        source: "iris.canopy",
      },
      defaultModel: { alias: "default" },
      limits: { maxRows: 200, maxBodyBytes: LAMBDA_PAYLOAD_LIMIT },
    });
  });
});

describe("bad requests: 4xx with one line naming the problem", () => {
  it("empty body", async () => {
    const message = 'empty body: send JSON {"rows": [[...], ...]} or {"records": [{"feature": value, ...}, ...]}, or CSV with a header row';
    for (const body of [undefined, "", "  \n", new Uint8Array(0)]) await expectError(post(body), 400, message);
  });

  it("payload over the limit: 413, checked before anything else is read", async () => {
    const h = createHandler({ models: fixedModel(iris, { bytes: 1, source: "x" }), maxBodyBytes: 1000 });
    const body = rowsBody(Array.from({ length: 100 }, () => irisRows.rows[0]));
    await expectError(post(body), 413, `request body is ${body.length} bytes; the limit is 1000 bytes: send fewer rows per request`, h);
    // Counted in bytes, not characters.
    const accents = `{"rows": [], "x": "${"é".repeat(600)}"}`;
    expect(accents.length).toBeLessThan(1000);
    await expectError(post(accents), 400, /unknown field "x"/);
    await expectError(post(accents), 413, new RegExp(`^request body is ${accents.length + 600} bytes`), h);
    // The default is Lambda's 6 MB.
    const big = `{"rows": [${"0,".repeat(LAMBDA_PAYLOAD_LIMIT / 2)}0]}`;
    await expectError(post(big), 413, `request body is ${big.length} bytes; the limit is ${LAMBDA_PAYLOAD_LIMIT} bytes: send fewer rows per request`);
  });

  it("too many rows per request: 413, whatever the format", async () => {
    const rows = Array.from({ length: 201 }, (_, i) => irisRows.rows[i % 150]);
    const message = "201 rows in one request; the limit is 200: split them over several requests";
    await expectError(post(rowsBody(rows)), 413, message);
    await expectError(post(JSON.stringify({ records: rows.map((r) => Object.fromEntries(FEATURES.map((f, i) => [f, r[i]]))) })), 413, message);
    await expectError(post([FEATURES.join(","), ...rows.map((r) => r.join(","))].join("\n"), { type: "text/csv" }), 413, message);
    expect((await handler(post(rowsBody(rows.slice(0, 200))))).status).toBe(200);
  });

  it("wrong number of features", async () => {
    await expectError(
      post(rowsBody([irisRows.rows[0], [1, 2, 3]])),
      400,
      "rows[1] has 3 values; the model expects 4 features (sepal_length, sepal_width, petal_length, petal_width)",
    );
    await expectError(post(rowsBody([[1, 2, 3, 4, 5]])), 400, /^rows\[0\] has 5 values; the model expects 4 features/);
  });

  it("unknown or missing feature names, in records and CSV headers", async () => {
    const record = { sepal_length: 1, sepal_width: 2, petal_length: 3, petal_width: 4 };
    await expectError(
      post(JSON.stringify({ records: [record, { ...record, petal_colour: 7 }] })),
      400,
      'records[1] has unknown feature "petal_colour"; the model\'s features are sepal_length, sepal_width, petal_length, petal_width',
    );
    const { petal_width: _w, sepal_width: _s, ...partial } = record;
    await expectError(post(JSON.stringify({ records: [partial] })), 400, "records[0] lacks features sepal_width, petal_width (use null for a missing value)");
    // Inherited names are not features a record has.
    await expectError(post(JSON.stringify({ records: [{ ...partial, constructor: 1 }] })), 400, /unknown feature "constructor"/);
    await expectError(post("sepal_length,sepal_width,petal_length,petal_width,colour\n1,2,3,4,red", { type: "text/csv" }), 400, /^CSV header: unknown feature "colour"; the model's features are/);
    await expectError(post("sepal_length,petal_length\n1,2", { type: "text/csv" }), 400, "CSV header lacks features sepal_width, petal_width");
    await expectError(post("sepal_length,sepal_length,sepal_width,petal_length,petal_width\n1,1,2,3,4", { type: "text/csv" }), 400, 'CSV header: duplicate column "sepal_length"');
  });

  it("non-numeric values, naming the row and the column", async () => {
    await expectError(post(rowsBody([[1, 2, 3, 4], [1, "2.5", 3, 4]])), 400, 'rows[1][1] ("sepal_width"): "2.5" is not a number (use a JSON number, or null for a missing value)');
    await expectError(post(rowsBody([[1, 2, true, 4]])), 400, /^rows\[0\]\[2\] \("petal_length"\): true is not a number/);
    await expectError(post(rowsBody([[1, 2, [3], 4]])), 400, /^rows\[0\]\[2\] \("petal_length"\): an array is not a number/);
    await expectError(post('{"rows": [[1, 2, 3, 1e999]]}'), 400, 'rows[0][3] ("petal_width"): Infinity is not a finite number');
    await expectError(post(JSON.stringify({ records: [{ sepal_length: 1, sepal_width: "wide", petal_length: 3, petal_width: 4 }] })), 400, /^records\[0\]\.sepal_width: "wide" is not a number/);
    await expectError(post(`${FEATURES.join(",")}\n1,2,3,4\n1,2,x3,4`, { type: "text/csv" }), 400, 'CSV row 3, column "petal_length": "x3" is not a number');
    await expectError(post(`${FEATURES.join(",")}\n1,2,3,0x10`, { type: "text/csv" }), 400, 'CSV row 2, column "petal_width": "0x10" is not a number');
  });

  it("bodies that are not the expected shape", async () => {
    await expectError(post("{rows: [[1,2,3,4]]}"), 400, /^body is not valid JSON \(.+\): send JSON/);
    await expectError(post("[[1,2,3,4]]", { type: "application/json" }), 400, /^body must be a JSON object/);
    await expectError(post('{"rows": [[1,2,3,4]], "model": "x"}'), 400, 'unknown field "model" in the body; expected "rows" or "records", and optionally "proba"');
    await expectError(post('{"rows": [[1,2,3,4]], "records": []}'), 400, 'send "rows" or "records", not both');
    await expectError(post('{"proba": true}'), 400, /^no "rows" or "records" in the body/);
    await expectError(post('{"rows": {"a": 1}}'), 400, '"rows" must be an array');
    await expectError(post('{"rows": []}'), 400, '"rows" is empty: no rows to predict');
    await expectError(post('{"rows": [1, 2, 3, 4]}'), 400, /^rows\[0\] is not an array: "rows" holds one array of 4 numbers per row \(for one row: \[\[...\]\]\)/);
    await expectError(post('{"records": [[1, 2, 3, 4]]}'), 400, "records[0] is not an object of feature names to values");
    await expectError(post('{"rows": [[1,2,3,4]], "proba": "yes"}'), 400, '"proba" must be true or false; got "yes"');
    await expectError(post(rowsBody([[1, 2, 3, 4]]), { query: { proba: "maybe" } }), 400, '?proba must be 1, true, 0 or false; got "maybe"');
    await expectError(post(FEATURES.join(","), { type: "text/csv" }), 400, "the CSV has a header but no rows to predict");
    await expectError(post(`${FEATURES.join(",")}\n1,2,3`, { type: "text/csv" }), 400, "CSV row 2 has 3 fields; the header has 4");
    await expectError(post(`${FEATURES.join(",")}\n"1,2,3,4`, { type: "text/csv" }), 400, /^malformed CSV: /);
    await expectError(post(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), 400, "body is not valid UTF-8 text");
    await expectError(post(rowsBody([[1, 2, 3, 4]]), { type: "image/png" }), 415, /^unsupported content type "image\/png": send JSON/);
  });

  it("unknown routes (404) and methods (405, with Allow)", async () => {
    await expectError(post(rowsBody([[1, 2, 3, 4]]), { path: "/models" }), 404, "no route POST /models: POST / or /predict to predict, GET / for the model summary");
    await expectError(get({}, "/favicon.ico"), 404, /^no route GET \/favicon\.ico/);
    const put = await handler({ ...post("x"), method: "PUT" });
    expect(put.status).toBe(405);
    expect(put.headers.allow).toBe("GET, POST");
    expect(json(put).error).toBe("PUT / is not allowed; use GET, POST");
    const getPredict = await handler(get({}, "/predict"));
    expect([getPredict.status, getPredict.headers.allow]).toEqual([405, "POST"]);
  });

  it("model selection: malformed ids and names (400), models this server does not have (404)", async () => {
    const body = rowsBody([[1, 2, 3, 4]]);
    await expectError(post(body, { query: { model: "latest" } }), 400, 'invalid build id "latest" in ?model (expected b- and 16 hex digits)');
    await expectError(post(body, { query: { alias: "../etc" } }), 400, /^invalid alias "\.\.\/etc": .* \(in \?alias\)$/);
    await expectError(post(body, { query: { alias: "a", model: "b-0000000000000000" } }), 400, "give ?model=<build-id> or ?alias=<name>, not both");
    await expectError(post(body, { query: { model: "b-0000000000000000" } }), 404, "model b-0000000000000000 is not served here: this server serves one model (iris.canopy)");
    await expectError(get({ alias: "staging" }), 404, 'alias "staging" is not served here: this server serves one model (iris.canopy)');
  });
});

describe("models from a registry", () => {
  it("by alias (default production) or build id; unknown ones are 404; the build id is in a header", async () => {
    const { registry, blobs, addBuild } = await memoryRegistry();
    const a = await addBuild(iris);
    const b = await addBuild(train("iris.csv", 5, 9));
    // TTL 0: every request resolves the alias (the caching itself is tested in models.test.ts).
    const h = createHandler({ models: registryModels(storeFromPorts(registry, blobs), { aliasTtlMs: 0 }) });
    const body = rowsBody(irisRows.rows);
    await expectError(post(body), 404, 'alias "production" is not set (canopy promote <build-id> --alias production)', h);
    await expectError(get(), 404, /^alias "production" is not set/, h);
    await registry.promote(a, "production");
    await registry.promote(b, "staging");
    const byDefault = await h(post(body));
    expect(byDefault.headers["x-canopy-build"]).toBe(a);
    expect(json(byDefault).model).toMatchObject({ buildId: a, alias: "production", trees: 15 });
    expect(json(byDefault).predictions).toEqual(iris.predict(irisRows.rows));
    expect(json(await h(post(body, { query: { alias: "staging" } }))).model).toMatchObject({ buildId: b, alias: "staging", trees: 5 });
    expect(json(await h(post(body, { query: { model: a } }))).model).toMatchObject({ buildId: a, alias: null });
    const missing = "b-00000000000000ff";
    await expectError(post(body, { query: { model: missing } }), 404, `model ${missing} not found (no completed build with that id)`, h);
    const summary = json(await h(get({ alias: "staging" })));
    expect(summary.model).toMatchObject({ buildId: b, alias: "staging", source: keys.model(b) });
    expect(summary.defaultModel).toEqual({ alias: "production" });
  });

  it("a model that cannot be decoded is a 500, reported through onError", async () => {
    const { registry, blobs, addBuild } = await memoryRegistry();
    const id = await addBuild(iris);
    await blobs.put(keys.model(id), new TextEncoder().encode("not a model"));
    await registry.promote(id, "production");
    const errors: unknown[] = [];
    const h = createHandler({ models: registryModels(storeFromPorts(registry, blobs)), onError: (err) => errors.push(err) });
    await expectError(post(rowsBody([[1, 2, 3, 4]])), 500, new RegExp(`^model ${id} cannot be loaded: FormatError: `), h);
    expect(errors).toHaveLength(1);
  });

  it("a registry that fails with nothing cached is a 500 naming the error", async () => {
    const h = createHandler({
      models: registryModels({ resolveAlias: async () => Promise.reject(new Error("ECONNRESET talking to DynamoDB")), modelBytes: async () => undefined }),
    });
    await expectError(post(rowsBody([[1, 2, 3, 4]])), 500, "internal error: ECONNRESET talking to DynamoDB", h);
  });

  it("the served CSV fixture itself: the label column is accepted and ignored", async () => {
    const body = json(await handler(post(fixture("iris.csv"), { type: "text/csv" })));
    expect(body.predictions).toEqual(iris.predict(irisRows.rows));
  });
});
