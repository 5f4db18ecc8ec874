import { describe, expect, it } from "vitest";
import { CsvError } from "@canopy/forest";
import { csvField, readFeatureCsv } from "../src/features.ts";

describe("readFeatureCsv", () => {
  it("matches columns by name, in the model's order, ignoring extra columns", () => {
    const m = readFeatureCsv("id,b,label,a\n1,2,x,3\n2,5,y,NA\n", ["a", "b"]);
    expect(m.nRows).toBe(2);
    expect(m.nCols).toBe(2);
    expect(Array.from(m.data)).toEqual([3, 2, NaN, 5]);
  });

  it("names the features the CSV lacks", () => {
    expect(() => readFeatureCsv("a,c\n1,2\n", ["a", "b", "d"])).toThrow(/lacks feature columns the model needs: b, d/);
  });

  it("refuses non-numeric cells with row and column", () => {
    let err: unknown;
    try {
      readFeatureCsv("a,b\n1,2\n3,oops\n", ["a", "b"]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CsvError);
    expect((err as CsvError).message).toBe('row 3, column "b": "oops" is not a number');
  });

  it("accepts a header with no rows, and refuses an empty file", () => {
    expect(readFeatureCsv("a,b\n", ["a"]).nRows).toBe(0);
    expect(() => readFeatureCsv("", ["a"])).toThrow(/empty/);
  });
});

describe("csvField", () => {
  it("quotes only when needed", () => {
    expect(csvField("setosa")).toBe("setosa");
    expect(csvField("a,b")).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
  });
});
