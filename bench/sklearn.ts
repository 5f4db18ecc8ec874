// scikit-learn via bench/sklearn_bench.py in the venv, one process per measurement.
import { spawn } from "node:child_process";
import { join } from "node:path";
import type { EngineResult } from "./results.ts";
import type { RunOptions } from "./engine.ts";

export const SKLEARN_SCRIPT = join("bench", "sklearn_bench.py");

/** Runs a child process to completion; resolves with stdout, rejects with the last stderr line on failure. */
export function runChild(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} exited ${code}: ${err.trim().split("\n").pop() ?? ""}`));
    });
  });
}

/**
 * Fits sklearn on the case folder written by writeCaseFiles. Throws if Python read different bytes than
 * TS wrote (fingerprint mismatch): the comparison would be meaningless.
 */
export async function runSklearn(python: string, caseDir: string, caseId: string, fingerprint: string, opts: RunOptions): Promise<EngineResult> {
  const stdout = await runChild(python, [
    SKLEARN_SCRIPT, "fit", caseDir,
    "--trees", String(opts.trees), "--seed", String(opts.seed), "--predict-repeats", String(opts.predictRepeats),
    "--jobs", String(opts.jobs ?? 1),
    ...(opts.maxDepth !== undefined ? ["--max-depth", String(opts.maxDepth)] : []),
    ...(opts.latencyRows ? ["--latency-rows", String(opts.latencyRows)] : []),
  ]);
  const j = JSON.parse(stdout.trim().split("\n").pop()!);
  if (j.fingerprint !== fingerprint) throw new Error(`sklearn read different data for ${caseId} (fingerprint mismatch)`);
  return {
    engine: "sklearn",
    caseId,
    trees: opts.trees,
    status: "ok",
    fitSeconds: j.fitSeconds,
    predictSeconds: j.predictSeconds,
    predictRowsPerSec: j.predictRowsPerSec,
    accuracy: j.accuracy,
    modelBytes: j.modelBytes,
    nodeCount: j.nodeCount,
    ...(j.latency && { latency: j.latency }),
    info: { version: j.version },
  };
}
