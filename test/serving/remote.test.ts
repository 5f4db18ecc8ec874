// canopy predict --remote: URL resolution, chunking under the limits, and SigV4 signing (service "lambda").
import { createHash, createHmac } from "node:crypto";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignatureV4 } from "@smithy/signature-v4";
import type { Forest } from "@canopy/forest";
import { createHandler, fixedModel, listen, type Listening, type ServingRequest } from "@canopy/serving";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunkRows, remotePredict, remoteUrl, signingRegion } from "../../packages/cli/src/commands/remote.ts";
import { canopy, fixture, fixturePath, noCredentials, train } from "./support.ts";

const IRIS = fixturePath("iris.csv").pathname;
let iris: Forest;
let server: Listening;
let seen: ServingRequest[] = [];
let dir: string;

beforeAll(async () => {
  iris = train("iris.csv", 8, 3);
  const handler = createHandler({ models: fixedModel(iris, { buildId: "b-00000000000000aa", bytes: 1, source: "iris" }), maxRows: 25 });
  server = await listen(
    async (req) => {
      seen.push(req);
      return handler(req);
    },
    { port: 0 },
  );
  dir = await mkdtemp(join(tmpdir(), "canopy-remote-"));
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

class Sha256 {
  private h;
  constructor(secret?: string | Uint8Array) {
    this.h = secret === undefined ? createHash("sha256") : createHmac("sha256", secret);
  }
  update(d: string | Uint8Array) {
    this.h.update(d);
  }
  async digest() {
    return new Uint8Array(this.h.digest());
  }
  reset() {}
}

/** Re-signs what the server received with the same key and date: equal only if the client signed exactly this request. */
async function expectValidSignature(req: ServingRequest, credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }) {
  const auth = req.headers.authorization!;
  const signedHeaders = /SignedHeaders=([^,]+)/.exec(auth)![1].split(";");
  const headers = Object.fromEntries(signedHeaders.map((h) => [h, req.headers[h]!]));
  const amzDate = req.headers["x-amz-date"]!;
  const date = new Date(`${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`);
  const signer = new SignatureV4({ service: "lambda", region: "eu-west-1", credentials, sha256: Sha256 as never });
  const url = new URL(server.url);
  const body = req.body === undefined ? undefined : new TextDecoder().decode(req.body as Uint8Array);
  const resigned = await signer.sign(
    { method: req.method, protocol: "http:", hostname: url.hostname, port: Number(url.port), path: req.path, query: req.query as Record<string, string>, headers, ...(body ? { body } : {}) },
    { signingDate: date },
  );
  expect(resigned.headers.authorization).toBe(auth);
}

describe("remote URL and region", () => {
  it("takes a URL as is; an alias name goes to CANOPY_PREDICT_URL, else the app's predictUrl output, with ?alias=", async () => {
    expect(remoteUrl("https://x.lambda-url.eu-west-1.on.aws/?alias=staging", {}, dir).href).toBe("https://x.lambda-url.eu-west-1.on.aws/?alias=staging");
    expect(remoteUrl("canary", { CANOPY_PREDICT_URL: "https://p.example/" }, dir).href).toBe("https://p.example/?alias=canary");
    expect(() => remoteUrl("canary", {}, dir)).toThrow("--remote canary: no predict URL for the alias; set CANOPY_PREDICT_URL or deploy the app (sst deploy writes predictUrl to .sst/outputs.json)");
    await mkdir(join(dir, ".sst"), { recursive: true });
    await writeFile(join(dir, ".sst", "outputs.json"), JSON.stringify({ predictUrl: "https://abc.lambda-url.us-west-2.on.aws/" }));
    expect(remoteUrl("production", {}, dir).href).toBe("https://abc.lambda-url.us-west-2.on.aws/?alias=production");
    expect(() => remoteUrl("not an alias", {}, dir)).toThrow('--remote "not an alias": expected an http(s) URL or an alias name');
  });

  it("signs for the function URL's own region, else the environment's", () => {
    expect(signingRegion(new URL("https://abc.lambda-url.ap-southeast-2.on.aws/"), { AWS_REGION: "us-east-1" })).toBe("ap-southeast-2");
    expect(signingRegion(new URL("http://127.0.0.1:8080/"), { AWS_REGION: "eu-west-1" })).toBe("eu-west-1");
    expect(signingRegion(new URL("http://127.0.0.1:8080/"), {})).toBe("us-east-1");
  });
});

describe("chunking", () => {
  const matrix = (nRows: number, nCols: number) => ({ data: Float64Array.from({ length: nRows * nCols }, (_, i) => (i % 7 === 0 ? NaN : i / 3)), nRows, nCols });

  it("cuts consecutive rows under the row limit and the byte budget, covering every row once", () => {
    const X = matrix(1000, 10);
    for (const [maxRows, budget] of [
      [1000, 5 * 1024 * 1024],
      [64, 5 * 1024 * 1024],
      [1000, 4000],
    ]) {
      const chunks = chunkRows(X, maxRows, budget);
      expect(chunks[0].start).toBe(0);
      expect(chunks.at(-1)!.end).toBe(1000);
      for (let i = 0; i < chunks.length; i++) {
        const c = chunks[i];
        if (i > 0) expect(c.start).toBe(chunks[i - 1].end);
        expect(c.end - c.start).toBeLessThanOrEqual(maxRows);
        expect(Buffer.byteLength(c.body)).toBeLessThanOrEqual(budget);
        const rows = (JSON.parse(c.body) as { rows: (number | null)[][] }).rows;
        expect(rows).toHaveLength(c.end - c.start);
        // Every value round-trips; NaN travels as null.
        for (let r = 0; r < rows.length; r++)
          for (let f = 0; f < 10; f++) {
            const v = X.data[(c.start + r) * 10 + f];
            expect(rows[r][f]).toBe(Number.isNaN(v) ? null : v);
          }
      }
    }
    expect(chunkRows(X, 64, 5 * 1024 * 1024)).toHaveLength(16);
  });

  it("refuses a row that cannot fit any request", () => {
    expect(() => chunkRows(matrix(2, 1000), 10, 2000)).toThrow(/^row 2 alone is larger than a request may be \(2000 bytes\)$/);
  });
});

describe("requests", () => {
  it("are signed with SigV4 for lambda when there are credentials, and pinned to the model the first request found", async () => {
    seen = [];
    const credentials = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", sessionToken: "session-token" };
    let out = "";
    const sink = { write: (s: string) => ((out += s), true) } as unknown as NodeJS.WritableStream;
    await remotePredict(IRIS, { remote: server.url }, { out: sink, stderr: { write: () => true } as unknown as NodeJS.WritableStream, credentials: async () => credentials, env: { AWS_REGION: "eu-west-1" } });
    expect(seen.map((r) => r.method)).toEqual(["GET", ...Array(6).fill("POST")]); // 150 rows at the server's 25 per request
    for (const req of seen) {
      expect(req.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/lambda\/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=[0-9a-f]{64}$/);
      expect(req.headers["x-amz-security-token"]).toBe("session-token");
      await expectValidSignature(req, credentials);
    }
    expect(seen.slice(1).every((r) => r.query.model === "b-00000000000000aa")).toBe(true);
    const lines = out.trimEnd().split("\n");
    expect(lines[0]).toBe("species");
    const rows = fixture("iris.csv").trim().split("\n").slice(1).map((l) => l.split(",").slice(0, 4).map(Number));
    expect(lines.slice(1)).toEqual(iris.predict(rows));
  });

  it("the CLI signs with the environment's credentials and sends unsigned requests without any", async () => {
    seen = [];
    const env = { ...noCredentials(), AWS_ACCESS_KEY_ID: "AKIDFROMENV", AWS_SECRET_ACCESS_KEY: "secret", AWS_REGION: "eu-west-1" };
    const signed = await canopy(["predict", "--remote", server.url, IRIS], dir, env);
    expect(signed.code, signed.stderr).toBe(0);
    expect(seen.length).toBeGreaterThan(1);
    for (const req of seen) await expectValidSignature(req, { accessKeyId: "AKIDFROMENV", secretAccessKey: "secret" });

    seen = [];
    const unsigned = await canopy(["predict", "--remote", server.url, IRIS], dir);
    expect(unsigned.code, unsigned.stderr).toBe(0);
    expect(unsigned.stdout).toBe(signed.stdout);
    expect(seen.every((r) => r.headers.authorization === undefined)).toBe(true);
  });

  it("a refusal is one line with the endpoint's reason; a dead endpoint fails after retries (exit 1)", async () => {
    const forbidden = await listen(async () => ({ status: 403, headers: { "content-type": "application/json" }, body: '{"Message":"Forbidden"}' }), { port: 0 });
    try {
      const run = await canopy(["predict", "--remote", forbidden.url, IRIS], dir);
      expect(run.code).toBe(1);
      expect(run.stderr.trim()).toBe(`canopy: error: remote ${forbidden.url}/: 403 Forbidden (the request was not signed: no AWS credentials found)`);
    } finally {
      await forbidden.close();
    }
    const closed = await listen(async () => ({ status: 200, headers: {}, body: "{}" }), { port: 0 });
    await closed.close();
    const dead = await canopy(["predict", "--remote", closed.url, IRIS], dir);
    expect(dead.code).toBe(1);
    expect(dead.stderr.trim()).toBe(`canopy: error: remote ${closed.url}/: ECONNREFUSED`);
  });
});
