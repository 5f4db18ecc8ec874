import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writeCaseFiles } from "../data.ts";
import type { BenchCase } from "../data.ts";
import { mlrfCapSeconds, runCapped, runMlrf } from "../mlrf.ts";

describe("mlrf runner", () => {
  const dir = mkdtempSync(join(tmpdir(), "canopy-bench-mlrf-"));

  it("kills a child at the cap and reports a timeout", async () => {
    const script = join(dir, "forever.ts");
    writeFileSync(script, "setInterval(() => {}, 1000);\n");
    expect(await runCapped(script, [], 0.5)).toEqual({ status: "timeout" });
  });

  it("reports a failing child as an error with its last stderr line", async () => {
    const script = join(dir, "fail.ts");
    writeFileSync(script, "console.error('first'); console.error('boom'); process.exit(3);\n");
    expect(await runCapped(script, [], 30)).toEqual({ status: "error", message: "exited 3: boom" });
  });

  it("trains ml-random-forest on a separable case and reports its measurements", async () => {
    // Two features; class is 1 when feature 0 is large. Feature 1 is noise.
    const make = (n: number, offset: number) => {
      const X = new Uint8Array(n * 2);
      const y = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        y[i] = i % 2;
        X[i * 2] = y[i] ? 150 + ((i + offset) % 50) : (i + offset) % 50;
        X[i * 2 + 1] = (i * 31 + offset) % 256;
      }
      return { nRows: n, X, y };
    };
    const c: BenchCase = { id: "tiny", label: "tiny", featureNames: ["a", "b"], labelName: "y", classes: ["0", "1"], nFeatures: 2, train: make(80, 0), test: make(40, 7) };
    const r = await runMlrf(writeCaseFiles(c, dir), "tiny", 5, 1, 60);
    expect(r.status).toBe("ok");
    expect(r.accuracy).toBeGreaterThan(0.9);
    expect(r.nodeCount).toBeGreaterThan(0);
    expect(r.modelBytes).toBeGreaterThan(0);
    expect(r.fitSeconds).toBeGreaterThan(0);
  });

  it("reads BENCH_MLRF_CAP", () => {
    expect(mlrfCapSeconds({})).toBe(120);
    expect(mlrfCapSeconds({ BENCH_MLRF_CAP: "30" })).toBe(30);
    expect(() => mlrfCapSeconds({ BENCH_MLRF_CAP: "soon" })).toThrow(/positive number of seconds, got "soon"/);
  });
});
