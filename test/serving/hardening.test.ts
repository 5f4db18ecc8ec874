// Issue 9 items 3 and 13 through `canopy serve` (a real HTTP server): error answers stay short whatever the
// request echoes; only loopback host names are answered on 127.0.0.1 (DNS rebinding); JSON is not read from
// text/plain bodies (cross-site simple requests); a slow body times out.
import { request } from "node:http";
import { connect } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canopy, fixturePath, serveInBackground } from "./support.ts";

const IRIS = fixturePath("iris.csv").pathname;
const FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"];
const ROW = "5.1,3.5,1.4,0.2";
let dir: string;
let server: Awaited<ReturnType<typeof serveInBackground>>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "canopy-serving-hardening-"));
  const run = await canopy(["train", IRIS, "--trees", "4", "--grove-size", "2", "--json"], dir);
  expect(run.code, run.stderr).toBe(0);
  const buildId = (JSON.parse(run.stdout) as { buildId: string }).buildId;
  server = await serveInBackground(["--model", buildId, "--request-timeout", "1"], dir);
});
afterAll(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** A POST with exactly these headers (fetch will not set Host), and the answer's status and body. */
function post(path: string, headers: Record<string, string>, body: string | Buffer): Promise<{ status: number; body: string }> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method: "POST", headers: { "content-length": String(Buffer.byteLength(body)), ...headers } }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode!, body: text }));
    });
    // The server may answer and close before it has read everything we send.
    req.on("error", (err) => (/EPIPE|ECONNRESET/.test(String(err)) ? undefined : reject(err)));
    req.end(body);
  });
}

const local = () => ({ host: new URL(server.url).host });
const errorOf = (body: string) => (JSON.parse(body) as { error: string }).error;

describe("issue 9.3: an error answer never grows with the request", () => {
  it.each([
    ["a CSV header of 3 MB of control characters", { "content-type": "text/csv" }, `${"\u0001".repeat(3 << 20)},sepal_width\n1,2\n`, /^CSV header: unknown feature "(\\x01){60}…"; the model's features are sepal_length, /],
    ["a 5 MB string value", { "content-type": "application/json" }, JSON.stringify({ rows: [["y".repeat(5 << 20), 1, 2, 3]] }), /^rows\[0\]\[0\] \("sepal_length"\): "y{60}…" is not a number/],
    ["a 5 MB field name", { "content-type": "application/json" }, JSON.stringify({ ["x".repeat(5 << 20)]: 1 }), /^unknown field "x{60}…" in the body; expected "rows" or "records"/],
  ])("%s: 400 in under 1 KB", async (_name, headers, body, message) => {
    const answer = await post("/predict", { ...local(), ...headers }, body);
    expect(answer.status).toBe(400);
    expect(answer.body.length).toBeLessThan(1_024);
    expect(errorOf(answer.body)).toMatch(message);
  });
});

describe("issue 9.13: serving hardening", () => {
  const csv = `${FEATURES.join(",")}\n${ROW}\n`;

  it("answers only loopback host names on 127.0.0.1: a rebound name gets 403, not predictions", async () => {
    const port = new URL(server.url).port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]) {
      const ok = await post("/predict", { host, "content-type": "text/csv" }, csv);
      expect([host, ok.status]).toEqual([host, 200]);
      expect(JSON.parse(ok.body)).toMatchObject({ predictions: ["setosa"] });
    }
    const rebound = await post("/predict", { host: `attacker.example:${port}`, "content-type": "text/csv" }, csv);
    expect(rebound.status).toBe(403);
    expect(errorOf(rebound.body)).toBe('host "attacker.example" is not served here (only localhost, 127.0.0.1, [::1]; canopy serve --allow-host adds names)');
    expect(rebound.body).not.toContain("predictions");
  });

  it("JSON sent as text/plain is refused (415); CSV as text/plain and JSON as application/json are read", async () => {
    const json = JSON.stringify({ rows: [ROW.split(",").map(Number)] });
    const plain = await post("/predict", { ...local(), "content-type": "text/plain;charset=UTF-8" }, json);
    expect(plain.status).toBe(415);
    expect(errorOf(plain.body)).toBe("JSON sent as text/plain is not read (a web page can send text/plain to any site): send it as application/json");
    expect((await post("/predict", { ...local(), "content-type": "text/plain" }, csv)).status).toBe(200);
    expect((await post("/predict", { ...local(), "content-type": "application/json" }, json)).status).toBe(200);
  });

  it("a body that trickles in is answered 408 after --request-timeout", async () => {
    const url = new URL(server.url);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write(`POST /predict HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: text/csv\r\nContent-Length: 1000\r\n\r\nsepal_len`);
      });
      let text = "";
      socket.setEncoding("utf8").on("data", (d: string) => (text += d));
      socket.on("close", () => resolve(text));
      socket.on("error", reject);
    });
    expect(answer.split("\r\n")[0]).toBe("HTTP/1.1 408 Request Timeout");
  });
});
