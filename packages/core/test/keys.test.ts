import { describe, expect, it } from "vitest";
import { TaskError } from "../src/errors.ts";
import { keys } from "../src/keys.ts";

describe("blob keys", () => {
  const id = "b-00ff00ff00ff00ff";
  it("lays out packs and build artifacts", () => {
    expect(keys.pack("f".repeat(64))).toBe(`packs/${"f".repeat(64)}.pack`);
    expect(keys.spec(id)).toBe(`builds/${id}/spec.json`);
    expect(keys.grove(id, 7)).toBe(`builds/${id}/groves/00007.grove`);
    expect(keys.grove(id, 12345)).toBe(`builds/${id}/groves/12345.grove`);
    expect(keys.model(id)).toBe(`builds/${id}/model.canopy`);
    expect(keys.report(id)).toBe(`builds/${id}/report.json`);
  });

  it("refuses ids that could escape the key space", () => {
    expect(() => keys.spec("../../etc")).toThrow(TaskError);
    expect(() => keys.model("b-00ff00ff00ff00f/")).toThrow(TaskError);
    expect(() => keys.pack("abc")).toThrow(TaskError);
    expect(() => keys.grove(id, 100_000)).toThrow(TaskError);
    expect(() => keys.grove(id, 1.5)).toThrow(TaskError);
  });
});
