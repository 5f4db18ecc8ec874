import { describe, expect, it } from "vitest";
import type { CellValue } from "@canopy/forest";
import { decodeRows, SpillEncoder } from "../src/row-spill.ts";

const decodeAll = (bytes: Buffer, width: number) => {
  const out: [number, CellValue[]][] = [];
  decodeRows(bytes, width, (values, row) => out.push([row, values]));
  return out;
};

describe("row spill codec", () => {
  it("gives back every kind of cell exactly, in order", () => {
    const rows: [number, CellValue[]][] = [
      [1, ["abc", 1.5, null, undefined, true, false]],
      [2, ["", -0, Number.NaN, Number.POSITIVE_INFINITY, new Date(Date.UTC(2001, 0, 1, 0, 1)), 12345678901234567890n]],
      [4_000_000_123, ["é Zürich", "日本", "\ud83c\udf32 tree", "lone \ud800 surrogate", "\udfff", new Date(Number.NaN)]],
    ];
    const enc = new SpillEncoder();
    for (const [row, values] of rows) enc.row(row, values);
    const back = decodeAll(enc.take(), 6);
    expect(back.map(([r]) => r)).toEqual([1, 2, 4_000_000_123]);
    for (const [i, [, values]] of back.entries()) {
      const want = rows[i]![1];
      for (const [c, v] of values.entries()) {
        const w = want[c];
        if (w instanceof Date) {
          expect(v).toBeInstanceOf(Date);
          expect(Object.is((v as Date).getTime(), w.getTime())).toBe(true);
        } else expect(Object.is(v, w)).toBe(true);
      }
    }
  });

  it("grows past its first buffer and starts empty after take()", () => {
    const enc = new SpillEncoder();
    const long = "x".repeat(5000) + "ü".repeat(3000);
    for (let r = 0; r < 300; r++) enc.row(r, [long.slice(r), r * 0.25, `k${r}`]);
    const first = decodeAll(enc.take(), 3);
    expect(first).toHaveLength(300);
    expect(first[299]).toEqual([299, [long.slice(299), 74.75, "k299"]]);
    expect(enc.length).toBe(0);
    enc.row(7, ["a", 1, 2]);
    expect(decodeAll(enc.take(), 3)).toEqual([[7, ["a", 1, 2]]]);
  });

  it("refuses bytes it did not write, naming the byte", () => {
    const bytes = Buffer.alloc(9);
    bytes[8] = 42;
    expect(() => decodeAll(bytes, 1)).toThrow(/unknown cell tag 42 at byte 8/);
  });
});
