import { request as httpRequest } from "node:http";
import type { Forest } from "@canopy/forest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHandler, fixedModel, listen, type Listening, type ServingRequest } from "../src/index.ts";
import { featureRows, train } from "./support.ts";

let iris: Forest;
let server: Listening;
const seen: ServingRequest[] = [];
const LIMIT = 4096;

beforeAll(async () => {
  iris = train("iris.csv", 10, 4);
  const handler = createHandler({ models: fixedModel(iris, { buildId: "b-00000000000000aa", bytes: 1, source: "iris" }), maxBodyBytes: LIMIT });
  server = await listen(
    async (req) => {
      seen.push(req);
      return handler(req);
    },
    { port: 0, maxBodyBytes: LIMIT },
  );
});
afterAll(() => server.close());

/** A raw request, so the body can be streamed without a Content-Length. */
function raw(path: string, body: string[], headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${server.url}${path}`, { method: "POST", headers }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode!, body: text, headers: res.headers }));
    });
    req.on("error", reject);
    for (const chunk of body) req.write(chunk);
    req.end();
  });
}

describe("the handler on node:http", () => {
  it("answers predictions over loopback, with the request converted faithfully", async () => {
    const { rows } = featureRows("iris.csv");
    const response = await fetch(`${server.url}/predict?proba=1&alias=x&alias=y`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ rows: rows.slice(0, 3) }),
    });
    // ?alias=x (the first value) is not this server's model.
    expect(response.status).toBe(404);
    expect(seen.at(-1)).toMatchObject({ method: "POST", path: "/predict", query: { proba: "1", alias: "x" } });
    expect(seen.at(-1)!.headers["content-type"]).toBe("application/json");

    // JSON says so: fetch would send a bare string as text/plain, which is never read as JSON (issue 9.13).
    const ok = await fetch(`${server.url}/?model=b-00000000000000aa`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ rows: rows.slice(0, 3) }) });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("x-canopy-build")).toBe("b-00000000000000aa");
    expect(((await ok.json()) as { predictions: string[] }).predictions).toEqual(iris.predict(rows.slice(0, 3)));
    expect(((await (await fetch(server.url)).json()) as { model: { trees: number } }).model.trees).toBe(10);
  });

  it("refuses a declared Content-Length over the limit before reading the body", async () => {
    const body = "x".repeat(LIMIT + 1);
    const response = await raw("/", [body], { "content-length": String(body.length) });
    expect(response.status).toBe(413);
    expect(JSON.parse(response.body)).toEqual({ error: `request body is ${LIMIT + 1} bytes; the limit is ${LIMIT} bytes: send fewer rows per request` });
    expect(response.headers.connection).toBe("close");
  });

  it("refuses a chunked body once it passes the limit", async () => {
    const count = seen.length;
    const response = await raw("/", ['{"rows": [', "[1,2,3,4],".repeat(500), "[1,2,3,4]]}"]);
    expect(response.status).toBe(413);
    expect(JSON.parse(response.body).error).toBe(`request body is over ${LIMIT} bytes; the limit is ${LIMIT} bytes: send fewer rows per request`);
    expect(seen.length).toBe(count); // the handler never saw it
  });

  it("accepts a body just under the limit sent in chunks", async () => {
    const rows = Array.from({ length: 100 }, () => "[5.1,3.5,1.4,0.2]").join(",");
    const body = `{"rows": [${rows}]}`;
    expect(body.length).toBeLessThanOrEqual(LIMIT);
    const response = await raw("/", [body.slice(0, 1000), body.slice(1000)], { "content-type": "application/json" });
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body).predictions).toHaveLength(100);
  });
});

describe("host names (DNS rebinding)", () => {
  it("reads a Host header's name without its port, and knows loopback addresses", async () => {
    const { hostName, isLoopback } = await import("../src/index.ts");
    expect(["localhost:8080", "LOCALHOST", "[::1]:80", "127.0.0.1:1", "evil.example:8080"].map(hostName)).toEqual(["localhost", "localhost", "[::1]", "127.0.0.1", "evil.example"]);
    expect(["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "0.0.0.0", "192.168.1.5", "::"].map(isLoopback)).toEqual([true, true, true, true, true, false, false, false]);
  });

  it("a loopback server refuses other names before reading the body; --allow-host names and a wildcard bind take any", async () => {
    const handler = createHandler({ models: fixedModel(iris, { bytes: 1, source: "iris" }) });
    const ask = (url: string, host: string) =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest(`${url}/`, { method: "GET", headers: { host } }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode!));
        });
        req.on("error", reject);
        req.end();
      });
    const loopback = await listen(handler, { port: 0 });
    const extra = await listen(handler, { port: 0, extraHosts: ["canopy.internal"] });
    const wildcard = await listen(handler, { port: 0, host: "0.0.0.0" });
    try {
      expect(await ask(loopback.url, "localhost:1")).toBe(200);
      expect(await ask(loopback.url, "evil.example")).toBe(403);
      expect(await ask(loopback.url, "canopy.internal")).toBe(403);
      expect(await ask(extra.url, "canopy.internal:9")).toBe(200);
      expect(await ask(wildcard.url.replace("0.0.0.0", "127.0.0.1"), "any.example")).toBe(200);
    } finally {
      await Promise.all([loopback.close(), extra.close(), wildcard.close()]);
    }
  });
});
