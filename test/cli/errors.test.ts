// Bad usage or input: one `canopy: error:` line on stderr, exit code 2, and nothing half-written.
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { canopy, exists, fixture, tempDir } from "./support.ts";

const IRIS = fixture("iris.csv");
let dir: string;

beforeAll(async () => {
  dir = await tempDir();
  await writeFile(join(dir, "text-feature.csv"), "a,b,y\n1,2,x\n3,oops,y\n5,6,x\n");
  await writeFile(join(dir, "unlabelled.csv"), "sepal_length,sepal_width,petal_width\n5.1,3.5,0.2\n");
});

async function expectUsageError(args: string[], message: RegExp | string, cwd = dir): Promise<void> {
  const run = await canopy(args, cwd);
  expect(run.code, run.stderr).toBe(2);
  expect(run.stdout).toBe("");
  expect(run.stderr.endsWith("\n")).toBe(true);
  const lines = run.stderr.trimEnd().split("\n");
  expect(lines, run.stderr).toHaveLength(1);
  expect(lines[0].startsWith("canopy: error: ")).toBe(true);
  if (typeof message === "string") expect(lines[0]).toBe(`canopy: error: ${message}`);
  else expect(lines[0]).toMatch(message);
}

describe("canopy train refuses bad usage and input before writing anything", () => {
  it.concurrent.each<[string, string[], RegExp | string]>([
    ["a missing data file", ["train", "nope.csv"], "data file not found: nope.csv"],
    ["an unknown label column", ["train", IRIS, "--label", "kind"], /label column "kind" not found; columns are: sepal_length, .*species/],
    ["--trees 0", ["train", IRIS, "--trees", "0"], "--trees: must be an integer >= 1 (got 0)"],
    ["a grove size above the tree count", ["train", IRIS, "--trees", "5", "--grove-size", "10"], "--grove-size: must be <= n_estimators (5) (got 10)"],
    // Text makes a column categorical (issue 12); a column read as numbers (--numeric) refuses it.
    ["a non-numeric feature", ["train", "text-feature.csv", "--numeric", "b"], 'row 3, column "b": "oops" is not a number (--numeric b)'],
    ["an unknown option", ["train", IRIS, "--bogus"], "unknown option '--bogus'"],
    ["a non-number where one is needed", ["train", IRIS, "--trees", "many"], /option '--trees <n>' argument 'many' is invalid/],
    ["a bad --max-features", ["train", IRIS, "--max-features", "most"], /--max-features <f>' argument 'most' is invalid. Expected sqrt, log2, all/],
    ["--refit with nothing held out", ["train", IRIS, "--refit", "--test-fraction", "0"], "--refit: --test-fraction 0 holds nothing out, so there are no metrics to measure first and the model is already trained on every row"],
    ["--oob-score without the bootstrap", ["train", IRIS, "--oob-score", "--no-bootstrap"], "--oob-score: needs the bootstrap; scikit-learn: Out of bag estimation only available if bootstrap=True (bootstrap is false)"],
    ["a regression criterion for classification", ["train", IRIS, "--task", "classification", "--criterion", "squared_error"], /^canopy: error: --criterion: "squared_error" is for regression/],
    [
      "a criterion the label rules out (known once the data is read)",
      ["train", fixture("diabetes.csv"), "--criterion", "entropy"],
      '--criterion: "entropy" is for classification; use "squared_error" (the label makes this regression)',
    ],
    ["no data and no --resume", ["train"], /missing <data\.csv>/],
    ["a malformed build id", ["train", "--resume", "b-xyz"], /--resume: "b-xyz" is not a build id/],
    ["an unknown build id", ["train", "--resume", "b-0123456789abcdef"], /build b-0123456789abcdef not found/],
  ])("%s", async (_name, args, message) => {
    await expectUsageError([...args, "--out", "out"], message);
    expect(await exists(join(dir, "out"))).toBe(false);
    expect(await exists(join(dir, ".canopy", "builds"))).toBe(false);
  });

  it("an --out directory holding other files is refused before training, and left as it was", async () => {
    await mkdir(join(dir, "busy"));
    await writeFile(join(dir, "busy", "notes.txt"), "mine");
    await expectUsageError(["train", IRIS, "--trees", "5", "--grove-size", "5", "--out", "busy"], /--out busy already holds other files \(notes\.txt\)/);
    expect(await readdir(join(dir, "busy"))).toEqual(["notes.txt"]);
    expect(await readFile(join(dir, "busy", "notes.txt"), "utf8")).toBe("mine");
    expect(await exists(join(dir, ".canopy", "builds"))).toBe(false);
  });
});

describe("other commands", () => {
  it("an unknown command", async () => {
    await expectUsageError(["frobnicate"], "unknown command 'frobnicate'");
  });

  it("predict: a missing model, a missing feature column, --model not given", async () => {
    await expectUsageError(["predict", "--model", "nope.canopy", IRIS], "model not found: nope.canopy");
    await expectUsageError(["predict", IRIS], "required option '--model <file|build-id>' not specified");
    await expectUsageError(["predict", "--model", IRIS, IRIS], /iris\.csv: not a Canopy model/);
    // A real model (in a directory of its own), then data that lacks one of its features.
    const own = await tempDir();
    const train = await canopy(["train", IRIS, "--trees", "5", "--grove-size", "5", "--out", "model"], own);
    expect(train.code).toBe(0);
    await expectUsageError(
      ["predict", "--model", "model/model.canopy", join(dir, "unlabelled.csv")],
      "the CSV lacks feature column the model needs: petal_length",
      own,
    );
    await expectUsageError(["export", "--format", "onnx", "model/model.canopy"], /argument 'onnx' is invalid. Allowed choices are ml-random-forest/, own);
  });
});
