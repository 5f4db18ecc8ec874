import { CanopyError, CsvError, FormatError, OptionsError } from "@canopy/forest";
import { describe, expect, it } from "vitest";
import {
  AggregationError,
  cutLine,
  errorLine,
  inShort,
  InputError,
  InternalError,
  isRetryable,
  LedgerError,
  policyOf,
  RegistryError,
  SpecError,
  TaskError,
  TransientError,
} from "../src/errors.ts";

describe("the error taxonomy: each class declares its policy, and isRetryable reads it", () => {
  it("input errors (spec, task, ledger call, registry, the engine's) are never retried", () => {
    const inputs = [
      new SpecError([{ path: "n_estimators", message: "must be >= 1" }]),
      new TaskError("grove task is not JSON"),
      new LedgerError("build b-0000000000000000 has groves 0..3; got 9"),
      new RegistryError('invalid alias "-x"', "invalid"),
      new InputError("build b-0000000000000000 not found in .canopy"),
      // The engine declares no policy: its CanopyError is the input-error base.
      new CanopyError("bad"),
      new CsvError('row 3, column "b": "oops" is not a number', 3, "b"),
      new FormatError("not a Canopy model"),
      new OptionsError("max_depth must be >= 1"),
    ];
    for (const err of inputs) {
      expect(policyOf(err), err.name).toBe("input");
      expect(isRetryable(err), err.name).toBe(false);
    }
    for (const cls of [SpecError, TaskError, LedgerError, RegistryError, InputError]) expect(cls.policy, cls.name).toBe("input");
  });

  it("internal faults (a build gone from the ledger, a missing grove) are retried where that can help, and are not input", () => {
    const vanished = new AggregationError("build b-0000000000000000 vanished from the ledger");
    expect(AggregationError.policy).toBe("internal");
    expect(policyOf(vanished)).toBe("internal");
    expect(isRetryable(vanished)).toBe(true);
    expect(policyOf(new InternalError("no free trainer"))).toBe("internal");
    // Names survive the class hierarchy: ledger reasons quote them.
    expect(errorLine(vanished)).toBe("AggregationError: build b-0000000000000000 vanished from the ledger");
  });

  it("transient faults and unknown errors (SDK throttling, sockets, anything thrown) are retried", () => {
    const throttled = Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException" });
    for (const err of [new TransientError("the stream is behind"), throttled, new Error("socket hang up"), "a string", undefined, null, 42]) {
      expect(policyOf(err), String(err)).toBe("transient");
      expect(isRetryable(err), String(err)).toBe(true);
    }
  });

  it("an instance's own policy wins over its class's (an error revived from a trainer thread)", () => {
    expect(policyOf(Object.assign(new Error("grove 3 has bad input"), { policy: "input" }))).toBe("input");
    expect(policyOf(Object.assign(new CanopyError("x"), { policy: "internal" }))).toBe("internal");
    // Something that is not a policy is ignored.
    expect(policyOf(Object.assign(new Error("x"), { policy: "fatal" }))).toBe("transient");
  });
});

describe("inShort and cutLine: input in short, whatever it is", () => {
  it("quotes, escapes and cuts strings; cuts other values' JSON; cuts a line saying how much was left out", () => {
    expect(inShort("a\u001b[2Jb")).toBe('"a\\x1b[2Jb"');
    expect(inShort("x".repeat(100))).toBe(`"${"x".repeat(60)}…"`);
    expect(inShort([1, 2, 3])).toBe("[1,2,3]");
    expect(inShort({ a: "y".repeat(100) })).toBe(`{"a":"${"y".repeat(54)}…`);
    expect(inShort(undefined)).toBe("nothing");
    expect(cutLine("short")).toBe("short");
    const cut = cutLine("z".repeat(5_000));
    const kept = cut.indexOf(" … ");
    expect(cut.slice(kept)).toBe(` … (${5_000 - kept} more characters)`);
    expect(cut.length).toBeLessThanOrEqual(1_000);
    expect(cut.length).toBeGreaterThan(990);
  });
});
