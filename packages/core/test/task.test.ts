import { describe, expect, it } from "vitest";
import { TaskError } from "../src/errors.ts";
import { decodeGroveTask, encodeGroveTask, type GroveTask } from "../src/task.ts";

const task: GroveTask = {
  v: 1,
  buildId: "b-0123456789abcdef",
  grove: 3,
  treeStart: 15,
  treeEnd: 20,
  packKey: `packs/${"a".repeat(64)}.pack`,
  packHash: "a".repeat(64),
  seed: 7,
  testFraction: 0.25,
  params: { n_estimators: 20, random_state: 7, max_depth: 12, max_features: "sqrt" },
  queuedAt: 1_700_000_000_000,
};

function decodeError(message: string): string {
  try {
    decodeGroveTask(message);
  } catch (err) {
    expect(err).toBeInstanceOf(TaskError);
    expect((err as Error).message).not.toContain("\n");
    return (err as Error).message;
  }
  throw new Error("expected a TaskError");
}

describe("grove task codec", () => {
  it("round-trips a task through its JSON message", () => {
    const message = encodeGroveTask(task);
    expect(typeof message).toBe("string");
    expect(decodeGroveTask(message)).toEqual(task);
  });

  it("stays small: it points at the pack instead of carrying data", () => {
    expect(encodeGroveTask(task).length).toBeLessThan(1024);
  });

  it("refuses other versions and non-JSON with one line", () => {
    expect(decodeError(JSON.stringify({ ...task, v: 2 }))).toBe("unsupported grove task version 2; this Canopy reads v1");
    expect(decodeError(JSON.stringify({ ...task, v: undefined }))).toMatch(/unsupported grove task version \(none\)/);
    expect(decodeError("{not json")).toMatch(/^grove task is not JSON/);
    expect(decodeError("[1,2]")).toBe("grove task must be a JSON object");
  });

  it('reads a task queued with params.engine "canopy" (written before the option was dropped) as one without it', () => {
    expect(decodeGroveTask(JSON.stringify({ ...task, params: { ...task.params, engine: "canopy" } }))).toEqual(task);
  });

  it("refuses a task for another engine as invalid input, naming the field", () => {
    expect(decodeError(JSON.stringify({ ...task, params: { ...task.params, engine: "ml-random-forest" } }))).toBe(
      'invalid grove task: params.engine: must be "canopy": this Canopy trains with its own learner only (got "ml-random-forest")',
    );
  });

  it("names the bad fields", () => {
    expect(decodeError(JSON.stringify({ ...task, grove: -1 }))).toMatch(/^invalid grove task: grove: /);
    expect(decodeError(JSON.stringify({ ...task, buildId: "../etc" }))).toContain("buildId: must be b- and 16 hex digits");
    expect(decodeError(JSON.stringify({ ...task, treeEnd: 21 }))).toContain("treeEnd: must be > treeStart (15) and <= params.n_estimators (20)");
    expect(decodeError(JSON.stringify({ ...task, treeEnd: 15 }))).toContain("treeEnd:");
    expect(decodeError(JSON.stringify({ ...task, params: { ...task.params, max_depth: 0 } }))).toContain("params.max_depth:");
    expect(decodeError(JSON.stringify({ ...task, params: { ...task.params, learning_rate: 0.1 } }))).toContain("params.learning_rate: unknown field");
    expect(decodeError(JSON.stringify({ ...task, data: [1, 2, 3] }))).toContain("data: unknown field");
    const { packHash: _, ...noHash } = task;
    expect(decodeError(JSON.stringify(noHash))).toContain("packHash: is required");
  });
});
