/**
 * `canopy estimate` and `canopy publish --dry-run` through the real CLI: one grove trained here, the table and the
 * suggestions printed, the deploy's settings honoured, bad flags and data refused in one line (exit 2), and a dry
 * run that needs no AWS at all.
 */
import { describe, expect, it } from "vitest";
import { fixture, finished, start, tempDir } from "./support.ts";

/** The environment with no AWS resources, endpoint or credentials and no CANOPY_* settings. */
function bareEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith("CANOPY_") || key.startsWith("AWS_")) delete env[key];
  return { ...env, ...extra };
}

const run = async (args: string[], env = bareEnv()) => finished(start(args, await tempDir(), env));

interface Row {
  trees: number;
  groves: number;
  groveSize: number;
  mapping: { mode: string };
  wallS: number;
  peakConcurrency: number;
  cost: { usd: number };
}

describe("canopy estimate", () => {
  it("trains a grove of the data here and prints wall time and cost for 100, 1,000 and 10,000 trees in both modes", async () => {
    const r = await run(["estimate", fixture("iris.csv"), "--label", "species", "--grove-size", "5", "--json"], bareEnv({ CANOPY_TRAINER_MEMORY_MB: "3538" }));
    expect(r.stderr).toMatch(/^canopy: estimate: preparing .*iris\.csv and training trees here for about 2 s \(at least two\) to measure the work$/m);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { measured: { rows: number; trees: number }; settings: { trainerMemoryMb: number }; rows: Row[]; suggestions: { mode: string; fastest: Row; cheapest: Row }[] };
    expect(out.measured.rows).toBe(150);
    expect(out.measured.trees).toBeGreaterThanOrEqual(2);
    expect(out.settings.trainerMemoryMb).toBe(3538); // the deploy's setting
    expect(out.rows.map((row) => [row.trees, row.groves, row.mapping.mode])).toEqual([
      [100, 20, "default"],
      [100, 20, "provisioned"],
      [1000, 200, "default"],
      [1000, 200, "provisioned"],
      [10_000, 2000, "default"],
      [10_000, 2000, "provisioned"],
    ]);
    for (const row of out.rows) {
      expect(row.wallS).toBeGreaterThan(0);
      expect(row.cost.usd).toBeGreaterThan(0);
    }
    // 2,000 groves: the default mode ramps slowly up to its cap of 100; provisioned pollers start with 20 and ramp faster.
    const [slow, fast] = out.rows.filter((row) => row.trees === 10_000);
    expect(slow.peakConcurrency).toBeLessThanOrEqual(100);
    expect(fast.peakConcurrency).toBeGreaterThan(slow.peakConcurrency);
    expect(fast.wallS).toBeLessThan(slow.wallS);
    expect(out.suggestions.map((s) => s.mode)).toEqual(["default", "provisioned"]);
    for (const s of out.suggestions) expect(s.fastest.wallS).toBeLessThanOrEqual(s.cheapest.wallS);
  });

  it("prints the table for people", async () => {
    const r = await run(["estimate", fixture("iris.csv"), "--label", "species", "--trees", "50", "--min-pollers", "5"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^trees +groves +grove size +trainer mapping +wall +trainers at once +cold starts +cost$/m);
    expect(r.stdout).toMatch(/^50 +5 +10 +default \(≤100\) +/m);
    expect(r.stdout).toMatch(/^10,000 +1,000 +10 +provisioned \(5–200 pollers\) +/m);
    expect(r.stdout).toContain("grove size for 50 trees (--trees), within the trainer's 120 s timeout:");
    expect(r.stdout).toContain("provisioned mode also bills its 5 minimum pollers around the clock: $33.76 a month");
  });

  it.each([
    [["--memory", "64"], 'canopy: error: --memory must be an integer from 128 to 10240; got "64"'],
    [["--min-pollers", "20", "--max-pollers", "10"], "canopy: error: --min-pollers (20) must not exceed --max-pollers (10)"],
    [["--label", "nope"], "nope"],
  ])("refuses %j in one line, exit 2", async (flags, message) => {
    const r = await run(["estimate", fixture("iris.csv"), ...(flags[0] === "--label" ? [] : ["--label", "species"]), ...flags]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n").at(-1)).toContain(message);
    expect(r.stdout).toBe("");
  });

  it("refuses a missing data file, exit 2", async () => {
    const r = await run(["estimate", "no-such.csv"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("no-such.csv");
  });
});

describe("canopy publish --dry-run", () => {
  it("prints the build id and the estimate without any AWS resource or credential: nothing uploaded or queued", async () => {
    const r = await run(["publish", fixture("iris.csv"), "--label", "species", "--trees", "20", "--dry-run"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^canopy: dry run: build b-[0-9a-f]{16} \(2 grove task\(s\), 20 trees\) was not submitted; nothing uploaded or queued$/m);
    expect(r.stdout).toMatch(/^trees +groves +grove size/m);
  });

  it("refuses --wait with --dry-run", async () => {
    const r = await run(["publish", fixture("iris.csv"), "--dry-run", "--wait"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--wait waits for a build; --dry-run starts none");
  });
});
