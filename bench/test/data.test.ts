import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fingerprint, loadDigits, loadFashionMnist, parseNumericCsv, readCaseFiles, readIdx, splitIndices, writeCaseFiles } from "../data.ts";
import { makeIdx, pythonWithNumpy } from "./helpers.ts";

describe("splitIndices", () => {
  it("is deterministic, disjoint, covers every row, and puts 25% in test", () => {
    const a = splitIndices(1797, 0.25, 42);
    const b = splitIndices(1797, 0.25, 42);
    expect(a.train).toEqual(b.train);
    expect(a.test.length).toBe(Math.round(1797 * 0.25));
    const all = [...a.train, ...a.test].sort((x, y) => x - y);
    expect(all).toEqual(Array.from({ length: 1797 }, (_, i) => i));
    // A different seed gives a different split.
    expect(splitIndices(1797, 0.25, 7).test).not.toEqual(a.test);
  });
});

describe("loadDigits", () => {
  it("splits the fixture 75/25 and keeps each row's pixels with its own label", () => {
    const c = loadDigits();
    const { rows } = parseNumericCsv(readFileSync("test/fixtures/digits.csv", "utf8"));
    const split = splitIndices(rows.length, 0.25, 42);
    expect(c.nFeatures).toBe(64);
    expect(c.train.nRows + c.test.nRows).toBe(1797);
    expect(c.classes).toEqual(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    for (const [part, idx] of [[c.train, split.train], [c.test, split.test]] as const) {
      for (const i of [0, 5, part.nRows - 1]) {
        const src = rows[idx[i]];
        expect(Array.from(part.X.subarray(i * 64, (i + 1) * 64))).toEqual(src.slice(0, 64));
        expect(c.classes[part.y[i]]).toBe(String(src[64]));
      }
    }
  });

  it("rejects a cell that does not fit the uint8 handoff", () => {
    expect(() => parseNumericCsv("a,b,label\n1,2.5,0\n")).toThrow(/row 2 has non-uint8 value "2.5"/);
  });
});

describe("readIdx", () => {
  const data = Uint8Array.from({ length: 2 * 3 * 2 }, (_, i) => i * 7);
  it("reads gzipped and raw idx files the same", () => {
    for (const gz of [true, false]) {
      const r = readIdx(makeIdx([2, 3, 2], data, gz));
      expect(r.dims).toEqual([2, 3, 2]);
      expect(Array.from(r.data)).toEqual(Array.from(data));
    }
  });
  it("rejects foreign or truncated files", () => {
    expect(() => readIdx(new TextEncoder().encode("hello world"))).toThrow(/not an unsigned-byte idx/);
    expect(() => readIdx(makeIdx([2, 3, 3], data, false))).toThrow(/expected 18 data bytes, found 12/);
  });
});

describe("TS and Python loaders agree", () => {
  const dir = mkdtempSync(join(tmpdir(), "canopy-bench-"));
  const python = pythonWithNumpy();

  it("gives the same first rows and labels from the same idx files", () => {
    // 5 images of 4×3 with varied bytes, labels 0..4.
    const pixels = Uint8Array.from({ length: 5 * 12 }, (_, i) => (i * 37 + 11) % 256);
    const labels = Uint8Array.from([3, 1, 4, 1, 5]);
    writeFileSync(join(dir, "img.gz"), makeIdx([5, 4, 3], pixels));
    writeFileSync(join(dir, "lab.gz"), makeIdx([5], labels));
    const ts = readIdx(readFileSync(join(dir, "img.gz")));
    const py = JSON.parse(execFileSync(python, ["bench/sklearn_bench.py", "peek-idx", join(dir, "img.gz"), join(dir, "lab.gz"), "--rows", "3"], { encoding: "utf8" }));
    expect(py.dims).toEqual([5, 4, 3]);
    expect(py.labels).toEqual([3, 1, 4]);
    for (let r = 0; r < 3; r++) expect(py.rows[r]).toEqual(Array.from(ts.data.subarray(r * 12, (r + 1) * 12)));
  });

  it("loadFashionMnist takes the first n train rows and the whole test file", () => {
    const img = Uint8Array.from({ length: 6 * 4 }, (_, i) => i);
    writeFileSync(join(dir, "train-images-idx3-ubyte.gz"), makeIdx([6, 2, 2], img));
    writeFileSync(join(dir, "train-labels-idx1-ubyte.gz"), makeIdx([6], Uint8Array.from([0, 1, 2, 3, 4, 5])));
    writeFileSync(join(dir, "t10k-images-idx3-ubyte.gz"), makeIdx([2, 2, 2], img.subarray(0, 8)));
    writeFileSync(join(dir, "t10k-labels-idx1-ubyte.gz"), makeIdx([2], Uint8Array.from([9, 8])));
    const c = loadFashionMnist(4, dir);
    expect(c.nFeatures).toBe(4);
    expect(c.train.nRows).toBe(4);
    expect(Array.from(c.train.X)).toEqual(Array.from(img.subarray(0, 16)));
    expect(Array.from(c.train.y)).toEqual([0, 1, 2, 3]);
    expect(Array.from(c.test.y)).toEqual([9, 8]);
    expect(() => loadFashionMnist(7, dir)).toThrow(/asked for 7 train rows, found 6/);
  });

  it("the case files round-trip, and Python's fingerprint of them matches TS", () => {
    const c = loadDigits();
    const caseDir = writeCaseFiles(c, dir);
    const back = readCaseFiles(caseDir);
    expect(back.train.X).toEqual(c.train.X);
    expect(back.test.y).toEqual(c.test.y);
    const code = "import sys; sys.path.insert(0, 'bench'); import sklearn_bench as b; print(b.load_case(sys.argv[1])[-1])";
    const pyFp = execFileSync(python, ["-c", code, caseDir], { encoding: "utf8", env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" } }).trim();
    expect(pyFp).toBe(fingerprint(c));
  });
});
