import { describe, expect, it } from "vitest";
import { readCsvRecords, readCsvStream } from "../src/csv-text.ts";
import { random } from "./fixtures/data.ts";

type Read = { records: [string[], number, number][]; count?: number; error?: string };

/** The input read whole: by csv-parse alone (the reference), or split where it can be. */
function whole(bytes: Uint8Array, split = false): Read {
  const records: Read["records"] = [];
  try {
    return { records, count: readCsvRecords(bytes, (r, row, b) => void records.push([r, row, b]), { split }) };
  } catch (err) {
    return { records, error: (err as Error).message };
  }
}

async function streamed(bytes: Uint8Array, cuts: number[]): Promise<Read> {
  async function* chunks() {
    let at = 0;
    for (const cut of [...cuts, bytes.length]) {
      yield bytes.slice(at, cut);
      at = cut;
    }
  }
  const records: Read["records"] = [];
  try {
    return { records, count: await readCsvStream(chunks(), (r, row, b) => void records.push([r, row, b])) };
  } catch (err) {
    return { records, error: (err as Error).message };
  }
}

const enc = new TextEncoder();
/** Pieces CSV text is made of: mostly plain cells and line breaks, sometimes what sends the rest to csv-parse. */
const COMMON = ["1", "2.5", "ab", " x ", "", "é", "🌍", ",", ",", ",", "\n", "\n", "\r\n"];
const RARE = ['"', '"q"', '"a\nb"', "\r", "\n\n", "\r\n\r\n", "NA"];

function randomCsv(next: () => number): Uint8Array {
  const parts: number[] = [];
  if (next() < 0.15) parts.push(0xef, 0xbb, 0xbf);
  const crlf = next() < 0.4;
  const rareOdds = next() < 0.5 ? 0 : 0.03;
  const n = 1 + Math.floor(next() * 120);
  for (let i = 0; i < n; i++) {
    let piece = next() < rareOdds ? RARE[Math.floor(next() * RARE.length)]! : COMMON[Math.floor(next() * COMMON.length)]!;
    if (piece === "\n" && crlf) piece = "\r\n";
    parts.push(...enc.encode(piece));
  }
  if (next() < 0.05) parts.splice(Math.floor(next() * parts.length), 0, 0xff); // a byte that is not UTF-8
  return Uint8Array.from(parts);
}

describe("readCsvStream and readCsvRecords: the same records as csv-parse reading the whole input", () => {
  it("for random text (line endings, BOM, blank lines, quotes and bad bytes here and there) cut into random chunks", async () => {
    let viaParser = 0;
    for (let seed = 1; seed <= 1500; seed++) {
      const next = random(seed);
      const bytes = randomCsv(next);
      const cuts = Array.from({ length: Math.floor(next() * 6) }, () => Math.floor(next() * bytes.length)).sort((a, b) => a - b);
      const want = whole(bytes);
      const got = await streamed(bytes, cuts);
      expect(got, `seed ${seed}: ${Buffer.from(bytes).toString("hex")} cut at ${cuts}`).toEqual(want);
      expect(whole(bytes, true), `seed ${seed}: ${Buffer.from(bytes).toString("hex")} read whole`).toEqual(want);
      if (bytes.includes(0x22) || want.error) viaParser++;
    }
    // Both ways of reading were exercised: the split lines and csv-parse taking over.
    expect(viaParser).toBeGreaterThan(200);
  });

  it("reads a record longer than a few MB (csv-parse takes over there) and the records around it as csv-parse does", async () => {
    const long = Array.from({ length: 2_500_000 }, (_, i) => i % 10).join(","); // 5 MB
    for (const eol of ["\n", "\r\n"]) {
      const bytes = enc.encode(`a,b${eol}1,2${eol}${long}${eol}3,4${eol}5,6`);
      const cuts = Array.from({ length: Math.floor(bytes.length / 65536) }, (_, i) => (i + 1) * 65536);
      const want = whole(bytes);
      expect(want.records.map(([r]) => r.length)).toEqual([2, 2, 2_500_000, 2, 2]);
      expect(await streamed(bytes, cuts)).toEqual(want);
      expect(whole(bytes, true)).toEqual(want);
    }
  });

  it("names the line of a quote left open as csv-parse does, after many lines split without it", async () => {
    const lines = Array.from({ length: 50 }, (_, i) => `${i},${i * 2}`);
    for (const eol of ["\n", "\r\n"]) {
      const bytes = enc.encode(`a,b${eol}${lines.join(eol)}${eol}7,"open${eol}8,9${eol}`);
      const want = whole(bytes);
      expect(want.error).toMatch(/^row 52: malformed CSV: Quote Not Closed: .* at line \d+$/);
      for (const cuts of [[], [5], [100, 101, 300]]) expect(await streamed(bytes, cuts)).toEqual(want);
      expect(whole(bytes, true)).toEqual(want);
    }
  });
});
