import { isAscii, isUtf8 } from "node:buffer";
import { Parser } from "csv-parse";
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
    const b = bytes[j]!;
    if (b >= 0xc0) return j + (b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2) > at ? j : at; // only a sequence that reaches `at`
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
 * syntax errors. Records are split by QuotelessLines until the data needs csv-parse, which reads the rest.
 */
export function readCsvRecords(
  input: Uint8Array | string,
  onRecord: (record: string[], row: number, bytes: number) => void,
  /** `split: false` reads every record with csv-parse, the reference the split lines are tested against. */
  options: { split?: boolean } = {},
): number {
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
  if (options.split === false) {
    try {
      parse(buf, { ...CSV_PARSE_OPTIONS, on_record: feed.handle });
    } catch (err) {
      throw feed.failure(err);
    }
  } else new RecordReader(feed).push(buf, true);
  return feed.finish();
}

/** Bytes at the end of `chunk` that start a UTF-8 sequence the chunk cuts short (0-3). */
function incompleteTail(chunk: Uint8Array): number {
  for (let back = 1; back <= Math.min(3, chunk.length); back++) {
    const b = chunk[chunk.length - back]!;
    if ((b & 0xc0) === 0x80) continue; // a continuation byte: keep looking for the lead
    if (b >= 0xf8) return 0; // never a lead byte: the chunk itself is bad here
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

/**
 * readCsvRecords over a stream of chunks (a file, a gunzip stream, an S3 body): memory stays with one chunk,
 * not the file. The same checks: binary data refused from the first bytes, invalid UTF-8 refused with its row
 * and column, CSV syntax errors as CsvSyntaxError, and whatever `onRecord` throws passed on as it was. Records
 * are split by QuotelessLines until the data needs csv-parse, which reads the rest.
 */
export async function readCsvStream(
  chunks: AsyncIterable<Uint8Array>,
  onRecord: (record: string[], row: number, bytes: number) => void,
): Promise<number> {
  const feed = new RecordFeed(onRecord);
  const reader = new RecordReader(feed);
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
    reader.push(chunk, false);
  }
  if (feed.badByte < 0 && tail.length > 0) {
    feed.badByte = offset - tail.length;
    feed.badValue = tail[0]!;
  }
  reader.push(undefined, true);
  return feed.finish();
}

/** Records from chunks of CSV text: split by QuotelessLines while it can, read by csv-parse from the first record it cannot. */
class RecordReader {
  private readonly lines: QuotelessLines;
  private parse: ChunkParse | undefined;

  constructor(private readonly feed: RecordFeed) {
    this.lines = new QuotelessLines(feed);
  }

  /** The next chunk (undefined at the end, where `end` is true). */
  push(chunk: Buffer | undefined, end: boolean): void {
    if (this.parse === undefined) {
      const rest = this.lines.read(chunk, end, this.feed.badByte >= 0);
      if (rest === undefined) return;
      this.parse = chunkParser(this.lines.handover());
      if (rest.length > 0) this.run(rest, false);
      if (!end) return;
      chunk = undefined;
    }
    this.run(chunk, end);
  }

  private run(chunk: Buffer | undefined, end: boolean): void {
    let err: unknown;
    try {
      err = this.parse!(chunk, end, this.feed);
    } catch (thrown) {
      throw this.feed.failure(thrown);
    }
    if (err !== undefined) throw this.feed.failure(err);
  }
}

const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const UTF8_BOM = [0xef, 0xbb, 0xbf];
/** A record still open after this many bytes goes to csv-parse: carried over chunk after chunk, it would be copied
 * and scanned again with each one. */
const LONG_RECORD = 4 << 20;

/** Where csv-parse, having read `bytes` bytes and `lines` line breaks in records it made, picks up the rest. */
interface Handover {
  bytes: number;
  lines: number;
  recordDelimiter?: "\n" | "\r\n";
}

/**
 * The common case of CSV, read without csv-parse: while the data holds no quote character and no bad UTF-8, and
 * its records end in "\n" or "\r\n" (csv-parse's own choice, made at the first line break), a record is its line
 * split at the commas, which is what csv-parse makes of it (with the same options: BOM dropped, empty lines
 * skipped, the same `bytes` read per record). csv-parse builds each field byte by byte and decodes it alone: FM
 * 20k's 44 MB took 2.7 s of its 4.5 s ingest there, 0.4 s here. From the first record that holds a quote, a
 * lone "\r" (or "\n" in a "\r\n" file) or a bad byte, or is still open after LONG_RECORD bytes, csv-parse reads
 * the rest (see handover). Tested against csv-parse on random text cut into random chunks.
 */
class QuotelessLines {
  private pending: Buffer = Buffer.alloc(0);
  /** Bytes of the input before `pending`. */
  private consumed = 0;
  /** Line breaks in what was consumed, as csv-parse counts them (see advance). */
  private breaks = 0;
  private delimiter: "\n" | "\r\n" | undefined;

  constructor(private readonly feed: RecordFeed) {}

  /**
   * Splits the records `chunk` completes (all that is left, at the end). Returns undefined when it read them,
   * or the bytes csv-parse must read from here on (a record boundary) when it cannot: from then on every chunk
   * goes to csv-parse. `bad`: the data holds invalid UTF-8 somewhere (csv-parse reads it, for its message).
   */
  read(chunk: Buffer | undefined, end: boolean, bad: boolean): Buffer | undefined {
    const long = this.pending.length > LONG_RECORD;
    const data = chunk === undefined ? this.pending : this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    if (bad || long) return this.give(data, 0);
    if (this.consumed === 0 && this.delimiter === undefined) {
      // The start: csv-parse's BOM and line ending, found as it finds them.
      if (data.length < 3 && !end) return this.wait(data);
      const bom = UTF8_BOM.every((b, i) => data[i] === b) ? 3 : 0;
      const quote = data.indexOf(QUOTE, bom);
      const lf = data.indexOf(LF, bom);
      const cr = data.indexOf(CR, bom);
      const first = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
      if (quote >= 0 && (first < 0 || quote < first)) return this.give(data, 0);
      if (first < 0) {
        if (!end) return this.wait(data);
      } else if (data[first] === CR) {
        if (first + 1 === data.length && !end) return this.wait(data);
        if (data[first + 1] !== LF) return this.give(data, 0); // a lone "\r": csv-parse's Mac line endings
        this.delimiter = "\r\n";
      } else this.delimiter = "\n";
      this.consumed = bom; // read: csv-parse taking over from here is told not to look for a BOM
      return this.split(data.subarray(bom), end);
    }
    return this.split(data, end);
  }

  private wait(data: Buffer): undefined {
    this.pending = data;
    return undefined;
  }

  private split(data: Buffer, end: boolean): Buffer | undefined {
    const crlf = this.delimiter === "\r\n";
    const quote = data.indexOf(QUOTE);
    // Records before the first quote's line are split here; that line on goes to csv-parse.
    const stop = quote < 0 ? data.length : data.lastIndexOf(LF, quote) + 1;
    // ASCII text (the usual numbers and names) is decoded once and its lines sliced: one decoding per line cost
    // as much as the split.
    const text = isAscii(data.subarray(0, stop)) ? data.toString("latin1", 0, stop) : undefined;
    let start = 0;
    for (;;) {
      const lf = data.indexOf(LF, start);
      if (lf < 0 || lf >= stop) break;
      let last = lf;
      if (crlf) {
        if (lf === start || data[lf - 1] !== CR) return this.give(data, start); // a "\n" inside a "\r\n" record
        last = lf - 1;
      }
      if (last > start) this.emit(text !== undefined ? text.slice(start, last) : data.toString("utf8", start, last), this.consumed + lf + 1);
      start = lf + 1;
    }
    if (quote >= 0) return this.give(data, start);
    const rest = data.subarray(start);
    if (!end) {
      this.advance(data, start);
      this.pending = rest;
      return undefined;
    }
    // The last record, with no line break after it (csv-parse reads an empty one as nothing).
    if (crlf && rest.includes(CR)) return this.give(data, start); // csv-parse would wait for its "\n"
    if (rest.length > 0) this.emit(rest.toString("utf8"), this.consumed + data.length);
    this.advance(data, data.length);
    this.pending = Buffer.alloc(0);
    return undefined;
  }

  /** A record from a line that is not empty (csv-parse's skip_empty_lines skips those). */
  private emit(line: string, bytes: number): void {
    this.info.bytes = bytes;
    this.feed.handle(line.split(","), this.info);
  }

  private readonly info = { bytes: 0 };

  /**
   * Counts what was split up to `to` as consumed, with csv-parse's count of lines: one per record delimiter and one
   * per other CR or LF byte. A "\r\n" file's split lines hold no lone LF, so its count is its CR bytes.
   */
  private advance(data: Buffer, to: number): void {
    const count = (byte: number) => {
      let n = 0;
      for (let i = data.indexOf(byte); i >= 0 && i < to; i = data.indexOf(byte, i + 1)) n++;
      return n;
    };
    this.breaks += this.delimiter === "\r\n" ? count(CR) : count(LF) + count(CR);
    this.consumed += to;
  }

  private give(data: Buffer, from: number): Buffer {
    this.advance(data, from);
    this.pending = Buffer.alloc(0);
    return data.subarray(from);
  }

  /** Where csv-parse starts: after what was split, with the line ending csv-parse would have found. */
  handover(): Handover {
    return { bytes: this.consumed, lines: 1 + this.breaks, ...(this.consumed > 0 && this.delimiter ? { recordDelimiter: this.delimiter } : {}) };
  }
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
function chunkParser(from: Handover): ChunkParse {
  // Picking up after QuotelessLines: no BOM mid-file, the line ending it found, and its lines counted, so that
  // csv-parse's messages ("at line N") and bytes read are those of a csv-parse that read from the start.
  const resumed = from.bytes > 0 ? { bom: false, ...(from.recordDelimiter ? { record_delimiter: from.recordDelimiter } : {}) } : {};
  const parser = new Parser({ ...CSV_PARSE_OPTIONS, ...resumed });
  const api = (parser as unknown as { api?: { parse?: unknown } }).api;
  if (typeof api?.parse !== "function") throw new Error("csv-parse: Parser.api.parse is missing (this csv-parse version drives its parser differently); reinstall the version in package-lock.json");
  const core = api.parse as (chunk: Buffer | undefined, end: boolean, push: (record: string[]) => void, close: () => void) => unknown;
  const info = parser.info as { bytes: number; lines: number };
  info.lines = from.lines;
  const read = { bytes: 0 };
  return (chunk, end, feed) =>
    core.call(
      api,
      chunk,
      end,
      (record) => {
        read.bytes = from.bytes + info.bytes;
        feed.handle(record, read);
      },
      () => {},
    );
}
