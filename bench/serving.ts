// Section: serving. `canopy serve` (the predict function's handler on node:http) under load on loopback, server
// pinned to one core: single-row and 100-row requests at a fixed 500 req/s offered (p50/p99 latency) and at
// the most it sustains (closed loop); then cold start (module init + model load) of the predict function as SST
// bundles it, in fresh processes, for a 100-tree digits model and a 100-tree Fashion-MNIST model.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { build } from "esbuild";
import { buildPack, fitForest } from "@canopy/forest";
import { fingerprint, loadDigits, loadFashionMnist, type BenchCase } from "./data.ts";
import { toDataset } from "./engine.ts";
import { closedLoop, openLoop, type LoadResult } from "./load.ts";
import { check, type Section, type SectionContext } from "./section.ts";
import { fmtBytes, fmtInt, type Table } from "./table.ts";
// The banner SST puts on ESM function bundles (CommonJS dependencies still get require), modelled once there.
import { BANNER } from "../test/infra/run-app.ts";

const TREES = 100;
const SEED = 0;
const RATE = 500;
/** A rate one core sustains for 100-row requests (20,000 rows/s). */
const SUSTAINED = 200;
const BIN = "packages/cli/bin/canopy.mjs";

/** Hash of the engine's sources, so a cached model is retrained when the engine changes. */
function engineHash(): string {
  const h = createHash("sha256");
  const dir = "packages/forest/src";
  for (const f of readdirSync(dir).sort()) if (f.endsWith(".ts")) h.update(f).update(readFileSync(join(dir, f)));
  return h.digest("hex").slice(0, 12);
}

/** A 100-tree model of the case's train split, trained once and cached by data, parameters and engine source. */
function modelFile(ctx: SectionContext, c: BenchCase, dir: string): { path: string; bytes: number; trainSeconds?: number } {
  const key = createHash("sha256").update(`${fingerprint(c)} ${TREES} ${SEED} ${engineHash()}`).digest("hex").slice(0, 16);
  const path = join(dir, `${c.id}-${TREES}-${key}.canopy`);
  if (existsSync(path)) return { path, bytes: statSync(path).size };
  ctx.log(`serving: training a ${TREES}-tree ${c.label} model`);
  const t0 = performance.now();
  const forest = fitForest(buildPack(toDataset(c)), { n_estimators: TREES, random_state: SEED, max_features: "sqrt" });
  const bytes = forest.toBinary();
  writeFileSync(path, bytes);
  return { path, bytes: bytes.byteLength, trainSeconds: (performance.now() - t0) / 1000 };
}

function rowsOf(c: BenchCase, start: number, n: number): number[][] {
  return Array.from({ length: n }, (_, i) => Array.from(c.test.X.subarray((start + i) * c.nFeatures, (start + i + 1) * c.nFeatures)));
}

const hasTaskset = () => cpus().length >= 2 && spawnSync("taskset", ["-V"]).status === 0;

/** `canopy serve --model <file> --port 0`, pinned to the last core when possible; resolves with its URL. */
async function startServer(model: string, pin: boolean): Promise<{ url: string; child: ChildProcess }> {
  const core = String(cpus().length - 1);
  const args = [process.execPath, BIN, "serve", "--model", model, "--port", "0"];
  const child = pin ? spawn("taskset", ["-c", core, ...args], { stdio: ["ignore", "ignore", "pipe"] }) : spawn(args[0], args.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  const url = await new Promise<string>((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`canopy serve did not start within 60 s: ${stderr.trim()}`)), 60_000);
    child.stderr!.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
      const m = /listening on (http:\/\/\S+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolvePromise(m[1]);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`canopy serve exited ${code}: ${stderr.trim()}`));
    });
  });
  return { url, child };
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGINT");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

/** Pins this process (all its threads) to `cores` and returns a function restoring the previous mask. */
function pinSelf(cores: string): () => void {
  const before = /:\s*([0-9a-f,]+)\s*$/i.exec(spawnSync("taskset", ["-p", String(process.pid)], { encoding: "utf8" }).stdout ?? "")?.[1];
  spawnSync("taskset", ["-a", "-cp", cores, String(process.pid)]);
  return () => {
    if (before) spawnSync("taskset", ["-a", "-p", before, String(process.pid)]);
  };
}

interface ColdRun {
  bootMs: number;
  initMs: number;
  loadMs: number;
  firstPredictMs: number;
  warmPredictMs: number;
}

const median = (xs: number[]) => {
  const s = xs.slice().sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** The predict function bundled as SST bundles it (esbuild, minified ESM), plus a launcher that times it in a fresh process. */
async function coldStartBundle(dir: string): Promise<{ bundle: string; launcher: string; bytes: number }> {
  const bundle = resolve(dir, "predict-cold.mjs");
  await build({
    entryPoints: ["bench/serving-cold.ts"],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "esnext",
    mainFields: ["module", "main"],
    keepNames: true,
    minify: true,
    banner: { js: BANNER },
    outfile: bundle,
    logLevel: "silent",
  });
  const launcher = resolve(dir, "cold-launcher.mjs");
  writeFileSync(
    launcher,
    [
      "// Written by bench/serving.ts: node boot, module init and the first invocations of the predict bundle.",
      "const bootMs = performance.now();",
      "const t0 = performance.now();",
      "const mod = await import(process.argv[2]);",
      "const initMs = performance.now() - t0;",
      "const r = await mod.coldStart(process.argv[3], JSON.parse(process.argv[4]));",
      "process.stdout.write(JSON.stringify({ bootMs, initMs, ...r }));",
    ].join("\n"),
  );
  return { bundle, launcher, bytes: statSync(bundle).size };
}

function coldRun(launcher: string, bundle: string, model: string, row: number[], pin: boolean): ColdRun {
  const args = [process.execPath, launcher, bundle, model, JSON.stringify(row)];
  const env = { PATH: process.env.PATH, AWS_REGION: "us-east-1", POWERTOOLS_LOG_LEVEL: "WARN", AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" };
  const r = pin ? spawnSync("taskset", ["-c", String(cpus().length - 1), ...args], { encoding: "utf8", env }) : spawnSync(args[0], args.slice(1), { encoding: "utf8", env });
  if (r.status !== 0) throw new Error(`cold-start probe failed (${r.status}): ${(r.stderr || r.stdout).trim().split("\n").slice(-3).join(" | ")}`);
  return JSON.parse(r.stdout) as ColdRun;
}

const ms = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? "-" : x < 10 ? x.toFixed(2) : x.toFixed(1));

function loadRow(label: string, offered: string, r: LoadResult): string[] {
  return [label, offered, fmtInt(r.requestsPerSecond), ms(r.latencyMs.p50), ms(r.latencyMs.p90), ms(r.latencyMs.p99), ms(r.latencyMs.max), `${r.errors}/${r.sent}`];
}

export const servingSection: Section = async (ctx) => {
  const dir = join(ctx.cacheDir, "serving");
  mkdirSync(dir, { recursive: true });
  const pin = hasTaskset();
  const seconds = ctx.quick ? 3 : 10;

  const digits = loadDigits();
  const digitsModel = modelFile(ctx, digits, dir);
  const fm = loadFashionMnist(ctx.quick ? 5000 : 60000);
  const fmModel = modelFile(ctx, fm, dir);

  // Different rows per request, so no answer is ever the same bytes twice in a row.
  const single = rowsOf(digits, 0, 64).map((row) => JSON.stringify({ rows: [row] }));
  const hundred = [0, 100, 200, 300].map((start) => JSON.stringify({ rows: rowsOf(digits, start, 100) }));

  ctx.log(`serving: canopy serve ${digitsModel.path}${pin ? ` (pinned to core ${cpus().length - 1}, load generator on the others)` : ""}`);
  const { url, child } = await startServer(digitsModel.path, pin);
  const restore = pin ? pinSelf(`0-${cpus().length - 2}`) : () => {};
  const load: Record<string, LoadResult> = {};
  try {
    // Warm-up: JIT, sockets, the model's first pass.
    await closedLoop({ url, bodies: single, connections: 2, durationMs: 1000, maxRequests: 2000 });
    await closedLoop({ url, bodies: hundred, connections: 2, durationMs: 1000, maxRequests: 500 });
    for (const [name, bodies] of [
      ["single", single],
      ["hundred", hundred],
    ] as const) {
      ctx.log(`serving: ${name === "single" ? "1-row" : "100-row"} requests, ${RATE} req/s offered for ${seconds} s`);
      load[`${name}-open`] = await openLoop({ url, bodies, rate: RATE, durationMs: seconds * 1000 });
      if (name === "hundred") {
        // 500 × 100 rows/s is more than one core predicts with 100 trees: also show a rate it sustains.
        ctx.log(`serving: 100-row requests, ${SUSTAINED} req/s offered for ${seconds} s`);
        load["hundred-sustained"] = await openLoop({ url, bodies, rate: SUSTAINED, durationMs: seconds * 1000 });
      }
      ctx.log(`serving: ${name === "single" ? "1-row" : "100-row"} requests, 8 connections back to back for ${seconds / 2} s`);
      load[`${name}-closed`] = await closedLoop({ url, bodies, connections: 8, durationMs: (seconds / 2) * 1000, maxRequests: 200_000 });
    }
  } finally {
    restore();
    await stopServer(child);
  }

  ctx.log("serving: cold starts (esbuild bundle of the predict function, fresh processes)");
  const { bundle, launcher, bytes: bundleBytes } = await coldStartBundle(dir);
  const runs = ctx.quick ? 3 : 7;
  const cold: Record<string, ColdRun[]> = {};
  for (const [id, c, model] of [
    ["digits", digits, digitsModel],
    ["fm", fm, fmModel],
  ] as const) {
    const row = rowsOf(c, 0, 1)[0];
    cold[id] = Array.from({ length: runs }, () => coldRun(launcher, bundle, model.path, row, pin));
  }
  const coldMedian = (id: string, key: keyof ColdRun) => median(cold[id].map((r) => r[key]));
  const initLoad = (id: string) => median(cold[id].map((r) => r.initMs + r.loadMs));

  const where = pin ? "server pinned to one core" : "server unpinned (no taskset)";
  const loadTable: Table = {
    title: `canopy serve on loopback, ${TREES}-tree digits model (${fmtBytes(digitsModel.bytes)}), ${where}`,
    headers: ["request", "offered", "achieved req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors"],
    rows: [
      loadRow("1 row", `${RATE} req/s`, load["single-open"]),
      loadRow("1 row", "8 conns, closed", load["single-closed"]),
      loadRow("100 rows", `${RATE} req/s`, load["hundred-open"]),
      loadRow("100 rows", `${SUSTAINED} req/s`, load["hundred-sustained"]),
      loadRow("100 rows", "8 conns, closed", load["hundred-closed"]),
    ],
    notes: [
      `Open loop: ${RATE} req/s for ${seconds} s over keep-alive sockets; latency counted from each request's scheduled send time (a server that falls behind pays for the queue). Generator lag at most ${ms(load["single-open"].maxSendLagMs)} / ${ms(load["hundred-open"].maxSendLagMs)} ms.`,
      "Closed loop: 8 connections, each sending its next request when the last is answered: the most the server sustains. JSON bodies; 100-row bodies are ~25 KB.",
      "Load generator: bench/load.ts (node:http), in this process, on the other core(s).",
    ],
  };
  const coldTable: Table = {
    title: `Cold start of the predict function (esbuild bundle as SST builds it, ${fmtBytes(bundleBytes)}; median of ${runs} fresh processes)`,
    headers: ["model", "model size", "node boot ms", "module init ms", "model load ms", "init + load ms", "first predict ms", "warm predict ms"],
    rows: (
      [
        ["digits", `${TREES} trees digits`, digitsModel],
        ["fm", `${TREES} trees ${fm.label}`, fmModel],
      ] as const
    ).map(([id, label, model]) => [
      label,
      fmtBytes(model.bytes),
      ms(coldMedian(id, "bootMs")),
      ms(coldMedian(id, "initMs")),
      ms(coldMedian(id, "loadMs")),
      ms(initLoad(id)),
      ms(coldMedian(id, "firstPredictMs")),
      ms(coldMedian(id, "warmPredictMs")),
    ]),
    notes: [
      "Module init: importing the bundle (AWS SDK clients, Powertools, sst, serving, core, engine). Model load: the first invocation (GET /): alias lookup, reading the model file and decoding it (on Lambda, an S3 GET replaces the file read).",
      `First / warm predict: one single-row POST right after, then another. ${pin ? "Each process pinned to one core." : ""}`,
    ],
  };

  const p99 = load["single-open"].latencyMs.p99;
  const clean = load["single-open"].errors === 0;
  const digitsCold = initLoad("digits");
  const quick = ctx.quick ? " [quick run: 3 s]" : "";
  return {
    title: "Serving: canopy serve under load, and cold starts",
    tables: [loadTable, coldTable],
    targets: [
      check(
        `Single-row p99 ≤ 20 ms at ${RATE} req/s on one core`,
        `p99 ${ms(p99)} ms (p50 ${ms(load["single-open"].latencyMs.p50)} ms), ${fmtInt(load["single-open"].requestsPerSecond)} req/s achieved, ${load["single-open"].errors} errors${quick}`,
        clean && p99 <= 20,
      ),
      check("Cold start (module init + model load) ≤ 300 ms, 100-tree digits model", `${ms(digitsCold)} ms (FM: ${ms(initLoad("fm"))} ms)`, digitsCold <= 300),
    ],
    raw: {
      pinned: pin,
      rate: RATE,
      seconds,
      models: { digits: digitsModel, fm: { ...fmModel, case: fm.id } },
      load,
      coldStart: { bundleBytes, runs: cold },
      maxThroughput: { single: load["single-closed"].requestsPerSecond, hundred: load["hundred-closed"].requestsPerSecond },
    },
  };
};
