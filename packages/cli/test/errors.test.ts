import { InternalError, policyOf, SpecError, TransientError } from "@canopy/core";
import { CsvError } from "@canopy/forest";
import { InterruptedError, LocalStoreError } from "@canopy/runtime-local";
import { describe, expect, it } from "vitest";
import { EXIT_FAILED, EXIT_USAGE, exitCodeFor, FailedError, InterruptedExit, UsageError } from "../src/errors.ts";

const exitCode = (err: unknown) => exitCodeFor(err, policyOf(err));

describe("exit codes follow the error's declared policy, not its ancestry", () => {
  it("input errors exit 2: the CLI's usage errors, the engine's and core's", () => {
    for (const err of [new UsageError("--trees: must be an integer >= 1 (got 0)"), new CsvError("bad cell", 3, "b"), new SpecError([{ path: "x", message: "bad" }])])
      expect(exitCode(err), err.name).toBe(EXIT_USAGE);
  });

  it("internal and transient faults exit 1, whatever they derive from", () => {
    const faults = [
      new LocalStoreError("dataset pack packs/0.pack is missing from /tmp/x"),
      new InternalError("no free trainer"),
      new TransientError("throttled"),
      new InterruptedError("b-0000000000000000"),
      new FailedError("build b-0000000000000000 failed: 1 of 5 groves failed"),
      new Error("socket hang up"),
    ];
    for (const err of faults) expect(exitCode(err), err.name).toBe(EXIT_FAILED);
  });

  it("Ctrl-C exits 130", () => {
    expect(exitCode(new InterruptedExit("interrupted"))).toBe(130);
  });
});
