// ml-random-forest in a child process with a hard time cap (it is much slower than the others).
import { spawn } from "node:child_process";
import { join } from "node:path";
import type { EngineResult } from "./results.ts";

export const MLRF_CHILD = join("bench", "mlrf-child.ts");

export function mlrfCapSeconds(env = process.env): number {
  const raw = env.BENCH_MLRF_CAP;
  if (raw === undefined || raw === "") return 120;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`BENCH_MLRF_CAP must be a positive number of seconds, got "${raw}"`);
  return v;
}

/** Runs `node --import tsx <script> ...args`; kills it with SIGKILL after capSeconds. */
export function runCapped(script: string, args: string[], capSeconds: number): Promise<{ status: "ok"; stdout: string } | { status: "timeout" } | { status: "error"; message: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", script, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, capSeconds * 1000);
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", (e) => {
      clearTimeout(timer);
      resolve({ status: "error", message: e.message });
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      if (timedOut) resolve({ status: "timeout" });
      else if (code === 0) resolve({ status: "ok", stdout: out });
      else resolve({ status: "error", message: `exited ${code}: ${err.trim().split("\n").pop() ?? ""}` });
    });
  });
}

export async function runMlrf(caseDir: string, caseId: string, trees: number, seed: number, capSeconds: number): Promise<EngineResult> {
  const base = { engine: "ml-random-forest" as const, caseId, trees };
  const r = await runCapped(MLRF_CHILD, [caseDir, String(trees), String(seed)], capSeconds);
  if (r.status === "timeout") return { ...base, status: "timeout", capSeconds };
  if (r.status === "error") return { ...base, status: "error", message: r.message };
  return { ...base, status: "ok", ...JSON.parse(r.stdout.trim().split("\n").pop()!) };
}
