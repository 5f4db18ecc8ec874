import { describe, expect, it } from "vitest";
import { resultsMarkdown, resultsText } from "../report.ts";
import { check } from "../section.ts";
import type { SectionResult } from "../section.ts";
import { formatTable, markdownTable } from "../table.ts";

const section: SectionResult = {
  title: "Engine",
  tables: [{ title: "t", headers: ["case", "train s"], rows: [["digits", "0.125"], ["FM 60k", "12.50"]], notes: ["a note"] }],
  targets: [check("fast", "0.3×", true), check("small", "0.7×", false), check("scales", "not measured", undefined)],
  raw: {},
};

describe("formatTable", () => {
  it("pads columns, right-aligns numbers and left-aligns text", () => {
    const lines = formatTable(section.tables[0]).split("\n");
    expect(lines).toEqual(["t", "case    train s", "------  -------", "digits    0.125", "FM 60k    12.50", "  a note"]);
  });
  it("refuses ragged rows", () => {
    expect(() => formatTable({ title: "x", headers: ["a", "b"], rows: [["1"]] })).toThrow(/row has 1 cells, expected 2/);
  });
});

describe("markdown", () => {
  it("escapes pipes in cells", () => {
    expect(markdownTable({ title: "", headers: ["a"], rows: [["x|y"]] })).toBe("| a |\n| --- |\n| x\\|y |");
  });
  it("RESULTS.md carries date, mode, machine, every target with its result, and the tables", () => {
    const md = resultsMarkdown({ date: new Date("2025-01-02T03:04:05.678Z"), quick: true, versions: { node: "v20" }, loadAtStart: 0.5, loadPeak: 1.25 }, [section]);
    expect(md).toContain("- Date: 2025-01-02T03:04:05Z");
    expect(md).toContain("BENCH_QUICK=1");
    expect(md).toMatch(/- Machine: \d+ cores .*load average 0\.50 at start, peak 1\.25/);
    expect(md).toContain("| fast | 0.3× | PASS | - |");
    expect(md).toContain("| small | 0.7× | MISS | - |");
    expect(md).toContain("| scales | not measured | N/A | - |");
    expect(md).toContain("| FM 60k | 12.50 |");
    expect(resultsText([section])).toMatch(/MISS\s+small\s+0\.7×/);
  });
  it("says each section's load beside its targets and under its title: other work on the machine comes and goes", () => {
    const md = resultsMarkdown({ date: new Date(0), quick: false, versions: {}, loadAtStart: 0.5, loadPeak: 9 }, [
      { ...section, load: { start: 0.42, peak: 3.5 } },
      { ...section, title: "Study", targets: [check("tune", "0.7×", false)], load: { start: 7.25, peak: 9 } },
    ]);
    expect(md).toContain("| fast | 0.3× | PASS | 0.42 / 3.50 |");
    expect(md).toContain("| tune | 0.7× | MISS | 7.25 / 9.00 |");
    expect(md).toContain("## Study\n\n- 1-min load average during this section: 7.25 / 9.00 (start / peak)");
  });
});
