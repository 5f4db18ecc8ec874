import { describe, expect, it } from "vitest";
import { TaskError } from "../src/errors.ts";
import { KEY_PATTERNS, keys, reportKeysOf } from "../src/keys.ts";

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
    expect(() => keys.study(id)).toThrow(TaskError);
    expect(() => keys.spec("s-00ff00ff00ff00ff")).toThrow(TaskError);
  });

  it("finds a record's report and page by the kind of its id", () => {
    expect(reportKeysOf(id)).toEqual({ json: `builds/${id}/report.json`, html: `builds/${id}/report.html` });
    const s = "s-00ff00ff00ff00ff";
    expect(reportKeysOf(s)).toEqual({ json: `studies/${s}/report.json`, html: `studies/${s}/report.html` });
    const p = "p-00ff00ff00ff00ff";
    expect(reportKeysOf(p)).toEqual({ json: `partitions/${p}/report.json`, html: `partitions/${p}/report.html` });
    expect(() => reportKeysOf("../../etc")).toThrow(TaskError);
  });
});

describe("key patterns (what IAM grants are scoped to)", () => {
  const id = "b-00ff00ff00ff00ff";
  // IAM's Resource wildcard: `*` matches any run of characters, `/` included.
  const matches = (pattern: string, key: string) =>
    new RegExp(`^${pattern.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`).test(key);
  const examples: Record<keyof typeof KEY_PATTERNS, string[]> = {
    pack: [keys.pack("f".repeat(64)), keys.pack("0".repeat(64))],
    spec: [keys.spec(id)],
    grove: [keys.grove(id, 0), keys.grove(id, 99_999)],
    groveError: [keys.groveError(id, 0), keys.groveError(id, 12)],
    groveOob: [keys.groveOob(id, 0), keys.groveOob(id, 99_999)],
    oob: [keys.oob(id)],
    refitLink: [keys.refitLink(id)],
    model: [keys.model(id)],
    report: [keys.report(id)],
    reportHtml: [keys.reportHtml(id)],
    study: [keys.study("s-00ff00ff00ff00ff")],
    studyReport: [keys.studyReport("s-00ff00ff00ff00ff")],
    studyReportHtml: [keys.studyReportHtml("s-00ff00ff00ff00ff")],
    studyRound: [keys.studyRound("s-00ff00ff00ff00ff", 0), keys.studyRound("s-00ff00ff00ff00ff", 12)],
    partitionedModel: [keys.partitionedModel("p-00ff00ff00ff00ff")],
    partitionRun: [keys.partitionRun("p-00ff00ff00ff00ff")],
    partitionReport: [keys.partitionReport("p-00ff00ff00ff00ff")],
    partitionTuning: [keys.partitionTuning("p-00ff00ff00ff00ff")],
    partitionReportHtml: [keys.partitionReportHtml("p-00ff00ff00ff00ff")],
  };

  it("has a pattern for every kind of key", () => {
    expect(Object.keys(KEY_PATTERNS).sort()).toEqual(Object.keys(keys).sort());
  });

  it.each(Object.keys(examples) as (keyof typeof KEY_PATTERNS)[])("%s keys match their pattern and no other", (kind) => {
    for (const key of examples[kind])
      for (const [other, pattern] of Object.entries(KEY_PATTERNS)) expect(matches(pattern, key), `${key} against ${other}'s ${pattern}`).toBe(other === kind);
  });
});
