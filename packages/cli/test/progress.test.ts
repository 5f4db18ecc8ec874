import { describe, expect, it } from "vitest";
import { progressLine, rates, type GroveProgress } from "../src/progress.ts";

const at = (landed: number, elapsedMs: number, failed = 0): GroveProgress => ({
  buildId: "b-0123456789abcdef",
  landed,
  failed,
  total: 10,
  treesDone: landed * 5,
  treesTotal: 50,
  elapsedMs,
});

describe("progress", () => {
  it("rates count only the trees trained since the first event", () => {
    // A resumed build: 4 groves (20 trees) had landed before; 2 more (10 trees) in the next 2 s.
    const r = rates(at(6, 3000), at(4, 1000));
    expect(r.treesPerSecond).toBe(5);
    expect(r.etaMs).toBe(4000); // 20 trees left at 5 trees/s
    expect(rates(at(0, 0)).etaMs).toBeUndefined();
  });

  it("an extension's copied trees count as done but not toward the rate", () => {
    // 4 groves copied (20 trees) just after the start, then 2 trained (10 trees) by 2 s.
    const r = rates({ ...at(6, 2000), treesCopied: 20 }, at(0, 0));
    expect(r.treesPerSecond).toBe(5);
    expect(r.etaMs).toBe(4000); // 20 trees left at 5 trees/s
    expect(rates({ ...at(4, 100), treesCopied: 20 }, at(0, 0)).etaMs).toBeUndefined(); // nothing trained yet
  });

  it("prints groves, trees, rate and ETA; failures when there are some; no ETA when done", () => {
    expect(progressLine(at(2, 1000))).toBe("canopy: b-0123456789abcdef: groves 2/10 landed (10/50 trees, 10.0 trees/s, ETA 4.00 s)");
    expect(progressLine(at(3, 1000, 1))).toContain("groves 3/10 landed, 1 failed (15/50 trees");
    expect(progressLine(at(10, 5000))).toBe("canopy: b-0123456789abcdef: groves 10/10 landed (50/50 trees, 10.0 trees/s)");
  });
});
