import { isUtf8 } from "node:buffer";
import { parse } from "csv-parse/sync";
import { quoted } from "./cells.ts";
import { CsvError } from "./errors.ts";

/**
 * Reading CSV text into records, in one place for training, `canopy predict` and serving: a UTF-8 BOM is
 * dropped, blank lines are skipped and not counted, binary files and invalid UTF-8 are refused with one line.
 * Rows are 1-based with the header as row 1.
 */

/** csv-parse options every reader uses; ragged rows are reported by the caller, with the row number. */
export const CSV_PARSE_OPTIONS = { bom: true, skip_empty_lines: true, relax_column_count: true } as const;

/** A csv-parse syntax error (an unclosed or stray quote): `detail` is csv-parse's own first line. */
export class CsvSyntaxError extends CsvError {
  constructor(
    readonly detail: string,
    row: number,
  ) {
    super(`row ${row}: malformed CSV: ${detail}`, row);
  }
}

const startsWith = (bytes: Uint8Array, magic: number[] | string, at = 0): boolean => {
  const codes = typeof magic === "string" ? Array.from(magic, (c) => c.charCodeAt(0)) : magic;
  if (bytes.length < at + codes.length) return false;
  return codes.every((c, i) => bytes[at + i] === c);
};

/** Binary formats people hand to a CSV reader by mistake, by their first bytes. */
const SIGNATURES: [number[] | string, string][] = [
  [[0x1f, 0x8b], "gzip-compressed data"],
  ["PAR1", "a Parquet file"],
  ["PK\x03\x04", "a ZIP archive (an .xlsx workbook is one)"],
  [[0xd0, 0xcf, 0x11, 0xe0], "an old Office file (.xls)"],
  ["BZh", "bzip2-compressed data"],
  [[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], "xz-compressed data"],
  [[0x28, 0xb5, 0x2f, 0xfd], "zstd-compressed data"],
  ["ARROW1", "an Arrow / Feather file"],
  ["SQLite format 3\0", "an SQLite database"],
  ["%PDF", "a PDF document"],
  ["CNPYFRST", "a Canopy model"],
  ["CNPYPACK", "a Canopy dataset pack"],
  [[0xff, 0xfe], "UTF-16 text"],
  [[0xfe, 0xff], "UTF-16 text"],
];

/** How far into the data a NUL byte marks it as binary (text files never hold one). */
const SNIFF_BYTES = 64 * 1024;

/** What binary data `head` (the first bytes of a file or body) is, or undefined if it may be text. */
export function binaryKind(head: Uint8Array): string | undefined {
  for (const [magic, kind] of SIGNATURES) if (startsWith(head, magic)) return kind;
  const n = Math.min(head.length, SNIFF_BYTES);
  for (let i = 0; i < n; i++) if (head[i] === 0) return "binary data (it holds NUL bytes)";
  return undefined;
}

/** The one-line refusal of binary input. */
export function notCsvMessage(kind: string): string {
  const hint = kind === "UTF-16 text" ? "save it as UTF-8" : "canopy reads CSV text (UTF-8, with a header row)";
  return `not CSV: the data is ${kind}; ${hint}`;
}

/** Offset of the first byte that breaks UTF-8 (the bytes are known not to be valid UTF-8). */
function firstInvalidUtf8(bytes: Uint8Array): number {
  const fails = (n: number) => {
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, n), { stream: true });
      return false;
    } catch {
      return true;
    }
  };
  // Smallest prefix that fails to decode (a sequence cut short at the end is not a failure in stream mode).
  let lo = 1;
  let hi = bytes.length;
  if (!fails(hi)) return bytes.length - 1; // only the end is cut short
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (fails(mid)) hi = mid;
    else lo = mid + 1;
  }
  // Decoding broke at byte lo - 1; the bad sequence may have started at a lead byte a little before it.
  const at = lo - 1;
  for (let j = at - 1; j >= 0 && j >= at - 3; j--) {
    if (bytes[j]! >= 0xc0) return j;
    if ((bytes[j]! & 0xc0) !== 0x80) break;
  }
  return at;
}

function invalidUtf8(record: string[], row: number, header: string[] | undefined, byte: number): CsvError {
  // The record holding the bad byte: its first cell with a replacement character is the column.
  const at = record.findIndex((cell) => cell.includes("\uFFFD"));
  const hex = `0x${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  const column = at < 0 ? "" : header && header[at] !== undefined ? `, column ${quoted(header[at])}` : `, column ${at + 1}`;
  return new CsvError(
    `row ${row}${column}: invalid UTF-8 (byte ${hex}); canopy reads UTF-8 text: save the file as UTF-8`,
    row,
    at >= 0 && header ? header[at] : undefined,
  );
}

/**
 * What both readers do with each record csv-parse gives: whitespace-only lines before the header are skipped,
 * rows are numbered (the header is row 1), the record holding a known bad byte is refused, and whatever
 * `onRecord` throws is kept so it reaches the caller as it was (csv-parse would wrap it).
 */
class RecordFeed {
  row = 0;
  badByte = -1;
  badValue = 0;
  private header: string[] | undefined;
  private ours: { error: unknown } | undefined;

  constructor(private readonly onRecord: (record: string[], row: number, bytes: number) => void) {}

  readonly handle = (record: string[], info: { bytes: number }): null => {
    if (this.row === 0 && record.every((cell) => cell.trim() === "")) return null;
    this.row++;
    try {
      if (this.badByte >= 0 && info.bytes > this.badByte) throw invalidUtf8(record, this.row, this.header, this.badValue);
      if (this.row === 1) this.header = record.map((name) => name.trim());
      this.onRecord(record, this.row, info.bytes);
    } catch (error) {
      this.ours = { error };
      throw error;
    }
    return null;
  };

  /** What to throw for an error out of csv-parse: ours as it was, else csv-parse's own one-line message. */
  failure(err: unknown): unknown {
    if (this.ours) return this.ours.error;
    return new CsvSyntaxError(String((err as Error).message ?? err).split("\n")[0]!, this.row + 1);
  }

  /** Once all is read: a bad byte no record held (in a trailing blank stretch) is still refused. */
  finish(): number {
    if (this.badByte >= 0) {
      const row = this.row + 1;
      throw new CsvError(`row ${row}: invalid UTF-8 (byte 0x${this.badValue.toString(16).toUpperCase()}); save the file as UTF-8`, row);
    }
    return this.row;
  }
}

/**
 * Parses CSV text and hands each record to `onRecord` with its row number (the header is row 1) and the bytes
 * read so far. Whitespace-only lines before the header are skipped like blank lines. Returns the number of
 * records, header included. Throws CsvError for binary data, invalid UTF-8 (naming the row and column) and CSV
 * syntax errors.
 */
export function readCsvRecords(input: Uint8Array | string, onRecord: (record: string[], row: number, bytes: number) => void): number {
  const feed = new RecordFeed(onRecord);
  let buf: Buffer;
  if (typeof input === "string") buf = Buffer.from(input, "utf8");
  else {
    // Zero-copy view: csv-parse needs Buffer methods, not just a Uint8Array.
    buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    const kind = binaryKind(buf);
    if (kind !== undefined) throw new CsvError(notCsvMessage(kind));
    if (!isUtf8(buf)) {
      feed.badByte = firstInvalidUtf8(buf);
      feed.badValue = buf[feed.badByte]!;
    }
  }
  try {
    parse(buf, { ...CSV_PARSE_OPTIONS, on_record: feed.handle });
  } catch (err) {
    throw feed.failure(err);
  }
  return feed.finish();
}

/** Bytes at the end of `chunk` that start a UTF-8 sequence the chunk cuts short (0-3). */
function incompleteTail(chunk: Uint8Array): number {
  for (let back = 1; back <= Math.min(3, chunk.length); back++) {
    const b = chunk[chunk.length - back]!;
    if ((b & 0xc0) === 0x80) continue; // a continuation byte: keep looking for the lead
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

/**
 * readCsvRecords over a stream of chunks (a file, a gunzip stream, an S3 body): memory stays with one chunk,
 * not the file. The same checks: binary data refused from the first bytes, invalid UTF-8 refused with its row
 * and column, CSV syntax errors as CsvSyntaxError, and whatever `onRecord` throws passed on as it was.
 */
export async function readCsvStream(
  chunks: AsyncIterable<Uint8Array>,
  onRecord: (record: string[], row: number, bytes: number) => void,
): Promise<number> {
  const feed = new RecordFeed(onRecord);
  const parse = await chunkParser();
  const run = (chunk: Buffer | undefined, end: boolean) => {
    let err: unknown;
    try {
      err = parse(chunk, end, feed);
    } catch (thrown) {
      throw feed.failure(thrown);
    }
    if (err !== undefined) throw feed.failure(err);
  };
  let offset = 0;
  let tail: Uint8Array = new Uint8Array(0);
  for await (const piece of chunks) {
    const chunk = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    if (offset === 0) {
      const kind = binaryKind(chunk);
      if (kind !== undefined) throw new CsvError(notCsvMessage(kind));
    }
    if (feed.badByte < 0) {
      // Validate what this chunk completes: the bytes carried over (a sequence cut short), then all but its own.
      const data = tail.length > 0 ? Buffer.concat([tail, chunk]) : chunk;
      const keep = incompleteTail(data);
      const span = data.subarray(0, data.length - keep);
      if (!isUtf8(span)) {
        const at = firstInvalidUtf8(span);
        feed.badByte = offset - tail.length + at;
        feed.badValue = span[at]!;
      }
      tail = data.subarray(data.length - keep);
    }
    offset += chunk.length;
    run(chunk, false);
  }
  if (feed.badByte < 0 && tail.length > 0) {
    feed.badByte = offset - tail.length;
    feed.badValue = tail[0]!;
  }
  run(undefined, true);
  return feed.finish();
}

/** csv-parse's parsing core as its stream Parser drives it: one chunk (or the end), each record pushed at once. */
type ChunkParse = (chunk: Buffer | undefined, end: boolean, feed: RecordFeed) => unknown;

/**
 * The parsing core of a csv-parse stream Parser (`parser.api.parse`, what its _transform calls per chunk), driven
 * directly: records reach the feed as they complete, with the bytes read so far in `parser.info` (csv-parse's
 * documented info). Passing them through `on_record` instead made csv-parse build two info objects per record, and
 * the stream's push and 'data' events cost as much again: 9.5 s against 4.5 s for the 2.9M rows of the bench's
 * flights table. `api` is not part of csv-parse's documented surface: a version without it is refused here (and by
 * the tests) rather than read slowly in silence.
 */
async function chunkParser(): Promise<ChunkParse> {
  const { Parser } = await import("csv-parse");
  const parser = new Parser({ ...CSV_PARSE_OPTIONS });
  const api = (parser as unknown as { api?: { parse?: unknown } }).api;
  if (typeof api?.parse !== "function") throw new Error("csv-parse: Parser.api.parse is missing (this csv-parse version drives its parser differently); reinstall the version in package-lock.json");
  const core = api.parse as (chunk: Buffer | undefined, end: boolean, push: (record: string[]) => void, close: () => void) => unknown;
  const info = parser.info as { bytes: number };
  return (chunk, end, feed) =>
    core.call(
      api,
      chunk,
      end,
      (record) => feed.handle(record, info),
      () => {},
    );
}
