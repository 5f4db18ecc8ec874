// The cold-start probe: bundled with esbuild like SST bundles the predict function (this module's graph is
// the function's: AWS SDK clients, Powertools, sst, serving, core, engine), then imported by a fresh node
// process (see serving.ts). Only the store is swapped for the model file, so no network is involved.
import { readFile } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { createPredictFunction } from "../packages/functions/src/predict.ts";

const BUILD = "b-0000000000000001";

function event(method: "GET" | "POST", body?: string) {
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: "/",
    rawQueryString: "",
    headers: { "content-type": "application/json" },
    requestContext: { http: { method, path: "/", protocol: "HTTP/1.1", sourceIp: "127.0.0.1", userAgent: "bench" }, requestId: "r", routeKey: "$default", stage: "$default", timeEpoch: 0 },
    isBase64Encoded: false,
    ...(body !== undefined ? { body } : {}),
  };
}

const context = {
  functionName: "canopy-predict",
  functionVersion: "$LATEST",
  invokedFunctionArn: "arn:aws:lambda:us-east-1:000000000000:function:canopy-predict",
  memoryLimitInMB: "1769",
  awsRequestId: "bench",
  logGroupName: "/aws/lambda/canopy-predict",
  logStreamName: "bench",
  callbackWaitsForEmptyEventLoop: false,
  getRemainingTimeInMillis: () => 30_000,
  done() {},
  fail() {},
  succeed() {},
};

/** Times the first invocation (alias lookup, model read and decode, summary), then a first and a warm prediction. */
export async function coldStart(modelPath: string, row: number[]) {
  const fn = createPredictFunction({
    store: async () => ({ resolveAlias: async () => BUILD, modelBytes: async () => new Uint8Array(await readFile(modelPath)) }),
    env: {},
  });
  const call = fn as unknown as (e: unknown, c: unknown) => Promise<{ statusCode: number; body: string }>;
  const body = JSON.stringify({ rows: [row] });
  const t0 = performance.now();
  const summary = await call(event("GET"), context);
  const t1 = performance.now();
  const first = await call(event("POST", body), context);
  const t2 = performance.now();
  const warm = await call(event("POST", body), context);
  const t3 = performance.now();
  for (const r of [summary, first, warm]) if (r.statusCode !== 200) throw new Error(`cold-start probe: HTTP ${r.statusCode}: ${r.body}`);
  return { loadMs: t1 - t0, firstPredictMs: t2 - t1, warmPredictMs: t3 - t2, trees: (JSON.parse(summary.body) as { model: { trees: number } }).model.trees };
}
