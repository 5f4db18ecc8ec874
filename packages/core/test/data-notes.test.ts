import { buildPack, parseCsv } from "@canopy/forest";
import { describe, expect, it } from "vitest";
import { optionWarnings, taskNote } from "../src/data-notes.ts";
import { splitRows } from "../src/plan.ts";
import { parseBuildSpec } from "../src/spec.ts";
import { prepareBuildData } from "../src/submit.ts";
import { MemoryBlobStore } from "../src/testing/index.ts";
import { fixture } from "./support.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const packOf = (csv: string, task?: "classification" | "regression") => buildPack(parseCsv(csv, task ? { task } : {}));

describe("taskNote: the detected task and why (auto only)", () => {
  it("text, a few integers, many integers, fractions, and integers past the class rule", () => {
    expect(taskNote({ task: "auto" }, packOf(text(fixture("iris"))))?.message).toBe('task: classification (detected: label "species" holds text; 3 classes)');
    expect(taskNote({ task: "auto" }, packOf(text(fixture("digits"))))).toEqual({
      level: "note",
      message: 'task: classification (detected: label "digit" holds 10 distinct integers; --task regression reads them as a quantity)',
    });
    const rows = Array.from({ length: 60 }, (_, i) => `${i},${i % 12}`);
    expect(taskNote({ task: "auto" }, packOf(`x,y\n${rows.join("\n")}\n`))).toMatchObject({ level: "warning", message: expect.stringMatching(/^task: classification, 12 classes .* 0 to 11, .* use --task regression$/) });
    expect(taskNote({ task: "auto" }, packOf("x,y\n1,0.5\n2,1.5\n3,2\n4,3\n"))?.message).toBe('task: regression (detected: label "y" holds numbers with fractional parts)');
    expect(taskNote({ task: "auto" }, packOf("x,y\n1,1\n2,2\n3,3\n4,3\n"))?.message).toBe(
      'task: regression (detected: label "y" holds 3 distinct integers, more than one per two of the 4 rows; --task classification reads them as classes)',
    );
    expect(taskNote({ task: "regression" }, packOf(text(fixture("diabetes"))))).toBeUndefined();
  });
});

describe("optionWarnings: what scikit-learn 1.9.1 takes silently or warns about", () => {
  const iris = packOf(text(fixture("iris")));
  const split = splitRows(iris.nRows, 0.25, 0);
  const warn = (options: Record<string, unknown>) => optionWarnings(parseBuildSpec({ dataset: "x", ...options }), iris, split).map((w) => [w.path, w.message]);

  it("says nothing of ordinary options", () => {
    expect(warn({ max_features: 4, max_samples: 112 })).toEqual([]);
    expect(warn({ max_samples: 0.5 })).toEqual([]);
  });

  it("max_features above the features, max_samples above the training rows or drawing few, one class", () => {
    expect(warn({ max_features: 5 })).toEqual([["max_features", "5 is more than the 4 features; every split tries all 4, as scikit-learn 1.9.1 does"]]);
    expect(warn({ max_samples: 113 })).toEqual([["max_samples", "113 is more than the 112 training rows; each tree draws 113 rows with replacement, as scikit-learn 1.9.1 does"]]);
    // round(0.08 * 112) = 9 < max(10, 112^(1/3)): scikit-learn's rule for a warning.
    expect(warn({ max_samples: 0.08 })[0]![1]).toMatch(/^the fraction 0\.08 of 112 training rows is a low number \(9\) of bootstrap samples/);
    expect(warn({ max_samples: 0.09 })).toEqual([]);
    const setosa = packOf(`a,b,y\n${Array.from({ length: 8 }, (_, i) => `${i},${i * 2},setosa`).join("\n")}\n`);
    const one = optionWarnings(parseBuildSpec({ dataset: "x" }), setosa, splitRows(8, 0.25, 0));
    expect(one.map((w) => w.message)).toEqual([expect.stringMatching(/^label "y" has one class \("setosa"\) in the 6 training rows: every tree predicts it/)]);
  });
});

describe("prepareBuildData: a spec the data refuses stores nothing", () => {
  it.each([
    [{ criterion: "entropy" }, 'criterion: "entropy" is for classification; use "squared_error" (the label makes this regression)'],
    [{ test_fraction: 0.999 }, "test_fraction: leaves no training rows out of 442"],
  ])("%j", async (options, message) => {
    const blobs = new MemoryBlobStore();
    await expect(prepareBuildData(parseBuildSpec({ dataset: "diabetes.csv", ...options }), fixture("diabetes"), blobs)).rejects.toThrow(message);
    expect(blobs.keys()).toEqual([]);
  });

  it("a good spec stores the pack and carries its notes", async () => {
    const blobs = new MemoryBlobStore();
    const prepared = await prepareBuildData(parseBuildSpec({ dataset: "iris.csv", max_features: 9 }), fixture("iris"), blobs);
    expect(blobs.keys()).toEqual([prepared.packKey]);
    expect(prepared.notes.map((n) => n.level)).toEqual(["note", "warning"]);
  });
});

