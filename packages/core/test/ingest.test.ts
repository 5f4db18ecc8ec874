import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { CsvError, type CellValue } from "@canopy/forest";
import { parquetRead } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { describe, expect, it } from "vitest";
import { bytesSource, openTable, type ByteSource } from "../src/ingest.ts";
import { prepareDataset } from "../src/submit.ts";
import { csvRows } from "../src/table-source.ts";
import { MemoryBlobStore } from "../src/testing/index.ts";

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../../../test/fixtures/${name}`, import.meta.url)));

async function readAll(source: ByteSource): Promise<{ format: string; header: string[]; rows: CellValue[][]; numbers: number[] }> {
  const table = await openTable(source);
  const rows: CellValue[][] = [];
  const numbers: number[] = [];
  let header: string[] = [];
  await table.read({ header: (h) => (header = h), row: (values, row) => (rows.push(values), numbers.push(row)) });
  return { format: table.format, header, rows, numbers };
}

/** Chunks of `size` bytes, so sequences and records are cut at every kind of place. */
async function* chunked(bytes: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.slice(at, at + size);
}

describe("openTable: the format by content", () => {
  it("reads CSV, gzip-compressed CSV (whatever the name) and Parquet", async () => {
    const csv = fixture("iris.csv");
    const plain = await readAll(bytesSource(csv, "iris.csv"));
    const gz = await readAll(bytesSource(gzipSync(csv), "iris.txt"));
    expect(plain.format).toBe("csv");
    expect(gz.format).toBe("csv.gz");
    expect(gz.rows).toEqual(plain.rows);
    expect(plain.rows).toHaveLength(150);
    expect(plain.numbers.slice(0, 2)).toEqual([2, 3]);

    const parquet = await readAll(bytesSource(fixture("flights.parquet"), "flights.parquet"));
    expect(parquet.format).toBe("parquet");
    expect(parquet.header).toEqual(["date", "delay", "distance", "origin", "destination"]);
    expect(parquet.rows).toHaveLength(6000);
    expect(parquet.rows[0]![0]).toBeInstanceOf(Date);
    expect(typeof parquet.rows[0]![3]).toBe("string");
    expect(parquet.numbers.at(-1)).toBe(6001);
    // Every value as hyparquet's own rows give it, across the file's 3 row groups (read here column by column).
    const bytes = fixture("flights.parquet");
    let want: unknown[][] = [];
    await parquetRead({ file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer, compressors, onComplete: (rows: unknown[][]) => (want = rows) });
    expect(want).toHaveLength(6000);
    expect(parquet.rows).toEqual(want.map((row) => row.map((v) => v ?? null)));
  });

  it("refuses other binary data, a damaged gzip stream and a cut Parquet file in one line naming the source", async () => {
    await expect(openTable(bytesSource(Uint8Array.from([0x50, 0x4b, 3, 4, 0, 0]), "book.xlsx"))).rejects.toThrow(
      /^book\.xlsx: the data is a ZIP archive \(an \.xlsx workbook is one\); canopy reads CSV \(UTF-8 text\), gzip-compressed CSV \(\.csv\.gz\) and Parquet$/,
    );
    const gz = gzipSync(fixture("iris.csv"));
    await expect(readAll(bytesSource(gz.subarray(0, gz.length - 40), "cut.csv.gz"))).rejects.toThrow(/^cut\.csv\.gz: the gzip data is damaged/);
    await expect(readAll(bytesSource(fixture("flights.parquet").subarray(0, 2000), "cut.parquet"))).rejects.toThrow(/^cut\.parquet: not a readable Parquet file/);
  });
});

describe("csvRows: streamed CSV", () => {
  const text = 'name,city,y\n"a, quoted\nfield",São Paulo,1\nb,Zürich 🌍,2\n';
  const bytes = new TextEncoder().encode(text);

  it("gives the same records however the bytes are cut (inside quotes, inside multi-byte characters)", async () => {
    const whole: string[][] = [];
    await csvRows(chunked(bytes, bytes.length), { header: (h) => whole.push(h), row: (r) => whole.push(r as string[]) });
    for (const size of [1, 2, 3, 5, 7]) {
      const got: string[][] = [];
      await csvRows(chunked(bytes, size), { header: (h) => got.push(h), row: (r) => got.push(r as string[]) });
      expect(got, `chunks of ${size}`).toEqual(whole);
    }
    expect(whole[2]).toEqual(["b", "Zürich 🌍", "2"]);
  });

  it("refuses invalid UTF-8 with its row and column, wherever the chunks are cut", async () => {
    const bad = Uint8Array.from([...new TextEncoder().encode("a,city\n1,Paris\n2,S"), 0xe3, ...new TextEncoder().encode("o Paulo\n")]);
    for (const size of [1, 4, 9, bad.length]) {
      const err = await csvRows(chunked(bad, size), { header: () => undefined, row: () => undefined }).catch((e: unknown) => e);
      expect(err, `chunks of ${size}`).toBeInstanceOf(CsvError);
      expect((err as Error).message).toBe('row 3, column "city": invalid UTF-8 (byte 0xE3); canopy reads UTF-8 text: save the file as UTF-8');
    }
  });
});

describe("csvRows: errors keep their row however the bytes are cut", () => {
  it("a quote that is never closed names the row it opens in; what the row sink throws arrives as it was", async () => {
    const bad = new TextEncoder().encode('a,b\n1,2\n\n3,4\n5,"x\n6,7\n');
    for (const size of [1, 5, bad.length]) {
      const rows: number[] = [];
      const err = await csvRows(chunked(bad, size), { header: () => undefined, row: (_r, row) => void rows.push(row) }).catch((e: unknown) => e);
      expect(err, `chunks of ${size}`).toBeInstanceOf(CsvError);
      expect((err as Error).message, `chunks of ${size}`).toMatch(/^row 4: malformed CSV: /);
      expect(rows, `chunks of ${size}`).toEqual([2, 3]);
    }
    const mine = new Error("the sink's own");
    const text = new TextEncoder().encode("a,b\n1,2\n3,4\n5,6\n");
    const thrown = await csvRows(chunked(text, 3), {
      header: () => undefined,
      row: (_r, row) => {
        if (row === 3) throw mine;
      },
    }).catch((e: unknown) => e);
    expect(thrown).toBe(mine);
  });
});

describe("prepareDataset: a table source in, a pack with its schema out", () => {
  it("the same table as CSV, .csv.gz or bytes gives the same pack", async () => {
    const csv = fixture("penguins.csv");
    const hashes = new Set<string>();
    for (const source of [bytesSource(csv, "p.csv"), bytesSource(gzipSync(csv), "p.csv.gz")]) {
      const prepared = await prepareDataset(await openTable(source), { label: "Species" }, new MemoryBlobStore());
      hashes.add(prepared.hash);
      expect(prepared.schema.columns.find((c) => c.name === "Island")).toMatchObject({ kind: "categorical" });
    }
    hashes.add((await prepareDataset(csv, { label: "Species" }, new MemoryBlobStore())).hash);
    expect(hashes.size).toBe(1);
  });
});
