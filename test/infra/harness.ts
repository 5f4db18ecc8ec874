/**
 * Runs test/infra/run-app.ts in a child process (Pulumi's runtime state is per process, and the app must be
 * loaded by Node itself, not by the test runner's module system) and returns its report. Scratch copies of the
 * app let a test evaluate a deliberately broken variant without touching the real one.
 */
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { SETTINGS_ENV } from "../../stacks/settings.ts";
import { afterAll, beforeAll } from "vitest";
import type { AppReport } from "./run-app.ts";

export const REPO = path.resolve(import.meta.dirname, "../..");
const RUN_APP = path.join(import.meta.dirname, "run-app.ts");

/** Why the infrastructure tests cannot run, or undefined when `sst install` has populated .sst/platform. */
export function platformMissing(root = REPO): string | undefined {
  const pulumi = path.join(root, ".sst", "platform", "node_modules", "@pulumi", "pulumi");
  if (!existsSync(pulumi) || !existsSync(path.join(root, ".sst", "provider-lock.json")))
    return "the SST platform is not installed in .sst/platform: run `npm run sst:install` first";
  return undefined;
}

export interface EvaluateOptions {
  /** The app to evaluate; default: a scratch copy of this repo's app, so evaluations never share .sst/artifacts. */
  root?: string;
  /** Extra environment for `sst deploy` (the app's CANOPY_* settings). */
  env?: Record<string, string>;
  timeoutMs?: number;
}

function withoutSettings(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([key]) => !(key in SETTINGS_ENV) && key !== "CANOPY_SWEEP_SCHEDULE"));
}

const scratches: (() => void)[] = [];

/** Removes the scratch apps evaluateApp made (call from afterAll: test workers may not see a process exit). */
export function removeEvaluations(): void {
  for (const remove of scratches.splice(0)) remove();
}

/**
 * Registers beforeAll/afterAll for one evaluation of the app (default settings) per test file, failing at once when
 * the platform is missing; read `.current` inside tests.
 */
export function useEvaluatedApp(): { readonly current: Evaluation } {
  let app: Evaluation | undefined;
  beforeAll(async () => {
    const missing = platformMissing();
    if (missing) throw new Error(missing);
    app = await evaluateApp();
  }, 300_000);
  afterAll(removeEvaluations);
  return {
    get current() {
      if (!app) throw new Error("the app was not evaluated (use it inside a test)");
      return app;
    },
  };
}

/** What evaluateApp returns: the report, and the root whose .sst/artifacts holds the built functions. */
export type Evaluation = AppReport & { root: string };

export async function evaluateApp(options: EvaluateOptions = {}): Promise<Evaluation> {
  // Test files run in parallel and an evaluation clears and rebuilds <root>/.sst/artifacts: each gets its own root.
  let root = options.root;
  if (!root) {
    const scratch = scratchApp();
    root = scratch.root;
    scratches.push(scratch.remove);
  }
  const reportDir = mkdtempSync(path.join(tmpdir(), "canopy-infra-"));
  const reportPath = path.join(reportDir, "report.json");
  const child = spawn(process.execPath, ["--import", "tsx", RUN_APP, root, reportPath], {
    cwd: REPO,
    // The app's settings come from options.env alone, so an outer CANOPY_* variable cannot skew a test.
    env: { ...withoutSettings(process.env), SST_STAGE: "test", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const timeoutMs = options.timeoutMs ?? 120_000;
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  try {
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    if (!existsSync(reportPath)) {
      const tail = output.trim().split("\n").slice(-5).join(" | ");
      throw new Error(`app evaluation exited ${code ?? `after ${timeoutMs} ms`} without a report: ${tail}`);
    }
    return { ...(JSON.parse(readFileSync(reportPath, "utf8")) as AppReport), root };
  } finally {
    clearTimeout(timer);
    rmSync(reportDir, { recursive: true, force: true });
  }
}

/**
 * A throwaway root holding copies of sst.config.ts and stacks/ (for `mutate` to edit) and links to everything
 * else the evaluation reads: node_modules, the workspace packages and the installed SST platform.
 */
export function scratchApp(mutate: (root: string) => void = () => {}): { root: string; remove: () => void } {
  const root = mkdtempSync(path.join(tmpdir(), "canopy-app-"));
  cpSync(path.join(REPO, "sst.config.ts"), path.join(root, "sst.config.ts"));
  cpSync(path.join(REPO, "stacks"), path.join(root, "stacks"), { recursive: true });
  cpSync(path.join(REPO, "package.json"), path.join(root, "package.json"));
  symlinkSync(path.join(REPO, "node_modules"), path.join(root, "node_modules"));
  mkdirSync(path.join(root, "packages"));
  for (const pkg of readdirSync(path.join(REPO, "packages")))
    symlinkSync(path.join(REPO, "packages", pkg), path.join(root, "packages", pkg));
  mkdirSync(path.join(root, ".sst"));
  symlinkSync(path.join(REPO, ".sst", "platform"), path.join(root, ".sst", "platform"));
  cpSync(path.join(REPO, ".sst", "provider-lock.json"), path.join(root, ".sst", "provider-lock.json"));
  mutate(root);
  return { root, remove: () => rmSync(root, { recursive: true, force: true }) };
}
