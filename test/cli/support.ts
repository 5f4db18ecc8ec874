import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { access, lstat, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, expect } from "vitest";

export const BIN = fileURLToPath(new URL("../../packages/cli/bin/canopy.mjs", import.meta.url));
export const FIXTURES = fileURLToPath(new URL("../fixtures/", import.meta.url));
export const fixture = (name: string) => join(FIXTURES, name);

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts the real CLI (node + the bin), as a user would, in `cwd`. */
export function start(args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], { cwd, env: { ...env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
}

export function finished(child: ChildProcess): Promise<Run> {
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

export function canopy(args: string[], cwd: string): Promise<Run> {
  return finished(start(args, cwd));
}

/** A fresh directory per call, removed after the file's tests. */
const dirs: string[] = [];
export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "canopy-cli-"));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

export function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Parses CSV without quotes (what predict prints for these fixtures). */
export function csvRows(text: string): string[][] {
  return text
    .trimEnd()
    .split(/\r?\n/)
    .map((line) => line.split(","));
}

/** Every file under `dir` with the SHA-256 of its content (an absent dir is empty). */
export async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string): Promise<void> => {
    let entries: string[];
    try {
      entries = await readdir(d);
    } catch {
      return;
    }
    for (const e of entries.sort()) {
      const path = join(d, e);
      if ((await lstat(path)).isDirectory()) await walk(path);
      else out[relative(dir, path)] = createHash("sha256").update(await readFile(path)).digest("hex");
    }
  };
  await walk(dir);
  return out;
}

/** Exit 2, nothing on stdout, exactly one `canopy: error:` line on stderr; returns that line. */
export function refused(run: Run): string {
  expect(run.code, run.stderr).toBe(2);
  expect(run.stdout).toBe("");
  const lines = run.stderr.trimEnd().split("\n");
  expect(lines, run.stderr).toHaveLength(1);
  expect(lines[0]!.startsWith("canopy: error: ")).toBe(true);
  // No raw control character (an ANSI escape, a C1 CSI) nor a replacement character reaches the terminal.
  expect(lines[0]).not.toMatch(/[\u0000-\u001f\u007f-\u009f\ufffd]/);
  return lines[0]!;
}

/** A digits build that takes a while (20 groves of 2 trees on one worker). */
export const SLOW_DIGITS = [fixture("digits.csv"), "--label", "digit", "--trees", "40", "--grove-size", "2", "--workers", "1", "--max-depth", "10"];

/**
 * Starts `canopy train <args>` in `cwd` (default: a new directory) and sends `signal` (default SIGKILL) once
 * `landed` groves (default 1) have landed; returns the directory, the build and how the process ended.
 */
export async function interruptedBuild(
  args: string[] = SLOW_DIGITS,
  options: { cwd?: string; signal?: NodeJS.Signals; landed?: number } = {},
): Promise<{ cwd: string; buildId: string; run: Run }> {
  const cwd = options.cwd ?? (await tempDir());
  const child = start(["train", ...args], cwd);
  let stderr = "";
  let buildId = "";
  const landed = new Promise<void>((resolve) => {
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
      buildId ||= /build (b-[0-9a-f]{16}):/.exec(stderr)?.[1] ?? "";
      if ([...stderr.matchAll(/groves (\d+)\/\d+ landed/g)].some((m) => Number(m[1]) >= (options.landed ?? 1))) resolve();
    });
  });
  const done = finished(child);
  await landed;
  child.kill(options.signal ?? "SIGKILL");
  const run = await done;
  expect(buildId).toMatch(/^b-[0-9a-f]{16}$/);
  return { cwd, buildId, run };
}

/** Every partition's model file's SHA-256 in a partitioned model's export, by key, and the fallback's ("(fallback)"); each checked against the manifest. */
export async function exportedShas(out: string): Promise<Record<string, string>> {
  const { parsePartitionedModel } = await import("@canopy/core");
  const model = parsePartitionedModel(await readFile(join(out, "model.json"), "utf8"), "model.json");
  const shas: Record<string, string> = {};
  for (const [key, ref] of Object.entries({ ...model.partitions, ...(model.fallback ? { "(fallback)": model.fallback } : {}) })) {
    const sha256 = createHash("sha256").update(await readFile(join(out, ref.file!))).digest("hex");
    expect(sha256).toBe(ref.sha256);
    shas[key] = sha256;
  }
  return shas;
}
