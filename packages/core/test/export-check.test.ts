import { buildPack, exportMlrf, fitForest, parseCsv, type Forest } from "@canopy/forest";
import { describe, expect, it } from "vitest";
import { checkRows, exportAgreement, packRowsMatrix } from "../src/export-check.ts";
import { fixture } from "./support.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

describe("export check", () => {
  /** digits with every fifth row's first 20 pixels missing, and a forest trained on it. */
  function digitsWithGaps(maxDepth?: number): { pack: ReturnType<typeof buildPack>; forest: Forest } {
    const lines = text(fixture("digits")).trimEnd().split("\n");
    const gappy = lines.map((l, i) => (i > 0 && i % 5 === 0 ? l.split(",").map((v, c) => (c < 20 ? "" : v)).join(",") : l));
    const pack = buildPack(parseCsv(`${gappy.join("\n")}\n`, { label: "digit" }));
    return { pack, forest: fitForest(pack, { n_estimators: 8, random_state: 3, ...(maxDepth ? { max_depth: maxDepth } : {}) }) };
  }

  it("the rows rebuilt from bins route through every tree as the pack's own rows do", () => {
    const { pack, forest } = digitsWithGaps();
    const { rows } = checkRows(pack, 0.25, 0);
    expect(forest.predictProba(packRowsMatrix(pack, rows))).toEqual(forest.predictPackProba(pack, rows));
  });

  it("counts the rows whose export prediction differs, and those with missing values", () => {
    const { pack, forest } = digitsWithGaps(4);
    const check = checkRows(pack, 0.25, 0);
    const a = exportAgreement(forest, exportMlrf(forest), pack, check);
    expect(a).toMatchObject({ rows: 450, heldOut: true, metric: "accuracy" });
    expect(a.missingRows).toBeGreaterThan(50);
    expect(a.differ).toBeGreaterThan(0);
    expect(a.missingDiffer).toBeLessThanOrEqual(a.differ);
    // Nothing held out: every row is compared.
    expect(checkRows(pack, 0, 0)).toMatchObject({ heldOut: false, rows: Uint32Array.from({ length: pack.nRows }, (_, i) => i) });
  });
});
